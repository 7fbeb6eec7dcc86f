"""The mall's canonical encodings: round trips, strict decoding of arbitrary and mutated
bytes (only MalformedPayload for payloads, DecodeError for stored values), and the
worked examples of docs/mall.md."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from chainmall.core.errors import DecodeError, MalformedPayload
from chainmall.core.mall import (
    custody,
    disputes,
    escrow,
    events,
    items,
    order_record,
    orders,
    parties,
    products,
    tax,
)
from chainmall.core.mall.keys import item_key
from chainmall.core.mall.vocab import (
    BIZ_STEPS,
    BIZ_TRANSACTION_TYPES,
    DISPOSITIONS,
    ILMD_FIELDS,
    KIND_AGGREGATION,
    KIND_OBJECT,
    KIND_TRANSACTION,
    KIND_TRANSFORMATION,
    SOURCE_TYPES,
)
from hypothesis import given
from hypothesis import strategies as st

PAYLOAD_DECODERS: dict[str, Callable[[bytes], object]] = {
    "party details": parties.decode_party_details,
    "unbond": parties.decode_unbond,
    "certification": parties.decode_certification,
    "listing": products.decode_listing,
    "product update": products.decode_product_update,
    "product ref": products.decode_product_ref,
    "event": events.decode_event,
    "declaration": events.decode_declaration,
    "proposal": custody.decode_proposal,
    "acceptance": custody.decode_acceptance,
    "hand-over ref": custody.decode_handover_ref,
    "placement": orders.decode_placement,
    "order ref": order_record.decode_order_ref,
    "delivery": escrow.decode_delivery,
    "evidence": disputes.decode_evidence,
    "vote": disputes.decode_vote,
    "rate": tax.decode_rate_setting,
}
VALUE_DECODERS: dict[str, Callable[[bytes], object]] = {
    "party": parties.decode_party,
    "cert": parties.decode_cert,
    "product": products.decode_product,
    "item": items.decode_item,
    "event record": events.decode_event_record,
    "hand-over": custody.decode_handover,
    "order": order_record.decode_order,
    "escrow": escrow.decode_escrow,
    "dispute": disputes.decode_dispute,
    "tax rate": tax.decode_tax_rate,
    "tax record": tax.decode_tax_record,
}

hashes = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20)
u64 = st.integers(0, 2**64 - 1)
uris = st.from_regex(r"urn:[a-z]{1,6}:[A-Za-z0-9.:*_-]{1,40}", fullmatch=True)
times = st.integers(0, 253_402_250_399_999)
offsets = st.integers(-840, 840)
texts = st.text(st.characters(codec="utf-8", categories=["L", "N", "Zs", "P"]), min_size=1,
                max_size=16).filter(lambda t: len(t.encode()) <= 64 and t.isprintable())
quantities = st.builds(events.Quantity, uris,
                       st.one_of(st.none(), u64)).flatmap(
    lambda q: st.just(q) if q.quantity is None else st.sampled_from(["", "KGM", "GRM"]).map(
        lambda uom: events.Quantity(q.epc_class, q.quantity, uom)))


@st.composite
def trace_events(draw) -> events.TraceEvent:
    kind = draw(st.sampled_from([KIND_OBJECT, KIND_AGGREGATION, KIND_TRANSFORMATION,
                                 KIND_TRANSACTION]))
    ids = draw(st.lists(uris, min_size=2, max_size=10, unique=True))
    half = len(ids) // 2
    fields: dict = {
        "biz_step": draw(st.one_of(st.none(), st.sampled_from(BIZ_STEPS))),
        "disposition": draw(st.one_of(st.none(), st.sampled_from(DISPOSITIONS))),
        "read_point": draw(st.one_of(st.just(""), uris)),
        "biz_location": draw(st.one_of(st.just(""), uris)),
        "sources": tuple(draw(st.lists(st.builds(events.SourceDest,
                                                 st.sampled_from(SOURCE_TYPES), uris),
                                       max_size=2))),
        "certification": draw(st.one_of(st.just(""), uris)),
    }
    links = draw(st.lists(st.builds(events.BizTransaction, uris, st.one_of(
        st.none(), st.sampled_from(BIZ_TRANSACTION_TYPES))), max_size=2))
    if kind == KIND_TRANSACTION and not links:
        links = [events.BizTransaction("urn:x:doc:1", "po")]
    fields["biz_transactions"] = tuple(links)
    if kind == KIND_TRANSFORMATION:
        action = 0
        fields["epcs"] = tuple(ids[:half])
        fields["out_epcs"] = tuple(ids[half:])
    else:
        action = draw(st.integers(1, 3))
        if kind == KIND_AGGREGATION:
            fields["parent"] = ids[0]
            ids = ids[1:]
        fields["epcs"] = tuple(ids)
    if kind == KIND_TRANSFORMATION or (kind == KIND_OBJECT and action == 1):
        names = draw(st.lists(st.sampled_from(ILMD_FIELDS), max_size=3, unique=True))
        fields["ilmd"] = tuple((name, "v1") for name in names)
    return events.TraceEvent(kind, action, draw(times), draw(offsets), **fields)


VALID_PAYLOADS = {
    "party details": st.builds(parties.PartyDetails, st.integers(1, 63), u64,
                               st.sampled_from(["", "IT", "DE-BY"]), texts, hashes),
    "unbond": st.builds(parties.Unbond, st.integers(1, 2**64 - 1)),
    "certification": st.builds(parties.Certification, addresses, texts),
    "listing": st.builds(products.Listing, st.integers(1, 2**64 - 1), st.integers(0, 2**32 - 1),
                         hashes, texts, st.from_regex(r"[a-z0-9/_-]{1,20}", fullmatch=True)),
    "product update": st.builds(products.ProductUpdate, hashes, st.integers(1, 2**64 - 1),
                                st.integers(0, 2**32 - 1), hashes),
    "product ref": st.builds(products.ProductRef, hashes),
    "event": trace_events(),
    "declaration": st.builds(events.ErrorDeclaration, hashes, times, offsets,
                             st.one_of(st.none(), st.sampled_from(["did_not_occur"])),
                             st.lists(hashes, max_size=3, unique=True).map(tuple)),
    "proposal": st.builds(custody.Proposal, hashes, addresses, hashes),
    "acceptance": st.builds(custody.Acceptance, hashes, times, offsets,
                            st.sampled_from(custody.ACCEPT_STEPS),
                            st.one_of(st.none(), st.sampled_from(DISPOSITIONS)),
                            st.one_of(st.just(""), uris), st.one_of(st.just(""), uris)),
    "hand-over ref": st.builds(custody.HandoverRef, hashes, addresses),
    "placement": st.builds(orders.Placement, hashes, st.integers(1, 1_000_000), u64,
                           st.binary(min_size=49, max_size=512)),
    "order ref": st.builds(order_record.OrderRef, hashes),
    "delivery": st.builds(escrow.DeliveryNote, hashes, times, offsets,
                          st.one_of(st.just(""), uris)),
    "evidence": st.builds(disputes.Evidence, hashes, hashes),
    "vote": st.builds(disputes.Vote, hashes, st.integers(0, 255), st.integers(0, 10_000)),
    "rate": st.builds(tax.RateSetting, st.sampled_from(["IT", "DE-BY", "FR"]),
                      st.integers(0, 10_000)),
}
assert set(VALID_PAYLOADS) == set(PAYLOAD_DECODERS)


def strict(decoder: Callable[[bytes], object], data: bytes, error: type) -> None:
    """`data` decodes to a value that re-encodes to exactly `data`, or raises `error`."""
    try:
        value = decoder(data)
    except error:
        return
    assert value.encode() == data  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", sorted(PAYLOAD_DECODERS))
@given(data=st.data())
def test_payloads_round_trip_and_refuse_every_mutation(name: str, data) -> None:
    value = data.draw(VALID_PAYLOADS[name])
    encoded = value.encode()
    assert PAYLOAD_DECODERS[name](encoded) == value
    assert PAYLOAD_DECODERS[name](encoded).encode() == encoded
    position = data.draw(st.integers(0, len(encoded) - 1))
    flipped = bytearray(encoded)
    flipped[position] ^= data.draw(st.integers(1, 255))
    strict(PAYLOAD_DECODERS[name], bytes(flipped), MalformedPayload)
    strict(PAYLOAD_DECODERS[name], encoded + b"\x00", MalformedPayload)
    strict(PAYLOAD_DECODERS[name], encoded[:position], MalformedPayload)


@pytest.mark.parametrize("name", sorted(PAYLOAD_DECODERS))
@given(raw=st.binary(max_size=200))
def test_arbitrary_payload_bytes_raise_only_malformed_payload(name: str, raw: bytes) -> None:
    strict(PAYLOAD_DECODERS[name], raw, MalformedPayload)
    strict(PAYLOAD_DECODERS[name], b"\x01" + raw, MalformedPayload)


@pytest.mark.parametrize("name", sorted(VALUE_DECODERS))
@given(raw=st.binary(max_size=300))
def test_arbitrary_value_bytes_raise_only_decode_error(name: str, raw: bytes) -> None:
    strict(VALUE_DECODERS[name], raw, DecodeError)
    strict(VALUE_DECODERS[name], b"\x01" + raw, DecodeError)


def test_worked_examples_of_docs_mall_md() -> None:
    from chainmall.core.mall import keys
    from chainmall.core.mall.codec import NO_ID
    from chainmall.core.mall.pool import NOT_IN_POOL
    from chainmall.core.mall.vocab import ACTION_ADD, ROLE_MERCHANT

    profile = b"\xab" * 32
    details = parties.PartyDetails(ROLE_MERCHANT, 1000, "IT", "Gioielli", profile).encode()
    assert details.hex() == "01" "0001" "00000000000003e8" "024954" "0847696f69656c6c69" + \
        "ab" * 32
    party = parties.Party(ROLE_MERCHANT, bytes(range(32)), 1000, 0, 0, NOT_IN_POOL, 7, "IT",
                          "Gioielli", profile).encode()
    assert party.hex() == ("01" "0001" + bytes(range(32)).hex() + "00000000000003e8"
                           "00000000" "00000000" "ffffffff" "0000000000000007" "024954"
                           "0847696f69656c6c69" + "ab" * 32)
    address = bytes(range(1, 21))
    assert keys.party(address).hex() == "10" + address.hex()
    lot = "urn:epc:class:lgtin:4012345.012345.LOT1"
    assert item_key(lot).hex() == \
        "ecf795a265978e959c3ec4f11a1eb37659a616e480c42330326873d111937cfa"
    event = events.TraceEvent(KIND_OBJECT, ACTION_ADD, 1_767_225_600_000, 60, "commissioning",
                              "active", quantities=(events.Quantity(lot, 1000, "GRM"),),
                              ilmd=(("cbvmda:lotNumber", "LOT1"),)).encode()
    assert event.hex() == (
        "01" "01" "01" "0000019b76daa800" "0384" "05" "01" "00" "00" "00" "00"
        "01" "27" + lot.encode().hex() + "01" "00000000000003e8" "03" "47524d"
        "00" "00" "00" "00" "00" "01" "01" "04" "4c4f5431" "00")
    assert events.event_id_of(address, event).hex() == \
        "3524b26bd19d8f9027e03b801451d6239426d0dacdf4131403fb6de30dffe902"
    placement = orders.Placement(b"\x11" * 32, 2, 20_000, b"\x5a" * 49).encode()
    assert placement.hex() == "01" + "11" * 32 + "00000002" "0000000000004e20" "0031" + \
        "5a" * 49
    funded = escrow.Escrow(1, 40_000, 1_767_229_200_000, NO_ID, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                           0).encode()
    assert funded.hex() == "01" "01" "0000000000009c40" "0000019b77119680" + "00" * 32 + \
        "00" * (8 * 4 + 1 + 8 * 5)
    assert disputes.Vote(b"\x22" * 32, 1, 10_000).encode().hex() == \
        "01" + "22" * 32 + "01" "2710"


def test_offsets_and_times_are_bounded() -> None:
    with pytest.raises(MalformedPayload):
        events.TraceEvent(KIND_OBJECT, 2, 0, 841, epcs=("urn:a:b",)).encode()
    with pytest.raises(MalformedPayload):
        events.TraceEvent(KIND_OBJECT, 2, 253_402_250_400_000, 0, epcs=("urn:a:b",)).encode()
    with pytest.raises(MalformedPayload, match="not a URI"):
        events.TraceEvent(KIND_OBJECT, 2, 0, 0, epcs=("no scheme",)).encode()
    with pytest.raises(MalformedPayload, match="twice"):
        events.TraceEvent(KIND_OBJECT, 2, 0, 0, epcs=("urn:a:b", "urn:a:b")).encode()
    with pytest.raises(MalformedPayload, match="more than 32"):
        events.TraceEvent(KIND_OBJECT, 2, 0, 0,
                          epcs=tuple(f"urn:a:{n}" for n in range(33))).encode()


def _reference_or_error(event: events.TraceEvent) -> bytes | str:
    try:
        return events._encode_event(event, check=False)
    except ValueError as exc:
        return f"error: {exc}"


broken_texts = st.one_of(uris, st.text(max_size=3), st.just("x" * 129), st.just("é" * 65))
field_changes = st.one_of(
    st.tuples(st.just("kind"), st.sampled_from([-1, 0, 255, 256, True, 2**64])),
    st.tuples(st.just("action"), st.sampled_from([-1, 256, 2.0])),
    st.tuples(st.just("event_time_ms"), st.sampled_from([-1, 2**64 - 1, 2**64, None])),
    st.tuples(st.just("tz_offset_min"), st.sampled_from([-841, 841, 840, -840, 1.5, True])),
    st.tuples(st.just("biz_step"), st.sampled_from(["nope", "receiving", None])),
    st.tuples(st.just("disposition"), st.sampled_from(["nope", "in_transit", None])),
    st.tuples(st.just("read_point"), broken_texts),
    st.tuples(st.just("biz_location"), broken_texts),
    st.tuples(st.just("parent"), broken_texts),
    st.tuples(st.just("certification"), broken_texts),
    st.tuples(st.just("epcs"), st.lists(broken_texts, max_size=3).map(tuple)),
    st.tuples(st.just("epcs"), st.just(tuple(f"urn:a:{n}" for n in range(256)))),
    st.tuples(st.just("quantities"), st.lists(st.builds(
        events.Quantity, broken_texts, st.one_of(st.none(), st.integers(-1, 2**64)),
        st.sampled_from(["", "KGM", "KGMX"])), max_size=2).map(tuple)),
    st.tuples(st.just("biz_transactions"), st.lists(st.builds(
        events.BizTransaction, broken_texts, st.sampled_from([None, "po", "nope"])),
        max_size=2).map(tuple)),
    st.tuples(st.just("destinations"), st.lists(st.builds(
        events.SourceDest, st.sampled_from([*SOURCE_TYPES, "nope"]), broken_texts),
        max_size=2).map(tuple)),
    st.tuples(st.just("ilmd"), st.lists(st.tuples(
        st.sampled_from([*ILMD_FIELDS, "nope"]), st.sampled_from(["", "v", "v" * 65])),
        max_size=2).map(tuple)),
)


@given(event=trace_events(), changes=st.lists(field_changes, max_size=3))
def test_fast_event_encoder_matches_the_reference(event: events.TraceEvent,
                                                  changes: list) -> None:
    """The mall's own events (`encode(check=False)`) go through `_encode_event_fast`: the
    same bytes as the Writer-based `_encode_event`, and where the reference refuses an
    event, the fast path refuses it too (encode then raises the reference's error)."""
    import dataclasses

    event = dataclasses.replace(event, **dict(changes))
    expected = _reference_or_error(event)
    fast = events._encode_event_fast_or_none(event)
    if isinstance(expected, bytes):
        assert fast == expected
        assert event.encode(check=False) == expected
    else:
        assert fast is None
        with pytest.raises(MalformedPayload) as raised:
            event.encode(check=False)
        assert str(raised.value) == f"trace event: {expected[len('error: '):]}"


def _reference_decode(payload: bytes) -> events.TraceEvent | None:
    try:
        return events._decode_event_payload(events.payload_reader(payload, "trace event"))
    except (MalformedPayload, DecodeError):
        return None


@given(event=trace_events(), data=st.data())
def test_fast_event_decoder_matches_the_reference(event: events.TraceEvent, data) -> None:
    """TRACE_RECORD payloads are read by `_decode_event_fast` first: a canonical event
    decodes to what the Reader-based reference gives, and any payload the fast path
    accepts (mutated, cut, extended) the reference accepts as the same event."""
    payload = event.encode()
    assert events._decode_event_fast_or_none(payload) == _reference_decode(payload) == event
    position = data.draw(st.integers(0, len(payload) - 1))
    flipped = bytearray(payload)
    flipped[position] ^= data.draw(st.integers(1, 255))
    inserted = payload[:position] + data.draw(st.binary(min_size=1, max_size=3)) \
        + payload[position:]
    for changed in (bytes(flipped), payload[:position], payload + b"\x00", inserted,
                    data.draw(st.binary(max_size=120))):
        fast = events._decode_event_fast_or_none(changed)
        if fast is not None:
            assert fast == _reference_decode(changed)
        if len(changed) <= C_TX_PAYLOAD_BYTES_MAX:
            assert (fast or _reference_decode(changed)) == _decode_or_none(changed)


def _decode_or_none(payload: bytes) -> events.TraceEvent | None:
    try:
        return events.decode_event(payload)
    except MalformedPayload:
        return None


C_TX_PAYLOAD_BYTES_MAX = events.TX_PAYLOAD_BYTES_MAX
