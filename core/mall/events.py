"""Trace events: the canonical form of an EPCIS-shaped event, its id, its stored record.

An event's canonical form is `recorder address (20) || payload`, where the
payload is exactly the TRACE_RECORD tx payload (or the payload a hand-over
or delivery builds for the event it records): version, kind, action, when,
why (bizStep, disposition), where (read point, business location), what
(item and class ids with quantities, parent, inputs and outputs), business
transactions, sources and destinations, lot data. Its id is keyed BLAKE3 of
the canonical form (`EVENT_ID_KEY`), so anyone can recompute it and two
different events never share one. Layout and rules: docs/mall.md section 6.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, TypeVar

from ..constants import (
    ADDRESS_BYTES,
    EPCIS_BIZ_TRANSACTIONS_MAX,
    EPCIS_CORRECTIVE_EVENTS_MAX,
    EPCIS_EVENT_IDS_MAX,
    EPCIS_ILMD_FIELDS_MAX,
    EPCIS_ILMD_VALUE_BYTES_MAX,
    EPCIS_SOURCES_MAX,
    EPCIS_TIME_MS_MAX,
    EPCIS_TZ_OFFSET_MINUTES_MAX,
    EPCIS_UOM_BYTES_MAX,
    EPCIS_URI_BYTES_MAX,
    HASH_BYTES,
    MALL_VERSION,
    TX_PAYLOAD_BYTES_MAX,
    U64_MAX,
)
from ..encoding import Writer
from ..errors import DecodeError, MalformedPayload
from ..hashing import digest, domain_key
from .codec import (
    FieldReader,
    check_text,
    check_uri,
    payload_decoder,
    payload_reader,
    put_text,
    writer,
)
from .vocab import (
    ACTION_NONE,
    ACTION_OBSERVE,
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    DISPOSITIONS,
    ERROR_REASONS,
    ILMD_FIELDS,
    KIND_AGGREGATION,
    KIND_ERROR_DECLARATION,
    KIND_OBJECT,
    KIND_TRANSACTION,
    KIND_TRANSFORMATION,
    SOURCE_TYPES,
    index_of,
    word_at,
)

EVENT_ID_CONTEXT = "chainmall 2026-11 mall event id v1"
EVENT_ID_KEY = domain_key(EVENT_ID_CONTEXT)
TZ_OFFSET_BIAS = EPCIS_TZ_OFFSET_MINUTES_MAX  # stored offset = minutes + 840, in 0..1680
_UOM_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")


@dataclass(frozen=True, slots=True)
class Quantity:
    """A class id (URI) with an optional integer quantity and unit of measure (UN/CEFACT)."""

    epc_class: str
    quantity: int | None = None
    uom: str = ""


@dataclass(frozen=True, slots=True)
class BizTransaction:
    """A business document link: an optional CBV type and the document's URI."""

    uri: str
    type: str | None = None


@dataclass(frozen=True, slots=True)
class SourceDest:
    """A source or destination: CBV type (owning_party, possessing_party, location) and URI."""

    type: str
    uri: str


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """An EPCIS-shaped event as recorded (the payload of TRACE_RECORD).

    `epcs`/`quantities` are the ObjectEvent's and TransactionEvent's lists, the
    AggregationEvent's children and the TransformationEvent's inputs;
    `out_epcs`/`out_quantities` are a TransformationEvent's outputs.
    """

    kind: int
    action: int
    event_time_ms: int
    tz_offset_min: int
    biz_step: str | None = None
    disposition: str | None = None
    read_point: str = ""
    biz_location: str = ""
    parent: str = ""
    epcs: tuple[str, ...] = ()
    quantities: tuple[Quantity, ...] = ()
    out_epcs: tuple[str, ...] = ()
    out_quantities: tuple[Quantity, ...] = ()
    biz_transactions: tuple[BizTransaction, ...] = ()
    sources: tuple[SourceDest, ...] = ()
    destinations: tuple[SourceDest, ...] = ()
    ilmd: tuple[tuple[str, str], ...] = ()
    certification: str = ""

    def encode(self, check: bool = True) -> bytes:
        """The canonical payload; MalformedPayload if a rule is broken.

        `check` False skips re-reading the payload under the decoding rules, for
        events the mall builds itself from checked parts (hand-overs, deliveries).
        """
        try:
            payload = None if check else _encode_event_fast_or_none(self)
            if payload is None:  # the reference raises with the broken rule's own message
                payload = _encode_event(self, check)
        except ValueError as exc:
            raise MalformedPayload(f"trace event: {exc}") from None
        if check:
            decode_event(payload)  # one set of rules: what encodes must decode
        return payload

    def item_ids(self) -> list[str]:
        """Every item or class id the event names: parent, then inputs, then outputs."""
        ids = [self.parent] if self.parent else []
        ids += self.epcs
        ids += [q.epc_class for q in self.quantities]
        ids += self.out_epcs
        ids += [q.epc_class for q in self.out_quantities]
        return ids


@dataclass(frozen=True, slots=True)
class ErrorDeclaration:
    """An EPCIS error declaration: event `event_id` is erroneous (TRACE_DECLARE_ERROR)."""

    event_id: bytes
    declaration_time_ms: int
    tz_offset_min: int
    reason: str | None = None
    corrective_ids: tuple[bytes, ...] = field(default_factory=tuple)

    def encode(self) -> bytes:
        try:
            out = writer().u8(KIND_ERROR_DECLARATION).fixed(self.event_id, HASH_BYTES)
            out.u64(self.declaration_time_ms).u16(_tz(self.tz_offset_min))
            out.u8(0 if self.reason is None else index_of(ERROR_REASONS, self.reason))
            if len(self.corrective_ids) > EPCIS_CORRECTIVE_EVENTS_MAX:
                raise ValueError(f"more than {EPCIS_CORRECTIVE_EVENTS_MAX} corrective events")
            out.u8(len(self.corrective_ids))
            for corrective in self.corrective_ids:
                out.fixed(corrective, HASH_BYTES)
        except ValueError as exc:
            raise MalformedPayload(f"error declaration: {exc}") from None
        payload = out.getvalue()
        decode_declaration(payload)
        return payload


def _tz(minutes: int) -> int:
    if type(minutes) is not int or abs(minutes) > EPCIS_TZ_OFFSET_MINUTES_MAX:
        raise ValueError(f"time zone offset {minutes!r} min is outside -14:00..+14:00")
    return minutes + TZ_OFFSET_BIAS


def _put_uri(out: Writer, uri: str, what: str, required: bool = False,
             check: bool = True) -> None:
    if check and (uri or required):
        check_uri(uri, what)
    put_text(out, uri, EPCIS_URI_BYTES_MAX)


def _put_quantities(out: Writer, quantities: tuple[Quantity, ...], what: str,
                    check: bool) -> None:
    out.u8(len(quantities))
    for quantity in quantities:
        _put_uri(out, quantity.epc_class, f"{what} class", True, check)
        if quantity.quantity is None:
            if quantity.uom:
                raise ValueError(f"{what}: a unit without a quantity")
            out.u8(0)
        else:
            out.u8(1).u64(quantity.quantity)
            put_text(out, quantity.uom, EPCIS_UOM_BYTES_MAX)


def _encode_event(event: TraceEvent, check: bool = True) -> bytes:
    """The payload bytes; `check` False skips the URI rules (parts checked already)."""
    out = writer().u8(event.kind).u8(event.action).u64(event.event_time_ms)
    out.u16(_tz(event.tz_offset_min))
    out.u8(0 if event.biz_step is None else index_of(BIZ_STEPS, event.biz_step))
    out.u8(0 if event.disposition is None else index_of(DISPOSITIONS, event.disposition))
    _put_uri(out, event.read_point, "read point", False, check)
    _put_uri(out, event.biz_location, "business location", False, check)
    _put_uri(out, event.parent, "parent", False, check)
    out.u8(len(event.epcs))
    for uri in event.epcs:
        _put_uri(out, uri, "epc", True, check)
    _put_quantities(out, event.quantities, "quantity", check)
    out.u8(len(event.out_epcs))
    for uri in event.out_epcs:
        _put_uri(out, uri, "output epc", True, check)
    _put_quantities(out, event.out_quantities, "output quantity", check)
    out.u8(len(event.biz_transactions))
    for link in event.biz_transactions:
        out.u8(0 if link.type is None else index_of(BIZ_TRANSACTION_TYPES, link.type))
        _put_uri(out, link.uri, "business transaction", True, check)
    for entries in (event.sources, event.destinations):
        out.u8(len(entries))
        for entry in entries:
            out.u8(index_of(SOURCE_TYPES, entry.type))
            _put_uri(out, entry.uri, "source/destination", True, check)
    out.u8(len(event.ilmd))
    for name, value in event.ilmd:
        out.u8(index_of(ILMD_FIELDS, name))
        put_text(out, value, EPCIS_ILMD_VALUE_BYTES_MAX)
    _put_uri(out, event.certification, "certification", False, check)
    return out.getvalue()


def _read_uris(reader: FieldReader, what: str) -> tuple[str, ...]:
    count = reader.u8(f"{what} count")
    return tuple(reader.text(EPCIS_URI_BYTES_MAX, what, check_uri, low=1) for _ in range(count))


def _read_quantities(reader: FieldReader, what: str) -> tuple[Quantity, ...]:
    items = []
    for _ in range(reader.u8(f"{what} count")):
        uri = reader.text(EPCIS_URI_BYTES_MAX, f"{what} class", check_uri, low=1)
        flag = reader.u8(f"{what} flag")
        if flag == 0:
            items.append(Quantity(uri))
            continue
        if flag != 1:
            raise reader.fail(f"{what}: quantity flag {flag} is not 0 or 1")
        amount = reader.u64(f"{what} quantity")
        uom = reader.sized(1, EPCIS_UOM_BYTES_MAX, f"{what} unit")
        if uom and (len(uom) < 2 or not _UOM_CHARS.issuperset(uom)):
            raise reader.fail(f"{what}: unit {uom!r} is not 2-3 of A-Z, 0-9")
        items.append(Quantity(uri, amount, uom.decode("ascii")))
    return tuple(items)


def _read_sources(reader: FieldReader, what: str) -> tuple[SourceDest, ...]:
    count = reader.u8(f"{what} count")
    if count > EPCIS_SOURCES_MAX:
        raise reader.fail(f"more than {EPCIS_SOURCES_MAX} {what} entries")
    entries = []
    for _ in range(count):
        kind = reader.u8(f"{what} type")
        try:
            word = word_at(SOURCE_TYPES, kind)
        except ValueError as exc:
            raise reader.fail(f"{what} type: {exc}") from None
        entries.append(SourceDest(word, reader.text(EPCIS_URI_BYTES_MAX, what, check_uri, 1)))
    return tuple(entries)


def _vocab(reader: FieldReader, words: tuple[str, ...], what: str) -> str | None:
    index = reader.u8(what)
    if index == 0:
        return None
    try:
        return word_at(words, index)
    except ValueError as exc:
        raise reader.fail(f"{what}: {exc}") from None


def _read_event(reader: FieldReader, kind: int) -> TraceEvent:
    action = reader.u8("action")
    time_ms = reader.u64("event time")
    if time_ms > EPCIS_TIME_MS_MAX:
        raise reader.fail("the event time is past year 9999")
    tz = reader.u16("time zone offset")
    if tz > 2 * TZ_OFFSET_BIAS:
        raise reader.fail(f"time zone offset {tz} is over {2 * TZ_OFFSET_BIAS}")
    biz_step = _vocab(reader, BIZ_STEPS, "bizStep")
    disposition = _vocab(reader, DISPOSITIONS, "disposition")
    read_point = reader.text(EPCIS_URI_BYTES_MAX, "read point", check_uri)
    biz_location = reader.text(EPCIS_URI_BYTES_MAX, "business location", check_uri)
    parent = reader.text(EPCIS_URI_BYTES_MAX, "parent", check_uri)
    epcs = _read_uris(reader, "epc")
    quantities = _read_quantities(reader, "quantity")
    out_epcs = _read_uris(reader, "output epc")
    out_quantities = _read_quantities(reader, "output quantity")
    links = []
    count = reader.u8("business transaction count")
    if count > EPCIS_BIZ_TRANSACTIONS_MAX:
        raise reader.fail(f"more than {EPCIS_BIZ_TRANSACTIONS_MAX} business transactions")
    for _ in range(count):
        link_type = _vocab(reader, BIZ_TRANSACTION_TYPES, "business transaction type")
        links.append(BizTransaction(
            reader.text(EPCIS_URI_BYTES_MAX, "business transaction", check_uri, 1), link_type))
    sources = _read_sources(reader, "source")
    destinations = _read_sources(reader, "destination")
    ilmd = []
    count = reader.u8("ilmd count")
    if count > EPCIS_ILMD_FIELDS_MAX:
        raise reader.fail(f"more than {EPCIS_ILMD_FIELDS_MAX} lot data fields")
    for _ in range(count):
        name = _vocab(reader, ILMD_FIELDS, "ilmd field")
        if name is None:
            raise reader.fail("ilmd field 0 is not a field")
        ilmd.append((name, reader.text(EPCIS_ILMD_VALUE_BYTES_MAX, "ilmd value", low=1)))
    certification = reader.text(EPCIS_URI_BYTES_MAX, "certification", check_uri)
    event = TraceEvent(kind, action, time_ms, tz - TZ_OFFSET_BIAS, biz_step, disposition,
                       read_point, biz_location, parent, epcs, quantities, out_epcs,
                       out_quantities, tuple(links), sources, destinations, tuple(ilmd),
                       certification)
    _check_shape(event, reader)
    return event


def _check_shape(event: TraceEvent, reader: FieldReader) -> None:
    """The per-kind rules of docs/mall.md section 6 (which lists an event may fill)."""
    kind, action = event.kind, event.action
    inputs = len(event.epcs) + len(event.quantities)
    outputs = len(event.out_epcs) + len(event.out_quantities)
    if kind == KIND_TRANSFORMATION:
        if action != ACTION_NONE:
            raise reader.fail("a TransformationEvent has no action (0)")
        if inputs == 0 or outputs == 0:
            raise reader.fail("a TransformationEvent needs at least one input and one output")
        if event.parent:
            raise reader.fail("a TransformationEvent has no parent")
    else:
        if not 1 <= action <= 3:
            raise reader.fail(f"action {action} is not ADD (1), OBSERVE (2) or DELETE (3)")
        if outputs:
            raise reader.fail("only a TransformationEvent has outputs")
        if inputs == 0:
            raise reader.fail("the event names no item or class")
    if kind == KIND_OBJECT and event.parent:
        raise reader.fail("an ObjectEvent has no parent")
    if kind == KIND_AGGREGATION and not event.parent:
        raise reader.fail("an AggregationEvent needs a parent")
    if kind == KIND_TRANSACTION and not event.biz_transactions:
        raise reader.fail("a TransactionEvent needs at least one business transaction")
    if event.ilmd and not (kind == KIND_TRANSFORMATION
                           or (kind == KIND_OBJECT and action == 1)):
        raise reader.fail("lot data (ilmd) only on an ObjectEvent ADD or a TransformationEvent")
    ids = event.item_ids()
    if len(ids) > EPCIS_EVENT_IDS_MAX:
        raise reader.fail(f"the event names more than {EPCIS_EVENT_IDS_MAX} ids")
    if len(set(ids)) != len(ids):
        raise reader.fail("an id appears twice in the event")
    names = [name for name, _ in event.ilmd]
    if len(set(names)) != len(names):
        raise reader.fail("a lot data field appears twice")


def _decode_event_payload(reader: FieldReader) -> TraceEvent:
    kind = reader.u8("kind")
    if kind not in (KIND_OBJECT, KIND_AGGREGATION, KIND_TRANSFORMATION, KIND_TRANSACTION):
        raise reader.fail(f"kind {kind} is not an event kind (1-4)")
    event = _read_event(reader, kind)
    reader.finish()
    return event


@payload_decoder
def decode_event(payload: bytes) -> TraceEvent:
    """A TRACE_RECORD payload; MalformedPayload unless canonical and well-shaped."""
    if len(payload) > TX_PAYLOAD_BYTES_MAX:
        raise MalformedPayload(f"trace event: {len(payload)} bytes, limit {TX_PAYLOAD_BYTES_MAX}")
    event = _decode_event_fast_or_none(payload)
    if event is not None:
        return event
    return _decode_event_payload(payload_reader(payload, "trace event"))  # with its errors


def decode_declaration(payload: bytes, error: type[Exception] = MalformedPayload,
                       ) -> ErrorDeclaration:
    """A TRACE_DECLARE_ERROR payload; MalformedPayload (or `error`) unless canonical."""
    try:
        reader = FieldReader(payload, "error declaration", error)
        kind = reader.u8("kind")
        if kind != KIND_ERROR_DECLARATION:
            raise reader.fail(f"kind {kind} is not an error declaration (5)")
        return _read_declaration(reader)
    except DecodeError as exc:
        if error is DecodeError:
            raise
        raise error(str(exc)) from None


def _read_declaration(reader: FieldReader) -> ErrorDeclaration:
    event_id = reader.hash("event id")
    time_ms = reader.u64("declaration time")
    if time_ms > EPCIS_TIME_MS_MAX:
        raise reader.fail("the declaration time is past year 9999")
    tz = reader.u16("time zone offset")
    if tz > 2 * TZ_OFFSET_BIAS:
        raise reader.fail(f"time zone offset {tz} is over {2 * TZ_OFFSET_BIAS}")
    reason = _vocab(reader, ERROR_REASONS, "reason")
    count = reader.u8("corrective count")
    if count > EPCIS_CORRECTIVE_EVENTS_MAX:
        raise reader.fail(f"more than {EPCIS_CORRECTIVE_EVENTS_MAX} corrective events")
    ids = tuple(reader.hash("corrective event id") for _ in range(count))
    if len(set(ids)) != len(ids) or event_id in ids:
        raise reader.fail("corrective event ids repeat, or name the erroneous event")
    reader.finish()
    return ErrorDeclaration(event_id, time_ms, tz - TZ_OFFSET_BIAS, reason, ids)


def event_id_of(recorder: bytes, payload: bytes) -> bytes:
    """The id of an event or declaration: keyed BLAKE3 of `recorder || payload`."""
    assert len(recorder) == ADDRESS_BYTES
    return digest(recorder + payload, EVENT_ID_KEY)


# --- the stored record ---------------------------------------------------------------


_RECORD = struct.Struct(">BQQ32s20s")  # version, height, block time, tx id, recorder


class EventRecord(NamedTuple):
    """An event as stored under `keys.event(id)`: where the chain recorded it, and its form.

    `payload` is the canonical payload (an event, kind 1-4, or a declaration,
    kind 5); `event_id` is recomputed from `recorder || payload` on decode.
    """

    height: int
    block_time_ms: int
    tx_id: bytes
    recorder: bytes
    payload: bytes

    @property
    def event_id(self) -> bytes:
        return event_id_of(self.recorder, self.payload)

    @property
    def kind(self) -> int:
        return self.payload[1]

    def event(self) -> TraceEvent:
        """The event (DecodeError if the record holds a declaration or a bad payload)."""
        if self.kind == KIND_ERROR_DECLARATION:
            raise DecodeError("event record: holds an error declaration")
        try:
            return decode_event(self.payload)
        except MalformedPayload as exc:
            raise DecodeError(f"event record: {exc}") from None

    def declaration(self) -> ErrorDeclaration:
        return decode_declaration(self.payload, DecodeError)

    def encode(self) -> bytes:
        if len(self.payload) > TX_PAYLOAD_BYTES_MAX:
            raise ValueError("an event payload is over TX_PAYLOAD_BYTES_MAX")
        return b"".join((_RECORD.pack(MALL_VERSION, *self[:4]),
                         len(self.payload).to_bytes(2, "big"), self.payload))


def decode_event_record(value: bytes, check_payload: bool = True) -> EventRecord:
    """Strictly decode a stored event record; with `check_payload` its payload is decoded
    too (a reader that decodes the event anyway passes False and does it once)."""
    reader = FieldReader(value, "event record", DecodeError, _RECORD)
    record = EventRecord(*reader.head[1:], reader.sized(2, TX_PAYLOAD_BYTES_MAX, "payload"))
    reader.finish()
    if len(record.payload) < 2:
        raise DecodeError("event record: payload too short")
    if check_payload:
        if record.kind == KIND_ERROR_DECLARATION:
            record.declaration()
        else:
            record.event()
    return record


def handover_event(item_uri: str, is_class: bool, time_ms: int, tz_offset_min: int,
                   biz_step: str, disposition: str | None, read_point: str,
                   biz_location: str, source_uri: str, destination_uri: str,
                   biz_transactions: tuple[BizTransaction, ...] = ()) -> TraceEvent:
    """The ObjectEvent OBSERVE an accepted hand-over records (docs/mall.md section 7)."""
    return TraceEvent(
        KIND_OBJECT, ACTION_OBSERVE, time_ms, tz_offset_min, biz_step, disposition,
        read_point, biz_location,
        epcs=() if is_class else (item_uri,),
        quantities=(Quantity(item_uri),) if is_class else (),
        biz_transactions=biz_transactions,
        sources=(SourceDest("possessing_party", source_uri),),
        destinations=(SourceDest("possessing_party", destination_uri),))


DOCUMENT_URI_PREFIX = "urn:chainmall:doc:blake3:"


def document_link(document: bytes, link_type: str | None = None) -> BizTransaction:
    """A TransactionEvent's link to a business document by its BLAKE3 hash (the document
    stays off chain): `urn:chainmall:doc:blake3:<hex>` with an optional CBV type."""
    return BizTransaction(DOCUMENT_URI_PREFIX + digest(document).hex(), link_type)


def check_time(time_ms: int) -> None:
    """A time in ms must be a u64."""
    if type(time_ms) is not int or not 0 <= time_ms <= U64_MAX:
        raise ValueError("a time is a u64 of ms since the Unix epoch")


# --- the fast path (mall-built events) ------------------------------------------------

_EVENT_HEAD = struct.Struct(">BBBQHBB")  # version, kind, action, time, tz, bizStep, disposition
_QUANTITY = struct.Struct(">BQ")  # flag 1, quantity
_STEP_CODES = {word: index + 1 for index, word in enumerate(BIZ_STEPS)}
_DISPOSITION_CODES = {word: index + 1 for index, word in enumerate(DISPOSITIONS)}
_LINK_CODES = {word: index + 1 for index, word in enumerate(BIZ_TRANSACTION_TYPES)}
_SOURCE_CODES = {word: index + 1 for index, word in enumerate(SOURCE_TYPES)}
_ILMD_CODES = {word: index + 1 for index, word in enumerate(ILMD_FIELDS)}
_LENGTHS = [bytes([n]) for n in range(256)]  # a u8 length or count, as bytes
_EMPTY_TEXT = _LENGTHS[0]


def _fast_text(parts: list[bytes], text: str, max_bytes: int) -> None:
    raw = text.encode("utf-8")
    if len(raw) > max_bytes:
        raise ValueError("over the limit")
    parts.append(_LENGTHS[len(raw)])
    parts.append(raw)


def _fast_quantities(parts: list[bytes], quantities: tuple[Quantity, ...]) -> None:
    parts.append(_LENGTHS[len(quantities)])
    for quantity in quantities:
        _fast_text(parts, quantity.epc_class, EPCIS_URI_BYTES_MAX)
        if quantity.quantity is None:
            if quantity.uom:
                raise ValueError("a unit without a quantity")
            parts.append(_EMPTY_TEXT)
        else:
            if type(quantity.quantity) is not int:
                raise TypeError("a quantity is an int")
            parts.append(_QUANTITY.pack(1, quantity.quantity))
            _fast_text(parts, quantity.uom, EPCIS_UOM_BYTES_MAX)


def _encode_event_fast_or_none(event: TraceEvent) -> bytes | None:
    """`_encode_event_fast`, or None where it finds a rule broken."""
    try:
        return _encode_event_fast(event)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, struct.error):
        return None


def _encode_event_fast(event: TraceEvent) -> bytes:
    """`_encode_event(event, check=False)`, the same bytes, built in one pass of parts;
    any rule it finds broken raises (the caller then runs the reference for the error)."""
    kind, action, time_ms, tz = event.kind, event.action, event.event_time_ms, \
        event.tz_offset_min
    if type(kind) is not int or type(action) is not int or type(time_ms) is not int \
            or type(tz) is not int or abs(tz) > EPCIS_TZ_OFFSET_MINUTES_MAX:
        raise TypeError("a field is not an int in range")
    step, disposition = event.biz_step, event.disposition
    parts = [_EVENT_HEAD.pack(MALL_VERSION, kind, action, time_ms, tz + TZ_OFFSET_BIAS,
                              0 if step is None else _STEP_CODES[step],
                              0 if disposition is None else _DISPOSITION_CODES[disposition])]
    _fast_text(parts, event.read_point, EPCIS_URI_BYTES_MAX)
    _fast_text(parts, event.biz_location, EPCIS_URI_BYTES_MAX)
    _fast_text(parts, event.parent, EPCIS_URI_BYTES_MAX)
    for uris, quantities in ((event.epcs, event.quantities),
                             (event.out_epcs, event.out_quantities)):
        parts.append(_LENGTHS[len(uris)])
        for uri in uris:
            _fast_text(parts, uri, EPCIS_URI_BYTES_MAX)
        _fast_quantities(parts, quantities)
    parts.append(_LENGTHS[len(event.biz_transactions)])
    for link in event.biz_transactions:
        parts.append(_EMPTY_TEXT if link.type is None else _LENGTHS[_LINK_CODES[link.type]])
        _fast_text(parts, link.uri, EPCIS_URI_BYTES_MAX)
    for entries in (event.sources, event.destinations):
        parts.append(_LENGTHS[len(entries)])
        for entry in entries:
            parts.append(_LENGTHS[_SOURCE_CODES[entry.type]])
            _fast_text(parts, entry.uri, EPCIS_URI_BYTES_MAX)
    parts.append(_LENGTHS[len(event.ilmd)])
    for name, value in event.ilmd:
        parts.append(_LENGTHS[_ILMD_CODES[name]])
        _fast_text(parts, value, EPCIS_ILMD_VALUE_BYTES_MAX)
    _fast_text(parts, event.certification, EPCIS_URI_BYTES_MAX)
    return b"".join(parts)


class _Irregular(Exception):
    """The fast decoder met something it leaves to the reference decoder."""


class _ShapeRules:
    """What `_check_shape` needs of a reader to report a broken rule."""

    @staticmethod
    def fail(message: str) -> Exception:
        return _Irregular(message)


_SHAPE_RULES = _ShapeRules()
_KINDS = (KIND_OBJECT, KIND_AGGREGATION, KIND_TRANSFORMATION, KIND_TRANSACTION)
_U64_AT = struct.Struct(">Q")


def _scan_uri(data: bytes, pos: int, required: bool) -> tuple[str, int]:
    """A u8-sized URI field at `pos` (empty allowed unless `required`); the text and the
    position after it."""
    size = data[pos]
    end = pos + 1 + size
    if size > EPCIS_URI_BYTES_MAX or end > len(data):
        raise _Irregular
    if size == 0:
        if required:
            raise _Irregular
        return "", end
    text = data[pos + 1:end].decode("utf-8")
    check_uri(text, "uri")
    return text, end


def _scan_word(words: tuple[str, ...], index: int) -> str | None:
    if index == 0:
        return None
    if index > len(words):
        raise _Irregular
    return words[index - 1]


_T = TypeVar("_T")
_U8_MAX = 255


def _scan_list(data: bytes, pos: int, limit: int,
               scan_item: Callable[[bytes, int], tuple[_T, int]]) -> tuple[tuple[_T, ...], int]:
    """A u8 count at `pos` (at most `limit`) and that many items read by `scan_item`; the
    items and the position after them."""
    count = data[pos]
    pos += 1
    if count > limit:
        raise _Irregular
    found = []
    for _ in range(count):
        item, pos = scan_item(data, pos)
        found.append(item)
    return tuple(found), pos


def _scan_required_uri(data: bytes, pos: int) -> tuple[str, int]:
    return _scan_uri(data, pos, True)


def _scan_quantity(data: bytes, pos: int) -> tuple[Quantity, int]:
    uri, pos = _scan_uri(data, pos, True)
    flag = data[pos]
    pos += 1
    if flag == 0:
        return Quantity(uri), pos
    if flag != 1:
        raise _Irregular
    amount = _U64_AT.unpack_from(data, pos)[0]
    size = data[pos + 8]
    pos += 9
    uom = data[pos:pos + size]
    if size > EPCIS_UOM_BYTES_MAX or len(uom) != size or \
            (uom and (size < 2 or not _UOM_CHARS.issuperset(uom))):
        raise _Irregular
    return Quantity(uri, amount, uom.decode("ascii")), pos + size


def _scan_link(data: bytes, pos: int) -> tuple[BizTransaction, int]:
    link_type = _scan_word(BIZ_TRANSACTION_TYPES, data[pos])
    uri, pos = _scan_uri(data, pos + 1, True)
    return BizTransaction(uri, link_type), pos


def _scan_party(data: bytes, pos: int) -> tuple[SourceDest, int]:
    word = _scan_word(SOURCE_TYPES, data[pos])
    if word is None:
        raise _Irregular
    uri, pos = _scan_uri(data, pos + 1, True)
    return SourceDest(word, uri), pos


def _scan_ilmd_field(data: bytes, pos: int) -> tuple[tuple[str, str], int]:
    name = _scan_word(ILMD_FIELDS, data[pos])
    size = data[pos + 1]
    end = pos + 2 + size
    if name is None or size == 0 or size > EPCIS_ILMD_VALUE_BYTES_MAX or end > len(data):
        raise _Irregular
    value = data[pos + 2:end].decode("utf-8")
    check_text(value, "ilmd value")
    return (name, value), end


def _decode_event_fast(data: bytes) -> TraceEvent:
    """`decode_event` of a canonical, well-shaped payload, read in place without a Reader;
    `_Irregular` (or IndexError, struct.error, UnicodeDecodeError, ValueError) on
    anything else, which the caller leaves to the reference decoder and its messages."""
    version, kind, action, time_ms, tz, step, disposition = _EVENT_HEAD.unpack_from(data)
    if version != MALL_VERSION or kind not in _KINDS or time_ms > EPCIS_TIME_MS_MAX \
            or tz > 2 * TZ_OFFSET_BIAS:
        raise _Irregular
    read_point, pos = _scan_uri(data, _EVENT_HEAD.size, False)
    biz_location, pos = _scan_uri(data, pos, False)
    parent, pos = _scan_uri(data, pos, False)
    epcs, pos = _scan_list(data, pos, _U8_MAX, _scan_required_uri)
    quantities, pos = _scan_list(data, pos, _U8_MAX, _scan_quantity)
    out_epcs, pos = _scan_list(data, pos, _U8_MAX, _scan_required_uri)
    out_quantities, pos = _scan_list(data, pos, _U8_MAX, _scan_quantity)
    links, pos = _scan_list(data, pos, EPCIS_BIZ_TRANSACTIONS_MAX, _scan_link)
    sources, pos = _scan_list(data, pos, EPCIS_SOURCES_MAX, _scan_party)
    destinations, pos = _scan_list(data, pos, EPCIS_SOURCES_MAX, _scan_party)
    ilmd, pos = _scan_list(data, pos, EPCIS_ILMD_FIELDS_MAX, _scan_ilmd_field)
    certification, pos = _scan_uri(data, pos, False)
    if pos != len(data):
        raise _Irregular
    event = TraceEvent(kind, action, time_ms, tz - TZ_OFFSET_BIAS,
                       _scan_word(BIZ_STEPS, step), _scan_word(DISPOSITIONS, disposition),
                       read_point, biz_location, parent, epcs, quantities, out_epcs,
                       out_quantities, links, sources, destinations, ilmd,
                       certification)
    _check_shape(event, _SHAPE_RULES)  # type: ignore[arg-type]
    return event


def _decode_event_fast_or_none(payload: bytes) -> TraceEvent | None:
    """`_decode_event_fast`, or None where the payload is not what it reads."""
    if type(payload) is not bytes:
        return None
    try:
        return _decode_event_fast(payload)
    except (_Irregular, IndexError, struct.error, UnicodeDecodeError, ValueError):
        return None
