"""The fake-order defences end to end on a small seeded market (docs/trust.md 12): at
least 90% of planted fake orders flagged or reported, at most 1% of honest orders, and no
brushing merchant ranks better with its campaign. bench/bench_trust_detection.py runs the
full-size market and prints the table."""

from __future__ import annotations

import pytest
from chainmall.core.trust.simulate import (
    CAMPAIGN_KINDS,
    Campaign,
    MarketConfig,
    detection_table,
    format_table,
)

SMALL = MarketConfig(seed=11, honest_buyers=200, honest_shops=20, hours=40,
                     campaigns=(Campaign("self-funded", 1, 8, 3), Campaign("hired-ring", 1, 6, 3),
                                Campaign("fresh-burst", 1, 12, 1),
                                Campaign("camouflaged", 3, 12, 2)))


@pytest.mark.slow
def test_a_small_market_meets_the_detection_targets() -> None:
    table = detection_table(SMALL)
    text = format_table(table)
    assert {row.kind for row in table.rows} >= set(CAMPAIGN_KINDS) | {"honest"}, text
    for row in table.rows:
        if row.kind in CAMPAIGN_KINDS:
            assert row.rate >= 0.9, text
    assert table.fake_recall >= 0.9, text
    assert table.honest_rate <= 0.01, text
    assert table.rank_gainers == [], text
    camouflage = [row for row in table.rows if row.kind == "camouflage"]
    assert not camouflage or camouflage[0].caught == 0, text  # honest shops not accused
    assert table.outcome.failed_txs == 0
