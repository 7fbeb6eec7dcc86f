"""ext/_tree == core/state/root/tree.py `_Apply`: the same roots, nodes (in order), reads,
stale nodes and errors, over memory readers and a real Store's staged levels."""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from chainmall import ext
from chainmall.core import constants
from chainmall.core.state import root as sr
from chainmall.core.state.root import EMPTY_ROOT, MemoryNodeStore, StateTree, TreeUpdate
from chainmall.core.state.root import tree as tree_module
from chainmall.core.state.root.nodes import _corrupt, _parse_node, _sorted_changes
from chainmall.core.store import BlockCommit, Store
from hypothesis import given, settings
from hypothesis import strategies as st

kernel = ext.load("_tree")
pytestmark = pytest.mark.skipif(kernel is None, reason="ext/_tree is not built")

Batch = list[tuple[int, bytes, bytes | None]]


def native(reader: object, changes: Batch) -> object:
    """The kernel's run, as `tree._native_apply` makes it (also under CHAINMALL_PURE=1)."""
    assert kernel is not None
    return kernel.Apply(reader, changes, TreeUpdate, _corrupt, _parse_node)


def outcome(reader: object, root: bytes, changes: Mapping, start: Callable) -> tuple:
    """What one `apply` gives: every field of the update in order, or the error and its cause."""
    batch = _sorted_changes(changes)
    if not batch:
        return ("nothing",)
    try:
        update = tree_module._apply_batch(reader, root, batch, start)  # type: ignore[arg-type]
    except Exception as exc:  # the error itself is what is compared
        cause = exc.__cause__
        return ("error", type(exc), str(exc), type(cause), str(cause))
    return ("ok", update.root, list(update.new_nodes.items()), update.nodes_read,
            update.stale_nodes)


def same_outcome(reader: object, root: bytes, changes: Mapping) -> tuple:
    """The reference's outcome, checked equal to the kernel's."""
    expected = outcome(reader, root, changes, tree_module._Apply)
    assert outcome(reader, root, changes, native) == expected
    return expected


# --- readers ------------------------------------------------------------------------


class ViewReader:
    """get_node only, returning memoryviews (as LMDB buffers): the walk reads one by one."""

    def __init__(self, nodes: dict[bytes, bytes]) -> None:
        self.nodes = nodes
        self.calls = 0

    def get_node(self, node_hash: bytes) -> memoryview | None:
        self.calls += 1
        data = self.nodes.get(node_hash)
        return None if data is None else memoryview(data)


class BatchReader(ViewReader):
    """get_nodes too, counting both."""

    def __init__(self, nodes: dict[bytes, bytes]) -> None:
        super().__init__(nodes)
        self.batches = 0

    def get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
        self.batches += 1
        return [self.nodes.get(node_hash) for node_hash in node_hashes]


READERS = (MemoryNodeStore, ViewReader, BatchReader)


def long_prefix_keys(candidates: int, pairs: int) -> list[bytes]:
    """Keys in pairs whose paths share long prefixes (the closest neighbours of a sample)."""
    paths = sorted((int.from_bytes(sr.key_path(b"p%d" % i), "big"), b"p%d" % i)
                   for i in range(candidates))
    closest = sorted(itertools.pairwise(paths), key=lambda pair: pair[0][0] ^ pair[1][0])
    return [key for (_, a), (_, b) in closest[:pairs] for key in (a, b)]


PREFIX_KEYS = long_prefix_keys(3000, 6)
keys = st.binary(min_size=0, max_size=4) | st.sampled_from(PREFIX_KEYS)
values = st.binary(min_size=0, max_size=3)
models = st.dictionaries(keys, values, max_size=40)


def existing_tree(model: Mapping[bytes, bytes]) -> tuple[dict[bytes, bytes], bytes]:
    """The nodes and root of the tree holding `model`."""
    update = StateTree(MemoryNodeStore()).apply(model)
    return dict(update.new_nodes), update.root


def change_batches(model: Mapping[bytes, bytes]) -> st.SearchStrategy[dict]:
    """Changes to `model`: updates, same-value sets, deletes (present or not), inserts."""
    present = sorted(model)
    options = [st.dictionaries(keys, st.none() | values, min_size=1, max_size=25)]
    if present:
        options.append(st.dictionaries(
            st.sampled_from(present), st.none() | values | st.sampled_from(sorted(
                set(model.values()))), max_size=len(present)))
        options.append(st.just({key: None for key in present}))  # delete everything
        options.append(st.just(dict(model)))  # set everything to what it is
    return st.one_of(options)


# --- tests ----------------------------------------------------------------------------


def test_constants_match_core() -> None:
    assert kernel is not None
    assert kernel.HASH_BYTES == constants.HASH_BYTES
    assert kernel.STATE_PATH_BITS == constants.STATE_PATH_BITS
    assert kernel.STATE_NODE_VERSION == constants.STATE_NODE_VERSION
    assert kernel.STATE_LEAF_CONTEXT == constants.STATE_LEAF_CONTEXT
    assert kernel.STATE_NODE_CONTEXT == constants.STATE_NODE_CONTEXT
    assert kernel.STATE_LEAF_KEY == sr.STATE_LEAF_KEY
    assert kernel.STATE_NODE_KEY == sr.STATE_NODE_KEY
    assert (kernel.KIND_LEAF, kernel.KIND_INTERNAL) == (sr.KIND_LEAF, sr.KIND_INTERNAL)
    assert kernel.NODE_BYTES == sr.NODE_BYTES
    assert kernel.EMPTY_ROOT == EMPTY_ROOT


def test_state_tree_uses_the_kernel_unless_pure() -> None:
    from chainmall.core import kernels

    expected = tree_module._native_apply if kernels.tree_kernel else tree_module._Apply
    assert tree_module._APPLY is expected


@settings(derandomize=True, deadline=None, max_examples=400)
@given(models, st.data())
def test_native_matches_reference(model: dict[bytes, bytes], data: st.DataObject) -> None:
    nodes, root = existing_tree(model)
    changes = data.draw(change_batches(model))
    reader = data.draw(st.sampled_from(READERS))(nodes)
    result = same_outcome(reader, root, changes)
    assert result[0] in ("ok", "nothing")


@settings(derandomize=True, deadline=None, max_examples=100)
@given(st.lists(st.dictionaries(keys, st.none() | values, max_size=20), min_size=1, max_size=6))
def test_block_sequences_match(batches: list[dict]) -> None:
    store = MemoryNodeStore()
    root = EMPTY_ROOT
    for changes in batches:
        result = same_outcome(store, root, changes)
        if result[0] == "ok":
            store.put_nodes(dict(result[2]))
            root = result[1]


def test_empty_single_key_and_chains() -> None:
    for reader in (MemoryNodeStore(), BatchReader({})):
        same_outcome(reader, EMPTY_ROOT, {b"only": b"1"})
        same_outcome(reader, EMPTY_ROOT, {b"only": None})
        same_outcome(reader, EMPTY_ROOT, {key: b"v" for key in PREFIX_KEYS})
    model = {PREFIX_KEYS[0]: b"a", PREFIX_KEYS[1]: b"b", b"other": b"c"}
    nodes, root = existing_tree(model)
    for changes in ({b"other": None}, {PREFIX_KEYS[0]: None}, {PREFIX_KEYS[1]: b"z"},
                    {PREFIX_KEYS[0]: None, PREFIX_KEYS[1]: None}, {b"other": b"c"}):
        for make in READERS:
            same_outcome(make(nodes), root, changes)


# Ways to damage a stored node: every message the walk can give.
DAMAGES: dict[str, Callable[[bytes], bytes | None]] = {
    "missing": lambda data: None,
    "flipped": lambda data: data[:40] + bytes([data[40] ^ 1]) + data[41:],
    "short": lambda data: data[:-1],
    "long": lambda data: data + b"\x00",
    "version": lambda data: b"\x07" + data[1:],
    "kind": lambda data: data[:1] + b"\x05" + data[2:],
    "two empties": lambda data: data[:1] + b"\x02" + bytes(64),
    "leaf to internal": lambda data: data[:1] + bytes([3 - data[1]]) + data[2:],
    "empty": lambda data: b"",
}


@settings(derandomize=True, deadline=None, max_examples=300)
@given(models.filter(lambda m: len(m) >= 2), st.data())
def test_damaged_stores_give_the_same_error(model: dict[bytes, bytes], data: st.DataObject) -> None:
    nodes, root = existing_tree(model)
    damaged = dict(nodes)
    for node_hash in data.draw(st.lists(st.sampled_from(sorted(nodes)), min_size=1, max_size=3)):
        result = data.draw(st.sampled_from(sorted(DAMAGES)).map(DAMAGES.__getitem__))(
            nodes[node_hash])
        if result is None:
            damaged.pop(node_hash, None)
        else:
            damaged[node_hash] = result
    changes = data.draw(change_batches(model))
    reader = data.draw(st.sampled_from((ViewReader, BatchReader)))(damaged)
    same_outcome(reader, root, changes)


def _bit(path: bytes, depth: int) -> int:
    return path[depth // 8] >> (7 - depth % 8) & 1


def test_a_leaf_off_its_path_and_a_too_deep_chain_give_the_same_error() -> None:
    alice = sr.LeafNode(sr.key_path(b"alice"), sr.value_hash(b"1"))
    bob = sr.LeafNode(sr.key_path(b"bob"), sr.value_hash(b"2"))
    # alice on the side her path does not take.
    wrong = (sr.InternalNode(alice.hash(), bob.hash()) if _bit(alice.path, 0)
             else sr.InternalNode(bob.hash(), alice.hash()))
    nodes = {node.hash(): node.encode() for node in (alice, bob, wrong)}
    errors = 0
    for changes in ({b"alice": b"2"}, {b"alice": None, b"zed": b"1"},
                    {b"x%d" % i: b"1" for i in range(9)}):
        for make in READERS:
            errors += same_outcome(make(nodes), wrong.hash(), changes)[0] == "error"
    assert errors
    # Internal nodes at depths 0..256 down alice's path: the one at depth 256 is refused.
    node = sr.InternalNode(alice.hash(), EMPTY_ROOT)
    chain = {alice.hash(): alice.encode(), node.hash(): node.encode()}
    for depth in range(255, -1, -1):
        node = (sr.InternalNode(EMPTY_ROOT, node.hash()) if _bit(alice.path, depth)
                else sr.InternalNode(node.hash(), EMPTY_ROOT))
        chain[node.hash()] = node.encode()
    for changes in ({b"alice": b"3"}, {b"alice": b"3", b"bob": b"2"}):
        for make in READERS:
            result = same_outcome(make(chain), node.hash(), changes)
            assert result[0] == "error" and "below depth 256" in result[2]


def test_the_batched_reader_is_asked_a_level_at_a_time() -> None:
    model = {b"account %d" % i: b"%d" % i for i in range(2000)}
    model.update({PREFIX_KEYS[0]: b"a", PREFIX_KEYS[1]: b"b"})
    nodes, root = existing_tree(model)
    rng = random.Random(5)
    for _ in range(20):
        reader = BatchReader(nodes)
        changes = {b"account %d" % rng.randrange(2500): rng.choice([None, None, b"new"])
                   for _ in range(rng.choice([1, 2, 30]))}
        # Two neighbours (sharing a long prefix) deleted together.
        changes.update({PREFIX_KEYS[0]: None, PREFIX_KEYS[1]: None})
        result = outcome(reader, root, changes, native)
        assert result == outcome(MemoryNodeStore(nodes), root, changes, tree_module._Apply)
        assert reader.calls == 0  # every node read came from a batch, deletes' siblings too
        assert 0 < reader.batches <= 40


def test_the_kernel_refuses_bad_batches() -> None:
    assert kernel is not None
    path = bytes(32)
    with pytest.raises(ValueError, match="sorted"):
        native(MemoryNodeStore(), [(1, b"\x01" * 32, None), (0, path, None)])
    with pytest.raises(ValueError, match="32 bytes"):
        native(MemoryNodeStore(), [(0, b"short", None)])
    with pytest.raises(ValueError, match="value hash"):
        native(MemoryNodeStore(), [(0, path, b"short")])


def test_a_real_store_across_its_staged_levels(tmp_path: Path) -> None:
    """Blocks committed to a Store: each block's update, native and reference, from a
    StoreView whose nodes sit in the recent, middle and main levels."""
    rng = random.Random(7)
    store = Store(tmp_path / "db")
    universe = [b"\x01key %d" % i for i in range(300)]  # \x01: the accounts table
    genesis = {key: b"g" for key in universe[:150]}
    update = StateTree(MemoryNodeStore()).apply(genesis)
    store.init_genesis("native", b"\x11" * 32, genesis, update.new_nodes, update.root)
    root = update.root
    model = dict(genesis)
    blocks = constants.STORE_MERGE_BLOCKS * constants.STORE_FLUSH_SLICES + 20
    for height in range(1, blocks):
        changes: dict[bytes, bytes | None] = {}
        for key in rng.sample(universe, rng.randint(1, 12)):
            changes[key] = rng.choice([None, b"a", b"b", model.get(key)])
        with store.reader() as view:
            result = same_outcome(view, root, changes)
            update = StateTree(view, root).apply(changes)
        assert result[0] == "ok" or not changes
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        store.commit_block(BlockCommit(
            height=height, block_hash=height.to_bytes(32, "big"), block_bytes=b"b%d" % height,
            tx_ids=[], receipts_bytes=b"", parent_app_hash=root, app_hash=update.root,
            state_changes=changes, new_nodes=update.new_nodes, stale_nodes=update.stale_nodes))
        root = update.root
    with store.reader() as view:
        assert view.get_nodes([root, EMPTY_ROOT, b"\x01" * 32]) == [
            view.get_node(root), None, None]
    store.close()


def test_a_bad_batched_reader_is_refused() -> None:
    nodes, root = existing_tree({b"a": b"1", b"b": b"2", b"c": b"3"})

    class Short(BatchReader):
        def get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
            return super().get_nodes(node_hashes)[1:]

    class Failing(BatchReader):
        def get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
            raise OSError("disk on fire")

    result = outcome(Short(nodes), root, {b"a": b"9"}, native)
    assert result[:2] == ("error", TypeError) and "one entry per hash" in result[2]
    assert outcome(Failing(nodes), root, {b"a": b"9"}, native)[:3] == (
        "error", OSError, "disk on fire")


def test_threads_updating_at_once_agree() -> None:
    """The walk runs without the GIL: runs in several threads give the reference's result."""
    model = {b"account %d" % i: b"%d" % i for i in range(3000)}
    nodes, root = existing_tree(model)
    store = MemoryNodeStore(nodes)
    batches = [{b"account %d" % i: (None if i % 3 else b"x") for i in range(j, 4000, 7)}
               for j in range(4)]
    expected = [outcome(store, root, changes, tree_module._Apply) for changes in batches]
    results: list[list[tuple]] = [[] for _ in batches]

    def work(index: int) -> None:
        for _ in range(5):
            results[index].append(outcome(store, root, batches[index], native))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for index, runs in enumerate(results):
        assert runs == [expected[index]] * 5


# --- hash_order: the tx index's key order (core/store.py) ------------------------------

HASHES = st.lists(st.sampled_from([bytes(32), b"\xff" * 32, b"\x01" + bytes(31)])
                  | st.binary(min_size=32, max_size=32), max_size=60)


@settings(derandomize=True, deadline=None, max_examples=300)
@given(HASHES)
def test_hash_order_matches_the_reference(hashes: list[bytes]) -> None:
    from chainmall.core import store

    packed = b"".join(hashes)
    expected = sorted(range(len(hashes)), key=hashes.__getitem__)  # ties by index
    assert store.hash_order(packed) == expected
    assert kernel.hash_order(packed) == expected
    chosen = store.hash_order if store.tree_kernel is None else store.tree_kernel.hash_order
    assert store.hash_key_order is chosen


def test_hash_order_refuses_what_the_reference_refuses() -> None:
    from chainmall.core import store

    for bad, error in ((b"\x00" * 33, ValueError), (bytearray(32), TypeError),
                       ("x" * 32, TypeError)):
        for order in (store.hash_order, kernel.hash_order):
            with pytest.raises(error):
                order(bad)
    assert store.hash_order(b"") == kernel.hash_order(b"") == []
