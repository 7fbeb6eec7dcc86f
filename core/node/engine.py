"""The in-process single-validator engine: one block, from txs to its hand-off for a durable write.

Drives the ABCI `Application` the way a consensus engine would, for a chain
whose only validator is this node: FinalizeBlock with the block's height,
time and txs; the validator's signature over the record's hash
(`commit_sign_bytes`) as the block's commit certificate (`attach_commit`);
Commit. Synchronous and CPU-bound: the producer runs it in a worker thread.

Commit writes the block inline, or (with the application's deferred commits,
`node.block_writer` thread or process) hands the write to the state machine's
writer and returns, so the next block executes while this one is written
(it reads this one's state through its changes). Either way the block's
`written` future completes only once the block is durable and read back
from the store byte for byte as signed: that is when its txs are final.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from ..abci.app import Application
from ..abci.types import BlockRequest, FinalizeBlockResult, validator_address
from ..block import Block, CommitCert, CommitSig, commit_sign_bytes
from ..errors import InvalidConfig, StorageError
from ..keys import KeyPair
from ..osproc import name_os_thread
from ..store import Store
from ..tx import Tx

COMMIT_ROUND = 0  # one validator: every block is decided in round 0
WRITER_THREAD_NAME = "cm-write"  # the OS name of the thread that tells a block written
_thread_named = threading.local()
_MACHINE_WRITER_PREFIX = "chainmall-write"  # StateMachine.defer_writes's writer thread


@dataclass(frozen=True, slots=True)
class ProducedBlock:
    """A committed block: the record (with its certificate), the FinalizeBlock result (one
    entry per requested tx, in request order), the receipt of each recorded tx, how long
    execution and the Commit call took (with a deferred write: the wait for the previous
    block's write and the hand-off), the state entries the block changed (key -> new value,
    None: deleted; what the mempool's recheck needs of the new state), and `written`: its
    result is the write's milliseconds once the block is durable and read back as signed,
    its exception the write's or the read-back's failure."""

    block: Block
    result: FinalizeBlockResult
    receipts: tuple[int, ...]
    finalize_ms: float
    commit_ms: float
    changes: Mapping[bytes, bytes | None] = field(default_factory=dict)
    written: Future[float] = field(default_factory=Future)


class SingleValidatorEngine:
    """Makes blocks for a chain whose genesis names exactly one validator: `validator`."""

    def __init__(self, app: Application, validator: KeyPair) -> None:
        validators = app.genesis.validators
        if len(validators) != 1:
            raise InvalidConfig(f"the in-process engine runs a single-validator chain; "
                                f"genesis.json names {len(validators)} validators")
        if validators[0].public_key != validator.public_key:
            raise InvalidConfig(f"key {validator.public_key.hex()} is not genesis.json's "
                                f"validator {validators[0].public_key.hex()}")
        self.app = app
        self._key = validator
        self._validator_index = 0
        self._proposer = validator_address(validator.public_key)
        self._chain_id = app.genesis.chain_id
        # How to run a job on the thread that makes blocks (the producer's executor), where
        # a deferred write that met a full map is made: growing the map closes the
        # process's open snapshots, so it may not happen on the writer's thread while the
        # next block executes. None: the next block's Commit makes it (no other trigger).
        self.on_block_thread: Callable[[Callable[[], None]], object] | None = None

    @property
    def public_key(self) -> bytes:
        """The validator's public key."""
        return self._key.public_key

    def make_block(self, txs: Sequence[bytes], now_ms: int,
                   decoded: Sequence[Tx] | None = None) -> ProducedBlock:
        """Execute, sign and commit the next block of `txs` (raw, in order) at wall-clock
        time `now_ms` (the block time never goes below the previous block's); `decoded`,
        when given, is `txs` decoded already (the mempool's), not decoded again."""
        app = self.app
        machine = app.machine
        height = machine.tip.height + 1  # committed, written or not (`info` would wait)
        time_ms = max(now_ms, machine.last_time_ms)
        started = time.perf_counter()
        result = app.finalize_block(BlockRequest(height, time_ms, tuple(txs), self._proposer),
                                    decoded)
        signature = self._key.sign(commit_sign_bytes(self._chain_id, height, COMMIT_ROUND,
                                                     result.block_hash))
        commit = CommitCert(height, COMMIT_ROUND, result.block_hash,
                            (CommitSig(self._validator_index, signature),))
        block = app.attach_commit(commit)
        changes = machine.pending_changes  # a view that outlives the commit
        written: Future[float] = Future()
        handed: list[float] = []

        def durable(_: object) -> None:  # the writer thread (or this one, when inline)
            write_ms = (time.perf_counter() - handed[0]) * 1000.0 if handed else 0.0
            if not getattr(_thread_named, "done", False):
                # The machine's writer thread: its CPU apart from the block thread's (in
                # the OS it carries the name of the thread that started it).
                _thread_named.done = True
                if threading.current_thread().name.startswith(_MACHINE_WRITER_PREFIX):
                    name_os_thread(WRITER_THREAD_NAME)
            try:
                _read_back(app.store, height, block)
            except BaseException as error:
                written.set_exception(error)
                raise  # fails the write: every later call of the machine raises it
            written.set_result(write_ms)

        finalized = time.perf_counter()
        handed.append(finalized)
        app.commit(durable)
        committed = time.perf_counter()
        writing = machine.writing
        if writing is not None:  # deferred: a failed write fails `written`
            writing.add_done_callback(functools.partial(self._write_over, written))
        elif not written.done():  # another thread's read settled the write already
            try:
                machine.settle()
            except BaseException as error:
                _fail(written, error)
        results = result.tx_results
        if len(results) == len(block.txs):  # every tx recorded, in request order
            receipts = tuple(r.code for r in results)
        else:
            by_id = {r.tx_id: r.code for r in results}
            receipts = tuple(by_id[tx.tx_id] for tx in block.txs)
        return ProducedBlock(block, result, receipts, (finalized - started) * 1000.0,
                             (committed - finalized) * 1000.0, changes, written)


    def _write_over(self, written: Future[float], writing: Future[bool]) -> None:
        """The machine's write is over (on its writer thread): its failure is the block's;
        a success completed `written` already; a full map (nothing written) leaves the
        write to `settle`, handed to the block thread at once (a node with no next block
        would otherwise never make it)."""
        error = writing.exception()
        if error is not None:
            _fail(written, error)
        elif not writing.result() and self.on_block_thread is not None:
            self.on_block_thread(functools.partial(_settle, self.app, written))


def _settle(app: Application, written: Future[float]) -> None:
    """Make the deferred write in hand (a full map's: grown on this thread); its failure
    is the block's."""
    try:
        app.settle()
    except BaseException as error:
        _fail(written, error)


def _fail(written: Future[float], error: BaseException) -> None:
    if not written.done():
        written.set_exception(error)


def stored_block_bytes(store: Store, height: int) -> bytes | None:
    """The block at `height` as the store holds it (None: not stored)."""
    with store.reader() as view:
        return view.block(height)


def _read_back(store: Store, height: int, block: Block) -> None:
    """StorageError unless the written block, as stored, is byte for byte the block just
    signed (its encoding is kept from execution: no decode of the stored copy). It reads
    the store, not `Application.query`: a query waits for the write in hand, this one."""
    raw = stored_block_bytes(store, height)
    if not raw:
        raise StorageError(f"block {height} is not stored after its commit")
    if raw != block.encode():
        raise StorageError(f"the stored block {height} is not the block just committed")
