"""The block producer: decides when to make a block and hands it to the engine's thread.

A block is made `block_interval_ms` after the previous one began, provided a
tx waits, or at once when a full block's txs are ready; with `empty_blocks`
on, every interval even when none waits. A full block is what `BlockSizer`
says fits in the time target (execution and commit in about
BLOCK_TIME_TARGET_PERCENT of the interval, by what the last blocks cost),
but at least as many txs as were admitted since the previous block was
reaped (so capped blocks never let the pool grow), and never more than
`block_txs_max`: under load, blocks come back to back and a tx waits about
two blocks' time; a backlog left by a slow block drains in capped blocks
instead of one block that holds it all. While idle, the first tx that
arrives after the interval has passed gets a block right away. At most two
blocks are in hand: when a block's commit returns and the next one is due
already, the next one is reaped and handed to the block thread before the
event loop settles the committed one (mempool removal, recheck), so the
block thread does not wait for that. The next block's reap skips the
committed block's txs (still in the pool, marked as in a block), and the
recheck leaves the next block's txs to that block's outcome. A read the
event loop needs from the new committed state can be made in the block thread
right after the commit (`after_commit`), before the next block starts (the
node needs none: its recheck works from the block's state changes).

With a deferred write (`node.block_writer` thread or process) the commit
returns once the write is handed over, and the next block executes while it
runs; `on_block` (the pool's part) runs at once, and `on_written` (finality:
a tx is final only once its block is durable) when the block's `written`
future completes, handed to the event loop by `asyncio.wrap_future` (the
loop's `call_soon_threadsafe`), in height order. A failed write ends the
producer with its error. `stop` waits for the write in hand and its notice.

The producer is woken by admission only when that can change its decision:
a block's worth of txs is ready, or it is idle (past the interval with no
tx); otherwise it sleeps until the interval ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any

from ..abci.block_sizer import BlockSizer
from ..constants import BLOCK_BYTES_MAX, BLOCK_TIME_TARGET_PERCENT
from ..tx import Tx
from .engine import ProducedBlock, SingleValidatorEngine
from .mempool import Mempool, PendingTx

log = logging.getLogger("chainmall.node.producer")


def wall_clock_ms() -> int:
    """Milliseconds since the Unix epoch (the block time source)."""
    return time.time_ns() // 1_000_000


class Producer:
    """The engine's event-loop half: a task that makes blocks until stopped."""

    def __init__(self, engine: SingleValidatorEngine, mempool: Mempool, executor: Executor,
                 interval_ms: int, block_txs_max: int, empty_blocks: bool,
                 on_block: Callable[[ProducedBlock, list[PendingTx], Any], Awaitable[None]],
                 clock_ms: Callable[[], int] = wall_clock_ms,
                 after_commit: Callable[[], Callable[[], Any]] | None = None,
                 on_written: Callable[[ProducedBlock, list[PendingTx], float], None] | None
                 = None) -> None:
        self._engine = engine
        engine.on_block_thread = executor.submit  # a full map's deferred write (engine.py)
        self._mempool = mempool
        self._executor = executor
        self._interval_s = interval_ms / 1000.0
        self.sizer = BlockSizer(block_txs_max, interval_ms * BLOCK_TIME_TARGET_PERCENT / 100)
        self._empty_blocks = empty_blocks
        self._on_block = on_block
        self._clock_ms = clock_ms
        self._after_commit = after_commit
        self._on_written = on_written
        self._writes: list[asyncio.Future[float]] = []  # blocks not told written yet
        self._failure: BaseException | None = None  # a write's (or its notice's) failure
        self._wake = asyncio.Event()
        self._idle = False  # past the interval with nothing to reap: any tx wakes it
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._admitted_at_reap = mempool.admitted_total
        self._arrived = 0  # txs admitted between the last two reaps
        self.blocks = 0  # blocks made by this producer

    def start(self) -> asyncio.Task[None]:
        """Start the producing task; it ends when `stop` is called or a block fails."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name="producer")
        return self._task

    @property
    def block_txs(self) -> int:
        """The txs the next block may take: the sizer's cap, or the txs admitted while the
        last block was made if more (at most `block_txs_max`)."""
        sizer = self.sizer
        return min(sizer.txs_max, max(sizer.cap, self._arrived))

    def wake(self) -> None:
        """Txs arrived: re-evaluate whether a block is due (a no-op unless it might be)."""
        if self._idle or self._mempool.unreaped >= self.block_txs:
            self._wake.set()

    async def stop(self) -> None:
        """Make no new block; wait for the one in hand to be committed and handled."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _due(self, started: float) -> bool:
        """Wait until a block is due (True) or the producer stops (False)."""
        loop = asyncio.get_running_loop()
        deadline = started + self._interval_s
        while not self._stopping:
            self._raise_failure()
            waiting = self._mempool.unreaped
            now = loop.time()
            if waiting >= self.block_txs:
                return True
            if now >= deadline and (waiting or self._empty_blocks):
                return True
            self._wake.clear()
            timeout = deadline - now if now < deadline else None
            self._idle = timeout is None
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
            finally:
                self._idle = False
        return False

    def _due_now(self, started: float) -> bool:
        """Whether a block is due at once (no wait): a full block waits, or the interval
        since `started` has passed and a tx waits."""
        if self._stopping:
            return False
        waiting = self._mempool.unreaped
        return waiting >= self.block_txs or (
            waiting > 0 and asyncio.get_running_loop().time() >= started + self._interval_s)

    def _begin(self) -> tuple[list[PendingTx], asyncio.Future[tuple[ProducedBlock, Any]]] | None:
        """Reap the next block and hand it to the block thread; None if nothing can be
        reaped (and empty blocks are off)."""
        reaped = self._mempool.reap(self.block_txs, BLOCK_BYTES_MAX)
        admitted = self._mempool.admitted_total
        self._arrived, self._admitted_at_reap = admitted - self._admitted_at_reap, admitted
        if not reaped and not self._empty_blocks:
            return None
        wires = [pending.wire for pending in reaped]
        decoded = [pending.tx for pending in reaped]
        after = self._after_commit() if self._after_commit is not None else None
        made = asyncio.get_running_loop().run_in_executor(
            self._executor, _make_block, self._engine, wires, decoded, self._clock_ms(), after)
        return reaped, made

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    def _track(self, produced: ProducedBlock, reaped: list[PendingTx]) -> None:
        """Tell `on_written` once the block is durable (on the event loop, in order)."""
        written = asyncio.wrap_future(produced.written)
        self._writes.append(written)
        written.add_done_callback(functools.partial(self._written, produced, reaped))

    def _written(self, produced: ProducedBlock, reaped: list[PendingTx],
                 written: asyncio.Future[float]) -> None:
        self._writes.remove(written)
        if self._failure is not None:
            return  # a failed write before this one: nothing after it is told final
        try:
            write_ms = written.result()
            if self._on_written is not None:
                self._on_written(produced, reaped, write_ms)
        except BaseException as error:
            self._failure = error
            self._wake.set()

    async def _run(self) -> None:
        try:
            await self._produce()
        finally:
            # The write in hand: waited for (a full map's write made now), and its notice
            # given, before the producer ends.
            with contextlib.suppress(BaseException):
                await asyncio.get_running_loop().run_in_executor(
                    self._executor, self._engine.app.settle)
            if self._writes:
                await asyncio.gather(*self._writes, return_exceptions=True)
        self._raise_failure()

    async def _produce(self) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time() - self._interval_s  # the first block may come at once
        in_hand = None  # the block being made: its reaped txs and the block thread's future
        while True:
            if in_hand is None:
                if not await self._due(started):
                    return
                started = loop.time()
                in_hand = self._begin()
                if in_hand is None:
                    # What waits cannot run yet (each sender's next nonce is missing): wait
                    # an interval rather than spin on a full but stuck pool.
                    await asyncio.sleep(self._interval_s)
                    continue
            reaped, made = in_hand
            try:
                produced, read = await made
            except BaseException:
                self._mempool.release(reaped)
                raise
            self.blocks += 1
            self.sizer.observe(len(reaped), produced.finalize_ms + produced.commit_ms)
            self._track(produced, reaped)
            self._raise_failure()
            # Pipelined: when the next block is due already, the block thread starts it now
            # and the event loop settles this one meanwhile (its reap skips this block's
            # txs, still in the pool; the recheck leaves the next block's txs alone).
            in_hand = None
            if self._due_now(started):
                started = loop.time()
                in_hand = self._begin()
            try:
                await self._on_block(produced, reaped, read)
            except BaseException:
                if in_hand is not None:  # let the block thread finish it; it is not reported
                    with contextlib.suppress(BaseException):
                        await in_hand[1]
                raise


def _make_block(engine: SingleValidatorEngine, wires: list[bytes], decoded: list[Tx],
                now_ms: int, after: Callable[[], Any] | None) -> tuple[ProducedBlock, Any]:
    """Block thread: the block (of `wires`, decoded already as `decoded`: not decoded
    again), then `after()` on the state it committed (None if there is no `after` or it
    failed: the block is committed all the same, and its txs are final)."""
    produced = engine.make_block(wires, now_ms, decoded)
    if after is None:
        return produced, None
    try:
        return produced, after()
    except Exception:
        log.exception("the read after the commit failed; the event loop reads again")
        return produced, None
