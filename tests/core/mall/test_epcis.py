"""EPCIS 2.0: the official examples validate and import (or are refused with the reason),
times and offsets round-trip, exports of every event kind validate against the schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from chainmall.core.constants import TX_MALL_TRACE_DECLARE_ERROR, TX_MALL_TRACE_RECORD
from chainmall.core.errors import EpcisError
from chainmall.core.mall.epcis import (
    export_event,
    format_time,
    import_document,
    import_event,
    parse_time,
)
from chainmall.core.mall.events import (
    BizTransaction,
    ErrorDeclaration,
    EventRecord,
    Quantity,
    SourceDest,
    TraceEvent,
)
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_DELETE,
    ACTION_NONE,
    ACTION_OBSERVE,
    KIND_AGGREGATION,
    KIND_ERROR_DECLARATION,
    KIND_OBJECT,
    KIND_TRANSACTION,
    KIND_TRANSFORMATION,
)
from hypothesis import given
from hypothesis import strategies as st

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "epcis"
EXAMPLES = sorted(VECTORS.glob("*.jsonld"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((VECTORS / "EPCIS-JSON-Schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def document(events: list[dict]) -> dict:
    return {"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
                         {"chainmall": "urn:chainmall:epcis:"}],
            "type": "EPCISDocument", "schemaVersion": "2.0",
            "creationDate": "2026-01-01T00:00:00.000+00:00",
            "epcisBody": {"eventList": events}}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_official_examples_validate(validator, path: Path) -> None:
    assert list(validator.iter_errors(json.loads(path.read_text()))) == []


IMPORTS = {
    "ErrorDeclarationAndCorrectiveEvent.jsonld": (2, 1),
    "Example_9.6.1-ObjectEvent.jsonld": (2, 0),
    "Example_9.6.4-TransformationEvent.jsonld": (1, 0),
}
REFUSED = {
    "Example-TransactionEvents-2020_07_03y.jsonld": "not a CBV 2.0 word",
    "Example_9.6.3-AggregationEvent.jsonld": "not an integer",
}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_official_examples_import_or_are_refused_with_the_reason(path: Path) -> None:
    text = path.read_text()
    if path.name in REFUSED:
        with pytest.raises(EpcisError, match=REFUSED[path.name]):
            import_document(text, allow_extensions=True)
        return
    with pytest.raises(EpcisError, match=r"not kept|allow extensions"):
        import_document(text)  # vendor extensions are refused unless allowed
    imported = import_document(text, allow_extensions=True)
    assert (len(imported.events), len(imported.declarations)) == IMPORTS[path.name]
    assert imported.dropped
    payloads = imported.payloads(b"\x07" * 20)
    assert [tx_type for tx_type, _ in payloads].count(TX_MALL_TRACE_RECORD) == \
        len(imported.events)
    for tx_type, payload in payloads:
        if tx_type == TX_MALL_TRACE_DECLARE_ERROR:
            assert payload[1] == KIND_ERROR_DECLARATION


def test_the_error_declaration_example_maps_its_corrective_event() -> None:
    imported = import_document((VECTORS / "ErrorDeclarationAndCorrectiveEvent.jsonld")
                               .read_text(), allow_extensions=True)
    index, declaration, corrective = imported.declarations[0]
    assert (index, corrective, declaration.reason) == (0, [1], "incorrect_data")
    assert declaration.declaration_time_ms == parse_time("2020-01-15T00:00:00+01:00", "t")
    assert declaration.tz_offset_min == 60
    _, payload = imported.payloads(b"\x07" * 20)[-1]
    ids = [p for t, p in imported.payloads(b"\x07" * 20) if t == TX_MALL_TRACE_RECORD]
    from chainmall.core.mall.events import decode_declaration, event_id_of
    decoded = decode_declaration(payload)
    assert decoded.event_id == event_id_of(b"\x07" * 20, ids[0])
    assert decoded.corrective_ids == (event_id_of(b"\x07" * 20, ids[1]),)


ALL_KINDS = [
    TraceEvent(KIND_OBJECT, ACTION_ADD, 1_767_225_600_123, -300, "commissioning", "active",
               "urn:epc:id:sgln:1.2.3", "urn:epc:id:sgln:1.2.0",
               epcs=("urn:epc:id:sgtin:1.2.3",), quantities=(Quantity("urn:epc:class:x:1", 5,
                                                                      "KGM"),),
               ilmd=(("cbvmda:lotNumber", "L1"), ("chainmall:fineness", "925")),
               certification="urn:chainmall:hallmark:925"),
    TraceEvent(KIND_AGGREGATION, ACTION_ADD, 1, 0, "packing", parent="urn:epc:id:sscc:1.1",
               epcs=("urn:epc:id:sgtin:1.2.3",), quantities=(Quantity("urn:epc:class:x:2"),)),
    TraceEvent(KIND_AGGREGATION, ACTION_DELETE, 2, 840, "unpacking",
               parent="urn:epc:id:sscc:1.1", epcs=("urn:epc:id:sgtin:1.2.3",)),
    TraceEvent(KIND_TRANSFORMATION, ACTION_NONE, 3, -840, "commissioning",
               quantities=(Quantity("urn:epc:class:lgtin:1.2.L", 250, "GRM"),),
               out_epcs=("urn:epc:id:sgtin:1.2.4", "urn:epc:id:sgtin:1.2.5"),
               out_quantities=(Quantity("urn:epc:idpat:sgtin:1.2.*", 2),)),
    TraceEvent(KIND_TRANSACTION, ACTION_OBSERVE, 4, 60, "shipping", "in_transit",
               parent="urn:epc:id:sscc:1.1", epcs=("urn:epc:id:sgtin:1.2.3",),
               biz_transactions=(BizTransaction("urn:chainmall:order:ab", "po"),
                                 BizTransaction("urn:chainmall:tx:cd")),
               sources=(SourceDest("possessing_party", "urn:chainmall:party:cm1a"),),
               destinations=(SourceDest("location", "urn:epc:id:sgln:9.9.9"),)),
]


def test_every_event_kind_exports_valid_epcis_and_imports_back(validator) -> None:
    recorder = b"\x05" * 20
    records = [EventRecord(n + 1, 1_767_225_600_000 + n, bytes([n]) * 32, recorder,
                           event.encode()) for n, event in enumerate(ALL_KINDS)]
    declaration = EventRecord(9, 1_767_225_700_000, b"\x09" * 32, recorder, ErrorDeclaration(
        records[0].event_id, 1_767_225_700_000, 60, "did_not_occur",
        (records[1].event_id,)).encode())
    exported = [export_event(records[0], declaration)] + [export_event(r) for r in records[1:]]
    assert list(validator.iter_errors(document(exported))) == []
    assert exported[0]["errorDeclaration"]["reason"] == "did_not_occur"
    assert exported[0]["eventTime"] == "2025-12-31T19:00:00.123-05:00"  # 00:00:00.123Z
    assert exported[1]["childEPCs"] == ["urn:epc:id:sgtin:1.2.3"]
    assert exported[3]["outputQuantityList"] == [{"epcClass": "urn:epc:idpat:sgtin:1.2.*",
                                                  "quantity": 2}]
    imported = import_document(document(exported))
    assert imported.events == ALL_KINDS
    assert imported.dropped == []


@given(time_ms=st.integers(0, 253_402_250_399_999), offset=st.integers(-840, 840))
def test_times_round_trip_in_any_offset(time_ms: int, offset: int) -> None:
    text = format_time(time_ms, offset)
    assert parse_time(text, "t") == time_ms


@pytest.mark.parametrize("field,value,reason", [
    ("eventTime", "2020-01-01T00:00:00.0001Z", "finer than a millisecond"),
    ("eventTime", "2020-13-01T00:00:00Z", "month must be in 1..12"),
    ("eventTime", "yesterday", "not an RFC 3339"),
    ("eventTimeZoneOffset", "+15:00", r"outside -14:00..\+14:00"),
    ("bizStep", "urn:example:bizstep:x", "not a CBV 2.0 word"),
    ("disposition", "lost", "not a CBV 2.0 word"),
    ("action", "MOVE", "not ADD, OBSERVE or DELETE"),
    ("epcList", ["not a uri"], "not a URI"),
    ("quantityList", [{"epcClass": "urn:a:b", "quantity": 1.5}], "not an integer"),
    ("readPoint", "urn:a:b", "expected"),
    ("colour", "red", "unknown field"),
    ("sensorElementList", [], "not kept"),
])
def test_an_import_refuses_what_it_cannot_keep(field: str, value, reason: str) -> None:
    event = {"type": "ObjectEvent", "action": "OBSERVE", "eventTime": "2020-01-01T00:00:00Z",
             "eventTimeZoneOffset": "+00:00", "epcList": ["urn:a:b"], field: value}
    with pytest.raises(EpcisError, match=reason):
        import_event(event)


def test_an_import_accepts_cbv_uris_and_integral_decimals() -> None:
    event = import_event({
        "type": "ObjectEvent", "action": "OBSERVE", "eventTime": "2020-01-01T01:00:00+01:00",
        "eventTimeZoneOffset": "+01:00", "epcList": ["urn:a:b"],
        "bizStep": "urn:epcglobal:cbv:bizstep:shipping",
        "disposition": "https://ref.gs1.org/cbv/Disp-in_transit",
        "quantityList": [{"epcClass": "urn:a:c", "quantity": 3.0, "uom": "KGM"}]})
    assert (event.biz_step, event.disposition, event.event_time_ms) == (
        "shipping", "in_transit", 1_577_836_800_000)
    assert event.quantities == (Quantity("urn:a:c", 3, "KGM"),)
    assert event.action == ACTION_OBSERVE
