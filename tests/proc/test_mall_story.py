"""The silver-jewellery story through the `chainmall` CLI against a real node process.

A refiner commissions a silver lot; a workshop transforms part of it into
serialised rings; an assay office inspects and hallmarks them (one wrong
inspection declared erroneous); a certified merchant lists them. Buyer one
orders with a sealed address into escrow, two carriers hand over in turn, the
buyer accepts delivery and confirms, the merchant is paid with tax withheld.
Buyer two's three rings travel in a case; the buyer disputes and a drawn panel
refunds. Buyer three's order is never shipped and times out while the chain
idles. Every read is proven client-side (the CLI says so), the ring's history
is checked with `verify_trace` and its EPCIS export validates against the
standard's schema; the tax authority audits the settlements with proofs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from mallnode import PARAMS, MallCli, start_mall_node
from nodeproc import cli as cli_process

pytestmark = pytest.mark.slow
VECTORS = Path(__file__).resolve().parents[1] / "vectors" / "epcis"
LOT = "urn:epc:class:lgtin:8012345.000001.AG-2026-01"
RINGS = [f"urn:epc:id:sgtin:8012345.000777.{n}" for n in range(1, 6)]
CASE = "urn:epc:id:sscc:8012345.0000000042"
REFINERY = "urn:epc:id:sgln:8012345.00001.0"
WORKSHOP = "urn:epc:id:sgln:8012345.00002.0"
ASSAY = "urn:epc:id:sgln:8012345.00003.0"
PRICE = 20_000
ADDRESS = "Via dei Calzaiuoli 1, 50122 Firenze"
ARBITRATORS = [f"arb{n}" for n in range(1, 5)]
NAMES = ["refiner", "workshop", "assay", "merchant", "carrier1", "carrier2", "buyer1",
         "buyer2", "buyer3", *ARBITRATORS]


def epcis_validator() -> jsonschema.Draft7Validator:
    schema = json.loads((VECTORS / "EPCIS-JSON-Schema.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


@pytest.fixture(scope="module")
def mall(tmp_path_factory: pytest.TempPathFactory) -> Any:
    node, home = start_mall_node(tmp_path_factory.mktemp("mall"), NAMES)
    try:
        yield MallCli(home, node.address)
    finally:
        assert node.stop() == 0, "".join(node.log)


def record(mall: MallCli, signer: str, *args: str) -> str:
    """`mall trace record` as `signer`; the event id."""
    return mall.json("mall", "trace", "record", "--from", signer, *args)["event_id"]


def hand_over(mall: MallCli, item: str, giver: str, taker: str, *accept: str,
              order: str | None = None) -> None:
    linked = ("--order", order) if order else ()
    mall.json("mall", "trace", "propose", item, "--to", taker, "--from", giver, *linked)
    mall.json("mall", "trace", "accept", item, "--from", taker, *accept)


def escrow_state(mall: MallCli, order_id: str) -> dict[str, Any]:
    return mall.json("escrow", "show", order_id)


@pytest.fixture(scope="module")
def story(mall: MallCli, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Runs the story once through the CLI; the tests below check what it left behind."""
    facts: dict[str, Any] = {}
    files = tmp_path_factory.mktemp("files")
    # The parties register; the certifier certifies the merchant.
    for name, role, extra in [("refiner", "producer", ()), ("workshop", "processor", ()),
                              ("assay", "inspector", ()), ("carrier1", "carrier", ()),
                              ("carrier2", "carrier", ()),
                              ("merchant", "merchant", ("--bond", "1000", "--jurisdiction",
                                                        "IT")),
                              *[(arb, "arbitrator", ("--bond", "500")) for arb in ARBITRATORS]]:
        mall.json("mall", "party", "register", "--from", name, "--role", role, "--name",
                  name.capitalize(), *extra)
    mall.json("mall", "merchant", "certify", "merchant", "--brand", "Argento Firenze",
              "--from", "certifier")
    # The refiner commissions the silver lot and hands it to the workshop.
    record(mall, "refiner", "--kind", "object", "--action", "ADD", "--biz-step",
           "commissioning", "--disposition", "active", "--read-point", REFINERY,
           "--biz-location", REFINERY, "--quantity", f"{LOT}=1000:GRM",
           "--time", "2026-01-01T01:00:00+01:00", "--ilmd", "lotNumber=AG-2026-01",
           "--ilmd", "countryOfOrigin=IT", "--ilmd", "productionDate=2026-01-01",
           "--ilmd", "fineness=999")
    hand_over(mall, LOT, "refiner", "workshop", "--read-point", WORKSHOP)
    # The workshop transforms 250 g of it into five serialised rings.
    record(mall, "workshop", "--kind", "transformation", "--biz-step", "commissioning",
           "--disposition", "active", "--read-point", WORKSHOP, "--quantity", f"{LOT}=250:GRM",
           *[arg for ring in RINGS for arg in ("--out-epc", ring)],
           "--ilmd", "material=sterling silver", "--ilmd", "fineness=925")
    # The assay office: a wrong inspection, the hallmark, the wrong one declared erroneous.
    ring_args = [arg for ring in RINGS for arg in ("--epc", ring)]
    wrong = record(mall, "assay", "--kind", "object", "--action", "OBSERVE", "--biz-step",
                   "inspecting", "--disposition", "non_conformant", "--read-point", ASSAY,
                   *ring_args)
    hallmark = record(mall, "assay", "--kind", "object", "--action", "OBSERVE", "--biz-step",
                      "inspecting", "--disposition", "conformant", "--read-point", ASSAY,
                      "--certification", "urn:chainmall:hallmark:925:firenze", *ring_args)
    declared = mall.json("mall", "trace", "declare", wrong, "--reason", "incorrect_data",
                         "--corrective", hallmark, "--from", "assay")
    facts.update(wrong=wrong, hallmark=hallmark, declaration=declared["declaration_id"])
    # The workshop hands four rings to the merchant, who lists them.
    for ring in RINGS[:4]:
        hand_over(mall, ring, "workshop", "merchant")
    metadata = files / "ring.json"
    metadata.write_text('{"title": "Anello in argento 925", "images": ["ring.jpg"]}')
    listed = mall.json("mall", "product", "add", "--from", "merchant", "--price", str(PRICE),
                       "--stock", "5", "--title", "Anello in argento 925", "--category",
                       "jewellery/rings", "--metadata", str(metadata))
    product = facts["product"] = listed["product_id"]

    # Buyer three orders first: never shipped, its ship deadline refunds it while we go on.
    facts["buyer3_before"] = mall.balance("buyer3")
    facts["order3"] = mall.json("mall", "order", "place", product, "--from", "buyer3",
                                "--address", "Piazza Duomo 3, Milano")["order_id"]
    facts["buyer3_paid"] = facts["buyer3_before"] - mall.balance("buyer3")

    # Buyer one: a sealed address, two carriers, delivery accepted, confirmed.
    order1 = facts["order1"] = mall.json("mall", "order", "place", product, "--from",
                                         "buyer1", "--address", ADDRESS)["order_id"]
    mall.json("escrow", "ship", order1, "--item", RINGS[0], "--to", "carrier1", "--from",
              "merchant")
    mall.json("mall", "trace", "accept", RINGS[0], "--from", "carrier1", "--disposition",
              "in_transit")
    facts["after_ship"] = escrow_state(mall, order1)["escrow"]["state"]
    hand_over(mall, RINGS[0], "carrier1", "carrier2", "--disposition", "in_transit",
              order=order1)
    hand_over(mall, RINGS[0], "carrier2", "buyer1", "--biz-step", "accepting",
              "--disposition", "completeness_verified", order=order1)
    facts["after_delivery"] = escrow_state(mall, order1)["escrow"]["state"]
    before = {name: mall.balance(name) for name in ("merchant", "agenzia")}
    facts["confirm"] = mall.json("escrow", "confirm", order1, "--from", "buyer1")
    facts["paid"] = {name: mall.balance(name) - before[name] for name in before}

    # Buyer two: three rings packed in a case, delivered by the carrier, disputed, refunded.
    order2 = facts["order2"] = mall.json("mall", "order", "place", product, "--quantity", "3",
                                         "--from", "buyer2", "--address",
                                         "Lungarno 7, Pisa")["order_id"]
    record(mall, "merchant", "--kind", "aggregation", "--action", "ADD", "--biz-step",
           "packing", "--disposition", "container_closed", "--parent", CASE,
           *[arg for ring in RINGS[1:4] for arg in ("--epc", ring)])
    mall.json("escrow", "ship", order2, "--item", CASE, "--to", "carrier1", "--from",
              "merchant")
    mall.json("mall", "trace", "accept", CASE, "--from", "carrier1")
    mall.json("escrow", "deliver", order2, "--from", "carrier1", "--read-point",
              "urn:epc:id:sgln:8012345.00009.0")
    facts["order2_delivered"] = escrow_state(mall, order2)["escrow"]["state"]
    evidence = files / "photo.txt"
    evidence.write_text("the rings arrived bent")
    mall.json("escrow", "dispute", order2, "--evidence", str(evidence), "--from", "buyer2")
    drawn = mall.poll(lambda: escrow_state(mall, order2),
                      lambda shown: (shown["dispute"] or {}).get("round", 0) >= 1)
    facts["panel"] = [seat["arbitrator"] for seat in drawn["dispute"]["seats"]]
    by_address = {mall.json("keys", "show", arb)["address"]: arb for arb in ARBITRATORS}
    voters = [by_address[address] for address in facts["panel"][:2]]
    buyer2_before = mall.balance("buyer2")
    for voter in voters:
        mall.json("escrow", "rule", order2, "--refund", "--from", voter)
    facts["buyer2_refund"] = mall.balance("buyer2") - buyer2_before
    facts["order2_final"] = escrow_state(mall, order2)

    # Buyer three's deadline passes in an empty block.
    facts["order3_final"] = mall.poll(lambda: escrow_state(mall, facts["order3"]),
                                      lambda shown: shown["escrow"]["state"] == "refunded")
    facts["buyer3_after"] = mall.balance("buyer3")
    return facts


def test_parties_and_the_certification_are_shown_proven(mall: MallCli, story) -> None:
    shown = mall.json("mall", "merchant", "show", "merchant")
    assert shown["roles"] == ["merchant"] and shown["jurisdiction"] == "IT"
    assert shown["proof"]["verified"] and shown["proof"]["entries_verified"] == 2
    [cert] = shown["certifications"]
    assert (cert["brand"], cert["status"]) == ("Argento Firenze", "active")
    assert cert["certifier"] == mall.json("keys", "show", "certifier")["address"]
    listed = mall.json("mall", "merchant", "list", "--certified")
    assert [m["address"] for m in listed["merchants"]] == [shown["address"]]
    human = mall.text("mall", "party", "show", "arb1")
    assert "in the pool:   yes" in human and "proofs: 1 entries verified" in human


def test_the_listing_is_shown_and_listed(mall: MallCli, story) -> None:
    shown = mall.json("mall", "product", "show", story["product"])
    assert shown["title"] == "Anello in argento 925" and shown["proof"]["verified"]
    assert shown["stock"] == 1 and shown["sold"] == "4"  # buyer three's unit came back
    listed = mall.json("mall", "product", "list", "--merchant", "merchant")
    assert [p["product_id"] for p in listed["products"]] == [story["product"]]


def test_only_the_merchant_opens_the_sealed_address(mall: MallCli, story) -> None:
    shown = mall.json("mall", "order", "show", story["order1"])
    assert ADDRESS.encode().hex() not in shown["sealed_address"]
    assert len(shown["sealed_address"]) // 2 == len(ADDRESS) + 48  # a sealed box
    opened = mall.json("mall", "order", "show", story["order1"], "--key", "merchant")
    assert opened["shipping_address"] == ADDRESS
    assert "does not open with key 'buyer1'" in mall.error(
        "mall", "order", "show", story["order1"], "--key", "buyer1")


def test_order_one_shipped_delivered_confirmed_and_paid_with_tax(mall: MallCli, story) -> None:
    assert (story["after_ship"], story["after_delivery"]) == ("shipped", "delivered")
    escrow = escrow_state(mall, story["order1"])["escrow"]
    tax, commission = PRICE * 2_200 // 10_000, PRICE * PARAMS.commission_bps // 10_000
    assert escrow["state"] == "released" and escrow["close_reason"] == "confirmed"
    assert (escrow["tax"], escrow["commission"], escrow["held"]) == (str(tax), str(commission),
                                                                   "0")
    assert story["paid"] == {"merchant": PRICE - tax - commission, "agenzia": tax}
    assert story["confirm"]["code"] == 0 and story["confirm"]["tx_id"]


def test_order_two_disputed_and_refunded_by_a_drawn_panel(mall: MallCli, story) -> None:
    assert story["order2_delivered"] == "delivered"
    panel = story["panel"]
    assert len(panel) == 3 and len(set(panel)) == 3  # 3 x 20,000 > panel_threshold
    merchant = mall.json("keys", "show", "merchant")["address"]
    assert merchant not in panel
    final = story["order2_final"]
    amount = 3 * PRICE
    fee = amount * PARAMS.arbitration_fee_bps // 10_000
    assert final["escrow"]["state"] == "ruled" and final["escrow"]["close_reason"] == "ruling"
    assert final["escrow"]["buyer_paid"] == str(amount - fee)
    assert final["dispute"]["ruling_buyer_bps"] == 10_000
    assert story["buyer2_refund"] == amount - fee
    assert final["proof"]["verified"]
    seats = mall.json("escrow", "list", "--arbitrator", "arb1")
    assert seats["disputes"] == []  # every seat released after the ruling


def test_order_three_timed_out_while_the_chain_was_idle(mall: MallCli, story) -> None:
    final = story["order3_final"]["escrow"]
    assert final["close_reason"] == "ship time-out" and final["buyer_paid"] == str(PRICE)
    # Only the order tx's fee is gone; the escrow came back whole.
    assert story["buyer3_after"] == story["buyer3_before"] - 1
    assert story["buyer3_paid"] == PRICE + 1
    merchant_orders = mall.json("escrow", "list", "--merchant", "merchant")
    assert sorted(e["state"] for e in merchant_orders["escrows"]) == ["refunded", "released",
                                                                      "ruled"]
    assert mall.json("escrow", "list", "--merchant", "merchant", "--open")["escrows"] == []


def test_the_ring_s_history_goes_back_to_the_lot_checked_by_its_proofs(mall: MallCli,
                                                                        story) -> None:
    shown = mall.json("mall", "trace", "show", RINGS[0])
    proof = shown["proof"]
    assert proof["verified"] and 0 < proof["anchors_verified"] < proof["entries_checked"]
    steps = [step["epcis"].get("bizStep") if not step["declaration"] else "declaration"
             for step in shown["steps"]]
    assert steps == ["commissioning", "receiving", "commissioning", "inspecting",
                     "inspecting", "declaration", "receiving", "receiving", "receiving",
                     "accepting"]
    recorders = [step["recorder"] for step in shown["steps"]]
    address = {name: mall.json("keys", "show", name)["address"]
               for name in ("refiner", "workshop", "assay", "buyer1")}
    assert recorders[0] == address["refiner"] and recorders[2] == address["workshop"]
    assert recorders[3] == address["assay"] and recorders[-1] == address["buyer1"]
    by_id = {step["event_id"]: step for step in shown["steps"]}
    assert by_id[story["wrong"]]["declared_by"] == story["declaration"]
    assert by_id[story["hallmark"]]["epcis"]["certificationInfo"] == \
        "urn:chainmall:hallmark:925:firenze"
    assert shown["holder"] == address["buyer1"] and shown["uri"] == RINGS[0]
    human = mall.text("mall", "trace", "show", RINGS[0])
    assert "ERRONEOUS" in human and "entries checked against them (verify_trace)" in human


def test_a_ring_that_travelled_in_the_case_shows_the_case_s_hand_overs(mall: MallCli,
                                                                       story) -> None:
    shown = mall.json("mall", "trace", "show", RINGS[1])
    case_steps = [step["epcis"]["bizStep"] for step in shown["steps"]
                  if step["item"] == CASE]  # the packing is the ring's own event too
    assert case_steps == ["receiving", "arriving"]
    assert [step["epcis"]["parentID"] for step in shown["steps"]
            if step.get("epcis", {}).get("bizStep") == "packing"] == [CASE]
    assert shown["packed_in"] is not None
    assert shown["holder"] == mall.json("keys", "show", "carrier1")["address"]


def test_the_exported_epcis_document_validates(mall: MallCli, story, tmp_path: Path) -> None:
    output = tmp_path / "ring1.jsonld"
    written = mall.json("mall", "trace", "export", RINGS[0], "--output", str(output))
    document = json.loads(output.read_text())
    assert written["events"] == len(document["epcisBody"]["eventList"]) == 9
    errors = sorted(epcis_validator().iter_errors(document), key=str)
    assert errors == []
    declared = [e for e in document["epcisBody"]["eventList"] if "errorDeclaration" in e]
    assert len(declared) == 1
    streamed = mall.run("mall", "trace", "export", RINGS[0])
    assert streamed.exit_code == 0 and json.loads(streamed.stdout) == document


def test_the_tax_authority_audits_with_proofs(mall: MallCli, story) -> None:
    report = mall.json("mall", "tax", "report", "--jurisdiction", "IT", "--from", "0")
    tax = PRICE * 2_200 // 10_000
    assert report["settlement_count"] == 1  # the ruling refunded all: no merchant share
    assert (report["gross_total"], report["tax_total"]) == (str(PRICE), str(tax))
    [settlement] = report["settlements"]
    assert settlement["order_id"] == story["order1"] and settlement["rate_bps"] == 2_200
    assert report["proof"]["verified"] and report["proof"]["pages"][0]["entries_verified"] == 1
    height = settlement["height"]
    empty = mall.json("mall", "tax", "report", "--jurisdiction", "IT", "--from",
                      str(height + 1), "--to", str(height + 1))
    assert empty["settlement_count"] == 0 and empty["tax_total"] == "0"
    mall.json("mall", "tax", "rate", "--jurisdiction", "IT", "--rate-bps", "2000", "--from",
              "agenzia")
    assert mall.json("mall", "tax", "report", "--jurisdiction", "IT")["rate"]["rate_bps"] == 2000


def test_an_epcis_document_is_imported_as_signed_events(mall: MallCli, story,
                                                        tmp_path: Path) -> None:
    lot2 = "urn:epc:class:lgtin:8012345.000001.AG-2026-02"
    events = [
        {"type": "ObjectEvent", "eventID": "ni:///a", "action": "ADD",
         "eventTime": "2026-02-01T09:00:00+01:00", "eventTimeZoneOffset": "+01:00",
         "bizStep": "commissioning", "disposition": "active", "epcList": [],
         "quantityList": [{"epcClass": lot2, "quantity": 500, "uom": "GRM"}],
         "ilmd": {"cbvmda:lotNumber": "AG-2026-02"}},
        {"type": "ObjectEvent", "eventID": "ni:///b", "action": "OBSERVE",
         "eventTime": "2026-02-01T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
         "bizStep": "storing", "disposition": "damaged", "epcList": [],
         "quantityList": [{"epcClass": lot2}],
         "errorDeclaration": {"declarationTime": "2026-02-01T11:00:00+01:00",
                              "reason": "incorrect_data", "correctiveEventIDs": ["ni:///c"]}},
        {"type": "ObjectEvent", "eventID": "ni:///c", "action": "OBSERVE",
         "eventTime": "2026-02-01T10:00:00+01:00", "eventTimeZoneOffset": "+01:00",
         "bizStep": "storing", "disposition": "active", "epcList": [],
         "quantityList": [{"epcClass": lot2}]},
    ]
    path = tmp_path / "lot2.jsonld"
    path.write_text(json.dumps({"@context": ["https://ref.gs1.org/standards/epcis/2.0.0/"
                                             "epcis-context.jsonld"],
                                "type": "EPCISDocument", "schemaVersion": "2.0",
                                "creationDate": "2026-02-01T12:00:00Z",
                                "epcisBody": {"eventList": events}}))
    imported = mall.json("mall", "trace", "import", str(path), "--from", "refiner")
    assert [tx["code"] for tx in imported["txs"]] == [0, 0, 0, 0]
    assert [("declaration_id" in tx) for tx in imported["txs"]] == [False, False, False, True]
    shown = mall.json("mall", "trace", "show", lot2)
    assert len(shown["steps"]) == 4 and shown["proof"]["verified"]
    event_ids = [tx["event_id"] for tx in imported["txs"][:3]]
    recorded = [step["event_id"] for step in shown["steps"] if not step["declaration"]]
    assert recorded[0] == event_ids[0] and sorted(recorded) == sorted(event_ids)  # b, c: one
    # height and time, so the id orders them
    again = mall.run("--json", "mall", "trace", "import", str(path), "--from", "refiner")
    assert again.exit_code == 1 and "EventExists (418)" in again.stderr  # nothing twice


def test_bad_input_against_the_node_is_one_line_and_changes_nothing(mall: MallCli,
                                                                    story) -> None:
    product, order1 = story["product"], story["order1"]
    before = mall.json("mall", "product", "show", product)
    assert "OutOfStock (411)" in mall.error("mall", "order", "place", product, "--quantity",
                                           "5", "--from", "buyer1", "--address", "x")
    assert "PriceAboveLimit (412)" in mall.error(
        "mall", "order", "place", product, "--max-price", "1", "--from", "buyer1",
        "--address", "x")
    assert "WrongParty (425)" in mall.error("escrow", "confirm", order1, "--from", "buyer2")
    assert "WrongEscrowState (424)" in mall.error("escrow", "confirm", order1, "--from",
                                                  "buyer1")
    assert "NotOwner (409)" in mall.error("mall", "product", "update", product, "--price",
                                          "1", "--from", "buyer1")
    assert "NotCertifier (405)" in mall.error("mall", "merchant", "certify", "merchant",
                                              "--brand", "X", "--from", "buyer1")
    assert "NotHolder (415)" in mall.error("mall", "trace", "propose", RINGS[4], "--to",
                                           "buyer1", "--from", "merchant")
    assert "NotTaxAuthority (406)" in mall.error("mall", "tax", "rate", "--jurisdiction",
                                                 "IT", "--rate-bps", "1", "--from", "merchant")
    assert "has no dispute" in mall.error("escrow", "rule", story["order3"], "--refund",
                                          "--from", "arb1")
    assert "absence proven" in mall.error("mall", "product", "show", "ab" * 32)
    assert "absence proven" in mall.error("escrow", "show", "ab" * 32)
    assert "absence proven" in mall.error("mall", "party", "show", "buyer1")
    assert "no item" in mall.error("mall", "trace", "show", "urn:epc:id:sgtin:0.0.404")
    assert "is a party but not a merchant" in mall.error("mall", "merchant", "show", "arb1")
    after = mall.json("mall", "product", "show", product)
    assert {k: v for k, v in after.items() if k != "proof"} == \
        {k: v for k, v in before.items() if k != "proof"}
    assert mall.error("escrow", "show", order1, "--node", "tcp://127.0.0.1:9").startswith(
        "error: cannot reach")


def test_a_command_runs_as_a_real_process_too(mall: MallCli, story) -> None:
    result = cli_process(mall.home, "--json", "escrow", "show", story["order1"], "--node",
                         mall.node_address)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["escrow"]["state"] == "released"


def test_a_tx_command_prints_its_tx_id_and_waits_unless_no_wait(mall: MallCli, story) -> None:
    product = story["product"]
    waited = mall.text("mall", "product", "update", product, "--stock", "2", "--from",
                       "merchant")
    assert waited.startswith("tx ") and ": final at height " in waited and ": ok" in waited
    submitted = mall.json("mall", "product", "update", product, "--price", str(PRICE + 1),
                          "--from", "merchant", "--no-wait")
    assert submitted["status"] == "pending" and submitted["code"] is None
    final = mall.poll(lambda: mall.json("tx", "show", submitted["tx_id"]),
                      lambda shown: shown["status"] == "final")
    assert final["code"] == 0
    shown = mall.json("mall", "product", "show", product)
    assert (shown["price"], shown["stock"]) == (str(PRICE + 1), 2)


def test_a_certification_is_revoked_and_shown_revoked(mall: MallCli, story) -> None:
    mall.json("mall", "merchant", "certify", "merchant", "--brand", "Argento Milano", "--from",
              "certifier")
    revoked = mall.json("mall", "merchant", "revoke", "merchant", "--brand", "Argento Milano",
                        "--from", "certifier")
    assert revoked["code"] == 0
    shown = mall.json("mall", "merchant", "show", "merchant")
    status = {cert["brand"]: (cert["status"], cert["revoked_height"])
              for cert in shown["certifications"]}
    assert status == {"Argento Firenze": ("active", None),
                      "Argento Milano": ("revoked", revoked["height"])}
    assert shown["proof"]["verified"]
    assert "CertificationMissing" in mall.error("mall", "merchant", "revoke", "merchant",
                                                "--brand", "Argento Milano", "--from",
                                                "certifier")
