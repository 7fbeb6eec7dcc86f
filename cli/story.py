"""The silver-jewellery story as signed txs, block by block: what `node demo` plays and the
product page's tests load.

A refinery commissions a silver lot; a carrier takes it to a workshop, which
forges twelve serialised rings from part of it; an assay office records a
wrong inspection, then the hallmark, and declares the first erroneous; the
workshop hands the rings to a certified merchant, who lists them. Buyer one
orders one ring, which travels with two carriers and is delivered and
confirmed; buyer two orders three, packed in a case, delivered by the
carrier and confirmed. The assay office inspects what is left of the lot. A
second, uncertified merchant lists earrings. Where the node has the trust
rules (core/trust), both buyers then review the rings and the merchant
replies to the second.

Everything is deterministic (keys from labels, fixed event times) except the
sealed shipping addresses (libsodium sealed boxes; `seal` may be replaced),
so each run gives the same parties, items, event ids and listing id.
`blocks()` returns the txs in batches: a batch needs every earlier batch
final, the txs of one batch can share a block.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field

from chainmall.core import constants as C
from chainmall.core.genesis import Genesis, MallParams, make_genesis, make_mall
from chainmall.core.keys import KeyPair
from chainmall.core.mall.codec import NO_ID
from chainmall.core.mall.custody import Acceptance, Proposal
from chainmall.core.mall.escrow import DeliveryNote
from chainmall.core.mall.events import ErrorDeclaration, Quantity, TraceEvent, event_id_of
from chainmall.core.mall.keys import item_key
from chainmall.core.mall.order_record import OrderRef
from chainmall.core.mall.orders import Placement
from chainmall.core.mall.parties import Certification, PartyDetails
from chainmall.core.mall.products import Listing
from chainmall.core.mall.sealing import seal_address
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_NONE,
    ACTION_OBSERVE,
    KIND_AGGREGATION,
    KIND_OBJECT,
    KIND_TRANSFORMATION,
    ROLE_CARRIER,
    ROLE_INSPECTOR,
    ROLE_MERCHANT,
    ROLE_PROCESSOR,
    ROLE_PRODUCER,
)
from chainmall.core.tx import Tx, sign_tx

START_MS = 1_775_030_400_000  # 2026-04-01T08:00:00Z
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
BOLIVIA_MIN = -240  # UTC-04:00
MEXICO_MIN = -360  # UTC-06:00
FEE = 1
EXPIRY_HEIGHT = 10**12
BALANCE = 10**9
BOND = 1_000
PRICE = 8_900
CERTIFIER_NAME = "Silver Guild Certification"
BRAND = "Taxco Silver"
LOT = "urn:epc:class:lgtin:7771234.000001.AG-2026-0042"
RINGS = tuple(f"urn:epc:id:sgtin:7501234.012345.{n}" for n in range(1, 13))
CASE = "urn:epc:id:sscc:7501234.0000000042"
REFINERY = "urn:epc:id:sgln:7771234.00001.0"
WORKSHOP = "urn:epc:id:sgln:7501234.00002.0"
ASSAY_LAB = "urn:epc:id:sgln:7501234.00003.0"
SHOP = "urn:epc:id:sgln:7501234.00004.0"
DEPOT = "urn:epc:id:sgln:7501234.00005.0"
HALLMARK = "urn:chainmall:hallmark:925:taxco"

# name -> (display name, roles, bond, jurisdiction)
PARTIES: dict[str, tuple[str, int, int, str]] = {
    "refinery": ("Andes Silver Refinery", ROLE_PRODUCER, 0, ""),
    "workshop": ("Taller Plata Taxco", ROLE_PROCESSOR, 0, ""),
    "assay": ("Taxco Assay Office", ROLE_INSPECTOR, 0, ""),
    "merchant": ("Luna Jewellery", ROLE_MERCHANT, BOND, "MX"),
    "merchant2": ("Plata Viva", ROLE_MERCHANT, BOND, "MX"),
    "freight": ("Sierra Freight", ROLE_CARRIER, 0, ""),
    "courier": ("Last Mile Couriers", ROLE_CARRIER, 0, ""),
}
# (buyer, stars, text): the reviews of the rings, and the merchant's reply to buyer two's.
REVIEWS = (("buyer1", 5, "Beautiful ring, and I could see where the silver came from."),
           ("buyer2", 4, "Three lovely rings; the case arrived a day late."))
REPLY = "Thank you! The case is reusable: bring it back for a free polish."
ACCOUNTS = (*PARTIES, "buyer1", "buyer2", "certifier", "tax-mx")


def story_key(name: str) -> KeyPair:
    """The story's key called `name` (deterministic)."""
    return KeyPair.from_seed(hashlib.sha256(b"chainmall silver story: " + name.encode()).digest())


def story_genesis(chain_id: str, validator: bytes, balances: tuple[tuple[bytes, int], ...] = (),
                  genesis_time_ms: int = 0, fee_min: int = FEE) -> Genesis:
    """A genesis with the story's accounts funded, its certifier and Mexico's tax authority,
    `validator` (a public key) as the single validator, and `balances` besides."""
    mall = make_mall([(story_key("certifier").address, CERTIFIER_NAME)],
                     [("MX", story_key("tax-mx").address, 1_600)], MallParams())
    funded = [(story_key(name).address, BALANCE) for name in ACCOUNTS]
    return make_genesis(chain_id, [*funded, *balances], [(validator, 1)],
                        genesis_time_ms=genesis_time_ms, fee_min=fee_min, mall=mall)


@dataclass
class SilverStory:
    """The story's txs for chain `chain_id` (see the module docstring)."""

    chain_id: str
    seal: Callable[[bytes, str], bytes] = seal_address  # (merchant public key, address)
    nonces: dict[str, int] = field(default_factory=dict)
    product_id: bytes = b""  # the rings' listing
    other_product_id: bytes = b""  # the uncertified merchant's earrings
    wrong_inspection: bytes = b""  # the event id the assay office declares erroneous

    featured_item = RINGS[0]  # the ring buyer one received: the richest history

    def _tx(self, name: str, tx_type: int, payload: bytes) -> Tx:
        nonce = self.nonces.get(name, 0)
        self.nonces[name] = nonce + 1
        return sign_tx(story_key(name), self.chain_id, tx_type, nonce, FEE, EXPIRY_HEIGHT,
                       payload)

    def record(self, name: str, event: TraceEvent) -> Tx:
        """A TRACE_RECORD of `event` signed by the party `name`."""
        return self._tx(name, C.TX_MALL_TRACE_RECORD, event.encode())

    def _hand(self, giver: str, uri: str, receiver: str, order_id: bytes = NO_ID) -> Tx:
        proposal = Proposal(item_key(uri), story_key(receiver).address, order_id)
        return self._tx(giver, C.TX_MALL_HANDOVER_PROPOSE, proposal.encode())

    def _take(self, receiver: str, uri: str, time_ms: int, tz_min: int, step: str,
              disposition: str, where: str) -> Tx:
        acceptance = Acceptance(item_key(uri), time_ms, tz_min, step, disposition, where, where)
        return self._tx(receiver, C.TX_MALL_HANDOVER_ACCEPT, acceptance.encode())

    def blocks(self) -> list[list[Tx]]:
        """Every batch of the story, in order (see the module docstring)."""
        t = START_MS
        batches: list[list[Tx]] = []
        batches.append([
            self._tx(name, C.TX_MALL_PARTY_REGISTER,
                     PartyDetails(roles, bond, jurisdiction, display, bytes(32)).encode())
            for name, (display, roles, bond, jurisdiction) in PARTIES.items()])
        batches.append([self._tx("certifier", C.TX_MALL_CERTIFY, Certification(
            story_key("merchant").address, BRAND).encode())])
        batches.append([self.record("refinery", TraceEvent(
            KIND_OBJECT, ACTION_ADD, t, BOLIVIA_MIN, "commissioning", "active", REFINERY,
            REFINERY, quantities=(Quantity(LOT, 5_000, "GRM"),),
            ilmd=(("cbvmda:lotNumber", "AG-2026-0042"), ("cbvmda:countryOfOrigin", "BO"),
                  ("chainmall:fineness", "999"),
                  ("chainmall:origin", "Cerro Rico, Potosí")))),
            self._hand("refinery", LOT, "freight")])
        batches.append([self._take("freight", LOT, t + 2 * DAY_MS, BOLIVIA_MIN, "receiving",
                                   "in_transit", REFINERY),
                        self._hand("freight", LOT, "workshop")])
        batches.append([self._take("workshop", LOT, t + 9 * DAY_MS, MEXICO_MIN, "receiving",
                                   "in_progress", WORKSHOP)])
        batches.append([self.record("workshop", TraceEvent(
            KIND_TRANSFORMATION, ACTION_NONE, t + 12 * DAY_MS, MEXICO_MIN, "commissioning",
            "active", WORKSHOP, WORKSHOP, quantities=(Quantity(LOT, 96, "GRM"),),
            out_epcs=RINGS,
            ilmd=(("chainmall:material", "sterling silver"), ("chainmall:fineness", "925"),
                  ("chainmall:productionDate", "2026-04-13"))))])
        wrong = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, t + 14 * DAY_MS, MEXICO_MIN,
                           "inspecting", "non_conformant", ASSAY_LAB, ASSAY_LAB, epcs=RINGS)
        hallmark = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, t + 14 * DAY_MS + 2 * HOUR_MS,
                              MEXICO_MIN, "inspecting", "conformant", ASSAY_LAB, ASSAY_LAB,
                              epcs=RINGS, certification=HALLMARK)
        batches.append([self.record("assay", wrong), self.record("assay", hallmark)])
        assay = story_key("assay").address
        self.wrong_inspection = event_id_of(assay, wrong.encode())
        batches.append([self._tx("assay", C.TX_MALL_TRACE_DECLARE_ERROR, ErrorDeclaration(
            self.wrong_inspection, t + 14 * DAY_MS + 3 * HOUR_MS, MEXICO_MIN,
            "incorrect_data", (event_id_of(assay, hallmark.encode()),)).encode())])
        batches.append([self._hand("workshop", ring, "merchant") for ring in RINGS])
        batches.append([self._take("merchant", ring, t + 16 * DAY_MS, MEXICO_MIN, "receiving",
                                   "sellable_not_accessible", SHOP) for ring in RINGS])
        listing = self._tx("merchant", C.TX_MALL_PRODUCT_LIST, Listing(
            PRICE, len(RINGS), bytes(32), "Sterling silver ring, hand-forged in Taxco",
            "jewellery/rings").encode())
        self.product_id = listing.tx_id
        earrings = self._tx("merchant2", C.TX_MALL_PRODUCT_LIST, Listing(
            5_400, 23, bytes(32), "Leaf earrings in 950 silver", "jewellery/earrings").encode())
        self.other_product_id = earrings.tx_id
        batches.append([listing, earrings])
        merchant_key = story_key("merchant").public_key
        order1 = self._tx("buyer1", C.TX_MALL_ORDER_PLACE, Placement(
            self.product_id, 1, PRICE, self.seal(
                merchant_key, "Av. Chapultepec 480, Guadalajara")).encode())
        order2 = self._tx("buyer2", C.TX_MALL_ORDER_PLACE, Placement(
            self.product_id, 3, PRICE, self.seal(
                merchant_key, "Calle Hidalgo 12, Puebla")).encode())
        batches.append([order1, order2])
        shipped = t + 30 * DAY_MS
        batches.append([
            self._hand("merchant", RINGS[0], "freight", order1.tx_id),
            self.record("merchant", TraceEvent(
                KIND_AGGREGATION, ACTION_ADD, shipped, MEXICO_MIN, "packing",
                "container_closed", SHOP, SHOP, parent=CASE, epcs=RINGS[1:4])),
            self._hand("merchant", CASE, "freight", order2.tx_id)])
        batches.append([
            self._take("freight", RINGS[0], shipped + HOUR_MS, MEXICO_MIN, "receiving",
                       "in_transit", SHOP),
            self._take("freight", CASE, shipped + HOUR_MS, MEXICO_MIN, "receiving",
                       "in_transit", SHOP)])
        batches.append([self._hand("freight", RINGS[0], "courier", order1.tx_id),
                        self._tx("freight", C.TX_MALL_ESCROW_DELIVER, DeliveryNote(
                            order2.tx_id, shipped + 2 * DAY_MS, MEXICO_MIN, DEPOT).encode())])
        batches.append([self._take("courier", RINGS[0], shipped + DAY_MS, MEXICO_MIN,
                                   "receiving", "in_transit", DEPOT)])
        batches.append([self._hand("courier", RINGS[0], "buyer1", order1.tx_id),
                        self._tx("buyer2", C.TX_MALL_ESCROW_CONFIRM,
                                 OrderRef(order2.tx_id).encode())])
        batches.append([self._take("buyer1", RINGS[0], shipped + 2 * DAY_MS, MEXICO_MIN,
                                   "accepting", "completeness_verified", DEPOT)])
        batches.append([self._tx("buyer1", C.TX_MALL_ESCROW_CONFIRM,
                                 OrderRef(order1.tx_id).encode()),
                        self.record("assay", TraceEvent(
                            KIND_OBJECT, ACTION_OBSERVE, shipped + 5 * DAY_MS, MEXICO_MIN,
                            "inspecting", "conformant", ASSAY_LAB, ASSAY_LAB,
                            quantities=(Quantity(LOT, 4_904, "GRM"),)))])
        batches += self._reviews(order1.tx_id, order2.tx_id)
        return batches

    def _reviews(self, order1: bytes, order2: bytes) -> list[list[Tx]]:
        """The buyers' reviews and the merchant's reply, where the trust rules exist."""
        if importlib.util.find_spec("chainmall.core.trust") is None:
            return []
        reviews = importlib.import_module("chainmall.core.trust.reviews")
        orders = {"buyer1": order1, "buyer2": order2}
        batch = [self._tx(buyer, C.TX_TRUST_REVIEW_ADD, reviews.ReviewDraft(
            orders[buyer], rating, len(text.encode()), text.encode()).encode())
            for buyer, rating, text in REVIEWS]
        return [batch, [self._tx("merchant", C.TX_TRUST_REVIEW_REPLY, reviews.ReplyDraft(
            order2, len(REPLY.encode()), REPLY.encode()).encode())]]
