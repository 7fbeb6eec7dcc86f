"""Per-tx result codes of a block and their canonical encoding.

A receipt is the tx's result code: 0 (TX_OK) for success, otherwise the code
of the error class that failed it (core/errors.py; codes are append-only, so
stored receipts keep their meaning). Encoding: version u8 || count u32 ||
code u16 per tx, in block order.
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Sequence

from ..constants import (
    BLOCK_TXS_MAX,
    RECEIPTS_VERSION,
)
from ..encoding import Reader, Writer
from ..errors import TX_OK, DecodeError

__all__ = ["RECEIPTS_VERSION", "TX_OK", "decode_receipts", "encode_receipts"]


def encode_receipts(codes: Sequence[int]) -> bytes:
    """Canonical bytes of a block's result codes."""
    if len(codes) > BLOCK_TXS_MAX:
        raise ValueError(f"{len(codes)} receipts, limit {BLOCK_TXS_MAX}")
    if not all(type(code) is int for code in codes):
        raise ValueError("a result code is a u16 int")
    try:
        packed = array("H", codes)  # C unsigned short: range-checked, 2 bytes
    except OverflowError as exc:
        raise ValueError(f"a result code is a u16: {exc}") from exc
    assert packed.itemsize == 2
    if sys.byteorder == "little":
        packed.byteswap()  # to big-endian
    return Writer().u8(RECEIPTS_VERSION).u32(len(codes)).getvalue() + packed.tobytes()


def decode_receipts(data: bytes) -> tuple[int, ...]:
    """Strictly decode a block's result codes."""
    reader = Reader(data, "receipts")
    version = reader.u8("version")
    if version != RECEIPTS_VERSION:
        raise DecodeError(f"receipts: unsupported version {version}")
    count = reader.u32("count")
    if count > BLOCK_TXS_MAX:
        raise DecodeError(f"receipts: {count} entries, limit {BLOCK_TXS_MAX}")
    codes = tuple(reader.u16("code") for _ in range(count))
    reader.finish()
    return codes
