"""The silver-jewellery story, block by block through the state machine, every history
checked by its proofs and exported as an EPCIS document that validates.

A refiner commissions a silver lot; a workshop transforms part of it into
serialised rings; an assay office inspects and hallmarks them; a certified
merchant lists them. Buyer one orders with a sealed address into escrow, two
carriers hand over in turn, the buyer accepts delivery and confirms, the
merchant is paid with tax withheld. Buyer two orders three rings, packed in a
case, disputes, and a drawn panel refunds. Buyer three's order times out.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import nacl.exceptions
import pytest
from chainmall.core.address import encode_address
from chainmall.core.mall import keys
from chainmall.core.mall.codec import NO_ID
from chainmall.core.mall.disputes import load_dispute
from chainmall.core.mall.epcis import export_trace, import_document
from chainmall.core.mall.escrow import (
    CLOSE_CONFIRMED,
    CLOSE_RULING,
    CLOSE_SHIP_TIMEOUT,
    ESCROW_DELIVERED,
    ESCROW_DISPUTED,
    ESCROW_REFUNDED,
    ESCROW_RELEASED,
    ESCROW_RULED,
    ESCROW_SHIPPED,
    load_escrow,
)
from chainmall.core.mall.events import ErrorDeclaration, Quantity, TraceEvent, decode_event_record
from chainmall.core.mall.history import TraceInvalid, trace, verify_trace
from chainmall.core.mall.items import decode_index_entry, decode_item, party_uri
from chainmall.core.mall.parties import decode_cert, decode_party
from chainmall.core.mall.products import decode_product
from chainmall.core.mall.sealing import open_address, seal_address
from chainmall.core.mall.tax import tax_report
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_DELETE,
    ACTION_NONE,
    ACTION_OBSERVE,
    KIND_AGGREGATION,
    KIND_OBJECT,
    KIND_TRANSFORMATION,
    ROLE_ARBITRATOR,
    ROLE_CARRIER,
    ROLE_INSPECTOR,
    ROLE_MERCHANT,
    ROLE_PROCESSOR,
    ROLE_PRODUCER,
)
from chainmall.core.state.accounts import account_key, unpack_account
from mall_chain import TEST_PARAMS, MallChain, key, mall_genesis, ok

VECTORS = Path(__file__).resolve().parents[2] / "vectors" / "epcis"
LOT = "urn:epc:class:lgtin:8012345.000001.AG-2026-01"
RINGS = [f"urn:epc:id:sgtin:8012345.000777.{n}" for n in range(1, 6)]
CASE = "urn:epc:id:sscc:8012345.0000000042"
REFINERY = "urn:epc:id:sgln:8012345.00001.0"
WORKSHOP = "urn:epc:id:sgln:8012345.00002.0"
ASSAY = "urn:epc:id:sgln:8012345.00003.0"
PRICE = 20_000
NAMES = ["refiner", "workshop", "assay", "merchant", "carrier1", "carrier2", "buyer1",
         "buyer2", "buyer3", "arb1", "arb2", "arb3", "arb4", "certifier", "agenzia"]


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads((VECTORS / "EPCIS-JSON-Schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def balance(chain: MallChain, who) -> int:
    raw = chain.get(account_key(who.address))
    return 0 if raw is None else unpack_account(raw)[0]


def escrow_of(chain: MallChain, order_id: bytes):
    with chain.reader() as state:
        return load_escrow(state, order_id)



@pytest.fixture(scope="module")
def story(tmp_path_factory):
    """Runs the whole story once; the tests below check what it left behind."""
    genesis = mall_genesis({name: 10**9 for name in NAMES}, certifiers=("certifier",))
    chain = MallChain(tmp_path_factory.mktemp("story") / "data", genesis)
    k = {name: key(name) for name in NAMES}
    facts: dict = {"keys": k, "genesis": genesis}
    t = chain.time_ms
    # Block 1: the parties register; the merchant funds a fresh account into existence.
    shill = key("shill")
    ok(chain.block([
        chain.register(k["refiner"], ROLE_PRODUCER, name="Raffineria"),
        chain.register(k["workshop"], ROLE_PROCESSOR, name="Laboratorio"),
        chain.register(k["assay"], ROLE_INSPECTOR, name="Ufficio del saggio"),
        chain.register(k["merchant"], ROLE_MERCHANT, 1_000, "IT", "Argenteria Rossi"),
        chain.register(k["carrier1"], ROLE_CARRIER, name="Corriere Uno"),
        chain.register(k["carrier2"], ROLE_CARRIER, name="Corriere Due"),
        *[chain.register(k[f"arb{n}"], ROLE_ARBITRATOR, 500, name=f"Arbitro {n}")
          for n in range(1, 5)],
        chain.transfer(k["merchant"], shill.address, 10_000),
    ]))
    # Block 2: the merchant's own account registers as an arbitrator; the certifier
    # certifies the merchant as an official seller of the brand.
    ok(chain.block([chain.register(shill, ROLE_ARBITRATOR, 500, name="Friend"),
                    chain.certify(k["certifier"], k["merchant"].address, "Argento Firenze")]))
    facts["shill"] = shill
    # The refiner commissions the silver lot.
    commission = TraceEvent(
        KIND_OBJECT, ACTION_ADD, t, 60, "commissioning", "active", REFINERY, REFINERY,
        quantities=(Quantity(LOT, 1_000, "GRM"),),
        ilmd=(("cbvmda:lotNumber", "AG-2026-01"), ("cbvmda:countryOfOrigin", "IT"),
              ("chainmall:productionDate", "2026-01-01"), ("chainmall:fineness", "999")))
    ok(chain.block([chain.record(k["refiner"], commission)]))
    ok(chain.block([chain.propose(k["refiner"], LOT, k["workshop"].address)]))
    ok(chain.block([chain.accept(k["workshop"], LOT, read_point=WORKSHOP)]))
    # The workshop transforms 250 g of it into five serialised rings.
    transform = TraceEvent(
        KIND_TRANSFORMATION, ACTION_NONE, chain.time_ms, 60, "commissioning", "active",
        WORKSHOP, WORKSHOP, quantities=(Quantity(LOT, 250, "GRM"),), out_epcs=tuple(RINGS),
        ilmd=(("chainmall:material", "sterling silver"), ("chainmall:fineness", "925")))
    ok(chain.block([chain.record(k["workshop"], transform)]))
    # A wrong inspection, declared erroneous and corrected; then the hallmark.
    wrong = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, chain.time_ms, 60, "inspecting",
                       "non_conformant", ASSAY, epcs=tuple(RINGS))
    hallmark = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, chain.time_ms + 1, 60, "inspecting",
                          "conformant", ASSAY, epcs=tuple(RINGS),
                          certification="urn:chainmall:hallmark:925:firenze")
    ok(chain.block([chain.record(k["assay"], wrong), chain.record(k["assay"], hallmark)]))
    with chain.reader() as state:
        ring_history = trace(state, RINGS[0])
    wrong_id = next(step.event_id for step in ring_history.steps
                    if not step.is_declaration
                    and step.record.event().disposition == "non_conformant")
    hallmark_id = next(step.event_id for step in ring_history.steps
                       if not step.is_declaration
                       and step.record.event().disposition == "conformant")
    ok(chain.block([chain.declare(k["assay"], ErrorDeclaration(
        wrong_id, chain.time_ms, 60, "incorrect_data", (hallmark_id,)))]))
    facts["wrong_id"], facts["hallmark_id"] = wrong_id, hallmark_id
    # The workshop hands the rings to the merchant, who lists them.
    ok(chain.block([chain.propose(k["workshop"], ring, k["merchant"].address)
                    for ring in RINGS]))
    ok(chain.block([chain.accept(k["merchant"], ring) for ring in RINGS]))
    listing = chain.list_product(k["merchant"], PRICE, 5, "Anello in argento 925",
                                 "jewellery/rings")
    ok(chain.block([listing]))
    product_id = facts["product"] = listing.tx_id

    # --- buyer one: sealed address, two carriers, delivery, confirmation ----------------
    party = chain.query("/mall/party", k["merchant"].address)
    merchant_key = decode_party(party[0][1]).public_key
    sealed = seal_address(merchant_key, "Via dei Calzaiuoli 1, 50122 Firenze")
    order1 = chain.order(k["buyer1"], product_id, 1, PRICE, sealed)
    ok(chain.block([order1]))
    facts["order1"], facts["sealed"] = order1.tx_id, sealed
    before = {name: balance(chain, k[name]) for name in ("merchant", "agenzia", "buyer1")}
    ok(chain.block([chain.propose(k["merchant"], RINGS[0], k["carrier1"].address,
                                  order1.tx_id)]))
    ok(chain.block([chain.accept(k["carrier1"], RINGS[0], "receiving", "in_transit")]))
    facts["after_ship"] = escrow_of(chain, order1.tx_id).state
    ok(chain.block([chain.propose(k["carrier1"], RINGS[0], k["carrier2"].address,
                                  order1.tx_id)]))
    ok(chain.block([chain.accept(k["carrier2"], RINGS[0], "receiving", "in_transit")]))
    ok(chain.block([chain.propose(k["carrier2"], RINGS[0], k["buyer1"].address,
                                  order1.tx_id)]))
    ok(chain.block([chain.accept(k["buyer1"], RINGS[0], "accepting", "completeness_verified")]))
    facts["after_delivery"] = escrow_of(chain, order1.tx_id).state
    ok(chain.block([chain.confirm(k["buyer1"], order1.tx_id)]))
    facts["paid"] = {name: balance(chain, k[name]) - before[name] for name in before}

    # --- buyer two: three rings in a case, a dispute, a drawn panel refunds -------------
    order2 = chain.order(k["buyer2"], product_id, 3, PRICE)
    ok(chain.block([order2]))
    facts["order2"] = order2.tx_id
    pack = TraceEvent(KIND_AGGREGATION, ACTION_ADD, chain.time_ms, 60, "packing",
                      "container_closed", parent=CASE, epcs=tuple(RINGS[1:4]))
    ok(chain.block([chain.record(k["merchant"], pack),
                    chain.propose(k["merchant"], CASE, k["carrier1"].address, order2.tx_id)]))
    ok(chain.block([chain.accept(k["carrier1"], CASE, "receiving", "in_transit")]))
    ok(chain.block([chain.deliver(k["carrier1"], order2.tx_id)]))
    facts["order2_delivered"] = escrow_of(chain, order2.tx_id).state
    buyer2_before = balance(chain, k["buyer2"])
    ok(chain.block([chain.dispute(k["buyer2"], order2.tx_id, b"\x42" * 32)]))
    facts["order2_disputed"] = escrow_of(chain, order2.tx_id).state
    ok(chain.block([]))  # the panel is drawn in this block's begin hook
    with chain.reader() as state:
        dispute = load_dispute(state, order2.tx_id)
    facts["panel"] = [seat.arbitrator for seat in dispute.seats]
    by_address = {k[f"arb{n}"].address: k[f"arb{n}"] for n in range(1, 5)}
    voters = [by_address[address] for address in facts["panel"][:2]]
    arbitrator_before = {v.address: balance(chain, v) for v in voters}
    ok(chain.block([chain.vote(voter, order2.tx_id, 1, 10_000) for voter in voters]))
    facts["buyer2_refund"] = balance(chain, k["buyer2"]) - buyer2_before
    facts["arbitrator_fees"] = [balance(chain, v) - arbitrator_before[v.address]
                                for v in voters]

    # --- buyer three: never shipped, the ship deadline refunds ----------------------------
    order3 = chain.order(k["buyer3"], product_id, 1, PRICE)
    ok(chain.block([order3]))
    facts["order3"] = order3.tx_id
    buyer3_before = balance(chain, k["buyer3"])
    ok(chain.block([], advance_ms=TEST_PARAMS.ship_timeout_ms - 1_000))  # one ms short
    facts["order3_before_deadline"] = escrow_of(chain, order3.tx_id).state
    ok(chain.block([], advance_ms=1_000))  # the first block at the deadline
    facts["buyer3_refund"] = balance(chain, k["buyer3"]) - buyer3_before
    facts["height"] = chain.machine.info()[0]
    yield chain, facts
    chain.close()


def test_parties_and_certification(story) -> None:
    chain, facts = story
    entries = chain.query("/mall/party", facts["keys"]["merchant"].address)
    party = decode_party(entries[0][1])
    assert party.roles == ROLE_MERCHANT and party.jurisdiction == "IT"
    cert_key, cert_value = entries[1]
    assert cert_key == keys.cert(facts["keys"]["merchant"].address,
                                 facts["keys"]["certifier"].address, "Argento Firenze")
    assert decode_cert(cert_value).status == 1
    certifier = facts["genesis"].mall.certifier(cert_key[21:41])
    assert certifier is not None and certifier.name == "certifier"


def test_the_sealed_address_opens_only_for_the_merchant(story) -> None:
    chain, facts = story
    entries = chain.query("/mall/order", facts["order1"])
    order_value = entries[0][1]
    assert facts["sealed"] in order_value
    assert b"Calzaiuoli" not in order_value  # only ciphertext on chain
    assert open_address(facts["keys"]["merchant"], facts["sealed"]) == \
        "Via dei Calzaiuoli 1, 50122 Firenze"
    with pytest.raises(nacl.exceptions.CryptoError):
        open_address(facts["keys"]["buyer1"], facts["sealed"])


def test_order_one_is_shipped_delivered_confirmed_and_paid_with_tax(story) -> None:
    chain, facts = story
    assert facts["after_ship"] == ESCROW_SHIPPED
    assert facts["after_delivery"] == ESCROW_DELIVERED
    escrow = escrow_of(chain, facts["order1"])
    assert escrow.state == ESCROW_RELEASED and escrow.close_reason == CLOSE_CONFIRMED
    tax = PRICE * 2_200 // 10_000
    commission = PRICE * TEST_PARAMS.commission_bps // 10_000
    assert (escrow.tax, escrow.commission, escrow.held) == (tax, commission, 0)
    # Less the tx fees each paid meanwhile: the merchant's proposal (1), the buyer's
    # acceptance and confirmation (2).
    assert facts["paid"] == {"merchant": PRICE - tax - commission - 1, "agenzia": tax,
                             "buyer1": -2}
    with chain.reader() as state:
        report = tax_report(state, "IT", 0, facts["height"])
    assert report.settlements == 1 and report.tax_total == tax
    assert report.gross_total == PRICE


def test_tax_report_query_proves_each_record(story) -> None:
    chain, facts = story
    data = bytes([2]) + b"IT" + (0).to_bytes(8, "big") + facts["height"].to_bytes(8, "big")
    entries = chain.query("/mall/tax_report", data)
    assert len(entries) == 1 and entries[0][0][-32:] == facts["order1"]


def test_ring_one_history_goes_back_to_the_lot_with_proofs(story) -> None:
    chain, facts = story
    entries = dict(chain.query("/mall/trace", RINGS[0].encode()))
    with chain.reader() as state:
        history = trace(state, RINGS[0])
    assert dict(history.entries) == entries  # every entry proven by chain.query
    steps = [(s.record.event().biz_step if not s.is_declaration else "declaration")
             for s in history.steps]
    assert steps == ["commissioning", "receiving", "commissioning", "inspecting",
                     "inspecting", "declaration", "receiving", "receiving", "receiving",
                     "accepting"]
    recorders = [encode_address(s.record.recorder) for s in history.steps]
    k = facts["keys"]
    assert recorders[0] == encode_address(k["refiner"].address)
    assert recorders[2] == encode_address(k["workshop"].address)
    assert recorders[-1] == encode_address(k["buyer1"].address)
    # The erroneous inspection is shown with its declaration, never hidden.
    declared = {s.event_id: s.declared_by for s in history.steps}
    assert declared[facts["wrong_id"]] is not None
    # Completeness: the ring's entry counts its index entries.
    ring = decode_item(entries[keys.item(keys.item_key(RINGS[0]))])
    assert ring.event_count == sum(1 for key in entries
                                   if key[:33] == keys.item_events_of(keys.item_key(RINGS[0])))
    assert ring.holder == k["buyer1"].address
    # The carriers' hand-overs name both sides.
    last = decode_event_record(entries[keys.event(history.steps[-1].event_id)]).event()
    assert last.sources[0].uri == party_uri(k["carrier2"].address)
    assert last.destinations[0].uri == party_uri(k["buyer1"].address)


def test_exported_epcis_documents_validate_and_import_back(story) -> None:
    chain, _ = story
    check = validator()
    for ring in (RINGS[0], RINGS[1]):
        with chain.reader() as state:
            history = trace(state, ring)
        document = export_trace(history)
        errors = [e.message for e in check.iter_errors(document)]
        assert errors == []
        events = document["epcisBody"]["eventList"]
        assert any("errorDeclaration" in event for event in events)
        imported = import_document(json.dumps(document))
        recorded = [s.record.payload for s in history.steps if not s.is_declaration]
        assert [e.encode() for e in imported.events] == recorded


def test_ring_two_travelled_in_the_case(story) -> None:
    chain, _ = story
    with chain.reader() as state:
        history = trace(state, RINGS[1])
    kinds = [(s.record.event().kind, s.record.event().biz_step) for s in history.steps
             if not s.is_declaration]
    assert (KIND_AGGREGATION, "packing") in kinds
    # The case's hand-over to the carrier and the carrier's delivery are in its history,
    # reached through the case (the packing event through the ring itself).
    case_steps = [s for s in history.steps if s.item_key == keys.item_key(CASE)]
    assert [s.record.event().biz_step for s in case_steps] == ["receiving", "arriving"]


def test_order_two_disputed_and_refunded_by_a_drawn_panel(story) -> None:
    chain, facts = story
    assert facts["order2_delivered"] == ESCROW_DELIVERED
    assert facts["order2_disputed"] == ESCROW_DISPUTED
    panel = facts["panel"]
    assert len(panel) == 3 and len(set(panel)) == 3  # 60,000 > panel_threshold
    assert facts["shill"].address not in panel  # funded into existence by the merchant
    escrow = escrow_of(chain, facts["order2"])
    assert escrow.state == ESCROW_RULED and escrow.close_reason == CLOSE_RULING
    amount = 3 * PRICE
    fee = amount * TEST_PARAMS.arbitration_fee_bps // 10_000
    assert escrow.arbitration_fee == fee and escrow.buyer_paid == amount - fee
    assert facts["buyer2_refund"] == amount - fee - 1  # less the dispute tx's fee
    assert facts["arbitrator_fees"] == [fee // 2 - 1, fee // 2 - 1]  # less their vote fee
    with chain.reader() as state:
        dispute = load_dispute(state, facts["order2"])
    assert dispute.ruling_bps == 10_000 and dispute.evidence[0][1] == b"\x42" * 32
    for arbitrator in panel:  # every seat released
        assert chain.query("/mall/seats", arbitrator) == []


def test_order_three_times_out_in_the_first_block_at_its_deadline(story) -> None:
    chain, facts = story
    assert facts["order3_before_deadline"] != ESCROW_REFUNDED
    escrow = escrow_of(chain, facts["order3"])
    assert escrow.state == ESCROW_REFUNDED and escrow.close_reason == CLOSE_SHIP_TIMEOUT
    assert facts["buyer3_refund"] == PRICE
    product = decode_product(chain.query("/mall/product", facts["product"])[0][1])
    assert product.stock == 1 and product.sold == 4  # buyer three's unit is back


def test_supply_is_conserved_and_counters_agree(story) -> None:
    chain, facts = story
    assert chain.total_supply() == facts["genesis"].total_supply
    merchant = decode_party(chain.query("/mall/party", facts["keys"]["merchant"].address)[0][1])
    assert merchant.open_orders == 0
    orders = chain.query("/mall/orders", facts["keys"]["merchant"].address + bytes([2]))
    assert sum(1 for key, _ in orders if key[0] == keys.order(NO_ID)[0]) == 3


def test_unpacking_the_case_frees_the_rings(story) -> None:
    chain, facts = story
    k = facts["keys"]
    unpack = TraceEvent(KIND_AGGREGATION, ACTION_DELETE, chain.time_ms, 60, "unpacking",
                        "container_open", parent=CASE, epcs=(RINGS[1],))
    # The carrier holds the case now: only it may unpack it.
    assert chain.block([chain.record(k["carrier1"], unpack)]).codes == [0]
    with chain.reader() as state:
        ring = decode_item(state.get(keys.item(keys.item_key(RINGS[1]))))
    assert ring.parent == NO_ID and ring.holder == k["merchant"].address


def test_a_history_is_checked_with_its_anchors_and_any_change_is_caught(story) -> None:
    chain, _ = story
    for ring in (RINGS[0], RINGS[1]):
        anchors = dict(chain.query("/mall/trace_anchors", ring.encode()))  # proven
        with chain.reader() as state:
            entries = trace(state, ring).entries
        assert len(anchors) < len(entries) / 3
        verify_trace(anchors, entries, keys.item_key(ring))
        events = [key for key in entries if key[0] == keys.event(NO_ID)[0]]
        indexes = [key for key in entries if key[0] == keys.item_event(NO_ID, 0)[0]]
        tampered = dict(entries)
        record = bytearray(tampered[events[3]])
        record[-2] ^= 1  # one byte of one event's payload
        tampered[events[3]] = bytes(record)
        with pytest.raises(TraceInvalid):
            verify_trace(anchors, tampered, keys.item_key(ring))
        dropped = {k: v for k, v in entries.items() if k != indexes[1]}
        with pytest.raises(TraceInvalid):
            verify_trace(anchors, dropped, keys.item_key(ring))
        extra = dict(entries)
        extra[keys.event(b"\x01" * 32)] = entries[events[0]]
        with pytest.raises(TraceInvalid):
            verify_trace(anchors, extra, keys.item_key(ring))
        item_entry = keys.item(keys.item_key(ring))
        other = bytearray(entries[item_entry])
        other[70] ^= 1  # a byte of the item's history hash
        with pytest.raises(TraceInvalid):  # an anchor that is not the entry served
            verify_trace({**anchors, item_entry: bytes(other)}, entries, keys.item_key(ring))
        with pytest.raises(TraceInvalid):  # both changed alike: the chain no longer ends on it
            verify_trace({**anchors, item_entry: bytes(other)},
                         {**entries, item_entry: bytes(other)}, keys.item_key(ring))
        # A shorter history with a genuine mid-history anchor is still refused.
        lot = keys.item_key(LOT)
        lot_entries = {k: v for k, v in entries.items() if k[1:33] != lot
                       or k[0] != keys.item_event(NO_ID, 0)[0]}
        with pytest.raises(TraceInvalid, match=r"missing|not whole|anchor"):
            verify_trace(anchors, lot_entries, keys.item_key(ring))
        own = sorted(k for k in indexes if k[1:33] == keys.item_key(ring))
        last_record = keys.event(decode_index_entry(entries[own[-1]])[0])
        with pytest.raises(TraceInvalid, match=r"not whole|missing"):  # the case's run too
            verify_trace({**anchors, own[-2]: entries[own[-2]]},
                         {k: v for k, v in entries.items() if k not in (own[-1], last_record)},
                         keys.item_key(ring))


def test_a_history_cut_at_a_genuine_anchor_is_still_refused(story) -> None:
    """An input's history must start at its first event, and a container's events run from
    the packing to the unpacking: a node that cuts either with a real proven index entry at
    the cut is refused."""
    chain, _ = story
    lot = keys.item_key(LOT)
    with chain.reader() as state:
        history = trace(state, RINGS[0])
        anchors, entries = dict(history.anchors), dict(history.entries)
        case_history = trace(state, RINGS[1])
    first = keys.item_event(lot, 0)
    second = keys.item_event(lot, 1)
    assert first in entries and second in entries
    record = keys.event(decode_index_entry(entries[first])[0])
    cut = {k: v for k, v in entries.items() if k != record}  # index entry 0 kept as an anchor
    with pytest.raises(TraceInvalid, match="up to it is missing"):
        verify_trace({**anchors, first: entries[first]}, cut, keys.item_key(RINGS[0]))
    # The case's arrival (position 2) is in the case's list only: served as a bare proven
    # index entry, the case's run from the packing to the unpacking of ring two breaks.
    case = keys.item_key(CASE)
    case_entries = dict(case_history.entries)
    arrival = keys.item_event(case, 2)
    record = keys.event(decode_index_entry(case_entries[arrival])[0])
    shortened = {k: v for k, v in case_entries.items() if k != record}
    before = keys.item_event(case, 1)
    proven = {**case_history.anchors, arrival: case_entries[arrival],
              before: case_entries[before]}
    with pytest.raises(TraceInvalid, match="from it are missing"):
        verify_trace(proven, shortened, keys.item_key(RINGS[1]))


def test_an_input_with_later_events_still_verifies(story) -> None:
    """A lot that goes on after the transformation (here: inspected again) has a history
    longer than what a ring's trace needs: the trace serves the lot up to the
    transformation, and the index entries after it stay out."""
    chain, facts = story
    again = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, chain.time_ms, 60, "inspecting",
                       "conformant", ASSAY, quantities=(Quantity(LOT),))
    ok(chain.block([chain.record(facts["keys"]["assay"], again)]))
    lot = keys.item_key(LOT)
    with chain.reader() as state:
        history = trace(state, RINGS[4])
    lot_count = history.items[lot].event_count
    served = [k for k in history.entries if k[0] == keys.item_event(NO_ID, 0)[0]
              and k[1:33] == lot]
    assert keys.item_event(lot, lot_count - 1) not in served
    verify_trace(history.anchors, history.entries, keys.item_key(RINGS[4]))
    proven = dict(chain.query("/mall/trace_anchors", RINGS[4].encode()))
    assert proven == history.anchors
