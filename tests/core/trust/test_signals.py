"""On-chain fake-order signals (docs/trust.md 6.2, 6.3): funded buyers, concentration,
fresh-account bursts, money flowing back; a flagged order counts for nothing, a voided
one gives back what it counted for."""

from __future__ import annotations

from chainmall.core.trust.records import (
    FLAG_BURST,
    FLAG_CONCENTRATION,
    FLAG_FLOWBACK,
    FLAG_FUNDED,
    ORDER_COUNTED,
    ORDER_VOID,
)
from mall_chain import key, ok
from trust_chain import sell

Q = 1 << 16


def test_an_honest_order_counts(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000)])
    record = chain.order_trust(order)
    assert record.flags == 0 and record.state == ORDER_COUNTED
    assert (record.orders_q, record.value, record.buyer_points) == (Q, 20_000, 200)
    assert chain.stats(products["ring"]).sales_q == Q
    assert chain.reward_account(k["alice"].address).points == 200


def test_a_buyer_funded_by_the_merchant_counts_for_nothing(market):
    chain, k, products = market
    shill, shill2 = key("shill"), key("shill2")
    ok(chain.block([chain.transfer(k["shop"], shill.address, 100_000)]))
    ok(chain.block([chain.transfer(shill, shill2.address, 50_000)]))  # two links away
    before = chain.reputation(k["shop"].address)
    orders = sell(chain, [(k["shop"], shill, products["ring"], 20_000),
                          (k["shop"], shill2, products["ring"], 20_000)])
    for order in orders:
        record = chain.order_trust(order)
        assert record.flags == FLAG_FUNDED and record.state == ORDER_VOID
        assert record.orders_q == 0 and record.buyer_points == 0
    after = chain.reputation(k["shop"].address)
    assert after.orders_q == (before.orders_q if before else 0)
    assert after.flagged_orders == 2
    assert chain.stats(products["ring"]).sales_q == 0
    assert chain.reward_account(shill.address) is None  # no points ever
    # It can still review (a review is never refused for a signal), counting nothing.
    ok(chain.block(chain.review(shill, orders[0], 5, "Perfetto")))
    assert chain.reputation(k["shop"].address).rating_count_q == 0


def test_concentration_flags_the_buyers_orders_of_that_hour(market):
    chain, k, products = market
    chain.block([], advance_ms=3_600_000 - chain.time_ms % 3_600_000)  # an hour starts
    first = chain.order(k["bob"], products["ring"], 1, 20_000)
    ok(chain.block([first]))
    assert chain.order_trust(first.tx_id).flags == 0  # one order, one buyer
    ok(chain.block([chain.order(k["bob"], products["ring"], 1, 20_000)]))
    # 2 orders, 1 buyer: 2 < 3 * 1; the third crosses the ratio and takes the others along.
    third = chain.order(k["bob"], products["ring"], 1, 20_000)
    ok(chain.block([third]))
    assert chain.order_trust(third.tx_id).flags & FLAG_CONCENTRATION
    assert chain.order_trust(first.tx_id).flags & FLAG_CONCENTRATION
    # Another buyer's single order in the same hour is not flagged.
    other = chain.order(k["carol"], products["ring"], 1, 20_000)
    ok(chain.block([other]))
    assert chain.order_trust(other.tx_id).flags == 0


def test_a_burst_of_fresh_first_orders_is_flagged_with_its_start(market):
    chain, k, products = market
    chain.block([], advance_ms=3_600_000 - chain.time_ms % 3_600_000)
    fresh = [key(f"fresh-{i}") for i in range(7)]
    ok(chain.block([chain.transfer(k["erin"], f.address, 50_000) for f in fresh]))
    orders = [chain.order(f, products["ring"], 1, 20_000) for f in fresh]
    ok(chain.block(orders[:5]))  # burst_first_orders = 5: not yet
    assert all(chain.order_trust(o.tx_id).flags == 0 for o in orders[:5])
    ok(chain.block(orders[5:]))
    assert all(chain.order_trust(o.tx_id).flags & FLAG_BURST for o in orders)
    # A genesis account's first order is not a fresh one.
    honest = chain.order(k["dave"], products["ring"], 1, 20_000)
    ok(chain.block([honest]))
    assert chain.order_trust(honest.tx_id).flags == 0


def test_money_back_after_the_release_voids_the_orders(market):
    chain, k, products = market
    [order] = sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000)])
    ok(chain.block(chain.review(k["alice"], order, 5, "Ottimo")))
    counted = chain.reputation(k["shop"].address)
    assert counted.orders_q == Q and counted.rating_count_q == Q
    points = chain.reward_account(k["alice"].address).points
    assert points == 200 + 50  # purchase + review
    # An unrelated transfer changes nothing; the merchant paying the buyer voids it.
    ok(chain.block([chain.transfer(k["shop"], k["bob"].address, 1_000)]))
    assert chain.order_trust(order).flags == 0
    ok(chain.block([chain.transfer(k["shop"], k["alice"].address, 1_000)]))
    record = chain.order_trust(order)
    assert record.flags == FLAG_FLOWBACK and record.state == ORDER_VOID
    voided = chain.reputation(k["shop"].address)
    assert (voided.orders_q, voided.value, voided.rating_count_q) == (0, 0, 0)
    assert voided.flagged_orders == 1 and voided.counted_orders == 0
    assert chain.stats(products["ring"]).sales_q == 0
    assert chain.reward_account(k["alice"].address).points == 0
    assert chain.reward_account(k["shop"].address).points == 0
    assert chain.total_supply() == chain.genesis.total_supply


def test_stale_hour_buckets_are_collected(market):
    chain, k, products = market
    ok(chain.block([chain.order(k["bob"], products["ring"], 1, 20_000)]))
    from chainmall.core import constants as C

    def hours():
        with chain.reader() as state:
            return state.scan(bytes([C.TABLE_TRUST_HOURS]), bytes([C.TABLE_TRUST_HOURS + 1]))

    assert len(hours()) == 2  # the shop's bucket and the buyer's entry
    chain.block([], advance_ms=3 * 3_600_000)
    assert hours() == []
