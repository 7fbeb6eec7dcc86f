"""The node: the ledger behind an event loop, serving submits, finality, reads and subscriptions.

`Node` owns the mempool, the admission batcher, the block producer (the
in-process single-validator engine) and finality. It is the API every front
end (the JSON-RPC server, tests, the demo) uses; it never imports one. Work
is split by thread so the event loop stays responsive at full load:

* the event loop: request bookkeeping, mempool rules, finality, subscriptions;
* one admission thread: batch stateless checks (GIL released in the kernel);
* one block thread: FinalizeBlock, signing, Commit; the recheck after it needs
  no reads (the block's state changes say what moved);
* the block's durable write (one LMDB write txn): on the block thread
  (`node.block_writer = inline`), or on the state machine's writer thread or
  process while the next block is reaped and executed (`thread`, `process`).
  The pool drops the block's txs and is rechecked as soon as Commit returns;
  its txs are told final, its subscribers and block listeners told, and
  `status` moves to it only once it is written;
* read threads: block, account, proof and query reads (LMDB read snapshots);
  with `node.read_processes` N > 0, those reads and the product page's go to
  N reader processes instead (read_pool.py: each opens the ledger read-only
  and has its own GIL), the read threads answering only while none is ready.

Lifecycle: `start()`, then `stop()`: no new submits, the block in hand is
committed and written and its txs reported final, waiters and subscriptions
are told the node stops, the writer stops; the owner then closes the store.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import operator
import struct
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from ..abci.app import Application
from ..abci.types import QueryRequest, QueryResult
from ..keys import KeyPair
from ..osproc import name_os_thread as _name_os_thread
from .admission import Admission, Admitted
from .config import Config
from .engine import ProducedBlock, SingleValidatorEngine
from .finality import (
    CommittedBlock,
    Finality,
    TxState,
    TxStatus,
)
from .mempool import Dropped, Mempool, MempoolLimits, PendingTx
from .page import PageReader
from .producer import Producer, wall_clock_ms
from .read_pool import PAGE_METHODS, U64_LIMIT, ReadPool, ReadServer, encode_query
from .reads import LedgerReads

log = logging.getLogger("chainmall.node")
T = TypeVar("T")
_U64 = struct.Struct(">Q")
READ_THREADS = 2
# A committed block's check that its results are its reaped txs, in C loops (once per tx).
_PENDING_TX_ID = operator.attrgetter("tx.tx_id")
_TX_ID = operator.attrgetter("tx_id")
_WIRE = operator.attrgetter("wire")
_IS_NONE = functools.partial(operator.is_, None)  # `is None` as a C call (not `==`)




class Node(LedgerReads):
    """The single-validator node over an `Application` (see the module docstring); its reads
    and subscriptions are `LedgerReads`'."""

    def __init__(self, app: Application, validator: KeyPair, config: Config,
                 version: str = "", clock_ms: Callable[[], int] = wall_clock_ms) -> None:
        self.app = app
        self.config = config
        self.version = version
        self.engine = SingleValidatorEngine(app, validator)
        pool = config.mempool
        self.mempool = Mempool(MempoolLimits(pool.txs_max, pool.bytes_max, pool.sender_txs_max),
                               app.genesis.fee_min)
        self.mempool.height = app.info().last_block_height
        self.finality = Finality()
        self._clock_ms = clock_ms
        self._admission: Admission | None = None
        self._producer: Producer | None = None
        self._producer_task: asyncio.Task[None] | None = None
        self._executors: list[ThreadPoolExecutor] = []
        self._read_executor: ThreadPoolExecutor | None = None
        self._read_pool: ReadPool | None = None
        self._block_listeners: list[Callable[[ProducedBlock], None]] = []
        self._stopped = False
        # The txs of committed blocks not written yet (height -> tx id -> wire): out of the
        # pool, not final, so still pending for `tx_status`.
        self._unwritten_txs: dict[int, dict[bytes, bytes]] = {}

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start admission and block production on the running event loop."""
        block_thread = ThreadPoolExecutor(1, "cm-block", _name_os_thread, ("cm-block",))
        admission_thread = ThreadPoolExecutor(1, "cm-admission", _name_os_thread,
                                              ("cm-admission",))
        self._read_executor = ThreadPoolExecutor(READ_THREADS, "cm-read", _name_os_thread,
                                                 ("cm-read",))
        self._executors = [block_thread, admission_thread, self._read_executor]
        node = self.config.node
        if node.read_processes > 0:  # the readers start at the first read (read_pool.py)
            server = ReadServer(self.app)
            self._read_pool = ReadPool(self.app, node.read_processes,
                                       functools.partial(self._read, server.answer))
        if node.block_writer != "inline":  # the next block executes while one is written
            self.app.queries_settle = False  # reads answer the last block written, at once
            await asyncio.get_running_loop().run_in_executor(
                None, functools.partial(self.app.defer_commits,
                                        process=node.block_writer == "process"))
        self._producer = Producer(self.engine, self.mempool, block_thread,
                                  node.block_interval_ms, node.block_txs_max, node.empty_blocks,
                                  self._on_block, self._clock_ms, on_written=self._on_written)
        self._admission = Admission(self.app.machine, self.mempool, admission_thread,
                                    self.config.mempool.admission_window_ms,
                                    self._producer.wake, self._on_dropped,
                                    self.config.mempool.admission_verify_threads)
        self._admission.start()
        self._producer_task = self._producer.start()
        log.info("node started", extra={"fields": {
            "chain_id": self.app.genesis.chain_id, "height": self.app.info().last_block_height,
            "validator": self.engine.public_key.hex(), "block_writer": node.block_writer}})

    @property
    def producer_task(self) -> asyncio.Task[None]:
        """The block producer's task: it ends only on `stop` or when a block fails."""
        assert self._producer_task is not None, "the node was not started"
        return self._producer_task

    def add_block_listener(self, listener: Callable[[ProducedBlock], None]) -> None:
        """Call `listener(produced)` on the event loop after each committed block, once it
        is written."""
        self._block_listeners.append(listener)

    async def stop(self) -> None:
        """Stop taking submits, commit and write the block in hand, end waiters and
        subscriptions, stop the writer and shut the worker threads down (idempotent)."""
        if self._stopped:
            return
        self._stopped = True
        if self._admission is not None:
            await self._admission.stop()
        if self._producer is not None:
            await self._producer.stop()
        self.finality.close()
        if self._read_pool is not None:
            await self._read_pool.close()
        loop = asyncio.get_running_loop()
        try:  # the write in hand finished (the producer waited for it) and the writer ended
            await loop.run_in_executor(None, self.app.close)
        except Exception as error:  # a failed write: the producer's task ended with it
            log.error("the block writer failed", extra={"fields": {"error": str(error)}})
        for executor in self._executors:
            await loop.run_in_executor(None, executor.shutdown, True)
        log.info("node stopped", extra={"fields": {
            "height": self.app.machine.written_tip()[0].height}})

    # --- blocks ----------------------------------------------------------------------------

    async def _on_block(self, produced: ProducedBlock, reaped: list[PendingTx],
                        read: object = None) -> None:
        """A block was committed (its write may still run): take its txs out of the pool,
        tell the ones it did not record that they are dropped, and recheck the pool against
        the state entries the block changed (`produced.changes`), before the next reap.
        Admission reads the same committed state (`StateMachine.committed_view`)."""
        block = produced.block
        results = produced.result.tx_results
        assert len(results) == len(reaped)
        if len(block.txs) != len(reaped):  # a tx failed admission at execution
            recorded = {tx.tx_id for tx in block.txs}
            self.finality.dropped(
                TxStatus(result.tx_id, TxState.UNKNOWN, code=result.code, log=result.log)
                for result in results if result.tx_id not in recorded)
        self._unwritten_txs[block.header.height] = dict(
            zip(map(_PENDING_TX_ID, reaped), map(_WIRE, reaped), strict=True))
        self.mempool.remove_reaped(reaped)
        # The recheck from what the block changed (no reads): a pending sender's account
        # entry is either among the changes or the same as the one the pool holds.
        self._on_dropped(self.mempool.recheck_changed(block.header.height, produced.changes))

    def _on_written(self, produced: ProducedBlock, reaped: list[PendingTx],
                    write_ms: float) -> None:
        """A block is written (durable, read back as signed): its txs are final; tell
        waiters, subscribers and block listeners (`status` has moved to it already: it reads
        `StateMachine.written_tip`)."""
        block = produced.block
        header = block.header
        height = header.height
        results = produced.result.tx_results
        final = TxState.FINAL
        if len(block.txs) == len(reaped):  # all recorded, in reaped order (the usual case)
            finals = [TxStatus(result.tx_id, final, height, index, result.code, result.log,
                               result.events)
                      for index, result in enumerate(results)]
            assert list(map(_PENDING_TX_ID, reaped)) == list(map(_TX_ID, results))
        else:
            index_of = {tx.tx_id: index for index, tx in enumerate(block.txs)}
            finals = []
            for pending, result in zip(reaped, results, strict=True):
                assert result.tx_id == pending.tx.tx_id
                index = index_of.get(result.tx_id)
                if index is not None:
                    finals.append(TxStatus(result.tx_id, final, height, index, result.code,
                                           result.log, result.events))
            finals.sort(key=lambda status: status.index)
        self._unwritten_txs.pop(height, None)
        self.finality.committed(CommittedBlock(block, produced.receipts), finals)
        log.info("block committed", extra={"fields": {
            "height": height, "txs": len(block.txs), "not_recorded": len(reaped) - len(finals),
            "app_hash": header.state_root.hex(),
            "finalize_ms": round(produced.finalize_ms, 1),
            "commit_ms": round(produced.commit_ms, 1), "write_ms": round(write_ms, 1),
            "mempool_txs": len(self.mempool),
            "block_txs_cap": self._producer.block_txs if self._producer else 0}})
        for listener in self._block_listeners:
            listener(produced)

    def _on_dropped(self, dropped: list[Dropped]) -> None:
        if dropped:
            self.finality.dropped(
                TxStatus(d.pending.tx.tx_id, TxState.UNKNOWN, code=d.code, log=d.log)
                for d in dropped)

    # --- submits ---------------------------------------------------------------------------

    async def submit(self, wire: bytes) -> Admitted:
        """Offer raw tx bytes to the mempool: code 0 admitted, else why not (never raises for
        a bad tx)."""
        if self._admission is None:
            raise RuntimeError("the node was not started")
        return await self._admission.submit(wire)

    async def submit_many(self, wires: Sequence[bytes]) -> list[Admitted]:
        """`submit` of each of `wires`, queued in this order in one step."""
        if self._admission is None:
            raise RuntimeError("the node was not started")
        return await self._admission.submit_many(wires)

    # `submit_wait`: LedgerReads' (reads.py).

    async def wait_many(self, tx_ids: Sequence[bytes], timeout_s: float) -> list[TxStatus]:
        """Wait up to `timeout_s` until each tx is final; the state of each at the end: FINAL,
        UNKNOWN (dropped, with the code), or PENDING (the wait ran out first)."""
        outcomes = await self.finality.wait_many(tx_ids, max(0.0, timeout_s))
        if not any(map(_IS_NONE, outcomes)):  # every outcome known (the usual case)
            return outcomes  # type: ignore[return-value]
        statuses = []
        for tx_id, outcome in zip(tx_ids, outcomes, strict=True):
            if outcome is None:
                pending = self.mempool.get(tx_id)
                outcome = TxStatus(tx_id, TxState.PENDING,
                                   tx=pending.wire if pending is not None else b"")
            statuses.append(outcome)
        return statuses

    # --- reads (the others: LedgerReads, reads.py) ----------------------------------------

    async def _read(self, function: Callable[..., T], *args: object) -> T:
        executor = self._read_executor
        if executor is None or self._stopped:
            return function(*args)
        return await asyncio.get_running_loop().run_in_executor(executor, function, *args)

    async def _read_query(self, request: QueryRequest) -> QueryResult:
        pool = self._read_pool
        if pool is not None:
            frame = encode_query(request)
            if frame is not None:
                return await pool.query(request, frame)
        return await super()._read_query(request)

    async def _read_block(self, height: int, block_hash: bytes | None) -> CommittedBlock | None:
        pool = self._read_pool
        if pool is not None and height < U64_LIMIT:
            return await pool.block(height, block_hash)
        return await super()._read_block(height, block_hash)

    async def read(self, function: Callable[..., T], *args: object) -> T:
        """`function(*args)`, a read of committed state, run in a read thread (the product
        page's reads: core/node/page.py); with reader processes, a `PageReader`'s reads
        over this node's application run there."""
        pool = self._read_pool
        page = getattr(function, "__self__", None)
        if (pool is not None and type(page) is PageReader and page.app is self.app
                and page.anchors is None and function.__name__ in PAGE_METHODS):
            return await pool.page(function.__name__, args,  # type: ignore[no-any-return]
                                   page.alter_event)
        return await self._read(function, *args)

    def read_pool(self) -> ReadPool | None:
        """The reader processes (None: `node.read_processes` is 0)."""
        return self._read_pool

    # --- what the shared reads need (reads.py) -----------------------------------------------

    def _pending_wire(self, tx_id: bytes) -> bytes | None:
        pending = self.mempool.get(tx_id)
        if pending is not None:
            return pending.wire
        for wires in self._unwritten_txs.values():  # a block whose write is in hand
            wire = wires.get(tx_id)
            if wire is not None:
                return wire
        return None

    def _in_flight(self) -> tuple[int, int]:
        return len(self.mempool), self.mempool.bytes_total

    @property
    def validator_key(self) -> bytes:
        return self.engine.public_key

