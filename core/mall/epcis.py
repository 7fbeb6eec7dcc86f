"""EPCIS 2.0 JSON-LD: export a trace as an EPCISDocument, import EPCIS JSON events.

Export renders each recorded event in the standard's JSON form (bare CBV
words, `eventTime` in the event's own offset, `recordTime` the block time),
with chainmall's facts as extension properties in the `chainmall:` namespace
(`urn:chainmall:epcis:`): who recorded it, at what height, by which tx. An
event declared erroneous carries the standard's `errorDeclaration`. The
document validates against the EPCIS 2.0 JSON Schema (tests check it).

Import maps EPCIS JSON events onto TRACE_RECORD payloads (and error
declarations onto TRACE_DECLARE_ERROR payloads) for a recorder to sign.
What chainmall cannot record faithfully is refused with a one-line reason:
non-CBV bizSteps and dispositions (they cannot be role-gated), non-integer
quantities, unknown lot data fields; extension fields are refused unless
`allow_extensions`, which drops them and lists what it dropped.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from ..constants import (
    EPCIS_TIME_MS_MAX,
    EPCIS_TZ_OFFSET_MINUTES_MAX,
    HASH_BYTES,
    TX_MALL_TRACE_DECLARE_ERROR,
    TX_MALL_TRACE_RECORD,
    U64_MAX,
)
from ..errors import EpcisError, MalformedPayload
from .codec import address_text, check_uri
from .events import (
    BizTransaction,
    ErrorDeclaration,
    EventRecord,
    Quantity,
    SourceDest,
    TraceEvent,
    event_id_of,
)
from .history import Trace
from .items import PARTY_URI_PREFIX, TX_URI_PREFIX
from .vocab import (
    ACTION_NAMES,
    ACTION_NONE,
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    CBV_PREFIXES,
    DISPOSITIONS,
    ERROR_REASONS,
    ILMD_FIELDS,
    KIND_AGGREGATION,
    KIND_NAMES,
    KIND_TRANSFORMATION,
    SOURCE_TYPES,
)

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
CHAINMALL_NAMESPACE = "urn:chainmall:epcis:"
EVENT_URI_PREFIX = "urn:chainmall:event:"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


# --- times ---------------------------------------------------------------------------


def format_offset(minutes: int) -> str:
    """+HH:MM of an offset in minutes."""
    sign = "-" if minutes < 0 else "+"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_time(time_ms: int, offset_min: int = 0) -> str:
    """RFC 3339 text of a time in ms, shown in the given offset (ms precision)."""
    if not 0 <= time_ms <= EPCIS_TIME_MS_MAX:
        raise ValueError(f"time {time_ms} ms is outside what EPCIS dates can show")
    moment = (_EPOCH + timedelta(milliseconds=time_ms)).astimezone(
        timezone(timedelta(minutes=offset_min)))
    text = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{time_ms % 1000:03d}"
    return text + format_offset(offset_min)


_TIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
                   r"([Zz]|[+-]\d{2}:\d{2})$")


def parse_offset(text: object, what: str) -> int:
    if not isinstance(text, str) or not re.fullmatch(r"[+-]\d{2}:\d{2}", text):
        raise EpcisError(f"{what}: {text!r} is not +HH:MM")
    minutes = int(text[1:3]) * 60 + int(text[4:6])
    if int(text[4:6]) > 59 or minutes > EPCIS_TZ_OFFSET_MINUTES_MAX:
        raise EpcisError(f"{what}: {text} is outside -14:00..+14:00")
    return -minutes if text[0] == "-" else minutes


def parse_time(text: object, what: str) -> int:
    """ms since the epoch of an RFC 3339 date-time; finer than ms must be zero digits."""
    match = _TIME.match(text) if isinstance(text, str) else None
    if match is None:
        raise EpcisError(f"{what}: {text!r} is not an RFC 3339 date-time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    fraction = fraction or ""
    if fraction[3:].strip("0"):
        raise EpcisError(f"{what}: {text} is finer than a millisecond")
    offset = 0 if zone in ("Z", "z") else parse_offset(zone, what)
    try:
        moment = datetime(int(year), int(month), int(day), int(hour), int(minute),
                          int(second), tzinfo=timezone(timedelta(minutes=offset)))
    except ValueError as exc:
        raise EpcisError(f"{what}: {text}: {exc}") from None
    millis = int((fraction + "000")[:3])
    time_ms = (moment - _EPOCH) // timedelta(milliseconds=1) + millis
    if not 0 <= time_ms <= EPCIS_TIME_MS_MAX:
        raise EpcisError(f"{what}: {text} is before 1970 or too close to the year 10000")
    return time_ms


# --- export --------------------------------------------------------------------------


def _quantities(items: tuple[Quantity, ...]) -> list[dict[str, Any]]:
    out = []
    for item in items:
        entry: dict[str, Any] = {"epcClass": item.epc_class}
        if item.quantity is not None:
            entry["quantity"] = item.quantity
            if item.uom:
                entry["uom"] = item.uom
        out.append(entry)
    return out


def event_uri(event_id: bytes) -> str:
    return EVENT_URI_PREFIX + event_id.hex()


def export_event(record: EventRecord, declaration: EventRecord | None = None) -> dict[str, Any]:
    """One recorded event in EPCIS 2.0 JSON (with its error declaration, if any)."""
    event = record.event()
    out: dict[str, Any] = {
        "type": KIND_NAMES[event.kind],
        "eventID": event_uri(record.event_id),
        "eventTime": format_time(event.event_time_ms, event.tz_offset_min),
        "eventTimeZoneOffset": format_offset(event.tz_offset_min),
        "recordTime": format_time(record.block_time_ms),
    }
    if event.kind != KIND_TRANSFORMATION:
        out["action"] = ACTION_NAMES[event.action]
    if event.kind == KIND_AGGREGATION:
        out["parentID"] = event.parent
        out["childEPCs"] = list(event.epcs)
        if event.quantities:
            out["childQuantityList"] = _quantities(event.quantities)
    elif event.kind == KIND_TRANSFORMATION:
        for name, values in (("inputEPCList", event.epcs), ("outputEPCList", event.out_epcs)):
            if values:
                out[name] = list(values)
        for name, items in (("inputQuantityList", event.quantities),
                            ("outputQuantityList", event.out_quantities)):
            if items:
                out[name] = _quantities(items)
    else:
        if event.parent:
            out["parentID"] = event.parent
        out["epcList"] = list(event.epcs)
        if event.quantities:
            out["quantityList"] = _quantities(event.quantities)
    if event.biz_step:
        out["bizStep"] = event.biz_step
    if event.disposition:
        out["disposition"] = event.disposition
    if event.read_point:
        out["readPoint"] = {"id": event.read_point}
    if event.biz_location:
        out["bizLocation"] = {"id": event.biz_location}
    if event.biz_transactions:
        out["bizTransactionList"] = [
            {"bizTransaction": link.uri} if link.type is None
            else {"type": link.type, "bizTransaction": link.uri}
            for link in event.biz_transactions]
    if event.sources:
        out["sourceList"] = [{"type": s.type, "source": s.uri} for s in event.sources]
    if event.destinations:
        out["destinationList"] = [{"type": d.type, "destination": d.uri}
                                  for d in event.destinations]
    if event.ilmd:
        out["ilmd"] = dict(event.ilmd)
    if event.certification:
        out["certificationInfo"] = event.certification
    out["chainmall:recordedBy"] = PARTY_URI_PREFIX + address_text(record.recorder)
    out["chainmall:height"] = record.height
    out["chainmall:tx"] = TX_URI_PREFIX + record.tx_id.hex()
    if declaration is not None:
        declared = declaration.declaration()
        error: dict[str, Any] = {
            "declarationTime": format_time(declared.declaration_time_ms,
                                           declared.tz_offset_min)}
        if declared.reason:
            error["reason"] = declared.reason
        if declared.corrective_ids:
            error["correctiveEventIDs"] = [event_uri(i) for i in declared.corrective_ids]
        error["chainmall:declarationID"] = event_uri(declaration.event_id)
        out["errorDeclaration"] = error
    return out


def export_trace(result: Trace) -> dict[str, Any]:
    """The trace as an EPCISDocument (JSON-LD, a dict for json.dumps).

    `creationDate` is the latest block time in the trace, so the export of the
    same trace is the same document on every node.
    """
    records = {step.event_id: step.record for step in result.steps}
    events = []
    for step in result.steps:
        if step.is_declaration:
            continue
        declaration = records.get(step.declared_by) if step.declared_by else None
        events.append(export_event(step.record, declaration))
    latest = max((step.record.block_time_ms for step in result.steps), default=0)
    return {
        "@context": [EPCIS_CONTEXT, {"chainmall": CHAINMALL_NAMESPACE}],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": format_time(latest),
        "epcisBody": {"eventList": events},
    }


# --- import --------------------------------------------------------------------------


@dataclass(slots=True)
class Imported:
    """EPCIS events mapped onto chainmall records, in document order.

    `declarations` pairs the index of an erroneous event in `events` with its
    declaration (its `event_id` and `corrective_ids` are filled in by
    `payloads`, which knows the recorder). `dropped` lists the extension
    fields that `allow_extensions` dropped.
    """

    events: list[TraceEvent] = field(default_factory=list)
    declarations: list[tuple[int, ErrorDeclaration, list[int]]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    def payloads(self, recorder: bytes) -> list[tuple[int, bytes]]:
        """(tx type, payload) to sign as `recorder`: every event, then the declarations."""
        out = [(TX_MALL_TRACE_RECORD, event.encode()) for event in self.events]
        ids = [event_id_of(recorder, payload) for _, payload in out]
        for index, declaration, corrective in self.declarations:
            filled = ErrorDeclaration(ids[index], declaration.declaration_time_ms,
                                      declaration.tz_offset_min, declaration.reason,
                                      tuple(ids[i] for i in corrective))
            out.append((TX_MALL_TRACE_DECLARE_ERROR, filled.encode()))
        return out


_COMMON = {"type", "eventTime", "eventTimeZoneOffset", "eventID", "recordTime", "@context",
           "certificationInfo", "errorDeclaration"}
_FIELDS = {
    "ObjectEvent": {"action", "epcList", "quantityList", "bizStep", "disposition", "readPoint",
                    "bizLocation", "bizTransactionList", "sourceList", "destinationList",
                    "ilmd"},
    "AggregationEvent": {"action", "parentID", "childEPCs", "childQuantityList", "bizStep",
                         "disposition", "readPoint", "bizLocation", "bizTransactionList",
                         "sourceList", "destinationList"},
    "TransformationEvent": {"inputEPCList", "inputQuantityList", "outputEPCList",
                            "outputQuantityList", "bizStep", "disposition", "readPoint",
                            "bizLocation", "bizTransactionList", "sourceList",
                            "destinationList", "ilmd"},
    "TransactionEvent": {"action", "bizTransactionList", "parentID", "epcList", "quantityList",
                         "bizStep", "disposition", "readPoint", "bizLocation", "sourceList",
                         "destinationList"},
}
# Standard fields chainmall does not keep (refused unless extensions are allowed).
_NOT_KEPT = {"sensorElementList", "persistentDisposition", "transformationID"}
# Our own export's extension fields: facts of the chain, recomputed on import, not dropped.
_OURS = {"chainmall:recordedBy", "chainmall:height", "chainmall:tx"}
_KINDS = {name: kind for kind, name in KIND_NAMES.items()}
_ACTIONS = {name: action for action, name in ACTION_NAMES.items()}


def _word(value: object, words: tuple[str, ...], family: str, what: str) -> str:
    if not isinstance(value, str):
        raise EpcisError(f"{what}: expected a string")
    for prefix in CBV_PREFIXES[family]:
        if value.startswith(prefix):
            value = value[len(prefix):]
            break
    if value not in words:
        raise EpcisError(f"{what}: {value!r} is not a CBV 2.0 word chainmall records")
    return value


def _uri(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise EpcisError(f"{what}: expected a URI string")
    try:
        return check_uri(value, what)
    except ValueError as exc:
        raise EpcisError(str(exc)) from None


def _uris(value: object, what: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise EpcisError(f"{what}: expected a list")
    return tuple(_uri(item, what) for item in value)


def _quantity_list(value: object, what: str) -> tuple[Quantity, ...]:
    if not isinstance(value, list):
        raise EpcisError(f"{what}: expected a list")
    items = []
    for entry in value:
        if not isinstance(entry, dict) or not set(entry) <= {"epcClass", "quantity", "uom"}:
            raise EpcisError(f"{what}: an entry has fields other than epcClass, quantity, uom")
        epc_class = _uri(entry.get("epcClass"), f"{what} epcClass")
        amount = entry.get("quantity")
        if amount is None:
            if "uom" in entry:
                raise EpcisError(f"{what}: a uom without a quantity")
            items.append(Quantity(epc_class))
            continue
        if isinstance(amount, float) and amount.is_integer():
            amount = int(amount)
        if type(amount) is not int or not 0 <= amount <= U64_MAX:
            raise EpcisError(f"{what}: quantity {amount!r} is not an integer in u64 (chainmall "
                             "keeps integers: scale the unit, e.g. GRM for 0.5 KGM)")
        uom = entry.get("uom", "")
        if not isinstance(uom, str) or not re.fullmatch(r"(|[A-Z0-9]{2,3})", uom):
            raise EpcisError(f"{what}: uom {uom!r} is not 2-3 of A-Z, 0-9")
        items.append(Quantity(epc_class, amount, uom))
    return tuple(items)


def _sources(value: object, key: str, what: str) -> tuple[SourceDest, ...]:
    if not isinstance(value, list):
        raise EpcisError(f"{what}: expected a list")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or set(entry) != {"type", key}:
            raise EpcisError(f"{what}: each entry is {{type, {key}}}")
        out.append(SourceDest(_word(entry["type"], SOURCE_TYPES, "sdt", f"{what} type"),
                              _uri(entry[key], what)))
    return tuple(out)


def _links(value: object) -> tuple[BizTransaction, ...]:
    if not isinstance(value, list):
        raise EpcisError("bizTransactionList: expected a list")
    out = []
    for entry in value:
        if not isinstance(entry, dict) or not set(entry) <= {"type", "bizTransaction"}:
            raise EpcisError("bizTransactionList: each entry is {type?, bizTransaction}")
        link_type = None if "type" not in entry else _word(
            entry["type"], BIZ_TRANSACTION_TYPES, "btt", "bizTransaction type")
        out.append(BizTransaction(_uri(entry.get("bizTransaction"), "bizTransaction"),
                                  link_type))
    return tuple(out)


def _ilmd(value: object, allow: bool, dropped: list[str]) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict):
        raise EpcisError("ilmd: expected an object")
    out = []
    for name, text in value.items():
        if name not in ILMD_FIELDS:
            if not allow:
                raise EpcisError(f"ilmd: field {name!r} is not one chainmall records")
            dropped.append(f"ilmd.{name}")
            continue
        if not isinstance(text, str):
            raise EpcisError(f"ilmd.{name}: expected a string")
        out.append((name, text))
    return tuple(out)


def import_event(data: dict[str, Any], allow_extensions: bool = False,
                 dropped: list[str] | None = None) -> TraceEvent:
    """One EPCIS JSON event as a TraceEvent (its errorDeclaration is not read here)."""
    dropped = [] if dropped is None else dropped
    if not isinstance(data, dict):
        raise EpcisError("an event is a JSON object")
    name = data.get("type")
    if name not in _FIELDS:
        raise EpcisError(f"event type {name!r} is not one chainmall records "
                         f"({', '.join(_FIELDS)})")
    known = _FIELDS[name] | _COMMON
    for key in list(data):
        if key not in known and key not in _OURS:
            if key in _NOT_KEPT or ":" in key:
                if not allow_extensions:
                    raise EpcisError(f"{name}: field {key!r} is not kept by chainmall "
                                     "(allow extensions to drop it)")
                dropped.append(key)
            else:
                raise EpcisError(f"{name}: unknown field {key!r}")
    kind = _KINDS[name]
    if kind == KIND_TRANSFORMATION:
        action = ACTION_NONE
    else:
        action_name = data.get("action")
        if action_name not in _ACTIONS:
            raise EpcisError(f"{name}: action {action_name!r} is not ADD, OBSERVE or DELETE")
        action = _ACTIONS[action_name]
    offset = parse_offset(data.get("eventTimeZoneOffset"), "eventTimeZoneOffset")
    time_ms = parse_time(data.get("eventTime"), "eventTime")
    fields: dict[str, Any] = {}
    if "bizStep" in data:
        fields["biz_step"] = _word(data["bizStep"], BIZ_STEPS, "bizstep", "bizStep")
    if "disposition" in data:
        fields["disposition"] = _word(data["disposition"], DISPOSITIONS, "disp", "disposition")
    for key, attr in (("readPoint", "read_point"), ("bizLocation", "biz_location")):
        if key in data:
            place = data[key]
            if not isinstance(place, dict) or set(place) != {"id"}:
                raise EpcisError(f"{key}: expected {{\"id\": URI}}")
            fields[attr] = _uri(place["id"], key)
    if "parentID" in data:
        fields["parent"] = _uri(data["parentID"], "parentID")
    lists = {"epcList": "epcs", "childEPCs": "epcs", "inputEPCList": "epcs",
             "outputEPCList": "out_epcs"}
    for key, attr in lists.items():
        if key in data:
            fields[attr] = _uris(data[key], key)
    quantity_lists = {"quantityList": "quantities", "childQuantityList": "quantities",
                      "inputQuantityList": "quantities", "outputQuantityList": "out_quantities"}
    for key, attr in quantity_lists.items():
        if key in data:
            fields[attr] = _quantity_list(data[key], key)
    if "bizTransactionList" in data:
        fields["biz_transactions"] = _links(data["bizTransactionList"])
    if "sourceList" in data:
        fields["sources"] = _sources(data["sourceList"], "source", "sourceList")
    if "destinationList" in data:
        fields["destinations"] = _sources(data["destinationList"], "destination",
                                          "destinationList")
    if "ilmd" in data:
        fields["ilmd"] = _ilmd(data["ilmd"], allow_extensions, dropped)
    if "certificationInfo" in data:
        info = data["certificationInfo"]
        if isinstance(info, list):
            if len(info) != 1:
                raise EpcisError("certificationInfo: chainmall keeps one URI")
            info = info[0]
        fields["certification"] = _uri(info, "certificationInfo")
    event = TraceEvent(kind, action, time_ms, offset, **fields)
    try:
        event.encode()
    except MalformedPayload as exc:
        raise EpcisError(f"{name}: {exc}") from None
    return event


def import_document(document: dict[str, Any] | str | bytes,
                    allow_extensions: bool = False) -> Imported:
    """Every event of an EPCISDocument (or a bare event list / single event), mapped."""
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise EpcisError(f"not JSON: {exc}") from None
    if isinstance(document, dict) and document.get("type") == "EPCISDocument":
        body = document.get("epcisBody")
        events = body.get("eventList") if isinstance(body, dict) else None
    elif isinstance(document, dict):
        events = [document]
    else:
        events = document
    if not isinstance(events, list):
        raise EpcisError("no event list (epcisBody.eventList)")
    result = Imported()
    by_id: dict[str, int] = {}
    pending: list[tuple[int, dict[str, Any]]] = []
    for index, data in enumerate(events):
        try:
            result.events.append(import_event(data, allow_extensions, result.dropped))
        except EpcisError as exc:
            raise EpcisError(f"event {index}: {exc}") from None
        if isinstance(data.get("eventID"), str):
            by_id[data["eventID"]] = index
        if "errorDeclaration" in data:
            pending.append((index, data["errorDeclaration"]))
    for index, error in pending:
        result.declarations.append(_declaration(index, error, by_id, allow_extensions,
                                                result.dropped))
    return result


def _declaration(index: int, error: object, by_id: dict[str, int], allow: bool,
                 dropped: list[str]) -> tuple[int, ErrorDeclaration, list[int]]:
    if not isinstance(error, dict):
        raise EpcisError(f"event {index}: errorDeclaration is an object")
    for key in error:
        if key not in ("declarationTime", "reason", "correctiveEventIDs",
                       "chainmall:declarationID"):
            if not allow:
                raise EpcisError(f"event {index}: errorDeclaration field {key!r} is not kept")
            dropped.append(f"errorDeclaration.{key}")
    time_ms = parse_time(error.get("declarationTime"), "declarationTime")
    match = _TIME.match(error["declarationTime"])
    assert match is not None
    zone = match.group(8)
    offset = 0 if zone in ("Z", "z") else parse_offset(zone, "declarationTime")
    reason = None if "reason" not in error else _word(error["reason"], ERROR_REASONS, "er",
                                                      "reason")
    corrective = []
    for uri in error.get("correctiveEventIDs", []):
        if uri not in by_id:
            raise EpcisError(f"event {index}: corrective event {uri!r} is not in the document")
        corrective.append(by_id[uri])
    return index, ErrorDeclaration(bytes(HASH_BYTES), time_ms, offset, reason), corrective
