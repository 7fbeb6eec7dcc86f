"""The LMDB store: one write txn per block, map growth, snapshot readers."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import lmdb
import pytest
from chainmall.core.constants import STORE_FLUSH_SLICES, STORE_MERGE_BLOCKS, STORE_MID_SLICES
from chainmall.core.errors import (
    DiskFull,
    InvalidInput,
    StorageError,
    StoreAlreadyInitialised,
    StoreChainMismatch,
    StoreConflict,
    StoreCorrupt,
    StoreFormatOutdated,
    StoreNotInitialised,
)
from chainmall.core.store import (
    DATA_FILE,
    LMDB_LOCK_FILE,
    BlockCommit,
    Store,
    StoreView,
    height_key,
    write_error,
)
from ledgers import downgrade_to_format_3

GENESIS_HASH = b"\x11" * 32
ROOT0 = b"\x22" * 32


def _tx_id(height: int, index: int) -> bytes:
    """Test tx ids start with their height's low byte (so a block's land in one slice)."""
    if height < 256:
        return bytes([height, index]) * 16
    return bytes([height % 256, index]) + height.to_bytes(30, "big")


def _commit(height: int, parent: bytes, root: bytes, state: dict, nodes: dict | None = None,
            block: bytes = b"block") -> BlockCommit:
    block_hash = bytes([height]) * 32 if height < 256 else height.to_bytes(32, "big")
    return BlockCommit(
        height=height, block_hash=block_hash, block_bytes=block + height.to_bytes(2, "big"),
        tx_ids=[_tx_id(height, 1), _tx_id(height, 2)], receipts_bytes=b"r",
        parent_app_hash=parent, app_hash=root, state_changes=state, new_nodes=nodes or {},
    )


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "data") as store:
        store.init_genesis("test", GENESIS_HASH, {b"\x01a": b"1"}, {b"n" * 32: b"node"}, ROOT0)
        yield store


def test_genesis_and_tip(store: Store) -> None:
    tip = store.last()
    assert (tip.chain_id, tip.height, tip.app_hash, tip.block_hash) == (
        "test", 0, ROOT0, GENESIS_HASH)
    with store.reader() as view:
        assert view.get_state(b"\x01a") == b"1"
        assert view.get_node(b"n" * 32) == b"node"
        assert view.root(0) == ROOT0
        assert view.block(0) is None


def test_init_twice_and_not_initialised(store: Store, tmp_path) -> None:
    with pytest.raises(StoreAlreadyInitialised):
        store.init_genesis("test", GENESIS_HASH, {}, {}, ROOT0)
    with Store(tmp_path / "empty") as empty:
        assert not empty.is_initialised()
        with pytest.raises(StoreNotInitialised, match="no chain"):
            empty.last()


def test_chain_mismatch(store: Store) -> None:
    assert store.check_chain("test", GENESIS_HASH).height == 0
    with pytest.raises(StoreChainMismatch, match="holds chain 'test'"):
        store.check_chain("other", GENESIS_HASH)
    with pytest.raises(StoreChainMismatch, match="genesis"):
        store.check_chain("test", b"\x00" * 32)


def test_commit_block_writes_everything(store: Store) -> None:
    root1 = b"\x33" * 32
    store.commit_block(_commit(1, ROOT0, root1, {b"\x01a": None, b"\x01b": b"2"}))
    tip = store.last()
    assert (tip.height, tip.app_hash, tip.block_hash) == (1, root1, b"\x01" * 32)
    with store.reader() as view:
        assert view.block(1) == b"block\x00\x01"
        assert view.height_of(b"\x01" * 32) == 1
        assert view.tx_location(bytes([1, 2]) * 16) == (1, 1)
        assert view.receipts(1) == b"r"
        assert view.root(1) == root1
        assert view.get_state(b"\x01a") is None
        assert list(view.state_items(b"\x01")) == [(b"\x01b", b"2")]


def _chain(store: Store, heights: range) -> bytes:
    """Commit blocks at `heights` (each with its two txs and one node); the last root."""
    root = store.last().app_hash
    for height in heights:
        new_root = bytes([height % 256]) * 31 + b"\x01"
        nodes = {bytes([height % 256]) * 32: b"n%d" % height}
        store.commit_block(_commit(height, root, new_root, {}, nodes))
        root = new_root
    return root


def _entries(store: Store, name: str) -> int:
    """Entries of a database; `<table>_recent`: of all its recent level's slices."""
    names = ([f"{name}_{n:x}" for n in range(STORE_FLUSH_SLICES)] if name.endswith("_recent")
             else [name])
    with store._env.begin() as txn:
        return sum(txn.stat(store._dbs[one])["entries"] for one in names)


def _level(store: Store, table: str, level: str, key: bytes) -> object:
    """The database of `table`'s level ("recent", "mid" or "main") that holds `key`."""
    if level == "recent":
        return store._dbs[f"{table}_recent_{key[0] >> 4:x}"]
    return store._dbs[table + ("_mid" if level == "mid" else "")]


def _expected_level(written: int, first_byte: int, tip: int) -> str:
    """Where the schedule puts an entry whose key starts with `first_byte`, written at
    height `written`, once block `tip` is committed: every block h moves the recent
    level's slice h mod 16 (a key's first 4 bits) to the middle level, then the middle
    level's slice h mod 256 (a key's first byte) to the main table."""
    to_mid = next(h for h in range(written, written + STORE_FLUSH_SLICES)
                  if h % STORE_FLUSH_SLICES == first_byte >> 4)
    if to_mid > tip:
        return "recent"
    to_main = next(h for h in range(to_mid, to_mid + STORE_MID_SLICES)
                   if h % STORE_MID_SLICES == first_byte)
    return "mid" if to_main > tip else "main"


def test_every_block_moves_one_slice_of_each_staging_level(store: Store) -> None:
    last = STORE_MID_SLICES + 2 * STORE_FLUSH_SLICES + 3  # past a whole turn of the middle
    _chain(store, range(1, last + 1))
    with store.reader() as view:
        for height in range(1, last + 1):
            assert view.tx_location(_tx_id(height, 2)) == (height, 1)
        assert view.entry_counts()["tx_index"] == 2 * last
    with store._env.begin() as txn:
        for height in range(1, last + 1):
            tx_id = _tx_id(height, 2)
            found = [level for level in ("recent", "mid", "main")
                     if txn.get(tx_id, db=_level(store, "tx_index", level, tx_id)) is not None]
            assert found == [_expected_level(height, height % 256, last)], height
        # Each node hash was put again by later blocks (height and height + 256): its
        # newest copy is in the newest level that has it, and that one is read.
        node = bytes([last % 256]) * 32
        assert txn.get(node, db=_level(store, "tree", "recent", node)) is not None
    with store.reader() as view:
        assert view.get_node(bytes([last % 256]) * 32) == b"n%d" % last
    # Every level is bounded: the recent one by 16 blocks, the middle one by 256.
    assert _entries(store, "tx_index_recent") <= 2 * STORE_FLUSH_SLICES
    assert _entries(store, "tx_index_mid") <= 2 * STORE_MID_SLICES


def test_get_nodes_reads_every_level(store: Store) -> None:
    """`get_nodes` finds what `get_node` finds, in the recent slices, the middle level and
    the main table, in the order asked, with repeats and unknown hashes."""
    last = STORE_MID_SLICES + STORE_FLUSH_SLICES + 3
    _chain(store, range(1, last + 1))
    hashes = [bytes([h % 256]) * 32 for h in range(last, 0, -7)]
    with store._env.begin() as txn:  # the asked nodes are spread over all three levels
        levels = {level for h in hashes for level in ("recent", "mid", "main")
                  if txn.get(h, db=_level(store, "tree", level, h)) is not None}
    assert levels == {"recent", "mid", "main"}
    asked = [*hashes, b"\x99" * 31 + b"\x00", hashes[0], b"n" * 32]
    with store.reader() as view:
        found = view.get_nodes(asked)
        assert found == [view.get_node(h) for h in asked]
        assert None not in found[:len(hashes)] and found[len(hashes)] is None
        assert view.get_nodes([]) == [] and view.get_nodes([b""]) == [None]


def test_get_nodes_reads_the_level_that_held_most_nodes_first(store: Store) -> None:
    """Nodes are content-addressed, so `get_nodes` may start at either end of the levels:
    it starts where most of the last call's nodes were, and answers as `get_node` does."""
    last = STORE_MID_SLICES + STORE_FLUSH_SLICES + 3
    root = store.last().app_hash
    for height in range(1, last + 1):  # one node per block, its value a function of its hash
        node_hash = (height % 256).to_bytes(1, "big") + height.to_bytes(2, "big") * 15 + b"\x00"
        new_root = bytes([height % 256]) * 31 + b"\x01"
        store.commit_block(_commit(height, root, new_root, {}, {node_hash: b"v" + node_hash}))
        root = new_root
    with store._env.begin() as txn:
        where = {}
        with txn.cursor(store._dbs["tree"]) as cursor:
            where["main"] = [k for k in cursor.iternext(values=False) if len(k) == 32]
        newer = [f"tree_recent_{n:x}" for n in range(STORE_FLUSH_SLICES)] + ["tree_mid"]
        where["newer"] = [k for name in newer
                          for k in txn.cursor(store._dbs[name]).iternext(values=False)]
    main_only = [h for h in where["main"] if h not in where["newer"] and h != b"n" * 32]
    assert len(main_only) > 8 and len(where["newer"]) > 8
    order = store._node_order
    unknown = b"\x99" * 31 + b"\x00"
    mostly_main = main_only + where["newer"][:2] + [unknown]
    mostly_newer = where["newer"] + main_only[:2]
    for asked, main_first_after in ((mostly_main, True), (mostly_newer, False)):
        for start in (False, True):
            order._main_first[:] = [start]  # the first call of a snapshot starts here
            with store.reader() as view:
                found = view.get_nodes(asked)
                assert found == [view.get_node(h) for h in asked]
            assert found == [None if h == unknown else b"v" + h for h in asked]
            assert order.main_first(0) is main_first_after, (start, main_first_after)
    with store.reader() as view:  # each call ordinal of a snapshot keeps its own hint
        view.get_nodes(mostly_newer)
        view.get_nodes(mostly_main)
    assert (order.main_first(0), order.main_first(1), order.main_first(2)) == (False, True, False)


class _CountingTxn:
    """A read txn whose cursors record each `getmulti` call as (database name, keys)."""

    def __init__(self, txn: lmdb.Transaction, store: Store) -> None:
        self._txn = txn
        self._names = {id(db): name for name, db in store._dbs.items()}
        self.calls: list[tuple[str, list[bytes]]] = []

    def cursor(self, db: object) -> object:
        cursor, name, calls = self._txn.cursor(db=db), self._names[id(db)], self.calls

        class Counting:
            def getmulti(self, keys: list[bytes]) -> list[tuple[bytes, bytes]]:
                calls.append((name, list(keys)))
                return cursor.getmulti(keys)

        return Counting()


def _expected_calls(asked: list[bytes], holders: dict[bytes, set[str]],
                    levels: list[str]) -> list[tuple[str, list[bytes]]]:
    """The getmulti calls of a read of `asked` through `levels` (\"recent\": one call per
    slice asked for), each level asked in key order for what no level before held."""
    calls = []
    wanted = sorted(set(asked))
    for level in levels:
        if not wanted:
            break
        if level == "recent":
            for nibble in sorted({h[0] >> 4 for h in wanted}):
                name = f"tree_recent_{nibble:x}"
                calls.append((name, [h for h in wanted if h[0] >> 4 == nibble]))
            names = {f"tree_recent_{n:x}" for n in range(STORE_FLUSH_SLICES)}
        else:
            calls.append((level, wanted))
            names = {level}
        wanted = [h for h in wanted if not holders.get(h, set()) & names]
    return calls


def test_get_nodes_asks_each_level_once_for_what_is_left_in_either_order(store: Store) -> None:
    """Whichever end `get_nodes` starts at, it asks each level once (the recent level once
    per slice asked for), for the sorted hashes the levels before did not hold, and stops
    when none is left; the answers are the same."""
    last = STORE_MID_SLICES + STORE_FLUSH_SLICES + 3
    _chain(store, range(1, last + 1))
    with store._env.begin() as txn:
        holders: dict[bytes, set[str]] = {}
        for name in ("tree", "tree_mid", *(f"tree_recent_{n:x}" for n in range(16))):
            for key in txn.cursor(store._dbs[name]).iternext(values=False):
                holders.setdefault(key, set()).add(name)
    in_main = [h for h, names in holders.items() if names == {"tree"}]
    newer = [h for h, names in holders.items() if "tree" not in names]
    assert len(in_main) > 8 and len(newer) > 8
    unknown = b"\x99" * 31 + b"\x00"
    for asked in (in_main + newer[:3] + [unknown, b""], newer + in_main[:2], in_main[:5],
                  newer[:5], [unknown], [b""], []):
        answers = []
        for main_first, levels in ((False, ["recent", "tree_mid", "tree"]),
                                   (True, ["tree", "tree_mid", "recent"])):
            store._node_order._main_first[:] = [main_first]
            with store._env.begin() as txn:
                counting = _CountingTxn(txn, store)
                view = StoreView(counting, store._dbs, store.path, store._node_order)
                answers.append(view.get_nodes(asked))
                real = StoreView(txn, store._dbs, store.path)
                assert answers[-1] == [real.get_node(h) if h else None for h in asked]
            assert counting.calls == _expected_calls([h for h in asked if h], holders, levels)
        assert answers[0] == answers[1]


def test_a_tx_indexed_before_the_merge_cannot_be_indexed_again(store: Store) -> None:
    tip = 3 * STORE_MERGE_BLOCKS  # blocks 17 and 34's keys (0x11, 0x22) reached the main table
    root = _chain(store, range(1, tip + 1))
    height = tip + 1
    levels = {}
    with store._env.begin() as txn:
        for level in ("tx_index", "tx_index_mid"):
            with txn.cursor(store._dbs[level]) as cursor:
                levels[level] = next(iter(cursor.iternext(values=False)))
    for level, tx_id in levels.items():  # one tx now in the main table, one in the middle
        again = _commit(height, root, b"\x44" * 32, {})
        again.tx_ids[1] = tx_id
        with pytest.raises(StoreCorrupt, match="already indexed"):
            store.commit_block(again)
        assert store.last().height == tip, level


def test_a_given_tx_order_is_checked_and_gives_the_same_index(tmp_path: Path) -> None:
    ids = [bytes([7 * i % 5]) + bytes([i]) * 31 for i in range(5)] + [b"short"]
    order = sorted(range(len(ids)), key=ids.__getitem__)
    with Store(tmp_path / "a") as made, Store(tmp_path / "b") as given:
        for store in (made, given):
            store.init_genesis("test", GENESIS_HASH, {b"\x01a": b"1"}, {}, ROOT0)
        commit = replace(_commit(1, ROOT0, b"\x33" * 32, {}), tx_ids=ids)
        made.commit_block(commit)
        given.commit_block(replace(commit, tx_order=order))
        # An order that is not the ids' (short, unsorted, negative, repeated, out of
        # range) is not used: the commit makes its own, and indexes the same.
        bad_orders = (order[:-1], [order[-1], *order[:-1]], [-1, *order[1:]],
                      [order[0], *order[:-1]], [*order[:-1], 99])
        for number, bad in enumerate(bad_orders):
            with Store(tmp_path / f"bad{number}") as store:
                store.init_genesis("test", GENESIS_HASH, {b"\x01a": b"1"}, {}, ROOT0)
                store.commit_block(replace(commit, tx_order=bad))
                with store.reader() as view:
                    assert [view.tx_location(tx_id) for tx_id in ids] == [
                        (1, index) for index in range(len(ids))]
        with made.reader() as one, given.reader() as other:
            for index, tx_id in enumerate(ids):
                assert one.tx_location(tx_id) == other.tx_location(tx_id) == (1, index)
        twice = replace(_commit(2, b"\x33" * 32, b"\x44" * 32, {}),
                                    tx_ids=[b"\x09" * 32, b"\x08" * 32, b"\x09" * 32])
        for order in (None, [1, 0, 2]):
            with pytest.raises(StoreCorrupt, match="already indexed"):
                given.commit_block(replace(twice, tx_order=order))
        assert given.last().height == 1


def test_each_state_table_is_its_own_database(store: Store) -> None:
    store.commit_block(_commit(1, ROOT0, b"\x33" * 32, {b"\x01b": b"2", b"\x02pool": b"7"}))
    with store._env.begin() as txn:
        accounts, pool = store._dbs["accounts"], store._dbs["fee_pool"]
        assert list(txn.cursor(accounts).iternext()) == [(b"\x01a", b"1"), (b"\x01b", b"2")]
        assert list(txn.cursor(pool).iternext()) == [(b"\x02pool", b"7")]
    with store.reader() as view:
        assert list(view.state_items()) == [(b"\x01a", b"1"), (b"\x01b", b"2"),
                                            (b"\x02pool", b"7")]
        assert list(view.state_items(b"\x02")) == [(b"\x02pool", b"7")]
        assert view.entry_counts()["state"] == 3
        for key in (b"\x7fx", b""):
            with pytest.raises(InvalidInput, match="names no state table"):
                view.get_state(key)
    with pytest.raises(InvalidInput, match="names no state table"):
        store.commit_block(_commit(2, b"\x33" * 32, b"\x44" * 32, {b"\x7fx": b"1"}))
    assert store.last().height == 1


def test_get_states_is_get_state_of_each_key(store: Store) -> None:
    store.commit_block(_commit(1, ROOT0, b"\x33" * 32, {b"\x01b": b"2", b"\x02pool": b"7"}))
    with store.reader() as view:
        for keys in ([], [b"\x01a", b"\x01b", b"\x01c", b"\x01a"],  # one table, then mixed
                     [b"\x01b", b"\x02pool", b"\x02none", b"\x01a"]):
            assert view.get_states(keys) == [view.get_state(key) for key in keys]
        for keys in ([b"\x01a", b"\x7fx"], [b"\x01a", b""], [b"", b"\x01a"], [b"\x7fx"]):
            with pytest.raises(InvalidInput, match="names no state table"):
                view.get_states(keys)


def test_state_changes_across_tables_with_deletes(store: Store) -> None:
    """Each table's keys are one sorted run: puts and deletes in several tables, in any
    order, land in their own tables; a table whose keys are all deleted is emptied."""
    store.commit_block(_commit(1, ROOT0, b"\x33" * 32, {
        b"\x02pool": b"7", b"\x01c": b"3", b"\x01b": b"2", b"\x03x": b"x"}))
    changes = {b"\x01d": b"4", b"\x03x": None, b"\x01b": None, b"\x02pool": b"8",
               b"\x01a": b"9", b"\x01c": None}
    store.commit_block(_commit(2, b"\x33" * 32, b"\x44" * 32, changes))
    with store.reader() as view:
        assert list(view.state_items()) == [(b"\x01a", b"9"), (b"\x01d", b"4"),
                                            (b"\x02pool", b"8")]
        assert view.get_state(b"\x03x") is None
    # A key naming no table, after or before valid ones, is refused before anything is written.
    for bad in (b"\xffz", b"\x7fx", b""):
        with pytest.raises(InvalidInput, match="names no state table"):
            store.commit_block(_commit(3, b"\x44" * 32, b"\x55" * 32,
                                       {b"\x01e": b"5", bad: b"1", b"\x02pool": None}))
    assert store.last().height == 2
    with store.reader() as view:
        assert view.get_state(b"\x01e") is None and view.get_state(b"\x02pool") == b"8"


def test_stale_records_of_every_nibble(tmp_path: Path) -> None:
    """A block's stale nodes are recorded as nibble || height || hash, whatever nibbles
    their hashes start with (one run each)."""
    hashes = [bytes([first]) + bytes([i]) * 31 for first in (0x00, 0x0f, 0x10, 0x7a, 0xf0, 0xff)
              for i in range(3)]
    with Store(tmp_path / "data", retain_heights=1_000) as store:
        store.init_genesis("test", GENESIS_HASH, {}, {}, ROOT0)
        store.commit_block(replace(_commit(1, ROOT0, b"\x33" * 32, {}),
                                   stale_nodes=tuple(reversed(hashes))))
        with store._env.begin() as txn:
            keys = list(txn.cursor(store._dbs["tree_stale"]).iternext(values=False))
        assert keys == sorted(bytes([h[0] >> 4]) + height_key(1) + h for h in hashes)
        with store.reader() as view:
            assert sorted(view.stale_node_hashes()) == sorted(hashes)


def test_commit_must_extend_the_tip(store: Store) -> None:
    with pytest.raises(StoreConflict, match="follow"):
        store.commit_block(_commit(2, ROOT0, b"\x33" * 32, {}))
    with pytest.raises(StoreConflict, match="another state"):
        store.commit_block(_commit(1, b"\x44" * 32, b"\x33" * 32, {}))
    assert store.last().height == 0


@pytest.mark.parametrize("failpoint", ["store.commit.before_state", "store.commit.before_meta"])
def test_commit_that_raises_midway_leaves_nothing(store: Store, failpoint: str) -> None:
    def fail(name: str) -> None:
        if name == failpoint:
            raise RuntimeError("injected")

    store._failpoint = fail
    with pytest.raises(RuntimeError, match="injected"):
        store.commit_block(_commit(1, ROOT0, b"\x33" * 32, {b"\x01a": None, b"\x01c": b"3"},
                                   {b"m" * 32: b"node2"}))
    tip = store.last()
    assert (tip.height, tip.app_hash) == (0, ROOT0)
    with store.reader() as view:
        assert view.block(1) is None
        assert view.height_of(b"\x01" * 32) is None
        assert view.tx_location(bytes([1, 1]) * 16) is None
        assert view.receipts(1) is None and view.root(1) is None
        assert view.get_state(b"\x01a") == b"1" and view.get_state(b"\x01c") is None
        assert view.get_node(b"m" * 32) is None


def test_a_merge_that_fails_midway_leaves_the_staged_entries(store: Store) -> None:
    root = _chain(store, range(1, STORE_MERGE_BLOCKS))

    def fail(name: str) -> None:
        if name == "store.merge.after_tx_index":  # tx_index merged, tree not yet
            raise RuntimeError("injected")

    store._failpoint = fail
    with pytest.raises(RuntimeError, match="injected"):
        _chain(store, range(STORE_MERGE_BLOCKS, STORE_MERGE_BLOCKS + 1))
    assert store.last().app_hash == root
    assert _entries(store, "tx_index_mid") == 0
    assert _entries(store, "tx_index_recent") == 2 * (STORE_MERGE_BLOCKS - 1)
    with store.reader() as view:
        assert view.tx_location(bytes([1, 2]) * 16) == (1, 1)
    store._failpoint = lambda name: None
    _chain(store, range(STORE_MERGE_BLOCKS, STORE_MERGE_BLOCKS + 1))
    # Block 16 moved the recent level's slice 0 (blocks 1..15's keys, 0x01..0x0f); its own
    # keys (0x10: slice 1) wait for block 17.
    assert _entries(store, "tx_index_mid") == 2 * (STORE_MERGE_BLOCKS - 1)
    assert _entries(store, "tx_index_recent") == 2


def _reads(path: Path, heights: range) -> tuple:
    """What a reader sees of `_chain`'s blocks: tip, tx locations, nodes, state."""
    with Store(path, readonly=True) as store, store.reader() as view:
        return (view.last(), [view.tx_location(_tx_id(h, i)) for h in heights for i in (1, 2)],
                [view.get_node(bytes([h % 256]) * 32) for h in heights],
                list(view.state_items()), view.entry_counts())


def test_a_format_3_ledger_is_refused_until_migrated(tmp_path: Path) -> None:
    """Format 3 kept the recent level in one database per staged table: this build refuses
    it (read or write) with what to do, and `migrate_format` upgrades it in one write
    transaction; every read is the same after, and the chain goes on."""
    path = tmp_path / "data"
    with Store(path) as store:
        store.init_genesis("test", GENESIS_HASH, {b"\x01a": b"1"}, {}, ROOT0)
        _chain(store, range(1, 40))  # entries in every level
    before = _reads(path, range(1, 40))
    downgrade_to_format_3(path)
    for options in ({}, {"readonly": True}, {"readonly": True, "lmdb_lock": False}):
        with pytest.raises(StoreFormatOutdated, match=r"format 3.*`chainmall db migrate`"):
            Store(path, **options)
    with Store(path, migrate_format=True) as store:
        assert store.last().height == 39
        root = _chain(store, range(40, 60))
    assert _reads(path, range(1, 40))[1:4] == before[1:4]
    with Store(path) as store, store._env.begin() as txn:
        names = {key for key, _ in txn.cursor()}
        assert b"tx_index_recent" not in names and b"tree_recent" not in names
        assert txn.get(b"format_version", db=store._dbs["meta"]) == struct.pack(">I", 4)
        assert store.last().app_hash == root


def test_a_migration_that_fails_midway_leaves_format_3(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "data"
    with Store(path) as store:
        store.init_genesis("test", GENESIS_HASH, {}, {}, ROOT0)
        _chain(store, range(1, 20))
    before = _reads(path, range(1, 20))
    downgrade_to_format_3(path)

    def fail(name: str) -> None:
        if name == "store.migrate.before_meta":
            raise RuntimeError("injected")

    monkeypatch.setattr("chainmall.core.store._env_failpoint", fail)
    with pytest.raises(RuntimeError, match="injected"):
        Store(path, migrate_format=True)
    with pytest.raises(StoreFormatOutdated, match="format 3"):
        Store(path)
    monkeypatch.undo()
    Store(path, migrate_format=True).close()
    assert _reads(path, range(1, 20)) == before


def test_older_and_newer_formats_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "data"
    Store(path).init_genesis("test", GENESIS_HASH, {}, {}, ROOT0)
    for version, error, words in ((2, StoreFormatOutdated, "cannot upgrade it"),
                                  (5, StoreCorrupt, "newer chainmall")):
        env = lmdb.open(str(path), max_dbs=128, subdir=True)
        with env.begin(write=True) as txn:
            txn.put(b"format_version", struct.pack(">I", version), db=env.open_db(b"meta", txn=txn))
        env.close()
        for options in ({}, {"migrate_format": True}, {"readonly": True}):
            with pytest.raises(error, match=words):
                Store(path, **options)


def test_map_full_grows_and_retries(tmp_path) -> None:
    with Store(tmp_path / "tiny", map_size_bytes=64 * 1024) as store:
        store.init_genesis("test", GENESIS_HASH, {}, {}, ROOT0)
        parent = ROOT0
        for height in range(1, 6):
            state = {b"\x01" + height_key(height) + bytes([i]): bytes(2000) for i in range(64)}
            root = bytes([height]) * 32
            store.commit_block(_commit(height, parent, root, state, block=bytes(50_000)))
            parent = root
        assert store.grow_count >= 1
        assert store.map_size_bytes > 64 * 1024
        assert store.last().height == 5
        with store.reader() as view:
            assert len(list(view.state_items(b"\x01"))) == 5 * 64
    with Store(tmp_path / "tiny", map_size_bytes=64 * 1024) as reopened:
        assert reopened.last().height == 5


def test_readers_do_not_block_the_writer(store: Store) -> None:
    with store.reader() as old:
        store.commit_block(_commit(1, ROOT0, b"\x33" * 32, {b"\x01a": b"new"}))
        assert old.last().height == 0  # the snapshot is unchanged
        assert old.get_state(b"\x01a") == b"1"
        with store.reader() as new:
            assert new.last().height == 1
            assert new.get_state(b"\x01a") == b"new"


def test_growth_invalidates_open_snapshots_with_a_clear_error(tmp_path) -> None:
    with Store(tmp_path / "tiny", map_size_bytes=64 * 1024) as store:
        store.init_genesis("test", GENESIS_HASH, {}, {}, ROOT0)
        with store.reader() as view:
            store.commit_block(_commit(1, ROOT0, b"\x33" * 32, {}, block=bytes(300_000)))
            assert store.grow_count >= 1
            with pytest.raises(StorageError, match="open a new reader"):
                view.last()
        assert store.last().height == 1


# --- read-only opens, damage, full disks ---------------------------------------------


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*"))
            if p.is_file()}


@pytest.fixture
def closed(tmp_path: Path) -> Path:
    """A closed store at height 3."""
    path = tmp_path / "closed"
    with Store(path) as store:
        store.init_genesis("test", GENESIS_HASH, {b"\x01a": b"1"}, {b"n" * 32: b"node"}, ROOT0)
        _chain(store, range(1, 4))
    return path


@pytest.mark.parametrize("drop_lock_file", [False, True], ids=["lock-file", "no-lock-file"])
def test_read_only_without_lmdb_lock_writes_nothing(closed: Path, drop_lock_file: bool) -> None:
    if drop_lock_file:
        (closed / LMDB_LOCK_FILE).unlink()
    before = _files(closed)
    with Store(closed, readonly=True, lmdb_lock=False) as store:
        assert store.last().height == 3
        with store.reader() as view:
            assert view.get_state(b"\x01a") == b"1"
            assert view.entry_counts()["blocks"] == 3
        with pytest.raises(StorageError, match="read-only"):
            store.commit_block(_commit(4, store.last().app_hash, b"\x55" * 32, {}))
    assert _files(closed) == before


def test_read_only_refuses_what_is_not_a_ledger(tmp_path: Path) -> None:
    with pytest.raises(StoreNotInitialised, match="no ledger file"):
        Store(tmp_path / "absent", readonly=True, lmdb_lock=False)
    assert not (tmp_path / "absent").exists()
    lmdb.open(str(tmp_path / "bare"), max_dbs=4).close()  # an LMDB file with no tables
    with pytest.raises(StoreNotInitialised, match="no tables"):
        Store(tmp_path / "bare", readonly=True, lmdb_lock=False)
    env = lmdb.open(str(tmp_path / "partial"), max_dbs=4)
    env.open_db(b"meta")
    env.close()
    with pytest.raises(StoreCorrupt, match="lacks the table"):
        Store(tmp_path / "partial", readonly=True, lmdb_lock=False)


def test_lmdb_lock_may_only_be_skipped_read_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="read-only"):
        Store(tmp_path / "x", lmdb_lock=False)


def _main_root_offset(path: Path) -> tuple[int, int]:
    """(file offset of the main database's root page, page size), from the newer meta page."""
    data = (path / DATA_FILE).read_bytes()
    page = struct.unpack_from("=I", data, 40)[0]
    newer = max((0, 1), key=lambda n: struct.unpack_from("=Q", data, n * page + 144)[0])
    root = struct.unpack_from("=Q", data, newer * page + 88 + 40)[0]
    return root * page, page


def test_a_damaged_page_is_reported_as_corruption(closed: Path) -> None:
    offset, _ = _main_root_offset(closed)
    data = bytearray((closed / DATA_FILE).read_bytes())
    struct.pack_into("=H", data, offset + 10, 0x04)  # the root page now says "overflow"
    (closed / DATA_FILE).write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match=r"is corrupted \(.*MDB_CORRUPTED"):
        Store(closed, readonly=True, lmdb_lock=False)


def test_a_page_number_past_the_end_is_reported_as_corruption(closed: Path) -> None:
    data = bytearray((closed / DATA_FILE).read_bytes())
    page = struct.unpack_from("=I", data, 40)[0]
    last = struct.unpack_from("=Q", data, 136)[0]
    for meta in (0, 1):  # both meta pages: whichever is newer points past the end
        struct.pack_into("=Q", data, meta * page + 88 + 40, last + 50)
    (closed / DATA_FILE).write_bytes(bytes(data))
    with pytest.raises(StoreCorrupt, match=r"is corrupted \(.*MDB_PAGE_NOTFOUND"):
        Store(closed, readonly=True, lmdb_lock=False)


def test_write_failures_for_space_are_disk_full(tmp_path: Path, monkeypatch) -> None:
    from chainmall.core import diskio

    path = tmp_path / "ledger"
    enospc = lmdb.DiskError("mdb_txn_commit: No space left on device")
    assert isinstance(write_error(enospc, path), DiskFull)
    assert str(path / DATA_FILE) in str(write_error(enospc, path))
    short_write = lmdb.Error("mdb_txn_commit: Input/output error")
    monkeypatch.setattr(diskio, "free_bytes", lambda _path: 4096)
    full = write_error(short_write, path)
    assert isinstance(full, DiskFull) and "short write, 4096 bytes free" in str(full)
    monkeypatch.setattr(diskio, "free_bytes", lambda _path: 10 * 2**30)
    other = write_error(short_write, path)  # a real I/O error on a roomy disk stays one
    assert not isinstance(other, DiskFull) and "Input/output error" in str(other)
