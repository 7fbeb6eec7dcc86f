"""Every mall tx type: bad inputs and wrong signers fail with their code and change nothing.

One chain is set up with parties, listings, items and orders in every escrow
state; each case then runs one tx in its own block and checks its receipt code
and that the only state it changed is the sender's account (fee and nonce) and
the fee pool (the fee).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from chainmall.core import constants as C
from chainmall.core.errors import (
    AlreadyDeclared,
    AlreadyVoted,
    AmountOutOfRange,
    BondTooLow,
    CertificationMissing,
    EventExists,
    EventNotFound,
    HandoverExists,
    HandoverNotFound,
    HandoverStale,
    InsufficientBalance,
    ItemExists,
    ItemNotFound,
    ItemPacked,
    MalformedPayload,
    NotCertifier,
    NotHolder,
    NotOnPanel,
    NotOwner,
    NotRegistered,
    NotTaxAuthority,
    NotVoting,
    ObligationsOpen,
    OrderNotFound,
    OutOfStock,
    PartyExists,
    PriceAboveLimit,
    ProductDelisted,
    ProductNotFound,
    RoleMissing,
    SelfDealing,
    StepNotAllowed,
    TooMuchEvidence,
    UnknownJurisdiction,
    WrongEscrowState,
    WrongParty,
)
from chainmall.core.hashing import digest
from chainmall.core.mall import keys
from chainmall.core.mall.custody import Acceptance, HandoverRef
from chainmall.core.mall.disputes import load_dispute
from chainmall.core.mall.events import (
    BizTransaction,
    ErrorDeclaration,
    Quantity,
    TraceEvent,
    document_link,
)
from chainmall.core.mall.history import trace
from chainmall.core.mall.install import HANDLERS
from chainmall.core.mall.keys import item_key
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    ACTION_DELETE,
    ACTION_NONE,
    ACTION_OBSERVE,
    BIZ_STEPS,
    KIND_AGGREGATION,
    KIND_OBJECT,
    KIND_TRANSACTION,
    KIND_TRANSFORMATION,
    ROLE_ARBITRATOR,
    ROLE_CARRIER,
    ROLE_INSPECTOR,
    ROLE_MERCHANT,
    ROLE_PROCESSOR,
    ROLE_PRODUCER,
    index_of,
)
from chainmall.core.state.accounts import FEE_POOL_KEY, account_key, decode_fee_pool, unpack_account
from mall_chain import FEE, MallChain, key, mall_genesis, ok

NAMES = ["merchant", "merchant2", "producer", "processor", "inspector", "carrier",
         "carrier2", "buyer", "stranger", "certifier", "agenzia", "arb1", "arb2", "arb3",
         "arb4", "poor"]
K = {name: key(name) for name in NAMES}
ITEM = "urn:epc:id:sgtin:1.2.1"  # held by the producer, proposed to the processor
HELD = "urn:epc:id:sgtin:1.2.2"  # held by the merchant
PACKED = "urn:epc:id:sgtin:1.2.3"  # packed in CASE, held by the merchant
CASE = "urn:epc:id:sscc:1.99"
LOT = "urn:epc:class:lgtin:1.2.LOT"  # a class held by the producer
SHIPPED_ITEM = "urn:epc:id:sgtin:1.2.9"


def event(kind: int, action: int, step: str | None = None, **fields: Any) -> TraceEvent:
    return TraceEvent(kind, action, 1_767_225_600_000, 0, step, **fields)


@dataclass
class World:
    chain: MallChain
    product: bytes
    delisted: bytes
    funded: bytes
    shipped: bytes
    delivered: bytes
    disputed: bytes
    released: bytes
    undrawn: bytes
    commission_id: bytes
    panel: list[bytes]



@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    balances = {name: 10**9 for name in NAMES}
    balances["poor"] = 10
    chain = MallChain(tmp_path_factory.mktemp("rules") / "data",
                      mall_genesis(balances, certifiers=("certifier",)))
    ok(chain.block([
        chain.register(K["merchant"], ROLE_MERCHANT, 1_000, "IT"),
        chain.register(K["merchant2"], ROLE_MERCHANT, 1_000, "IT"),
        chain.register(K["producer"], ROLE_PRODUCER),
        chain.register(K["processor"], ROLE_PROCESSOR),
        chain.register(K["inspector"], ROLE_INSPECTOR),
        chain.register(K["carrier"], ROLE_CARRIER),
        chain.register(K["carrier2"], ROLE_CARRIER),
        *[chain.register(K[f"arb{n}"], ROLE_ARBITRATOR, 500) for n in (1, 2, 3, 4)],
    ]))
    commission = event(KIND_OBJECT, ACTION_ADD, "commissioning", epcs=(ITEM,),
                       quantities=(Quantity(LOT, 10, "KGM"),))
    merchant_items = event(KIND_OBJECT, ACTION_ADD, "commissioning",
                           epcs=(HELD, PACKED, SHIPPED_ITEM, *[f"urn:epc:id:sgtin:1.3.{n}"
                                                                for n in range(6)]))
    first = [chain.record(K["producer"], commission), chain.record(K["merchant"], merchant_items)]
    product, delisted, big = (chain.list_product(K["merchant"], 1_000, 20),
                              chain.list_product(K["merchant"], 1_000, 5),
                              chain.list_product(K["merchant"], 60_000, 5))
    ok(chain.block([*first, product, delisted, big,
                    chain.certify(K["certifier"], K["merchant"].address, "Brand")]))
    pack = event(KIND_AGGREGATION, ACTION_ADD, "packing", parent=CASE, epcs=(PACKED,))
    ok(chain.block([chain.record(K["merchant"], pack), chain.delist(K["merchant"],
                                                                     delisted.tx_id),
                    chain.propose(K["producer"], ITEM, K["processor"].address)]))
    # The disputed order is above the panel threshold: a panel of three.
    orders = [chain.order(K["buyer"], product.tx_id, 1, 1_000) for _ in range(5)]
    orders.append(chain.order(K["buyer"], big.tx_id, 1, 60_000))
    ok(chain.block(orders))
    funded, shipped, delivered, released, undrawn, disputed = (o.tx_id for o in orders)
    items = [f"urn:epc:id:sgtin:1.3.{n}" for n in range(6)]
    ok(chain.block([chain.propose(K["merchant"], items[i], K["carrier"].address, o)
                    for i, o in ((1, shipped), (2, delivered), (3, disputed), (4, released),
                                 (5, undrawn))]))
    ok(chain.block([chain.accept(K["carrier"], items[i]) for i in (1, 2, 3, 4, 5)]))
    ok(chain.block([chain.deliver(K["carrier"], o) for o in (delivered, disputed, released,
                                                              undrawn)]))
    ok(chain.block([chain.confirm(K["buyer"], released),
                    chain.dispute(K["buyer"], disputed)]))
    ok(chain.block([chain.dispute(K["merchant"], undrawn)]))  # its draw: next block
    with chain.reader() as state:
        dispute = load_dispute(state, disputed)
        commission_id = trace(state, ITEM).steps[0].event_id
    return World(chain, product.tx_id, delisted.tx_id, funded, shipped, delivered, disputed,
                 released, undrawn, commission_id, [s.arbitrator for s in dispute.seats])


def snapshot(chain: MallChain) -> dict[bytes, bytes]:
    with chain.store.reader() as view:
        return dict(view.state_items())


def expect_failure(world: World, signer: str, tx_type: int, payload: bytes,
                   error: type) -> None:
    """Run the tx alone in a block; its code is `error`'s and only its fee moved.

    A draw queued by the fixture happens in the first block run here; the begin
    hook's writes are the block's, not the tx's, so the block is run empty first.
    """
    chain = world.chain
    chain.resync_nonces()  # callers build payloads with throw-away txs
    chain.block([])
    before = snapshot(chain)
    result = chain.block([chain.tx(K[signer], tx_type, payload)])
    assert result.codes == [error.code], (result.codes, result.logs)
    assert result.events == [[]]
    after = snapshot(chain)
    changed = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    assert changed <= {account_key(K[signer].address), FEE_POOL_KEY}, sorted(
        key.hex() for key in changed)


# --- malformed payloads, for every tx type --------------------------------------------


def _valid_payloads(world: World) -> dict[int, bytes]:
    c = world.chain
    t = lambda tx: tx.payload  # noqa: E731 - payloads only: the txs are never submitted
    return {
        C.TX_MALL_PARTY_REGISTER: t(c.register(K["stranger"], ROLE_PRODUCER)),
        C.TX_MALL_PARTY_UPDATE: t(c.update_party(K["producer"], ROLE_PRODUCER)),
        C.TX_MALL_PARTY_UNBOND: t(c.unbond(K["merchant"], 1)),
        C.TX_MALL_CERTIFY: t(c.certify(K["certifier"], K["merchant"].address, "B")),
        C.TX_MALL_REVOKE: t(c.revoke(K["certifier"], K["merchant"].address, "B")),
        C.TX_MALL_PRODUCT_LIST: t(c.list_product(K["merchant"], 1, 1)),
        C.TX_MALL_PRODUCT_UPDATE: t(c.update_product(K["merchant"], world.product, 1, 1)),
        C.TX_MALL_PRODUCT_DELIST: t(c.delist(K["merchant"], world.product)),
        C.TX_MALL_TRACE_RECORD: event(KIND_OBJECT, ACTION_OBSERVE, epcs=(ITEM,)).encode(),
        C.TX_MALL_TRACE_DECLARE_ERROR: ErrorDeclaration(world.commission_id, 1, 0).encode(),
        C.TX_MALL_HANDOVER_PROPOSE: t(c.propose(K["merchant"], HELD, K["carrier"].address)),
        C.TX_MALL_HANDOVER_ACCEPT: t(c.accept(K["processor"], ITEM)),
        C.TX_MALL_HANDOVER_REJECT: t(c.reject(K["processor"], ITEM)),
        C.TX_MALL_HANDOVER_CANCEL: t(c.cancel_handover(K["producer"], ITEM,
                                                       K["processor"].address)),
        C.TX_MALL_ORDER_PLACE: t(c.order(K["buyer"], world.product, 1, 1_000)),
        C.TX_MALL_ORDER_CANCEL: t(c.cancel_order(K["merchant"], world.funded)),
        C.TX_MALL_ESCROW_DELIVER: t(c.deliver(K["carrier"], world.shipped)),
        C.TX_MALL_ESCROW_CONFIRM: t(c.confirm(K["buyer"], world.delivered)),
        C.TX_MALL_DISPUTE_OPEN: t(c.dispute(K["buyer"], world.delivered)),
        C.TX_MALL_DISPUTE_EVIDENCE: t(c.evidence(K["buyer"], world.disputed, b"\x01" * 32)),
        C.TX_MALL_DISPUTE_VOTE: t(c.vote(K["arb1"], world.disputed, 1, 0)),
        C.TX_MALL_TAX_RATE_SET: t(c.set_rate(K["agenzia"], "IT", 100)),
    }


def test_every_mall_tx_type_refuses_a_non_canonical_payload(world: World) -> None:
    payloads = _valid_payloads(world)
    assert sorted(payloads) == sorted(HANDLERS)
    world.chain.resync_nonces()  # the payloads were built with throw-away txs
    for tx_type, payload in payloads.items():
        for bad in (b"", b"\x02" + payload[1:], payload + b"\x00", payload[:-1]):
            expect_failure(world, "stranger", tx_type, bad, MalformedPayload)


# --- rule failures, one case each ------------------------------------------------------


def cases(world: World) -> list[tuple[str, str, int, bytes, type]]:
    c, w = world.chain, world
    p = lambda tx: tx.payload  # noqa: E731
    m, b, s = K["merchant"], K["buyer"], K["stranger"]
    add = event(KIND_OBJECT, ACTION_ADD, "commissioning", epcs=("urn:epc:id:sgtin:9.9.9",))
    return [
        # parties
        ("register twice", "merchant", C.TX_MALL_PARTY_REGISTER,
         p(c.register(m, ROLE_MERCHANT, 1_000, "IT")), PartyExists),
        ("merchant without tax authority", "stranger", C.TX_MALL_PARTY_REGISTER,
         p(c.register(s, ROLE_MERCHANT, 1_000, "FR")), UnknownJurisdiction),
        ("bond below minimum", "stranger", C.TX_MALL_PARTY_REGISTER,
         p(c.register(s, ROLE_ARBITRATOR, 499)), BondTooLow),
        ("bond above balance", "poor", C.TX_MALL_PARTY_REGISTER,
         p(c.register(K["poor"], ROLE_ARBITRATOR, 500)), InsufficientBalance),
        ("update unregistered", "stranger", C.TX_MALL_PARTY_UPDATE,
         p(c.update_party(s, ROLE_PRODUCER)), NotRegistered),
        ("drop merchant with open orders", "merchant", C.TX_MALL_PARTY_UPDATE,
         p(c.update_party(m, ROLE_PRODUCER)), ObligationsOpen),
        ("drop arbitrator with seats", world_arbitrator(w), C.TX_MALL_PARTY_UPDATE,
         p(c.update_party(K[world_arbitrator(w)], 0)), ObligationsOpen),
        ("update to merchant in unknown jurisdiction", "producer", C.TX_MALL_PARTY_UPDATE,
         p(c.update_party(K["producer"], ROLE_MERCHANT, 1_000, "FR")), UnknownJurisdiction),
        ("update to merchant without bond", "producer", C.TX_MALL_PARTY_UPDATE,
         p(c.update_party(K["producer"], ROLE_MERCHANT, 0, "IT")), BondTooLow),
        ("unbond below minimum", "merchant", C.TX_MALL_PARTY_UNBOND, p(c.unbond(m, 1)),
         BondTooLow),
        ("unbond unregistered", "stranger", C.TX_MALL_PARTY_UNBOND, p(c.unbond(s, 1)),
         NotRegistered),
        # certification
        ("certify by a non-certifier", "merchant2", C.TX_MALL_CERTIFY,
         p(c.certify(m, m.address, "Brand")), NotCertifier),
        ("certify a non-party", "certifier", C.TX_MALL_CERTIFY,
         p(c.certify(K["certifier"], s.address, "Brand")), NotRegistered),
        ("certify a non-merchant", "certifier", C.TX_MALL_CERTIFY,
         p(c.certify(K["certifier"], K["producer"].address, "Brand")), RoleMissing),
        ("revoke what was never certified", "certifier", C.TX_MALL_REVOKE,
         p(c.revoke(K["certifier"], m.address, "Other")), CertificationMissing),
        ("revoke by a non-certifier", "buyer", C.TX_MALL_REVOKE,
         p(c.revoke(b, m.address, "Brand")), NotCertifier),
        # listings
        ("list by a non-merchant", "producer", C.TX_MALL_PRODUCT_LIST,
         p(c.list_product(K["producer"], 1, 1)), RoleMissing),
        ("list by a non-party", "stranger", C.TX_MALL_PRODUCT_LIST,
         p(c.list_product(s, 1, 1)), NotRegistered),
        ("update an unknown product", "merchant", C.TX_MALL_PRODUCT_UPDATE,
         p(c.update_product(m, b"\x07" * 32, 1, 1)), ProductNotFound),
        ("update another's product", "merchant2", C.TX_MALL_PRODUCT_UPDATE,
         p(c.update_product(K["merchant2"], w.product, 1, 1)), NotOwner),
        ("update a delisted product", "merchant", C.TX_MALL_PRODUCT_UPDATE,
         p(c.update_product(m, w.delisted, 1, 1)), ProductDelisted),
        ("delist another's product", "merchant2", C.TX_MALL_PRODUCT_DELIST,
         p(c.delist(K["merchant2"], w.product)), NotOwner),
        ("delist twice", "merchant", C.TX_MALL_PRODUCT_DELIST, p(c.delist(m, w.delisted)),
         ProductDelisted),
        # trace events
        ("record by a non-party", "stranger", C.TX_MALL_TRACE_RECORD, add.encode(),
         NotRegistered),
        ("commission by a carrier", "carrier", C.TX_MALL_TRACE_RECORD, add.encode(),
         StepNotAllowed),
        ("inspect by a producer", "producer", C.TX_MALL_TRACE_RECORD,
         event(KIND_OBJECT, ACTION_OBSERVE, "inspecting", epcs=(ITEM,)).encode(),
         StepNotAllowed),
        ("arbitrators record nothing", "arb1", C.TX_MALL_TRACE_RECORD,
         event(KIND_OBJECT, ACTION_OBSERVE, epcs=(ITEM,)).encode(), StepNotAllowed),
        ("commission an existing item", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_OBJECT, ACTION_ADD, "commissioning", epcs=(ITEM,)).encode(), ItemExists),
        ("add to a class held by another", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_OBJECT, ACTION_ADD, "commissioning",
               quantities=(Quantity(LOT, 1),)).encode(), NotHolder),
        ("observe an unknown item", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_OBJECT, ACTION_OBSERVE, "storing",
               epcs=("urn:epc:id:sgtin:7.7.7",)).encode(), ItemNotFound),
        ("store an item one does not hold", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_OBJECT, ACTION_OBSERVE, "storing", epcs=(ITEM,)).encode(), NotHolder),
        ("transform inputs one does not hold", "processor", C.TX_MALL_TRACE_RECORD,
         event(KIND_TRANSFORMATION, ACTION_NONE, "commissioning", quantities=(Quantity(LOT, 1),),
               out_epcs=("urn:epc:id:sgtin:8.8.8",)).encode(), NotHolder),
        ("transform into an existing item", "producer", C.TX_MALL_TRACE_RECORD,
         event(KIND_TRANSFORMATION, ACTION_NONE, "commissioning", quantities=(Quantity(LOT, 1),),
               out_epcs=(HELD,)).encode(), ItemExists),
        ("pack an item packed already", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_AGGREGATION, ACTION_ADD, "packing", parent="urn:epc:id:sscc:1.98",
               epcs=(PACKED,)).encode(), ItemPacked),
        ("pack a container into what it holds", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_AGGREGATION, ACTION_ADD, "packing", parent=PACKED,
               epcs=(CASE,)).encode(), ItemPacked),
        ("unpack what is not in the container", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_AGGREGATION, ACTION_DELETE, "unpacking", parent=CASE,
               epcs=(HELD,)).encode(), ItemPacked),
        ("unpack from an unknown container", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_AGGREGATION, ACTION_DELETE, "unpacking", parent="urn:epc:id:sscc:5.5",
               epcs=(HELD,)).encode(), ItemNotFound),
        ("pack another's item", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_AGGREGATION, ACTION_ADD, "packing", parent="urn:epc:id:sscc:1.97",
               epcs=(ITEM,)).encode(), NotHolder),
        ("transaction event on another's item", "merchant", C.TX_MALL_TRACE_RECORD,
         event(KIND_TRANSACTION, ACTION_ADD, "shipping", epcs=(ITEM,),
               biz_transactions=(BizTransaction("urn:x:po:1", "po"),)).encode(), NotHolder),
        ("record the same event again", "producer", C.TX_MALL_TRACE_RECORD,
         event(KIND_OBJECT, ACTION_ADD, "commissioning", epcs=(ITEM,),
               quantities=(Quantity(LOT, 10, "KGM"),)).encode(), EventExists),
        ("declare an unknown event", "producer", C.TX_MALL_TRACE_DECLARE_ERROR,
         ErrorDeclaration(b"\x01" * 32, 1, 0).encode(), EventNotFound),
        ("declare another's event", "merchant", C.TX_MALL_TRACE_DECLARE_ERROR,
         ErrorDeclaration(w.commission_id, 1, 0).encode(), NotOwner),
        ("declare with an unknown corrective event", "producer", C.TX_MALL_TRACE_DECLARE_ERROR,
         ErrorDeclaration(w.commission_id, 1, 0, None, (b"\x02" * 32,)).encode(),
         EventNotFound),
        ("declare by a non-party", "stranger", C.TX_MALL_TRACE_DECLARE_ERROR,
         ErrorDeclaration(w.commission_id, 1, 0).encode(), NotRegistered),
        # custody
        ("propose an unknown item", "merchant", C.TX_MALL_HANDOVER_PROPOSE,
         p(c.propose(m, "urn:epc:id:sgtin:7.7.7", b.address)), ItemNotFound),
        ("propose a packed item", "merchant", C.TX_MALL_HANDOVER_PROPOSE,
         p(c.propose(m, PACKED, b.address)), ItemPacked),
        ("propose another's item", "merchant", C.TX_MALL_HANDOVER_PROPOSE,
         p(c.propose(m, ITEM, b.address)), NotHolder),
        ("propose to oneself", "merchant", C.TX_MALL_HANDOVER_PROPOSE,
         p(c.propose(m, HELD, m.address)), SelfDealing),
        ("propose twice to one receiver", "producer", C.TX_MALL_HANDOVER_PROPOSE,
         p(c.propose(K["producer"], ITEM, K["processor"].address)), HandoverExists),
        ("propose for an unknown order", "merchant", C.TX_MALL_HANDOVER_PROPOSE,
         p(c.propose(m, HELD, K["carrier"].address, b"\x03" * 32)), OrderNotFound),
        ("accept what was not proposed", "buyer", C.TX_MALL_HANDOVER_ACCEPT,
         p(c.accept(b, ITEM)), HandoverNotFound),
        ("accept with a bizStep not for receiving", "processor", C.TX_MALL_HANDOVER_ACCEPT,
         accept_with_step("shipping"), MalformedPayload),
        ("reject another's proposal", "buyer", C.TX_MALL_HANDOVER_REJECT,
         HandoverRef(item_key(ITEM), K["processor"].address).encode(), NotOwner),
        ("reject what was not proposed", "buyer", C.TX_MALL_HANDOVER_REJECT,
         HandoverRef(item_key(HELD), b.address).encode(), HandoverNotFound),
        ("cancel another's proposal", "processor", C.TX_MALL_HANDOVER_CANCEL,
         p(c.cancel_handover(K["processor"], ITEM, K["processor"].address)), NotOwner),
        ("cancel what was not proposed", "merchant", C.TX_MALL_HANDOVER_CANCEL,
         p(c.cancel_handover(m, HELD, b.address)), HandoverNotFound),
        # orders
        ("order an unknown product", "buyer", C.TX_MALL_ORDER_PLACE,
         p(c.order(b, b"\x05" * 32, 1, 10**6)), ProductNotFound),
        ("order a delisted product", "buyer", C.TX_MALL_ORDER_PLACE,
         p(c.order(b, w.delisted, 1, 10**6)), ProductDelisted),
        ("order one's own product", "merchant", C.TX_MALL_ORDER_PLACE,
         p(c.order(m, w.product, 1, 10**6)), SelfDealing),
        ("order above the price limit", "buyer", C.TX_MALL_ORDER_PLACE,
         p(c.order(b, w.product, 1, 999)), PriceAboveLimit),
        ("order more than the stock", "buyer", C.TX_MALL_ORDER_PLACE,
         p(c.order(b, w.product, 16, 10**6)), OutOfStock),  # 15 left
        ("order without the money", "poor", C.TX_MALL_ORDER_PLACE,
         p(c.order(K["poor"], w.product, 1, 10**6)), InsufficientBalance),
        ("cancel by the buyer", "buyer", C.TX_MALL_ORDER_CANCEL,
         p(c.cancel_order(b, w.funded)), WrongParty),
        ("cancel a shipped order", "merchant", C.TX_MALL_ORDER_CANCEL,
         p(c.cancel_order(m, w.shipped)), WrongEscrowState),
        ("cancel an unknown order", "merchant", C.TX_MALL_ORDER_CANCEL,
         p(c.cancel_order(m, b"\x06" * 32)), OrderNotFound),
        # escrow
        ("deliver an order not shipped", "carrier", C.TX_MALL_ESCROW_DELIVER,
         p(c.deliver(K["carrier"], w.funded)), WrongEscrowState),
        ("deliver by a non-carrier", "buyer", C.TX_MALL_ESCROW_DELIVER,
         p(c.deliver(b, w.shipped)), NotRegistered),
        ("deliver by a carrier not holding it", "carrier2", C.TX_MALL_ESCROW_DELIVER,
         p(c.deliver(K["carrier2"], w.shipped)), NotHolder),
        ("deliver an unknown order", "carrier", C.TX_MALL_ESCROW_DELIVER,
         p(c.deliver(K["carrier"], b"\x06" * 32)), OrderNotFound),
        ("confirm by the merchant", "merchant", C.TX_MALL_ESCROW_CONFIRM,
         p(c.confirm(m, w.delivered)), WrongParty),
        ("confirm an order not shipped", "buyer", C.TX_MALL_ESCROW_CONFIRM,
         p(c.confirm(b, w.funded)), WrongEscrowState),
        ("confirm a released order", "buyer", C.TX_MALL_ESCROW_CONFIRM,
         p(c.confirm(b, w.released)), WrongEscrowState),
        ("confirm a disputed order", "buyer", C.TX_MALL_ESCROW_CONFIRM,
         p(c.confirm(b, w.disputed)), WrongEscrowState),
        # disputes
        ("dispute by a stranger", "stranger", C.TX_MALL_DISPUTE_OPEN,
         p(c.dispute(s, w.delivered)), WrongParty),
        ("dispute an order not shipped", "buyer", C.TX_MALL_DISPUTE_OPEN,
         p(c.dispute(b, w.funded)), WrongEscrowState),
        ("dispute twice", "merchant", C.TX_MALL_DISPUTE_OPEN,
         p(c.dispute(m, w.disputed)), WrongEscrowState),
        ("dispute a released order", "buyer", C.TX_MALL_DISPUTE_OPEN,
         p(c.dispute(b, w.released)), WrongEscrowState),
        ("dispute an unknown order", "buyer", C.TX_MALL_DISPUTE_OPEN,
         p(c.dispute(b, b"\x06" * 32)), OrderNotFound),
        ("evidence by a stranger", "stranger", C.TX_MALL_DISPUTE_EVIDENCE,
         p(c.evidence(s, w.disputed, b"\x01" * 32)), WrongParty),
        ("evidence without a dispute", "buyer", C.TX_MALL_DISPUTE_EVIDENCE,
         p(c.evidence(b, w.delivered, b"\x01" * 32)), WrongEscrowState),
        ("vote by a non-member", world_outsider(w), C.TX_MALL_DISPUTE_VOTE,
         p(c.vote(K[world_outsider(w)], w.disputed, 1, 0)), NotOnPanel),
        ("vote in the wrong round", world_arbitrator(w), C.TX_MALL_DISPUTE_VOTE,
         p(c.vote(K[world_arbitrator(w)], w.disputed, 2, 0)), NotVoting),
        ("vote on a dispute without one", "arb1", C.TX_MALL_DISPUTE_VOTE,
         p(c.vote(K["arb1"], w.delivered, 1, 0)), WrongEscrowState),
        ("vote on an unknown order", "arb1", C.TX_MALL_DISPUTE_VOTE,
         p(c.vote(K["arb1"], b"\x06" * 32, 1, 0)), OrderNotFound),
        # tax
        ("rate by another account", "merchant", C.TX_MALL_TAX_RATE_SET,
         p(c.set_rate(m, "IT", 100)), NotTaxAuthority),
        ("rate for a jurisdiction without authority", "agenzia", C.TX_MALL_TAX_RATE_SET,
         p(c.set_rate(K["agenzia"], "FR", 100)), UnknownJurisdiction),
        ("rate above the maximum", "agenzia", C.TX_MALL_TAX_RATE_SET,
         p(c.set_rate(K["agenzia"], "IT", 3_001)), AmountOutOfRange),
    ]


def accept_with_step(step: str) -> bytes:
    """A HANDOVER_ACCEPT payload whose bizStep byte (offset 43) names `step`."""
    payload = bytearray(Acceptance(item_key(ITEM), 1, 0).encode())
    assert payload[43] == index_of(BIZ_STEPS, "receiving")
    payload[43] = index_of(BIZ_STEPS, step)
    return bytes(payload)


def world_arbitrator(world: World) -> str:
    """The name of an arbitrator seated on the disputed order's panel."""
    return next(f"arb{n}" for n in (1, 2, 3, 4) if K[f"arb{n}"].address in world.panel)


def world_outsider(world: World) -> str:
    """The name of an arbitrator not seated on it."""
    return next(f"arb{n}" for n in (1, 2, 3, 4) if K[f"arb{n}"].address not in world.panel)


def test_every_rule_failure_gives_its_code_and_changes_nothing(world: World) -> None:
    all_cases = cases(world)
    world.chain.resync_nonces()  # the payloads were built with throw-away txs
    covered = set()
    for name, signer, tx_type, payload, error in all_cases:
        try:
            expect_failure(world, signer, tx_type, payload, error)
        except AssertionError as exc:
            raise AssertionError(f"case {name!r}: {exc}") from None
        covered.add(tx_type)
    assert covered == set(HANDLERS), sorted(set(HANDLERS) - covered)


def test_evidence_is_capped_and_votes_are_one_per_round(world: World) -> None:
    chain = world.chain
    chain.block([])
    limit = C.EVIDENCE_MAX - 1  # the opening carried one
    chain.resync_nonces()
    assert chain.block([chain.evidence(K["buyer"], world.disputed, bytes([n]) * 32)
                        for n in range(limit)]).codes == [0] * limit
    expect_failure(world, "merchant", C.TX_MALL_DISPUTE_EVIDENCE,
                   chain.evidence(K["merchant"], world.disputed, b"\x09" * 32).payload,
                   TooMuchEvidence)
    seated = world_arbitrator(world)
    assert chain.block([chain.vote(K[seated], world.disputed, 1, 5_000)]).codes == [0]
    expect_failure(world, seated, C.TX_MALL_DISPUTE_VOTE,
                   chain.vote(K[seated], world.disputed, 1, 5_000).payload, AlreadyVoted)


def test_a_stale_proposal_cannot_be_accepted_and_declarations_are_once(world: World) -> None:
    chain = world.chain
    chain.resync_nonces()
    m = K["merchant"]
    item = HELD
    assert chain.block([chain.propose(m, item, K["carrier"].address),
                        chain.propose(m, item, K["carrier2"].address)]).codes == [0, 0]
    assert chain.block([chain.accept(K["carrier"], item)]).codes == [0]
    expect_failure(world, "carrier2", C.TX_MALL_HANDOVER_ACCEPT,
                   chain.accept(K["carrier2"], item).payload, HandoverStale)
    assert chain.block([chain.declare(K["producer"], ErrorDeclaration(
        world.commission_id, chain.time_ms, 0, "did_not_occur"))]).codes == [0]
    expect_failure(world, "producer", C.TX_MALL_TRACE_DECLARE_ERROR,
                   ErrorDeclaration(world.commission_id, chain.time_ms + 1, 0).encode(),
                   AlreadyDeclared)


def test_supply_after_every_case(world: World) -> None:
    assert world.chain.total_supply() == world.chain.genesis.total_supply


def test_a_failed_tx_still_pays_its_fee(world: World) -> None:
    chain = world.chain
    chain.resync_nonces()
    before = snapshot(chain)
    result = chain.block([chain.confirm(K["merchant"], world.funded)])
    assert result.codes == [WrongParty.code]
    after = snapshot(chain)
    merchant = account_key(K["merchant"].address)
    assert unpack_account(after[merchant])[0] == unpack_account(before[merchant])[0] - FEE
    assert unpack_account(after[merchant])[1] == unpack_account(before[merchant])[1] + 1
    assert decode_fee_pool(after[FEE_POOL_KEY]) == decode_fee_pool(before[FEE_POOL_KEY]) + FEE


def test_two_orders_for_the_last_unit_in_one_block_the_first_wins(world: World) -> None:
    chain = world.chain
    chain.resync_nonces()
    listing = chain.list_product(K["merchant2"], 700, 1)
    assert chain.block([listing]).codes == [0]
    first = chain.order(K["buyer"], listing.tx_id, 1, 700)
    second = chain.order(K["stranger"], listing.tx_id, 1, 700)
    assert chain.block([first, second]).codes == [0, OutOfStock.code]
    with chain.reader() as state:
        assert state.get(keys.order(first.tx_id)) is not None
        assert state.get(keys.order(second.tx_id)) is None


def test_a_transaction_event_links_a_document_by_its_hash(world: World) -> None:
    chain = world.chain
    chain.resync_nonces()
    invoice = b"invoice 2026-0042: 1 silver ring, 200.00 EUR"
    link = document_link(invoice, "inv")
    assert link.uri == "urn:chainmall:doc:blake3:" + digest(invoice).hex()
    record = event(KIND_TRANSACTION, ACTION_ADD, "retail_selling",
                   epcs=("urn:epc:id:sgtin:1.3.0",), biz_transactions=(link,))
    assert chain.block([chain.record(K["merchant"], record)]).codes == [0]
