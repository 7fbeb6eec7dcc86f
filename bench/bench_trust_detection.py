"""The detection table: planted brushing campaigns on the seeded market simulator.

Run: .venv/bin/python bench/bench_trust_detection.py          (the table, as a command)
     .venv/bin/pytest bench/bench_trust_detection.py --benchmark-only -s -q

Issue target ("Trust in the mall"): "at least 90% of planted fake orders
flagged or reported, at most 1% of honest orders, and no brushing merchant
gains rank", measured on a seeded market simulator in the repo
(core/trust/simulate.py, docs/trust.md 12): 2,000 honest buyers and 100
honest shops over 48 hours of block time, with campaigns of the four
documented kinds (self-funded, hired-ring, fresh-burst, camouflaged). The
market runs twice on a real in-process chain, with and without its
campaigns; the table gives, per kind of campaign, the orders placed and the
share caught (recall), the honest orders caught (false-positive rate), and
per brushing merchant its listing's rank with and without its campaign.

CHAINMALL_BENCH_MARKET_SEED, _BUYERS, _SHOPS and _HOURS change the market.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Any

from benchutil import machine, verdict
from chainmall.core.trust.simulate import (
    CAMPAIGN_KINDS,
    MarketConfig,
    Table,
    detection_table,
    format_table,
)

RECALL_MIN = 0.90
HONEST_RATE_MAX = 0.01


def config() -> MarketConfig:
    base = MarketConfig()
    env = os.environ.get
    return dataclasses.replace(
        base, seed=int(env("CHAINMALL_BENCH_MARKET_SEED", base.seed)),
        honest_buyers=int(env("CHAINMALL_BENCH_MARKET_BUYERS", base.honest_buyers)),
        honest_shops=int(env("CHAINMALL_BENCH_MARKET_SHOPS", base.honest_shops)),
        hours=int(env("CHAINMALL_BENCH_MARKET_HOURS", base.hours)))


def report(table: Table, market: MarketConfig, seconds: float) -> tuple[str, bool]:
    """The printed report and whether every target is met."""
    campaign_rows = [row for row in table.rows if row.kind in CAMPAIGN_KINDS]
    kinds_met = all(row.rate >= RECALL_MIN for row in campaign_rows)
    recall_met = table.fake_recall >= RECALL_MIN and kinds_met
    honest_met = table.honest_rate <= HONEST_RATE_MAX
    rank_met = not table.rank_gainers
    lines = [
        f"machine: {machine('one process')}",
        f"market: seed {market.seed}, {market.honest_buyers:,} honest buyers, "
        f"{market.honest_shops} honest shops, {market.hours} hours of block time, campaigns "
        + ", ".join(f"{c.kind} x{c.merchants}" for c in market.campaigns),
        f"run: {seconds:.0f} s for both markets (with and without the campaigns)",
        "",
        f"{'campaign kind':<14} {'orders':>7} {'recall':>8}   target",
    ]
    for row in campaign_rows:
        lines.append(f"{row.kind:<14} {row.orders:>7} {100 * row.rate:>7.2f}%   >= "
                     f"{100 * RECALL_MIN:.0f}%  {verdict(row.rate >= RECALL_MIN)}")
    lines.append(f"{'all campaigns':<14} {sum(r.orders for r in campaign_rows):>7} "
                 f"{100 * table.fake_recall:>7.2f}%   >= {100 * RECALL_MIN:.0f}%  "
                 f"{verdict(recall_met)}")
    honest = next((row for row in table.rows if row.kind == "honest"), None)
    lines.append(f"{'honest (FP)':<14} {honest.orders if honest else 0:>7} "
                 f"{100 * table.honest_rate:>7.2f}%   <= {100 * HONEST_RATE_MAX:.0f}%  "
                 f"{verdict(honest_met)}")
    lines.append(f"brushing merchants ranked higher with their campaign: "
                 f"{len(table.rank_gainers)} of {len(table.standing)}   target 0  "
                 f"{verdict(rank_met)}")
    lines += ["", "detail:", format_table(table)]
    return "\n".join(lines), recall_met and honest_met and rank_met


def run() -> tuple[str, bool]:
    market = config()
    started = time.perf_counter()
    table = detection_table(market)
    return report(table, market, time.perf_counter() - started)


def test_detection_table(benchmark: Any) -> None:
    text, met = run()
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    print()
    print(text)
    assert met, "a detection target is not met (see the table)"


if __name__ == "__main__":
    text, met = run()
    print(text)
    sys.exit(0 if met else 1)
