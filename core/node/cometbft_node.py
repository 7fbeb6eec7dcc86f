"""The node with CometBFT as its engine: submits forwarded, finality seen from the app.

`CometNode` offers the same surface as the in-process `Node` (submit,
submit-and-wait, tx status, blocks, accounts, queries, subscriptions), so the
node's RPC adapter (`services.NodeRpcServices`) serves it unchanged
(docs/cometbft.md section 6). The application runs in this process behind
the ABCI server; CometBFT orders the txs.

* **Submit**: refused up front, with a code, when it would overrun what the
  node takes: an admission rate (a token bucket, COMETBFT_SUBMIT_RATE_PER_S,
  burst COMETBFT_SUBMIT_BURST_MAX) and a cap on this node's txs in flight
  (COMETBFT_PENDING_TXS_MAX, below CometBFT's own mempool size, so CometBFT
  never has to drop one it acknowledged). Then the application's CheckTx
  runs in process (the same verdict CometBFT's mempool would give; the
  submits that arrive together are checked in one call, one kernel batch),
  and an admitted tx is forwarded to CometBFT (`broadcast_tx_async`; the txs queued
  together go in batch envelopes, one CometBFT tx each: `abci/envelope.py`).
* **Final**: the application tells `CommitWatcher` when a block is durably
  committed; its recorded txs are final (with their code, log and events),
  those executed but not recorded are dropped with their code.
* **Submit and wait** keeps a tx alive: CometBFT may drop a tx it
  acknowledged (a full mempool, a crash before gossip), so a pending tx not
  final after COMETBFT_RESUBMIT_MS is forwarded again, the same bytes
  (idempotent: one tx id, one nonce), until it is final, its nonce is used by
  another tx (then it is dropped, NonceMismatch), or the wait ends.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import json
import logging
import os
import time
import tomllib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from ..abci.app import Application
from ..abci.envelope import encode_envelope
from ..abci.server import AbciServer
from ..abci.types import (
    BlockRequest,
    CheckTxKind,
    CheckTxResult,
    CommitResult,
    FinalizeBlockResult,
)
from ..address import address_from_public_key
from ..block import Block
from ..constants import (
    ADMISSION_BATCH_TXS_MAX,
    COMETBFT_FORWARD_BATCH_MAX,
    COMETBFT_PENDING_TXS_MAX,
    COMETBFT_RESUBMIT_MS,
    COMETBFT_SUBMIT_BURST_MAX,
    COMETBFT_SUBMIT_RATE_PER_S,
    ENVELOPE_TXS_MAX,
    LIGHT_REFRESH_MS,
)
from ..errors import (
    TX_OK,
    DecodeError,
    InvalidConfig,
    MempoolFull,
    NodeStopping,
    NonceMismatch,
    RateLimited,
)
from ..state.accounts import account_key, unpack_account
from ..tx import decode_tx
from .admission import Admitted
from .config import Config
from .finality import (
    CommittedBlock,
    Finality,
    TxState,
    TxStatus,
)
from .page_cometbft import LightClientAnchors, LightClientRefresher
from .reads import LedgerReads, stored_block

log = logging.getLogger("chainmall.node.cometbft")
T = TypeVar("T")
_RESUBMIT_CHECK_S = 0.25
# CHAINMALL_FAILPOINT=node.forward.drop@N: the first N txs this node forwards are lost on
# the way to CometBFT (tests of the resubmission).
FORWARD_DROP_FAILPOINT = "node.forward.drop@"


def forwarded_txs(wires: Sequence[bytes]) -> list[bytes]:
    """What goes to CometBFT for `wires`: one tx alone as it is, several in batch envelopes
    of up to ENVELOPE_TXS_MAX (CometBFT's cost is per tx it handles, whatever its size;
    the application takes envelopes apart, docs/cometbft.md section 6)."""
    if len(wires) == 1:
        return [bytes(wires[0])]
    return [encode_envelope(wires[start:start + ENVELOPE_TXS_MAX])
            for start in range(0, len(wires), ENVELOPE_TXS_MAX)]


class CommitWatcher:
    """The application as the ABCI server serves it, telling listeners about every block
    once it is durably committed (called on the application's thread, or on the state
    machine's writer thread when the application defers its commits:
    `Application.defer_commits`)."""

    def __init__(self, app: Application) -> None:
        self.app = app
        self._finalized: tuple[BlockRequest, FinalizeBlockResult] | None = None
        self.listeners: list[Callable[[CommittedBlock, BlockRequest, FinalizeBlockResult],
                                      None]] = []

    def __getattr__(self, name: str) -> Any:  # every other ABCI call goes straight through
        return getattr(self.app, name)

    def check_tx(self, tx: bytes, kind: CheckTxKind = CheckTxKind.NEW) -> CheckTxResult:
        return self.app.check_tx(tx, kind)

    def check_txs(self, txs: Sequence[bytes],
                  kind: CheckTxKind = CheckTxKind.NEW) -> list[CheckTxResult]:
        return self.app.check_txs(txs, kind)

    def finalize_block(self, request: BlockRequest) -> FinalizeBlockResult:
        self._finalized = None
        result = self.app.finalize_block(request)
        self._finalized = (request, result)
        return result

    def commit(self) -> CommitResult:
        finalized, self._finalized = self._finalized, None
        if finalized is None or not self.listeners:
            return self.app.commit()
        request, result = finalized

        def durable(kept: tuple[Block, tuple[int, ...]] | None) -> None:
            # the block just written, not read back; on the writer thread when deferred
            block = CommittedBlock(*kept) if kept is not None and \
                kept[0].header.height == request.height else \
                stored_block(self.app.store, request.height)
            assert block is not None
            for listener in self.listeners:
                listener(block, request, result)

        return self.app.commit(durable)


@dataclass(slots=True)
class _Pending:
    """A tx this node admitted and forwarded, not final yet."""

    wire: bytes
    sender: bytes  # 20-byte address
    nonce: int
    sent_s: float


class _TokenBucket:
    def __init__(self, rate_per_s: float, burst: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self.clock = rate_per_s, burst, clock
        self.tokens = float(burst)
        self.at = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True, slots=True)
class CometNodeLimits:
    """Admission limits of a CometBFT-engine node (module docstring)."""

    submit_rate_per_s: float = COMETBFT_SUBMIT_RATE_PER_S
    submit_burst: int = COMETBFT_SUBMIT_BURST_MAX
    pending_txs_max: int = COMETBFT_PENDING_TXS_MAX
    resubmit_ms: int = COMETBFT_RESUBMIT_MS


DEFAULT_LIMITS = CometNodeLimits()


class CometNode(LedgerReads):
    """A node whose blocks CometBFT makes (module docstring); serve it with
    `NodeRpcServices`. `start()` and `stop()` run on the event loop; `watcher` must be
    what the ABCI server serves."""

    def __init__(self, watcher: CommitWatcher, server: AbciServer, cometbft_rpc_url: str,
                 validator: bytes = b"", version: str = "",
                 limits: CometNodeLimits = DEFAULT_LIMITS,
                 forward: Callable[[Sequence[bytes]], Any] | None = None,
                 forward_batch_max: int = COMETBFT_FORWARD_BATCH_MAX) -> None:
        self.watcher = watcher
        self.forward_batch_max = max(1, forward_batch_max)
        self.app = watcher.app
        self.server = server
        self.url = cometbft_rpc_url.rstrip("/")
        self.validator = validator
        self.version = version
        self.limits = limits
        self.finality = Finality()
        self.pending: OrderedDict[bytes, _Pending] = OrderedDict()
        self._bucket = _TokenBucket(limits.submit_rate_per_s, limits.submit_burst)
        self._precheck_queue: list[tuple[bytes, asyncio.Future[CheckTxResult]]] = []
        self._precheck_ready = asyncio.Event()
        self._forward_queue: list[bytes] = []
        self._forward_ready = asyncio.Event()
        self._forward_override = forward  # tests: see what is forwarded, or drop it
        self._session: aiohttp.ClientSession | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = False
        self.forwarded = 0
        self.resubmitted = 0
        text = os.environ.get("CHAINMALL_FAILPOINT", "")
        self._drop_left = int(text[len(FORWARD_DROP_FAILPOINT):]) \
            if text.startswith(FORWARD_DROP_FAILPOINT) else 0

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.watcher.listeners.append(self._from_app_thread)
        self._tasks = [self._loop.create_task(self._prechecker()),
                       self._loop.create_task(self._forwarder()),
                       self._loop.create_task(self._resubmitter())]

    async def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        with contextlib.suppress(ValueError):
            self.watcher.listeners.remove(self._from_app_thread)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        stopping = CheckTxResult(NodeStopping.code, "the node is stopping")
        for _, waiting in self._precheck_queue:
            if not waiting.done():
                waiting.set_result(stopping)
        self._precheck_queue.clear()
        self.finality.close()
        if self._session is not None:
            await self._session.close()

    # --- blocks ----------------------------------------------------------------------------

    def _from_app_thread(self, block: CommittedBlock, request: BlockRequest,
                         result: FinalizeBlockResult) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_block, block, result)

    def _on_block(self, block: CommittedBlock, result: FinalizeBlockResult) -> None:
        height = block.block.header.height
        results = result.tx_results
        tx_ids = [tx.tx_id for tx in block.block.txs]
        pending = self.pending
        if [r.tx_id for r in results] == tx_ids:  # the usual block: every tx recorded, in order
            final = TxState.FINAL
            finals = [TxStatus(r.tx_id, final, height, index, r.code, r.log, r.events)
                      for index, r in enumerate(results)]
            if pending:
                for tx_id in tx_ids:
                    pending.pop(tx_id, None)
            self.finality.committed(block, finals)
            return
        index_of = {tx_id: index for index, tx_id in enumerate(tx_ids)}
        finals, dropped = [], []
        for tx_result in results:
            tx_id = tx_result.tx_id
            index = index_of.get(tx_id)
            if index is not None:
                finals.append(TxStatus(tx_id, TxState.FINAL, height, index, tx_result.code,
                                       tx_result.log, tx_result.events))
            elif tx_id and tx_id in pending:  # executed, not recorded: gone for good
                dropped.append(TxStatus(tx_id, TxState.UNKNOWN, code=tx_result.code,
                                        log=tx_result.log))
            if tx_id:
                pending.pop(tx_id, None)
        finals.sort(key=lambda status: status.index)
        self.finality.committed(block, finals)
        self.finality.dropped(dropped)

    # --- submits ---------------------------------------------------------------------------

    async def submit(self, wire: bytes) -> Admitted:
        """Admit (limits, then CheckTx) and forward a tx; code 0 admitted, else why not."""
        wire = bytes(wire)
        try:
            tx = decode_tx(wire)
        except DecodeError as exc:
            return Admitted(b"", exc.code, str(exc))
        tx_id = tx.tx_id
        if self._stopped:
            return Admitted(tx_id, NodeStopping.code, "the node is stopping")
        if tx_id in self.pending or (
                (known := self.finality.recent(tx_id)) is not None
                and known.state is TxState.FINAL):
            return Admitted(tx_id, TX_OK, "already admitted")
        if not self._bucket.take():
            return Admitted(tx_id, RateLimited.code, f"over {self.limits.submit_rate_per_s:g} "
                            "submits per second: retry later")
        if (full := self._refused_full(tx_id)) is not None:
            return full
        checked = await self._precheck(wire)
        if checked.code != TX_OK:
            return Admitted(tx_id, checked.code, checked.log)
        if tx_id in self.pending:  # the same tx submitted twice at once
            return Admitted(tx_id, TX_OK, "already admitted")
        if (full := self._refused_full(tx_id)) is not None:  # filled while it was checked
            return full
        self.pending[tx_id] = _Pending(wire, address_from_public_key(tx.sender), tx.nonce,
                                       time.monotonic())
        self._enqueue(wire)
        return Admitted(tx_id, TX_OK, "")

    # `submit_wait`: LedgerReads' (reads.py); the resubmitter keeps the tx alive meanwhile.

    def _refused_full(self, tx_id: bytes) -> Admitted | None:
        if len(self.pending) < self.limits.pending_txs_max:
            return None
        return Admitted(tx_id, MempoolFull.code, f"{len(self.pending)} txs in flight, the "
                        "most this node forwards: retry later")

    async def _precheck(self, wire: bytes) -> CheckTxResult:
        """CheckTx of `wire` before it is forwarded, in the next batch `_prechecker` runs."""
        assert self._loop is not None, "the node is not started"
        answer: asyncio.Future[CheckTxResult] = self._loop.create_future()
        self._precheck_queue.append((wire, answer))
        self._precheck_ready.set()
        return await answer

    def _check_before_forward(self, wires: list[bytes]) -> list[CheckTxResult]:
        # Not arrivals yet: CometBFT's CheckTx of the forwarded txs counts them (app.py).
        return self.app.check_txs(wires, arriving=False)

    async def _prechecker(self) -> None:
        """Check the submits queued together in one call on the application's thread (one
        batch of stateless checks), up to ADMISSION_BATCH_TXS_MAX at a time. Their answers
        are given in one go, so the txs admitted together are queued for forwarding
        before the forwarder runs, and travel together (in batch envelopes)."""
        while True:
            await self._precheck_ready.wait()
            self._precheck_ready.clear()
            while self._precheck_queue:
                batch = self._precheck_queue[:ADMISSION_BATCH_TXS_MAX]
                del self._precheck_queue[:ADMISSION_BATCH_TXS_MAX]
                try:
                    answers = await self.server.call(self._check_before_forward,
                                                     [wire for wire, _ in batch])
                except asyncio.CancelledError:  # stopping: `stop` answers the queued ones
                    self._precheck_queue[:0] = batch
                    raise
                except Exception as exc:
                    for _, waiting in batch:
                        if not waiting.done():
                            waiting.set_exception(exc)
                    continue
                for (_, waiting), answer in zip(batch, answers, strict=True):
                    if not waiting.done():
                        waiting.set_result(answer)

    def _enqueue(self, wire: bytes) -> None:
        self._forward_queue.append(wire)
        self._forward_ready.set()

    async def _forwarder(self) -> None:
        """Forward queued txs to CometBFT in JSON-RPC batches of broadcast_tx_async."""
        while True:
            await self._forward_ready.wait()
            self._forward_ready.clear()
            while self._forward_queue:
                batch = self._forward_queue[:self.forward_batch_max]
                del self._forward_queue[:self.forward_batch_max]
                try:
                    await self._forward(batch)
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    log.warning("forwarding %d txs to CometBFT failed: %s (they are resent)",
                                len(batch), exc)

    async def _forward(self, wires: Sequence[bytes]) -> None:
        if self._drop_left:
            lost = min(self._drop_left, len(wires))
            self._drop_left -= lost
            log.warning("failpoint: %d forwarded txs lost", lost)
            wires = wires[lost:]
            if not wires:
                return
        self.forwarded += len(wires)
        if self._forward_override is not None:
            result = self._forward_override(wires)
            if asyncio.iscoroutine(result):
                await result
            return
        assert self._session is not None
        body = json.dumps([{"jsonrpc": "2.0", "id": i, "method": "broadcast_tx_async",
                            "params": {"tx": base64.b64encode(w).decode()}}
                           for i, w in enumerate(forwarded_txs(wires))])
        async with self._session.post(self.url, data=body,
                                      headers={"Content-Type": "application/json"}) as answer:
            await answer.read()  # a tx CometBFT refuses (e.g. in its cache) is resent later

    async def _resubmitter(self) -> None:
        """Resend what is not final after the resubmit delay; drop what lost its nonce."""
        while True:
            await asyncio.sleep(_RESUBMIT_CHECK_S)  # a periodic sweep, not a wait for a state
            due_s = time.monotonic() - self.limits.resubmit_ms / 1000
            stale = [(tx_id, p) for tx_id, p in self.pending.items() if p.sent_s <= due_s]
            if not stale:
                continue
            nonces = await self.server.call(self._committed_nonces,
                                            sorted({p.sender for _, p in stale}))
            dropped = []
            for tx_id, pending in stale:
                if nonces.get(pending.sender, 0) > pending.nonce:
                    del self.pending[tx_id]
                    dropped.append(TxStatus(tx_id, TxState.UNKNOWN, code=NonceMismatch.code,
                                            log="its nonce was used by another tx"))
                    continue
                pending.sent_s = time.monotonic()
                self.resubmitted += 1
                self._enqueue(pending.wire)
            self.finality.dropped(dropped)

    def _committed_nonces(self, senders: Sequence[bytes]) -> dict[bytes, int]:
        with self.app.store.reader() as view:
            found = {}
            for sender in senders:
                raw = view.get_state(account_key(sender))
                if raw is not None:
                    found[sender] = unpack_account(raw)[1]
            return found

    # --- reads (the others: LedgerReads, reads.py) ----------------------------------------

    async def _read(self, function: Callable[..., T], *args: object) -> T:
        return await self.server.call(function, *args)

    async def read(self, function: Callable[..., T], *args: object) -> T:
        """`function(*args)` in a thread of its own, outside the ABCI calls' lock: the product
        page's reads (core/node/page.py), each in one LMDB read snapshot (which never blocks
        the writer), and a CometBFT item history waits there for header h + 1 to exist."""
        return await asyncio.to_thread(function, *args)

    # --- what the shared reads need (reads.py) -----------------------------------------------

    def _pending_wire(self, tx_id: bytes) -> bytes | None:
        pending = self.pending.get(tx_id)
        return None if pending is None else pending.wire

    def _in_flight(self) -> tuple[int, int]:
        return len(self.pending), sum(len(p.wire) for p in self.pending.values())

    @property
    def validator_key(self) -> bytes:
        return self.validator


class _NodeFrontend:
    """The CometBFT-engine node and its JSON-RPC server, as one supervised front end."""

    def __init__(self, node: CometNode, rpc: Any | None) -> None:
        self.node = node
        self.rpc = rpc

    async def start(self) -> None:
        await self.node.start()
        if self.rpc is not None:
            await self.rpc.start()
            log.info("RPC serving on %s", dict(self.rpc.addresses))

    async def stop(self) -> None:
        if self.rpc is not None:
            await self.rpc.stop()
        await self.node.stop()


class CometNodeServices:
    """The supervisor's `PairServices` for a CometBFT-engine node: each life of the pair
    gets a `CommitWatcher` in front of the application, a `CometNode` over it, and (with
    `rpc`) the JSON-RPC server serving it through `NodeRpcServices` and the product page,
    whose light client's trust (`light_store`) a `LightClientRefresher` keeps fresh."""

    def __init__(self, cometbft_rpc_url: str, *, rpc: Any | None = None,
                 validator: bytes = b"", version: str = "",
                 limits: CometNodeLimits = DEFAULT_LIMITS,
                 forward_batch_max: int = COMETBFT_FORWARD_BATCH_MAX,
                 light_store: Path | None = None, alter_event: bytes | None = None,
                 light_refresh_ms: int = LIGHT_REFRESH_MS) -> None:
        self.cometbft_rpc_url = cometbft_rpc_url
        self.rpc = rpc
        self.light_store = light_store  # the page's light client trust (light_store.py)
        self.alter_event = alter_event  # the page's test-only switch (page.py)
        self.light_refresh_ms = light_refresh_ms
        self.validator = validator
        self.version = version
        self.limits = limits
        self.forward_batch_max = forward_batch_max
        self._watcher: CommitWatcher | None = None
        self.node: CometNode | None = None

    def serve(self, app: Application) -> CommitWatcher:
        self._watcher = CommitWatcher(app)
        return self._watcher

    def frontends(self, app: Application,
                  server: AbciServer) -> list[_NodeFrontend | LightClientRefresher]:
        from ..rpc.server import RpcServer  # the RPC layer sits above the node
        from .services import (
            NodeRpcServices,
            page_files,
            page_methods,
            page_reader_over_cometbft,
        )

        assert self._watcher is not None and self._watcher.app is app
        self.node = CometNode(self._watcher, server, self.cometbft_rpc_url, self.validator,
                              self.version, self.limits, forward_batch_max=self.forward_batch_max)
        if self.rpc is None:
            return [_NodeFrontend(self.node, None)]
        page = page_reader_over_cometbft(app, self.cometbft_rpc_url, self.light_store,
                                         self.alter_event)
        rpc = RpcServer(NodeRpcServices(self.node, page), self.rpc, page_methods(),
                        static_root=page_files())
        assert isinstance(page.anchors, LightClientAnchors)
        return [_NodeFrontend(self.node, rpc),
                LightClientRefresher(page.anchors, self.light_refresh_ms)]


def cometbft_settings(home: Path) -> tuple[str, str, int]:
    """(proxy_app, RPC URL, JSON-RPC batch limit) from a CometBFT home's config.toml."""
    path = home / "config" / "config.toml"
    try:
        settings = tomllib.loads(path.read_text())
        proxy_app = str(settings["proxy_app"])
        laddr = str(settings["rpc"]["laddr"])
        batch_max = int(settings["rpc"]["max_request_batch_size"])
    except FileNotFoundError:
        raise InvalidConfig(f"no CometBFT home at {home}: make one with `chainmall net init`, "
                            f"or `cometbft init --home {home}`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InvalidConfig(f"{path}: {exc}") from None
    if not laddr.startswith("tcp://"):
        raise InvalidConfig(f"{path}: [rpc] laddr {laddr!r}: the node talks to CometBFT over "
                            "tcp://HOST:PORT")
    return proxy_app, "http://" + laddr[len("tcp://"):].replace("0.0.0.0", "127.0.0.1"), \
        batch_max


def run_cometbft_node(data_dir: Path, config: Config, *, version: str, restart: bool,
                      command: str = "chainmall node start --engine cometbft") -> None:
    """`chainmall node start --engine cometbft`: the application (holding the data
    directory's lock) behind the ABCI server, CometBFT from DATA/cometbft as its supervised
    child, this node's JSON-RPC (the `[rpc]` settings) served over it; until SIGINT or
    SIGTERM. SupervisedProcessFailed when the pair failed and was not restarted."""
    from ..abci.cometbft import check_cometbft
    from ..abci.localnet import COMETBFT_DIR, read_validator_key
    from ..abci.supervisor import NodePaths, run_supervised
    from ..osproc import fix_malloc_mmap_threshold
    from .app import GC_THRESHOLDS, open_application
    from .light_store import LIGHT_STORE_FILE
    from .logs import setup_logging
    from .page import alteration_from_env
    from .services import rpc_config

    alter_event = alteration_from_env()  # a test-only switch: refused unless tests enable it
    setup_logging(config.log.level, config.log.format)
    home = data_dir / COMETBFT_DIR
    proxy_app, rpc_url, batch_max = cometbft_settings(home)
    binary, _ = check_cometbft()
    settings = rpc_config(config)
    settings.check()
    limits = CometNodeLimits(config.cometbft.submit_rate_per_s, config.cometbft.submit_burst,
                             config.cometbft.pending_txs_max, config.cometbft.resubmit_ms)
    services = CometNodeServices(rpc_url, rpc=settings, validator=read_validator_key(home),
                                 version=version, limits=limits,
                                 forward_batch_max=min(COMETBFT_FORWARD_BATCH_MAX, batch_max),
                                 light_store=data_dir / LIGHT_STORE_FILE, alter_event=alter_event)

    def open_app() -> Application:
        app = open_application(data_dir, version, config.pruning.retain_heights, command)
        gc.collect()
        gc.freeze()  # what the app holds once open: never scanned again (as the node does)
        return app

    # The in-process node's collector tuning (core/node/app.py: GC_THRESHOLDS): the app's
    # CPU per tx under CometBFT fell about 13 % (212-217 -> 186-188 us per node at 600
    # tx/s, interleaved rounds, bench/README.md).
    gc.set_threshold(*GC_THRESHOLDS)
    fix_malloc_mmap_threshold()  # as the in-process node (core/node/app.py: tune_interpreter)
    run_supervised(NodePaths(data_dir, home, proxy_app), binary, restart=restart,
                   version=version, services=services, open_app=open_app,
                   block_writer_process=config.cometbft.block_writer == "process")
