"""The state tree at one root: walk, prove, and `apply` a block's changes (batch-hashed)."""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from ...constants import (
    HASH_BYTES,
    STATE_CHANGES_MAX,
    STATE_NODE_VERSION,
    STATE_PATH_BITS,
)
from ...errors import DecodeError, InvalidInput, StorageError
from ...kernels import tree_kernel
from .nodes import (
    _EMPTY_PAIR,
    _INTERNAL_TAG,
    _KIND_EMPTY,
    _KIND_UNKNOWN,
    _LEAF_TAG,
    EMPTY_ROOT,
    KIND_INTERNAL,
    KIND_LEAF,
    NODE_BYTES,
    PROOF_SIBLINGS_MAX,
    STATE_LEAF_KEY,
    STATE_NODE_KEY,
    LeafNode,
    NodeReader,
    _bit,
    _corrupt,
    _hash_bodies,
    _load,
    _parse_node,
    _path_int,
    _prefix,
    _sorted_changes,
    _split_hashes,
    key_path,
)
from .proofs import Proof

# --- the tree -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    """The result of `StateTree.apply` or `build_tree`: the new root and the nodes to persist.

    `new_nodes` maps node hash -> encoding; every one is reachable from
    `root`, and every node reachable from `root` is either here or already in
    the store. `apply` lists them in post order along ascending paths,
    `build_tree` lists the leaves first, then the internal nodes level by
    level from the deepest. `nodes_read` counts the store reads made.

    `stale_nodes` (from `apply`) are the stored nodes the old root reached and
    the new root does not: exactly the nodes of the old tree minus those of
    the new one, in the order they were read. A node the store may prune once
    no retained root needs the old tree (docs/state-root.md section 4).
    """

    root: bytes
    new_nodes: dict[bytes, bytes]
    nodes_read: int
    stale_nodes: tuple[bytes, ...] = ()


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
        return _apply_batch(self._reader, self._root, batch, _APPLY)


def _apply_batch(
    reader: NodeReader,
    root: bytes,
    batch: list[tuple[int, bytes, bytes | None]],
    start: Callable[[NodeReader, list[tuple[int, bytes, bytes | None]]], _BatchRun],
) -> TreeUpdate:
    """`batch` (from `_sorted_changes`, not empty) applied to the tree at `root`.

    `start` makes the run: `_Apply` (the reference) or `_native_apply`.
    """
    run = start(reader, batch)
    try:
        new_root, _ = run.update(root, 0, 0, len(batch))
    except StorageError:
        run.check_reads()  # a node that does not hash to its key is the fault to report
        raise
    return run.finish(new_root)


# A subtree during `apply`: its hash when known (unchanged, Empty, or a stored
# node), else the index of its new root node, hashed at the end.
_Ref = bytes | int


class _BatchRun(Protocol):
    """One batch update in progress: `_Apply`, or the kernel's `Apply` (ext/_tree.pyx)."""

    nodes_read: int

    def update(self, node_hash: bytes, depth: int, lo: int, hi: int) -> tuple[_Ref, int]:
        """Apply changes[lo:hi] to the stored subtree `node_hash` at `depth`."""
        ...

    def check_reads(self) -> None:
        """StorageError unless every node read so far hashes to the hash it was read under."""
        ...

    def finish(self, root: _Ref) -> TreeUpdate:
        """Check the reads, hash the new nodes, and return the update."""
        ...


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
        return TreeUpdate(root_hash, new_nodes, self.nodes_read, self._stale(root_hash, new_nodes))

    def _stale(self, root_hash: bytes, new_nodes: Mapping[bytes, bytes]) -> tuple[bytes, ...]:
        """The nodes read that the new tree no longer holds.

        Every node of the old tree that the new tree lost was read (a walk
        reads each node on a changed path, from the root down). A node read
        stays in the new tree only as its root, as a child of a new internal
        node (an untouched sibling, a leaf that moved up), as a child of a
        read node that stays (a change that set a value to what it was), or
        made again (`new_nodes`): a stored node's old parent was read before
        it, so no unread parent can hold it. Each hash has one place in a
        tree (a leaf holds its full path), so nothing else can keep it.
        """
        kept = {root_hash}
        first, second = self._first, self._second
        for level in self._levels:
            for index in level:
                left, right = first[index], second[index]
                if left.__class__ is bytes:
                    kept.add(left)
                if right.__class__ is bytes:
                    kept.add(right)
        # Internal nodes were read parents first: one pass carries "kept" down.
        internal_read = zip(self._read_hashes[KIND_INTERNAL], self._read_fields[KIND_INTERNAL],
                            strict=True)
        for node_hash, fields in internal_read:
            if node_hash in kept:
                kept.add(fields[:HASH_BYTES])
                kept.add(fields[HASH_BYTES:])
        stale: dict[bytes, None] = {}
        for hashes in self._read_hashes:
            for node_hash in hashes:
                if node_hash not in kept and node_hash not in new_nodes:
                    stale[node_hash] = None
        return tuple(stale)




def _native_apply(reader: NodeReader, changes: list[tuple[int, bytes, bytes | None]]) -> _BatchRun:
    """The kernel's run (ext/_tree.pyx): `_Apply`'s results and errors, in C."""
    assert tree_kernel is not None
    run: _BatchRun = tree_kernel.Apply(reader, changes, TreeUpdate, _corrupt, _parse_node)
    return run


# The batch update `StateTree.apply` runs: the kernel when built (and not
# CHAINMALL_PURE=1, see core/kernels.py), else the reference `_Apply`.
_APPLY: Callable[[NodeReader, list[tuple[int, bytes, bytes | None]]], _BatchRun] = (
    _native_apply if tree_kernel is not None else _Apply
)
