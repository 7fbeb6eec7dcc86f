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
  block's state changes), and names the nodes it made stale (for pruning).

`apply(k changes)` visits each touched path once, in path order, and reads and
writes O(k * log n) nodes; it decides the new shape first, then checks the
nodes it read and hashes the new ones in batch calls (one per tree level).
`build_tree(entries)` builds the same tree as `apply` on an empty tree,
bottom-up, for large states. `prove` / `verify_proof` give inclusion and
non-inclusion proofs against a root.
"""

from __future__ import annotations

from .build import build_tree
from .nodes import (
    EMPTY_ROOT,
    KIND_INTERNAL,
    KIND_LEAF,
    NODE_BYTES,
    PROOF_SIBLINGS_MAX,
    STATE_LEAF_KEY,
    STATE_NODE_KEY,
    STATE_PATH_KEY,
    STATE_VALUE_KEY,
    InternalNode,
    LeafNode,
    MemoryNodeStore,
    Node,
    NodeReader,
    decode_node,
    internal_hash,
    key_path,
    leaf_hash,
    value_hash,
)
from .proofs import Proof, decode_proof, verify_proof
from .tree import StateTree, TreeUpdate

__all__ = [
    "EMPTY_ROOT", "KIND_INTERNAL", "KIND_LEAF", "NODE_BYTES", "PROOF_SIBLINGS_MAX",
    "STATE_LEAF_KEY", "STATE_NODE_KEY", "STATE_PATH_KEY", "STATE_VALUE_KEY",
    "InternalNode", "LeafNode", "MemoryNodeStore", "Node", "NodeReader", "Proof",
    "StateTree", "TreeUpdate", "build_tree", "decode_node", "decode_proof", "internal_hash",
    "key_path", "leaf_hash", "value_hash", "verify_proof",
]
