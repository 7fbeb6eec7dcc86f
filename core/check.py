"""`db check`: re-verify a stored chain and its state tree, listing every problem found.

Nothing the store derived is trusted: the chain is replayed from the genesis
through the state machine, and every stored block, index entry, receipt,
root, state entry and tree node is compared with what the replay and the
blocks say (docs/archive.md section 4). A fault in one place is reported
and the check goes on with the rest; it never stops at the first problem.

The replay runs in memory (`ReplayStore`), not in a temporary LMDB: it needs
no free disk space, and its memory is the replayed state's entries, the new
tree nodes of its last two blocks, and the few nodes the checked store does
not hold byte for byte. The tree walk keeps the set of node hashes it has
reached (about 100 bytes per stored node).
"""

from __future__ import annotations

import bisect
from collections.abc import Container, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from . import accel
from .block import Block, decode_block
from .constants import CHECK_PROBLEMS_MAX, HASH_BYTES, STATE_NODE_VERSION
from .errors import ChainmallError, DecodeError, StoreChainMismatch, StoreConflict
from .genesis import Genesis
from .progress import ProgressCallback, no_progress
from .state.machine import CheckedTxs, StateMachine
from .state.pipeline import checked_ahead
from .state.receipts import decode_receipts, encode_receipts
from .state.root import (
    EMPTY_ROOT,
    KIND_INTERNAL,
    KIND_LEAF,
    NODE_BYTES,
    STATE_LEAF_KEY,
    STATE_NODE_KEY,
    build_tree,
    decode_node,
)
from .store import BlockCommit, ChainTip, Store, StoreView

__all__ = ["ReplayStore", "check_store"]

_NODES_PER_STEP = 4096  # nodes read per batch of the tree walk, and per progress report
_NO_CHILDREN = EMPTY_ROOT + EMPTY_ROOT  # an internal node with two Empty sides does not exist
_RECENT_BLOCKS = 2  # blocks whose new nodes the replay keeps at hand


def _ledger_machine(store: object, genesis: Genesis) -> StateMachine:
    """The state machine with the domain modules installed (deferred import: the
    application imports the machine), so the replay is the application's."""
    from .abci.app import ledger_machine

    return ledger_machine(store, genesis)  # type: ignore[arg-type]


# --- the replay's store ------------------------------------------------------------


class ReplayStore:
    """A Store stand-in in memory for `StateMachine`, backed by a checked store's nodes.

    State entries live in a dict. A tree node the replay writes is kept in
    memory only when the checked store does not hold the same bytes under
    its hash (`sound` names stored nodes already verified to hash to their
    key; others are read and compared); otherwise it is read back from the
    checked store (every read is hash-checked by the tree). So the replay
    never depends on a damaged stored node, and a healthy store costs
    almost no node memory.

    It offers what the state machine calls on a Store: `is_initialised`,
    `init_genesis`, `check_chain`, `last`, `reader` (a view with `last`,
    `get_state`, `state_range`, `get_node` and `block`) and `commit_block`.
    """

    def __init__(self, nodes_from: StoreView, sound: Container[bytes] = ()) -> None:
        self._stored = nodes_from
        self._sound = sound
        self.state: dict[bytes, bytes] = {}
        self._sorted_keys: list[bytes] | None = None  # for range reads; None: stale
        self._nodes: dict[bytes, bytes] = {}  # kept: the store lacks them or differs
        self._recent: tuple[Mapping[bytes, bytes], ...] = ()  # the last blocks' new nodes
        self._tip: ChainTip | None = None
        self._tip_block: bytes | None = None

    def is_initialised(self) -> bool:
        """Whether the genesis state has been written."""
        return self._tip is not None

    def init_genesis(self, chain_id: str, genesis_hash: bytes, state: Mapping[bytes, bytes],
                     new_nodes: Mapping[bytes, bytes], app_hash: bytes) -> None:
        """Hold the genesis state (height 0)."""
        assert self._tip is None
        self.state = dict(state)
        self._sorted_keys = None
        self._keep(new_nodes)
        self._tip = ChainTip(chain_id, genesis_hash, 0, app_hash, genesis_hash)

    def check_chain(self, chain_id: str, genesis_hash: bytes) -> ChainTip:
        """The tip, after checking it is chain `chain_id` from `genesis_hash`."""
        tip = self.last()
        if (tip.chain_id, tip.genesis_hash) != (chain_id, genesis_hash):
            raise StoreChainMismatch("the replay holds another chain")
        return tip

    def last(self) -> ChainTip:
        """The last replayed block's tip."""
        assert self._tip is not None
        return self._tip

    @contextmanager
    def reader(self) -> Iterator[_ReplayView]:
        """A view of the replayed state (there is one writer, the check, and no snapshot)."""
        yield _ReplayView(self)

    def commit_block(self, commit: BlockCommit) -> None:
        """Apply a finalized block's state changes and nodes; StoreConflict as Store's."""
        tip = self.last()
        if commit.height != tip.height + 1 or commit.parent_app_hash != tip.app_hash:
            raise StoreConflict(f"block {commit.height} does not extend the replayed tip")
        for key, value in commit.state_changes.items():
            if value is None:
                self.state.pop(key, None)
            else:
                self.state[key] = value
        if commit.state_changes:
            self._sorted_keys = None
        self._keep(commit.new_nodes)
        for node_hash in commit.stale_nodes:  # out of the replayed tree: kept no longer
            self._nodes.pop(node_hash, None)
        # The next block reads mostly nodes the last ones wrote (the top of the tree is
        # rewritten by every block): serve those from memory, not the store.
        self._recent = (commit.new_nodes, *self._recent[: _RECENT_BLOCKS - 1])
        self._tip_block = commit.block_bytes
        self._tip = ChainTip(tip.chain_id, tip.genesis_hash, commit.height, commit.app_hash,
                             commit.block_hash)

    def state_range(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Replayed state entries with start <= key < end, in key order."""
        if self._sorted_keys is None:  # sorted again only after a block changed the state
            self._sorted_keys = sorted(self.state)
        keys = self._sorted_keys
        for index in range(bisect.bisect_left(keys, start), len(keys)):
            key = keys[index]
            if key >= end:
                break
            yield key, self.state[key]

    def get_node(self, node_hash: bytes) -> bytes | None:
        """A node the replay wrote: from memory, else the checked store's identical copy."""
        node = self._nodes.get(node_hash)
        if node is None:
            for nodes in self._recent:
                node = nodes.get(node_hash)
                if node is not None:
                    return node
            return self._stored.get_node(node_hash)
        return node

    def _keep(self, nodes: Mapping[bytes, bytes]) -> None:
        sound, stored = self._sound, self._stored.get_node
        for node_hash, node in nodes.items():
            if node_hash not in sound and stored(node_hash) != node:
                self._nodes[node_hash] = node


class _ReplayView:
    """What `ReplayStore.reader()` yields: the StoreView calls the state machine makes."""

    __slots__ = ("_replay",)

    def __init__(self, replay: ReplayStore) -> None:
        self._replay = replay

    def last(self) -> ChainTip:
        return self._replay.last()

    def get_state(self, key: bytes) -> bytes | None:
        return self._replay.state.get(key)

    def state_range(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._replay.state_range(start, end)

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self._replay.get_node(node_hash)

    def block(self, height: int) -> bytes | None:
        replay = self._replay
        return replay._tip_block if height == replay.last().height else None


# --- problems -----------------------------------------------------------------------


class _Problems:
    """The problem lines, at most CHECK_PROBLEMS_MAX; past that, a count of the rest."""

    __slots__ = ("_dropped", "_lines")

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._dropped = 0

    def add(self, line: str) -> None:
        if len(self._lines) < CHECK_PROBLEMS_MAX:
            self._lines.append(line)
        else:
            self._dropped += 1

    def lines(self, *others: _Problems) -> list[str]:
        """These lines, then the others', at most CHECK_PROBLEMS_MAX (and a count of the rest)."""
        lines = [line for part in (self, *others) for line in part._lines]
        dropped = sum(part._dropped for part in (self, *others))
        dropped += max(0, len(lines) - CHECK_PROBLEMS_MAX)
        more = [f"... and {dropped} more problems"] if dropped else []
        return [*lines[:CHECK_PROBLEMS_MAX], *more]


# --- blocks -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One stored block, decoded and statelessly checked in a worker (or why not)."""

    block: Block | None
    checked: CheckedTxs | None
    fault: str | None


@dataclass(slots=True)
class _BlockScan:
    """What the pass over the blocks learned for the later checks."""

    roots: dict[bytes, int]  # state root -> the first height it is the root of
    indexed_txs: int = 0
    all_decoded: bool = True
    last_hash: bytes | None = None  # the last block's header hash (None: unknown)
    replayed: dict[bytes, bytes] | None = None  # the state after the tip, if replayed


def _prepare(checker: StateMachine, item: tuple[int, bytes | None]) -> _Prepared:
    height, raw = item
    if raw is None:
        return _Prepared(None, None, f"block {height}: not stored")
    try:
        block = decode_block(raw)
    except DecodeError as exc:
        return _Prepared(None, None, f"block {height}: does not decode: {exc}")
    try:
        return _Prepared(block, checker.check_block_txs(block), None)
    except ChainmallError as exc:
        return _Prepared(block, None, _at(height, str(exc)))


def _at(height: int, message: str, cause: str = "") -> str:
    """ "block h: message", with a leading "block h: " dropped from the message or cause."""
    prefix = f"block {height}: "
    message = message.removeprefix(prefix) + cause.removeprefix(prefix)
    return prefix + message


def _stored_blocks(view: StoreView, tip: ChainTip) -> Iterator[tuple[int, bytes | None]]:
    for height in range(1, tip.height + 1):
        yield height, view.block(height)


def _scan_blocks(view: StoreView, tip: ChainTip, genesis: Genesis, sound: Container[bytes],
                 problems: _Problems, progress: ProgressCallback) -> _BlockScan:
    """Check every block, its indexes, receipts and root; replay them from the genesis.

    `sound`: the stored tree nodes already verified (the replay reads them
    from the store rather than keeping its own copy).
    """
    replay_store = ReplayStore(view, sound)
    checker = _ledger_machine(replay_store, genesis)
    replay: StateMachine | None = checker
    if tip.genesis_hash != genesis.hash():
        problems.add("the store's genesis hash is not genesis.json's: the chain is not "
                     "replayed")
        replay = None
    root0 = view.root(0)
    if root0 != checker.info()[1]:
        problems.add("height 0: stored root is not the genesis state root")
    scan = _BlockScan(roots={}, last_hash=tip.genesis_hash)
    for root, height in ((root0, 0), (checker.info()[1], 0)):
        if root is not None and len(root) == HASH_BYTES:
            scan.roots.setdefault(root, height)

    def prepare(item: tuple[int, bytes | None]) -> _Prepared:
        return _prepare(checker, item)

    progress("blocks", 0, tip.height)
    for (height, _), prepared in checked_ahead(_stored_blocks(view, tip), prepare):
        stored_root = view.root(height)
        if stored_root is not None and len(stored_root) == HASH_BYTES:
            scan.roots.setdefault(stored_root, height)
        else:
            problems.add(f"block {height}: no 32-byte state root stored")
        receipts = view.receipts(height)
        block = prepared.block
        if block is None:  # not stored or does not decode: nothing else to compare it with
            assert prepared.fault is not None
            problems.add(prepared.fault)
            scan.all_decoded = False
            scan.last_hash = None
            replay = _stop(replay, problems, height, tip.height)
            progress("blocks", height, tip.height)
            continue
        _check_block(view, block, height, scan, receipts, stored_root, problems)
        if prepared.fault is not None:
            problems.add(prepared.fault)
            replay = _stop(replay, problems, height, tip.height)
        elif replay is not None:
            replay = _replay_block(replay, prepared, height, tip.height, stored_root, receipts,
                                   problems)
        progress("blocks", height, tip.height)
    if replay is not None:
        scan.replayed = replay_store.state
    return scan


def _check_block(view: StoreView, block: Block, height: int, scan: _BlockScan,
                 receipts: bytes | None, stored_root: bytes | None,
                 problems: _Problems) -> None:
    """A decoded block against its height, its parent, the indexes and its receipts."""
    header = block.header
    if header.height != height:
        problems.add(f"block {height}: header says height {header.height}")
    if scan.last_hash is not None and header.prev_hash != scan.last_hash:
        problems.add(f"block {height}: prev hash does not link to the previous block")
    block_hash = header.hash()
    scan.last_hash = block_hash
    scan.roots.setdefault(header.state_root, height)
    if view.height_of(block_hash) != height:
        problems.add(f"block {height}: block index does not map its hash here")
    scan.indexed_txs += len(block.txs)
    for index, tx in enumerate(block.txs):
        if view.tx_location(tx.tx_id) != (height, index):
            problems.add(f"block {height}: tx index does not map tx {index} here")
            break
    try:
        codes = decode_receipts(receipts if receipts is not None else b"")
        if len(codes) != header.tx_count:
            problems.add(f"block {height}: {len(codes)} receipts for {header.tx_count} txs")
    except DecodeError as exc:
        problems.add(f"block {height}: receipts do not decode: {exc}")
    if stored_root != header.state_root:
        problems.add(f"block {height}: stored root is not the header's state root")


def _replay_block(replay: StateMachine, prepared: _Prepared, height: int, tip_height: int,
                  stored_root: bytes | None, receipts: bytes | None,
                  problems: _Problems) -> StateMachine | None:
    """Execute and commit one block in the replay; the replay, or None if it had to stop."""
    assert prepared.block is not None and prepared.checked is not None
    try:
        result = replay.finalize_block(prepared.block, prepared.checked)
        replay.commit()
    except ChainmallError as exc:
        problems.add(_at(height, "replay refused it: ", str(exc)))
        return _stop(replay, problems, height, tip_height)
    if result.app_hash != stored_root:
        problems.add(f"block {height}: replayed root is not the stored root")
    if encode_receipts([r.code for r in result.tx_results]) != receipts:
        problems.add(f"block {height}: stored receipts are not the replayed ones")
    return replay


def _stop(replay: StateMachine | None, problems: _Problems, height: int,
          tip_height: int) -> None:
    """End the replay at `height` (once), saying what is no longer re-derived."""
    if replay is not None:
        later = tip_height - height
        after = f", nor those of the {later} blocks after it," if later else ""
        problems.add(f"block {height}: the replay stops here: its state root and receipts{after} "
                     "are not re-derived")
    return None


# --- tables and state ------------------------------------------------------------------


def _check_tables(view: StoreView, tip: ChainTip, scan: _BlockScan, state_entries: int,
                  problems: _Problems) -> None:
    """meta against the last block, and no table holding entries the chain does not explain."""
    if scan.last_hash is not None and scan.last_hash != tip.block_hash:
        problems.add("meta's tip block hash is not the last block's hash")
    if view.root(tip.height) != tip.app_hash:
        problems.add("meta's tip app hash is not the stored root of the tip height")
    expected = {"blocks": tip.height, "block_index": tip.height, "receipts": tip.height,
                "roots": tip.height + 1, "state": state_entries}
    if scan.all_decoded:  # an unreadable block's txs are unknown
        expected["tx_index"] = scan.indexed_txs
    counts = view.entry_counts()
    for name, count in expected.items():
        if counts[name] != count:
            problems.add(f"the {name} table holds {counts[name]} entries; the chain to "
                         f"height {tip.height} accounts for {count}")


def _check_state(items: dict[bytes, bytes], tip: ChainTip, scan: _BlockScan,
                 problems: _Problems) -> None:
    """The stored state against the replayed one, and against the tip's app hash."""
    if scan.replayed is not None and scan.replayed != items:
        replayed = scan.replayed
        differ = sorted(key for key in replayed.keys() | items.keys()
                        if replayed.get(key) != items.get(key))
        shown = ", ".join(key.hex() for key in differ[:3])
        more = f" and {len(differ) - 3} more" if len(differ) > 3 else ""
        problems.add(f"{len(differ)} stored state entries are not the replayed state: "
                     f"{shown}{more}")
    rebuilt = build_tree(items).root if items else EMPTY_ROOT
    if rebuilt != tip.app_hash:
        problems.add("the stored state does not rebuild to the tip's app hash")


# --- the state tree --------------------------------------------------------------------


class _TreeWalk:
    """Visits every node reachable from the state roots it is given, each node once.

    Breadth first: the nodes of a level are read, parsed and hashed in
    batch calls (one per node kind), in key order. `in` tells whether a
    node hash was reached, is stored and hashes to its key.
    """

    def __init__(self, view: StoreView, problems: _Problems,
                 progress: ProgressCallback) -> None:
        self._view = view
        self._problems = problems
        self._progress = progress
        # Trees below this height may miss nodes pruned by design (store.py "Pruning").
        self.whole_from = view.pruned_height()
        self.pruned: set[bytes] = set()  # reached only from older trees, and pruned
        self.total = view.entry_counts()["tree"]  # for progress (staged twice: a bit over)
        self.reached: dict[bytes, int] = {}  # node hash -> height of the first root reaching it
        self.faulty: set[bytes] = set()  # reached, and missing, malformed or mis-hashed

    def __contains__(self, node_hash: object) -> bool:
        """Whether `node_hash` was reached, is stored and hashes to its key."""
        return (node_hash in self.reached and node_hash not in self.faulty
                and node_hash not in self.pruned)

    def walk(self, roots: Iterable[tuple[bytes, int]]) -> None:
        """Check the trees under `roots` ((root, height) pairs), skipping reached nodes."""
        frontier: list[bytes] = []
        for root, height in roots:
            if root != EMPTY_ROOT and root not in self.reached:
                self.reached[root] = height
                frontier.append(root)
        while frontier:
            frontier.sort()  # B-tree lookups in key order touch fewer pages
            following: list[bytes] = []
            for start in range(0, len(frontier), _NODES_PER_STEP):
                following += self._check_nodes(frontier[start : start + _NODES_PER_STEP])
                self._progress("tree nodes", len(self.reached),
                               max(self.total, len(self.reached)))
            frontier = following

    def _check_nodes(self, batch: list[bytes]) -> list[bytes]:
        """Read and verify the nodes `batch` names; the children of the sound ones not
        reached before (now in `reached`, with the height of their parent's root)."""
        reached = self.reached
        leaves: list[tuple[bytes, bytes]] = []  # (node hash, the 64 bytes its hash covers)
        internals: list[tuple[bytes, bytes]] = []
        get_node = self._view.get_node
        for node_hash in batch:
            data = get_node(node_hash)
            if data is None:
                if reached[node_hash] < self.whole_from:
                    self.pruned.add(node_hash)  # only older trees reach it: pruned by design
                    continue
                self._fault(node_hash, "is missing")
            elif (len(data) == NODE_BYTES and data[0] == STATE_NODE_VERSION
                  and data[1] == KIND_LEAF):
                leaves.append((node_hash, data[2:]))
            elif (len(data) == NODE_BYTES and data[0] == STATE_NODE_VERSION
                  and data[1] == KIND_INTERNAL and data[2:] != _NO_CHILDREN):
                internals.append((node_hash, data[2:]))
            else:
                try:
                    decode_node(data)
                    message = "is not canonical"  # not reached: the tests above are decode's
                except DecodeError as exc:
                    message = f"is malformed: {exc}"
                self._fault(node_hash, message)
        children: list[bytes] = []
        for group, key in ((leaves, STATE_LEAF_KEY), (internals, STATE_NODE_KEY)):
            if not group:
                continue
            hashes = accel.digest_many_fixed(b"".join(body for _, body in group),
                                             2 * HASH_BYTES, key)
            for index, (node_hash, body) in enumerate(group):
                if hashes[index * HASH_BYTES : (index + 1) * HASH_BYTES] != node_hash:
                    self._fault(node_hash, "does not hash to its key")
                elif key is STATE_NODE_KEY:
                    height = reached[node_hash]
                    for child in (body[:HASH_BYTES], body[HASH_BYTES:]):
                        if child != EMPTY_ROOT and child not in reached:
                            reached[child] = height
                            children.append(child)
        return children

    def _fault(self, node_hash: bytes, message: str) -> None:
        self.faulty.add(node_hash)
        self._problems.add(f"state tree: node {node_hash.hex()} (under the root of height "
                           f"{self.reached[node_hash]}) {message}")


def _check_unreached(view: StoreView, reached: Mapping[bytes, int], faulty: set[bytes],
                     total: int, problems: _Problems, progress: ProgressCallback) -> None:
    """Stored nodes that no state root reaches (one line: their count and the first).

    A node recorded stale and waiting to be pruned is not counted: its parents
    may be pruned already.
    """
    unreached: set[bytes] = set()
    waiting = set(view.stale_node_hashes())
    first: bytes | None = None
    progress("stored nodes", 0, total)
    for done, node_hash in enumerate(view.node_hashes(), 1):
        if node_hash not in reached and node_hash not in unreached and node_hash not in waiting:
            unreached.add(node_hash)
            first = node_hash if first is None else first
        if done % _NODES_PER_STEP == 0:
            progress("stored nodes", done, total)
    progress("stored nodes", total, total)
    if first is not None:
        count = len(unreached)
        nodes = "1 stored node is" if count == 1 else f"{count} stored nodes are"
        parent = "; a damaged node listed above may be a parent" if faulty else ""
        problems.add(f"state tree: {nodes} reached by no state root (first: "
                     f"{first.hex()}){parent}")


# --- the whole check --------------------------------------------------------------------


def check_store(store: Store, genesis: Genesis,
                progress: ProgressCallback = no_progress) -> tuple[int, list[str]]:
    """Re-verify every stored block, root, entry and tree node: (tip height, problems).

    Reads one snapshot of `store` and never writes to it. Checks, listing
    every fault it finds (at most CHECK_PROBLEMS_MAX lines): every tree node
    reachable from any stored or header state root is stored and hashes to
    its key; the hash chain, tx roots and signatures, the block and tx
    indexes, receipts; a replay from `genesis` (in memory) re-derives every
    state root and receipt and the final state; meta against the last
    block; no table holds entries the chain does not account for; the
    stored state rebuilds to the tip's app hash; every stored node is
    reachable from a root. Progress phases: "tree nodes", "blocks",
    "stored nodes".
    """
    problems, tree_problems = _Problems(), _Problems()
    with store.reader() as view:
        tip = view.last()
        tree = _TreeWalk(view, tree_problems, progress)
        stored_roots = [(root, height) for height in range(tip.height + 1)
                        if (root := view.root(height)) is not None and len(root) == HASH_BYTES]
        # The whole trees first, newest first: a node they reach is held to them.
        tree.walk([(tip.app_hash, tip.height),
                   *sorted((item for item in stored_roots if item[1] >= tree.whole_from),
                           key=lambda item: -item[1])])
        tree.walk(item for item in stored_roots if item[1] < tree.whole_from)
        scan = _scan_blocks(view, tip, genesis, tree, problems, progress)
        header_roots = sorted(scan.roots.items(), key=lambda item: -item[1])
        tree.walk(item for item in header_roots if item[1] >= tree.whole_from)
        tree.walk(item for item in header_roots if item[1] < tree.whole_from)
        items = dict(view.state_items())
        _check_tables(view, tip, scan, len(items), problems)
        _check_state(items, tip, scan, problems)
        del items
        _check_unreached(view, tree.reached, tree.faulty, tree.total, tree_problems, progress)
    return tip.height, problems.lines(tree_problems)
