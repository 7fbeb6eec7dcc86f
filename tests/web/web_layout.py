"""The trace entries the product page reads: a provisional Python codec (docs/page.md section 5).

The mall's state layout (docs/mall.md) is being written at the same time as
the page; until it lands, the page and its fixtures use the layout of
docs/page.md section 5, encoded here and decoded in `web/src/mall/event.ts`.
When the mall fixes its own layout, this file and the TypeScript decoder
move to it together and the vectors are regenerated.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import blake3

TRACE_TABLE = 0x10  # provisional state table id of the per-item trace lists
EVENT_VERSION = 1
ITEM_ID_BYTES_MAX = 64
TRACE_ITEMS_MAX = 256
TRACE_DOCUMENTS_MAX = 16
TRACE_TEXT_BYTES_MAX = 128
TRACE_DETAILS_BYTES_MAX = 1024

KINDS = {
    "object": 1,
    "aggregation": 2,
    "transformation": 3,
    "transaction": 4,
    "custody": 5,
    "correction": 6,
}


@dataclass(frozen=True)
class TraceEvent:
    """One EPCIS-shaped event as the state stores it (what, when, where, why, who)."""

    kind: str
    event_time_ms: int
    tz_offset: str
    recorded_height: int
    signer: bytes
    biz_step: str
    disposition: str = ""
    read_point: str = ""
    biz_location: str = ""
    outputs: tuple[tuple[str, int], ...] = ()
    inputs: tuple[tuple[str, int], ...] = ()
    source: bytes | None = None
    destination: bytes | None = None
    documents: tuple[bytes, ...] = ()
    corrects: bytes | None = None
    details: str = ""
    extra: dict = field(default_factory=dict, compare=False)  # not encoded

    def encode(self) -> bytes:
        """The canonical bytes (the state value of a trace entry)."""
        assert (self.kind == "correction") == (self.corrects is not None)
        out = bytearray(struct.pack(">BBQ", EVENT_VERSION, KINDS[self.kind], self.event_time_ms))
        out += _text(self.tz_offset, 6, 1)
        out += struct.pack(">Q", self.recorded_height)
        assert len(self.signer) == 32
        out += self.signer
        for text in (self.biz_step, self.disposition):
            out += _text(text, 64, 1)
        for text in (self.read_point, self.biz_location):
            out += _text(text, TRACE_TEXT_BYTES_MAX, 1)
        for quantities in (self.outputs, self.inputs):
            assert len(quantities) <= TRACE_ITEMS_MAX
            out += struct.pack(">H", len(quantities))
            for item, quantity in quantities:
                out += _text(item, ITEM_ID_BYTES_MAX, 1) + struct.pack(">Q", quantity)
        for party in (self.source, self.destination):
            out += b"\x00" if party is None else b"\x01" + _fixed(party, 20)
        assert len(self.documents) <= TRACE_DOCUMENTS_MAX
        out += bytes([len(self.documents)]) + b"".join(_fixed(d, 32) for d in self.documents)
        out += b"\x00" if self.corrects is None else b"\x01" + _fixed(self.corrects, 32)
        out += _text(self.details, TRACE_DETAILS_BYTES_MAX, 2)
        return bytes(out)

    def event_id(self) -> bytes:
        """BLAKE3 (plain) of the canonical bytes: how corrections name an event."""
        return blake3.blake3(self.encode()).digest()


def _text(text: str, limit: int, prefix: int) -> bytes:
    raw = text.encode("utf-8")
    assert len(raw) <= limit, (text, limit)
    return len(raw).to_bytes(prefix, "big") + raw


def _fixed(data: bytes, length: int) -> bytes:
    assert isinstance(data, bytes) and len(data) == length
    return data


def trace_key(item: str, seq: int) -> bytes:
    """State key of the `seq`-th event of `item`'s trace list."""
    raw = item.encode("ascii")
    assert 1 <= len(raw) <= ITEM_ID_BYTES_MAX and raw.isascii()
    return bytes([TRACE_TABLE, len(raw)]) + raw + struct.pack(">I", seq)


class EventDecodeError(ValueError):
    """Bytes that are not one canonical trace event."""


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data, self.offset = data, 0

    def take(self, count: int, name: str) -> bytes:
        if count > len(self.data) - self.offset:
            raise EventDecodeError(f"{name}: needs {count} bytes")
        self.offset += count
        return self.data[self.offset - count : self.offset]

    def uint(self, width: int, name: str) -> int:
        return int.from_bytes(self.take(width, name), "big")

    def text(self, prefix: int, limit: int, name: str) -> str:
        length = self.uint(prefix, f"{name} length")
        if length > limit:
            raise EventDecodeError(f"{name}: {length} bytes, limit {limit}")
        try:
            return self.take(length, name).decode("utf-8")
        except UnicodeDecodeError:
            raise EventDecodeError(f"{name}: not UTF-8") from None

    def item(self, name: str) -> str:
        length = self.uint(1, f"{name} length")
        raw = self.take(length, name) if 1 <= length <= ITEM_ID_BYTES_MAX else b""
        if not raw or not all(0x21 <= b <= 0x7E for b in raw):
            raise EventDecodeError(f"{name}: not 1..{ITEM_ID_BYTES_MAX} printable ASCII bytes")
        return raw.decode("ascii")

    def quantities(self, name: str) -> tuple[tuple[str, int], ...]:
        count = self.uint(2, f"{name} count")
        if count > TRACE_ITEMS_MAX:
            raise EventDecodeError(f"{count} {name}, limit {TRACE_ITEMS_MAX}")
        return tuple((self.item(name), self.uint(8, "quantity")) for _ in range(count))

    def optional(self, length: int, name: str) -> bytes | None:
        flag = self.uint(1, f"{name} flag")
        if flag > 1:
            raise EventDecodeError(f"{name} flag is {flag}")
        return self.take(length, name) if flag else None


def decode_event(data: bytes) -> TraceEvent:
    """The strict decoder (the reference for `decodeTraceEvent` in web/src/mall/event.ts)."""
    reader = _Reader(data)
    if reader.uint(1, "version") != EVENT_VERSION:
        raise EventDecodeError("unknown version")
    kinds = {code: name for name, code in KINDS.items()}
    kind = kinds.get(reader.uint(1, "kind"))
    if kind is None:
        raise EventDecodeError("unknown kind")
    time_ms = reader.uint(8, "event time")
    tz = reader.text(1, 6, "time zone offset")
    if not (len(tz) == 6 and tz[0] in "+-" and tz[3] == ":" and (tz[1:3] + tz[4:]).isdigit()
            and (tz[1:3] + tz[4:]).isascii()):
        raise EventDecodeError(f"time zone offset {tz!r}")
    height = reader.uint(8, "recorded height")
    signer = reader.take(32, "signer")
    biz_step = reader.text(1, 64, "business step")
    disposition = reader.text(1, 64, "disposition")
    read_point = reader.text(1, TRACE_TEXT_BYTES_MAX, "read point")
    biz_location = reader.text(1, TRACE_TEXT_BYTES_MAX, "business location")
    outputs = reader.quantities("outputs")
    inputs = reader.quantities("inputs")
    source = reader.optional(20, "source")
    destination = reader.optional(20, "destination")
    count = reader.uint(1, "document count")
    if count > TRACE_DOCUMENTS_MAX:
        raise EventDecodeError(f"{count} documents, limit {TRACE_DOCUMENTS_MAX}")
    documents = tuple(reader.take(32, "document") for _ in range(count))
    corrects = reader.optional(32, "corrected event id")
    if (kind == "correction") != (corrects is not None):
        raise EventDecodeError("a correction names the event it corrects, and only a correction")
    details = reader.text(2, TRACE_DETAILS_BYTES_MAX, "details")
    if reader.offset != len(data):
        raise EventDecodeError(f"{len(data) - reader.offset} trailing bytes")
    return TraceEvent(kind, time_ms, tz, height, signer, biz_step, disposition, read_point,
                      biz_location, outputs, inputs, source, destination, documents, corrects,
                      details)
