"""The mall's half of the page's vectors: trace records and whole item histories.

* `record_vectors()`: the vocabularies and domain keys, item keys, event ids and
  history hashes, and item values, index entries, event records, event payloads and
  error declarations, valid and broken, each with core/mall's verdict and, when it
  decodes, what it decodes to (in web/src/mall/records.ts's field names);
* `trace_vectors()`: `mall.item_trace` answers from a node's ledger (the
  silver-jewellery story, built deterministically in a temporary directory) and
  altered copies, each with the verdict of page_verdict.py.

Used by generate_vectors.py, which writes them.
"""

from __future__ import annotations

import copy
import json
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chainmall.cli.story import CASE, LOT, RINGS
from chainmall.core.constants import HASH_BYTES, TX_PAYLOAD_BYTES_MAX
from chainmall.core.errors import DecodeError, MalformedPayload
from chainmall.core.genesis import VALIDATOR_SET_KEY
from chainmall.core.hashing import digest
from chainmall.core.mall import keys, vocab
from chainmall.core.mall.events import (
    BizTransaction,
    ErrorDeclaration,
    EventRecord,
    Quantity,
    SourceDest,
    TraceEvent,
    decode_declaration,
    decode_event,
    decode_event_record,
    event_id_of,
)
from chainmall.core.mall.items import (
    EMPTY_HISTORY,
    HISTORY_CONTEXT,
    Item,
    decode_index_entry,
    decode_item,
    next_history,
)
from chainmall.core.mall.keys import ITEM_KEY_CONTEXT
from chainmall.core.node.app import open_application
from chainmall.core.node.page import PageReader
from page_verdict import page_verdict
from story_ledger import build_story_ledger

EVENT_ID_CONTEXT = "chainmall 2026-11 mall event id v1"
LEDGER_START_MS = 1_780_000_000_000  # fixed block times: the vectors never change by themselves


def flip(data: bytes, index: int, mask: int = 0x01) -> bytes:
    out = bytearray(data)
    out[index] ^= mask
    return bytes(out)


# --- decoded values as the TypeScript decoders name them ---------------------------------


def _quantities(items: tuple[Quantity, ...]) -> list[dict[str, Any]]:
    return [{"epcClass": q.epc_class, "quantity": None if q.quantity is None else str(q.quantity),
             "uom": q.uom} for q in items]


def event_json(event: TraceEvent) -> dict[str, Any]:
    return {
        "kind": event.kind, "action": event.action, "eventTimeMs": str(event.event_time_ms),
        "tzOffsetMin": event.tz_offset_min, "bizStep": event.biz_step,
        "disposition": event.disposition, "readPoint": event.read_point,
        "bizLocation": event.biz_location, "parent": event.parent, "epcs": list(event.epcs),
        "quantities": _quantities(event.quantities), "outEpcs": list(event.out_epcs),
        "outQuantities": _quantities(event.out_quantities),
        "bizTransactions": [{"type": b.type, "uri": b.uri} for b in event.biz_transactions],
        "sources": [{"type": s.type, "uri": s.uri} for s in event.sources],
        "destinations": [{"type": s.type, "uri": s.uri} for s in event.destinations],
        "ilmd": [list(pair) for pair in event.ilmd], "certification": event.certification,
    }


def declaration_json(declaration: ErrorDeclaration) -> dict[str, Any]:
    return {"eventId": declaration.event_id.hex(),
            "declarationTimeMs": str(declaration.declaration_time_ms),
            "tzOffsetMin": declaration.tz_offset_min, "reason": declaration.reason,
            "correctiveIds": [i.hex() for i in declaration.corrective_ids]}


def item_json(item: Item) -> dict[str, Any]:
    return {"kind": item.kind, "holder": item.holder.hex(), "parent": item.parent.hex(),
            "firstHeight": str(item.first_height), "eventCount": item.event_count,
            "nest": item.nest, "history": item.history.hex(), "uri": item.uri}


def record_json(record: EventRecord) -> dict[str, Any]:
    return {"height": str(record.height), "blockTimeMs": str(record.block_time_ms),
            "txId": record.tx_id.hex(), "recorder": record.recorder.hex(),
            "payload": record.payload.hex(), "kind": record.kind}


# --- the cases --------------------------------------------------------------------------


def _case(name: str, value: bytes, decode: Callable[[bytes], Any],
          to_json: Callable[[Any], dict[str, Any]], errors: tuple[type[Exception], ...]) -> dict:
    try:
        decoded = decode(value)
    except errors as error:
        return {"name": name, "value": value.hex(), "decodes": False, "python_error": str(error)}
    return {"name": name, "value": value.hex(), "decodes": True, "decoded": to_json(decoded)}


RING = RINGS[0]
PARTY = "urn:chainmall:party:cm1qqqsyqcyq5rqwzqfpg9scrgwpugpzysnrujsuw"


def _events() -> dict[str, TraceEvent]:
    """Events of every kind and field, all valid."""
    return {
        "object ADD with lot data": TraceEvent(
            vocab.KIND_OBJECT, vocab.ACTION_ADD, 1_775_030_400_000, -240, "commissioning",
            "active", "urn:epc:id:sgln:1.2.0", "urn:epc:id:sgln:1.2.0",
            quantities=(Quantity(LOT, 5_000, "GRM"),),
            ilmd=(("cbvmda:lotNumber", "AG-1"), ("chainmall:origin", "Cerro Rico, Potosí"))),
        "object OBSERVE, hand-over shape": TraceEvent(
            vocab.KIND_OBJECT, vocab.ACTION_OBSERVE, 5, 840, "receiving", None, epcs=(RING,),
            sources=(SourceDest("possessing_party", PARTY),),
            destinations=(SourceDest("possessing_party", PARTY),
                          SourceDest("location", "urn:epc:id:sgln:1.2.0")),
            biz_transactions=(BizTransaction("urn:chainmall:tx:" + "ab" * 32),
                              BizTransaction("urn:chainmall:order:" + "cd" * 32, "po"))),
        "aggregation ADD": TraceEvent(
            vocab.KIND_AGGREGATION, vocab.ACTION_ADD, 253_402_250_399_999, -840, "packing",
            "container_closed", parent=CASE, epcs=RINGS[1:4]),
        "aggregation DELETE, class child": TraceEvent(
            vocab.KIND_AGGREGATION, vocab.ACTION_DELETE, 0, 0, None, None, parent=CASE,
            quantities=(Quantity(LOT),)),
        "transformation": TraceEvent(
            vocab.KIND_TRANSFORMATION, vocab.ACTION_NONE, 9, 60, "commissioning", "active",
            quantities=(Quantity(LOT, 96, "GRM"),), out_epcs=RINGS,
            out_quantities=(Quantity("urn:epc:class:lgtin:1.2.SCRAP", 2, "KG"),),
            ilmd=(("chainmall:material", "sterling silver"),),
            certification="https://example.org/cert?id=1"),
        "transaction": TraceEvent(
            vocab.KIND_TRANSACTION, vocab.ACTION_ADD, 11, 0, "retail_selling", "retail_sold",
            epcs=(RING,), biz_transactions=(BizTransaction("urn:chainmall:doc:blake3:" + "0" * 64,
                                                           "inv"),)),
        "every vocabulary's last word": TraceEvent(
            vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 1, vocab.BIZ_STEPS[-1],
            vocab.DISPOSITIONS[-1], epcs=(RING,), ilmd=(("chainmall:origin", "x"),),
            biz_transactions=(BizTransaction("urn:x:y", vocab.BIZ_TRANSACTION_TYPES[-1]),),
            sources=tuple(SourceDest("location", f"urn:l:{n}") for n in range(4))),
    }


def _payload_breaks(good: bytes) -> dict[str, bytes]:
    """Payloads that break one rule each, built from valid events."""
    def encoded(event: TraceEvent) -> bytes:
        return event.encode(check=False)

    events = _events()
    observe = events["object OBSERVE, hand-over shape"]
    breaks = {
        "version 2": b"\x02" + good[1:],
        "kind 0": good[:1] + b"\x00" + good[2:],
        "kind 5 (a declaration is not an event)": good[:1] + b"\x05" + good[2:],
        "action 4": good[:2] + b"\x04" + good[3:],
        "time past year 9999": good[:3] + (253_402_250_400_000).to_bytes(8, "big") + good[11:],
        "time zone offset 1681": good[:11] + (1681).to_bytes(2, "big") + good[13:],
        "bizStep index past the list": good[:13] + bytes([len(vocab.BIZ_STEPS) + 1]) + good[14:],
        "disposition index past the list": good[:14] + bytes([len(vocab.DISPOSITIONS) + 1])
        + good[15:],
        "trailing byte": good + b"\x00",
        "truncated": good[:-1],
        "over the payload limit": good + b"\x00" * (TX_PAYLOAD_BYTES_MAX + 1 - len(good)),
        "transformation with an action": encoded(TraceEvent(
            vocab.KIND_TRANSFORMATION, vocab.ACTION_ADD, 1, 0, quantities=(Quantity(LOT),),
            out_epcs=(RING,))),
        "transformation without outputs": encoded(TraceEvent(
            vocab.KIND_TRANSFORMATION, vocab.ACTION_NONE, 1, 0, quantities=(Quantity(LOT),))),
        "transformation with a parent": encoded(TraceEvent(
            vocab.KIND_TRANSFORMATION, vocab.ACTION_NONE, 1, 0, parent=CASE,
            quantities=(Quantity(LOT),), out_epcs=(RING,))),
        "object with outputs": encoded(TraceEvent(
            vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 0, epcs=(RING,), out_epcs=(RINGS[1],))),
        "object naming nothing": encoded(TraceEvent(vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 0)),
        "object with a parent": encoded(TraceEvent(
            vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 0, parent=CASE, epcs=(RING,))),
        "aggregation without a parent": encoded(TraceEvent(
            vocab.KIND_AGGREGATION, vocab.ACTION_ADD, 1, 0, epcs=(RING,))),
        "transaction without a business transaction": encoded(TraceEvent(
            vocab.KIND_TRANSACTION, vocab.ACTION_ADD, 1, 0, epcs=(RING,))),
        "lot data on an OBSERVE": encoded(observe.__class__(
            **{**_fields(observe), "ilmd": (("cbvmda:lotNumber", "1"),)})),
        "an id twice": encoded(TraceEvent(vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 0,
                                          epcs=(RING,), quantities=(Quantity(RING),))),
        "a lot data field twice": encoded(TraceEvent(
            vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 0, epcs=(RING,),
            ilmd=(("cbvmda:lotNumber", "1"), ("cbvmda:lotNumber", "2")))),
        "33 ids": encoded(TraceEvent(vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 0,
                                     epcs=tuple(f"urn:r:{n}" for n in range(33)))),
        "five sources": encoded(TraceEvent(
            vocab.KIND_OBJECT, vocab.ACTION_ADD, 1, 0, epcs=(RING,),
            sources=tuple(SourceDest("location", f"urn:l:{n}") for n in range(5)))),
        "nine business transactions": encoded(TraceEvent(
            vocab.KIND_TRANSACTION, vocab.ACTION_ADD, 1, 0, epcs=(RING,),
            biz_transactions=tuple(BizTransaction(f"urn:b:{n}") for n in range(9)))),
    }
    ring = RING.encode()
    at = good.find(bytes([len(ring)]) + ring)
    assert at > 0
    for name, uri in (("epc without a scheme", b"x" * len(ring)),
                      ("epc with a space", ring[:-1] + b" "),
                      ("epc with a non-ASCII byte", ring[:-1] + b"\xc3"),
                      ("epc with an empty scheme", b":" + ring[1:]),
                      ("epc whose scheme has nothing after it", b"a" * (len(ring) - 1) + b":"),
                      ("epc with a digit first", b"1" + ring[1:])):
        breaks[name] = good[:at + 1] + uri + good[at + 1 + len(ring):]
    breaks["empty epc"] = good[:at] + b"\x00" + good[at + 1 + len(ring):]
    with_lot = encoded(events["object ADD with lot data"])
    lot = LOT.encode()
    q = with_lot.find(bytes([len(lot)]) + lot) + 1 + len(lot)
    breaks["quantity flag 2"] = with_lot[:q] + b"\x02" + with_lot[q + 1:]
    breaks["unit of one letter"] = with_lot[:q + 9] + b"\x01G" + with_lot[q + 13:]
    breaks["unit in lower case"] = with_lot[:q + 9] + b"\x03grm" + with_lot[q + 13:]
    breaks["unit of four letters"] = with_lot[:q + 9] + b"\x04GRAM" + with_lot[q + 13:]
    value = b"AG-1"
    v = with_lot.find(bytes([len(value)]) + value)
    breaks["lot data value with a tab"] = with_lot[:v] + b"\x04AG\t1" + with_lot[v + 5:]
    breaks["lot data value empty"] = with_lot[:v] + b"\x00" + with_lot[v + 5:]
    breaks["lot data value not UTF-8"] = with_lot[:v] + b"\x04AG\xff1" + with_lot[v + 5:]
    breaks["lot data value with a no-break space"] = (with_lot[:v] + b"\x05AG\xc2\xa01"
                                                       + with_lot[v + 5:])
    breaks["lot data field 0"] = with_lot[:v - 1] + b"\x00" + with_lot[v:]
    breaks["lot data field past the list"] = with_lot[:v - 1] + bytes(
        [len(vocab.ILMD_FIELDS) + 1]) + with_lot[v:]
    return breaks


def _fields(event: TraceEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in event.__dataclass_fields__}


def _decode_payload(payload: bytes) -> TraceEvent:
    return decode_event(payload)


def record_vectors(ledger_entries: dict[bytes, bytes]) -> dict[str, Any]:
    """The records half of verify_vectors.json; `ledger_entries` are real trace entries."""
    events = _events()
    payloads = [_case(name, event.encode(), _decode_payload, event_json, (MalformedPayload,))
                for name, event in events.items()]
    good = events["object OBSERVE, hand-over shape"].encode()
    payloads += [_case(name, value, _decode_payload, event_json, (MalformedPayload,))
                 for name, value in _payload_breaks(good).items()]
    assert all(case["decodes"] for case in payloads[:len(events)])
    assert not any(case["decodes"] for case in payloads[len(events):]), \
        [case["name"] for case in payloads[len(events):] if case["decodes"]]
    wrong = b"\x11" * HASH_BYTES
    declaration = ErrorDeclaration(wrong, 7, -360, "incorrect_data", (b"\x22" * 32, b"\x33" * 32))
    good_declaration = declaration.encode()
    declarations = [_case("valid", good_declaration, decode_declaration, declaration_json,
                          (MalformedPayload,)),
                    _case("no reason, no corrective events", ErrorDeclaration(
                        wrong, 0, 0).encode(), decode_declaration, declaration_json,
                        (MalformedPayload,))]
    broken = {
        "kind 1": good_declaration[:1] + b"\x01" + good_declaration[2:],
        "reason 3": good_declaration[:44] + b"\x03" + good_declaration[45:],
        "corrective repeated": good_declaration[:46] + b"\x22" * 64,
        "corrective names the erroneous event": good_declaration[:46] + wrong + b"\x33" * 32,
        "count 9": good_declaration[:45] + b"\x09" + good_declaration[46:] + b"\x44" * 7 * 32,
        "trailing byte": good_declaration + b"\x00",
        "time zone offset 1681": good_declaration[:42] + (1681).to_bytes(2, "big")
        + good_declaration[44:],
    }
    declarations += [_case(name, value, decode_declaration, declaration_json,
                           (MalformedPayload,)) for name, value in broken.items()]
    items, indexes, records = [], [], []
    for key, value in sorted(ledger_entries.items()):
        if key[0] == keys.item(bytes(32))[0]:
            items.append(_case(f"item {decode_item(value).uri}", value, decode_item, item_json,
                               (DecodeError,)))
        elif key[0] == keys.item_event(bytes(32), 0)[0] and len(indexes) < 4:
            indexes.append(_case(f"index entry {key.hex()[-8:]}", value, _index, _index_json,
                                 (DecodeError,)))
        elif key[0] == keys.event(bytes(32))[0]:
            record = decode_event_record(value)
            case = _case(f"record {key.hex()[2:14]}", value, decode_event_record, record_json,
                         (DecodeError,))
            case["event_id"] = event_id_of(record.recorder, record.payload).hex()
            case["event"] = (declaration_json(record.declaration()) if record.kind == 5
                             else event_json(record.event()))
            records.append(case)
    item_value = bytes.fromhex(items[0]["value"])
    uri_at = 99
    items += [_case(name, value, decode_item, item_json, (DecodeError,)) for name, value in {
        "item version 2": b"\x02" + item_value[1:],
        "item kind 3": item_value[:1] + b"\x03" + item_value[2:],
        "item nest 9": item_value[:66] + b"\x09" + item_value[67:],
        "item trailing byte": item_value + b"\x00",
        "item uri not a URI": item_value[:uri_at] + b"\x03abc",
        "item uri empty": item_value[:uri_at] + b"\x00",
        "item truncated": item_value[:50],
    }.items()]
    index_value = bytes.fromhex(indexes[0]["value"])
    indexes += [_case(name, value, _index, _index_json, (DecodeError,)) for name, value in {
        "index entry of 64 bytes": index_value[:-1],
        "index entry version 0": b"\x00" + index_value[1:],
    }.items()]
    record_value = bytes.fromhex(records[0]["value"])
    records += [_case(name, value, decode_event_record, record_json, (DecodeError,))
                for name, value in {
        "record version 2": b"\x02" + record_value[1:],
        "record payload longer than its length": record_value + b"\x00",
        "record payload length says one more": record_value[:69]
        + (int.from_bytes(record_value[69:71], "big") + 1).to_bytes(2, "big") + record_value[71:],
        "record payload of one byte": record_value[:69] + b"\x00\x01\x01",
        "record payload over the limit": record_value[:69]
        + (TX_PAYLOAD_BYTES_MAX + 1).to_bytes(2, "big") + b"\x01" * (TX_PAYLOAD_BYTES_MAX + 1),
    }.items()]
    history = EMPTY_HISTORY
    chain = []
    for case in records[:5]:
        history = next_history(history, bytes.fromhex(case["value"]))
        chain.append({"record": case["value"], "history": history.hex()})
    uris = [RING, LOT, CASE, "urn:x:é", "https://id.example/01/09506000134352/21/1?x=%20"]
    return {
        "vocab": {"biz_steps": list(vocab.BIZ_STEPS), "dispositions": list(vocab.DISPOSITIONS),
                  "biz_transaction_types": list(vocab.BIZ_TRANSACTION_TYPES),
                  "source_types": list(vocab.SOURCE_TYPES),
                  "error_reasons": list(vocab.ERROR_REASONS),
                  "ilmd_fields": list(vocab.ILMD_FIELDS)},
        "contexts": {"itemKey": ITEM_KEY_CONTEXT, "eventId": EVENT_ID_CONTEXT,
                     "history": HISTORY_CONTEXT},
        "item_keys": [{"uri": uri, "key": keys.item_key(uri).hex()} for uri in uris],
        "history_chain": chain,
        "payloads": payloads, "declarations": declarations, "items": items,
        "index_entries": indexes, "records": records,
    }


def _index(value: bytes) -> tuple[bytes, bytes]:
    return decode_index_entry(value)


def _index_json(entry: tuple[bytes, bytes]) -> dict[str, Any]:
    return {"eventId": entry[0].hex(), "history": entry[1].hex()}


# --- whole histories ------------------------------------------------------------------------


def story_answers() -> tuple[dict[str, Any], dict[str, Any], dict[bytes, bytes], str]:
    """(ring one's answer, ring two's answer, their entries, the story's wrong inspection id)
    from a deterministic ledger."""
    with tempfile.TemporaryDirectory(prefix="chainmall-vectors-") as directory:
        root = Path(directory)
        built = build_story_ledger(root / "home", root / "data", 0, LEDGER_START_MS,
                                   deterministic=True)
        app = open_application(built.data, "vectors")
        try:
            reader = PageReader(app)
            ring = json.loads(json.dumps(reader.item_trace(RINGS[0])))
            packed = json.loads(json.dumps(reader.item_trace(RINGS[1])))
        finally:
            app.store.close()
    entries = {bytes.fromhex(e["key"]): bytes.fromhex(e["value"])
               for answer in (ring, packed) for e in answer["entries"]}
    return ring, packed, entries, built.story.wrong_inspection.hex()


def _entry_index(answer: dict[str, Any], key: bytes) -> int:
    return next(i for i, e in enumerate(answer["entries"]) if e["key"] == key.hex())


def _drop(answer: dict[str, Any], *dropped: bytes) -> None:
    names = {key.hex() for key in dropped}
    answer["entries"] = [e for e in answer["entries"] if e["key"] not in names]
    answer["proofs"] = [p for p in answer["proofs"] if p["key"] not in names]


def _alter_value(answer: dict[str, Any], key: bytes, change: Callable[[bytes], bytes]) -> None:
    at = _entry_index(answer, key)
    entry = answer["entries"][at]
    entry["value"] = change(bytes.fromhex(entry["value"])).hex()


def trace_vectors(ring: dict[str, Any], packed: dict[str, Any], wrong: str) -> dict[str, Any]:
    """The answers and their alterations, each with page_verdict's conclusions."""
    ring_key = keys.item_key(RINGS[0])
    lot_key = keys.item_key(LOT)
    case_key = keys.item_key(CASE)
    ring_entries = {bytes.fromhex(e["key"]): bytes.fromhex(e["value"]) for e in ring["entries"]}
    ring_seqs = sorted(k for k in ring_entries if k[:33] == keys.item_events_of(ring_key))
    event_of = {int.from_bytes(k[33:], "big"): keys.event(decode_index_entry(v)[0])
                for k, v in ring_entries.items() if k[:33] == keys.item_events_of(ring_key)}
    hallmark = event_of[2]
    cases: list[dict[str, Any]] = []

    def add(name: str, base: dict[str, Any], change: Callable[[dict[str, Any]], Any] | None,
            pinned: str | None = None) -> None:
        answer = copy.deepcopy(base)
        if change is not None:
            change(answer)
        verdict = page_verdict(answer, None if pinned is None else bytes.fromhex(pinned))
        cases.append({"name": name, "answer": answer, "pinned": pinned,
                      "verdict": verdict.to_json()})

    add("ring one as served", ring, None)
    add("ring two, packed in the case, as served", packed, None)
    add("the hallmark's record altered",
        ring, lambda a: _alter_value(a, hallmark, lambda v: flip(v, 81)))
    add("the wrong inspection's record altered",
        ring, lambda a: _alter_value(a, keys.event(bytes.fromhex(wrong)), lambda v: flip(v, -1)))
    add("the last event of ring one hidden",
        ring, lambda a: _drop(a, ring_seqs[-1], event_of[len(ring_seqs) - 1]))
    add("two records swapped", ring, lambda a: _swap(a, event_of[4], event_of[5]))
    add("the lot's history dropped", ring, lambda a: _drop(a, *[
        bytes.fromhex(e["key"]) for e in a["entries"]
        if bytes.fromhex(e["key"])[1:33] == lot_key and e["key"][:2] == "18"]))
    add("the lot's first event served as a bare index entry",
        ring, lambda a: _drop(a, keys.event(decode_index_entry(
            ring_entries[keys.item_event(lot_key, 0)])[0])))
    add("an item entry's proof altered", ring, lambda a: _alter_proof(a, keys.item(ring_key)))
    add("a proof of absence dropped", ring, lambda a: _drop_absence(a))
    add("the declaration marker dropped (the correction is in the ring's own history)",
        ring, lambda a: _drop(a, keys.declaration(bytes.fromhex(wrong))))
    add("a record nothing names", ring, lambda a: a["entries"].append(
        {"key": keys.event(b"\x05" * 32).hex(), "value": ring_entries[hallmark].hex()}))
    add("the case's events cut after the packing", packed, lambda a: _cut_case(a, case_key))
    add("a commit signature altered", ring, lambda a: a["anchor"].update(
        commit=flip(bytes.fromhex(a["anchor"]["commit"]), 60).hex()))
    add("the header of another height", ring,
        lambda a: a["anchor"].update(height=a["anchor"]["height"] + 1))
    add("checked in a way the page does not know", ring,
        lambda a: a["anchor"].update(checked_by="notary"))
    add("an item that is not the one asked for", ring, lambda a: a.update(item=RINGS[5]))
    validators = bytes.fromhex(ring["anchor"]["validators"])
    pinned = digest(validators, VALIDATOR_SET_KEY).hex()
    add("pinned validator set matches", ring, None, pinned)
    add("pinned validator set differs", ring, None, flip(bytes.fromhex(pinned), 0).hex())
    return {"source": "tests/web/mall_vectors.py (page_verdict.py gives every verdict)",
            "cases": cases}


def _swap(answer: dict[str, Any], a: bytes, b: bytes) -> None:
    i, j = _entry_index(answer, a), _entry_index(answer, b)
    entries = answer["entries"]
    entries[i]["value"], entries[j]["value"] = entries[j]["value"], entries[i]["value"]


def _alter_proof(answer: dict[str, Any], key: bytes) -> None:
    proof = next(p for p in answer["proofs"] if p["key"] == key.hex())
    proof["proof"] = flip(bytes.fromhex(proof["proof"]), -3).hex()


def _drop_absence(answer: dict[str, Any]) -> None:
    present = {e["key"] for e in answer["entries"]}
    absent = [p for p in answer["proofs"] if p["key"] not in present]
    assert absent, "the story should need proofs of absence"
    answer["proofs"].remove(absent[0])


def _cut_case(answer: dict[str, Any], case_key: bytes) -> None:
    listed = sorted(bytes.fromhex(e["key"]) for e in answer["entries"]
                    if e["key"][:2] == "18" and bytes.fromhex(e["key"])[1:33] == case_key)
    assert len(listed) >= 2
    last = listed[-1]
    value = next(bytes.fromhex(e["value"]) for e in answer["entries"] if e["key"] == last.hex())
    _drop(answer, last, keys.event(decode_index_entry(value)[0]))
