"""State proofs: the Proof type, its codec, and `verify_proof` against a root."""

from __future__ import annotations

from dataclasses import dataclass

from ...constants import (
    HASH_BYTES,
    STATE_KEY_BYTES_MAX,
    STATE_PROOF_VERSION,
    STATE_VALUE_BYTES_MAX,
)
from ...encoding import Reader, Writer
from ...errors import DecodeError
from ...hashing import digest
from .nodes import (
    EMPTY_ROOT,
    PROOF_SIBLINGS_MAX,
    STATE_NODE_KEY,
    STATE_PATH_KEY,
    STATE_VALUE_KEY,
    LeafNode,
    _bit,
    _prefix,
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


