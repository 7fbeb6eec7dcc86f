"""What both nodes read and stream the same way: tx status, blocks, accounts, queries,
status and subscriptions over the committed ledger and `Finality`.

`LedgerReads` is the shared half of the in-process `Node` (node.py) and the
CometBFT-engine `CometNode` (cometbft_node.py). The engines differ only in
where a tx waits before it is final and how a read is run; each node says
so through four members:

* `_read(function, *args)`: run a read of committed state (the in-process
  node: its read threads; the CometBFT node: the ABCI server's lock); the
  in-process node may serve the two kinds of reads, `_read_query` and
  `_read_block`, from its reader processes instead (read_pool.py);
* `_pending_wire(tx_id)`: the bytes of a tx this node holds, not final yet
  (the mempool, or the txs forwarded to CometBFT), else None;
* `_in_flight()`: how many such txs and their bytes (for `status`);
* `validator_key`: the validator public key this node reports;
* `submit(wire)`: admit a tx (the mempool, or CheckTx and forwarding).

Everything else (the checks of the parameters, the stored tx location, the
block and its receipts from one read snapshot, the account from a proven
query, a tx subscription settled from the store) is here once.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable
from typing import TypeVar

from ..abci.app import Application
from ..abci.types import QueryRequest, QueryResult
from ..address import encode_address
from ..block import decode_block
from ..constants import ADDRESS_BYTES, HASH_BYTES
from ..errors import TX_OK, ChainmallError, InvalidInput, QueryError, error_class
from ..rpc.services import AccountInfo, NodeStatus
from ..state.accounts import unpack_account
from ..state.receipts import decode_receipts
from ..store import Store
from .admission import Admitted
from .finality import AddressEvent, CommittedBlock, Finality, Subscription, TxState, TxStatus

T = TypeVar("T")
_TX_LOCATION = struct.Struct(">QIH")  # /tx query value: height, index, code


class LedgerReads:
    """The reads and subscriptions both nodes share (see the module docstring)."""

    app: Application
    finality: Finality
    version: str

    # --- what each node supplies ----------------------------------------------------------

    async def _read(self, function: Callable[..., T], *args: object) -> T:
        raise NotImplementedError

    async def _read_query(self, request: QueryRequest) -> QueryResult:
        """`app.query(request)`, run as this node runs reads."""
        return await self._read(self.app.query, request)

    async def _read_block(self, height: int, block_hash: bytes | None) -> CommittedBlock | None:
        """`stored_block(store, height, block_hash)`, run as this node runs reads."""
        return await self._read(stored_block, self.app.store, height, block_hash)

    def _pending_wire(self, tx_id: bytes) -> bytes | None:
        raise NotImplementedError

    def _in_flight(self) -> tuple[int, int]:
        raise NotImplementedError

    @property
    def validator_key(self) -> bytes:
        raise NotImplementedError

    async def submit(self, wire: bytes) -> Admitted:
        raise NotImplementedError

    # --- submit and wait ---------------------------------------------------------------------

    async def submit_wait(self, wire: bytes, timeout_s: float) -> tuple[Admitted, TxStatus]:
        """`submit`, then wait up to `timeout_s` for the tx to be final. The status is FINAL,
        PENDING (the wait ran out first), or UNKNOWN (refused or dropped, with the code).
        When the wait runs out, the tx's status is read once more (it may have become
        final meanwhile, or before this node kept it in memory)."""
        admitted = await self.submit(wire)
        if admitted.code != TX_OK:
            return admitted, TxStatus(admitted.tx_id, TxState.UNKNOWN, code=admitted.code,
                                      log=admitted.log)
        outcome = await self.finality.wait(admitted.tx_id, max(0.0, timeout_s))
        if outcome is None:
            stored = await self.tx_status(admitted.tx_id)
            outcome = stored if stored.state is TxState.FINAL else \
                TxStatus(admitted.tx_id, TxState.PENDING, tx=bytes(wire))
        return admitted, outcome

    # --- reads -------------------------------------------------------------------------------

    async def tx_status(self, tx_id: bytes) -> TxStatus:
        """Where tx `tx_id` is: pending, final (with its result), or unknown."""
        if len(tx_id) != HASH_BYTES:
            raise InvalidInput(f"a tx id is {HASH_BYTES} bytes")
        wire = self._pending_wire(tx_id)
        if wire is not None:
            return TxStatus(tx_id, TxState.PENDING, tx=wire)
        recent = self.finality.recent(tx_id)
        if recent is not None:
            return recent
        tx_id = bytes(tx_id)
        result = await self._read_query(QueryRequest("/tx", tx_id))
        raise_for(result)
        if not result.value:
            return TxStatus(tx_id, TxState.UNKNOWN)
        height, index, code = _TX_LOCATION.unpack(result.value)
        return TxStatus(tx_id, TxState.FINAL, height, index, code)

    async def block(self, height: int) -> CommittedBlock | None:
        """The committed block at `height` (>= 1) and its receipts; None above the tip."""
        if type(height) is not int or height < 1:
            raise InvalidInput(f"a block height is an integer >= 1, got {height!r}")
        return await self._read_block(height, None)

    async def block_by_hash(self, block_hash: bytes) -> CommittedBlock | None:
        """The committed block whose header hashes to `block_hash`; None if there is none."""
        if len(block_hash) != HASH_BYTES:
            raise InvalidInput(f"a block hash is {HASH_BYTES} bytes")
        return await self._read_block(0, bytes(block_hash))

    async def account(self, address: bytes, height: int = 0, prove: bool = False) -> AccountInfo:
        """The account of a 20-byte address at `height` (0: the latest committed)."""
        if len(address) != ADDRESS_BYTES:
            raise InvalidInput(f"an address is {ADDRESS_BYTES} bytes")
        result = await self.query(QueryRequest("/account", bytes(address), height, prove))
        raise_for(result)
        raw = result.entries[0].value
        balance, nonce = (0, 0) if raw is None else unpack_account(raw)
        return AccountInfo(bytes(address), balance, nonce, raw is not None, result.height,
                           result.root, result.proof)

    async def query(self, request: QueryRequest) -> QueryResult:
        """An ABCI query (docs/abci.md); errors come back as a non-zero code."""
        return await self._read_query(request)

    def status(self) -> NodeStatus:
        """Height, hashes, block time, txs in flight, version and validator (no I/O): the
        last block written (`StateMachine.written_tip`), not one whose deferred write is in
        hand."""
        tip, time_ms = self.app.machine.written_tip()
        txs, size = self._in_flight()
        return NodeStatus(self.app.genesis.chain_id, tip.height, tip.app_hash, tip.block_hash,
                          time_ms, txs, size, self.version, self.validator_key)

    # --- subscriptions ---------------------------------------------------------------------

    def subscribe_blocks(self) -> Subscription[CommittedBlock]:
        """Every block committed from now on, in height order."""
        return self.finality.subscribe_blocks()

    def subscribe_tx(self, tx_id: bytes) -> Subscription[TxStatus]:
        """One item when tx `tx_id` is final or dropped (at once if it already is)."""
        if len(tx_id) != HASH_BYTES:
            raise InvalidInput(f"a tx id is {HASH_BYTES} bytes")
        subscription = self.finality.subscribe_tx(bytes(tx_id))
        if not subscription.ended and self._pending_wire(tx_id) is None:
            # Possibly final before the node kept it in memory: look in the store.
            asyncio.get_running_loop().create_task(self._settle_from_store(tx_id, subscription))
        return subscription

    async def _settle_from_store(self, tx_id: bytes, subscription: Subscription[TxStatus]) -> None:
        status = await self.tx_status(tx_id)
        if status.state is TxState.FINAL:
            subscription.push(status)
            await subscription.aclose()

    def subscribe_events(self, address: bytes) -> Subscription[AddressEvent]:
        """Events of final txs, from now on, that name the 20-byte `address`."""
        if len(address) != ADDRESS_BYTES:
            raise InvalidInput(f"an address is {ADDRESS_BYTES} bytes")
        return self.finality.subscribe_address(encode_address(bytes(address)))


def stored_block_records(store: Store, height: int,
                         block_hash: bytes | None = None) -> tuple[bytes, bytes] | None:
    """The stored block record at `height` (or, given `block_hash`, the one whose header
    hashes to it) and its encoded receipts, from one read snapshot; None if there is none."""
    with store.reader() as view:
        if block_hash is not None:
            found = view.height_of(block_hash)
            if found is None:
                return None
            height = found
        raw = view.block(height)
        receipts = view.receipts(height)
    return None if raw is None else (raw, receipts or b"")


def stored_block(store: Store, height: int,
                 block_hash: bytes | None = None) -> CommittedBlock | None:
    """The committed block at `height` (or, given `block_hash`, the one whose header hashes
    to it) and its receipts, decoded (`stored_block_records`); None if there is none."""
    records = stored_block_records(store, height, block_hash)
    return None if records is None else committed_block(*records)


def committed_block(raw: bytes, receipts: bytes) -> CommittedBlock:
    """A stored block's bytes and its receipts' as the node's `CommittedBlock`."""
    return CommittedBlock(decode_block(raw), tuple(decode_receipts(receipts)))


def raise_for(result: QueryResult) -> None:
    """Raise the error a non-zero query code stands for."""
    if result.code == TX_OK:
        return
    try:
        cls = error_class(result.code)
    except KeyError:
        cls = QueryError
    if not issubclass(cls, ChainmallError):
        cls = QueryError
    raise cls(result.log)
