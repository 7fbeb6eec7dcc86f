"""The ledger file's own header: how long LMDB says `data.mdb` is, read without mapping it.

py-lmdb maps `data.mdb` into memory, and touching a mapped page past the end
of a truncated file kills the process with SIGBUS before any Python code can
report it. So before LMDB opens the file, `check_ledger_file` reads LMDB's
two meta pages with ordinary reads and compares the file's size with the
size the newer meta page says the file holds: `(last page + 1) * page size`.

Meta page layout (liblmdb 0.9 `mdb.c`, 64-bit builds, the machine's byte
order, as LMDB writes it): page n starts at n * page size; its 16-byte header holds
the page number (u64) at 0 and the flags (u16) at 10 (P_META = 0x08); the
`MDB_meta` follows: magic u32 at 16, format version u32 at 20, map size u64
at 32, the free database record at 40 (its first u32 is the page size), the
last used page number u64 at 136 and the transaction id u64 at 144. LMDB
uses the meta page with the larger transaction id.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from .errors import StoreCorrupt, StoreTruncated

LMDB_MAGIC = 0xBEEFC0DE
LMDB_DATA_VERSION = 1
P_META = 0x08
PAGE_BYTES_MIN = 512  # LMDB's page size is the OS page size: a power of two in this range
PAGE_BYTES_MAX = 65536
_META_END = 152  # the header's fields end here (txn id at 144, 8 bytes)
_HEADER = struct.Struct("=Q2xH")  # page number, pad, flags
_META = struct.Struct("=II8xQI")  # magic, version, (address), map size, page size
_TAIL = struct.Struct("=QQ")  # last page, txn id
assert struct.calcsize("P") == 8, "the ledger file layout is that of 64-bit LMDB builds"


@dataclass(frozen=True, slots=True)
class LedgerHeader:
    """What the newer meta page says about the file."""

    page_bytes: int
    last_page: int
    txn_id: int
    map_size_bytes: int

    @property
    def file_bytes(self) -> int:
        """The size the file must have: every page up to the last used one."""
        return (self.last_page + 1) * self.page_bytes


def _meta(path: Path, raw: bytes, number: int) -> LedgerHeader:
    page_number, flags = _HEADER.unpack_from(raw, 0)
    magic, version, map_size, page_bytes = _META.unpack_from(raw, 16)
    last_page, txn_id = _TAIL.unpack_from(raw, 136)
    if magic != LMDB_MAGIC or not flags & P_META or page_number != number:
        raise StoreCorrupt(f"the ledger file {path} is corrupted: meta page {number} is not "
                           "an LMDB meta page")
    if version != LMDB_DATA_VERSION:
        raise StoreCorrupt(f"the ledger file {path} has LMDB data format {version}, this "
                           f"build reads {LMDB_DATA_VERSION}")
    if not PAGE_BYTES_MIN <= page_bytes <= PAGE_BYTES_MAX or page_bytes & (page_bytes - 1):
        raise StoreCorrupt(f"the ledger file {path} is corrupted: meta page {number} gives "
                           f"a page size of {page_bytes}")
    if last_page < 1:
        raise StoreCorrupt(f"the ledger file {path} is corrupted: meta page {number} gives "
                           f"last page {last_page}")
    return LedgerHeader(page_bytes, last_page, txn_id, map_size)


def read_ledger_header(path: str | os.PathLike[str]) -> LedgerHeader:
    """The header LMDB will use, read with plain reads; StoreTruncated or StoreCorrupt.

    StoreTruncated when the file is shorter than its two meta pages or than
    the newer one says; the message gives both sizes.
    """
    source = Path(path)
    with source.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        first = handle.read(_META_END)
        if len(first) < _META_END:
            raise StoreTruncated(f"the ledger file is truncated ({size} bytes, less than one "
                                 f"LMDB meta page): {source}")
        meta0 = _meta(source, first, 0)
        if size < 2 * meta0.page_bytes:
            raise StoreTruncated(f"the ledger file is truncated ({size} of at least "
                                 f"{max(2 * meta0.page_bytes, meta0.file_bytes)} bytes): "
                                 f"{source}")
        handle.seek(meta0.page_bytes)
        meta1 = _meta(source, handle.read(_META_END), 1)
    if meta1.page_bytes != meta0.page_bytes:
        raise StoreCorrupt(f"the ledger file {source} is corrupted: its meta pages disagree "
                           "on the page size")
    header = meta1 if meta1.txn_id > meta0.txn_id else meta0
    if size < header.file_bytes:
        raise StoreTruncated(f"the ledger file is truncated ({size} of {header.file_bytes} "
                             f"bytes): {source}")
    return header
