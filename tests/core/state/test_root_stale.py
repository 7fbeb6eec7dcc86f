"""`apply` names the stale nodes: exactly the old tree's nodes that the new tree lost."""

from __future__ import annotations

import random

from chainmall.core.state.root import (
    EMPTY_ROOT,
    InternalNode,
    MemoryNodeStore,
    StateTree,
    decode_node,
)
from hypothesis import given, settings
from hypothesis import strategies as st


def reachable(store: MemoryNodeStore, root: bytes) -> set[bytes]:
    """Every node hash the tree at `root` holds."""
    found: set[bytes] = set()
    todo = [root]
    while todo:
        node_hash = todo.pop()
        if node_hash == EMPTY_ROOT or node_hash in found:
            continue
        found.add(node_hash)
        node = decode_node(store.get_node(node_hash))
        if isinstance(node, InternalNode):
            todo += [node.left, node.right]
    return found


def check_sequence(steps: list[dict[bytes, bytes | None]]) -> None:
    store = MemoryNodeStore()
    root = EMPTY_ROOT
    for changes in steps:
        before = reachable(store, root)
        update = StateTree(store, root).apply(changes)
        store.put_nodes(update.new_nodes)
        after = reachable(store, update.root)
        assert set(update.stale_nodes) == before - after
        assert len(set(update.stale_nodes)) == len(update.stale_nodes)
        root = update.root


keys = st.binary(min_size=1, max_size=3)
values = st.one_of(st.none(), st.sampled_from([b"a", b"b", b"c"]))


@settings(max_examples=150)
@given(st.lists(st.dictionaries(keys, values, max_size=12), min_size=1, max_size=8))
def test_stale_nodes_are_the_lost_nodes(steps: list[dict[bytes, bytes | None]]) -> None:
    check_sequence(steps)


def test_values_that_return_reuse_nodes_and_are_not_stale() -> None:
    # A value set back to an earlier one re-creates the same leaf (and maybe parents):
    # the re-made nodes are in new_nodes, never stale for that block.
    rng = random.Random(7)
    keys_used = [bytes([i]) for i in range(40)]
    steps: list[dict[bytes, bytes | None]] = [{k: b"x" for k in keys_used}]
    for _ in range(30):
        steps.append({rng.choice(keys_used): rng.choice([b"x", b"y", None])
                      for _ in range(rng.randint(1, 6))})
    check_sequence(steps)


def test_no_change_no_stale() -> None:
    store = MemoryNodeStore()
    update = StateTree(store).apply({b"k": b"v"})
    store.put_nodes(update.new_nodes)
    assert update.stale_nodes == ()
    again = StateTree(store, update.root).apply({b"k": b"v"})
    assert again.root == update.root and again.stale_nodes == () and again.new_nodes == {}
