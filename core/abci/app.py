"""The ABCI 2.0 application: the ledger behind both engines (docs/abci.md).

`Application` turns the ABCI calls of `core/abci/types.py` into calls on the
state machine and the store. The in-process single-validator engine calls it
directly; CometBFT calls it through the ABCI socket server. Domain packages
(the mall) plug in through `install` functions: tx handlers, block hooks,
supply tables and query paths. Nothing here keeps a clock or assumes an engine.

Batch envelopes (`envelope.py`) are taken apart at this seam, before anything
is checked or executed: the state machine only ever sees the signed txs they
carry, so the rules are the same whichever engine (or transport) brought them.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..block import Block, CommitCert
from ..constants import (
    ADDRESS_BYTES,
    BLOCK_BYTES_MAX,
    BLOCK_TXS_MAX,
    HASH_BYTES,
    PROPOSAL_TIME_TARGET_MS,
    PROPOSAL_TXS_MIN,
    PROPOSAL_TXS_START,
)
from ..errors import TX_OK, ChainmallError, InvalidInput, QueryError
from ..genesis import Genesis
from ..state.accounts import account_key
from ..state.machine import CheckTxResult as MachineCheckTxResult
from ..state.machine import StateMachine
from ..state.receipts import decode_receipts
from ..state.root.proofs import prove_many
from ..state.unwritten import UnwrittenView
from ..store import Store, StoreView, height_key
from ..tx import Tx
from .block_sizer import BlockSizer
from .decoded import DecodedTxs
from .envelope import carried_count, flatten, group
from .types import (
    BlockRequest,
    CheckTxKind,
    CheckTxResult,
    CommitResult,
    FinalizeBlockResult,
    InfoResult,
    InitChainRequest,
    InitChainResult,
    ProvenEntry,
    QueryRequest,
    QueryResult,
    ValidatorUpdate,
    validator_address,
)

APP_VERSION = 1
_U64 = struct.Struct(">Q")


class StateReader:
    """Committed state at one height, as query handlers read it."""

    __slots__ = ("_view",)

    def __init__(self, view: StoreView | UnwrittenView) -> None:
        self._view = view

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, None if absent."""
        return self._view.get_state(key)

    def scan(self, start: bytes, end: bytes, limit: int | None = None) -> list[tuple[bytes, bytes]]:
        """Entries with start <= key < end (one table) in key order, at most `limit`."""
        result = []
        for item in self._view.state_range(start, end):
            result.append(item)
            if limit is not None and len(result) >= limit:
                break
        return result


# A query path's handler: the state at the query's height and the request data ->
# the state keys to return (each is read and, if asked, proven by the application).
QueryHandler = Callable[[StateReader, bytes], Sequence[bytes]]
# A domain package's installer: tx handlers, block hooks, supply tables.
Installer = Callable[[StateMachine, Genesis], None]
# A domain package's installer on the application: query paths, the proposer lookup.
QueryInstaller = Callable[["Application"], None]
# A domain package's entries in the state at height 0.
GenesisEntries = Callable[[Genesis], Mapping[bytes, bytes]]
# The public key of the validator at a CometBFT address, from committed state (None: unknown).
ProposerLookup = Callable[[StateReader, bytes], "bytes | None"]


@dataclass(frozen=True, slots=True)
class Module:
    """A domain package as the application sees it.

    `install_queries` registers query paths and any other application-side
    lookup (`register_proposer_lookup`); `genesis_state` gives the module's
    state entries at height 0 (written with the ledger's when a store is
    initialised).
    """

    name: str
    install: Installer
    install_queries: QueryInstaller | None = None
    genesis_state: GenesisEntries | None = None


def default_modules() -> tuple[Module, ...]:
    """The domain packages every chainmall node runs, in registration order."""
    # The domains sit above the seam: imported when a node is built.
    from .. import mall, trust
    from ..validators import install as validators

    return (Module("validators", validators.install, validators.install_app,
                    validators.genesis_state),
            Module("mall", mall.install, mall.install_queries),
            Module("trust", trust.install, trust.install_queries))


def genesis_entries(genesis: Genesis, modules: Sequence[Module]) -> dict[bytes, bytes]:
    """Every module's state entries at height 0 (a key given twice is a ValueError)."""
    entries: dict[bytes, bytes] = {}
    for module in modules:
        if module.genesis_state is None:
            continue
        for key, value in module.genesis_state(genesis).items():
            if key in entries:
                raise ValueError(f"module {module.name} repeats the genesis entry {key.hex()}")
            entries[key] = value
    return entries


def ledger_machine(store: Store, genesis: Genesis,
                   modules: Sequence[Module] | None = None) -> StateMachine:
    """A state machine with the domain modules installed (default: `default_modules()`):
    what every path that writes or replays the ledger outside an engine (init, import,
    check) must use, so its genesis state and blocks are the application's."""
    return Application(store, genesis, modules).machine


class Application:
    """The ledger as an ABCI 2.0 application (implements `AbciApplication`)."""

    def __init__(self, store: Store, genesis: Genesis,
                 modules: Sequence[Module] | None = None, version: str = "",
                 proposal_target_ms: float = PROPOSAL_TIME_TARGET_MS) -> None:
        self.store = store
        self.genesis = genesis
        installed = default_modules() if modules is None else tuple(modules)
        self.machine = StateMachine(store, genesis,
                                    genesis_entries=genesis_entries(genesis, installed))
        self.version = version
        self._queries: dict[str, QueryHandler] = {}
        # Upper state tree nodes already read and checked, for query proofs (prove_many).
        self._proof_cache: dict[bytes, bytes] = {}
        self._proposers = {validator_address(v.public_key): v.public_key
                           for v in genesis.validators}
        self._proposer_lookup: ProposerLookup | None = None
        # This node's proposals: what the last blocks' FinalizeBlock + Commit time says
        # fits in the target (`proposal_txs`), by txs carried.
        self.proposal_sizer = BlockSizer(BLOCK_TXS_MAX, proposal_target_ms,
                                         floor=PROPOSAL_TXS_MIN, start=PROPOSAL_TXS_START)
        self._arrived = 0  # carried txs CheckTx admitted as new since the last commit
        self._arrived_last = 0  # ... between the last two commits
        self._finalized_txs = 0  # the finalized block's carried txs, not committed yet
        self._finalize_ms = 0.0  # and its FinalizeBlock's time
        # What CheckTx and proposals decoded, by CometBFT tx: the later calls reuse it.
        self.decoded = DecodedTxs()
        # The finalized block's record and receipt codes, then (after Commit) the committed
        # one's: `committed_block`.
        self._finalized_block: tuple[Block, tuple[int, ...]] | None = None
        self._committed_block: tuple[Block, tuple[int, ...]] | None = None
        # Whether `query` waits for a deferred write in hand (CometBFT's Query answers the
        # height its last Commit made); the in-process node turns it off: its reads answer
        # the last block written, from a store snapshot, without waiting.
        self.queries_settle = True
        for name, handler in (("/state", _state_keys), ("/account", _account_keys)):
            self.register_query(name, handler)
        for module in installed:
            module.install(self.machine, genesis)
            if module.install_queries is not None:
                module.install_queries(self)

    # --- extension ------------------------------------------------------------------

    def register_query(self, path: str, handler: QueryHandler) -> None:
        """Answer `query(path, ...)` with the entries `handler` names (a path is
        registered once)."""
        if not path.startswith("/") or path in self._queries or path in ("/tx", "/block"):
            raise ValueError(f"query path {path!r} is taken or does not start with '/'")
        self._queries[path] = handler

    def register_proposer_lookup(self, lookup: ProposerLookup) -> None:
        """Find proposers' public keys with `lookup` on committed state instead of in the
        genesis set (once: the module that keeps the validator set in state)."""
        if self._proposer_lookup is not None:
            raise ValueError("the proposer lookup is already registered")
        self._proposer_lookup = lookup

    # --- deferred durable writes ------------------------------------------------------

    def defer_commits(self, process: bool = False) -> None:
        """From now on `commit` hands the block's durable write (the store's one LMDB
        transaction) to the state machine's writer thread, or with `process` to its
        writer process (`StateMachine.defer_writes`), and returns: CometBFT moves to
        the next height while the write runs. The calls that execute or admit against
        committed state (FinalizeBlock, CheckTx, the proposer lookup) read the unwritten
        block through its changes (`StateMachine.committed_view`) and do not wait;
        those that answer what is durable (`info`, queries, `committed_block`) wait for
        the write (`settle`); PrepareProposal and ProcessProposal are stateless. At
        most one block is unwritten: the next Commit waits for the write in hand.
        Restart contract: until the write is done the store (and `info`) is one block
        behind CometBFT's state, which CometBFT's handshake replays (never ahead). A
        failed write fails every later call (the ABCI server then stops the node).
        Once deferred, a second call changes nothing (the first one's writer stays)."""
        self.machine.defer_writes(process=process)

    def settle(self) -> None:
        """Wait for the deferred durable write in hand, if any; raise a write's failure
        (then and at every later call: the app's state is no longer trusted)."""
        self.machine.settle()

    def close(self) -> None:
        """Finish the write in hand and stop the writer (before the store closes)."""
        self.machine.close()

    # --- Info / InitChain -----------------------------------------------------------

    def info(self) -> InfoResult:
        """The last durably committed height and its app hash."""
        self.settle()
        height, app_hash = self.machine.info()
        return InfoResult(height, app_hash, self.version, APP_VERSION)

    def init_chain(self, request: InitChainRequest) -> InitChainResult:
        """Check the engine's genesis against ours; the genesis app hash.

        InvalidInput if the chain already has blocks, or the chain id or a
        non-empty validator list differs from genesis.json's.
        """
        self.settle()
        height, app_hash = self.machine.info()
        if height != 0:
            raise InvalidInput(f"InitChain on a chain at height {height}")
        if request.chain_id != self.genesis.chain_id:
            raise InvalidInput(f"the engine's chain id {request.chain_id!r} is not "
                               f"genesis.json's {self.genesis.chain_id!r}")
        if request.validators:
            ours = sorted((v.public_key, v.power) for v in self.genesis.validators)
            theirs = sorted((v.public_key, v.power) for v in request.validators)
            if ours != theirs:
                raise InvalidInput("the engine's validators are not genesis.json's")
        if request.initial_height not in (0, 1):
            raise InvalidInput(f"initial height {request.initial_height}: chainmall starts at 1")
        return InitChainResult((), app_hash)

    # --- CheckTx ----------------------------------------------------------------------

    def check_tx(self, tx: bytes, kind: CheckTxKind = CheckTxKind.NEW) -> CheckTxResult:
        """Stateless checks, then admission against committed state (nonce >= the
        account's). A recheck is the same call: the signature verdict is cached."""
        return self.check_txs([tx], kind)[0]

    def check_txs(self, txs: Sequence[bytes], kind: CheckTxKind = CheckTxKind.NEW, *,
                  arriving: bool = True) -> list[CheckTxResult]:
        """`check_tx` of several txs at once (one batch of stateless checks): what the ABCI
        server calls for a run of CheckTx requests of one kind read together.

        An envelope is admitted when every tx it carries is; otherwise its verdict is
        its first refused tx's code, with that tx's index in the log. The carried txs of
        a NEW check admitted count as arrivals for sizing proposals (`proposal_txs`),
        unless `arriving` is False (a check before the tx goes to the mempool, which
        checks it again). Those admitted (arriving) stay decoded in `decoded` for the
        proposals and the block that take them. A deferred write is not waited for:
        admission reads the committed state through the unwritten block.
        """
        flat, counts = flatten(txs)
        if arriving and kind is CheckTxKind.NEW:
            self._arrived += len(flat)
        checked = self.machine.check_txs(flat)
        if arriving:  # those admitted go to the mempool: kept decoded for their block
            remember = self.decoded.remember
            for raw, count, inner in zip(txs, counts, group(counts, checked), strict=True):
                if all(result.code == TX_OK for result in inner):
                    remember(raw, [result.tx for result in inner], count)
        # One answer per CometBFT tx: an envelope's carried txs get no answer of their own.
        answers = []
        start = 0
        for count in counts:
            if not count:
                answers.append(_check_answer(checked[start]))
                start += 1
                continue
            inner = checked[start:start + count]
            start += count
            refused = next((i for i, result in enumerate(inner) if result.code != TX_OK), None)
            if refused is None:
                answers.append(CheckTxResult(TX_OK, "", priority=min(
                    result.tx.fee for result in inner)))  # type: ignore[union-attr]
            else:
                result = inner[refused]
                answers.append(CheckTxResult(result.code, f"envelope tx {refused}: {result.log}",
                                             tx_id=b"" if result.tx is None else result.tx.tx_id))
        return answers

    # --- proposals ------------------------------------------------------------------------

    @property
    def proposal_txs(self) -> int:
        """The carried txs this node's next proposal may take: what the last blocks' time
        says fits in the sizer's target, or the txs that arrived over the last block if
        more (so capped proposals never let the mempool grow), at most BLOCK_TXS_MAX."""
        sizer = self.proposal_sizer
        return min(BLOCK_TXS_MAX, max(sizer.cap, self._arrived_last))

    def prepare_proposal(self, request: BlockRequest) -> tuple[bytes, ...]:
        """The request's txs (envelopes whole) whose carried txs all pass their stateless
        checks, in order, up to `proposal_txs` carried txs (the first one always, however
        many it carries), within the block limits (BLOCK_TXS_MAX counts carried txs) and
        the request's byte budget. Only the txs that may be taken are checked."""
        txs = request.txs
        budget = request.max_tx_bytes or BLOCK_BYTES_MAX
        soft = self.proposal_txs
        chosen: list[bytes] = []
        used = carried = index = 0
        while index < len(txs) and carried < soft:
            # The next txs that would fill the room left, if all of them pass.
            end, planned = index, carried
            while end < len(txs):
                count = carried_count(txs[end])
                if planned + count > soft and (chosen or end > index):
                    break
                planned += count
                end += 1
            if end == index:
                break
            window = txs[index:end]
            index = end
            flat, counts = self.decoded.flatten(window)
            codes, _ = self.machine.stateless_check(flat, request.height)
            for tx, verdicts in zip(window, group(counts, codes), strict=True):
                if any(code != TX_OK for code in verdicts):
                    continue
                if carried + len(verdicts) > BLOCK_TXS_MAX or used + len(tx) > budget:
                    return tuple(chosen)
                chosen.append(tx)
                used += len(tx)
                carried += len(verdicts)
        return tuple(chosen)

    def process_proposal(self, request: BlockRequest) -> bool:
        """Accept only a proposal within the limits whose every tx (every tx an envelope
        carries) passes its stateless checks; a malformed envelope fails them. The txs of an
        accepted proposal stay decoded (`decoded`) for its FinalizeBlock."""
        if sum(map(len, request.txs)) > BLOCK_BYTES_MAX:
            return False
        flat, counts = self.decoded.flatten(request.txs)
        if len(flat) > BLOCK_TXS_MAX:
            return False
        codes, decoded = self.machine.stateless_check(flat, request.height, remember=True)
        if not all(code == TX_OK for code in codes):
            return False
        remember = self.decoded.remember  # for FinalizeBlock (a no-op for those kept)
        for raw, count, inner in zip(request.txs, counts, group(counts, decoded), strict=True):
            remember(raw, inner, count)
        return True

    # --- FinalizeBlock / Commit -----------------------------------------------------

    def proposer_key(self, address: bytes) -> bytes:
        """The public key of the validator at CometBFT address `address` (zeros if the
        address is not a validator's: the record then names no proposer).

        With a registered lookup (the validators module) the key comes from
        committed state, so validators that joined after genesis are found.
        """
        address = bytes(address)
        lookup = self._proposer_lookup
        if lookup is None:
            return self._proposers.get(address, bytes(HASH_BYTES))
        with self.machine.committed_view() as view:  # an unwritten block's changes too
            key = lookup(StateReader(view), address)
        return bytes(HASH_BYTES) if key is None else key

    def finalize_block(self, request: BlockRequest,
                       decoded: Sequence[Tx] | None = None) -> FinalizeBlockResult:
        """Execute a decided block in memory (docs/abci.md); nothing is durable yet.

        Envelopes are executed as the txs they carry: `tx_results` has one result per
        carried tx (and per plain tx), `envelopes` says how to group them back.
        `decoded` (the in-process engine's mempool txs) is `request.txs` decoded already,
        plain txs in the same order: they are not decoded again (their checks are the
        same: the signature cache or the batch check, by their bytes). A deferred write
        of the previous block is not waited for: the block executes over its changes.
        """
        began = time.perf_counter()
        self._finalized_txs = 0
        self._finalized_block = None
        if decoded is not None and len(decoded) == len(request.txs):
            flat: Sequence[Tx | bytes] = decoded
            counts: Sequence[int] = ()
        else:
            flat, counts = self.decoded.flatten(request.txs)
            self.decoded.forget(request.txs)  # decided: not needed again
        result = self.machine.execute(request.height, request.time_ms,
                                      self.proposer_key(request.proposer_address),
                                      flat, request.misbehavior)
        # The machine's results have ExecTxResult's fields (TxOutcome): handed on as they
        # are, not copied one object per tx.
        finalized = FinalizeBlockResult(result.tx_results, result.events,
                                        tuple(ValidatorUpdate(u.public_key, u.power)
                                              for u in result.validator_updates),
                                        result.app_hash, result.block.hash(),
                                        tuple(counts) if any(counts) else ())
        self._finalized_block = (result.block, tuple(r.code for r in result.tx_results
                                                     if r.recorded))
        self._finalized_txs = len(flat)
        self._finalize_ms = (time.perf_counter() - began) * 1000.0
        return finalized

    def attach_commit(self, commit: CommitCert) -> Block:
        """Store the in-process engine's commit certificate with the pending block; that
        block, with the certificate."""
        block = self.machine.attach_commit(commit)
        if self._finalized_block is not None:
            self._finalized_block = (block, self._finalized_block[1])
        return block

    def commit(self, then: Callable[[tuple[Block, tuple[int, ...]] | None], None] | None = None,
               ) -> CommitResult:
        """Make the finalized block durable (one LMDB transaction), then call `then` (if
        given) with the block and its receipt codes (`committed_block`'s answer). With
        `defer_commits` the write and `then` run on the writer thread after this returns
        (only once the block is durable: a tx is told final only then).

        The retain height is 0 (the engine keeps every block): chainmall keeps
        its own record of every block, and peers may need the engine's. The block's
        FinalizeBlock + Commit time (to the end of its write) sizes this node's next
        proposals.
        """
        self.settle()  # the previous block's write (at most one unwritten block)
        began = time.perf_counter()
        self._committed_block = None
        finalized, self._finalized_block = self._finalized_block, None
        txs, self._finalized_txs = self._finalized_txs, 0
        self._arrived_last, self._arrived = self._arrived, 0
        finalize_ms = self._finalize_ms

        def written() -> None:  # the block is durable (on the writer thread when deferred)
            self._committed_block = finalized
            self.proposal_sizer.observe(txs, finalize_ms
                                        + (time.perf_counter() - began) * 1000.0)
            if then is not None:
                then(finalized)

        self.machine.commit(written)
        return CommitResult(0)

    def committed_block(self) -> tuple[Block, tuple[int, ...]] | None:
        """The block the last Commit made durable, as the store keeps it, and its txs'
        receipt codes (what `stored_block` would read back), without reading the store;
        None before the first Commit of this process."""
        self.settle()
        return self._committed_block

    # --- Query ------------------------------------------------------------------------

    def query(self, request: QueryRequest) -> QueryResult:
        """Read at a committed height (0: the latest), with proofs when asked.

        Errors come back as a non-zero code, never as an exception. With a deferred write
        in hand it waits for it, unless `queries_settle` is off: then it answers the last
        block written (the store's snapshot holds only whole written blocks).
        """
        if self.queries_settle:
            self.settle()
        try:
            return self._query(request)
        except ChainmallError as exc:
            return QueryResult(exc.code, str(exc))

    def _query(self, request: QueryRequest) -> QueryResult:
        with self.store.reader() as view:
            tip = view.last()
            height = request.height or tip.height
            if height > tip.height:
                raise QueryError(f"height {height} is above the tip {tip.height}")
            if request.path in ("/tx", "/block"):
                return _chain_query(view, request.path, request.data, tip.height)
            handler = self._queries.get(request.path)
            if handler is None:
                raise QueryError(f"unknown query path {request.path!r}")
            if height != tip.height:
                raise QueryError(f"state reads at height {height}: only the latest height "
                                 f"({tip.height}) is served")
            root = tip.app_hash
            keys = list(handler(StateReader(view), bytes(request.data)))
            # One walk of the tree proves every key (shared upper nodes read once).
            proofs = ([proof.encode() for proof in prove_many(view, root, keys,
                                                              self._proof_cache)]
                      if request.prove else [b""] * len(keys))
            entries = tuple(ProvenEntry(key, view.get_state(key), proof)
                            for key, proof in zip(keys, proofs, strict=True))
        return QueryResult(TX_OK, "", height, root, entries)


def _check_answer(result: MachineCheckTxResult) -> CheckTxResult:
    """The CheckTx answer for one plain tx: its verdict and, if it decoded, what a mempool
    orders by."""
    decoded = result.tx
    if decoded is None:
        return CheckTxResult(result.code, result.log)
    return CheckTxResult(result.code, result.log, priority=decoded.fee, sender=decoded.sender,
                         nonce=decoded.nonce, tx_id=decoded.tx_id)


def _state_keys(state: StateReader, data: bytes) -> Sequence[bytes]:
    if not data:
        raise QueryError("/state needs a state key")
    return [data]


def _account_keys(state: StateReader, data: bytes) -> Sequence[bytes]:
    if len(data) != ADDRESS_BYTES:
        raise QueryError(f"/account needs a {ADDRESS_BYTES}-byte address")
    return [account_key(data)]


def _chain_query(view: StoreView, path: str, data: bytes, tip_height: int) -> QueryResult:
    """`/tx` (tx id -> height u64, index u32, code u16) and `/block` (height u64 ->
    the stored block bytes): chain records, not state entries."""
    if path == "/tx":
        if len(data) != HASH_BYTES:
            raise QueryError(f"/tx needs a {HASH_BYTES}-byte tx id")
        location = view.tx_location(data)
        if location is None:
            return QueryResult(TX_OK, "not found", tip_height, b"", (ProvenEntry(data, None),))
        height, index = location
        receipts = view.receipts(height)
        code = decode_receipts(receipts)[index] if receipts is not None else 0
        value = _U64.pack(height) + index.to_bytes(4, "big") + code.to_bytes(2, "big")
        return QueryResult(TX_OK, "", tip_height, b"", (ProvenEntry(data, value),))
    if len(data) != _U64.size:
        raise QueryError("/block needs a height as u64")
    height = _U64.unpack(data)[0]
    raw = view.block(height) if height else None
    return QueryResult(TX_OK, "" if raw else "not found", tip_height, b"",
                       (ProvenEntry(height_key(height), raw),))
