"""A fake node for tests and examples: an in-memory `NodeServices` that behaves like one.

`FakeNode` keeps accounts in memory under a real state tree (so proofs are
real), admits signed TRANSFER txs with the node's stateless and admission
checks, produces a block every `block_interval_ms` while txs wait (signed
commit certificate, real block encoding), makes txs final when their block
is committed, and feeds subscribers (bounded queues: a subscriber more than
`FEED_ITEMS_MAX` items behind is ended with LimitExceeded).

`python -m chainmall.core.rpc.testing --tcp 127.0.0.1:0 ...` serves one over
the real RPC server in its own process and prints its addresses as one JSON
line; the RPC tests (abuse included) and the CLI tests drive it.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import json
import os
import signal
import struct
import sys
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from ..abci.types import Event, ProvenEntry, QueryRequest, QueryResult
from ..address import address_from_public_key, decode_address, encode_address
from ..block import Block, CommitCert, CommitSig, commit_sign_bytes, make_block
from ..constants import ADDRESS_BYTES, TX_TYPE_TRANSFER
from ..errors import (
    BadSignature,
    ChainmallError,
    DecodeError,
    FeeTooLow,
    InsufficientFee,
    InvalidInput,
    LimitExceeded,
    NonceMismatch,
    NotFound,
    QueryError,
    TxExpired,
    UnknownSender,
    UnknownTxType,
    WrongChain,
)
from ..hashing import digest
from ..keys import KeyPair
from ..state.accounts import (
    FEE_POOL_KEY,
    account_key,
    apply_transfer,
    decode_fee_pool,
    decode_transfer,
    encode_fee_pool,
    pack_account,
    unpack_account,
)
from ..state.receipts import TX_OK
from ..state.root import MemoryNodeStore, StateTree
from ..tx import Tx, decode_tx
from .config import RpcConfig, RpcLimits
from .methods import Method
from .services import (
    AccountInfo,
    AddressEvent,
    BlockInfo,
    NodeStatus,
    SubmitResult,
    TxInfo,
    TxState,
    WaitResult,
)

FEED_ITEMS_MAX = 1024
FAKE_VERSION = "chainmall-fake/1"


class _Feed:
    """One subscriber's bounded queue, as an async iterator; `aclose` unsubscribes."""

    def __init__(self, registry: set[_Feed], limit: int | None = None,
                 on_close: Callable[[], None] | None = None) -> None:
        self._queue: asyncio.Queue[Any] = asyncio.Queue(FEED_ITEMS_MAX)
        self._registry = registry
        self._limit = limit  # items before the feed ends by itself (a tx's finality: 1)
        self._overflowed = False
        self._on_close = on_close  # drops the registry's entry once it is empty
        registry.add(self)

    def put(self, item: Any) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self._overflowed = True
            self._registry.discard(self)

    def __aiter__(self) -> _Feed:
        return self

    async def __anext__(self) -> Any:
        if self._limit == 0:
            raise StopAsyncIteration
        if self._overflowed and self._queue.empty():
            raise LimitExceeded(f"subscriber fell {FEED_ITEMS_MAX} items behind")
        item = await self._queue.get()
        if self._limit is not None:
            self._limit -= 1
        return item

    async def aclose(self) -> None:
        self._registry.discard(self)
        if self._on_close is not None and not self._registry:
            self._on_close()


class FakeNode:
    """An in-memory single-validator node implementing `NodeServices` (module docstring)."""

    def __init__(self, chain_id: str = "test-chain", balances: Mapping[bytes, int] | None = None,
                 block_interval_ms: int = 50, fee_min: int = 0,
                 validator: KeyPair | None = None, empty_blocks: bool = False) -> None:
        self.chain_id = chain_id
        self.block_interval_ms = block_interval_ms
        self.fee_min = fee_min
        self.empty_blocks = empty_blocks
        self.validator = validator or KeyPair.from_seed(digest(b"fake validator " +
                                                               chain_id.encode()))
        self.validator_set_hash = digest(self.validator.public_key)
        self.genesis_hash = digest(b"fake genesis " + chain_id.encode())
        state = {account_key(address): pack_account(amount, 0)
                 for address, amount in (balances or {}).items()}
        state[FEE_POOL_KEY] = encode_fee_pool(0)
        self._state: dict[bytes, bytes] = {}
        self._history: dict[bytes, list[tuple[int, bytes | None]]] = {}
        self._nodes = MemoryNodeStore()
        self._roots: list[bytes] = []
        self._commit_state(0, StateTree(self._nodes), state)
        self._blocks: list[BlockInfo] = []
        self._heights_by_hash: dict[bytes, int] = {}
        self._final: dict[bytes, TxInfo] = {}
        self._mempool: dict[bytes, Tx] = {}
        self._next_nonce: dict[bytes, int] = {}  # sender -> nonce after its pending txs
        self._block_feeds: set[_Feed] = set()
        self._tx_feeds: dict[bytes, set[_Feed]] = {}
        self._event_feeds: dict[bytes, set[_Feed]] = {}
        self._task: asyncio.Task[None] | None = None
        self._last_time_ms = 0

    # --- lifecycle ----------------------------------------------------------------------

    async def start(self) -> None:
        """Start producing blocks on the running loop."""
        self._task = asyncio.get_running_loop().create_task(self._produce_forever())

    async def stop(self) -> None:
        """Stop producing blocks."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def height(self) -> int:
        """The last committed height."""
        return len(self._blocks)

    async def _produce_forever(self) -> None:
        while True:
            await asyncio.sleep(self.block_interval_ms / 1000)
            if self._mempool or self.empty_blocks:
                self.produce_block()

    # --- NodeServices ---------------------------------------------------------------------

    async def submit_tx(self, tx: bytes) -> SubmitResult:
        try:
            decoded = decode_tx(tx)
        except DecodeError as error:
            return SubmitResult(b"", type(error).code, str(error))
        try:
            self._admit(decoded)
        except ChainmallError as error:
            return SubmitResult(decoded.tx_id, type(error).code, str(error))
        return SubmitResult(decoded.tx_id, TX_OK)

    async def submit_tx_wait(self, tx: bytes, timeout_s: float) -> WaitResult:
        try:
            tx_id = decode_tx(tx).tx_id
        except DecodeError:
            tx_id = b""
        feed = self.subscribe_tx(tx_id) if tx_id else None
        try:
            submitted = await self.submit_tx(tx)
            if submitted.code != TX_OK or feed is None:
                return WaitResult(submitted, TxInfo(submitted.tx_id, TxState.UNKNOWN))
            try:
                info = await asyncio.wait_for(feed.__anext__(), timeout_s)
            except TimeoutError:
                info = await self.tx_status(tx_id)
            return WaitResult(submitted, info)
        finally:
            if feed is not None:
                await feed.aclose()

    async def submit_txs(self, txs: Sequence[bytes]) -> list[SubmitResult]:
        return [await self.submit_tx(tx) for tx in txs]

    async def wait_txs(self, tx_ids: Sequence[bytes], timeout_s: float) -> list[TxInfo]:
        return list(await asyncio.gather(*(self._wait(tx_id, timeout_s) for tx_id in tx_ids)))

    async def _wait(self, tx_id: bytes, timeout_s: float) -> TxInfo:
        feed = self.subscribe_tx(tx_id)
        try:
            return await asyncio.wait_for(feed.__anext__(), timeout_s)
        except (TimeoutError, StopAsyncIteration):
            return await self.tx_status(tx_id)
        finally:
            await feed.aclose()

    async def tx_status(self, tx_id: bytes) -> TxInfo:
        if tx_id in self._final:
            return self._final[tx_id]
        pending = self._mempool.get(tx_id)
        if pending is not None:
            return TxInfo(tx_id, TxState.PENDING, tx=pending.encode())
        return TxInfo(tx_id, TxState.UNKNOWN)

    async def block(self, height: int) -> BlockInfo:
        if not 1 <= height <= self.height:
            raise NotFound(f"no block at height {height} (tip {self.height})")
        return self._blocks[height - 1]

    async def block_by_hash(self, block_hash: bytes) -> BlockInfo:
        height = self._heights_by_hash.get(block_hash)
        if height is None:
            raise NotFound(f"no block with hash {block_hash.hex()}")
        return self._blocks[height - 1]

    async def account(self, address: bytes, height: int = 0, prove: bool = False) -> AccountInfo:
        height = self._read_height(height)
        key = account_key(address)
        value = self._value_at(key, height)
        balance, nonce = unpack_account(value) if value is not None else (0, 0)
        proof = self._prove(key, height) if prove else b""
        return AccountInfo(address, balance, nonce, value is not None, height,
                           self._roots[height], proof)

    async def status(self) -> NodeStatus:
        last = self._blocks[-1].block if self._blocks else None
        return NodeStatus(
            chain_id=self.chain_id,
            height=self.height,
            app_hash=self._roots[-1],
            block_hash=last.hash() if last else self.genesis_hash,
            block_time_ms=last.header.timestamp_ms if last else 0,
            mempool_txs=len(self._mempool),
            mempool_bytes=sum(len(tx.encode()) for tx in self._mempool.values()),
            version=FAKE_VERSION,
            validator=self.validator.public_key,
        )

    async def query(self, request: QueryRequest) -> QueryResult:
        try:
            return self._query(request)
        except ChainmallError as error:
            return QueryResult(error.code, str(error))

    def _query(self, request: QueryRequest) -> QueryResult:
        if request.height > self.height:
            raise QueryError(f"height {request.height} is above the tip {self.height}")
        height = request.height or self.height
        data = request.data
        if request.path == "/tx":
            info = self._final.get(data)
            value = None
            if info is not None and info.height <= height:
                value = struct.pack(">QIH", info.height, info.index, info.code)
            return QueryResult(0, "" if value else "not found", height, b"",
                               (ProvenEntry(data, value),))
        if request.path == "/block":
            if len(data) != 8:
                raise QueryError("/block needs a u64 height")
            (wanted,) = struct.unpack(">Q", data)
            if not 1 <= wanted <= height:
                raise QueryError(f"no block at height {wanted}")
            return QueryResult(0, "", height, b"", (ProvenEntry(
                data, self._blocks[wanted - 1].block.encode()),))
        if request.path == "/account":
            if len(data) != ADDRESS_BYTES:
                raise QueryError(f"/account needs a {ADDRESS_BYTES}-byte address")
            data = account_key(data)
        elif request.path != "/state" or not data:
            raise QueryError(f"unknown query path {request.path!r} or no key")
        proof = self._prove(data, height) if request.prove else b""
        return QueryResult(0, "", height, self._roots[height],
                           (ProvenEntry(data, self._value_at(data, height), proof),))

    def subscribe_blocks(self) -> AsyncIterator[BlockInfo]:
        return _Feed(self._block_feeds)

    def subscribe_tx(self, tx_id: bytes) -> AsyncIterator[TxInfo]:
        feeds = self._tx_feeds.setdefault(tx_id, set())
        feed = _Feed(feeds, 1, lambda: _drop_if_empty(self._tx_feeds, tx_id))
        if tx_id in self._final:
            feed.put(self._final[tx_id])
        return feed

    def subscribe_events(self, address: bytes) -> AsyncIterator[AddressEvent]:
        feeds = self._event_feeds.setdefault(address, set())
        return _Feed(feeds, None, lambda: _drop_if_empty(self._event_feeds, address))

    @property
    def subscriber_count(self) -> int:
        """Open subscriptions of every kind (tests check that closing frees them)."""
        return (len(self._block_feeds) + sum(map(len, self._tx_feeds.values()))
                + sum(map(len, self._event_feeds.values())))

    # --- admission and execution --------------------------------------------------------------

    def _admit(self, tx: Tx) -> None:
        if tx.chain_id != self.chain_id:
            raise WrongChain(f"tx is for chain {tx.chain_id!r}, this is {self.chain_id!r}")
        if self.height + 1 > tx.expiry_height:
            raise TxExpired(f"tx expired at height {tx.expiry_height}")
        if not tx.verify_signature():
            raise BadSignature("signature does not verify")
        if tx.tx_id in self._mempool or tx.tx_id in self._final:
            raise NonceMismatch("tx already seen (a replay)")
        raw = self._state.get(account_key(_address_of(tx.sender)))
        if raw is None:
            raise UnknownSender("the sender has no account")
        balance, nonce = unpack_account(raw)
        expected = self._next_nonce.get(tx.sender, nonce)
        if tx.nonce != expected:
            raise NonceMismatch(f"nonce {tx.nonce}, expected {expected}")
        if tx.fee < self.fee_min:
            raise FeeTooLow(f"fee {tx.fee} is below {self.fee_min}")
        if balance < tx.fee:
            raise InsufficientFee(f"balance {balance} cannot pay the fee {tx.fee}")
        self._mempool[tx.tx_id] = tx
        self._next_nonce[tx.sender] = expected + 1

    def produce_block(self) -> BlockInfo:
        """Execute the mempool into the next block and commit it (also without txs)."""
        height = self.height + 1
        candidates = [tx for tx in self._mempool.values() if tx.expiry_height >= height]
        self._mempool.clear()
        self._next_nonce.clear()
        changes: dict[bytes, bytes] = {}
        txs: list[Tx] = []
        results: list[tuple[int, str, tuple[Event, ...]]] = []
        for tx in candidates:
            result = self._execute(tx, changes)
            if result is not None:
                txs.append(tx)
                results.append(result)
        tree = StateTree(self._nodes, self._roots[-1])
        self._commit_state(height, tree, changes)
        prev_hash = self._blocks[-1].block.hash() if self._blocks else self.genesis_hash
        self._last_time_ms = max(self._last_time_ms, time.time_ns() // 1_000_000)
        unsigned = make_block(self.chain_id, height, prev_hash, self._last_time_ms,
                              self.validator.public_key, txs, self._roots[-1],
                              self.validator_set_hash)
        block_hash = unsigned.hash()
        signature = self.validator.sign(commit_sign_bytes(self.chain_id, height, 0, block_hash))
        block = Block(unsigned.header, unsigned.txs,
                      CommitCert(height, 0, block_hash, (CommitSig(0, signature),)))
        info = BlockInfo(block, tuple(code for code, _, _ in results))
        self._blocks.append(info)
        self._heights_by_hash[block_hash] = height
        for index, (tx, (code, log, events)) in enumerate(zip(txs, results, strict=True)):
            final = TxInfo(tx.tx_id, TxState.FINAL, height, index, code, log, events, tx.encode())
            self._final[tx.tx_id] = final
            for feed in list(self._tx_feeds.pop(tx.tx_id, ())):
                feed.put(final)
            self._publish_events(final)
        for feed in list(self._block_feeds):
            feed.put(info)
        return info

    def _execute(self, tx: Tx, changes: dict[bytes, bytes]
                 ) -> tuple[int, str, tuple[Event, ...]] | None:
        """Run one tx over `changes`: its receipt, or None when it cannot pay (not recorded)."""
        sender = _address_of(tx.sender)
        state = _Overlay(self._state, changes)
        raw = state.get(account_key(sender))
        if raw is None:
            return None
        balance, nonce = unpack_account(raw)
        if nonce != tx.nonce or balance < tx.fee:
            return None
        state.set(account_key(sender), pack_account(balance - tx.fee, nonce + 1))
        pool = decode_fee_pool(state.get(FEE_POOL_KEY) or encode_fee_pool(0))
        state.set(FEE_POOL_KEY, encode_fee_pool(pool + tx.fee))
        sender_text = encode_address(sender)
        events = [Event("tx", (("sender", sender_text), ("fee", str(tx.fee))))]
        if tx.tx_type != TX_TYPE_TRANSFER:
            error: ChainmallError = UnknownTxType(f"no handler for tx type {tx.tx_type}")
            return error.code, str(error), tuple(events)
        scratch = dict(changes)
        try:
            apply_transfer(_Overlay(self._state, scratch), sender, tx.payload)
        except ChainmallError as error:  # InsufficientBalance, MalformedPayload, overflow
            return error.code, str(error), tuple(events)
        changes.update(scratch)
        recipient, amount = decode_transfer(tx.payload)
        events.append(Event("transfer", (("sender", sender_text),
                                         ("recipient", encode_address(recipient)),
                                         ("amount", str(amount)))))
        return TX_OK, "", tuple(events)

    def _publish_events(self, final: TxInfo) -> None:
        for event in final.events:
            named = {value for _, value in event.attributes}
            for text in sorted(named):
                if not text.startswith("cm1"):
                    continue
                try:
                    address = decode_address(text)
                except InvalidInput:
                    continue
                for feed in list(self._event_feeds.get(address, ())):
                    feed.put(AddressEvent(final.height, final.tx_id, final.index, event))

    # --- state and proofs --------------------------------------------------------------------

    def _commit_state(self, height: int, tree: StateTree, changes: Mapping[bytes, bytes]) -> None:
        update = tree.apply(dict(changes))
        self._nodes.put_nodes(update.new_nodes)
        self._roots.append(update.root)
        for key, value in changes.items():
            self._state[key] = value
            self._history.setdefault(key, []).append((height, value))

    def _read_height(self, height: int) -> int:
        if height == 0:
            return self.height
        if height > self.height:
            raise NotFound(f"height {height} is above the tip {self.height}")
        return height

    def _value_at(self, key: bytes, height: int) -> bytes | None:
        versions = self._history.get(key)
        if not versions:
            return None
        position = bisect.bisect_right(versions, height, key=lambda item: item[0])
        return versions[position - 1][1] if position else None

    def _prove(self, key: bytes, height: int) -> bytes:
        return StateTree(self._nodes, self._roots[height]).prove(key).encode()


def _drop_if_empty(feeds: dict[bytes, set[_Feed]], key: bytes) -> None:
    if not feeds.get(key, True):
        del feeds[key]


class _Overlay:
    """State reads through `changes` to the committed state; writes into `changes`."""

    def __init__(self, base: Mapping[bytes, bytes], changes: dict[bytes, bytes]) -> None:
        self._base = base
        self._changes = changes

    def get(self, key: bytes) -> bytes | None:
        if key in self._changes:
            return self._changes[key]
        return self._base.get(key)

    def set(self, key: bytes, value: bytes) -> None:
        self._changes[key] = value


def _address_of(public_key: bytes) -> bytes:
    return address_from_public_key(public_key)


# --- a fake node process for tests -------------------------------------------------------


def _parse_listen(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host.strip("[]"), int(port)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chainmall.core.rpc.testing",
                                     description="Serve a FakeNode over the RPC server.")
    parser.add_argument("--tcp", help="HOST:PORT (port 0: any free port)")
    parser.add_argument("--unix", help="socket path")
    parser.add_argument("--http", help="HOST:PORT")
    parser.add_argument("--token", default="")
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="uvloop")
    parser.add_argument("--chain-id", default="test-chain")
    parser.add_argument("--block-ms", type=int, default=50)
    parser.add_argument("--balance", action="append", default=[], metavar="ADDRESS=AMOUNT")
    parser.add_argument("--limit", action="append", default=[], metavar="NAME=VALUE",
                        help="an RpcLimits field")
    parser.add_argument("--tracemalloc", action="store_true")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace) -> None:
    from .server import RpcServer, raise_open_files_limit

    balances = {}
    for item in args.balance:
        address, _, amount = item.partition("=")
        balances[decode_address(address)] = int(amount)
    limits = RpcLimits.from_mapping(
        {name: int(value) for name, _, value in (item.partition("=") for item in args.limit)})
    config = RpcConfig(tcp=_parse_listen(args.tcp) if args.tcp else None, unix=args.unix,
                       http=_parse_listen(args.http) if args.http else None,
                       token=args.token, limits=limits)
    raise_open_files_limit(limits.connections_max + 64)
    node = FakeNode(args.chain_id, balances, args.block_ms)
    server = RpcServer(node, config)

    async def debug_stats(call: Any) -> Any:
        stats: dict[str, Any] = {"server": server.stats(), "tasks": len(asyncio.all_tasks()),
                                 "rss_bytes": _rss_bytes(), "height": node.height}
        if tracemalloc.is_tracing():
            stats["traced_bytes"] = tracemalloc.get_traced_memory()[0]
        return stats

    server.methods.add(Method("debug_stats", debug_stats, (), "test only: server counters"))
    await node.start()
    await server.start()
    print(json.dumps({"pid": os.getpid(), **server.addresses}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop()
    await node.stop()


def _rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main(argv: list[str] | None = None) -> None:
    """Run a fake node until SIGINT/SIGTERM."""
    args = _parse_args(argv)
    if args.tracemalloc:
        tracemalloc.start()
    if args.loop == "uvloop":
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    else:
        runner = asyncio.Runner()
    with runner:
        runner.run(_serve(args))
    sys.exit(0)


if __name__ == "__main__":
    main()
