"""The ledger state machine: the single place where transactions change state.

Shaped as an ABCI 2.0 application (docs/abci.md, docs/state.md) so the
single-validator engine and CometBFT drive it the same way, through
`core/abci/app.py`:

* `check_tx(tx_bytes)`: stateless checks, then admission against committed state;
* `execute(height, time, proposer, txs)`: ABCI FinalizeBlock: execute a decided
  block in memory, return per-tx results, the new app hash (the state root)
  and the block's record; nothing durable yet;
* `finalize_block(block)`: the same for a stored record being replayed
  (import, check), which must reproduce it exactly;
* `commit()`: write the pending block in ONE LMDB write transaction.

No I/O or clock of its own except through the store; time comes from the
block. Tx types, block hooks, tx observers and supply-holding tables plug in
through `register`, `register_block_hook`, `register_tx_observer` and
`register_supply`, so `state/` never imports the domain (mall, trust) modules.
"""

from __future__ import annotations

import bisect
import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple

from .. import accel
from ..abci.types import Event, Misbehavior, ValidatorUpdate
from ..address import address_from_public_key
from ..block import Block, CommitCert, Header, decode_block, make_block, wire_txs
from ..constants import (
    ADDRESS_BYTES,
    BLOCK_TXS_MAX,
    HASH_BYTES,
    SIGNATURE_CACHE_ENTRIES_MAX,
    STATE_TABLES,
    TABLE_ACCOUNTS,
    TABLE_FEE_POOL,
    TX_TYPE_TRANSFER,
    U64_MAX,
)
from ..errors import (
    TX_OK,
    BlockTooLarge,
    DecodeError,
    FeeTooLow,
    InsufficientFee,
    InvalidBlock,
    InvalidInput,
    InvalidTx,
    NonceMismatch,
    TxExpired,
    UnknownSender,
    UnknownTxType,
)
from ..genesis import Genesis
from ..hashing import ADDRESS_KEY
from ..store import BlockCommit, ChainTip, Store, StoreView, hash_key_order
from ..tx import Tx, decode_each, pack_txs
from .accounts import (
    ACCOUNT_BYTES,
    FEE_POOL_KEY,
    Account,
    account_key,
    apply_transfer,
    decode_fee_pool,
    encode_fee_pool,
    invariant,
    pack_account,
    sum_balances,
    unpack_account,
)
from .overlay import BlockState, StateAccess, TxScratch
from .pipeline import verify_threads
from .receipts import encode_receipts
from .root import MemoryNodeStore, Proof, StateTree, verify_proof
from .root.recent import RecentNodes
from .transfers import NO_SLOT, PLAN_BYTES, WATCH_PREFIX_BYTES_MAX
from .unwritten import UnwrittenView
from .writer import WriterProcess

__all__ = [
    "BlockContext",
    "BlockHook",
    "CheckTxResult",
    "CheckedTxs",
    "ExecContext",
    "FinalizeResult",
    "StateAccess",
    "StateMachine",
    "StateProof",
    "SupplyOf",
    "TxHandler",
    "TxObserver",
    "TxResult",
    "genesis_state",
    "verify_proof",
]


_NO_CHANGES: Mapping[bytes, bytes | None] = MappingProxyType({})


class BlockContext(NamedTuple):
    """What block hooks (and, through `ExecContext.block`, handlers) see of a block.

    `prev_hash` and `prev_app_hash` are the previous record's block hash and the
    state root the block starts from: chain data no party of a tx in this block
    controls (a seed for deterministic draws). Hooks append to `events` and
    `validator_updates`.
    """

    height: int
    timestamp_ms: int
    proposer: bytes  # 32-byte public key of the proposing validator
    prev_hash: bytes
    prev_app_hash: bytes
    events: list[Event]
    validator_updates: list[ValidatorUpdate]
    misbehavior: tuple[Misbehavior, ...]


class ExecContext(NamedTuple):
    """What a tx handler sees: the block's height and time, the tx, its sender address,
    the list its events go to (dropped if the tx fails) and the block's context.

    A NamedTuple: one is built per executed tx.
    """

    height: int
    timestamp_ms: int
    tx: Tx
    sender: bytes  # 20-byte address of tx.sender
    events: list[Event]
    block: BlockContext


# A handler executes one tx's payload after the fee is paid; it raises an
# InvalidInput subclass to fail the tx (its writes and events are then discarded).
TxHandler = Callable[[StateAccess, ExecContext], None]
# A tx observer runs after a tx's handler succeeded, over the same scratch state and
# context: part of that tx (another domain's reaction to it, e.g. trust to an order).
TxObserver = Callable[[StateAccess, ExecContext], None]
# A block hook runs before ("begin") or after ("end") a block's txs; it must not fail.
BlockHook = Callable[[StateAccess, BlockContext], None]
# The part of the total supply a state entry of one table holds.
SupplyOf = Callable[[bytes, bytes], int]
# The hash of the validator set that signs a height, from the state before that block.
ValidatorSetHashOf = Callable[[StateAccess, int], bytes]
HOOK_PHASES = ("begin", "end")
_ACCOUNT_PREFIX = bytes([TABLE_ACCOUNTS])
_NO_SENDER = NO_SLOT.to_bytes(4, "little")  # a plan record's sender slot: no transfer


def _transfer(state: StateAccess, ctx: ExecContext) -> None:
    apply_transfer(state, ctx.sender, ctx.tx.payload)


DEFAULT_HANDLERS: Mapping[int, TxHandler] = {TX_TYPE_TRANSFER: _transfer}


@dataclass(frozen=True, slots=True)
class CheckTxResult:
    """ABCI CheckTx: code 0 admits the tx; otherwise the error's code and a log line.

    `tx` is the decoded tx when it decoded (for the mempool: sender, nonce, fee).
    """

    code: int
    log: str = ""
    tx: Tx | None = None


@dataclass(frozen=True, slots=True)
class TxResult:
    """One tx's outcome: its result code (0 success), a log line, its events, its id.

    `recorded` is False for a tx that failed its stateless checks or admission:
    it changed nothing, paid nothing, and is not part of the block's record.
    """

    code: int
    log: str = ""
    events: tuple[Event, ...] = ()
    tx_id: bytes = b""
    recorded: bool = True


_TX_SUCCESS = TxResult(TX_OK)
# `committed_view`'s reads of the tip and a snapshot that agree: a block is committed far
# less often than a snapshot opens, so a second try succeeds.
_COMMITTED_VIEW_TRIES = 3


@dataclass(frozen=True, slots=True)
class FinalizeResult:
    """ABCI FinalizeBlock: per-tx results in the given order, the new app hash, the
    block's record (chainmall's header + recorded txs), block events and validator
    updates."""

    tx_results: tuple[TxResult, ...]
    app_hash: bytes
    block: Block
    events: tuple[Event, ...] = ()
    validator_updates: tuple[ValidatorUpdate, ...] = ()


@dataclass(frozen=True, slots=True)
class StateProof:
    """A committed state entry (value None: absent) and its proof against `root`."""

    height: int
    root: bytes
    key: bytes
    value: bytes | None
    proof: Proof

    def verify(self, root: bytes | None = None) -> bool:
        """Whether the proof holds against `root` (default: the root it was made at)."""
        return verify_proof(self.root if root is None else root, self.key, self.value, self.proof)


@dataclass(frozen=True, slots=True)
class CheckedTxs:
    """`StateMachine.check_block_txs` passed for `block`: its tx ids and its encoding."""

    block: Block
    tx_ids: list[bytes]
    block_bytes: bytes
    tx_order: list[int] | None = None  # the tx ids' key order (BlockCommit.tx_order)


@dataclass(slots=True)
class _Pending:
    """A finalized, not yet committed block."""

    block: Block
    commit: BlockCommit
    result: FinalizeResult


@dataclass(slots=True)
class _Execution:
    """The outcome of executing txs over the committed state."""

    recorded: list[Tx]
    results: list[TxResult]
    changes: dict[bytes, bytes | None]
    app_hash: bytes
    new_nodes: dict[bytes, bytes]
    block: BlockContext
    validator_set_hash: bytes
    stale_nodes: tuple[bytes, ...] = ()


class SignatureCache:
    """Txs whose stateless checks passed at admission, by tx id || signature (bounded).

    The tx id covers the body and the signature is the rest of the wire
    bytes, so a hit means the very same bytes passed: a block executing them
    checks only what depends on the height (expiry). Thread-safe: admission
    and execution may run in different threads.
    """

    __slots__ = ("_entries", "_limit", "_lock")

    def __init__(self, limit: int = SIGNATURE_CACHE_ENTRIES_MAX) -> None:
        # An OrderedDict, not a dict: dropping a plain dict's first entry over and over
        # leaves deleted slots that `next(iter(...))` walks past, about 70 µs a drop at
        # 200,000 entries (measured), which made admission slow down once the cache filled.
        self._entries: OrderedDict[bytes, None] = OrderedDict()
        self._lock = threading.Lock()
        self._limit = limit

    def add(self, tx: Tx) -> None:
        """Remember that `tx` passed (the oldest entry goes when full)."""
        key = tx.tx_id + tx.signature
        with self._lock:
            entries = self._entries
            if key in entries:
                entries.move_to_end(key)
                return
            entries[key] = None
            if len(entries) > self._limit:
                entries.popitem(last=False)

    def add_many(self, txs: Iterable[Tx]) -> None:
        """`add` of each of `txs` in order, under one hold of the lock (the same entries,
        in the same order, as one `add` after another)."""
        keys = [tx.tx_id + tx.signature for tx in txs]
        with self._lock:
            entries = self._entries
            for key in keys:
                if key in entries:
                    entries.move_to_end(key)
                else:
                    entries[key] = None
            for _ in range(len(entries) - self._limit):
                entries.popitem(last=False)

    def __contains__(self, tx: Tx) -> bool:
        return tx.tx_id + tx.signature in self._entries

    def contains_each(self, txs: Sequence[Tx]) -> list[bool]:
        """`tx in self` for each of `txs` (one pass, no call per tx)."""
        entries = self._entries
        return [tx.tx_id + tx.signature in entries for tx in txs]

    def __len__(self) -> int:
        return len(self._entries)


def genesis_state(genesis: Genesis,
                  extra: Mapping[bytes, bytes] | None = None) -> dict[bytes, bytes]:
    """The state entries at height 0: one account per initial balance, the fee pool, and
    the entries domain modules add (`extra`, e.g. the validator records)."""
    state = {account_key(address): Account(amount, 0).encode()
             for address, amount in genesis.initial_balances}
    state[FEE_POOL_KEY] = encode_fee_pool(0)
    for key, value in sorted((extra or {}).items()):
        if key in state or key[:1] in (bytes([TABLE_ACCOUNTS]), bytes([TABLE_FEE_POOL])):
            raise ValueError(f"a module's genesis entry {key.hex()} overlaps the ledger's")
        if key[0] not in STATE_TABLES:
            raise ValueError(f"a module's genesis entry {key.hex()} is in no state table")
        state[key] = value
    return state


def _present_watched(state: BlockState, prefix: bytes,
                     keys: Sequence[bytes | None]) -> list[bytes]:
    """The watched keys (`prefix || sender || recipient`) among `keys` that hold an entry
    in `state`, each once, in first-seen order.

    Most senders have no entry under `prefix || sender` at all: those are
    found with a few range reads (`BlockState.prefixes_in_use`: one when no
    sender has one), and only the keys of the others are read one by one.
    """
    width = len(prefix) + ADDRESS_BYTES
    distinct = dict.fromkeys(keys)
    distinct.pop(None, None)
    senders = sorted(dict.fromkeys(key[:width] for key in distinct))  # type: ignore[index]
    end = prefix[:-1] + bytes([prefix[-1] + 1]) if prefix[-1] < 0xFF else prefix + b"\xff" * 41
    in_use = set(state.prefixes_in_use(senders, end))
    if not in_use:
        return []
    return state.present(key for key in distinct if key[:width] in in_use)  # type: ignore[index]


class _TransferRuns:
    """One block's runs of consecutive transfers, executed by the transfer kernel.

    Made after the begin-block hooks: the block's transfers are planned
    (`accel.plan_transfers`) and every account they name is read from the
    block state into the kernel's table. `run` executes from an index while
    each tx is a transfer that succeeds (core/state/transfers.py); before
    the machine executes the tx a run stopped at, `flush` writes the accounts
    the runs changed into the block state, and after it `refresh` reads back
    the accounts that tx wrote. So every tx sees the state it would see if
    all of them ran one by one. A tx the plan has no transfer for (another
    type, a failed stateless check) costs no kernel call, and a flush with
    nothing run since the last one no scan of the table.

    Watched transfers (`StateMachine.register_tx_observer` with `watch`): a
    run also ends before a transfer whose watched entry (`prefix || sender ||
    recipient`) the block state holds, so that transfer executes one by one,
    with its observers. The entries present are read once per block (after
    the begin hooks) and kept up to date from the keys every tx executed one
    by one writes; a run writes accounts only, never a watched key.
    """

    __slots__ = ("_acting", "_changed", "_fee_min", "_keys", "_plan", "_present", "_slots",
                 "_table", "_tx_ids", "_txs_of", "_watch_keys", "_watched")

    def __init__(self, state: BlockState, wire: tuple[bytes, list[int]], eligible: bytes,
                 fee_min: int, tx_ids: list[bytes], watches: Sequence[bytes] = ()) -> None:
        data, offsets = wire
        addresses, self._plan = accel.plan_transfers(data, offsets, eligible, ADDRESS_KEY)
        self._keys = [_ACCOUNT_PREFIX + addresses[at : at + ADDRESS_BYTES]
                      for at in range(0, len(addresses), ADDRESS_BYTES)]
        self._table = accel.load_accounts(state.get_many(self._keys))
        self._slots: dict[bytes, int] | None = None  # account key -> slot, made when needed
        self._fee_min = fee_min
        self._tx_ids = tx_ids
        self._changed = False  # whether a run executed a tx since the last flush
        # Watched keys: per watch, each tx's key (None: no transfer); the present ones.
        watches = watches if self._keys else ()
        self._watched = [accel.watch_keys(self._plan, addresses, prefix) for prefix in watches]
        # Each distinct watched key once, in a fixed order (a dict, not a set).
        self._watch_keys: dict[bytes | None, None] = dict.fromkeys(
            key for keys in self._watched for key in keys)
        self._watch_keys.pop(None, None)
        self._present: set[bytes] = set()
        for prefix, keys in zip(watches, self._watched, strict=True):
            self._present.update(_present_watched(state, prefix, keys))
        # The txs whose watched entries are present, in order, one element per present
        # entry (a tx watched under two prefixes may be there twice).
        self._acting: list[int] = sorted(
            index for keys in self._watched for index, key in enumerate(keys)
            if key in self._present) if self._present else []
        self._txs_of: dict[bytes, list[int]] | None = None  # key -> its txs, made when needed

    @property
    def empty(self) -> bool:
        """Whether the block holds no transfer to run."""
        return not self._keys

    def run(self, start: int, stop: int, room: int) -> tuple[int, int]:
        """Execute from `start` (at most `room` txs, none from `stop`, none from a watched
        transfer whose entry is present): (the first tx not executed, the fees paid)."""
        at = start * PLAN_BYTES
        if self._plan[at : at + 4] == _NO_SENDER:  # not a transfer the kernel can run
            return start, 0
        acting = self._acting
        if acting:
            after = bisect.bisect_left(acting, start)
            if after < len(acting):
                stop = min(stop, acting[after])
                if stop == start:  # its observers act: one by one
                    return start, 0
        done, fees = accel.run_transfers(self._plan, self._table, start, stop, self._fee_min,
                                         room)
        self._changed = self._changed or done > start
        return done, fees

    def results(self, start: int, stop: int) -> list[TxResult]:
        """The results of txs start..stop - 1, executed by `run`: success, no events."""
        return accel.success_results(TxResult, self._tx_ids, start, stop)

    def flush(self, state: BlockState) -> None:
        """Write the accounts the runs changed since the last flush into `state`."""
        if not self._changed:
            return
        self._changed = False
        slots, values = accel.take_dirty(self._table)
        writes, keys = state.writes, self._keys
        for at, slot in enumerate(slots):
            writes[keys[slot]] = values[at * ACCOUNT_BYTES : (at + 1) * ACCOUNT_BYTES]

    def refresh(self, state: BlockState, written: Iterable[bytes]) -> None:
        """Read back from `state` the accounts among `written` (keys a tx wrote), and
        whether the watched entries among them are present now."""
        slots = self._slots
        if slots is None:
            slots = self._slots = {key: slot for slot, key in enumerate(self._keys)}
        for key in written:
            slot = slots.get(key)
            if slot is not None:
                accel.set_account(self._table, slot, state.get(key))
            elif key in self._watch_keys:
                self._track(state, key)

    def _track(self, state: BlockState, key: bytes) -> None:
        """Note whether the watched `key` is present now, its txs joining or leaving the
        acting ones (each change costs its own txs, not a pass over the block)."""
        present = state.get(key) is not None
        if present == (key in self._present):
            return
        txs_of = self._txs_of
        if txs_of is None:
            txs_of = self._txs_of = {}
            for keys in self._watched:
                for index, watched in enumerate(keys):
                    if watched is not None:
                        txs_of.setdefault(watched, []).append(index)
        acting = self._acting
        if present:
            self._present.add(key)
            for index in txs_of[key]:
                bisect.insort(acting, index)
        else:
            self._present.discard(key)
            for index in txs_of[key]:
                at = bisect.bisect_left(acting, index)
                invariant(at < len(acting) and acting[at] == index,
                          "a watched entry left without its tx among the acting ones")
                del acting[at]


class StateMachine:
    """Executes blocks over a Store; the only writer of ledger state.

    On a store with no chain, the genesis state is written first (as ABCI
    InitChain), with the domain modules' `genesis_entries`; on one that has a
    chain, it must be the genesis's chain.
    """

    def __init__(self, store: Store, genesis: Genesis,
                 handlers: Mapping[int, TxHandler] | None = None,
                 genesis_entries: Mapping[bytes, bytes] | None = None) -> None:
        self.store = store
        self.genesis = genesis
        self._chain_id_bytes = genesis.chain_id.encode("ascii")
        self._handlers: dict[int, TxHandler] = dict(DEFAULT_HANDLERS)
        for tx_type, handler in (handlers or {}).items():
            self.register(tx_type, handler)
        self._hooks: dict[str, list[BlockHook]] = {phase: [] for phase in HOOK_PHASES}
        self._observers: dict[int, list[TxObserver]] = {}
        # Per tx type, each observer's watched prefix (None: none), in registration order.
        self._watches: dict[int, list[bytes | None]] = {}
        self._supply: dict[int, SupplyOf] = {
            TABLE_ACCOUNTS: _account_supply, TABLE_FEE_POOL: _fee_pool_supply}
        self.signatures = SignatureCache()
        # Runs of transfers through the transfer kernel (`_TransferRuns`); False executes
        # every tx one by one, the same results (the tests compare the two).
        self.transfer_runs = True
        self._genesis_hash = genesis.hash()
        self._validator_set_hash_of: ValidatorSetHashOf | None = None
        # The last committed block's new tree nodes: the next block's update reads most of
        # its nodes from these (`RecentNodes`) rather than from the store.
        self._recent_nodes: Mapping[bytes, bytes] = {}
        if not store.is_initialised():
            state = genesis_state(genesis, genesis_entries)
            update = StateTree(MemoryNodeStore()).apply(state)
            store.init_genesis(genesis.chain_id, self._genesis_hash, state, update.new_nodes,
                               update.root)
            self._recent_nodes = update.new_nodes
        self._tip = store.check_chain(genesis.chain_id, self._genesis_hash)
        self._last_time_ms = self._read_last_time_ms(self._tip)
        self._pending: _Pending | None = None
        # Deferred writes (`defer_writes`): the writer thread, the write in hand, the block
        # it writes (its parent's tip, its state changes and what runs once it is written),
        # and a write's failure.
        self._writer: ThreadPoolExecutor | None = None
        self._writing: Future[bool] | None = None
        self._unwritten: tuple[ChainTip, BlockCommit, Callable[[], None] | None] | None = None
        self._write_failed: BaseException | None = None
        self._writer_process: WriterProcess | None = None
        # Threads other than the committing one read committed state while a write runs
        # (the in-process node's admission and read threads): one settles at a time, and
        # the tip and the unwritten block change together (`committed_view` reads both).
        self._settling = threading.Lock()
        self._tip_lock = threading.Lock()

    # --- extension points --------------------------------------------------------------

    def register(self, tx_type: int, handler: TxHandler) -> None:
        """Register the handler for `tx_type` (u16); a type is registered once."""
        if type(tx_type) is not int or not 0 <= tx_type <= 0xFFFF:
            raise ValueError(f"tx type must be a u16, got {tx_type!r}")
        if tx_type in self._handlers:
            raise ValueError(f"tx type {tx_type} already has a handler")
        self._handlers[tx_type] = handler

    def register_block_hook(self, hook: BlockHook, phase: str) -> None:
        """Run `hook(state, block_ctx)` before ("begin") or after ("end") every block's
        txs, after the hooks registered before it."""
        if phase not in HOOK_PHASES:
            raise ValueError(f"a hook phase is one of {HOOK_PHASES}, got {phase!r}")
        self._hooks[phase].append(hook)

    def register_tx_observer(self, tx_type: int, observer: TxObserver,
                             watch: bytes | None = None) -> None:
        """Run `observer(state, ctx)` after every successful tx of `tx_type`, after the
        observers registered before it, as part of that tx: over its scratch state (its
        writes and events are the tx's) and with its context. An observer raising an
        InvalidInput subclass fails the tx like its handler would; observers of a type
        with no handler never run.

        `watch` (TRANSFER observers only) is the observer's promise that it reads
        nothing it acts on, writes nothing, appends no event and raises nothing
        for a transfer from S to R unless the state holds the entry `watch || S
        || R` (20-byte addresses) when the transfer executes. Transfers whose
        watched entries are all absent then run in the transfer kernel without
        their observers; the others execute one by one, with them (docs/state.md
        section 4). A TRANSFER observer without `watch` makes every transfer
        execute one by one. The prefix must name a state table other than the
        accounts (the kernel writes those)."""
        if type(tx_type) is not int or not 0 <= tx_type <= 0xFFFF:
            raise ValueError(f"tx type must be a u16, got {tx_type!r}")
        if watch is not None:
            if tx_type != TX_TYPE_TRANSFER:
                raise ValueError("only TRANSFER observers may watch an entry")
            if (type(watch) is not bytes or not 1 <= len(watch) <= WATCH_PREFIX_BYTES_MAX
                    or watch[0] not in STATE_TABLES or watch[0] == TABLE_ACCOUNTS):
                raise ValueError(f"a watched prefix is 1-{WATCH_PREFIX_BYTES_MAX} bytes "
                                 f"naming a state table other than the accounts, got {watch!r}")
        self._observers.setdefault(tx_type, []).append(observer)
        self._watches.setdefault(tx_type, []).append(watch)

    def register_supply(self, table_id: int, amount_of: SupplyOf) -> None:
        """Count `amount_of(key, value)` of every entry of table `table_id` in the total
        supply, which every block must keep (a table is registered once)."""
        if table_id not in STATE_TABLES:
            raise ValueError(f"table {table_id:#04x} is not a state table")
        if table_id in self._supply:
            raise ValueError(f"table {table_id:#04x} already counts in the supply")
        self._supply[table_id] = amount_of

    def register_validator_set_hash(self, hash_of: ValidatorSetHashOf) -> None:
        """Take the record header's `validator_set_hash` of height h from
        `hash_of(state, h)` (the state before block h) instead of the genesis set's
        (registered once: the module that keeps the validator set in state)."""
        if self._validator_set_hash_of is not None:
            raise ValueError("the validator set hash already has a source")
        self._validator_set_hash_of = hash_of

    # --- deferred writes ---------------------------------------------------------------

    def defer_writes(self, process: bool = False) -> None:
        """From now on `commit` hands the block's durable write (the store's one LMDB
        transaction) to a writer thread and returns, so the next block executes while
        the last one is written (an import: `core/state/pipeline.py`).

        At most one block is unwritten: `commit` first waits for the write in hand.
        The next block reads the unwritten one's state through its changes
        (`UnwrittenView`) and its tree nodes from memory, so it executes on exactly
        the state (and reaches exactly the roots) it would after a plain commit;
        `check_txs` (and `committed_view`'s other readers) read through the same
        view and do not wait either. `info` and `tip` answer the committed block at
        once; what must answer from the durable store (`prove`, `settle`) waits for
        the write. `commit(then)` runs `then` once the block is written (on the
        writer thread). A crash loses at most the unwritten block: the store holds
        every block before it, whole (one transaction each), and an import resumes
        from there. A write's failure is raised by the next call that waits or reads
        committed state once the write is over, and by every one after it.

        With `process`, the writer thread hands each write to a writer process
        (`core/state/writer.py`: its own GIL), which runs the store's commit.
        """
        if self._writer is None:
            if process:
                self._writer_process = WriterProcess(self.store)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="chainmall-write")

    def settle(self) -> None:
        """Wait for the deferred write in hand, if any (the store then holds every committed
        block); raise a write's failure, then and at every later call. Any thread may call
        it (one waits at a time)."""
        self._settle(None)

    def _settle(self, only: Future[bool] | None) -> None:
        """`settle`; with `only`, settle only that write (nothing when another is in hand:
        a reader that saw `only` over must not wait for the next block's write)."""
        with self._settling:
            writing, unwritten = self._writing, self._unwritten
            if writing is not None and (only is None or writing is only):
                assert unwritten is not None
                try:
                    if not writing.result():
                        # The map was full: the writer may not grow it while this thread
                        # reads (growing closes open snapshots). No snapshot is open here:
                        # write it now.
                        self.store.commit_block(unwritten[1])
                        invariant(self.store.last() == self._tip,
                                  "the store's tip is not the committed block")
                        if self._writer_process is not None:
                            self._writer_process.adopt(self.store.map_size_bytes)
                        if unwritten[2] is not None:
                            unwritten[2]()  # written now: what waited for it runs
                except BaseException as error:
                    self._write_failed = error
                finally:
                    with self._tip_lock:
                        self._writing = self._unwritten = None
        if self._write_failed is not None:
            raise self._write_failed

    def close(self) -> None:
        """Finish the write in hand and stop the writer thread (before the store closes)."""
        try:
            self.settle()
        finally:
            if self._writer is not None:
                self._writer.shutdown(wait=True)
                self._writer = None
            if self._writer_process is not None:
                self._writer_process.close()
                self._writer_process = None

    def _write(self, commit: BlockCommit, tip: ChainTip, then: Callable[[], None] | None,
               ) -> bool:
        """The writer thread's job: `commit`, without growing the map (False: full, nothing
        written, `then` not run), then `then`."""
        written = (self.store.commit_block(commit, grow=False) if self._writer_process is None
                   else self._writer_process.write(commit))
        if not written:
            return False
        invariant(self.store.last() == tip, "the store's tip is not the committed block")
        if then is not None:
            then()
        return True

    @contextmanager
    def committed_view(self) -> Iterator[StoreView | UnwrittenView]:
        """A read of the committed state (the last `commit`'s block, written or not): a
        store snapshot, with the unwritten block's changes over it while its write runs
        (`defer_writes`). A write that is over is settled first (without waiting), so its
        failure is raised here."""
        writing = self._writing
        if writing is not None and writing.done():
            self._settle(writing)
        if self._write_failed is not None:
            raise self._write_failed
        # Another thread may commit the next block between the tip's read and the
        # snapshot's: the snapshot is then a block ahead of what was read, and is read again.
        for _ in range(_COMMITTED_VIEW_TRIES):
            with self._tip_lock:
                tip, unwritten = self._tip, self._unwritten
            with self.store.reader() as view:
                last = view.last()
                if last == tip:  # nothing unwritten, or written now
                    yield view
                    return
                if unwritten is not None and last == unwritten[0]:
                    yield UnwrittenView(view, unwritten[1].state_changes, tip)
                    return
        invariant(False, "the store moved under the state machine")

    # --- ABCI: Info ----------------------------------------------------------------

    def info(self) -> tuple[int, bytes]:
        """(last committed height, its app hash)."""
        return self._tip.height, self._tip.app_hash

    @property
    def tip(self) -> ChainTip:
        """The last committed block as `meta` records it."""
        return self._tip

    @property
    def last_time_ms(self) -> int:
        """The block time of the last committed block (the genesis time at height 0)."""
        return self._last_time_ms

    @property
    def pending_changes(self) -> Mapping[bytes, bytes | None]:
        """The state entries the finalized block (not committed yet) changes: key -> new
        value (None: deleted); empty when no block is pending. A read-only view, valid
        after the commit too (the in-process node rechecks its mempool from it)."""
        pending = self._pending
        return _NO_CHANGES if pending is None else MappingProxyType(pending.commit.state_changes)

    def _read_last_time_ms(self, tip: ChainTip) -> int:
        if tip.height == 0:
            return self.genesis.genesis_time_ms
        with self.store.reader() as view:
            raw = view.block(tip.height)
        invariant(raw is not None, f"the tip block {tip.height} is not stored")
        assert raw is not None
        header = decode_block(raw).header
        invariant(header.hash() == tip.block_hash, "the tip block does not hash to meta's hash")
        return header.timestamp_ms

    # --- stateless checks ----------------------------------------------------------

    def stateless_check(self, items: Sequence[Tx | bytes], height: int,
                        remember: bool = False, threads: int = 0,
                        ) -> tuple[list[int], list[Tx | None]]:
        """The stateless verdict of each item at `height` (docs/verification.md), and the
        decoded tx where it decoded.

        A tx in the signature cache (it passed at admission) is checked only for
        what depends on the height (expiry); the others go through one batch call
        of the validator (decode, chain id, expiry, signature) on `threads`
        threads (0: every core). With `remember`, those that pass join the cache
        (a proposal's txs this node had not seen: their block then does not
        verify them again).
        """
        codes = [TX_OK] * len(items)
        unchecked: list[int] = []
        cache = self.signatures
        raw = [item for item in items if not isinstance(item, Tx)]
        if not raw:  # every item decoded already (the node's blocks, from its mempool)
            txs: list[Tx | None] = list(items)  # type: ignore[arg-type]
            cached = cache.contains_each(txs)  # type: ignore[arg-type]
            for index, tx in enumerate(txs):
                if cached[index]:
                    if height > tx.expiry_height:  # type: ignore[union-attr]
                        codes[index] = TxExpired.code
                else:
                    unchecked.append(index)
        else:
            txs = [None] * len(items)
            decoded = iter(decode_each(raw))
            for index, item in enumerate(items):
                tx = item if isinstance(item, Tx) else next(decoded)
                if isinstance(tx, DecodeError):
                    codes[index] = tx.code
                    continue
                txs[index] = tx
                if tx in cache:
                    if height > tx.expiry_height:
                        codes[index] = TxExpired.code
                else:
                    unchecked.append(index)
        if unchecked:
            data, offsets = pack_txs([_wire(items[i]) for i in unchecked])
            batch_codes, _ = accel.validate_batch(data, offsets, self._chain_id_bytes, height,
                                                  threads)
            for index, code in zip(unchecked, batch_codes, strict=True):
                codes[index] = code
                if remember and code == TX_OK:
                    checked = txs[index]
                    assert checked is not None
                    cache.add(checked)
        return codes, txs

    # --- ABCI: CheckTx -------------------------------------------------------------

    def check_tx(self, tx_bytes: bytes) -> CheckTxResult:
        """Admission of one tx against the committed state (nothing changes).

        A tx that passes its stateless checks is remembered in the signature
        cache, so the block that executes it (and a recheck) does not verify it
        again.
        """
        return self.check_txs([tx_bytes])[0]

    def check_txs(self, items: Sequence[bytes]) -> list[CheckTxResult]:
        """`check_tx` of each item, with one batch call for the stateless checks and one
        read of the committed state (`committed_view`: a deferred write is not waited
        for): what a consensus engine's stream of CheckTx asks for."""
        height = self._tip.height + 1
        codes, decoded = self.stateless_check([bytes(item) for item in items], height)
        results: list[CheckTxResult] = []
        with self.committed_view() as view:
            for code, tx in zip(codes, decoded, strict=True):
                if code != TX_OK or tx is None:
                    results.append(CheckTxResult(code, "stateless check failed", tx))
                    continue
                self.signatures.add(tx)
                raw = view.get_state(account_key(address_from_public_key(tx.sender)))
                try:
                    self._admit(raw, tx, exact_nonce=False)
                except InvalidTx as exc:
                    results.append(CheckTxResult(exc.code, str(exc), tx))
                    continue
                results.append(CheckTxResult(TX_OK, "", tx))
        return results

    def _admit(self, raw: bytes | None, tx: Tx, exact_nonce: bool) -> tuple[int, int]:
        """The sender's (balance, nonce) if `tx` may be included; the first failing rule if not.

        `raw` is the sender's account value (None: no account).
        """
        if raw is None:
            raise UnknownSender("the sender has no account")
        balance, nonce = unpack_account(raw)
        if tx.nonce != nonce:
            if exact_nonce:
                raise NonceMismatch(f"nonce {tx.nonce}, expected {nonce}")
            if tx.nonce < nonce:
                raise NonceMismatch(f"nonce {tx.nonce} is below the account's {nonce}")
        if nonce == U64_MAX:
            raise NonceMismatch("the account's nonce is exhausted")
        if tx.fee < self.genesis.fee_min:
            raise FeeTooLow(f"fee {tx.fee} is below fee_min {self.genesis.fee_min}")
        if balance < tx.fee:
            raise InsufficientFee(f"balance {balance} cannot pay the fee {tx.fee}")
        return balance, nonce

    # --- execution -------------------------------------------------------------------

    def _block_context(self, height: int, timestamp_ms: int, proposer: bytes,
                       misbehavior: tuple[Misbehavior, ...] = ()) -> BlockContext:
        return BlockContext(height, timestamp_ms, proposer, self._tip.block_hash,
                            self._tip.app_hash, [], [], misbehavior)

    def _run_hooks(self, state: BlockState, phase: str, block: BlockContext) -> None:
        for hook in self._hooks[phase]:
            scratch = TxScratch(state)
            hook(scratch, block)  # a hook does not fail: an exception stops the block
            state.writes.update(scratch.writes)

    def _transfer_runs(self, state: BlockState, txs: Sequence[Tx | None],
                       codes: Sequence[int], strict: bool,
                       wire: tuple[bytes, list[int]] | None,
                       tx_ids: list[bytes] | None) -> _TransferRuns | None:
        """The transfer kernel's runs over this block, or None where they cannot apply:
        no txs, TRANSFER not handled by the built-in handler, or observed by another
        domain without a watched entry (the kernel runs no observers: such transfers go
        one by one). With `strict` every tx passed its stateless checks (`_execute`
        fails the block at one that did not)."""
        watches = self._watches.get(TX_TYPE_TRANSFER, ())
        if (not txs or not self.transfer_runs or None in watches
                or self._handlers.get(TX_TYPE_TRANSFER) is not _transfer):
            return None
        if wire is None:
            wire = pack_txs([b"" if tx is None else tx.encode() for tx in txs])
        if tx_ids is None:
            tx_ids = [b"" if tx is None else tx.tx_id for tx in txs]
        if strict:
            eligible = b"\x01" * len(txs)
        else:
            eligible = bytes([code == TX_OK and tx is not None
                              for code, tx in zip(codes, txs, strict=True)])
        runs = _TransferRuns(state, wire, eligible, self.genesis.fee_min, tx_ids,
                             list(dict.fromkeys(watches)))  # type: ignore[arg-type]
        return None if runs.empty else runs

    def _execute_tx(self, state: BlockState, block: BlockContext, index: int, tx: Tx | None,
                    code: int, strict: bool, recorded: list[Tx], results: list[TxResult],
                    senders: dict[bytes, tuple[bytes, bytes]]) -> tuple[int, Iterable[bytes]]:
        """Execute one tx (docs/state.md section 4): appends its result (and the tx to
        `recorded` if it is recorded); (the fee it paid, the keys it wrote)."""
        height = block.height
        if code != TX_OK or tx is None:
            if strict:
                raise InvalidBlock(f"block {height}: tx {index} fails its stateless "
                                   f"checks (code {code})")
            results.append(TxResult(code, "stateless check failed",
                                    tx_id=b"" if tx is None else tx.tx_id, recorded=False))
            return 0, ()
        if len(recorded) == BLOCK_TXS_MAX:
            results.append(TxResult(BlockTooLarge.code, f"over {BLOCK_TXS_MAX} txs",
                                    tx_id=tx.tx_id, recorded=False))
            return 0, ()
        known = senders.get(tx.sender)
        if known is None:
            address = address_from_public_key(tx.sender)
            known = senders[tx.sender] = (address, account_key(address))
        sender, sender_key = known
        try:
            balance, nonce = self._admit(state.get(sender_key), tx, True)
        except InvalidTx as exc:
            if strict:
                raise InvalidBlock(f"block {height}: tx {index} is not admissible: "
                                   f"{exc}") from exc
            results.append(TxResult(exc.code, str(exc), tx_id=tx.tx_id, recorded=False))
            return 0, ()
        state.writes[sender_key] = pack_account(balance - tx.fee, nonce + 1)
        recorded.append(tx)
        handler = self._handlers.get(tx.tx_type)
        if handler is None:
            results.append(TxResult(UnknownTxType.code,
                                    f"no handler for tx type {tx.tx_type}", tx_id=tx.tx_id))
            return tx.fee, (sender_key,)
        scratch = TxScratch(state)
        events: list[Event] = []
        try:
            ctx = ExecContext(height, block.timestamp_ms, tx, sender, events, block)
            handler(scratch, ctx)
            for observe in self._observers.get(tx.tx_type, ()):
                observe(scratch, ctx)
        except InvalidInput as exc:
            results.append(TxResult(exc.code, str(exc), tx_id=tx.tx_id))
            return tx.fee, (sender_key,)
        state.writes.update(scratch.writes)
        results.append(TxResult(TX_OK, "", tuple(events), tx.tx_id) if events
                       else TxResult(TX_OK, "", (), tx.tx_id))
        return tx.fee, (sender_key, *scratch.writes)

    def _execute(self, view: StoreView, block: BlockContext, txs: Sequence[Tx | None],
                 codes: Sequence[int], strict: bool,
                 wire: tuple[bytes, list[int]] | None = None,
                 tx_ids: list[bytes] | None = None) -> _Execution:
        """Run the block over the committed state (docs/abci.md, docs/state.md section 4).

        Begin hooks; then per tx its stateless verdict (`codes`), admission,
        fee and nonce, and the handler over a scratch copy kept only on
        success; the block's fees to the pool; end hooks. A tx that fails its
        stateless checks or admission is not recorded; with `strict` (a stored
        block replayed) that makes the block invalid instead.

        Runs of consecutive transfers that succeed go through the transfer
        kernel (`_TransferRuns`), the other txs one by one (`_execute_tx`):
        the same writes, results and errors as executing every tx one by one.
        `wire` holds the txs' wire bytes packed (as `block.wire_txs` gives
        them) and `tx_ids` their ids, when the caller has them already.
        """
        state = BlockState(view.get_state, view.state_range, getattr(view, "get_states", None))
        hash_of = self._validator_set_hash_of
        validator_set_hash = (self.genesis.validator_set_hash if hash_of is None
                              else hash_of(state, block.height))
        self._run_hooks(state, "begin", block)
        recorded: list[Tx] = []
        results: list[TxResult] = []
        fees = 0
        # A block has far fewer senders than txs: hash each public key once.
        senders: dict[bytes, tuple[bytes, bytes]] = {}  # public key -> (address, state key)
        runs = self._transfer_runs(state, txs, codes, strict, wire, tx_ids)
        index, count = 0, len(txs)
        while index < count:
            if runs is not None:
                done, run_fees = runs.run(index, count, BLOCK_TXS_MAX - len(recorded))
                if done > index:
                    recorded += txs[index:done]  # type: ignore[arg-type]
                    results += runs.results(index, done)
                    fees += run_fees
                    index = done
                    if index == count:
                        break
                runs.flush(state)  # the tx below reads the state the run left
            paid, written = self._execute_tx(state, block, index, txs[index], codes[index],
                                             strict, recorded, results, senders)
            fees += paid
            if runs is not None:
                runs.refresh(state, written)
            index += 1
        if runs is not None:
            runs.flush(state)
        if fees:
            pool = state.get(FEE_POOL_KEY)
            total = (0 if pool is None else decode_fee_pool(pool)) + fees
            invariant(total <= U64_MAX, "the fee pool overflows u64")
            state.set(FEE_POOL_KEY, encode_fee_pool(total))
        self._run_hooks(state, "end", block)
        changes = _diff(state, getattr(view, "get_states", None))
        update = StateTree(RecentNodes(view, self._recent_nodes), self._tip.app_hash).apply(changes)
        self._check_supply(state.committed, changes)
        return _Execution(recorded, results, changes, update.root, update.new_nodes, block,
                          validator_set_hash, update.stale_nodes)

    def _check_supply(self, committed: Mapping[bytes, bytes | None],
                      changes: Mapping[bytes, bytes | None]) -> None:
        """Safety invariant: the changed entries keep the total supply (balances, fee pool
        and whatever the registered tables hold).

        `committed` holds the committed value of every changed key.
        """
        supply = self._supply
        before = after = 0
        accounts_before: list[bytes] = []  # account values: summed in C loops below
        accounts_after: list[bytes] = []
        for key, value in changes.items():
            amount_of = supply.get(key[0])
            if amount_of is None:
                continue
            old = committed[key]
            if amount_of is _account_supply:
                if old is not None:
                    accounts_before.append(old)
                if value is not None:
                    accounts_after.append(value)
                continue
            before += 0 if old is None else amount_of(key, old)
            after += 0 if value is None else amount_of(key, value)
        before += sum_balances(accounts_before)
        after += sum_balances(accounts_after)
        invariant(before == after, f"supply changed by {after - before} in one block")

    def _record(self, run: _Execution, round_number: int = 0) -> Block:
        """chainmall's record of an executed block: header fields from the block and the
        run, the recorded txs."""
        block = run.block
        return make_block(self.genesis.chain_id, block.height, self._tip.block_hash,
                          block.timestamp_ms, block.proposer, run.recorded, run.app_hash,
                          run.validator_set_hash, round_number)

    def _keep_pending(self, record: Block, block_bytes: bytes, tx_ids: list[bytes],
                      run: _Execution, tx_order: list[int] | None = None) -> FinalizeResult:
        result = FinalizeResult(tuple(run.results), run.app_hash, record,
                                tuple(run.block.events), tuple(run.block.validator_updates))
        commit = BlockCommit(
            height=record.header.height,
            block_hash=record.hash(),
            block_bytes=block_bytes,
            tx_ids=tx_ids,
            receipts_bytes=encode_receipts([r.code for r in run.results if r.recorded]),
            parent_app_hash=self._tip.app_hash,
            app_hash=run.app_hash,
            state_changes=run.changes,
            new_nodes=run.new_nodes,
            stale_nodes=run.stale_nodes,
            tx_order=tx_order,
        )
        self._pending = _Pending(record, commit, result)
        return result

    # --- ABCI: FinalizeBlock ---------------------------------------------------------

    def execute(self, height: int, timestamp_ms: int, proposer: bytes,
                txs: Sequence[Tx | bytes],
                misbehavior: tuple[Misbehavior, ...] = ()) -> FinalizeResult:
        """ABCI FinalizeBlock: execute a decided block's txs and keep the result pending.

        `height` must be the tip's + 1 and `timestamp_ms` not before the last
        block's (InvalidBlock, nothing pending). Every tx gets a result, in
        order; those that fail their stateless checks or admission change
        nothing and are left out of the block's record (`result.block`).
        """
        self._pending = None
        if height != self._tip.height + 1:
            raise InvalidBlock(f"block height {height}, expected {self._tip.height + 1}")
        if timestamp_ms < self._last_time_ms:
            raise InvalidBlock(f"block {height}: timestamp {timestamp_ms} ms is before the "
                               f"previous {self._last_time_ms} ms")
        codes, decoded = self.stateless_check(txs, height)
        block = self._block_context(height, timestamp_ms, proposer, misbehavior)
        with self.committed_view() as view:
            run = self._execute(view, block, decoded, codes, strict=False)
        assert len(run.results) == len(txs)
        record = self._record(run)
        return self._keep_pending(record, record.encode(),
                                  [tx.tx_id for tx in record.txs], run)

    def _check_header(self, header: Header) -> None:
        """Header against the committed tip, in a fixed order; InvalidBlock on the first fault."""
        tip = self._tip
        if header.chain_id != self.genesis.chain_id:
            raise InvalidBlock(f"block is for chain {header.chain_id!r}, "
                               f"expected {self.genesis.chain_id!r}")
        if header.height != tip.height + 1:
            raise InvalidBlock(f"block height {header.height}, expected {tip.height + 1}")
        if header.prev_hash != tip.block_hash:
            raise InvalidBlock(f"block {header.height}: prev hash does not match the tip")
        if header.timestamp_ms < self._last_time_ms:
            raise InvalidBlock(f"block {header.height}: timestamp {header.timestamp_ms} ms is "
                               f"before the previous {self._last_time_ms} ms")

    def check_block_txs(self, block: Block) -> CheckedTxs:
        """The stateless checks of a stored block's txs (InvalidBlock on the first fault).

        Tx count against the header, the batch checks of every tx at the
        block's height (decode, chain id, expiry, signature), the tx root,
        no tx twice, the block's size. Depends on nothing but the block and
        the chain id, so it may run ahead of `finalize_block`, in another
        thread (the batch kernel releases the GIL): `core/state/pipeline.py`. In a
        pipeline worker the signatures are checked on its share of the cores
        (`verify_threads`), elsewhere on every core.
        """
        header = block.header
        if len(block.txs) != header.tx_count:
            raise InvalidBlock(f"block {header.height}: tx count does not match its txs")
        # One batch call gives the stateless verdicts and the tx ids; the tx
        # root is then the Merkle root of those ids (as Block.check_tx_root).
        tx_ids: list[bytes] = []
        tx_order = None
        if block.txs:
            data, offsets = wire_txs(block)
            codes, ids = accel.validate_batch(data, offsets, self._chain_id_bytes, header.height,
                                              verify_threads())
            tx_ids = [ids[i : i + HASH_BYTES] for i in range(0, len(ids), HASH_BYTES)]
            # The ids' key order for the commit's tx index, made here: off the committing
            # thread in a pipelined import (the kernel sorts without the GIL).
            tx_order = hash_key_order(ids)
            if accel.merkle_root(ids) != header.tx_root:
                raise InvalidBlock(f"block {header.height}: tx root does not match its txs")
            for index, code in enumerate(codes):
                if code != TX_OK:
                    raise InvalidBlock(f"block {header.height}: tx {index} fails its stateless "
                                       f"checks (code {code})")
        else:
            block.check_tx_root()
        try:
            block_bytes = block.encode()
        except BlockTooLarge as exc:
            raise InvalidBlock(f"block {header.height}: {exc}") from exc
        if len(set(tx_ids)) != len(tx_ids):
            raise InvalidBlock(f"block {header.height}: a tx appears twice")
        return CheckedTxs(block, tx_ids, block_bytes, tx_order)

    def finalize_block(self, block: Block, checked: CheckedTxs | None = None) -> FinalizeResult:
        """Replay a stored block's record (import, check, a second node): execute it over
        committed state and keep the result pending.

        The record must be exactly what executing its txs gives: InvalidBlock
        (nothing pending, nothing stored) for a bad header, any fault
        `check_block_txs` finds, any tx failing admission, or a state root
        other than the one execution gives. `checked`, when given, is
        `check_block_txs(block)` for this very block object, run earlier; it
        is not repeated. A second call before `commit` replaces the pending
        result.
        """
        self._pending = None
        header = block.header
        self._check_header(header)
        if checked is None or checked.block is not block:
            checked = self.check_block_txs(block)
        context = self._block_context(header.height, header.timestamp_ms, header.proposer)
        with self.committed_view() as view:
            run = self._execute(view, context, block.txs, [TX_OK] * len(block.txs),
                                strict=True, wire=wire_txs(block), tx_ids=checked.tx_ids)
        assert len(run.results) == len(block.txs)
        if header.validator_set_hash != run.validator_set_hash:
            raise InvalidBlock(f"block {header.height}: validator set hash is not the set "
                               "that signs this height")
        if header.state_root != run.app_hash:
            raise InvalidBlock(f"block {header.height}: state root does not match the state "
                               "after its txs")
        return self._keep_pending(block, checked.block_bytes, checked.tx_ids, run,
                                  checked.tx_order)

    def attach_commit(self, commit: CommitCert) -> Block:
        """Attach the commit certificate of the pending block, so `commit` stores it with
        the block; the pending block with its certificate.

        InvalidBlock unless a block is pending and `commit` certifies it (its
        height and hash). The signatures are the engine's to check.
        """
        pending = self._pending
        if pending is None:
            raise InvalidBlock("a commit certificate without a finalized block")
        block = pending.block
        if commit.height != block.header.height or commit.block_hash != pending.commit.block_hash:
            raise InvalidBlock(f"the commit certifies block {commit.height}, not the pending "
                               f"block {block.header.height}")
        bare = pending.commit.block_bytes
        if block.commit is not None:
            bare = block.encode()[: -len(block.commit.encode()) - 1] + b"\x00"
        invariant(bare[-1:] == b"\x00", "a block without a commit ends with the flag 0")
        with_commit = Block(block.header, block.txs, commit)
        block_bytes = bare[:-1] + b"\x01" + commit.encode()
        object.__setattr__(with_commit, "_encoded", block_bytes)
        pending.block = with_commit
        pending.commit = dataclasses.replace(pending.commit, block_bytes=block_bytes)
        pending.result = dataclasses.replace(pending.result, block=with_commit)
        return with_commit

    # --- ABCI: Commit ----------------------------------------------------------------

    def commit(self, then: Callable[[], None] | None = None) -> int:
        """Make the pending block durable (one LMDB write txn), then call `then` (if
        given); the new height. With `defer_writes` the write, then `then`, run on the
        writer thread after this returns (`then` on this thread instead when a full map
        makes the write wait for `settle`); a `then` that raises fails like the write."""
        pending = self._pending
        if pending is None:
            raise InvalidBlock("commit without a finalized block")
        header = pending.block.header
        parent = self._tip
        tip = ChainTip(parent.chain_id, parent.genesis_hash, header.height,
                       pending.commit.app_hash, pending.commit.block_hash)
        if self._writer is None:
            # Other threads' `committed_view` reads the block through its changes while
            # the store writes it (a snapshot then shows the parent or the block, both
            # named here), as with a deferred write.
            with self._tip_lock:
                self._tip = tip
                self._unwritten = (parent, pending.commit, None)
            try:
                self.store.commit_block(pending.commit)
                invariant(self.store.last() == tip, "the store's tip is not the committed block")
            except BaseException:
                with self._tip_lock:
                    self._tip, self._unwritten = parent, None
                raise
            with self._tip_lock:
                self._unwritten = None
        else:
            self.settle()  # one unwritten block at most
        self._pending = None
        self._recent_nodes = pending.commit.new_nodes
        self._last_time_ms = header.timestamp_ms
        if self._writer is None:
            if then is not None:
                then()
        else:  # handed over once this thread's state names the block committed
            with self._tip_lock:
                self._tip = tip
                self._unwritten = (parent, pending.commit, then)
                self._writing = self._writer.submit(self._write, pending.commit, tip, then)
        return header.height

    @property
    def writing(self) -> Future[bool] | None:
        """The deferred write in hand (its result: True written, False left to `settle` by
        a full map; its exception: the write's failure), or None."""
        return self._writing

    # --- the single-validator producer -------------------------------------------------

    def build_block(self, txs: Iterable[Tx | bytes], timestamp_ms: int,
                    proposer: bytes) -> Block:
        """The record of a next block made of the txs among `txs` that pass their checks
        and admission, in order (others dropped).

        Does not change anything, pending included: the caller runs
        `finalize_block` and `commit` on it.
        """
        height = self._tip.height + 1
        timestamp_ms = max(timestamp_ms, self._last_time_ms)
        items = list(txs)
        codes, decoded = self.stateless_check(items, height)
        block = self._block_context(height, timestamp_ms, proposer)
        with self.committed_view() as view:
            run = self._execute(view, block, decoded, codes, strict=False)
        return self._record(run)

    # --- proofs ------------------------------------------------------------------------

    def prove(self, key: bytes) -> StateProof:
        """The committed value of `key` and its proof against the committed state root."""
        self.settle()
        with self.store.reader() as view:
            tip = view.last()
            value = view.get_state(key)
            proof = StateTree(view, tip.app_hash).prove(key)
        return StateProof(tip.height, tip.app_hash, key, value, proof)

    def prove_account(self, address: bytes) -> StateProof:
        return self.prove(account_key(address))


def _diff(state: BlockState,
          read_many: Callable[[list[bytes]], list[bytes | None]] | None,
          ) -> dict[bytes, bytes | None]:
    """The block's changes against committed state, in key order: its writes, less those
    that leave a key as it was (a key written back to its old value, a new key deleted).

    The committed values no tx read are read here, a table's keys in one `read_many`
    call (`StoreView.get_states`) rather than one lookup each (most are new keys,
    missing in the store), and kept in `state.committed` for the supply check.
    """
    writes, committed = state.writes, state.committed
    keys = sorted(writes)
    unknown = [key for key in keys if key not in committed]
    if unknown:
        if read_many is None:
            for key in unknown:
                state.committed_value(key)
        else:
            start, count = 0, len(unknown)
            while start < count:  # one call per table: the keys are sorted, so by table
                table = unknown[start][0]
                stop = (count if table == 0xFF else
                        bisect.bisect_left(unknown, bytes([table + 1]), start))
                run = unknown[start:stop]
                committed.update(zip(run, read_many(run), strict=True))
                start = stop
    return {key: value for key in keys if (value := writes[key]) != committed[key]}


def _wire(item: Tx | bytes) -> bytes:
    return item.encode() if isinstance(item, Tx) else bytes(item)


def _account_supply(key: bytes, value: bytes) -> int:
    return unpack_account(value)[0]


def _fee_pool_supply(key: bytes, value: bytes) -> int:
    return decode_fee_pool(value) if key == FEE_POOL_KEY else 0
