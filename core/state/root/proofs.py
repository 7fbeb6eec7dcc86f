"""State proofs: the Proof type, its codec, `verify_proof` against a root, and
`prove_many` (the proofs of many keys from one walk of the tree)."""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

from ...constants import (
    HASH_BYTES,
    PROOF_CACHE_DEPTH,
    PROOF_CACHE_NODES_MAX,
    STATE_KEY_BYTES_MAX,
    STATE_PATH_BITS,
    STATE_PROOF_VERSION,
    STATE_VALUE_BYTES_MAX,
)
from ...encoding import Reader, Writer
from ...errors import DecodeError, InvalidInput, StorageError
from ...hashing import digest
from .nodes import (
    _EMPTY_PAIR,
    _INTERNAL_TAG,
    _LEAF_TAG,
    EMPTY_ROOT,
    NODE_BYTES,
    PROOF_SIBLINGS_MAX,
    STATE_LEAF_KEY,
    STATE_NODE_KEY,
    STATE_PATH_KEY,
    STATE_VALUE_KEY,
    LeafNode,
    NodeReader,
    _bit,
    _check_key,
    _corrupt,
    _hash_bodies,
    _hash_each,
    _parse_node,
    _prefix,
    _split_hashes,
    leaf_hash,
)

# --- proofs ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Proof:
    """Where a key's path ends under a root, and the siblings met on the way.

    `siblings[d]` is the hash of the other child of the internal node at depth
    d, root first. `leaf` is the leaf the path ends at (the key's own, or
    another key's that proves absence), or None when it ends at Empty.
    """

    siblings: tuple[bytes, ...]
    leaf: LeafNode | None

    def encode(self) -> bytes:
        """Canonical bytes: version u8, has_leaf u8, [path, value_hash], count u16, siblings."""
        if len(self.siblings) > PROOF_SIBLINGS_MAX:
            raise ValueError(f"{len(self.siblings)} siblings, limit {PROOF_SIBLINGS_MAX}")
        writer = Writer().u8(STATE_PROOF_VERSION)
        if self.leaf is None:
            writer.u8(0)
        else:
            writer.u8(1).fixed(self.leaf.path, HASH_BYTES).fixed(self.leaf.value_hash, HASH_BYTES)
        writer.u16(len(self.siblings))
        for sibling in self.siblings:
            writer.fixed(sibling, HASH_BYTES)
        return writer.getvalue()


def decode_proof(data: bytes) -> Proof:
    """The proof encoded by `data`; DecodeError unless it is one canonical proof encoding."""
    reader = Reader(data, "state proof")
    version = reader.u8("version")
    if version != STATE_PROOF_VERSION:
        raise DecodeError(f"state proof: version {version}, expected {STATE_PROOF_VERSION}")
    has_leaf = reader.u8("has_leaf")
    if has_leaf not in (0, 1):
        raise DecodeError(f"state proof: has_leaf is {has_leaf}, expected 0 or 1")
    leaf = None
    if has_leaf == 1:
        path = reader.fixed(HASH_BYTES, "leaf path")
        leaf = LeafNode(path, reader.fixed(HASH_BYTES, "leaf value hash"))
    count = reader.u16("sibling count")
    if count > PROOF_SIBLINGS_MAX:
        raise DecodeError(f"state proof: {count} siblings, limit {PROOF_SIBLINGS_MAX}")
    siblings = tuple(reader.fixed(HASH_BYTES, "sibling") for _ in range(count))
    reader.finish()
    return Proof(siblings, leaf)


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof: Proof) -> bool:
    """Whether `proof` shows that under `root`, `key` maps to `value` (None: is absent).

    False for anything that does not verify (a root that is not 32 bytes, an
    oversized key or value, a malformed or non-canonical proof, any hash that
    does not lead to `root`); TypeError only for arguments of the wrong type.
    """
    if not isinstance(root, bytes):
        raise TypeError(f"root must be bytes, not {type(root).__name__}")
    if not isinstance(key, bytes):
        raise TypeError(f"key must be bytes, not {type(key).__name__}")
    if value is not None and not isinstance(value, bytes):
        raise TypeError(f"value must be bytes or None, not {type(value).__name__}")
    if not isinstance(proof, Proof):
        raise TypeError(f"proof must be a Proof, not {type(proof).__name__}")
    if len(root) != HASH_BYTES or len(key) > STATE_KEY_BYTES_MAX:
        return False
    if value is not None and len(value) > STATE_VALUE_BYTES_MAX:
        return False
    siblings = proof.siblings
    depth = len(siblings)
    if depth > PROOF_SIBLINGS_MAX:
        return False
    if not all(isinstance(s, bytes) and len(s) == HASH_BYTES for s in siblings):
        return False
    leaf = proof.leaf
    if leaf is not None and not (
        isinstance(leaf.path, bytes)
        and isinstance(leaf.value_hash, bytes)
        and len(leaf.path) == HASH_BYTES
        and len(leaf.value_hash) == HASH_BYTES
    ):
        return False
    # Canonical shape: the node above the end of the path is an internal node
    # holding two or more entries, so the end's sibling is never Empty.
    if depth > 0 and siblings[-1] == EMPTY_ROOT:
        return False
    path = digest(key, STATE_PATH_KEY)
    path_int = int.from_bytes(path, "big")
    if value is not None:
        if leaf is None or leaf.path != path:
            return False
        if leaf.value_hash != digest(value, STATE_VALUE_KEY):
            return False
        node = leaf_hash(leaf.path, leaf.value_hash)
    elif leaf is None:
        node = EMPTY_ROOT
    else:
        # Absence shown by another entry's leaf: it sits on the key's path.
        other = int.from_bytes(leaf.path, "big")
        if leaf.path == path or _prefix(other, depth) != _prefix(path_int, depth):
            return False
        node = leaf_hash(leaf.path, leaf.value_hash)
    for index in range(depth - 1, -1, -1):
        sibling = siblings[index]
        if node == EMPTY_ROOT and sibling == EMPTY_ROOT:
            return False
        if _bit(path_int, index):
            node = digest(sibling + node, STATE_NODE_KEY)
        else:
            node = digest(node + sibling, STATE_NODE_KEY)
    return node == root




# --- many proofs, one walk --------------------------------------------------------


def prove_many(reader: NodeReader, root: bytes, keys: Sequence[bytes],
               cache: dict[bytes, bytes] | None = None) -> list[Proof]:
    """`StateTree(reader, root).prove(key)` for each of `keys`, in order, from one walk.

    The keys' paths are sorted and walked down together: a node on several
    paths (the upper levels, shared by every key) is read and parsed once,
    and every node read is checked against the hash it was read under in
    two batch hash calls at the end (leaves, internal nodes) rather than one
    call per node. Each proof is the ordinary per-key `Proof`, equal to
    `prove`'s. Duplicate keys are allowed. InvalidInput for a key over
    STATE_KEY_BYTES_MAX or a root that is not 32 bytes; StorageError for a
    store that breaks the tree (as `prove`).

    `cache`, kept by the caller between calls, maps node hash -> encoding of
    internal nodes above PROOF_CACHE_DEPTH that an earlier walk read and
    checked: they are taken from it instead of the reader (a node's hash
    fixes its encoding, so an entry never goes stale), and the ones this
    walk reads are added once checked (at most PROOF_CACHE_NODES_MAX: a full
    cache starts over).
    """
    if not isinstance(root, bytes):
        raise TypeError(f"state root must be bytes, not {type(root).__name__}")
    if len(root) != HASH_BYTES:
        raise InvalidInput(f"state root is {len(root)} bytes, expected {HASH_BYTES}")
    keys = list(keys)
    for key in keys:
        _check_key(key)
    if not keys:
        return []
    ints = [int.from_bytes(path, "big") for path in _hash_each(keys, STATE_PATH_KEY)]
    walk = _MultiWalk(reader, sorted(range(len(keys)), key=ints.__getitem__), ints, cache)
    try:
        walk.descend(root, 0, 0, len(keys))
    except StorageError:
        walk.check_reads()  # a node that does not hash to its key is the fault to report
        raise
    walk.check_reads()
    if cache is not None and walk.upper:
        if len(cache) + len(walk.upper) > PROOF_CACHE_NODES_MAX:
            cache.clear()
        cache.update(walk.upper)
    return walk.proofs  # type: ignore[return-value]  # every slot filled by descend


class _MultiWalk:
    """The state of one `prove_many` walk: the paths sorted, the proofs, the nodes read."""

    __slots__ = ("_cache", "_get_node", "_order", "_paths", "_read", "_siblings", "proofs",
                 "upper")

    def __init__(self, reader: NodeReader, order: list[int], ints: list[int],
                 cache: dict[bytes, bytes] | None) -> None:
        self._get_node = reader.get_node
        self._cache = cache
        self.upper: dict[bytes, bytes] = {}  # internal nodes read above PROOF_CACHE_DEPTH
        self._order = order  # key indexes, by path
        self._paths = [ints[index] for index in order]  # sorted
        self._siblings: list[bytes] = []  # down the current path, root first
        self._read: tuple[list[bytes], list[bytes], list[bytes], list[bytes]] = ([], [], [], [])
        self.proofs: list[Proof | None] = [None] * len(order)

    def _end(self, lo: int, hi: int, leaf: LeafNode | None) -> None:
        proof = Proof(tuple(self._siblings), leaf)
        for position in range(lo, hi):
            self.proofs[self._order[position]] = proof

    def descend(self, node_hash: bytes, depth: int, lo: int, hi: int) -> None:
        """Walk the paths sorted[lo:hi] (sharing `depth` bits) down from `node_hash`.

        A loop down one side, recursing only where the paths part: most of a
        walk is single paths below the shared upper levels.
        """
        siblings, paths = self._siblings, self._paths
        get_node, cache = self._get_node, self._cache
        _, _, internal_hashes, internal_bodies = self._read
        base = len(siblings)
        while node_hash != EMPTY_ROOT:
            upper = cache is not None and depth < PROOF_CACHE_DEPTH
            data = cache.get(node_hash) if upper else None  # type: ignore[union-attr]
            cached = data is not None  # checked when it was read
            if not cached:
                data = get_node(node_hash)
                if data.__class__ is not bytes and isinstance(data, bytearray | memoryview):
                    data = bytes(data)
            if not (  # the common case, a well-formed internal node
                data.__class__ is bytes
                and len(data) == NODE_BYTES
                and data[:2] == _INTERNAL_TAG
                and (body := data[2:]) != _EMPTY_PAIR
            ):
                self._leaf_or_fault(node_hash, data, depth, lo, hi)
                break
            if not cached:
                internal_hashes.append(node_hash)
                internal_bodies.append(body)
                if upper:
                    self.upper[node_hash] = data
            if depth >= STATE_PATH_BITS:
                raise _corrupt(f"internal node {node_hash.hex()} below depth {STATE_PATH_BITS}")
            if hi - lo == 1:
                right_side = paths[lo] >> (STATE_PATH_BITS - 1 - depth) & 1
            else:  # the first path in [lo, hi) with bit `depth` set
                boundary = (paths[lo] >> (STATE_PATH_BITS - depth) << 1 | 1) << (
                    STATE_PATH_BITS - 1 - depth)
                split = bisect.bisect_left(paths, boundary, lo, hi)
                if lo < split < hi:
                    siblings.append(body[HASH_BYTES:])
                    self.descend(body[:HASH_BYTES], depth + 1, lo, split)
                    siblings[-1] = body[:HASH_BYTES]
                    node_hash, depth, lo = body[HASH_BYTES:], depth + 1, split
                    continue
                right_side = split == lo
            if right_side:
                siblings.append(body[:HASH_BYTES])
                node_hash = body[HASH_BYTES:]
            else:
                siblings.append(body[HASH_BYTES:])
                node_hash = body[:HASH_BYTES]
            depth += 1
        else:
            self._end(lo, hi, None)
        del siblings[base:]

    def _leaf_or_fault(self, node_hash: bytes, data: object, depth: int, lo: int,
                       hi: int) -> None:
        """End sorted[lo:hi] at the leaf `data` read under `node_hash`; StorageError if it
        is not a well-formed leaf where one may be."""
        if not (isinstance(data, bytes) and len(data) == NODE_BYTES and data[:2] == _LEAF_TAG):
            if data is None:
                raise _corrupt(f"node {node_hash.hex()} is missing from the store")
            try:
                _parse_node(data)
            except DecodeError as exc:
                raise _corrupt(f"node {node_hash.hex()} is malformed: {exc}") from exc
            raise AssertionError("_parse_node accepted a node the walk refused")
        leaf_hashes, leaf_bodies, _, _ = self._read
        leaf_hashes.append(node_hash)
        leaf_bodies.append(data[2:])
        leaf = LeafNode(data[2 : 2 + HASH_BYTES], data[2 + HASH_BYTES :])
        if _prefix(int.from_bytes(leaf.path, "big"), depth) != _prefix(self._paths[lo], depth):
            raise _corrupt(f"leaf {node_hash.hex()} is off its path at depth {depth}")
        if self._siblings and self._siblings[-1] == EMPTY_ROOT:
            raise _corrupt(f"leaf {node_hash.hex()} has an Empty sibling (not moved up)")
        self._end(lo, hi, leaf)

    def check_reads(self) -> None:
        """StorageError unless every node read hashes to the hash it was read under."""
        leaf_hashes, leaf_bodies, internal_hashes, internal_bodies = self._read
        for hashes, bodies, key in ((leaf_hashes, leaf_bodies, STATE_LEAF_KEY),
                                    (internal_hashes, internal_bodies, STATE_NODE_KEY)):
            computed = _hash_bodies(bodies, key)
            if computed == b"".join(hashes):
                continue
            for node_hash, packed in zip(_split_hashes(computed), hashes, strict=True):
                if node_hash != packed:
                    raise _corrupt(f"node stored under {packed.hex()} does not hash to it")
            raise AssertionError("a batch hash differs while every hash matches")
