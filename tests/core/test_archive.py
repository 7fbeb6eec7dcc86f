"""core/archive.py: export/import round trips, corrupted archives, `check_store` on tampering."""

from __future__ import annotations

import random
import struct
from pathlib import Path

import lmdb
import pytest
from chainmall.core.abci.app import ledger_machine
from chainmall.core.archive import (
    ARCHIVE_MAGIC,
    export_chain,
    import_chain,
    read_archive_info,
)
from chainmall.core.block import decode_block
from chainmall.core.check import ReplayStore, check_store
from chainmall.core.errors import (
    DecodeError,
    InvalidBlock,
    StoreAlreadyInitialised,
    StoreChainMismatch,
)
from chainmall.core.genesis import make_genesis
from chainmall.core.keys import KeyPair
from chainmall.core.state.accounts import encode_transfer
from chainmall.core.state.root import leaf_hash
from chainmall.core.store import Store, height_key
from chainmall.core.tx import sign_tx

CHAIN = "archive-test"
KEYS = [KeyPair.from_seed(bytes([i]) * 32) for i in range(1, 5)]
VALIDATOR = KeyPair.from_seed(b"v" * 32)
BALANCE = 1_000_000
GENESIS = make_genesis(CHAIN, [(k.address, BALANCE) for k in KEYS], [(VALIDATOR.public_key, 1)],
                       genesis_time_ms=1_000, fee_min=2)
BLOCKS = 6


def build_chain(path: Path, blocks: int = BLOCKS, seed: int = 7) -> None:
    rng = random.Random(seed)
    nonces = [0] * len(KEYS)
    with Store(path) as store:
        machine = ledger_machine(store, GENESIS)
        for height in range(1, blocks + 1):
            txs = []
            for _ in range(rng.randrange(1, 6)):
                i = rng.randrange(len(KEYS))
                to = KEYS[rng.randrange(len(KEYS))].address
                txs.append(sign_tx(KEYS[i], CHAIN, 1, nonces[i], 2, 1_000_000,
                                   encode_transfer(to, rng.randrange(0, 1000))))
                nonces[i] += 1
            block = machine.build_block(txs, 2_000 + height, VALIDATOR.public_key)
            machine.finalize_block(block)
            machine.commit()


def roots(path: Path) -> tuple[object, list[bytes | None]]:
    with Store(path) as store, store.reader() as view:
        tip = view.last()
        return tip, [view.root(h) for h in range(tip.height + 1)]


@pytest.fixture(scope="module")
def chain(tmp_path_factory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("chain")
    build_chain(base / "ledger")
    with Store(base / "ledger") as store:
        assert export_chain(store, GENESIS, base / "chain.cma") == BLOCKS
    return base / "ledger", base / "chain.cma"


def frame_offsets(archive: bytes) -> list[tuple[int, int]]:
    """(start of block bytes, length) per frame."""
    offset = len(ARCHIVE_MAGIC) + 4
    genesis_size = struct.unpack_from(">I", archive, offset)[0]
    offset += 4 + genesis_size + 32
    out = []
    for _ in range(BLOCKS):
        length = struct.unpack_from(">I", archive, offset)[0]
        out.append((offset + 4, length))
        offset += 4 + length + 32
    assert offset == len(archive) - 40
    return out


def test_round_trip(chain, tmp_path: Path) -> None:
    ledger, archive = chain
    info = read_archive_info(archive)
    assert info.genesis == GENESIS and info.block_count == BLOCKS
    with Store(tmp_path / "copy") as store:
        assert import_chain(archive, store) == BLOCKS
    assert roots(tmp_path / "copy") == roots(ledger)
    with Store(tmp_path / "copy") as store:
        assert check_store(store, GENESIS) == (BLOCKS, [])
        export_chain(store, GENESIS, tmp_path / "again.cma")
    assert (tmp_path / "again.cma").read_bytes() == archive.read_bytes()


def test_resume_continues_a_prefix_of_the_archive(chain, tmp_path: Path) -> None:
    ledger, archive = chain
    for done in (0, 1, 4, BLOCKS):
        target = tmp_path / f"resume-{done}"
        build_chain(target, blocks=done)  # the same first `done` blocks (same seed)
        with Store(target) as store:
            assert import_chain(archive, store, resume=True) == BLOCKS
            assert check_store(store, GENESIS) == (BLOCKS, [])
        assert roots(target) == roots(ledger)


def test_resume_refuses_another_chain_or_a_longer_one(chain, tmp_path: Path) -> None:
    _, archive = chain
    build_chain(tmp_path / "other", blocks=3, seed=8)  # same genesis, other blocks
    with Store(tmp_path / "other") as store:
        with pytest.raises(InvalidBlock, match="block 3 is not the archive's"):
            import_chain(archive, store, resume=True)
        assert store.last().height == 3
    build_chain(tmp_path / "longer", blocks=BLOCKS + 1)
    with Store(tmp_path / "longer") as store, \
            pytest.raises(InvalidBlock, match="past the archive's"):
        import_chain(archive, store, resume=True)
    other_genesis = make_genesis(CHAIN, [(KEYS[0].address, 5)], [(VALIDATOR.public_key, 1)])
    with Store(tmp_path / "foreign") as store:
        ledger_machine(store, other_genesis)
        with pytest.raises(StoreChainMismatch):
            import_chain(archive, store, resume=True)


def test_import_refuses_a_store_with_a_chain(chain, tmp_path: Path) -> None:
    _, archive = chain
    with Store(tmp_path / "x") as store:
        ledger_machine(store, GENESIS)
        with pytest.raises(StoreAlreadyInitialised):
            import_chain(archive, store)


def _rehash(data: bytearray) -> bytes:
    import blake3

    data[-32:] = blake3.blake3(bytes(data[:-32])).digest()
    return bytes(data)


def _import_expecting(path: Path, target: Path, error: type[Exception], match: str) -> int:
    """Import, expect `error`; the height the target was left at (-1: nothing written)."""
    with Store(target) as store:
        with pytest.raises(error, match=match):
            import_chain(path, store)
        if not store.is_initialised():
            return -1
        return store.last().height


@pytest.mark.parametrize("case", ["flip_block", "truncated", "bad_magic", "trailer",
                                  "wrong_count"])
def test_corrupt_archive_writes_nothing(chain, tmp_path: Path, case: str) -> None:
    _, archive = chain
    data = bytearray(archive.read_bytes())
    start, length = frame_offsets(bytes(data))[2]
    match = "trailer hash mismatch"
    if case == "flip_block":
        data[start + length // 2] ^= 0x01
    elif case == "truncated":
        del data[-100:]
    elif case == "bad_magic":
        data[0] ^= 0xFF
        match = "bad magic"
    elif case == "trailer":
        data[-1] ^= 0x80
    elif case == "wrong_count":
        data[-40:-32] = struct.pack(">Q", BLOCKS + 1)
    bad = tmp_path / "bad.cma"
    bad.write_bytes(bytes(data))
    assert _import_expecting(bad, tmp_path / "t", DecodeError, match) == -1


def test_wrong_recorded_root_stops_at_last_good_block(chain, tmp_path: Path) -> None:
    ledger, archive = chain
    data = bytearray(archive.read_bytes())
    start, length = frame_offsets(bytes(data))[3]  # block 4's recorded root
    data[start + length] ^= 0x01
    bad = tmp_path / "bad.cma"
    bad.write_bytes(_rehash(data))
    assert _import_expecting(bad, tmp_path / "t", InvalidBlock, "block 4: app hash") == 3
    _, good_roots = roots(ledger)
    assert roots(tmp_path / "t")[1] == good_roots[:4]


def test_tampered_block_with_valid_trailer_stops_at_last_good_block(chain, tmp_path) -> None:
    _, archive = chain
    data = bytearray(archive.read_bytes())
    start, length = frame_offsets(bytes(data))[1]  # block 2, inside the last tx's signature
    data[start + length - 5] ^= 0x01
    bad = tmp_path / "bad.cma"
    bad.write_bytes(_rehash(data))
    with Store(tmp_path / "t") as store:
        with pytest.raises((InvalidBlock, DecodeError)):
            import_chain(bad, store)
        assert store.last().height == 1


def test_frame_over_block_bytes_max(chain, tmp_path: Path) -> None:
    _, archive = chain
    data = bytearray(archive.read_bytes())
    start, _ = frame_offsets(bytes(data))[0]
    data[start - 4:start] = struct.pack(">I", 0xFFFFFFFF)
    bad = tmp_path / "bad.cma"
    bad.write_bytes(_rehash(data))
    assert _import_expecting(bad, tmp_path / "t", DecodeError, "BLOCK_BYTES_MAX") == 0


def _overwrite(ledger: Path, db: bytes, key: bytes, change) -> None:
    """Change the value of `key` in table `db`, or in its staging levels if it is there."""
    env = lmdb.open(str(ledger), max_dbs=32, subdir=True)
    try:
        staged = db in (b"tx_index", b"tree")
        # The recent level: one database per slice (a key's first 4 bits, docs/state.md).
        names = (b"%s_recent_%x" % (db, key[0] >> 4), db + b"_mid", db) if staged else (db,)
        handles = [env.open_db(name) for name in names]
        with env.begin(write=True) as txn:
            for handle in handles:
                value = txn.get(key, db=handle)
                if value is not None:
                    txn.put(key, change(value), db=handle)
                    return
            raise AssertionError(f"{key.hex()} is not in {db!r}")
    finally:
        env.close()


def _flip_last(value: bytes) -> bytes:
    return value[:-1] + bytes([value[-1] ^ 1])


def _flip_node(value: bytes) -> bytes:
    """Flip the last byte of a stored tree node (before its 8-byte height stamp)."""
    return value[:-9] + bytes([value[-9] ^ 1]) + value[-8:]


@pytest.mark.parametrize(("db", "key", "expect"), [
    (b"blocks", height_key(3), "block 3"),
    (b"roots", height_key(2), "block 2"),
    (b"receipts", height_key(5), "block 5"),
    (b"accounts", None, "rebuild"),
])
def test_check_finds_tampering(tmp_path: Path, db: bytes, key: bytes | None, expect: str) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    with Store(ledger) as store:
        assert check_store(store, GENESIS) == (BLOCKS, [])
        if key is None:
            with store.reader() as view:
                key = next(iter(view.state_items()))[0]
    _overwrite(ledger, db, key, _flip_last)
    with Store(ledger) as store:
        height, problems = check_store(store, GENESIS)
    assert height == BLOCKS
    assert problems and any(expect in p for p in problems), problems


def _insert(ledger: Path, db: bytes, key: bytes, value: bytes) -> None:
    env = lmdb.open(str(ledger), max_dbs=32, subdir=True)
    try:
        handle = env.open_db(db)  # before the write txn: open_db takes the write lock too
        with env.begin(write=True) as txn:
            assert txn.put(key, value, db=handle, overwrite=False)
    finally:
        env.close()


@pytest.mark.parametrize(("db", "key", "value", "expect"), [
    (b"blocks", height_key(BLOCKS + 1), b"stray", "the blocks table holds"),
    (b"roots", height_key(BLOCKS + 1), bytes(32), "the roots table holds"),
    (b"receipts", height_key(BLOCKS + 7), b"\x01", "the receipts table holds"),
    (b"block_index", bytes(32), height_key(BLOCKS + 1), "the block_index table holds"),
    (b"tx_index", bytes(32), struct.pack(">QI", BLOCKS + 1, 0), "the tx_index table holds"),
])
def test_check_finds_stray_entries_above_the_tip(tmp_path: Path, db: bytes, key: bytes,
                                                  value: bytes, expect: str) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    _insert(ledger, db, key, value)
    with Store(ledger) as store:
        height, problems = check_store(store, GENESIS)
    assert height == BLOCKS
    assert any(expect in p for p in problems), problems


def test_check_finds_a_wrong_tx_index_entry(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    with Store(ledger) as store, store.reader() as view:
        tx_id = decode_block(view.block(2)).txs[0].tx_id
    _overwrite(ledger, b"tx_index", tx_id, lambda _: struct.pack(">QI", 1, 0))
    with Store(ledger) as store:
        _, problems = check_store(store, GENESIS)
    assert any("block 2: tx index does not map tx 0 here" in p for p in problems), problems


def test_check_finds_a_tampered_tree_node(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    with Store(ledger) as store:
        tip = store.last()
    _overwrite(ledger, b"tree", tip.app_hash, _flip_node)
    with Store(ledger) as store:
        _, problems = check_store(store, GENESIS)
    assert any("state tree" in p for p in problems), problems


def test_round_trip_at_genesis(tmp_path: Path) -> None:
    with Store(tmp_path / "a") as store:
        ledger_machine(store, GENESIS)
        assert export_chain(store, GENESIS, tmp_path / "g.cma") == 0
    assert (tmp_path / "g.cma").read_bytes()[:12].hex() == "43484d414c4c415200000001"
    with Store(tmp_path / "b") as store:
        assert import_chain(tmp_path / "g.cma", store) == 0
    assert roots(tmp_path / "b") == roots(tmp_path / "a")


def test_wrong_genesis_root_writes_no_block(chain, tmp_path: Path) -> None:
    _, archive = chain
    data = bytearray(archive.read_bytes())
    start, _ = frame_offsets(bytes(data))[0]
    data[start - 5] ^= 0x01  # last byte of root0
    bad = tmp_path / "bad.cma"
    bad.write_bytes(_rehash(data))
    assert _import_expecting(bad, tmp_path / "t", InvalidBlock, "genesis root") == 0


# --- check_store: every tree node, every problem, no temporary store ---------------------


def _tree_nodes(ledger: Path) -> dict[bytes, bytes]:
    """Every stored tree node (main and staging table)."""
    env = lmdb.open(str(ledger), max_dbs=32, subdir=True, readonly=True)
    try:
        nodes: dict[bytes, bytes] = {}
        for name in (b"tree", b"tree_mid", *(b"tree_recent_%x" % n for n in range(16))):
            with env.begin(db=env.open_db(name, create=False)) as txn:
                nodes.update(txn.cursor())
        return nodes
    finally:
        env.close()


def _only_under(ledger: Path, height: int) -> bytes:
    """A stored node that the root of `height` reaches and no later root does."""
    with Store(ledger) as store, store.reader() as view:
        tip = view.last()
        later: set[bytes] = set()
        for h in range(height + 1, tip.height + 1):
            later |= set(_reachable(view, view.root(h)))
        candidates = [n for n in _reachable(view, view.root(height)) if n not in later]
    assert candidates, "the chain must change every account in later blocks"
    return candidates[-1]  # a leaf: deeper than the root


def _reachable(view, root: bytes) -> list[bytes]:
    out, stack = [], [root]
    while stack:
        node_hash = stack.pop()
        out.append(node_hash)
        node = view.get_node(node_hash)
        if node[1] == 2:  # internal: two children
            stack += [c for c in (node[2:34], node[34:]) if c != bytes(32)]
    return out


def test_check_finds_damage_in_a_node_only_an_old_root_reaches(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    node_hash = _only_under(ledger, 2)
    _overwrite(ledger, b"tree", node_hash, _flip_node)
    with Store(ledger) as store:
        height, problems = check_store(store, GENESIS)
    assert height == BLOCKS
    assert problems == [f"state tree: node {node_hash.hex()} (under the root of height 2) "
                        "does not hash to its key"], problems


def test_check_finds_a_missing_node_and_nodes_no_root_reaches(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    missing = _only_under(ledger, 1)
    env = lmdb.open(str(ledger), max_dbs=32, subdir=True)
    stray = bytes([1, 1]) + bytes(range(64))  # a well-formed leaf that no tree holds
    stray_hash = leaf_hash(stray[2:34], stray[34:])
    with env.begin(write=True) as txn:
        for name in (b"tree", b"tree_mid", b"tree_recent_%x" % (missing[0] >> 4)):
            txn.delete(missing, db=env.open_db(name, txn=txn))
        txn.put(stray_hash, stray, db=env.open_db(b"tree", txn=txn))
    env.close()
    with Store(ledger) as store:
        _, problems = check_store(store, GENESIS)
    assert problems == [
        f"state tree: node {missing.hex()} (under the root of height 1) is missing",
        f"state tree: 1 stored node is reached by no state root (first: {stray_hash.hex()}); "
        "a damaged node listed above may be a parent",
    ], problems


def test_check_lists_every_problem_when_the_tip_block_is_corrupt(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    old_node = _only_under(ledger, 3)
    _overwrite(ledger, b"blocks", height_key(BLOCKS), lambda b: b[:-1] + b"\x07")  # commit flag
    _overwrite(ledger, b"tree", old_node, _flip_node)
    _overwrite(ledger, b"receipts", height_key(2), _flip_last)
    with Store(ledger) as store:
        height, problems = check_store(store, GENESIS)
    assert height == BLOCKS
    assert problems == [
        "block 2: stored receipts are not the replayed ones",
        f"block {BLOCKS}: does not decode: block: commit flag must be 0 or 1, got 7",
        f"block {BLOCKS}: the replay stops here: its state root and receipts are not "
        "re-derived",
        f"state tree: node {old_node.hex()} (under the root of height 3) does not hash to its "
        "key",
    ], problems


def test_check_replays_in_memory_without_temporary_files(tmp_path: Path, monkeypatch) -> None:
    import tempfile

    def refuse(*args, **kwargs):
        raise AssertionError("db check must not need temporary files")

    ledger = tmp_path / "ledger"
    build_chain(ledger)
    for name in ("mkdtemp", "mkstemp", "TemporaryDirectory", "NamedTemporaryFile"):
        monkeypatch.setattr(tempfile, name, refuse)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with Store(ledger) as store:
        assert check_store(store, GENESIS) == (BLOCKS, [])
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_replay_store_keeps_no_node_a_healthy_store_holds(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    with Store(ledger) as store, store.reader() as view:
        replay = ReplayStore(view)
        machine = ledger_machine(replay, GENESIS)
        for height in range(1, BLOCKS + 1):
            machine.finalize_block(decode_block(view.block(height)))
            machine.commit()
        assert machine.info() == (BLOCKS, view.last().app_hash)
        assert replay.state == dict(view.state_items())
        assert replay._nodes == {}  # every node it wrote is the store's, byte for byte
    assert len(_tree_nodes(ledger)) > 0


def test_check_reports_progress_for_each_phase(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    calls: list[tuple[str, int, int]] = []
    with Store(ledger) as store:
        check_store(store, GENESIS, lambda *call: calls.append(call))
    phases = list(dict.fromkeys(what for what, _, _ in calls))
    assert phases == ["tree nodes", "blocks", "stored nodes"]
    assert ("blocks", BLOCKS, BLOCKS) in calls
    with Store(ledger) as store, store.reader() as view:
        entries = view.entry_counts()["tree"]  # every level's entries (a node may be in two)
    assert entries >= len(_tree_nodes(ledger))
    assert calls[-1] == ("stored nodes", entries, entries)


def test_replay_store_reads_ranges_in_key_order_after_each_block(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    build_chain(ledger)
    with Store(ledger) as store, store.reader() as view:
        replay = ReplayStore(view)
        machine = ledger_machine(replay, GENESIS)
        with replay.reader() as replayed:
            everything = list(replayed.state_range(b"\x00", b"\xff"))
        assert everything == sorted(replay.state.items())
        for height in range(1, BLOCKS + 1):
            machine.finalize_block(decode_block(view.block(height)))
            machine.commit()
            start, end = b"\x01", b"\x02"  # the accounts table
            with replay.reader() as replayed:
                accounts = list(replayed.state_range(start, end))
            assert accounts == sorted((k, v) for k, v in replay.state.items() if start <= k < end)
        assert accounts == list(view.state_range(start, end))  # the stored state at the tip
