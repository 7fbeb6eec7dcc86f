"""`prove_many`: the proofs of many keys from one walk, each equal to `StateTree.prove`'s."""

from __future__ import annotations

import random

import pytest
from chainmall.core.errors import InvalidInput, StorageError
from chainmall.core.state.root import EMPTY_ROOT, MemoryNodeStore, StateTree, verify_proof
from chainmall.core.state.root.proofs import prove_many
from hypothesis import given, settings
from hypothesis import strategies as st
from test_root import EXAMPLE, EXAMPLE_ROOT, CountingReader, _flipped, build

keys = st.binary(min_size=0, max_size=5)
models = st.dictionaries(keys, st.binary(max_size=8), max_size=60)


@settings(derandomize=True, deadline=None, max_examples=200)
@given(models, st.lists(keys, max_size=30))
def test_prove_many_equals_prove_for_each_key(model: dict[bytes, bytes],
                                              probes: list[bytes]) -> None:
    """Present, absent and repeated keys, in any order; the per-key proofs verify."""
    tree = build(model)
    asked = probes + sorted(model)[:20] + probes[:3]
    proofs = prove_many(tree._reader, tree.root, asked)  # type: ignore[attr-defined]
    assert proofs == [tree.prove(key) for key in asked]
    for key, proof in zip(asked, proofs, strict=True):
        assert verify_proof(tree.root, key, model.get(key), proof)


def test_prove_many_reads_each_shared_node_once() -> None:
    """Over 10^4 entries, 64 keys: fewer reads than 64 walks, and each node read once."""
    model = {b"entry %d" % i: b"%d" % i for i in range(10_000)}
    nodes = dict(StateTree(MemoryNodeStore()).apply(model).new_nodes)
    root = StateTree(MemoryNodeStore()).apply(model).root
    asked = [b"entry %d" % i for i in random.Random(5).sample(range(10_000), 60)]
    asked += [b"absent %d" % i for i in range(4)]
    one_by_one = CountingReader(nodes)
    for key in asked:
        StateTree(one_by_one, root).prove(key)
    together = CountingReader(nodes)
    seen: list[bytes] = []
    original = together.get_node

    def get_node(node_hash: bytes) -> memoryview | None:
        seen.append(node_hash)
        return original(node_hash)

    together.get_node = get_node  # type: ignore[method-assign]
    proofs = prove_many(together, root, asked)
    assert proofs == [StateTree(CountingReader(nodes), root).prove(key) for key in asked]
    assert len(seen) == len(set(seen))  # no node read twice
    assert together.reads < one_by_one.reads * 3 // 4


def test_prove_many_edge_cases() -> None:
    empty = StateTree(MemoryNodeStore())
    assert prove_many(empty._reader, EMPTY_ROOT, []) == []  # type: ignore[attr-defined]
    assert prove_many(empty._reader, EMPTY_ROOT, [b"a", b"a"]) == [  # type: ignore[attr-defined]
        empty.prove(b"a"), empty.prove(b"a")]
    lone = build({b"only": b"1"})  # the root is a leaf
    asked = [b"only", b"other", b""]
    assert prove_many(lone._reader, lone.root, asked) == [  # type: ignore[attr-defined]
        lone.prove(key) for key in asked]
    with pytest.raises(InvalidInput):
        prove_many(MemoryNodeStore(), EMPTY_ROOT, [b"k" * 129])
    with pytest.raises(InvalidInput):
        prove_many(MemoryNodeStore(), b"short", [b"k"])
    with pytest.raises(TypeError):
        prove_many(MemoryNodeStore(), EMPTY_ROOT, ["k"])  # type: ignore[list-item]


def test_a_damaged_store_is_a_storage_error() -> None:
    """Missing, tampered and malformed nodes fail the walk, as they fail `prove`."""
    nodes = dict(StateTree(MemoryNodeStore()).apply(EXAMPLE).new_nodes)
    root = bytes.fromhex(EXAMPLE_ROOT)
    n2 = bytes.fromhex("a07d37aa18fb1745848c5be4fc8b30b82ed61cf1172f51d249a2c7c8337d73c4")
    leaf = next(h for h, d in nodes.items() if d[1] == 1)
    for bad in (n2, leaf, root):
        for damaged in ({h: d for h, d in nodes.items() if h != bad},
                        {**nodes, bad: _flipped(nodes[bad], 100)},
                        {**nodes, bad: _flipped(nodes[bad], 520)},
                        {**nodes, bad: nodes[bad][:-1]}):
            with pytest.raises(StorageError):
                prove_many(CountingReader(damaged), root, sorted(EXAMPLE))


def test_the_upper_node_cache_changes_no_proof_and_holds_only_checked_upper_nodes() -> None:
    from chainmall.core.constants import PROOF_CACHE_DEPTH, PROOF_CACHE_NODES_MAX

    model = {b"entry %d" % i: b"%d" % i for i in range(3_000)}
    tree = build(model)
    nodes = dict(tree._reader._nodes)  # type: ignore[attr-defined]
    cache: dict[bytes, bytes] = {}
    rng = random.Random(9)
    for _ in range(5):
        asked = [b"entry %d" % i for i in rng.sample(range(3_000), 25)] + [b"absent"]
        assert prove_many(CountingReader(nodes), tree.root, asked, cache) == \
            [tree.prove(key) for key in asked]
    # Only internal nodes, exactly as stored, and only the upper levels' (fewer than
    # 2^PROOF_CACHE_DEPTH exist).
    assert cache and all(nodes[h] == data and data[1] == 2 for h, data in cache.items())
    assert len(cache) < 2 ** PROOF_CACHE_DEPTH
    # Warm, the walk reads fewer nodes from the store and gives the same proofs.
    asked = [b"entry %d" % i for i in range(0, 3_000, 100)]
    cold, warm = CountingReader(nodes), CountingReader(nodes)
    assert prove_many(cold, tree.root, asked) == prove_many(warm, tree.root, asked, cache)
    assert warm.reads < cold.reads
    # A full cache starts over.
    full = {bytes([i % 256]) * 31 + bytes([i // 256]): b"x" for i in range(PROOF_CACHE_NODES_MAX)}
    prove_many(CountingReader(nodes), tree.root, asked, full)
    assert b"x" not in full.values() and 0 < len(full) <= PROOF_CACHE_NODES_MAX


def test_a_damaged_upper_node_is_never_cached() -> None:
    nodes = dict(StateTree(MemoryNodeStore()).apply(EXAMPLE).new_nodes)
    root = bytes.fromhex(EXAMPLE_ROOT)
    cache: dict[bytes, bytes] = {}
    with pytest.raises(StorageError):
        prove_many(CountingReader({**nodes, root: _flipped(nodes[root], 100)}), root,
                   sorted(EXAMPLE), cache)
    assert cache == {}
    prove_many(CountingReader(nodes), root, sorted(EXAMPLE), cache)
    assert root in cache and cache[root] == nodes[root]
