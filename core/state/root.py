"""State root: a sparse Merkle tree over the whole state, updated per block, with proofs.

The spec is docs/state-root.md; in short:

* every state entry (key <= 128 bytes, value <= 64 KiB) is a leaf on the
  256-bit path `key_path(key)` (keyed BLAKE3, read MSB first); the leaf holds
  `(key_path, value_hash)`, not the value itself (values live in the state
  tables);
* Empty hashes to 32 zero bytes and is never stored; a leaf hashes to
  keyed_hash(STATE_LEAF_KEY, key_path || value_hash) and an internal node to
  keyed_hash(STATE_NODE_KEY, left || right): one BLAKE3 compression each;
* canonical shape: a subtree with no entry is Empty, a subtree with one entry
  is that entry's leaf (at whatever depth), and a subtree with two or more is
  an internal node that splits them on the next path bit. So the root depends
  only on the set of entries, never on the order they came in;
* nodes are content-addressed: hash -> canonical 66-byte encoding. The tree
  does no I/O: it reads nodes through a `NodeReader` and `apply` returns the
  new nodes for the caller to write (in the same LMDB transaction as the
  block's state changes). Old nodes stay; pruning history is later work.

`apply(k changes)` visits each touched path once, in path order, and reads and
writes O(k * log n) nodes. `prove` / `verify_proof` give inclusion and
non-inclusion proofs against a root.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ..constants import (
    HASH_BYTES,
    STATE_CHANGES_MAX,
    STATE_KEY_BYTES_MAX,
    STATE_LEAF_CONTEXT,
    STATE_NODE_CONTEXT,
    STATE_NODE_VERSION,
    STATE_PATH_BITS,
    STATE_PATH_CONTEXT,
    STATE_PROOF_VERSION,
    STATE_VALUE_BYTES_MAX,
    STATE_VALUE_CONTEXT,
)
from ..encoding import Reader, Writer
from ..errors import DecodeError, InvalidInput, StorageError
from ..hashing import digest, domain_key

STATE_PATH_KEY = domain_key(STATE_PATH_CONTEXT)
STATE_VALUE_KEY = domain_key(STATE_VALUE_CONTEXT)
STATE_LEAF_KEY = domain_key(STATE_LEAF_CONTEXT)
STATE_NODE_KEY = domain_key(STATE_NODE_CONTEXT)

EMPTY_ROOT = bytes(HASH_BYTES)  # the hash of Empty: the root of the empty state

KIND_LEAF = 1
KIND_INTERNAL = 2
NODE_BYTES = 1 + 1 + 2 * HASH_BYTES
PROOF_SIBLINGS_MAX = STATE_PATH_BITS  # one per internal node, at depths 0..255

# Kinds used inside `apply` only: Empty (never stored) and "not read yet".
_KIND_EMPTY = 0
_KIND_UNKNOWN = 3

assert HASH_BYTES * 8 == STATE_PATH_BITS
assert STATE_KEY_BYTES_MAX <= 2**16 - 1 and STATE_VALUE_BYTES_MAX <= 2**32 - 1
assert len({STATE_PATH_KEY, STATE_VALUE_KEY, STATE_LEAF_KEY, STATE_NODE_KEY}) == 4
assert EMPTY_ROOT not in {STATE_PATH_KEY, STATE_VALUE_KEY, STATE_LEAF_KEY, STATE_NODE_KEY}


# --- hashing ------------------------------------------------------------------


def key_path(key: bytes) -> bytes:
    """The 256-bit path of a state key: keyed_hash(STATE_PATH_KEY, key)."""
    _check_key(key)
    return digest(key, STATE_PATH_KEY)


def value_hash(value: bytes) -> bytes:
    """The hash a leaf commits to for a value: keyed_hash(STATE_VALUE_KEY, value)."""
    _check_value(value)
    return digest(value, STATE_VALUE_KEY)


def leaf_hash(path: bytes, hashed_value: bytes) -> bytes:
    """Hash of the leaf for (path, value hash): keyed_hash(STATE_LEAF_KEY, path || hash)."""
    assert len(path) == HASH_BYTES
    assert len(hashed_value) == HASH_BYTES
    return digest(path + hashed_value, STATE_LEAF_KEY)


def internal_hash(left: bytes, right: bytes) -> bytes:
    """Hash of an internal node: keyed_hash(STATE_NODE_KEY, left || right)."""
    assert len(left) == HASH_BYTES
    assert len(right) == HASH_BYTES
    assert left != EMPTY_ROOT or right != EMPTY_ROOT
    return digest(left + right, STATE_NODE_KEY)


def _check_key(key: object) -> None:
    if not isinstance(key, bytes):
        raise TypeError(f"a state key must be bytes, not {type(key).__name__}")
    if len(key) > STATE_KEY_BYTES_MAX:
        raise InvalidInput(f"state key is {len(key)} bytes, limit {STATE_KEY_BYTES_MAX}")


def _check_value(value: object) -> None:
    if not isinstance(value, bytes):
        raise TypeError(f"a state value must be bytes, not {type(value).__name__}")
    if len(value) > STATE_VALUE_BYTES_MAX:
        raise InvalidInput(f"state value is {len(value)} bytes, limit {STATE_VALUE_BYTES_MAX}")


def _bit(path_int: int, depth: int) -> int:
    """Bit `depth` of a path (0 = most significant)."""
    assert 0 <= depth < STATE_PATH_BITS
    return (path_int >> (STATE_PATH_BITS - 1 - depth)) & 1


def _prefix(path_int: int, depth: int) -> int:
    """The first `depth` bits of a path, as an integer."""
    assert 0 <= depth <= STATE_PATH_BITS
    return path_int >> (STATE_PATH_BITS - depth)


# --- nodes ----------------------------------------------------------------------

_LEAF_TAG = bytes((STATE_NODE_VERSION, KIND_LEAF))
_INTERNAL_TAG = bytes((STATE_NODE_VERSION, KIND_INTERNAL))


@dataclass(frozen=True, slots=True)
class LeafNode:
    """One state entry: its key's path and its value's hash."""

    path: bytes
    value_hash: bytes

    def hash(self) -> bytes:
        """keyed_hash(STATE_LEAF_KEY, path || value_hash)."""
        return leaf_hash(self.path, self.value_hash)

    def encode(self) -> bytes:
        """version u8 (1), kind u8 (1), path (32), value_hash (32)."""
        assert len(self.path) == HASH_BYTES
        assert len(self.value_hash) == HASH_BYTES
        return _LEAF_TAG + self.path + self.value_hash


@dataclass(frozen=True, slots=True)
class InternalNode:
    """A split on one path bit: left holds the 0 side, right the 1 side (EMPTY_ROOT if none)."""

    left: bytes
    right: bytes

    def hash(self) -> bytes:
        """keyed_hash(STATE_NODE_KEY, left || right)."""
        return internal_hash(self.left, self.right)

    def encode(self) -> bytes:
        """version u8 (1), kind u8 (2), left (32), right (32)."""
        assert len(self.left) == HASH_BYTES
        assert len(self.right) == HASH_BYTES
        assert self.left != EMPTY_ROOT or self.right != EMPTY_ROOT
        return _INTERNAL_TAG + self.left + self.right


Node = LeafNode | InternalNode


def _parse_node(data: object) -> tuple[int, bytes, bytes]:
    """(kind, first field, second field) of a node encoding; DecodeError unless canonical.

    The layout is fixed (66 bytes, no length fields), so it is parsed by
    slicing rather than through `encoding.Reader`: this runs once per node
    read, on the hot path of `apply`.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"state node: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if len(data) != NODE_BYTES:
        raise DecodeError(f"state node: {len(data)} bytes, expected {NODE_BYTES}")
    if data[0] != STATE_NODE_VERSION:
        raise DecodeError(f"state node: version {data[0]}, expected {STATE_NODE_VERSION}")
    kind = data[1]
    if kind != KIND_LEAF and kind != KIND_INTERNAL:
        raise DecodeError(f"state node: unknown kind {kind}")
    first = data[2 : 2 + HASH_BYTES]
    second = data[2 + HASH_BYTES :]
    if kind == KIND_INTERNAL and first == EMPTY_ROOT and second == EMPTY_ROOT:
        raise DecodeError("state node: internal node with two Empty children")
    return kind, first, second


def _hash_fields(kind: int, first: bytes, second: bytes) -> bytes:
    """The hash of a parsed node."""
    return digest(first + second, STATE_LEAF_KEY if kind == KIND_LEAF else STATE_NODE_KEY)


def decode_node(data: bytes) -> Node:
    """The node encoded by `data`; DecodeError unless it is one canonical node encoding.

    Layout: version u8 (1), kind u8 (1 leaf, 2 internal), then two 32-byte
    fields, nothing after. An internal node with two Empty children does not
    exist.
    """
    kind, first, second = _parse_node(data)
    if kind == KIND_LEAF:
        return LeafNode(first, second)
    return InternalNode(first, second)


class NodeReader(Protocol):
    """Where the tree reads nodes: node hash -> encoding, None if absent."""

    def get_node(self, node_hash: bytes) -> bytes | None:
        """The encoding stored under `node_hash` (bytes-like), None if absent."""
        ...


class MemoryNodeStore:
    """A NodeReader over a dict, for tests and benchmarks; checks what it is given."""

    __slots__ = ("_nodes",)

    def __init__(self, nodes: Mapping[bytes, bytes] | None = None) -> None:
        self._nodes: dict[bytes, bytes] = {}
        if nodes is not None:
            self.put_nodes(nodes)

    def get_node(self, node_hash: bytes) -> bytes | None:
        """The encoding stored under `node_hash`, None if absent."""
        return self._nodes.get(node_hash)

    def put_nodes(self, nodes: Mapping[bytes, bytes]) -> None:
        """Store `nodes` (hash -> encoding, as in TreeUpdate.new_nodes), each checked.

        DecodeError for a malformed encoding, InvalidInput for one that does
        not hash to its key.
        """
        for node_hash, data in nodes.items():
            if _hash_fields(*_parse_node(data)) != node_hash:
                raise InvalidInput(f"state node does not hash to {node_hash.hex()}")
            self._nodes[node_hash] = bytes(data)

    def __len__(self) -> int:
        """The number of stored nodes."""
        return len(self._nodes)


def _corrupt(message: str) -> StorageError:
    """The error for a node store that breaks the tree's invariants (always raised)."""
    return StorageError(f"state tree: {message}")


def _load(reader: NodeReader, node_hash: bytes) -> tuple[int, bytes, bytes]:
    """(kind, first, second) of the stored node `node_hash`, checked to hash to it.

    A missing, malformed or mismatched node is a StorageError: the store, not
    the caller's input, is at fault.
    """
    assert node_hash != EMPTY_ROOT
    data = reader.get_node(node_hash)
    if data is None:
        raise _corrupt(f"node {node_hash.hex()} is missing from the store")
    try:
        kind, first, second = _parse_node(data)
    except DecodeError as exc:
        raise _corrupt(f"node {node_hash.hex()} is malformed: {exc}") from exc
    if _hash_fields(kind, first, second) != node_hash:
        raise _corrupt(f"node stored under {node_hash.hex()} does not hash to it")
    return kind, first, second


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


# --- the tree -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    """The result of `StateTree.apply`: the new root and the nodes to persist with it.

    `new_nodes` maps node hash -> encoding, in the order they were built (post
    order along ascending paths); every one is reachable from `root`, and every
    node reachable from `root` is either here or already in the store.
    `nodes_read` counts the store reads `apply` made.
    """

    root: bytes
    new_nodes: dict[bytes, bytes]
    nodes_read: int


class StateTree:
    """The state tree at one root, read through a NodeReader; immutable.

    `apply` returns a TreeUpdate and leaves this object as it was; once the
    update's nodes are written, `StateTree(reader, update.root)` continues.
    """

    __slots__ = ("_reader", "_root")

    def __init__(self, reader: NodeReader, root: bytes = EMPTY_ROOT) -> None:
        if not isinstance(root, bytes):
            raise TypeError(f"state root must be bytes, not {type(root).__name__}")
        if len(root) != HASH_BYTES:
            raise InvalidInput(f"state root is {len(root)} bytes, expected {HASH_BYTES}")
        self._reader = reader
        self._root = root

    @property
    def root(self) -> bytes:
        """The 32-byte root this tree reads from (EMPTY_ROOT for the empty state)."""
        return self._root

    def _walk(self, path: bytes) -> tuple[list[bytes], LeafNode | None]:
        """Siblings (root first) down `path`, and the leaf it ends at (None: at Empty)."""
        path_int = int.from_bytes(path, "big")
        siblings: list[bytes] = []
        node_hash = self._root
        while node_hash != EMPTY_ROOT:
            kind, first, second = _load(self._reader, node_hash)
            depth = len(siblings)
            if kind == KIND_LEAF:
                if _prefix(int.from_bytes(first, "big"), depth) != _prefix(path_int, depth):
                    raise _corrupt(f"leaf {node_hash.hex()} is off its path at depth {depth}")
                if siblings and siblings[-1] == EMPTY_ROOT:
                    raise _corrupt(f"leaf {node_hash.hex()} has an Empty sibling (not moved up)")
                return siblings, LeafNode(first, second)
            if depth >= STATE_PATH_BITS:
                raise _corrupt(f"internal node {node_hash.hex()} below depth {STATE_PATH_BITS}")
            if _bit(path_int, depth):
                siblings.append(first)
                node_hash = second
            else:
                siblings.append(second)
                node_hash = first
        return siblings, None

    def get_value_hash(self, key: bytes) -> bytes | None:
        """The value hash the tree holds for `key`, None if the key is absent."""
        path = key_path(key)
        _, leaf = self._walk(path)
        if leaf is None or leaf.path != path:
            return None
        return leaf.value_hash

    def prove(self, key: bytes) -> Proof:
        """An inclusion proof for `key` if present, else a non-inclusion proof."""
        siblings, leaf = self._walk(key_path(key))
        proof = Proof(tuple(siblings), leaf)
        assert len(proof.siblings) <= PROOF_SIBLINGS_MAX
        return proof

    def apply(self, changes: Mapping[bytes, bytes | None]) -> TreeUpdate:
        """The tree after setting each key to its new value (None: delete it).

        Deleting an absent key and setting a key to its current value are
        no-ops. Changes are applied together, in ascending path order, each
        touched path visited once; the result does not depend on the
        mapping's order. Nothing is written: persist `new_nodes`.
        """
        if not isinstance(changes, Mapping):
            raise TypeError(f"changes must be a Mapping, not {type(changes).__name__}")
        if len(changes) > STATE_CHANGES_MAX:
            raise InvalidInput(f"{len(changes)} state changes, limit {STATE_CHANGES_MAX}")
        batch: list[tuple[int, bytes, bytes | None]] = []
        for key, value in changes.items():
            path = key_path(key)
            hashed = None if value is None else value_hash(value)
            batch.append((int.from_bytes(path, "big"), path, hashed))
        batch.sort(key=lambda change: change[0])
        for before, after in itertools.pairwise(batch):
            if before[0] == after[0]:
                raise InvalidInput(f"two state keys share the path {before[1].hex()}")
        if not batch:
            return TreeUpdate(self._root, {}, 0)
        run = _Apply(self._reader, batch)
        root, _ = run.update(self._root, 0, 0, len(batch))
        assert len(root) == HASH_BYTES
        assert root == EMPTY_ROOT or root in run.new_nodes or run.nodes_read > 0
        return TreeUpdate(root, run.new_nodes, run.nodes_read)


class _Apply:
    """One batch update: sorted changes in, new root and new nodes out.

    Both recursions work on index ranges [lo, hi) of a list sorted by path,
    all of whose paths share the first `depth` bits; they return the new
    subtree's (hash, kind).
    """

    __slots__ = ("_changes", "_paths", "_reader", "new_nodes", "nodes_read")

    def __init__(self, reader: NodeReader, changes: list[tuple[int, bytes, bytes | None]]) -> None:
        self._reader = reader
        self._changes = changes
        self._paths = [change[0] for change in changes]
        self.new_nodes: dict[bytes, bytes] = {}
        self.nodes_read = 0

    def _read(self, node_hash: bytes) -> tuple[int, bytes, bytes]:
        self.nodes_read += 1
        return _load(self._reader, node_hash)

    def _emit_leaf(self, path: bytes, hashed_value: bytes, stored: bytes | None) -> bytes:
        assert len(path) == HASH_BYTES
        assert len(hashed_value) == HASH_BYTES
        fields = path + hashed_value
        node_hash = digest(fields, STATE_LEAF_KEY)
        if node_hash != stored:  # a leaf that only moved down is already in the store
            self.new_nodes[node_hash] = _LEAF_TAG + fields
        return node_hash

    def _emit_internal(self, left: bytes, right: bytes) -> bytes:
        assert len(left) == HASH_BYTES
        assert len(right) == HASH_BYTES
        assert left != EMPTY_ROOT or right != EMPTY_ROOT
        fields = left + right
        node_hash = digest(fields, STATE_NODE_KEY)
        self.new_nodes[node_hash] = _INTERNAL_TAG + fields
        return node_hash

    def update(self, node_hash: bytes, depth: int, lo: int, hi: int) -> tuple[bytes, int]:
        """Apply changes[lo:hi] to the stored subtree `node_hash` at `depth`."""
        assert 0 <= lo < hi <= len(self._changes)
        assert depth <= STATE_PATH_BITS
        assert _prefix(self._paths[lo], depth) == _prefix(self._paths[hi - 1], depth)
        if node_hash == EMPTY_ROOT:
            entries = [(p, path, v) for p, path, v in self._changes[lo:hi] if v is not None]
            return self._build(entries, depth, 0, len(entries), None)
        kind, old_left, old_right = self._read(node_hash)
        if kind == KIND_LEAF:
            return self._update_leaf(node_hash, LeafNode(old_left, old_right), depth, lo, hi)
        if depth >= STATE_PATH_BITS:
            raise _corrupt(f"internal node {node_hash.hex()} below depth {STATE_PATH_BITS}")
        split = self._split(depth, lo, hi)
        left, left_kind = old_left, _KIND_UNKNOWN
        right, right_kind = old_right, _KIND_UNKNOWN
        if lo < split:
            left, left_kind = self.update(old_left, depth + 1, lo, split)
        if split < hi:
            right, right_kind = self.update(old_right, depth + 1, split, hi)
        if left == old_left and right == old_right:
            return node_hash, KIND_INTERNAL
        if left == EMPTY_ROOT and right == EMPTY_ROOT:
            return EMPTY_ROOT, _KIND_EMPTY
        if left == EMPTY_ROOT or right == EMPTY_ROOT:
            # One side left: a lone leaf moves up (no internal node over one
            # entry); an internal node stays, with an Empty sibling.
            other, other_kind = (right, right_kind) if left == EMPTY_ROOT else (left, left_kind)
            if other_kind == _KIND_UNKNOWN:
                other_kind = self._read(other)[0]
            if other_kind == KIND_LEAF:
                return other, KIND_LEAF
        return self._emit_internal(left, right), KIND_INTERNAL

    def _split(self, depth: int, lo: int, hi: int) -> int:
        """First index in [lo, hi) whose path has bit `depth` set (hi if none)."""
        first = self._paths[lo]
        boundary = (_prefix(first, depth) << 1 | 1) << (STATE_PATH_BITS - 1 - depth)
        return bisect.bisect_left(self._paths, boundary, lo, hi)

    def _update_leaf(
        self, node_hash: bytes, leaf: LeafNode, depth: int, lo: int, hi: int
    ) -> tuple[bytes, int]:
        """Merge changes[lo:hi] with the one stored entry of this subtree, then rebuild."""
        leaf_int = int.from_bytes(leaf.path, "big")
        if _prefix(leaf_int, depth) != _prefix(self._paths[lo], depth):
            raise _corrupt(f"leaf {node_hash.hex()} is off its path at depth {depth}")
        at = bisect.bisect_left(self._paths, leaf_int, lo, hi)
        replaced = at < hi and self._paths[at] == leaf_int
        entries = [(p, path, v) for p, path, v in self._changes[lo:at] if v is not None]
        if not replaced:
            entries.append((leaf_int, leaf.path, leaf.value_hash))
        entries += [(p, path, v) for p, path, v in self._changes[at:hi] if v is not None]
        return self._build(entries, depth, 0, len(entries), node_hash)

    def _build(
        self,
        entries: list[tuple[int, bytes, bytes | None]],
        depth: int,
        lo: int,
        hi: int,
        stored: bytes | None,
    ) -> tuple[bytes, int]:
        """The canonical subtree at `depth` holding entries[lo:hi] (sorted, all set)."""
        assert 0 <= lo <= hi <= len(entries)
        if lo == hi:
            return EMPTY_ROOT, _KIND_EMPTY
        if hi - lo == 1:
            _, path, hashed_value = entries[lo]
            assert hashed_value is not None
            return self._emit_leaf(path, hashed_value, stored), KIND_LEAF
        first, last = entries[lo][0], entries[hi - 1][0]
        assert first < last
        # The first and last paths differ first where the range splits.
        split_depth = STATE_PATH_BITS - (first ^ last).bit_length()
        assert depth <= split_depth < STATE_PATH_BITS
        boundary = (_prefix(last, split_depth + 1)) << (STATE_PATH_BITS - 1 - split_depth)
        mid = bisect.bisect_left(entries, boundary, lo, hi, key=lambda entry: entry[0])
        assert lo < mid < hi
        left, _ = self._build(entries, split_depth + 1, lo, mid, stored)
        right, _ = self._build(entries, split_depth + 1, mid, hi, stored)
        node_hash = self._emit_internal(left, right)
        # Above the split, every entry takes the same side: one internal node
        # per bit, with an Empty sibling, up to `depth`.
        for chain_depth in range(split_depth - 1, depth - 1, -1):
            if _bit(first, chain_depth):
                node_hash = self._emit_internal(EMPTY_ROOT, node_hash)
            else:
                node_hash = self._emit_internal(node_hash, EMPTY_ROOT)
        return node_hash, KIND_INTERNAL
