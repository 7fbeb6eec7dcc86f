"""Canonical binary codec: fixed-width big-endian integers and sized byte strings.

Every value has exactly one encoding: integers are fixed width (no varints,
so no non-minimal forms), byte strings carry an explicit length prefix of a
declared width, and a `Reader` must be consumed exactly (`finish()` rejects
trailing bytes). Any violation raises `DecodeError`, never another exception.
"""

from __future__ import annotations

import struct

from .errors import DecodeError

_U16 = struct.Struct(">H")
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_WIDTH_MAX = {1: 2**8 - 1, 2: 2**16 - 1, 4: 2**32 - 1, 8: 2**64 - 1}


def _check_uint(value: int, bits: int) -> int:
    if type(value) is not int or not 0 <= value < (1 << bits):
        raise ValueError(f"expected an integer in [0, 2^{bits}), got {value!r}")
    return value


class Writer:
    """Appends canonical fields to a growing byte buffer."""

    __slots__ = ("_parts",)

    def __init__(self) -> None:
        self._parts = bytearray()

    def u8(self, value: int) -> Writer:
        self._parts.append(_check_uint(value, 8))
        return self

    def u16(self, value: int) -> Writer:
        self._parts += _U16.pack(_check_uint(value, 16))
        return self

    def u32(self, value: int) -> Writer:
        self._parts += _U32.pack(_check_uint(value, 32))
        return self

    def u64(self, value: int) -> Writer:
        self._parts += _U64.pack(_check_uint(value, 64))
        return self

    def fixed(self, data: bytes, length: int) -> Writer:
        """Exactly `length` bytes, no prefix."""
        if len(data) != length:
            raise ValueError(f"expected {length} bytes, got {len(data)}")
        self._parts += data
        return self

    def sized(self, data: bytes, prefix_bytes: int, max_bytes: int) -> Writer:
        """A length prefix of `prefix_bytes` (big-endian), then the bytes."""
        limit = min(max_bytes, _WIDTH_MAX[prefix_bytes])  # the prefix width may bind first
        if len(data) > limit:
            raise ValueError(f"{len(data)} bytes is over the limit of {limit}")
        self._parts += len(data).to_bytes(prefix_bytes, "big")
        self._parts += data
        return self

    def raw(self, data: bytes) -> Writer:
        """Bytes that are already a canonical encoding."""
        self._parts += data
        return self

    def getvalue(self) -> bytes:
        return bytes(self._parts)


class Reader:
    """Reads canonical fields from a byte string; every fault is a DecodeError."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes | bytearray | memoryview, what: str = "value") -> None:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(f"{what}: expected bytes, got {type(data).__name__}")
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    @property
    def position(self) -> int:
        return self._pos

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def skip_to(self, position: int) -> None:
        """Move forward to `position`, past bytes read by other means (a kernel)."""
        if not self._pos <= position <= len(self._data):
            raise ValueError(f"cannot skip from {self._pos} to {position} "
                             f"(of {len(self._data)} bytes)")
        self._pos = position

    def _take(self, count: int, field: str) -> bytes:
        end = self._pos + count
        if end > len(self._data):
            raise DecodeError(
                f"{self._what}: truncated at {field} (need {count} bytes at offset "
                f"{self._pos}, have {len(self._data) - self._pos})"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self, field: str = "u8") -> int:
        return self._take(1, field)[0]

    def u16(self, field: str = "u16") -> int:
        return _U16.unpack(self._take(2, field))[0]

    def u32(self, field: str = "u32") -> int:
        return _U32.unpack(self._take(4, field))[0]

    def u64(self, field: str = "u64") -> int:
        return _U64.unpack(self._take(8, field))[0]

    def fixed(self, length: int, field: str = "bytes") -> bytes:
        return self._take(length, field)

    def sized(self, prefix_bytes: int, max_bytes: int, field: str = "bytes") -> bytes:
        length = int.from_bytes(self._take(prefix_bytes, field + " length"), "big")
        if length > max_bytes:
            raise DecodeError(f"{self._what}: {field} is {length} bytes, limit {max_bytes}")
        return self._take(length, field)

    def u16_sized_many(self, count: int, field: str = "item", max_bytes: int = 0xFFFF,
                       too_large: type[DecodeError] = DecodeError) -> list[bytes]:
        """`count` byte strings, each after a u16 length prefix of at most `max_bytes`.

        A prefix over `max_bytes` raises `too_large` (a DecodeError class)
        before its bytes are looked at, so an over-long item is reported as
        such even when fewer bytes follow.
        """
        data, pos, size = self._data, self._pos, len(self._data)
        unpack = _U16.unpack_from
        items = []
        for index in range(count):
            if pos + 2 > size:
                self._pos = pos
                self._take(2, f"{field} {index} length")  # raises: truncated
            (length,) = unpack(data, pos)
            if length > max_bytes:
                self._pos = pos
                raise too_large(f"{self._what}: {field} {index} is {length} bytes, "
                                f"limit {max_bytes}")
            end = pos + 2 + length
            if end > size:
                self._pos = pos + 2
                self._take(length, f"{field} {index}")  # raises: truncated
            items.append(data[pos + 2 : end])
            pos = end
        self._pos = pos
        return items

    def finish(self) -> None:
        """Reject trailing bytes: a canonical encoding is consumed exactly."""
        if self._pos != len(self._data):
            trailing = len(self._data) - self._pos
            raise DecodeError(f"{self._what}: {trailing} trailing bytes after offset {self._pos}")
