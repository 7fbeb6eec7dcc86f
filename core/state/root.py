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
writes O(k * log n) nodes; it decides the new shape first, then checks the
nodes it read and hashes the new ones in batch calls (one per tree level).
`build_tree(entries)` builds the same tree as `apply` on an empty tree,
bottom-up, for large states. `prove` / `verify_proof` give inclusion and
non-inclusion proofs against a root.
"""

from __future__ import annotations

import bisect
import itertools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from .. import accel
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
_EMPTY_PAIR = EMPTY_ROOT + EMPTY_ROOT  # the fields of an internal node that does not exist
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


# --- batch hashing --------------------------------------------------------------


def _split_hashes(packed: bytes) -> list[bytes]:
    """Packed 32-byte hashes, as a list."""
    return [packed[start : start + HASH_BYTES] for start in range(0, len(packed), HASH_BYTES)]


def _hash_each(messages: list[bytes], key: bytes) -> list[bytes]:
    """keyed_hash(key, message) of each message, in one batch call."""
    if not messages:
        return []
    offsets = [0, *itertools.accumulate(map(len, messages))]
    return _split_hashes(accel.digest_many(b"".join(messages), offsets, key))


def _hash_bodies(bodies: list[bytes], key: bytes) -> bytes:
    """keyed_hash(key, body) of each 64-byte node body (a node's two fields), packed."""
    if not bodies:
        return b""
    return accel.digest_many_fixed(b"".join(bodies), 2 * HASH_BYTES, key)


_path_int = operator.itemgetter(0)  # a change's path as an int: the sort key


def _check_entries(keys: list[bytes], values: list[bytes | None], deletes: bool) -> None:
    """`_check_key` on each key, `_check_value` on each value (None too, unless `deletes`).

    The first bad one, in order, raises; a quick look at all of them first
    skips the per-item checks in the usual case.
    """
    value_types = {bytes, type(None)} if deletes else {bytes}
    if (
        set(map(type, keys)) <= {bytes}
        and set(map(type, values)) <= value_types
        and max(map(len, keys), default=0) <= STATE_KEY_BYTES_MAX
        and max(map(len, filter(None, values)), default=0) <= STATE_VALUE_BYTES_MAX
    ):
        return
    for key, value in zip(keys, values, strict=True):
        _check_key(key)
        if value is not None or not deletes:
            _check_value(value)


def _sorted_changes(changes: Mapping[bytes, bytes | None]) -> list[tuple[int, bytes, bytes | None]]:
    """(path as an int, path, value hash or None to delete) per change, sorted by path.

    Every key and value is checked before any is hashed, in the mapping's
    order; InvalidInput if two keys share a path.
    """
    keys, values = list(changes), list(changes.values())
    _check_entries(keys, values, deletes=True)
    paths = _hash_each(keys, STATE_PATH_KEY)
    hashed = iter(_hash_each([value for value in values if value is not None], STATE_VALUE_KEY))
    batch = [
        (int.from_bytes(path, "big"), path, None if value is None else next(hashed))
        for path, value in zip(paths, values, strict=True)
    ]
    batch.sort(key=_path_int)
    for before, after in itertools.pairwise(batch):
        if before[0] == after[0]:
            raise InvalidInput(f"two state keys share the path {before[1].hex()}")
    return batch


# --- the tree -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    """The result of `StateTree.apply` or `build_tree`: the new root and the nodes to persist.

    `new_nodes` maps node hash -> encoding; every one is reachable from
    `root`, and every node reachable from `root` is either here or already in
    the store. `apply` lists them in post order along ascending paths,
    `build_tree` lists the leaves first, then the internal nodes level by
    level from the deepest. `nodes_read` counts the store reads made.
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
        batch = _sorted_changes(changes)
        if not batch:
            return TreeUpdate(self._root, {}, 0)
        run = _Apply(self._reader, batch)
        try:
            root, _ = run.update(self._root, 0, 0, len(batch))
        except StorageError:
            run.check_reads()  # a node that does not hash to its key is the fault to report
            raise
        return run.finish(root)


# A subtree during `apply`: its hash when known (unchanged, Empty, or a stored
# node), else the index of its new root node, hashed at the end.
_Ref = bytes | int


class _Apply:
    """One batch update: sorted changes in, new root and new nodes out.

    Two passes. `update` walks down the touched paths, reading the stored
    nodes it needs, and decides the shape of the new tree without hashing:
    each new node gets an index, and a subtree is a `_Ref`. Hashes compare
    structurally: a subtree whose entries did not change keeps its old hash,
    and a rebuilt one always differs (content addressing). `finish` then
    checks every node read against the hash it was read under and hashes the
    new nodes, one batch call for the leaves and one per level of internal
    nodes, from the deepest up.

    The recursions work on index ranges [lo, hi) of a list sorted by path,
    all of whose paths share the first `depth` bits; they return the new
    subtree's (reference, kind).
    """

    __slots__ = (
        "_changes", "_first", "_leaves", "_levels", "_paths", "_read_fields", "_read_hashes",
        "_reader", "_second", "nodes_read",
    )

    def __init__(self, reader: NodeReader, changes: list[tuple[int, bytes, bytes | None]]) -> None:
        self._reader = reader
        self._changes = changes
        self._paths = [change[0] for change in changes]
        # New node i: (path, value hash) of a leaf or (left, right) of an internal node.
        self._first: list[_Ref] = []
        self._second: list[_Ref] = []
        self._leaves: list[int] = []  # the new leaves' indexes
        self._levels: list[list[int]] = [[] for _ in range(STATE_PATH_BITS)]  # internal, by depth
        # Each node read, by kind: its hash and its fields, to check in one batch.
        self._read_hashes: tuple[list[bytes], ...] = ([], [], [])
        self._read_fields: tuple[list[bytes], ...] = ([], [], [])
        self.nodes_read = 0

    def _read(self, node_hash: bytes) -> tuple[int, bytes]:
        """(kind, fields) of a stored node; its hash is checked by `check_reads`."""
        assert node_hash != EMPTY_ROOT
        self.nodes_read += 1
        return self._accept(node_hash, self._reader.get_node(node_hash))

    def _accept(self, node_hash: bytes, data: object) -> tuple[int, bytes]:
        """(kind, fields) of `data`, read under `node_hash`, queued for `check_reads`."""
        if data.__class__ is not bytes and isinstance(data, bytearray | memoryview):
            data = bytes(data)
        kind = 0
        if data.__class__ is bytes and len(data) == NODE_BYTES and data[0] == STATE_NODE_VERSION:
            kind = data[1]
        fields = data[2:] if kind else b""  # type: ignore[index]
        if not (kind == KIND_LEAF or (kind == KIND_INTERNAL and fields != _EMPTY_PAIR)):
            # The slow path finds what is wrong.
            if data is None:
                raise _corrupt(f"node {node_hash.hex()} is missing from the store")
            try:
                _parse_node(data)
            except DecodeError as exc:
                raise _corrupt(f"node {node_hash.hex()} is malformed: {exc}") from exc
            raise AssertionError("_parse_node accepted a node the fast path refused")
        self._read_hashes[kind].append(node_hash)
        self._read_fields[kind].append(fields)
        return kind, fields

    def check_reads(self) -> None:
        """StorageError unless every node read so far hashes to the hash it was read under."""
        for kind, key in ((KIND_LEAF, STATE_LEAF_KEY), (KIND_INTERNAL, STATE_NODE_KEY)):
            hashes, fields = self._read_hashes[kind], self._read_fields[kind]
            if _hash_bodies(fields, key) == b"".join(hashes):
                continue
            computed = _split_hashes(_hash_bodies(fields, key))
            for node_hash, packed in zip(computed, hashes, strict=True):
                if node_hash != packed:
                    raise _corrupt(f"node stored under {packed.hex()} does not hash to it")
            raise AssertionError("the batch hash changed between two calls")

    def _leaf(self, path: bytes, hashed_value: bytes) -> int:
        index = len(self._first)
        self._first.append(path)
        self._second.append(hashed_value)
        self._leaves.append(index)
        return index

    def _internal(self, left: _Ref, right: _Ref, depth: int) -> int:
        assert left != EMPTY_ROOT or right != EMPTY_ROOT
        index = len(self._first)
        self._first.append(left)
        self._second.append(right)
        self._levels[depth].append(index)
        return index

    def update(self, node_hash: bytes, depth: int, lo: int, hi: int) -> tuple[_Ref, int]:
        """Apply changes[lo:hi] to the stored subtree `node_hash` at `depth`."""
        assert 0 <= lo < hi <= len(self._changes)
        assert depth <= STATE_PATH_BITS
        if hi - lo == 1:
            return self._update_one(node_hash, depth, lo)
        if node_hash == EMPTY_ROOT:
            entries = [change for change in self._changes[lo:hi] if change[2] is not None]
            return self._build(entries, depth, 0, len(entries), None)
        kind, fields = self._read(node_hash)
        old_left, old_right = fields[:HASH_BYTES], fields[HASH_BYTES:]
        if kind == KIND_LEAF:
            return self._update_leaf((node_hash, old_left, old_right), depth, lo, hi)
        if depth >= STATE_PATH_BITS:
            raise _corrupt(f"internal node {node_hash.hex()} below depth {STATE_PATH_BITS}")
        split = self._split(depth, lo, hi)
        left: _Ref = old_left
        right: _Ref = old_right
        left_kind = right_kind = _KIND_UNKNOWN
        if lo < split:
            left, left_kind = self.update(old_left, depth + 1, lo, split)
        if split < hi:
            right, right_kind = self.update(old_right, depth + 1, split, hi)
        return self._join(node_hash, depth, old_left, old_right, left, left_kind, right, right_kind)

    def _update_one(self, node_hash: bytes, depth: int, index: int) -> tuple[_Ref, int]:
        """`update` for the one change changes[index], without recursion.

        Down the change's path to a leaf or Empty, then back up, joining each
        new child with its unread sibling.
        """
        path_int, path, hashed_value = self._changes[index]
        above: list[tuple[bytes, bytes]] = []  # (hash, fields) of each internal node passed
        get_node = self._reader.get_node
        internal_hashes = self._read_hashes[KIND_INTERNAL]
        internal_fields = self._read_fields[KIND_INTERNAL]
        while node_hash != EMPTY_ROOT:
            self.nodes_read += 1
            data = get_node(node_hash)
            if (  # `_read` inlined for the common case, a well-formed internal node
                data.__class__ is bytes
                and len(data) == NODE_BYTES
                and data[:2] == _INTERNAL_TAG
                and (fields := data[2:]) != _EMPTY_PAIR
            ):
                internal_hashes.append(node_hash)
                internal_fields.append(fields)
            elif self._accept(node_hash, data)[0] == KIND_LEAF:
                fields = self._read_fields[KIND_LEAF][-1]
                leaf = (node_hash, fields[:HASH_BYTES], fields[HASH_BYTES:])
                node, node_kind = self._update_leaf(leaf, depth, index, index + 1)
                break
            else:
                fields = internal_fields[-1]
            if depth >= STATE_PATH_BITS:
                raise _corrupt(f"internal node {node_hash.hex()} below depth {STATE_PATH_BITS}")
            above.append((node_hash, fields))
            if path_int >> (STATE_PATH_BITS - 1 - depth) & 1:
                node_hash = fields[HASH_BYTES:]
            else:
                node_hash = fields[:HASH_BYTES]
            depth += 1
        else:
            node, node_kind = EMPTY_ROOT, _KIND_EMPTY
            if hashed_value is not None:
                node, node_kind = self._leaf(path, hashed_value), KIND_LEAF
        first, second, levels = self._first, self._second, self._levels
        for node_hash, fields in reversed(above):
            depth -= 1
            old_left, old_right = fields[:HASH_BYTES], fields[HASH_BYTES:]
            on_right = path_int >> (STATE_PATH_BITS - 1 - depth) & 1
            if node.__class__ is int and (old_left if on_right else old_right) != EMPTY_ROOT:
                # The common case, inline: a new child beside a stored sibling.
                first.append(old_left if on_right else node)
                second.append(node if on_right else old_right)
                node = len(first) - 1
                levels[depth].append(node)
                node_kind = KIND_INTERNAL
            elif on_right:
                node, node_kind = self._join(
                    node_hash, depth, old_left, old_right, old_left, _KIND_UNKNOWN, node, node_kind
                )
            else:
                node, node_kind = self._join(
                    node_hash, depth, old_left, old_right, node, node_kind, old_right, _KIND_UNKNOWN
                )
        return node, node_kind

    def _join(
        self,
        node_hash: bytes,
        depth: int,
        old_left: bytes,
        old_right: bytes,
        left: _Ref,
        left_kind: int,
        right: _Ref,
        right_kind: int,
    ) -> tuple[_Ref, int]:
        """The subtree that replaces internal node `node_hash` (at `depth`) given new children."""
        if left == old_left and right == old_right:
            return node_hash, KIND_INTERNAL
        if left == EMPTY_ROOT and right == EMPTY_ROOT:
            return EMPTY_ROOT, _KIND_EMPTY
        if left == EMPTY_ROOT or right == EMPTY_ROOT:
            # One side left: a lone leaf moves up (no internal node over one
            # entry); an internal node stays, with an Empty sibling.
            other, other_kind = (right, right_kind) if left == EMPTY_ROOT else (left, left_kind)
            if other_kind == _KIND_UNKNOWN:
                assert isinstance(other, bytes)
                other_kind, _ = self._read(other)
            if other_kind == KIND_LEAF:
                return other, KIND_LEAF
        return self._internal(left, right, depth), KIND_INTERNAL

    def _split(self, depth: int, lo: int, hi: int) -> int:
        """First index in [lo, hi) whose path has bit `depth` set (hi if none)."""
        first = self._paths[lo]
        boundary = (_prefix(first, depth) << 1 | 1) << (STATE_PATH_BITS - 1 - depth)
        return bisect.bisect_left(self._paths, boundary, lo, hi)

    def _update_leaf(
        self, leaf: tuple[bytes, bytes, bytes], depth: int, lo: int, hi: int
    ) -> tuple[_Ref, int]:
        """Merge changes[lo:hi] with the one stored entry of this subtree, then rebuild.

        `leaf` is the stored leaf: (hash, path, value hash).
        """
        node_hash, leaf_path, leaf_value = leaf
        leaf_int = int.from_bytes(leaf_path, "big")
        if _prefix(leaf_int, depth) != _prefix(self._paths[lo], depth):
            raise _corrupt(f"leaf {node_hash.hex()} is off its path at depth {depth}")
        at = bisect.bisect_left(self._paths, leaf_int, lo, hi)
        replaced = at < hi and self._paths[at] == leaf_int
        changes = self._changes
        entries = [change for change in changes[lo:at] if change[2] is not None]
        if not replaced:
            entries.append((leaf_int, leaf_path, leaf_value))
        entries += [change for change in changes[at:hi] if change[2] is not None]
        return self._build(entries, depth, 0, len(entries), leaf)

    def _build(
        self,
        entries: list[tuple[int, bytes, bytes | None]],
        depth: int,
        lo: int,
        hi: int,
        stored: tuple[bytes, bytes, bytes] | None,
    ) -> tuple[_Ref, int]:
        """The canonical subtree at `depth` holding entries[lo:hi] (sorted, all set).

        `stored` is the leaf that held this subtree, (hash, path, value hash):
        a leaf with the same fields (moved down, or set to its current value)
        is reused.
        """
        assert 0 <= lo <= hi <= len(entries)
        if lo == hi:
            return EMPTY_ROOT, _KIND_EMPTY
        if hi - lo == 1:
            _, path, hashed_value = entries[lo]
            assert hashed_value is not None
            if stored is not None and path == stored[1] and hashed_value == stored[2]:
                return stored[0], KIND_LEAF
            return self._leaf(path, hashed_value), KIND_LEAF
        first, last = entries[lo][0], entries[hi - 1][0]
        assert first < last
        # The first and last paths differ first where the range splits.
        split_depth = STATE_PATH_BITS - (first ^ last).bit_length()
        assert depth <= split_depth < STATE_PATH_BITS
        boundary = (_prefix(last, split_depth + 1)) << (STATE_PATH_BITS - 1 - split_depth)
        mid = bisect.bisect_left(entries, boundary, lo, hi, key=_path_int)
        assert lo < mid < hi
        left, _ = self._build(entries, split_depth + 1, lo, mid, stored)
        right, _ = self._build(entries, split_depth + 1, mid, hi, stored)
        node = self._internal(left, right, split_depth)
        # Above the split, every entry takes the same side: one internal node
        # per bit, with an Empty sibling, up to `depth`.
        for chain_depth in range(split_depth - 1, depth - 1, -1):
            if _bit(first, chain_depth):
                node = self._internal(EMPTY_ROOT, node, chain_depth)
            else:
                node = self._internal(node, EMPTY_ROOT, chain_depth)
        return node, KIND_INTERNAL

    def finish(self, root: _Ref) -> TreeUpdate:
        """Check the reads, hash the new nodes level by level, and return the update."""
        self.check_reads()
        first, second = self._first, self._second
        hash_of: dict[int, bytes] = {}  # new node index -> its hash
        encoding_of: dict[int, bytes] = {}
        groups = [(self._leaves, STATE_LEAF_KEY, _LEAF_TAG)]
        groups += [(level, STATE_NODE_KEY, _INTERNAL_TAG) for level in reversed(self._levels)]
        for indexes, key, tag in groups:
            if not indexes:
                continue
            # A level's children are leaves or one level deeper: hashed already.
            # hash_of.get(ref, ref) is a new child's hash, or the known hash itself.
            lefts = list(map(first.__getitem__, indexes))
            rights = list(map(second.__getitem__, indexes))
            bodies = list(
                map(bytes.__add__, map(hash_of.get, lefts, lefts), map(hash_of.get, rights, rights))
            )
            hash_of.update(zip(indexes, _split_hashes(_hash_bodies(bodies, key)), strict=True))
            encoding_of.update(zip(indexes, map(tag.__add__, bodies), strict=True))
        order = range(len(first))  # the order the nodes were made in: post order
        new_nodes = dict(
            zip(map(hash_of.__getitem__, order), map(encoding_of.__getitem__, order), strict=True)
        )
        root_hash = root if isinstance(root, bytes) else hash_of[root]
        assert len(root_hash) == HASH_BYTES
        assert root_hash == EMPTY_ROOT or new_nodes or self.nodes_read > 0
        return TreeUpdate(root_hash, new_nodes, self.nodes_read)


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
