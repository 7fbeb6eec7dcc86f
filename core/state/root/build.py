"""Bulk building: the canonical tree of a whole state, bottom-up, level by level."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping

from ...constants import (
    HASH_BYTES,
    STATE_PATH_BITS,
)
from ...errors import InvalidInput
from .nodes import (
    _INTERNAL_TAG,
    _LEAF_TAG,
    EMPTY_ROOT,
    STATE_LEAF_KEY,
    STATE_NODE_KEY,
    STATE_PATH_KEY,
    STATE_VALUE_KEY,
    _check_entries,
    _hash_bodies,
    _hash_each,
    _path_int,
    _split_hashes,
)
from .tree import TreeUpdate

# --- bulk building ----------------------------------------------------------------


def build_tree(entries: Mapping[bytes, bytes]) -> TreeUpdate:
    """The canonical tree of `entries` (key -> value), built bottom-up with batch hashing.

    The same root and the same nodes as `StateTree(reader, EMPTY_ROOT).apply(entries)`
    (for a mapping of values only), without a walk: the keys, the values and
    the leaves are hashed in one batch call each, and the internal nodes in
    one per tree level. It is meant for large states (it has no
    STATE_CHANGES_MAX limit); `nodes_read` is 0. TypeError / InvalidInput for
    a bad key or value, as `apply`.
    """
    if not isinstance(entries, Mapping):
        raise TypeError(f"entries must be a Mapping, not {type(entries).__name__}")
    keys, values = list(entries), list(entries.values())
    _check_entries(keys, values, deletes=False)
    paths = _hash_each(keys, STATE_PATH_KEY)
    del keys
    hashed = _hash_each(values, STATE_VALUE_KEY)
    del values
    # Leaf fields (path || value hash) in path order: paths are 32 bytes each.
    return _build_sorted(sorted(map(bytes.__add__, paths, hashed)))


def _build_sorted(leaves: list[bytes]) -> TreeUpdate:
    """The tree over leaf fields (path || value hash), sorted by path.

    Entry i and i + 1 part at depth splits[i] (their first differing bit):
    that is where their branching node sits, one per neighbouring pair. A
    leaf sits just below the deeper of its two splits. Level by level from
    the deepest, each subtree at depth d + 1 (a span of entries and its hash)
    gets its parent at depth d: the branching node it shares with the next
    span if the split between them is at d, else a chain node with an Empty
    sibling. Spans stay sorted, so a branching node's two children are
    neighbours in the level.
    """
    count = len(leaves)
    if count == 0:
        return TreeUpdate(EMPTY_ROOT, {}, 0)
    # Whole leaf fields as 512-bit ints: distinct paths differ in their first 256 bits.
    ints = list(map(int.from_bytes, leaves))
    xors = map(operator.xor, ints, itertools.islice(ints, 1, None))
    splits = list(map((2 * STATE_PATH_BITS).__sub__, map(int.bit_length, xors)))
    if splits and max(splits) >= STATE_PATH_BITS:
        index = next(i for i, split in enumerate(splits) if split >= STATE_PATH_BITS)
        raise InvalidInput(f"two state keys share the path {leaves[index][:HASH_BYTES].hex()}")
    splits.append(-1)  # after the last entry, and (as splits[-1]) before the first
    leaf_hashes = _split_hashes(_hash_bodies(leaves, STATE_LEAF_KEY))
    new_nodes = dict(zip(leaf_hashes, map(_LEAF_TAG.__add__, leaves), strict=True))
    del leaves
    levels: list[list[tuple[int, int, bytes]]] = [[] for _ in range(STATE_PATH_BITS + 1)]
    leaf_depths = map(max, splits, itertools.chain((-1,), splits))
    for index, (depth, node_hash) in enumerate(zip(leaf_depths, leaf_hashes, strict=True)):
        levels[depth + 1].append((index, index, node_hash))
    del leaf_hashes
    deepest = max(depth for depth, level in enumerate(levels) if level)
    for depth in range(deepest - 1, -1, -1):
        below = levels[depth + 1]
        levels[depth + 1] = []
        below.sort(key=_path_int)  # leaves, then nodes built at depth + 1: two sorted runs
        los, his, bodies = _parents(below, depth, ints, splits)
        del below
        node_hashes = _split_hashes(_hash_bodies(bodies, STATE_NODE_KEY))
        levels[depth].extend(zip(los, his, node_hashes, strict=True))
        new_nodes.update(zip(node_hashes, map(_INTERNAL_TAG.__add__, bodies), strict=True))
    (root,) = levels[0]
    assert root[:2] == (0, count - 1)
    return TreeUpdate(root[2], new_nodes, 0)


def _parents(
    below: list[tuple[int, int, bytes]], depth: int, ints: list[int], splits: list[int]
) -> tuple[list[int], list[int], list[bytes]]:
    """The nodes at `depth` over the sorted subtrees `below` at depth + 1.

    Returns each node's span (first and last entry) and its fields.
    """
    los: list[int] = []
    his: list[int] = []
    bodies: list[bytes] = []
    shift = 2 * STATE_PATH_BITS - 1 - depth  # bit `depth` of a 512-bit leaf int
    spans = iter(below)
    for lo, hi, node_hash in spans:
        los.append(lo)
        if splits[hi] == depth:  # a branching node: the next span is its right side
            right_lo, right_hi, right_hash = next(spans)
            assert right_lo == hi + 1
            his.append(right_hi)
            bodies.append(node_hash + right_hash)
        else:  # a chain node: the whole span takes one side
            his.append(hi)
            on_right = ints[lo] >> shift & 1
            bodies.append(EMPTY_ROOT + node_hash if on_right else node_hash + EMPTY_ROOT)
    return los, his, bodies
