"""The ledger store: one LMDB environment per data directory, one write txn per block.

Normative layout in docs/state.md. Named databases (all keys sort for range
scans: heights are u64 big-endian, state keys are table id || id):

    meta         b"chain_id", b"genesis_hash", b"last_height" (u64),
                 b"last_app_hash", b"last_block_hash", b"format_version" (u32),
                 b"protocol_version" (u32; absent in ledgers of protocol version 1)
    blocks       height u64 -> canonical block bytes
    block_index  block hash -> height u64
    tx_index     tx id -> height u64 || index u32
    receipts     height u64 -> receipts bytes (core/state/receipts.py)
    roots        height u64 -> state root (32 bytes)
    accounts, fee_pool, ...
                 state key -> value, one database per state table (STATE_TABLES:
                 a key's first byte is its table id, so a table is also a key range)
    tree         state tree node hash -> node bytes || u64 height that wrote it
    tx_index_recent_0 .. tx_index_recent_f, tx_index_mid,
    tree_recent_0 .. tree_recent_f, tree_mid
                 the same entries, staged in two levels (the recent one a database
                 per key slice, named by the slice's hex digit): see "Staged tables"
    tree_stale   nibble u8 || height u64 || node hash -> b"": the tree nodes that
                 block made stale (only while pruning: see "Pruning")

Staged tables: tx ids and node hashes are random keys, and each block adds
~10^4 of them. Inserted straight into a large B-tree, nearly every insert
dirties another leaf page, so a block's commit writes (and fsyncs) a number
of pages that grows with the chain. So each block writes them into a small
recent level, and every block's transaction moves one share on, in key
order: the recent level's slice `height mod 16` (the keys whose first 4 bits
are that number: one database, `<table>_recent_<hex digit>`) into the middle
level `<table>_mid`, emptying that database whole (`drop`, no per-entry
deletes: store format 4), then the middle level's slice `height mod 256` (a
key's first byte: a key range) into the main table. An entry thus
waits at most 16 blocks in the recent level and 256 in the middle one, and
each commit moves about one block's worth of entries per level into one key
range of the next level, whatever the chain's length: no commit carries a
whole merge (the node's p99, issue 12). Reads look in all three levels,
newest first.

Pruning (`retain_heights` > 0): `StateTree.apply` names the nodes a block
made stale; the commit records them in `tree_stale` under the node hash's
first 4 bits, then the height. Before a block moves the middle level's slice
b (first byte) to the main table, it takes the records of the nodes whose
hash starts with b at heights <= tip - retain_heights (one run per height
inside the nibble's range) and deletes each node from every level, unless it
was written again after it became stale (its newest stamp, read newest level
first, is higher: a value that came back re-created the same node), then
forgets the records. So the trees of the last `retain_heights` heights stay
whole. `meta`'s `pruned_height` is the highest height pruned up to: every
tree at that height or above is whole (what `db check` holds older trees to
is less).

Crash safety: `init_genesis` and `commit_block` each write everything in ONE
LMDB write transaction, opened with `sync=True`, so after a crash the store
holds either all of a block or none of it. Readers (`with store.reader() as
view`) are MVCC snapshots and never block the writer. When the map is full,
the write txn is aborted, the map size doubled (`env.set_mapsize`) and the
whole transaction retried, up to `MAP_SIZE_BYTES_MAX`. Growing closes the
read snapshots this process holds open: their next read raises StorageError
(open a new reader); the 1 GiB default makes growth rare.

Read-only opens (`readonly=True`) write nothing: LMDB opens `data.mdb`
read-only, and with `lmdb_lock=False` it does not touch `lock.mdb` either
(no reader slot is registered there), which is only safe while no writer
runs: core/datadir.py decides. Damage is reported, never crashed into: the
file's size is checked against its LMDB header before LMDB maps it (a page
past the end of a truncated file is SIGBUS), and LMDB's corruption errors
are StoreCorrupt. A write that fails for space is DiskFull naming the path;
writers pre-allocate `lock.mdb` so that LMDB never stores into a hole of
its mapped lock file on a full disk (that, too, is SIGBUS).
"""

from __future__ import annotations

import os
import struct
from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from itertools import chain, compress, islice, repeat, starmap, takewhile
from operator import add, is_, is_not, lt
from pathlib import Path

import lmdb

from .constants import (
    HASH_BYTES,
    MAP_SIZE_BYTES_DEFAULT,
    MAP_SIZE_BYTES_MAX,
    PROTOCOL_VERSION,
    STATE_TABLES,
    STORE_DBS_MAX,
    STORE_FLUSH_SLICES,
    STORE_FORMAT_VERSION,
    STORE_MID_SLICES,
    STORE_NODE_ORDER_CALLS_MAX,
    STORE_READERS_MAX,
    U32_MAX,
    U64_MAX,
)
from .diskio import disk_full
from .errors import (
    InvalidInput,
    StorageError,
    StoreAlreadyInitialised,
    StoreChainMismatch,
    StoreConflict,
    StoreCorrupt,
    StoreFormatOutdated,
    StoreNotInitialised,
)
from .kernels import tree_kernel
from .ledger_file import read_ledger_header

TX_LOCATION_BYTES = 8 + 4
DATA_FILE = "data.mdb"  # LMDB's names inside the ledger directory
LMDB_LOCK_FILE = "lock.mdb"
# LMDB's lock file for STORE_READERS_MAX readers: two 64-byte header lines and one
# 64-byte line per reader slot (liblmdb MDB_txninfo, MDB_reader).
_LOCK_FILE_BYTES = 64 * (STORE_READERS_MAX + 2)
# LMDB errors that mean the file's pages are not what LMDB wrote.
_CORRUPTION = (lmdb.CorruptedError, lmdb.PageNotFoundError, lmdb.InvalidError,
               lmdb.BadTxnError, lmdb.PanicError)

# Main table -> its staging levels, newest first (see "Staged tables"): the recent level
# is one database per slice (a key's first 4 bits), the middle level one database.
_LEVELS = {table: (tuple(f"{table}_recent_{n:x}" for n in range(STORE_FLUSH_SLICES)),
                   f"{table}_mid") for table in ("tx_index", "tree")}
STALE_DB = "tree_stale"
# The tree's levels in the two orders `StoreView.get_nodes` reads them (None: the recent
# slices), chosen per call by `NodeLevelOrder`.
_NODE_LEVELS_NEWEST_FIRST = (None, _LEVELS["tree"][1], "tree")
_NODE_LEVELS_MAIN_FIRST = ("tree", _LEVELS["tree"][1], None)
NODE_STAMP_BYTES = 8  # a stored node ends with the u64 height that wrote it
_NIBBLES = tuple(bytes([n]) for n in range(STORE_FLUSH_SLICES))  # a stale record's first byte
_DB_NAMES = ("meta", "blocks", "block_index", "tx_index", "receipts", "roots", "tree",
             *(name for recent, mid in _LEVELS.values() for name in (*recent, mid)), STALE_DB,
             *STATE_TABLES.values())
_STATE_DB_NAMES = tuple(STATE_TABLES[table] for table in sorted(STATE_TABLES))  # key order

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")
_LOCATION = struct.Struct(">QI")

META_CHAIN_ID = b"chain_id"
META_GENESIS_HASH = b"genesis_hash"
META_LAST_HEIGHT = b"last_height"
META_LAST_APP_HASH = b"last_app_hash"
META_LAST_BLOCK_HASH = b"last_block_hash"
META_FORMAT_VERSION = b"format_version"
META_PROTOCOL_VERSION = b"protocol_version"
# The highest height up to which stale nodes were pruned (absent: none): every state
# tree at this height or above is whole ("Pruning").
META_PRUNED_HEIGHT = b"pruned_height"


def height_key(height: int) -> bytes:
    """A height as a database key: u64 big-endian, so keys sort by height."""
    if type(height) is not int or not 0 <= height <= U64_MAX:
        raise ValueError(f"height must be a u64, got {height!r}")
    return _U64.pack(height)


def state_table(key: bytes) -> str:
    """The database of a state key: the table its first byte names (InvalidInput if none)."""
    name = STATE_TABLES.get(key[0]) if key else None
    if name is None:
        raise InvalidInput(f"state key {key.hex()!r} names no state table")
    return name


@dataclass(frozen=True, slots=True)
class ChainTip:
    """What `meta` says about the last committed block (height 0: genesis)."""

    chain_id: str
    genesis_hash: bytes
    height: int
    app_hash: bytes
    block_hash: bytes  # the genesis hash at height 0


@dataclass(frozen=True, slots=True)
class BlockCommit:
    """Everything one block writes, applied by `Store.commit_block` in one txn.

    `parent_app_hash` is the app hash the block was executed on: the commit is
    refused (StoreConflict) unless it is still the stored tip's.
    """

    height: int
    block_hash: bytes
    block_bytes: bytes
    tx_ids: Sequence[bytes]
    receipts_bytes: bytes
    parent_app_hash: bytes
    app_hash: bytes
    state_changes: Mapping[bytes, bytes | None]
    new_nodes: Mapping[bytes, bytes]
    stale_nodes: Sequence[bytes] = ()
    # The tx ids' key order (`hash_order(b"".join(tx_ids))`) when the caller has it (the
    # block's checks make it off the committing thread): used when it is a permutation that
    # sorts the ids strictly, else (or None) the commit makes the order itself.
    tx_order: Sequence[int] | None = None


class NodeLevelOrder:
    """Which end of the tree's staged levels `StoreView.get_nodes` reads first.

    Tree nodes are content-addressed: every level's copy of a node is the same node, so
    the order of the lookups changes only their cost, never an answer. Upper tree nodes
    change every block and sit in the recent and middle levels; the nodes near the leaves
    of a large, cold state (many accounts, each touched rarely) sit only in the main
    table, where asking the newer levels first is a miss per node. The tree asks a
    snapshot for its nodes a depth at a time, so the order is kept per call ordinal of a
    snapshot: each call starts at the end that held most nodes at that ordinal last time.
    """

    __slots__ = ("_main_first",)

    def __init__(self) -> None:
        self._main_first: list[bool] = []

    def main_first(self, call: int) -> bool:
        """Whether a snapshot's call number `call` should read the main table first."""
        return call < len(self._main_first) and self._main_first[call]

    def observe(self, call: int, found_in_main: int, found: int) -> None:
        """Record where call number `call`'s nodes were found."""
        if not found:
            return
        hints = self._main_first
        if call >= len(hints):
            if call > STORE_NODE_ORDER_CALLS_MAX:
                return
            hints.extend([False] * (call + 1 - len(hints)))
        hints[call] = 2 * found_in_main > found


class StoreView:
    """A read snapshot of the store (a NodeReader too); valid inside `store.reader()`."""

    __slots__ = ("_dbs", "_node_calls", "_node_order", "_path", "_txn")

    def __init__(self, txn: lmdb.Transaction, dbs: Mapping[str, object], path: Path,
                 node_order: NodeLevelOrder | None = None) -> None:
        self._txn = txn
        self._dbs = dbs
        self._path = path
        self._node_order = node_order if node_order is not None else NodeLevelOrder()
        self._node_calls = 0  # get_nodes calls so far on this snapshot

    def _get(self, db: str, key: bytes) -> bytes | None:
        try:
            return self._txn.get(key, db=self._dbs[db])
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc

    def get_state(self, key: bytes) -> bytes | None:
        """The committed value of a state key, None if absent."""
        return self._get(state_table(key), key)

    def get_states(self, keys: Sequence[bytes]) -> list[bytes | None]:
        """`get_state` of each key, in one call (InvalidInput for a key naming no table)."""
        if not keys:
            return []
        dbs, get = self._dbs, self._txn.get
        first = keys[0][:1]
        try:
            if first and all(map(bytes.startswith, keys, repeat(first))):  # one table: C loop
                return list(map(partial(get, db=dbs[state_table(first)]), keys))
            return [get(key, db=dbs[state_table(key)]) for key in keys]
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc

    def _get_leveled(self, table: str, key: bytes) -> bytes | None:
        """`key`'s value in a staged table: its newest level that has it."""
        dbs, txn = self._dbs, self._txn
        recent, mid = _LEVELS[table]
        try:
            value = txn.get(key, db=dbs[recent[key[0] >> 4]]) if key else None
            if value is None:
                value = txn.get(key, db=dbs[mid])
                if value is None:
                    value = txn.get(key, db=dbs[table])
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc
        return value

    def get_node(self, node_hash: bytes) -> bytes | None:
        """A state tree node by hash (NodeReader)."""
        value = self._get_leveled("tree", node_hash)
        return None if value is None else value[:-NODE_STAMP_BYTES]

    def get_nodes(self, node_hashes: list[bytes]) -> list[bytes | None]:
        """`get_node` of each hash (NodeReader.get_nodes): one `getmulti` per level (per
        recent slice asked for), newest level first or the main table first, whichever
        held most of the last call's nodes (`NodeLevelOrder`: a node is the same in every
        level, so the order is only a cost)."""
        found: dict[bytes, bytes] = {}
        order, call = self._node_order, self._node_calls
        self._node_calls = call + 1
        ordered = sorted(node_hashes)  # in key order, each slice's hashes are one run
        ordered = ordered[bisect_right(ordered, b""):]  # an empty hash names no node
        levels = _NODE_LEVELS_MAIN_FIRST if order.main_first(call) else _NODE_LEVELS_NEWEST_FIRST
        in_main = self._read_node_levels(ordered, levels, found)
        order.observe(call, in_main, len(found))
        get = found.get
        return [None if (value := get(h)) is None else value[:-NODE_STAMP_BYTES]
                for h in node_hashes]

    def _read_node_levels(self, wanted: list[bytes], levels: Sequence[str | None],
                          found: dict[bytes, bytes]) -> int:
        """Look the sorted hashes `wanted` up in the tree's `levels`, in that order (a
        database name, or None: the recent slices, one `getmulti` per slice asked for):
        each level is asked once, for the hashes the ones before did not hold, and not
        at all once none is left. Adds the finds to `found`; returns how many the main
        table held."""
        dbs, txn = self._dbs, self._txn
        recent = _LEVELS["tree"][0]
        in_main = 0
        try:
            for level in levels:
                if not wanted:
                    break
                before = len(found)
                if level is None:
                    for nibble, low, high in _nibble_runs(wanted):
                        found.update(txn.cursor(db=dbs[recent[nibble]]).getmulti(
                            wanted[low:high]))
                else:
                    found.update(txn.cursor(db=dbs[level]).getmulti(wanted))
                    if level == "tree":
                        in_main = len(found) - before
                if len(found) != before:
                    wanted = [node_hash for node_hash in wanted if node_hash not in found]
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc
        return in_main

    def block(self, height: int) -> bytes | None:
        """The canonical bytes of the block at `height`, None if not stored."""
        return self._get("blocks", height_key(height))

    def height_of(self, block_hash: bytes) -> int | None:
        """The height of a stored block hash, None if unknown."""
        raw = self._get("block_index", block_hash)
        return None if raw is None else _U64.unpack(raw)[0]

    def tx_location(self, tx_id: bytes) -> tuple[int, int] | None:
        """(height, index in block) of a committed tx id, None if unknown."""
        raw = self._get_leveled("tx_index", tx_id)
        if raw is None:
            return None
        if len(raw) != TX_LOCATION_BYTES:
            raise StoreCorrupt(f"tx index entry for {tx_id.hex()} is {len(raw)} bytes")
        height, index = _LOCATION.unpack(raw)
        return height, index

    def receipts(self, height: int) -> bytes | None:
        """The receipts bytes of the block at `height`, None if not stored."""
        return self._get("receipts", height_key(height))

    def root(self, height: int) -> bytes | None:
        """The state root after `height` (0: genesis), None if not stored."""
        return self._get("roots", height_key(height))

    def state_items(self, prefix: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Committed state entries whose key starts with `prefix`, in key order."""
        names = (state_table(prefix),) if prefix else _STATE_DB_NAMES
        try:
            for name in names:
                with self._txn.cursor(db=self._dbs[name]) as cursor:
                    if not cursor.set_range(prefix):
                        continue
                    for key, value in cursor:
                        if not key.startswith(prefix):
                            break
                        yield key, value
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc

    def state_range(self, start: bytes, end: bytes) -> Iterator[tuple[bytes, bytes]]:
        """Committed state entries with start <= key < end (one table), in key order."""
        try:
            with self._txn.cursor(db=self._dbs[state_table(start)]) as cursor:
                if not cursor.set_range(start):
                    return
                for key, value in cursor:
                    if key >= end:
                        break
                    yield key, value
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc

    def node_hashes(self) -> Iterator[bytes]:
        """Every stored tree node hash: the main table's, then each staging level's, each
        in key order (a hash re-put between two merges is in several, and comes again)."""
        try:
            recent, mid = _LEVELS["tree"]
            for name in ("tree", *recent, mid):
                with self._txn.cursor(db=self._dbs[name]) as cursor:
                    yield from cursor.iternext(keys=True, values=False)
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc

    def stale_node_hashes(self) -> Iterator[bytes]:
        """The tree nodes recorded stale and not pruned yet (pruning only), in record order."""
        try:
            with self._txn.cursor(db=self._dbs[STALE_DB]) as cursor:
                for key in cursor.iternext(keys=True, values=False):
                    yield key[9:]
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc

    def pruned_height(self) -> int:
        """The height up to which stale tree nodes were pruned (0: none): the state trees
        of this height and above are whole, older ones may miss pruned nodes."""
        raw = self._get("meta", META_PRUNED_HEIGHT)
        return 0 if raw is None else _U64.unpack(raw)[0]

    def entry_counts(self) -> dict[str, int]:
        """How many entries each table holds (a staged table: with its staging part)."""
        try:
            counts = {name: self._txn.stat(db)["entries"] for name, db in self._dbs.items()}
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc
        for table, (recent, mid) in _LEVELS.items():
            for level in (*recent, mid):
                counts[table] += counts.pop(level)
        counts["state"] = sum(counts.pop(name) for name in _STATE_DB_NAMES)
        return counts

    def last(self) -> ChainTip:
        """The chain tip from `meta`; StoreNotInitialised if there is no chain."""
        try:
            return _read_tip(self._txn, self._dbs["meta"])
        except lmdb.Error as exc:
            raise read_error(exc, self._path) from exc


def read_error(exc: lmdb.Error, path: Path) -> StorageError:
    """The StorageError for a failed read of the store at `path`.

    LMDB's corruption errors are StoreCorrupt; py-lmdb's plain `Error` on a
    closed transaction is the one a map growth causes (it closes this
    process's open snapshots); anything else keeps LMDB's words.
    """
    if isinstance(exc, _CORRUPTION):
        return StoreCorrupt(f"the ledger file in {path} is corrupted ({exc})")
    if type(exc) is lmdb.Error and "closed" in str(exc):
        return StorageError(f"read snapshot is no longer valid (the map grew), open a new "
                            f"reader: {exc}")
    return StorageError(f"cannot read the store at {path}: {exc}")


def write_error(exc: lmdb.Error, path: Path) -> StorageError:
    """The StorageError for a failed write: DiskFull, StoreCorrupt, or LMDB's words."""
    full = disk_full(exc, path / DATA_FILE)
    if full is not None:
        return full
    if isinstance(exc, _CORRUPTION):
        return StoreCorrupt(f"the ledger file in {path} is corrupted ({exc})")
    return StorageError(f"store write failed at {path}: {exc}")


def _reserve_lock_file(path: Path) -> None:
    """Allocate every block of LMDB's lock file, so its mapped pages are never holes.

    LMDB creates `lock.mdb` sparse and stores into it through a shared map; on
    a full disk, the first store into a hole is SIGBUS. `posix_fallocate`
    fails cleanly with ENOSPC instead, and keeps the existing contents.
    """
    lock_path = path / LMDB_LOCK_FILE
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        size = os.fstat(fd).st_size
        os.posix_fallocate(fd, 0, max(size, _LOCK_FILE_BYTES))
    except OSError as exc:
        raise disk_full(exc, lock_path) or StorageError(
            f"cannot prepare the store's lock file {lock_path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _read_tip(txn: lmdb.Transaction, meta: object) -> ChainTip:
    fields = {
        key: txn.get(key, db=meta)
        for key in (META_CHAIN_ID, META_GENESIS_HASH, META_LAST_HEIGHT, META_LAST_APP_HASH,
                    META_LAST_BLOCK_HASH, META_FORMAT_VERSION)
    }
    if all(value is None for value in fields.values()):
        raise StoreNotInitialised("the ledger holds no chain (its meta table is empty)")
    missing = [key.decode() for key, value in fields.items() if value is None]
    if missing:
        raise StoreCorrupt(f"meta is missing {', '.join(missing)}")
    version = _U32.unpack(fields[META_FORMAT_VERSION])[0]
    if version != STORE_FORMAT_VERSION:
        raise StoreCorrupt(f"store format version {version}, this build reads "
                           f"{STORE_FORMAT_VERSION}")
    _check_protocol_version(txn.get(META_PROTOCOL_VERSION, db=meta))
    tip = ChainTip(
        fields[META_CHAIN_ID].decode("ascii"),
        fields[META_GENESIS_HASH],
        _U64.unpack(fields[META_LAST_HEIGHT])[0],
        fields[META_LAST_APP_HASH],
        fields[META_LAST_BLOCK_HASH],
    )
    if len(tip.app_hash) != HASH_BYTES or len(tip.block_hash) != HASH_BYTES:
        raise StoreCorrupt("meta holds an app hash or block hash that is not 32 bytes")
    return tip


def _check_protocol_version(stored: bytes | None) -> None:
    """Refuse a ledger made under other rules (docs/verification.md, PROTOCOL_VERSION)."""
    if stored is not None and len(stored) != _U32.size:
        raise StoreCorrupt("meta holds a protocol version that is not a u32")
    made_under = 1 if stored is None else _U32.unpack(stored)[0]  # v1 ledgers recorded none
    if made_under != PROTOCOL_VERSION:
        raise StoreChainMismatch(
            f"this ledger was made under protocol version {made_under} and this build runs "
            f"protocol version {PROTOCOL_VERSION} (Ed25519 under ZIP 215): it cannot continue "
            f"it; start a new ledger with `chainmall init`")


class Store:
    """One LMDB environment over a data directory: the ledger's only durable state.

    `readonly=True` opens an existing ledger for reading only (writes raise
    StorageError); `lmdb_lock=False` (read-only only) also leaves LMDB's lock
    file alone: only safe while no process writes the ledger. `create=False`
    refuses a directory without a ledger file. `on_close` runs after the
    environment is closed (it releases a data directory's lock). A ledger of
    an older store format is StoreFormatOutdated, unless `migrate_format`
    (writable only) upgrades it (format 3 -> 4, one write transaction).
    `follow_map=True` (read-only, used by one thread: the node's reader
    processes) follows another process's map growth: a snapshot that finds
    the data grown past this process's map (MDB_MAP_RESIZED) takes the new
    size and opens again.
    """

    def __init__(self, path: str | os.PathLike[str],
                 map_size_bytes: int = MAP_SIZE_BYTES_DEFAULT, *, readonly: bool = False,
                 lmdb_lock: bool = True, create: bool = True,
                 on_close: Callable[[], None] | None = None, retain_heights: int = 0,
                 migrate_format: bool = False, follow_map: bool = False) -> None:
        if not 0 < map_size_bytes <= MAP_SIZE_BYTES_MAX:
            raise ValueError(f"map size must be in (0, {MAP_SIZE_BYTES_MAX}], got {map_size_bytes}")
        if not (lmdb_lock or readonly):
            raise ValueError("only a read-only store may open without LMDB's lock")
        if follow_map and not readonly:
            raise ValueError("only a read-only store follows another process's map growth")
        # Read-only, one thread: take the map size the writing process grew the map to.
        self._follow_map = follow_map
        if type(retain_heights) is not int or not 0 <= retain_heights <= U32_MAX:
            raise ValueError(f"retain_heights must be in [0, {U32_MAX}], got {retain_heights!r}")
        # Pruning: keep the state trees of the last `retain_heights` heights (0: all of them).
        self.retain_heights = retain_heights
        self.pruned_nodes = 0  # tree nodes this Store deleted (for tests and benchmarks)
        self.path = Path(path)
        self.readonly = readonly
        data_file = self.path / DATA_FILE
        if data_file.exists():
            read_ledger_header(data_file)  # before LMDB maps it: a truncated file is SIGBUS
        elif readonly or not create:
            raise StoreNotInitialised(f"{self.path} holds no ledger file ({DATA_FILE})")
        try:
            if not readonly:
                if create:
                    self.path.mkdir(parents=True, exist_ok=True)
                _reserve_lock_file(self.path)
            self._env = lmdb.open(str(self.path), map_size=map_size_bytes,
                                  max_dbs=STORE_DBS_MAX, max_readers=STORE_READERS_MAX,
                                  subdir=True, sync=True, readonly=readonly, lock=lmdb_lock,
                                  create=False)
        except lmdb.Error as exc:
            raise (write_error(exc, self.path) if not readonly else read_error(exc, self.path)
                   ) from exc
        except OSError as exc:
            raise disk_full(exc, self.path) or StorageError(
                f"cannot open the store at {self.path}: {exc.strerror}") from exc
        self._on_close = on_close
        self._map_size_bytes = self._env.info()["map_size"]
        self.grow_count = 0  # map growths so far (for tests and the doctor)
        self._node_order = NodeLevelOrder()  # get_nodes' level order, shared by readers
        self._failpoint: Callable[[str], None] = _env_failpoint
        self.migrated_from: int | None = None  # the format `migrate_format` upgraded, if any
        try:
            self._check_format(migrate_format)
            self._dbs = self._open_dbs()
        except BaseException:
            self.close()
            raise

    def _check_format(self, migrate: bool) -> None:
        """Refuse a ledger of another store format before anything is opened or created:
        StoreFormatOutdated for an older one, or with `migrate`, upgrade format 3 in one
        write transaction (`_migrate_from_3`); StoreCorrupt for a newer one."""
        try:
            try:
                meta = self._env.open_db(b"meta", create=False)
            except lmdb.NotFoundError:
                return  # a new ledger, or one without tables (reported by _open_dbs)
            with self._env.begin() as txn:
                raw = txn.get(META_FORMAT_VERSION, db=meta)
        except lmdb.Error as exc:
            raise (write_error(exc, self.path) if not self.readonly
                   else read_error(exc, self.path)) from exc
        if raw is None:
            return  # no chain yet (init_genesis writes the version), or damage: _read_tip
        if len(raw) != _U32.size:
            raise StoreCorrupt("meta holds a format version that is not a u32")
        stored = _U32.unpack(raw)[0]
        if stored == STORE_FORMAT_VERSION:
            return
        if stored > STORE_FORMAT_VERSION:
            raise StoreCorrupt(f"store format version {stored}, this build reads "
                               f"{STORE_FORMAT_VERSION} (a newer chainmall wrote it)")
        if stored != 3:
            raise StoreFormatOutdated(
                f"the ledger in {self.path} is in store format {stored}, this build reads "
                f"format {STORE_FORMAT_VERSION} and cannot upgrade it: start a new ledger "
                f"(`chainmall init`, or `db import` of an export made by the build that wrote it)")
        if not migrate:
            raise StoreFormatOutdated(
                f"the ledger in {self.path} is in store format 3, this build reads format "
                f"{STORE_FORMAT_VERSION}: upgrade it once with `chainmall db migrate` "
                f"(one transaction; builds before it cannot read it afterwards)")
        self._write(self._migrate_from_3)
        self.migrated_from = stored

    def _migrate_from_3(self, txn: lmdb.Transaction) -> None:
        """Format 3 -> 4: each staged table's one recent database becomes one database per
        slice (its entries moved by their first 4 bits), then the version; all in `txn`."""
        env = self._env
        for table, (recent, _) in _LEVELS.items():
            old = env.open_db(f"{table}_recent".encode(), txn=txn, create=False)
            entries = list(txn.cursor(old).iternext())  # at most 16 blocks' worth
            keys = [entry[0] for entry in entries]
            for nibble, low, high in _nibble_runs(keys):
                slice_db = env.open_db(recent[nibble].encode(), txn=txn)
                txn.cursor(slice_db).putmulti(entries[low:high])
            txn.drop(old, delete=True)
        self._failpoint("store.migrate.before_meta")
        meta = env.open_db(b"meta", txn=txn, create=False)
        txn.put(META_FORMAT_VERSION, _U32.pack(STORE_FORMAT_VERSION), db=meta)

    def _open_dbs(self) -> dict[str, object]:
        """Every named database; read-only, they must all exist (StoreNotInitialised if none)."""
        try:
            if not self.readonly:  # one write txn (one sync) creates any missing ones
                with self._env.begin(write=True) as txn:
                    return {name: self._env.open_db(name.encode(), txn=txn) for name in _DB_NAMES}
            with self._env.begin() as txn:
                present = {key.decode("ascii", "replace") for key, _ in txn.cursor()}
            missing = [name for name in _DB_NAMES if name not in present]
            if len(missing) == len(_DB_NAMES):
                raise StoreNotInitialised(f"the ledger in {self.path} holds no tables")
            if missing:
                raise StoreCorrupt(f"the ledger in {self.path} lacks the table(s) "
                                   f"{', '.join(missing)}")
            return {name: self._env.open_db(name.encode(), create=False) for name in _DB_NAMES}
        except lmdb.Error as exc:
            raise (write_error(exc, self.path) if not self.readonly
                   else read_error(exc, self.path)) from exc

    # --- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Close the environment, then run `on_close` (idempotent)."""
        self._env.close()
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def map_size_bytes(self) -> int:
        """The current LMDB map size."""
        return self._map_size_bytes

    def adopt_map_size(self, map_size_bytes: int) -> None:
        """Take the map size another process of this store grew the map to (no txn of
        this process may be open: LMDB's rule for `set_mapsize`)."""
        if map_size_bytes > self._map_size_bytes:
            try:
                self._env.set_mapsize(map_size_bytes)
            except lmdb.Error as exc:
                raise StorageError(f"cannot adopt the map size {map_size_bytes}: {exc}") from exc
            self._map_size_bytes = map_size_bytes

    # --- reads -------------------------------------------------------------------

    @contextmanager
    def reader(self) -> Iterator[StoreView]:
        """A read snapshot: `with store.reader() as view:`; never blocks the writer."""
        try:
            txn = self._env.begin(write=False)
        except lmdb.MapResizedError as exc:
            if not self._follow_map:
                raise read_error(exc, self.path) from exc
            txn = self._begin_after_growth()
        except lmdb.Error as exc:
            raise read_error(exc, self.path) from exc
        with txn:
            yield StoreView(txn, self._dbs, self.path, self._node_order)

    def _begin_after_growth(self) -> lmdb.Transaction:
        """Another process grew the map past ours: take its size (LMDB reads it from the
        file; no snapshot of this process is open) and begin the snapshot again."""
        try:
            self._env.set_mapsize(0)
            self._map_size_bytes = self._env.info()["map_size"]
            return self._env.begin(write=False)
        except lmdb.Error as exc:
            raise read_error(exc, self.path) from exc

    def clear_stale_readers(self) -> int:
        """Free LMDB's reader slots of processes that ended with a snapshot open (a
        killed reader process): their slots would keep old pages from reuse. The
        number freed."""
        try:
            return int(self._env.reader_check())
        except lmdb.Error as exc:
            raise read_error(exc, self.path) from exc

    def is_initialised(self) -> bool:
        """Whether this data directory holds a chain."""
        with self.reader() as view:
            return view._get("meta", META_CHAIN_ID) is not None

    def last(self) -> ChainTip:
        """The chain tip (StoreNotInitialised if none)."""
        with self.reader() as view:
            return view.last()

    def check_chain(self, chain_id: str, genesis_hash: bytes) -> ChainTip:
        """The tip, after checking the store holds chain `chain_id` from `genesis_hash`."""
        tip = self.last()
        if tip.chain_id != chain_id:
            raise StoreChainMismatch(
                f"data directory {self.path} holds chain {tip.chain_id!r}, not {chain_id!r}")
        if tip.genesis_hash != genesis_hash:
            raise StoreChainMismatch(
                f"data directory {self.path} holds chain {chain_id!r} from genesis "
                f"{tip.genesis_hash.hex()}, not {genesis_hash.hex()}")
        return tip

    # --- writes ------------------------------------------------------------------

    def _write(self, body: Callable[[lmdb.Transaction], None], grow: bool = True) -> bool:
        """Run `body` in one write txn; on MapFullError abort, double the map, retry. True
        once written; with `grow` False a full map is not grown: the txn is aborted
        (nothing written) and the answer is False."""
        if self.readonly:
            raise StorageError(f"the store at {self.path} is open read-only")
        while True:
            try:
                with self._env.begin(write=True) as txn:
                    body(txn)
                return True
            except lmdb.MapFullError:
                if not grow:
                    return False
                self._grow()
            except lmdb.Error as exc:
                raise write_error(exc, self.path) from exc

    def _grow(self) -> None:
        new_size = self._map_size_bytes * 2
        if new_size > MAP_SIZE_BYTES_MAX:
            raise StorageError(
                f"store map is full at {self._map_size_bytes} bytes and may not grow past "
                f"MAP_SIZE_BYTES_MAX ({MAP_SIZE_BYTES_MAX})")
        try:
            self._env.set_mapsize(new_size)  # closes this process's open read txns
        except lmdb.Error as exc:
            raise StorageError(
                f"store map is full and cannot grow to {new_size} bytes: {exc}") from exc
        self._map_size_bytes = new_size
        self.grow_count += 1

    def init_genesis(self, chain_id: str, genesis_hash: bytes, state: Mapping[bytes, bytes],
                     new_nodes: Mapping[bytes, bytes], app_hash: bytes) -> None:
        """Write the genesis state (height 0) in one txn; StoreAlreadyInitialised if any."""
        assert len(genesis_hash) == HASH_BYTES
        assert len(app_hash) == HASH_BYTES
        dbs = self._dbs

        def body(txn: lmdb.Transaction) -> None:
            if txn.get(META_CHAIN_ID, db=dbs["meta"]) is not None:
                raise StoreAlreadyInitialised(f"data directory {self.path} already holds a chain")
            for key in sorted(state):
                txn.put(key, state[key], db=dbs[state_table(key)])
            stamp = height_key(0)
            for node_hash, node in new_nodes.items():
                txn.put(node_hash, node + stamp, db=dbs["tree"])
            txn.put(height_key(0), app_hash, db=dbs["roots"])
            meta = dbs["meta"]
            txn.put(META_FORMAT_VERSION, _U32.pack(STORE_FORMAT_VERSION), db=meta)
            txn.put(META_PROTOCOL_VERSION, _U32.pack(PROTOCOL_VERSION), db=meta)
            txn.put(META_CHAIN_ID, chain_id.encode("ascii"), db=meta)
            txn.put(META_GENESIS_HASH, genesis_hash, db=meta)
            txn.put(META_LAST_HEIGHT, height_key(0), db=meta)
            txn.put(META_LAST_APP_HASH, app_hash, db=meta)
            txn.put(META_LAST_BLOCK_HASH, genesis_hash, db=meta)

        self._write(body)

    def _merge_step(self, txn: lmdb.Transaction, height: int) -> None:
        """Every block's share of the staged tables' merge ("Staged tables", "Pruning").

        One slice of the recent level (the database of the keys whose first 4
        bits are height mod 16) into `_mid`, emptied whole (no per-entry
        deletes), then (pruning) the stale nodes of one key slice of `_mid`
        (first byte = height mod 256), then that slice of `_mid` into the main
        tables. Each
        block thus moves about one block's worth of entries per level, in key
        order and within one key range, so no commit carries a whole merge.
        """
        dbs = self._dbs
        recent_slice = height % STORE_FLUSH_SLICES
        for table, (recent, mid) in _LEVELS.items():
            # A tx id is indexed once; a node hash names one content, so a re-put only
            # refreshes its stamp (the newer level's copy wins).
            _move_all(txn, dbs[recent[recent_slice]], dbs[mid], overwrite=table == "tree",
                      what=table)
            self._failpoint(f"store.merge.after_{table}")
        mid_slice = height % STORE_MID_SLICES
        if self.retain_heights and height > self.retain_heights:
            last_height = height - self.retain_heights
            self.pruned_nodes += self._prune(txn, mid_slice, last_height)
            pruned = txn.get(META_PRUNED_HEIGHT, db=dbs["meta"])
            if pruned is None or _U64.unpack(pruned)[0] < last_height:
                txn.put(META_PRUNED_HEIGHT, height_key(last_height), db=dbs["meta"])
            self._failpoint("store.prune.after")
        for table, (_, mid) in _LEVELS.items():
            _move_slice(txn, dbs[mid], dbs[table], _slice_bounds(mid_slice, 8),
                        overwrite=table == "tree", what=table)
            self._failpoint(f"store.flush.after_{table}")

    def _prune(self, txn: lmdb.Transaction, first_byte: int, last_height: int) -> int:
        """Delete the nodes whose hash starts with `first_byte` that became stale at heights
        <= `last_height` and were not written again since; forget those records. How many
        were deleted.

        A record's key is nibble || height || hash: the records of one first byte are,
        for each height, one run inside their nibble's range, so the walk jumps from run
        to run (two cursor seeks per height at most) instead of reading the nibble's
        other 15 bytes' records. A node is deleted from every level when its newest
        copy (recent, then middle, then main) is not stamped above the height it
        became stale at.
        """
        dbs = self._dbs
        recent, mid = _LEVELS["tree"]
        levels = (dbs[recent[first_byte >> 4]], dbs[mid], dbs["tree"])
        nibble = bytes([first_byte >> 4])
        wanted = bytes([first_byte])
        limit = height_key(last_height)
        due: list[bytes] = []  # record keys: nibble || height it became stale || hash
        records = txn.cursor(dbs[STALE_DB])
        target = nibble + height_key(0) + wanted
        while records.set_range(target):
            key = records.key()
            if key[:1] != nibble or key[1:9] > limit:
                break
            stale_at = key[1:9]
            if key[9:10] == wanted:
                run = nibble + stale_at + wanted
                for key in records.iternext(values=False):
                    if not key.startswith(run):
                        break
                    due.append(key)
            elif key[9:10] < wanted:
                target = nibble + stale_at + wanted
                continue
            after = _U64.unpack(stale_at)[0] + 1
            if after > U64_MAX:
                break
            target = nibble + _U64.pack(after) + wanted
        # One lookup call per level for all the due nodes, in key order (Cursor.getmulti).
        hashes = sorted({key[9:] for key in due})
        copies = [dict(txn.cursor(level).getmulti(hashes)) for level in levels]
        doomed: set[bytes] = set()
        for key in due:
            node_hash, stale_at = key[9:], key[1:9]
            for found in copies:  # newest level first
                value = found.get(node_hash)
                if value is not None:
                    if value[-NODE_STAMP_BYTES:] <= stale_at:
                        doomed.add(node_hash)
                    break
        for level, found in zip(levels, copies, strict=True):
            cursor = txn.cursor(level)
            for node_hash in sorted(doomed.intersection(found)):
                if cursor.set_key(node_hash):
                    cursor.delete()
        deleted = len(doomed)
        stale = dbs[STALE_DB]
        for key in due:
            txn.delete(key, db=stale)
        return deleted

    def commit_block(self, commit: BlockCommit, *, grow: bool = True) -> bool:
        """Write a block, its indexes, receipts, root, state changes, nodes and meta: ONE txn.

        StoreConflict unless the block extends the stored tip (height and app hash).
        True once written. With `grow` False a full map is not grown (growing closes
        the read snapshots this process holds open, so a writer on another thread
        than the readers must not): nothing is written and the answer is False.
        """
        assert len(commit.block_hash) == HASH_BYTES
        assert len(commit.app_hash) == HASH_BYTES
        dbs = self._dbs
        key = height_key(commit.height)

        def body(txn: lmdb.Transaction) -> None:
            tip = _read_tip(txn, dbs["meta"])
            if tip.height + 1 != commit.height:
                raise StoreConflict(f"block {commit.height} does not follow the stored tip "
                                    f"{tip.height}")
            if tip.app_hash != commit.parent_app_hash:
                raise StoreConflict(f"block {commit.height} was executed on another state "
                                    "than the stored tip's")
            self._failpoint("store.commit.begin")
            if not txn.put(key, commit.block_bytes, db=dbs["blocks"], overwrite=False):
                raise StoreCorrupt(f"a block is already stored at height {commit.height}")
            if not txn.put(commit.block_hash, key, db=dbs["block_index"], overwrite=False):
                raise StoreCorrupt(f"block hash {commit.block_hash.hex()} is already indexed")
            tx_ids = commit.tx_ids
            order, ids, distinct = _tx_key_order(tx_ids, commit.tx_order)  # key order
            if not distinct:  # a tx twice in the block
                raise StoreCorrupt(f"block {commit.height}: a tx is already indexed")
            # One lookup call per older level, in key order (Cursor.getmulti: the found ones).
            for level in ("tx_index_mid", "tx_index"):
                if ids and txn.cursor(dbs[level]).getmulti(ids):
                    raise StoreCorrupt(f"block {commit.height}: a tx is already indexed")
            self._failpoint("store.commit.before_tx_index")
            # In C loops: each location is height || index (u32 from a shared table), and
            # each slice's ids one run into its recent database.
            indexes = _u32_table(len(ids))
            added = 0
            for nibble, low, high in _nibble_runs(ids):
                added += txn.cursor(dbs[_LEVELS["tx_index"][0][nibble]]).putmulti(zip(
                    ids[low:high], map(key.__add__, map(indexes.__getitem__, order[low:high])),
                    strict=True), overwrite=False)[1]
            if added != len(ids):
                raise StoreCorrupt(f"block {commit.height}: a tx is already indexed")
            self._failpoint("store.commit.before_receipts")
            txn.put(key, commit.receipts_bytes, db=dbs["receipts"])
            txn.put(key, commit.app_hash, db=dbs["roots"])
            self._failpoint("store.commit.before_state")
            _write_state(txn, dbs, commit.state_changes)
            self._failpoint("store.commit.before_nodes")
            hashes, nodes = _stamped_nodes(commit.new_nodes, key)
            for nibble, low, high in _nibble_runs(hashes):
                txn.cursor(dbs[_LEVELS["tree"][0][nibble]]).putmulti(
                    zip(hashes[low:high], nodes[low:high], strict=True))
            if self.retain_heights and commit.stale_nodes:
                _record_stale(txn.cursor(dbs[STALE_DB]), key, sorted(commit.stale_nodes))
            self._failpoint("store.commit.before_merge")
            self._merge_step(txn, commit.height)
            self._failpoint("store.commit.before_meta")
            meta = dbs["meta"]
            txn.put(META_LAST_HEIGHT, key, db=meta)
            txn.put(META_LAST_APP_HASH, commit.app_hash, db=meta)
            txn.put(META_LAST_BLOCK_HASH, commit.block_hash, db=meta)
            assert _read_tip(txn, meta).height == commit.height

        return self._write(body, grow)


def hash_order(hashes: bytes) -> list[int]:
    """The indexes of the 32-byte hashes packed in `hashes`, in the hashes' byte order
    (equal ones by index). The reference of ext/_tree.pyx `hash_order`."""
    if type(hashes) is not bytes:
        raise TypeError(f"hashes must be bytes, not {type(hashes).__name__}")
    if len(hashes) % HASH_BYTES:
        raise ValueError(f"hashes are {len(hashes)} bytes, not a multiple of {HASH_BYTES}")
    items = [hashes[at : at + HASH_BYTES] for at in range(0, len(hashes), HASH_BYTES)]
    return sorted(range(len(items)), key=items.__getitem__)


# `hash_order` by the kernel when built (and not CHAINMALL_PURE=1), else the reference.
hash_key_order = tree_kernel.hash_order if tree_kernel is not None else hash_order


def _tx_key_order(tx_ids: Sequence[bytes],
                  given: Sequence[int] | None) -> tuple[Sequence[int], list[bytes], bool]:
    """(the indexes of `tx_ids` in key order, the ids in that order, whether no id is
    there twice): `given` when it is that order (a permutation that sorts the ids
    strictly), else made here (C loops for 32-byte ids)."""
    count = len(tx_ids)
    if given is not None and len(given) == count and (not given or min(given) >= 0):
        try:
            ids = list(map(tx_ids.__getitem__, given))
        except IndexError:
            pass
        else:  # strictly sorted: so each index once, and `given` is a permutation
            if all(map(lt, ids, islice(ids, 1, None))):
                return given, ids, True
    if set(map(len, tx_ids)) == {HASH_BYTES}:
        order = hash_key_order(b"".join(tx_ids))
    else:
        order = sorted(range(count), key=tx_ids.__getitem__)
    ids = list(map(tx_ids.__getitem__, order))
    return order, ids, all(map(lt, ids, islice(ids, 1, None)))


_U32_BYTES: list[bytes] = []  # i -> u32 big-endian i, for i below the largest block yet


def _stamped_nodes(new_nodes: Mapping[bytes, bytes],
                   stamp: bytes) -> tuple[list[bytes], list[bytes]]:
    """The new nodes' hashes in key order (B-tree inserts in key order touch fewer pages)
    and their encodings in that order, each stamped with the height that wrote it.

    32-byte hashes (the tree's) are ordered by the kernel (`hash_key_order`: sorted
    without the GIL, no Python comparisons) and their encodings taken by position
    rather than looked up again by hash: C loops, about 30 % less time than `sorted`
    plus one dict lookup per node (45,000 nodes: 28 against 40 ms)."""
    hashes = list(new_nodes)
    if hashes and set(map(len, hashes)) == {HASH_BYTES}:
        order = hash_key_order(b"".join(hashes))
        hashes = list(map(hashes.__getitem__, order))
        encodings = list(map(list(new_nodes.values()).__getitem__, order))
    else:
        hashes.sort()
        encodings = list(map(new_nodes.__getitem__, hashes))
    return hashes, list(map(add, encodings, repeat(stamp)))


def _u32_table(count: int) -> list[bytes]:
    """The u32 encodings of 0..count-1 (a shared table, extended on demand)."""
    if len(_U32_BYTES) < count:
        _U32_BYTES.extend(map(_U32.pack, range(len(_U32_BYTES), count)))
    return _U32_BYTES


def _write_state(txn: lmdb.Transaction, dbs: Mapping[str, object],
                 changes: Mapping[bytes, bytes | None]) -> None:
    """Write state changes (None: delete) into their tables: in key order, a table's keys
    are one run, put with one `putmulti` call (C loops; InvalidInput for a key naming no
    table, before anything is written)."""
    keys = sorted(changes)
    values = list(map(changes.__getitem__, keys))
    runs = []
    low, count = 0, len(keys)
    while low < count:
        first = keys[low]
        table = dbs[state_table(first)]
        high = count if first[0] == 255 else bisect_left(keys, bytes([first[0] + 1]), low)
        runs.append((table, low, high))
        low = high
    deletes = None in values
    for table, low, high in runs:
        run_keys, run_values = keys[low:high], values[low:high]
        if deletes and None in run_values:
            delete = partial(txn.delete, db=table)
            deque(map(delete, compress(run_keys, map(is_, run_values, repeat(None)))), maxlen=0)
            txn.cursor(table).putmulti(compress(zip(run_keys, run_values, strict=True),
                                                map(is_not, run_values, repeat(None))))
        else:
            txn.cursor(table).putmulti(zip(run_keys, run_values, strict=True))


def _record_stale(cursor: lmdb.Cursor, stamp: bytes, hashes: list[bytes]) -> None:
    """Put the stale records (nibble || height || hash) of sorted node `hashes`: in hash
    order the keys are sorted too, one run per nibble; one `putmulti` call."""
    cursor.putmulti(chain.from_iterable(
        zip(map((_NIBBLES[nibble] + stamp).__add__, hashes[low:high]), repeat(b""))
        for nibble, low, high in _nibble_runs(hashes)))


def _nibble_runs(keys: Sequence[bytes]) -> list[tuple[int, int, int]]:
    """(first 4 bits, low, high) of each run of sorted (non-empty) `keys` that share their
    first 4 bits: keys[low:high]."""
    runs = []
    low, count = 0, len(keys)
    while low < count:
        nibble = keys[low][0] >> 4
        high = (count if nibble == STORE_FLUSH_SLICES - 1
                else bisect_left(keys, bytes([(nibble + 1) << 4]), low))
        runs.append((nibble, low, high))
        low = high
    return runs


def _slice_bounds(index: int, bits: int) -> tuple[bytes, bytes | None]:
    """[low, high) of the keys whose first `bits` bits (4 or 8) are `index`; None: no end."""
    shift = 8 - bits
    low = bytes([index << shift])
    return low, (bytes([(index + 1) << shift]) if (index + 1) << shift < 256 else None)


def _move_slice(txn: lmdb.Transaction, source: object, target: object,
                bounds: tuple[bytes, bytes | None], overwrite: bool, what: str) -> None:
    """Move the entries of `source` with keys in `bounds` into `target`, in key order
    (StoreCorrupt if a key that must be new was already there)."""
    low, high = bounds
    cursor = txn.cursor(source)
    if not cursor.set_range(low):
        return
    # C-level loops: (key, value) < (high,) exactly when key < high.
    entries = cursor.iternext() if high is None else takewhile((high,).__gt__, cursor.iternext())
    consumed, added = txn.cursor(target).putmulti(entries, overwrite=overwrite)
    if not overwrite and added != consumed:
        raise StoreCorrupt(f"{what}: {consumed - added} staged entries were already there")
    if consumed:  # they were the range's first `consumed` entries: delete as many
        cursor = txn.cursor(source)
        cursor.set_range(low)
        deque(starmap(cursor.delete, repeat((), consumed)), maxlen=0)


def _move_all(txn: lmdb.Transaction, source: object, target: object, overwrite: bool,
              what: str) -> None:
    """Move every entry of `source` into `target` (in key order: one `putmulti` call), then
    empty `source` whole (`drop(delete=False)` frees its pages, no per-entry deletes);
    StoreCorrupt if a key that must be new was already there."""
    consumed, added = txn.cursor(target).putmulti(txn.cursor(source).iternext(),
                                                  overwrite=overwrite)
    if not overwrite and added != consumed:
        raise StoreCorrupt(f"{what}: {consumed - added} staged entries were already there")
    if consumed:
        txn.drop(source, delete=False)


def _env_failpoint(name: str) -> None:
    """CHAINMALL_FAILPOINT=<name> ends the process at that point (kill tests)."""
    if os.environ.get("CHAINMALL_FAILPOINT") == name:
        os._exit(86)
