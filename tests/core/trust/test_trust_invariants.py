"""Seeded runs of mixed trust activity with the invariants of docs/trust.md 13 checked
after every step: supply (issuance accounted), rewards within their epoch, nothing void
counted, the rank index matching the stats, reviews append-only, no per-block bookkeeping
left in committed state."""

from __future__ import annotations

import random

import pytest
from chainmall.core import constants as C
from chainmall.core.mall import keys as mall_keys
from chainmall.core.mall.products import PRODUCT_ACTIVE, decode_product
from chainmall.core.trust import keys, ranking
from chainmall.core.trust.records import (
    ORDER_COUNTED,
    decode_epoch,
    decode_order_trust,
    decode_product_stats,
)
from chainmall.core.trust.reviews import decode_review
from mall_chain import key
from trust_chain import sell, snapshot


def check(chain, reviews_seen: dict[bytes, bytes]) -> None:
    assert chain.total_supply() == chain.genesis.total_supply
    state = snapshot(chain)
    rank_entries: dict[bytes, set[bytes]] = {}
    for key_bytes in state:
        if key_bytes[0] == C.TABLE_TRUST_RANK:
            rank_entries.setdefault(key_bytes[-32:], set()).add(key_bytes)
        if key_bytes[0] == C.TABLE_TRUST_QUEUE:
            assert key_bytes[1] not in (keys.QUEUE_DIRTY_MERCHANT, keys.QUEUE_DIRTY_PRODUCT)
    for key_bytes, value in state.items():
        table = key_bytes[0]
        if table == C.TABLE_TRUST_EPOCHS:
            record = decode_epoch(value)
            assert record.settled <= record.amount
        elif table == C.TABLE_TRUST_ORDERS:
            record = decode_order_trust(value)
            if record.void:
                assert record.state != ORDER_COUNTED
        elif table == C.TABLE_TRUST_PRODUCTS:
            stats = decode_product_stats(value)
            product = decode_product(state[mall_keys.product(key_bytes[1:])])
            expected = set()
            if stats.indexed:
                assert product.status == PRODUCT_ACTIVE
                expected = {keys.rank_entry(kind, term, stats.rank_ppm, key_bytes[1:])
                            for kind, term in ranking.terms_of(product)}
            assert rank_entries.pop(key_bytes[1:], set()) == expected
        elif table == C.TABLE_TRUST_REVIEWS:
            review = decode_review(value)
            old = reviews_seen.get(key_bytes)
            if old is not None:  # only the text may grow, by parts
                before = decode_review(old)
                assert review.text.startswith(before.text)
                assert (review.rating, review.height, review.declared_bytes) == \
                    (before.rating, before.height, before.declared_bytes)
            reviews_seen[key_bytes] = value
    assert rank_entries == {}


@pytest.mark.parametrize("seed", [1, 2])
def test_mixed_activity_keeps_every_invariant(market, seed) -> None:
    chain, k, products = market
    rng = random.Random(seed)
    buyers = ["alice", "bob", "carol", "dave", "erin"]
    shops = [("shop", "ring", 20_000), ("shop2", "chain", 5_000)]
    sold: list[tuple[bytes, str, str]] = []
    reviewed: dict[bytes, int] = {}
    reviews_seen: dict[bytes, bytes] = {}
    reports: list[bytes] = []
    for step in range(28):
        action = rng.choice(["sell", "sell", "review", "reply", "payback", "shill", "report",
                             "attest", "claim", "time", "delist"])
        if action == "sell":
            shop, product, price = rng.choice(shops)
            buyer = rng.choice(buyers)
            [order] = sell(chain, [(k[shop], k[buyer], products[product], price)])
            sold.append((order, buyer, shop))
        elif action == "review" and sold:
            order, buyer, _ = rng.choice(sold)
            version = reviewed.get(order, 0) + 1
            if version <= C.REVIEW_VERSIONS_MAX:
                result = chain.block(chain.review(k[buyer], order, rng.randint(1, 5),
                                                  "x" * rng.choice([0, 10, 900]), version))
                if result.codes[0] == 0:
                    reviewed[order] = version
        elif action == "reply" and reviewed:
            order = rng.choice(sorted(reviewed))
            shop = next(s for o, _, s in sold if o == order)
            chain.block(chain.reply(k[shop], order, "Grazie"))
        elif action == "payback" and sold:
            _, buyer, shop = rng.choice(sold)
            chain.block([chain.transfer(k[shop], k[buyer].address, 100)])
        elif action == "shill":
            shill = key(f"shill-{seed}-{step}")
            chain.block([chain.transfer(k["shop"], shill.address, 50_000)])
            sell(chain, [(k["shop"], shill, products["ring"], 20_000)])
        elif action == "report" and sold:
            orders = sorted({o for o, _, s in sold if s == "shop"})[:3]
            if orders:
                report = chain.report(k["reporter"], k["shop"].address, orders)
                if chain.block([report]).codes == [0]:
                    reports.append(report.tx_id)
                    chain.block([])
                    record = chain.report_record(report.tx_id)
                    arbitrators = {key(f"arb{i}").address: key(f"arb{i}") for i in range(1, 5)}
                    seated = [arbitrators[s.arbitrator] for s in record.seats if s.filled]
                    verdict = rng.random() < 0.5
                    chain.block([chain.report_vote(a, report.tx_id, 1, verdict)
                                 for a in seated[:2]])
        elif action == "attest":
            chain.block([chain.attest(k["attester"], [(k[rng.choice(buyers)].address,
                                                       rng.randint(1, 3),
                                                       rng.randbytes(32))])])
        elif action == "claim":
            chain.block([chain.claim(k[rng.choice([*buyers, "shop", "shop2"])])])
        elif action == "time":
            chain.block([], advance_ms=rng.choice([3_600_000, 86_400_000, 3 * 86_400_000]))
        elif action == "delist" and rng.random() < 0.3:
            shop, product, _ = shops.pop(rng.randrange(len(shops))) if len(shops) > 1 \
                else (None, None, None)
            if shop:
                chain.block([chain.delist(k[shop], products[product])])
        check(chain, reviews_seen)
