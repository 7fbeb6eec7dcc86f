"""Newline-delimited frames with a size cap: one JSON-RPC message (or batch) per line.

A frame is the bytes before a `\\n` (a trailing `\\r` is dropped, so `nc`
and telnet work); JSON text never contains a raw newline, so no escaping is
needed. The decoder refuses a frame longer than its limit as soon as the
limit is passed, before the rest of it arrives: a client cannot make the
server buffer more than `frame_bytes_max` bytes.
"""

from __future__ import annotations

NEWLINE = b"\n"


class FrameTooLarge(ValueError):
    """A frame longer than the decoder's limit (the connection cannot resynchronise).

    Not a ChainmallError: it never reaches the wire by code; the server
    answers it with JSON-RPC's invalid request (-32600) and closes.
    """


class FrameDecoder:
    """Splits a byte stream into frames of at most `frame_bytes_max` bytes each."""

    __slots__ = ("_buffer", "_frame_bytes_max", "_scanned")

    def __init__(self, frame_bytes_max: int) -> None:
        self._frame_bytes_max = frame_bytes_max
        self._buffer = bytearray()
        self._scanned = 0  # bytes of the buffer known to hold no newline

    @property
    def pending_bytes(self) -> int:
        """Bytes of an incomplete frame held so far."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes]:
        """The frames `data` completes, in order; FrameTooLarge once a frame passes the cap."""
        buffer = self._buffer
        buffer += data
        frames = []
        start = 0
        position = buffer.find(NEWLINE, self._scanned)
        while position >= 0:
            if position - start > self._frame_bytes_max:
                raise FrameTooLarge(f"frame of more than {self._frame_bytes_max} bytes")
            end = position - 1 if position > start and buffer[position - 1] == 0x0D else position
            frames.append(bytes(buffer[start:end]))
            start = position + 1
            position = buffer.find(NEWLINE, start)
        if start:
            del buffer[:start]
        if len(buffer) > self._frame_bytes_max:
            raise FrameTooLarge(f"frame of more than {self._frame_bytes_max} bytes")
        self._scanned = len(buffer)
        return frames


def encode_frame(payload: bytes) -> bytes:
    """A frame on the wire: the payload (JSON, no raw newline) and `\\n`."""
    return payload + NEWLINE
