"""The mall's consensus results pinned: a fixed chain of mall blocks must give these state
roots, byte for byte, whatever the handlers' code does to get there faster.

The chain touches every mall tx type and every deadline path: registrations, a
certification and its revocation, listings updated and delisted, commissioning,
a transformation, inspections, an error declaration, hand-overs (accepted,
rejected, cancelled), packing and unpacking, orders (confirmed, cancelled,
disputed: a panel member misses the deadline and is slashed and replaced, the
three votes differ, fresh panels miss theirs, the fallback rules; timed out
before shipping; released after the confirm deadline), a tax rate change and
unbonding. Everything in it is deterministic (fixed keys, block times and a
fixed "sealed" address), so the roots are too. If a change to the mall's rules
is meant to change them, update the pins in the same commit and say why.
"""

from __future__ import annotations

import pytest
from chainmall.core.abci.app import Application, Module
from chainmall.core.block import decode_block
from chainmall.core.hashing import digest
from chainmall.core.mall import install, install_queries, keys
from chainmall.core.mall.disputes import load_dispute
from chainmall.core.mall.escrow import (
    CLOSE_CONFIRM_TIMEOUT,
    CLOSE_CONFIRMED,
    CLOSE_FALLBACK,
    CLOSE_MERCHANT_CANCEL,
    CLOSE_SHIP_TIMEOUT,
    ESCROW_REFUNDED,
    ESCROW_RELEASED,
    ESCROW_RULED,
    load_escrow,
)
from chainmall.core.mall.events import ErrorDeclaration, Quantity, TraceEvent
from chainmall.core.mall.history import trace
from chainmall.core.mall.parties import CERT_REVOKED, decode_cert
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
from chainmall.core.store import Store
from mall_chain import TEST_PARAMS, MallChain, key, mall_genesis, ok

LOT = "urn:epc:class:lgtin:8012345.000001.AG-2026-01"
RINGS = [f"urn:epc:id:sgtin:8012345.000777.{n}" for n in range(1, 9)]
CASE = "urn:epc:id:sscc:8012345.0000000042"
PLACE = "urn:epc:id:sgln:8012345.00001.0"
PRICE = 20_000
BIG = 60_000  # above TEST_PARAMS.panel_threshold: a panel of three
SEALED = bytes(range(80))  # stands for a sealed box (a real one is random)
ARBITERS = [f"arb{n}" for n in range(1, 6)]
NAMES = ["refiner", "workshop", "assay", "merchant", "carrier1", "carrier2", "buyer1",
         "buyer2", "buyer3", "buyer4", "buyer5", "certifier", "agenzia", *ARBITERS]

# BLAKE3 of the concatenated state roots after every block, and the last root. Re-pinned
# at the merge of main's validators in state (genesis v2 writes validator records: every
# root moved), then for genesis v3 (the trust section: the genesis hash, and the roots
# with it, moved; the mall's rules did not change).
PINNED_ROOTS_DIGEST = "61c599915e111554f1e176f9a3b7d34a88359f9a8de25e211f914756f8389273"
PINNED_LAST_ROOT = "56fe96ae5ac6e0ed607c867cd45ee06d3626f7e5bc30d1fa94e2f1ffaaa61a89"


def run_chain(chain: MallChain) -> list[bytes]:
    """Drive the fixed chain; the state root after each block."""
    k = {name: key(name) for name in NAMES}
    roots: list[bytes] = []

    def block(txs: list, advance_ms: int = 1_000) -> None:
        ok(chain.block(txs, advance_ms))
        roots.append(chain.root)

    block([chain.register(k["refiner"], ROLE_PRODUCER, name="Raffineria"),
           chain.register(k["workshop"], ROLE_PROCESSOR, name="Laboratorio"),
           chain.register(k["assay"], ROLE_INSPECTOR, name="Saggio"),
           chain.register(k["merchant"], ROLE_MERCHANT, 2_000, "IT", "Argenteria"),
           chain.register(k["carrier1"], ROLE_CARRIER, name="Uno"),
           chain.register(k["carrier2"], ROLE_CARRIER, name="Due"),
           *[chain.register(k[a], ROLE_ARBITRATOR, 500, name=a) for a in ARBITERS]])
    block([chain.certify(k["certifier"], k["merchant"].address, "Argento Firenze"),
           chain.certify(k["certifier"], k["merchant"].address, "Other Brand"),
           chain.set_rate(k["agenzia"], "IT", 2_100)])
    block([chain.revoke(k["certifier"], k["merchant"].address, "Other Brand"),
           chain.record(k["refiner"], TraceEvent(
               KIND_OBJECT, ACTION_ADD, chain.time_ms, 60, "commissioning", "active", PLACE,
               PLACE, quantities=(Quantity(LOT, 1_000, "GRM"),),
               ilmd=(("cbvmda:lotNumber", "AG-2026-01"),)))])
    revoked = decode_cert(chain.get(keys.cert(k["merchant"].address, k["certifier"].address,
                                              "Other Brand")))
    assert (revoked.status, revoked.revoked_height) == (CERT_REVOKED, chain.machine.info()[0])
    block([chain.propose(k["refiner"], LOT, k["workshop"].address)])
    block([chain.accept(k["workshop"], LOT, read_point=PLACE)])
    block([chain.record(k["workshop"], TraceEvent(
        KIND_TRANSFORMATION, ACTION_NONE, chain.time_ms, 60, "commissioning", "active",
        PLACE, PLACE, quantities=(Quantity(LOT, 400, "GRM"),), out_epcs=tuple(RINGS)))])
    wrong = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, chain.time_ms, 60, "inspecting",
                       "non_conformant", PLACE, epcs=tuple(RINGS))
    right = TraceEvent(KIND_OBJECT, ACTION_OBSERVE, chain.time_ms + 1, 60, "inspecting",
                       "conformant", PLACE, epcs=tuple(RINGS), certification="urn:x:925")
    block([chain.record(k["assay"], wrong), chain.record(k["assay"], right)])
    with chain.reader() as state:
        steps = trace(state, RINGS[0]).steps
    ids = {step.record.event().disposition: step.event_id for step in steps
           if not step.is_declaration and step.record.event().biz_step == "inspecting"}
    block([chain.declare(k["assay"], ErrorDeclaration(
        ids["non_conformant"], chain.time_ms, 60, "incorrect_data", (ids["conformant"],)))])
    block([chain.propose(k["workshop"], ring, k["merchant"].address) for ring in RINGS]
          + [chain.propose(k["workshop"], LOT, k["carrier2"].address)])
    block([chain.accept(k["merchant"], ring) for ring in RINGS[:-1]]
          + [chain.reject(k["carrier2"], LOT)])
    block([chain.cancel_handover(k["workshop"], RINGS[-1], k["merchant"].address)])
    listing = chain.list_product(k["merchant"], PRICE, 8, "Anello", "jewellery/rings")
    spare = chain.list_product(k["merchant"], 5, 3, "Spilla", "jewellery/brooches")
    big = chain.list_product(k["merchant"], BIG, 1, "Collana", "jewellery/necklaces")
    block([listing, spare, big])
    block([chain.update_product(k["merchant"], spare.tx_id, 7, 2),
           chain.update_product(k["merchant"], listing.tx_id, PRICE, 6)])
    block([chain.delist(k["merchant"], spare.tx_id)])

    # Confirmed by the buyer after two carriers; released with tax withheld.
    order1 = chain.order(k["buyer1"], listing.tx_id, 1, PRICE, SEALED)
    order4 = chain.order(k["buyer4"], listing.tx_id, 1, PRICE, SEALED)  # cancelled
    order5 = chain.order(k["buyer5"], listing.tx_id, 1, PRICE, SEALED)  # confirm time-out
    block([order1, order4, order5])
    block([chain.propose(k["merchant"], RINGS[0], k["carrier1"].address, order1.tx_id),
           chain.propose(k["merchant"], RINGS[4], k["carrier2"].address, order5.tx_id),
           chain.cancel_order(k["merchant"], order4.tx_id)])
    block([chain.accept(k["carrier1"], RINGS[0], "receiving", "in_transit"),
           chain.accept(k["carrier2"], RINGS[4], "receiving", "in_transit")])
    block([chain.propose(k["carrier1"], RINGS[0], k["carrier2"].address, order1.tx_id),
           chain.deliver(k["carrier2"], order5.tx_id)])
    block([chain.accept(k["carrier2"], RINGS[0], "receiving", "in_transit")])
    block([chain.propose(k["carrier2"], RINGS[0], k["buyer1"].address, order1.tx_id)])
    block([chain.accept(k["buyer1"], RINGS[0], "accepting", "completeness_verified")])
    block([chain.confirm(k["buyer1"], order1.tx_id)])

    # Packed, shipped, delivered, disputed; a panel member misses the deadline.
    order2 = chain.order(k["buyer2"], big.tx_id, 1, BIG, SEALED)
    block([order2])
    block([chain.record(k["merchant"], TraceEvent(
        KIND_AGGREGATION, ACTION_ADD, chain.time_ms, 60, "packing", "container_closed",
        parent=CASE, epcs=tuple(RINGS[1:4]))),
        chain.propose(k["merchant"], CASE, k["carrier1"].address, order2.tx_id)])
    block([chain.accept(k["carrier1"], CASE, "receiving", "in_transit")])
    block([chain.deliver(k["carrier1"], order2.tx_id),
           chain.record(k["carrier1"], TraceEvent(
               KIND_AGGREGATION, ACTION_DELETE, chain.time_ms, 60, "unpacking",
               "container_open", parent=CASE, epcs=(RINGS[1],)))])
    block([chain.dispute(k["buyer2"], order2.tx_id, b"\x42" * 32)])
    block([chain.evidence(k["merchant"], order2.tx_id, b"\x43" * 32)])  # panel drawn
    with chain.reader() as state:
        seats = [seat.arbitrator for seat in load_dispute(state, order2.tx_id).seats]
    by_address = {k[a].address: k[a] for a in ARBITERS}
    first, second = (by_address[s] for s in seats[:2])
    block([chain.vote(first, order2.tx_id, 1, 10_000), chain.vote(second, order2.tx_id, 1, 0)])
    block([], advance_ms=TEST_PARAMS.ruling_timeout_ms)  # the third is slashed, replaced
    with chain.reader() as state:
        replacement = by_address[load_dispute(state, order2.tx_id).seats[2].arbitrator]
    block([chain.vote(replacement, order2.tx_id, 2, 2_500)])  # three different votes

    # Never shipped: the ship deadline refunds; order five's confirm deadline releases.
    order3 = chain.order(k["buyer3"], listing.tx_id, 2, PRICE, SEALED)
    block([order3])
    block([], advance_ms=TEST_PARAMS.ship_timeout_ms)
    block([], advance_ms=TEST_PARAMS.confirm_timeout_ms)
    block([chain.unbond(k["merchant"], 500), chain.set_rate(k["agenzia"], "IT", 2_000)])
    with chain.reader() as state:
        closed = {order.tx_id: (escrow.state, escrow.close_reason) for order in
                  (order1, order2, order3, order4, order5)
                  if (escrow := load_escrow(state, order.tx_id)) is not None}
    assert closed == {order1.tx_id: (ESCROW_RELEASED, CLOSE_CONFIRMED),
                      order2.tx_id: (ESCROW_RULED, CLOSE_FALLBACK),
                      order3.tx_id: (ESCROW_REFUNDED, CLOSE_SHIP_TIMEOUT),
                      order4.tx_id: (ESCROW_REFUNDED, CLOSE_MERCHANT_CANCEL),
                      order5.tx_id: (ESCROW_RELEASED, CLOSE_CONFIRM_TIMEOUT)}
    assert chain.total_supply() == chain.genesis.total_supply
    return roots


def test_the_mall_chain_gives_the_pinned_state_roots(tmp_path) -> None:
    chain = MallChain(tmp_path / "data", mall_genesis({name: 10**9 for name in NAMES},
                                                      certifiers=("certifier",)))
    try:
        roots = run_chain(chain)
    finally:
        chain.close()
    assert (digest(b"".join(roots)).hex(), roots[-1].hex()) == (PINNED_ROOTS_DIGEST,
                                                                PINNED_LAST_ROOT)


@pytest.mark.parametrize("process", [False, True], ids=["thread", "process"])
def test_the_mall_chain_replayed_with_deferred_writes_gives_the_pinned_roots(tmp_path,
                                                                              process) -> None:
    """An import with deferred writes (`StateMachine.defer_writes`: each block executes
    while the last one is written, reading its changes through `UnwrittenView`, the
    deadline hook's range scans too) stores the same chain: the pinned roots, and the
    same state entries and tree nodes as the store the chain was made in."""
    genesis = mall_genesis({name: 10**9 for name in NAMES}, certifiers=("certifier",))
    chain = MallChain(tmp_path / "made", genesis)
    try:
        made_roots = run_chain(chain)
        with chain.store.reader() as view:
            tip = view.last()
            blocks = [view.block(height) for height in range(1, tip.height + 1)]
            made = (dict(view.state_items()), sorted(view.node_hashes()))
    finally:
        chain.close()
    with Store(tmp_path / "imported") as store:
        machine = Application(store, genesis, [Module("mall", install, install_queries)]).machine
        machine.defer_writes(process=process)
        roots = []
        for raw in blocks:
            machine.finalize_block(decode_block(raw))
            machine.commit()
            roots.append(machine.info()[1])
        machine.close()
        with store.reader() as view:
            assert view.last() == tip
            assert (dict(view.state_items()), sorted(view.node_hashes())) == made
    assert roots[-len(made_roots):] == made_roots
    assert (digest(b"".join(made_roots)).hex(), roots[-1].hex()) == (PINNED_ROOTS_DIGEST,
                                                                     PINNED_LAST_ROOT)
