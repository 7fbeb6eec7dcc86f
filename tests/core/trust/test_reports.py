"""Fake-order reports (docs/trust.md 8): filed with a deposit, a panel drawn like a
dispute's, majority rulings that slash and reward or return, rounds that lapse."""

from __future__ import annotations

from chainmall.core import constants as C
from chainmall.core.errors import (
    AlreadyVoted,
    InsufficientBalance,
    MalformedPayload,
    NotOnPanel,
    NotRegistered,
    NotVoting,
    OrderNotFound,
    ReportClosed,
    ReportInvalid,
    ReportNotFound,
    SelfDealing,
)
from chainmall.core.mall import keys as mall_keys
from chainmall.core.mall.parties import decode_party
from chainmall.core.trust.records import FLAG_FAKE, FLAG_REPORTED, ORDER_VOID
from chainmall.core.trust.reports import (
    REPORT_FAKE,
    REPORT_LAPSED,
    REPORT_NOT_FAKE,
    Filing,
    Verdict,
)
from mall_chain import key, ok
from trust_chain import TRUST_TEST_PARAMS, refused, sell

P = TRUST_TEST_PARAMS


def bond(chain, who) -> int:
    return decode_party(chain.get(mall_keys.party(who.address))).bond


def panel(chain, report_id):
    arbitrators = {key(f"arb{i}").address: key(f"arb{i}") for i in range(1, 5)}
    return [arbitrators[seat.arbitrator] for seat in chain.report_record(report_id).seats
            if seat.filled]


def filed(chain, k, orders):
    report = chain.report(k["reporter"], k["shop"].address, orders)
    ok(chain.block([report]))
    ok(chain.block([]))  # the panel is drawn in this block's begin hook
    return report.tx_id


def test_a_fake_ruling_slashes_rewards_and_voids(market):
    chain, k, products = market
    orders = sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000),
                          (k["shop"], k["bob"], products["ring"], 20_000)])
    assert chain.reputation(k["shop"].address).counted_orders == 2
    reporter_before, bond_before = chain.balance(k["reporter"]), bond(chain, k["shop"])
    report_id = filed(chain, k, orders)
    assert chain.balance(k["reporter"]) == reporter_before - 1 - P.report_deposit
    assert all(chain.order_trust(o).flags & FLAG_REPORTED for o in orders)
    seated = panel(chain, report_id)
    assert len(seated) == 3 and len({s.address for s in seated}) == 3
    assert k["shop"].address not in {s.address for s in seated}
    voters_before = [chain.balance(v) for v in seated[:2]]
    ok(chain.block([chain.report_vote(v, report_id, 1, True) for v in seated[:2]]))
    record = chain.report_record(report_id)
    slashed = bond_before * P.fake_slash_bps // 10_000
    reward = slashed * P.reporter_reward_bps // 10_000
    fee = slashed * P.report_fee_bps // 10_000
    assert (record.state, record.slashed, record.reporter_reward) == (REPORT_FAKE, slashed,
                                                                     reward)
    assert bond(chain, k["shop"]) == bond_before - slashed
    assert chain.balance(k["reporter"]) == reporter_before - 1 + reward
    assert [chain.balance(v) - b for v, b in zip(seated, voters_before, strict=False)] == \
        [fee // 2 - 1, fee // 2 - 1]
    for order in orders:
        trust = chain.order_trust(order)
        assert trust.flags & FLAG_FAKE and trust.state == ORDER_VOID
        assert trust.report_id == report_id
    reputation = chain.reputation(k["shop"].address)
    assert (reputation.strikes, reputation.fake_orders, reputation.orders_q) == (1, 2, 0)
    assert chain.reward_account(k["alice"].address).points == 0
    refused(chain, chain.report_vote(seated[2], report_id, 1, True), ReportClosed.code)
    refused(chain, chain.report(k["reporter"], k["shop"].address, orders[:1]),
            ReportInvalid.code)  # ruled fake already
    assert chain.query("/trust/reports", k["shop"].address)
    assert chain.total_supply() == chain.genesis.total_supply


def test_a_not_fake_ruling_pays_the_panel_from_the_deposit_and_frees_the_orders(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["carol"], products["ring"], 20_000)])
    pool_before = chain.balance(k["reporter"])
    report_id = filed(chain, k, [order])
    seated = panel(chain, report_id)
    ok(chain.block([chain.report_vote(v, report_id, 1, False) for v in seated[:2]]))
    assert chain.report_record(report_id).state == REPORT_NOT_FAKE
    trust = chain.order_trust(order)
    assert trust.flags == 0 and trust.report_id == bytes(32)
    assert chain.balance(k["reporter"]) == pool_before - 1 - P.report_deposit
    assert chain.reputation(k["shop"].address).counted_orders == 1
    # Free to be reported again.
    ok(chain.block([chain.report(k["reporter"], k["shop"].address, [order])]))


def test_a_panel_that_does_not_vote_is_redrawn_then_the_report_lapses(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["dave"], products["ring"], 20_000)])
    before = chain.balance(k["reporter"])
    report_id = filed(chain, k, [order])
    first = panel(chain, report_id)
    ok(chain.block([chain.report_vote(first[0], report_id, 1, True)]))
    chain.block([], advance_ms=P.report_ruling_timeout_ms)
    record = chain.report_record(report_id)
    assert record.round == 2 and record.seats[0].arbitrator == first[0].address
    refused(chain, chain.report_vote(first[0], report_id, 1, True), NotVoting.code)
    chain.block([], advance_ms=P.report_ruling_timeout_ms)  # round 2 = rounds max: lapses
    assert chain.report_record(report_id).state == REPORT_LAPSED
    assert chain.balance(k["reporter"]) == before - 1  # the deposit is back
    assert chain.order_trust(order).flags == 0
    assert chain.query("/trust/seats", first[0].address) == []


def test_filing_and_voting_rules(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["erin"], products["ring"], 20_000)])
    [other] = sell(chain, [(k["shop2"], k["erin"], products["chain"], 5_000)])
    refused(chain, chain.report(k["shop"], k["shop"].address, [order]), SelfDealing.code)
    refused(chain, chain.report(k["reporter"], k["alice"].address, [order]),
            NotRegistered.code)
    refused(chain, chain.report(k["reporter"], k["shop"].address, [b"\x77" * 32]),
            OrderNotFound.code)
    refused(chain, chain.report(k["reporter"], k["shop"].address, [order, other]),
            ReportInvalid.code)  # another merchant's order
    poor = key("poor")
    ok(chain.block([chain.transfer(k["erin"], poor.address, 500)]))
    refused(chain, chain.report(poor, k["shop"].address, [order]), InsufficientBalance.code)
    unsorted = Filing(k["shop"].address, b"\x0e" * 32, (b"\x02" * 32, b"\x01" * 32))
    for payload in (unsorted.encode(), b"\x01" + k["shop"].address + b"\x0e" * 32 + b"\x00",
                    Filing(k["shop"].address, b"\x0e" * 32, (order,)).encode() + b"\x00"):
        refused(chain, chain.tx(k["reporter"], C.TX_TRUST_REPORT_FILE, payload),
                MalformedPayload.code)
    report = chain.report(k["reporter"], k["shop"].address, [order])
    early = chain.report_vote(key("arb1"), report.tx_id, 1, True)  # before the draw
    assert chain.block([report, early]).codes == [0, NotVoting.code]
    ok(chain.block([]))  # the panel is drawn
    refused(chain, chain.report(k["alice"], k["shop"].address, [order]), ReportInvalid.code)
    seated = panel(chain, report.tx_id)
    outsider = next(key(f"arb{i}") for i in range(1, 5)
                    if key(f"arb{i}").address not in {s.address for s in seated})
    refused(chain, chain.report_vote(outsider, report.tx_id, 1, True), NotOnPanel.code)
    refused(chain, chain.report_vote(seated[0], b"\x55" * 32, 1, True), ReportNotFound.code)
    ok(chain.block([chain.report_vote(seated[0], report.tx_id, 1, True)]))
    refused(chain, chain.report_vote(seated[0], report.tx_id, 1, False), AlreadyVoted.code)
    refused(chain, chain.tx(seated[1], C.TX_TRUST_REPORT_VOTE,
                            Verdict(report.tx_id, 1, 2).encode()), MalformedPayload.code)


def test_payload_worked_examples_of_docs_trust_md() -> None:
    merchant = bytes(range(1, 21))
    assert Filing(merchant, b"\x0e" * 32, (b"\x22" * 32,)).encode().hex() == \
        "01" + merchant.hex() + "0e" * 32 + "01" + "22" * 32
    assert Verdict(b"\x33" * 32, 1, 1).encode().hex() == "01" + "33" * 32 + "0101"
