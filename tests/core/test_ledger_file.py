"""The ledger file's LMDB header, read without mapping it: size checks on real damaged files."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import lmdb
import pytest
from chainmall.core.errors import StoreCorrupt, StoreTruncated
from chainmall.core.ledger_file import read_ledger_header
from chainmall.core.store import DATA_FILE, Store

GENESIS_HASH = b"\x11" * 32
ROOT0 = b"\x22" * 32


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    """A real LMDB ledger of a few dozen pages."""
    path = tmp_path / "ledger"
    state = {b"\x01" + i.to_bytes(4, "big"): bytes(100) for i in range(2000)}
    with Store(path) as store:
        store.init_genesis("test", GENESIS_HASH, state, {}, ROOT0)
    return path


def test_header_is_lmdbs_own_view(ledger: Path) -> None:
    header = read_ledger_header(ledger / DATA_FILE)
    env = lmdb.open(str(ledger), readonly=True, lock=False, max_dbs=32)
    try:
        assert header.last_page == env.info()["last_pgno"]
        assert header.txn_id == env.info()["last_txnid"]
        assert header.page_bytes == env.stat()["psize"]
    finally:
        env.close()
    assert header.file_bytes == (ledger / DATA_FILE).stat().st_size


def _truncate(path: Path, size: int) -> None:
    with path.open("r+b") as handle:
        handle.truncate(size)


def test_truncated_below_the_last_page(ledger: Path) -> None:
    data = ledger / DATA_FILE
    full = data.stat().st_size
    _truncate(data, full // 2)
    message = f"the ledger file is truncated ({full // 2} of {full} bytes)"
    with pytest.raises(StoreTruncated, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_ledger_header(data)
    # The store checks before LMDB maps the file: an error, not SIGBUS in this process.
    for readonly in (True, False):
        with pytest.raises(StoreTruncated, match="truncated"):
            Store(ledger, readonly=readonly, lmdb_lock=not readonly)


@pytest.mark.parametrize("size", [1, 100, 151, 4096, 8191])
def test_truncated_inside_the_meta_pages(ledger: Path, size: int) -> None:
    _truncate(ledger / DATA_FILE, size)
    with pytest.raises(StoreTruncated, match=rf"truncated \({size} "):
        read_ledger_header(ledger / DATA_FILE)


def _poke(path: Path, offset: int, fmt: str, value: int) -> None:
    data = bytearray(path.read_bytes())
    struct.pack_into(fmt, data, offset, value)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("offset", "fmt", "value", "reason"),
    [
        (16, "=I", 0xDEADBEEF, "not an LMDB meta page"),
        (10, "=H", 0, "not an LMDB meta page"),
        (20, "=I", 7, "LMDB data format 7"),
        (40, "=I", 1000, "page size of 1000"),
    ],
    ids=["magic", "flags", "version", "page-size"],
)
def test_damaged_meta_page_is_corruption(ledger: Path, offset: int, fmt: str, value: int,
                                          reason: str) -> None:
    _poke(ledger / DATA_FILE, offset, fmt, value)
    with pytest.raises(StoreCorrupt, match=reason):
        read_ledger_header(ledger / DATA_FILE)
    with pytest.raises(StoreCorrupt, match=reason):
        Store(ledger, readonly=True, lmdb_lock=False)


def test_the_newer_meta_page_decides(ledger: Path) -> None:
    data = ledger / DATA_FILE
    header = read_ledger_header(data)
    page = header.page_bytes
    newer = 0 if struct.unpack_from("=Q", data.read_bytes(), 144)[0] == header.txn_id else 1
    # The older meta page may claim a larger file: only the newer one counts.
    _poke(data, (1 - newer) * page + 136, "=Q", header.last_page + 100)
    assert read_ledger_header(data) == header
    _poke(data, newer * page + 136, "=Q", header.last_page + 100)
    with pytest.raises(StoreTruncated, match=f"of {(header.last_page + 101) * page} bytes"):
        read_ledger_header(data)


def test_a_longer_file_is_fine(ledger: Path) -> None:
    data = ledger / DATA_FILE
    header = read_ledger_header(data)
    with data.open("ab") as handle:
        handle.write(bytes(header.page_bytes))
    assert read_ledger_header(data) == header
    assert os.path.getsize(data) > header.file_bytes
