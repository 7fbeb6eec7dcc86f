"""ABCI socket framing: each message is an unsigned varint length, then its protobuf bytes.

This is CometBFT's `protoio` delimited format. A socket read may end anywhere,
inside a length prefix as well as inside a message, so `FrameDecoder` keeps
the unfinished tail and returns only whole frames, in order.
"""

from __future__ import annotations

from ..errors import AbciFrameError

VARINT_BYTES_MAX = 10  # a u64 in 7-bit groups


def append_frame(out: bytearray, message: bytes) -> None:
    """Append `message` to `out` behind its varint length."""
    length = len(message)
    while length >= 0x80:
        out.append((length & 0x7F) | 0x80)
        length >>= 7
    out.append(length)
    out += message


def encode_frame(message: bytes) -> bytes:
    """One framed message: varint length, then the bytes."""
    out = bytearray()
    append_frame(out, message)
    return bytes(out)


class FrameDecoder:
    """Splits a byte stream into frames of at most `frame_bytes_max` bytes.

    `feed` takes reads of any size and returns the frames they complete. A
    length above the limit or a prefix longer than `VARINT_BYTES_MAX` raises
    `AbciFrameError` as soon as it is seen (the stream cannot be resynchronised,
    so the connection must close).
    """

    __slots__ = ("_buffer", "_frame_bytes_max")

    def __init__(self, frame_bytes_max: int) -> None:
        if frame_bytes_max < 0:
            raise ValueError("frame_bytes_max must be >= 0")
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()

    @property
    def pending_bytes(self) -> int:
        """Bytes received that do not yet make a whole frame."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """Add `data` to the stream; return the frames now complete, in order."""
        buffer = self._buffer
        buffer += data
        frames: list[bytes] = []
        start = 0
        size = len(buffer)
        while start < size:
            first = buffer[start]
            if first < 0x80 and first <= self._frame_bytes_max:  # a one-byte prefix (< 128)
                length, body = first, start + 1
            else:
                prefix = self._read_prefix(start)
                if prefix is None:  # the length prefix continues in a later read
                    break
                length, body = prefix
            end = body + length
            if end > size:  # the message continues in a later read
                break
            frames.append(bytes(buffer[body:end]))
            start = end
        if start:
            del buffer[:start]
        return frames

    def _read_prefix(self, start: int) -> tuple[int, int] | None:
        """The varint length at `start` and where its message begins; None if incomplete."""
        buffer = self._buffer
        length = 0
        for count in range(VARINT_BYTES_MAX):
            index = start + count
            if index >= len(buffer):
                return None
            byte = buffer[index]
            length |= (byte & 0x7F) << (7 * count)
            if length > self._frame_bytes_max:
                raise AbciFrameError(
                    f"ABCI frame of {length} or more bytes, over the limit of "
                    f"{self._frame_bytes_max}"
                )
            if byte < 0x80:
                return length, index + 1
        raise AbciFrameError(f"ABCI frame length prefix longer than {VARINT_BYTES_MAX} bytes")
