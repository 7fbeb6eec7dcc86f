"""The state tree's bulk builder and batch hashing: the same trees as `apply`, on both paths."""

from __future__ import annotations

import itertools
import random

import pytest
from chainmall.core import accel, hashing
from chainmall.core.errors import InvalidInput, StorageError
from chainmall.core.state import root as sr
from chainmall.core.state.root import EMPTY_ROOT, MemoryNodeStore, StateTree, build_tree
from hypothesis import given, settings
from hypothesis import strategies as st


def _prefix_keys(candidates: int, pairs: int) -> list[bytes]:
    """Keys from the `pairs` neighbouring pairs (by path) that share the longest path prefixes."""
    ordered = sorted((sr.key_path(b"p%d" % i), b"p%d" % i) for i in range(candidates))
    ranked = sorted(
        itertools.pairwise(ordered),
        key=lambda pair: (int.from_bytes(pair[0][0], "big") ^ int.from_bytes(pair[1][0], "big")),
    )
    return [key for pair in ranked[:pairs] for _, key in pair]


PREFIX_KEYS = _prefix_keys(5_000, 4)  # 4 pairs sharing about 18 to 22 leading path bits

keys = st.binary(max_size=5) | st.sampled_from(PREFIX_KEYS)
models = st.dictionaries(keys, st.binary(max_size=8), max_size=60)


def _by_apply(entries: dict[bytes, bytes]) -> sr.TreeUpdate:
    return StateTree(MemoryNodeStore()).apply(entries)


@settings(derandomize=True, deadline=None, max_examples=300)
@given(models)
def test_build_tree_equals_apply_on_an_empty_tree(entries: dict[bytes, bytes]) -> None:
    built = build_tree(entries)
    applied = _by_apply(entries)
    assert built.root == applied.root
    assert built.new_nodes == applied.new_nodes
    assert built.nodes_read == 0
    # The nodes are a complete store for the root: the tree reads back.
    tree = StateTree(MemoryNodeStore(built.new_nodes), built.root)
    for key, value in entries.items():
        assert tree.get_value_hash(key) == sr.value_hash(value)


def test_build_tree_tiny_and_chained_sets() -> None:
    assert build_tree({}) == sr.TreeUpdate(EMPTY_ROOT, {}, 0)
    one = build_tree({b"k": b"v"})
    assert one.root == sr.leaf_hash(sr.key_path(b"k"), sr.value_hash(b"v"))
    assert list(one.new_nodes) == [one.root]
    pair = dict.fromkeys(PREFIX_KEYS[:2], b"x")  # one long chain above a split
    assert build_tree(pair).new_nodes == _by_apply(pair).new_nodes
    assert len(build_tree(pair).new_nodes) > 20


def test_build_tree_larger_random_set() -> None:
    rng = random.Random(7)
    entries = {rng.randbytes(rng.randrange(0, 40)): rng.randbytes(17) for _ in range(5_000)}
    built = build_tree(entries)
    assert built.root == _by_apply(entries).root
    assert built.new_nodes == _by_apply(entries).new_nodes


def test_build_tree_checks_its_input() -> None:
    with pytest.raises(TypeError):
        build_tree([(b"k", b"v")])  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        build_tree({b"k": None})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        build_tree({"k": b"v"})  # type: ignore[dict-item]
    with pytest.raises(InvalidInput):
        build_tree({b"k" * 129: b"v"})
    with pytest.raises(InvalidInput):
        build_tree({b"k": bytes(64 * 1024 + 1)})


def test_the_fallback_hashing_gives_the_same_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    """CHAINMALL_PURE=1 hashes through the blake3 package: every result must be identical."""
    rng = random.Random(11)
    base = {rng.randbytes(21): rng.randbytes(17) for _ in range(2_000)}
    changes: dict[bytes, bytes | None] = dict.fromkeys(list(base)[:300])
    changes.update({key: b"new" for key in list(base)[300:700]})
    changes.update({rng.randbytes(21): b"" for _ in range(300)})

    def run() -> tuple[sr.TreeUpdate, sr.TreeUpdate]:
        built = build_tree(base)
        store = MemoryNodeStore(built.new_nodes)
        return built, StateTree(store, built.root).apply(changes)

    batched = run()
    monkeypatch.setattr(accel, "digest_many", hashing.digest_many)
    monkeypatch.setattr(accel, "digest_many_fixed", hashing.digest_many_fixed)
    assert run() == batched


def test_a_bad_node_is_reported_before_what_it_caused() -> None:
    """Reads are checked in a batch; a tampered node is still the StorageError raised."""
    entries = {b"k%d" % i: b"v" for i in range(64)}
    built = build_tree(entries)
    nodes = dict(built.new_nodes)
    root_node = bytearray(nodes[built.root])
    root_node[2:34] = bytes(32 * [7])  # the left child now points at nothing stored
    nodes[built.root] = bytes(root_node)
    tree = StateTree(_DictReader(nodes), built.root)
    with pytest.raises(StorageError, match="does not hash to it"):
        tree.apply(dict.fromkeys(entries, b"w"))


class _DictReader:
    def __init__(self, nodes: dict[bytes, bytes]) -> None:
        self._nodes = nodes

    def get_node(self, node_hash: bytes) -> bytes | None:
        return self._nodes.get(node_hash)
