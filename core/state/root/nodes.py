"""State tree nodes: domain keys, node hashing and codec, node readers, batch hashing."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from ... import accel
from ...constants import (
    HASH_BYTES,
    STATE_KEY_BYTES_MAX,
    STATE_LEAF_CONTEXT,
    STATE_NODE_CONTEXT,
    STATE_NODE_VERSION,
    STATE_PATH_BITS,
    STATE_PATH_CONTEXT,
    STATE_VALUE_BYTES_MAX,
    STATE_VALUE_CONTEXT,
)
from ...errors import DecodeError, InvalidInput, StorageError
from ...hashing import digest, domain_key

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
    """Where the tree reads nodes: node hash -> encoding, None if absent.

    A reader may also have `get_nodes(hashes: list[bytes]) -> list`, the
    encodings of many nodes (None for each absent one) in one call: the native
    update (ext/_tree.pyx) then fetches the touched paths a level per call.
    """

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

    def get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
        """`get_node` of each hash, in one call (see NodeReader)."""
        return list(map(self._nodes.get, node_hashes))

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


