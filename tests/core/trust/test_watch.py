"""The off-chain watcher (docs/trust.md 6.4): Fraudar-style peeling finds a dense block
hidden behind camouflage; the watcher turns it into report payloads. The watcher over a
store runs in the market simulator (test_detection.py), over a node's RPC in `mall watch`
(tests/cli/test_trust_cli.py)."""

from __future__ import annotations

import math
import random

from chainmall.core.constants import REPORT_ORDERS_MAX
from chainmall.core.trust.fraudar import densest, find_blocks, weighted
from chainmall.core.trust.reports import decode_filing
from chainmall.core.trust.watch import Finding, payloads


def market(seed: int, camouflage: int) -> dict[tuple[int, int], float]:
    """1,000 honest buyers over 100 shops (Zipf), and 20 workers x 3 shops with
    `camouflage` honest purchases each."""
    rng = random.Random(seed)
    edges: dict[tuple[int, int], int] = {}
    weights = [1 / (i + 1) for i in range(100)]
    for buyer in range(1_000):
        for _ in range(rng.randint(1, 4)):
            shop = rng.choices(range(100), weights)[0]
            edges[(buyer, shop)] = edges.get((buyer, shop), 0) + 1
    for worker in range(1_000, 1_020):
        for shop in (100, 101, 102):
            edges[(worker, shop)] = edges.get((worker, shop), 0) + 2
        for _ in range(camouflage):
            shop = rng.choices(range(100), weights)[0]
            edges[(worker, shop)] = edges.get((worker, shop), 0) + 1
    return {edge: math.log1p(count) for edge, count in edges.items()}


def test_peeling_finds_the_planted_block_whatever_the_camouflage() -> None:
    for camouflage in (0, 3, 10):
        block = densest(weighted(market(7, camouflage)))
        assert block is not None
        workers = {row for row in block.rows if row >= 1_000}
        assert len(workers) == 20, camouflage
        assert {100, 101, 102} <= set(block.columns)
        honest_rows = len(block.rows) - len(workers)
        assert honest_rows <= 2, (camouflage, honest_rows)


def test_blocks_are_found_one_after_the_other_and_stop_at_the_bar() -> None:
    edges = market(3, 3)
    blocks = find_blocks(edges, {}, 5, 0.0)
    assert blocks[0].density >= blocks[-1].density
    assert find_blocks(edges, {}, 5, 10.0) == []
    assert densest({}) is None


def test_peeling_is_reproducible() -> None:
    edges = market(11, 3)
    assert densest(weighted(edges)) == densest(weighted(dict(reversed(edges.items()))))


def test_a_finding_becomes_reports_of_at_most_24_orders_with_its_evidence() -> None:
    orders = tuple(bytes([i]) * 32 for i in range(1, 60))
    finding = Finding(b"\x07" * 20, orders, (b"\x08" * 20,), 2.5, 0.4)
    made = payloads([finding])
    assert [len(part.orders) for part, _ in made] == [24, 24, 11]
    for part, payload in made:
        filing = decode_filing(payload)
        assert filing.merchant == b"\x07" * 20 and filing.orders == part.orders
        assert filing.evidence == part.evidence_hash()
        assert b'"kind":"chainmall dense block v1"' in part.evidence()
    assert len(made[0][0].orders) == REPORT_ORDERS_MAX
