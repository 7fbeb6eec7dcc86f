"""Disputes: the draw (deterministic, seeded by the previous block hash, exclusions),
rounds, slashing and replacement, all-different votes, the fallback, split rulings."""

from __future__ import annotations

from dataclasses import replace

import pytest
from chainmall.core.mall import keys
from chainmall.core.mall.disputes import NO_VOTE, load_dispute
from chainmall.core.mall.draw import DRAW_KEY, creators, probe_index
from chainmall.core.mall.escrow import (
    CLOSE_FALLBACK,
    CLOSE_RULING,
    ESCROW_RULED,
    load_escrow,
)
from chainmall.core.mall.events import TraceEvent
from chainmall.core.mall.parties import decode_party
from chainmall.core.mall.pool import NOT_IN_POOL, pool_member, pool_size
from chainmall.core.mall.vocab import (
    ACTION_ADD,
    KIND_OBJECT,
    ROLE_ARBITRATOR,
    ROLE_CARRIER,
    ROLE_MERCHANT,
)
from chainmall.core.state.accounts import FEE_POOL_KEY, account_key, decode_fee_pool, unpack_account
from mall_chain import TEST_PARAMS, MallChain, key, mall_genesis, ok

ARBITERS = [f"arb{n}" for n in range(1, 8)]
NAMES = ["merchant", "buyer", "carrier", "agenzia", "friend", "grandchild", *ARBITERS]
K = {name: key(name) for name in NAMES}
BIG = 60_000  # above TEST_PARAMS.panel_threshold: a panel of three
SMALL = 10_000



def make_chain(path, arbiters=ARBITERS, params=TEST_PARAMS) -> MallChain:
    chain = MallChain(path, mall_genesis({name: 10**9 for name in NAMES}, params=params))
    ok(chain.block([chain.register(K["merchant"], ROLE_MERCHANT, 1_000, "IT"),
                    chain.register(K["carrier"], ROLE_CARRIER),
                    *[chain.register(K[a], ROLE_ARBITRATOR, 500) for a in arbiters]]))
    uris = tuple(f"urn:epc:id:sgtin:7.7.{n}" for n in range(20))
    ok(chain.block([chain.record(K["merchant"], TraceEvent(
        KIND_OBJECT, ACTION_ADD, chain.time_ms, 0, "commissioning", epcs=uris))]))
    chain.uris = list(uris)  # type: ignore[attr-defined]
    return chain


def disputed_order(chain: MallChain, price: int) -> bytes:
    """An order shipped, delivered by the carrier and disputed by the buyer; the panel is
    drawn in the block after the dispute."""
    listing = chain.list_product(K["merchant"], price, 1)
    ok(chain.block([listing]))
    order = chain.order(K["buyer"], listing.tx_id, 1, price)
    ok(chain.block([order]))
    uri = chain.uris.pop()  # type: ignore[attr-defined]
    ok(chain.block([chain.propose(K["merchant"], uri, K["carrier"].address, order.tx_id)]))
    ok(chain.block([chain.accept(K["carrier"], uri)]))
    ok(chain.block([chain.deliver(K["carrier"], order.tx_id)]))
    ok(chain.block([chain.dispute(K["buyer"], order.tx_id)]))
    ok(chain.block([]))
    return order.tx_id


def dispute_of(chain: MallChain, order_id: bytes):
    with chain.reader() as state:
        return load_dispute(state, order_id)


def party(chain: MallChain, name: str):
    raw = chain.get(keys.party(K[name].address))
    return None if raw is None else decode_party(raw)


def named(address: bytes) -> str:
    return next(name for name in NAMES if K[name].address == address)


def test_the_draw_is_deterministic_and_seeded_by_the_previous_block(tmp_path) -> None:
    panels = []
    for run in range(2):
        chain = make_chain(tmp_path / f"run{run}")
        order_id = disputed_order(chain, BIG)
        panels.append([s.arbitrator for s in dispute_of(chain, order_id).seats])
        chain.close()
    assert panels[0] == panels[1] and len(set(panels[0])) == 3
    # The probe is keyed BLAKE3 of (prev hash, order, round, seat, attempt), mod the pool.
    indexes = {probe_index(bytes([n]) * 32, b"\x01" * 32, 1, 0, 0, 7) for n in range(64)}
    assert indexes == set(range(7))  # every member can be drawn
    assert len(DRAW_KEY) == 32


def test_the_draw_excludes_arbitrators_the_parties_funded_into_existence(tmp_path) -> None:
    """The merchant funds `friend` into existence, `friend` funds `grandchild`; both
    register as arbitrators: neither may sit on the merchant's disputes. An arbitrator
    that funded the buyer into existence may not sit either."""
    chain = make_chain(tmp_path / "data", arbiters=ARBITERS[:4])
    newcomer = key("new-buyer")
    friend, grandchild = key("friend-account"), key("grandchild-account")
    ok(chain.block([chain.transfer(K["merchant"], friend.address, 10_000),
                    chain.transfer(K["arb1"], newcomer.address, 10**8)]))
    ok(chain.block([chain.transfer(friend, grandchild.address, 5_000)]))
    ok(chain.block([chain.register(friend, ROLE_ARBITRATOR, 500),
                    chain.register(grandchild, ROLE_ARBITRATOR, 500)]))
    with chain.reader() as state:
        assert creators(state, grandchild.address) == [friend.address, K["merchant"].address]
        assert pool_size(state) == 6
    K["new-buyer"] = newcomer
    listing = chain.list_product(K["merchant"], BIG, 30)
    ok(chain.block([listing]))
    seen: set[bytes] = set()
    for _ in range(6):
        order = chain.order(newcomer, listing.tx_id, 1, BIG)
        ok(chain.block([order]))
        uri = chain.uris.pop()  # type: ignore[attr-defined]
        ok(chain.block([chain.propose(K["merchant"], uri, newcomer.address, order.tx_id)]))
        ok(chain.block([chain.accept(newcomer, uri)]))
        ok(chain.block([chain.dispute(newcomer, order.tx_id)]))
        ok(chain.block([]))
        seats = [s.arbitrator for s in dispute_of(chain, order.tx_id).seats]
        seen.update(seat for seat in seats if seat != bytes(20))
    assert friend.address not in seen and grandchild.address not in seen
    assert K["arb1"].address not in seen  # it created the buyer's account
    assert seen == {K[a].address for a in ("arb2", "arb3", "arb4")}
    del K["new-buyer"]
    chain.close()


def test_a_missed_deadline_slashes_and_replaces_and_a_majority_rules(tmp_path) -> None:
    chain = make_chain(tmp_path / "data")
    order_id = disputed_order(chain, BIG)
    dispute = dispute_of(chain, order_id)
    first, second, third = (named(s.arbitrator) for s in dispute.seats)
    ok(chain.block([chain.vote(K[first], order_id, 1, 10_000),
                    chain.vote(K[second], order_id, 1, 0)]))
    pool_before = decode_fee_pool(chain.get(FEE_POOL_KEY))
    ok(chain.block([], advance_ms=TEST_PARAMS.ruling_timeout_ms))
    dispute = dispute_of(chain, order_id)
    assert dispute.round == 2
    assert [s.vote for s in dispute.seats[:2]] == [10_000, 0]  # voters keep their votes
    replacement = named(dispute.seats[2].arbitrator)
    assert replacement not in (first, second, third)
    slashed = party(chain, third)
    assert slashed.bond == 500 - 500 * TEST_PARAMS.slash_bps // 10_000
    assert slashed.pool_index == NOT_IN_POOL and slashed.open_seats == 0  # under the minimum
    assert decode_fee_pool(chain.get(FEE_POOL_KEY)) == pool_before + 100
    before = {name: unpack_account(chain.get(account_key(K[name].address)))[0]
              for name in ("buyer", first, replacement, second)}
    ok(chain.block([chain.vote(K[replacement], order_id, 2, 10_000)]))
    with chain.reader() as state:
        escrow = load_escrow(state, order_id)
    assert escrow.state == ESCROW_RULED and escrow.close_reason == CLOSE_RULING
    fee = BIG * TEST_PARAMS.arbitration_fee_bps // 10_000
    assert escrow.arbitration_fee == fee and escrow.buyer_paid == BIG - fee
    after = {name: unpack_account(chain.get(account_key(K[name].address)))[0]
             for name in before}
    # The fee is shared by the three who voted (the dissenter too), equally.
    assert after[first] - before[first] == fee // 3
    assert after[second] - before[second] == fee // 3
    assert after[replacement] - before[replacement] == fee // 3 - 1  # its vote's fee
    assert all(party(chain, name).open_seats == 0 for name in ARBITERS)
    assert chain.total_supply() == chain.genesis.total_supply
    chain.close()


def test_all_different_votes_bring_a_fresh_panel_and_the_last_round_falls_back(tmp_path
                                                                             ) -> None:
    params = replace(TEST_PARAMS, dispute_rounds_max=2, fallback_buyer_bps=5_000)
    chain = make_chain(tmp_path / "data", params=params)
    order_id = disputed_order(chain, BIG)
    panel = [named(s.arbitrator) for s in dispute_of(chain, order_id).seats]
    ok(chain.block([chain.vote(K[a], order_id, 1, share)
                    for a, share in zip(panel, (0, 5_000, 10_000), strict=True)]))
    ok(chain.block([], advance_ms=TEST_PARAMS.ruling_timeout_ms))
    dispute = dispute_of(chain, order_id)
    fresh = [named(s.arbitrator) for s in dispute.seats]
    assert dispute.round == 2 and not set(fresh) & set(panel)
    assert all(party(chain, a).bond == 500 for a in panel)  # voters are never slashed
    assert all(s.vote == NO_VOTE for s in dispute.seats)
    ok(chain.block([chain.vote(K[fresh[0]], order_id, 2, 10_000)]))
    ok(chain.block([], advance_ms=TEST_PARAMS.ruling_timeout_ms))  # last round ends
    with chain.reader() as state:
        escrow = load_escrow(state, order_id)
    assert escrow.state == ESCROW_RULED and escrow.close_reason == CLOSE_FALLBACK
    assert escrow.arbitration_fee == 0
    assert escrow.buyer_paid == BIG * 5_000 // 10_000
    gross = BIG - escrow.buyer_paid
    assert escrow.tax == gross * 2_200 // 10_000
    assert escrow.merchant_paid == gross - escrow.tax - gross * TEST_PARAMS.commission_bps \
        // 10_000
    assert party(chain, fresh[0]).bond == 500
    assert all(party(chain, a).bond == 400 for a in fresh[1:])  # missed the last deadline
    assert dispute_of(chain, order_id).ruling_bps == 5_000
    chain.close()


def test_a_single_arbitrator_rules_a_small_order_and_a_split_is_exact(tmp_path) -> None:
    chain = make_chain(tmp_path / "data")
    order_id = disputed_order(chain, SMALL)
    seats = dispute_of(chain, order_id).seats
    assert len(seats) == 1
    ok(chain.block([chain.vote(K[named(seats[0].arbitrator)], order_id, 1, 2_500)]))
    with chain.reader() as state:
        escrow = load_escrow(state, order_id)
    fee = SMALL * TEST_PARAMS.arbitration_fee_bps // 10_000
    rest = SMALL - fee
    assert escrow.buyer_paid == rest * 2_500 // 10_000
    gross = rest - escrow.buyer_paid
    assert escrow.tax + escrow.commission + escrow.merchant_paid == gross
    chain.close()


def test_an_empty_pool_leaves_seats_empty_until_the_fallback(tmp_path) -> None:
    chain = make_chain(tmp_path / "data", arbiters=[])
    order_id = disputed_order(chain, SMALL)
    dispute = dispute_of(chain, order_id)
    assert dispute.round == 1 and not dispute.seats[0].filled
    for _ in range(TEST_PARAMS.dispute_rounds_max):
        ok(chain.block([], advance_ms=TEST_PARAMS.ruling_timeout_ms))
    with chain.reader() as state:
        assert load_escrow(state, order_id).close_reason == CLOSE_FALLBACK
    chain.close()


def test_the_pool_stays_dense_when_members_leave(tmp_path) -> None:
    chain = make_chain(tmp_path / "data", arbiters=ARBITERS[:4])

    def members():
        with chain.reader() as state:
            return [pool_member(state, i) for i in range(pool_size(state))]

    assert members() == [K[a].address for a in ARBITERS[:4]]
    ok(chain.block([chain.update_party(K["arb2"], 0)]))  # leaves: the last fills its slot
    assert members() == [K[a].address for a in ("arb1", "arb4", "arb3")]
    assert party(chain, "arb4").pool_index == 1 and party(chain, "arb2").pool_index == \
        NOT_IN_POOL
    ok(chain.block([chain.unbond(K["arb2"], 500)]))
    assert party(chain, "arb2").bond == 0
    ok(chain.block([chain.update_party(K["arb2"], ROLE_ARBITRATOR, 500)]))  # rejoins
    assert members()[-1] == K["arb2"].address
    chain.close()


@pytest.mark.parametrize("hops", [1, 2])
def test_creator_records_are_written_only_when_a_transfer_creates_the_account(tmp_path,
                                                                             hops) -> None:
    chain = make_chain(tmp_path / "data", arbiters=[])
    fresh = key(f"fresh-{hops}")
    ok(chain.block([chain.transfer(K["buyer"], fresh.address, 100)]))
    ok(chain.block([chain.transfer(K["merchant"], fresh.address, 100)]))  # exists now
    with chain.reader() as state:
        assert creators(state, fresh.address, hops) == [K["buyer"].address]
        assert creators(state, K["buyer"].address, hops) == []  # a genesis account
    chain.close()
