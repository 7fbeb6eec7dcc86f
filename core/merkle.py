"""Merkle root, inclusion proof and verification over 32-byte leaves: the reference.

This module is the spec (docs/merkle.md) and the baseline the compiled kernel
`chainmall.ext._merkle` is checked and benchmarked against; both have the same
signatures and results.

Rule, in short:

* a leaf is a 32-byte value (a tx id); leaves are given packed, n * 32 bytes;
* leaf node  = BLAKE3 keyed_hash(MERKLE_LEAF_KEY, leaf);
  inner node = BLAKE3 keyed_hash(MERKLE_NODE_KEY, left || right), 64 bytes in;
* shape of RFC 6962 / CometBFT: for n > 1 the root is
  node(root(first k leaves), root(the rest)) with k the largest power of two
  below n. Computed here bottom-up, which gives the same tree: neighbours are
  paired level by level and a lone last node is promoted unchanged (never
  duplicated, so the CVE-2012-2459 ambiguity cannot arise);
* n = 0: EMPTY_ROOT = keyed_hash(MERKLE_NODE_KEY, b""); n = 1: the leaf node.

A proof lists the sibling hashes met on the way from the leaf to the root,
bottom-up; its length is a function of (index, count) alone.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from .constants import HASH_BYTES, MERKLE_LEAVES_MAX
from .hashing import MERKLE_LEAF_KEY, MERKLE_NODE_KEY, digest

EMPTY_ROOT: bytes = digest(b"", MERKLE_NODE_KEY)


def _packed_leaves(leaves: object) -> bytes:
    """The leaves as bytes, checked: whole 32-byte leaves, at most MERKLE_LEAVES_MAX."""
    try:
        view = memoryview(leaves).cast("B")  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"leaves must be a contiguous bytes-like object, not {type(leaves).__name__}"
        ) from None
    if len(view) % HASH_BYTES != 0:
        raise ValueError(f"leaves are {len(view)} bytes, not a multiple of {HASH_BYTES}")
    if len(view) // HASH_BYTES > MERKLE_LEAVES_MAX:
        raise ValueError(
            f"{len(view) // HASH_BYTES} leaves is more than MERKLE_LEAVES_MAX={MERKLE_LEAVES_MAX}"
        )
    return bytes(view)


def _leaf_level(data: bytes) -> list[bytes]:
    return [
        digest(data[start : start + HASH_BYTES], MERKLE_LEAF_KEY)
        for start in range(0, len(data), HASH_BYTES)
    ]


def _next_level(level: list[bytes]) -> list[bytes]:
    """Pair neighbours; a lone last node goes up unchanged."""
    parents = [
        digest(level[i] + level[i + 1], MERKLE_NODE_KEY) for i in range(0, len(level) - 1, 2)
    ]
    if len(level) % 2 == 1:
        parents.append(level[-1])
    return parents


def merkle_root(leaves: bytes | bytearray | memoryview) -> bytes:
    """The Merkle root of the packed 32-byte `leaves` (ValueError if malformed)."""
    data = _packed_leaves(leaves)
    if not data:
        return EMPTY_ROOT
    level = _leaf_level(data)
    while len(level) > 1:
        level = _next_level(level)
    assert len(level) == 1
    return level[0]


def merkle_root_of(items: Sequence[bytes]) -> bytes:
    """The Merkle root of a sequence of 32-byte leaves (packs them, then `merkle_root`)."""
    for position, item in enumerate(items):
        if len(item) != HASH_BYTES:
            raise ValueError(f"leaf {position} is {len(item)} bytes, not {HASH_BYTES}")
    return merkle_root(b"".join(items))


def merkle_proof(leaves: bytes | bytearray | memoryview, index: int) -> list[bytes]:
    """Sibling hashes, bottom-up, proving leaf `index` of the packed `leaves`."""
    data = _packed_leaves(leaves)
    index = operator.index(index)
    count = len(data) // HASH_BYTES
    if not 0 <= index < count:
        raise ValueError(f"index {index} is out of range for {count} leaves")
    proof = []
    level = _leaf_level(data)
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):  # else: lone last node, promoted without a sibling
            proof.append(level[sibling])
        level = _next_level(level)
        index //= 2
    return proof


def _checked_bytes(value: object, name: str) -> bytes:
    """`value` as bytes; TypeError unless it is a contiguous bytes-like object."""
    try:
        return bytes(memoryview(value).cast("B"))  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"{name} must be a contiguous bytes-like object, not {type(value).__name__}"
        ) from None


def merkle_verify(root: bytes, leaf: bytes, index: int, count: int, proof: Sequence[bytes]) -> bool:
    """Whether `proof` shows `leaf` at `index` among `count` leaves under `root`.

    False for anything that does not verify: sizes other than 32 bytes, index
    out of range, count over MERKLE_LEAVES_MAX, a proof longer or shorter than
    (index, count) requires, or any hash that does not lead to `root`.
    TypeError only for arguments of the wrong type (all are checked first).
    """
    root = _checked_bytes(root, "root")
    leaf = _checked_bytes(leaf, "leaf")
    index = operator.index(index)
    count = operator.index(count)
    if isinstance(proof, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"proof must be a sequence of hashes, not {type(proof).__name__}")
    siblings = [_checked_bytes(sibling, "proof item") for sibling in proof]

    if len(root) != HASH_BYTES or len(leaf) != HASH_BYTES:
        return False
    if not 0 <= index < count <= MERKLE_LEAVES_MAX:
        return False
    if any(len(sibling) != HASH_BYTES for sibling in siblings):
        return False
    node = digest(leaf, MERKLE_LEAF_KEY)
    used = 0
    while count > 1:
        if index % 2 == 1:
            if used == len(siblings):
                return False
            node = digest(siblings[used] + node, MERKLE_NODE_KEY)
            used += 1
        elif index + 1 < count:
            if used == len(siblings):
                return False
            node = digest(node + siblings[used], MERKLE_NODE_KEY)
            used += 1
        # else: lone last node, promoted unchanged
        index //= 2
        count = (count + 1) // 2
    return used == len(siblings) and node == root
