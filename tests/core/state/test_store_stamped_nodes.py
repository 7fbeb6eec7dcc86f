"""The store's commit puts a block's new tree nodes in key order, each stamped with the
height (`core/store.py` `_stamped_nodes`): the kernel's order, encodings taken by
position, gives exactly what sorting the hashes and looking each encoding up gives."""

from __future__ import annotations

from operator import add

from chainmall.core.store import _stamped_nodes
from hypothesis import given, settings
from hypothesis import strategies as st

STAMP = (7).to_bytes(8, "big")


def _reference(new_nodes: dict[bytes, bytes], stamp: bytes) -> tuple[list[bytes], list[bytes]]:
    hashes = sorted(new_nodes)
    return hashes, [add(new_nodes[node_hash], stamp) for node_hash in hashes]


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.dictionaries(st.binary(min_size=32, max_size=32), st.binary(max_size=80),
                       max_size=300))
def test_tree_hashes_come_in_key_order_with_their_stamped_encodings(new_nodes) -> None:
    assert _stamped_nodes(new_nodes, STAMP) == _reference(new_nodes, STAMP)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.dictionaries(st.binary(min_size=1, max_size=40), st.binary(max_size=8),
                       max_size=40))
def test_other_keys_are_sorted_as_bytes(new_nodes) -> None:
    """Keys that are not all 32 bytes (never the tree's) take the sorting path."""
    assert _stamped_nodes(new_nodes, STAMP) == _reference(new_nodes, STAMP)


def test_hashes_that_share_long_prefixes() -> None:
    """The kernel compares the first 8 bytes first: hashes equal there are ordered by the
    rest."""
    new_nodes = {bytes(8) + bytes([255 - i]) * 24: bytes([i]) for i in range(40)}
    new_nodes[bytes(31) + b"\x01"] = b"low"
    assert _stamped_nodes(new_nodes, STAMP) == _reference(new_nodes, STAMP)
    assert _stamped_nodes({}, STAMP) == ([], [])
