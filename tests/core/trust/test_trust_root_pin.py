"""The trust rules' report panels pinned: a fixed chain of fake-order reports (filed,
drawn, voted fake, voted not fake, a silent panel redrawn and lapsing) must give these
state roots and block events, byte for byte. A change that moves them changes
consensus: re-pin only on purpose, with the reason in the commit.

Pinned on 2026-11-29 before the panel logic of core/trust/reports.py and
core/mall/disputes.py moved into core/mall/panel.py (which must not move them)."""

from __future__ import annotations

from chainmall.core.hashing import digest
from chainmall.core.trust.reports import REPORT_FAKE, REPORT_LAPSED, REPORT_NOT_FAKE
from mall_chain import ok
from test_reports import filed, panel
from trust_chain import TRUST_TEST_PARAMS, sell

P = TRUST_TEST_PARAMS
PINNED_ROOTS_DIGEST = "3d961bea44514791d3fb6354dad89711ed08d680da8dfcd0008c14e30745dceb"
PINNED_EVENTS_DIGEST = "2b845ff8f89af6cf7c9755bd57e5bfd4a799ed2c7116128049b72c4c71a3009a"


def test_report_panels_give_the_pinned_state_roots(market) -> None:
    chain, k, products = market
    roots: list[bytes] = []
    events: list[str] = []
    block = chain.block

    def recorded(txs, advance_ms: int = 1_000):
        result = block(txs, advance_ms)
        roots.append(chain.root)
        events.append(repr((result.codes, result.events, result.block_events)))
        return result

    chain.block = recorded  # type: ignore[method-assign]
    fake = sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000),
                        (k["shop"], k["bob"], products["ring"], 20_000)])
    honest = sell(chain, [(k["shop2"], k["carol"], products["chain"], 5_000)])
    silent = sell(chain, [(k["shop"], k["dave"], products["ring"], 20_000)])
    ruled_fake = filed(chain, k, fake)
    ok(chain.block([chain.report_vote(v, ruled_fake, 1, True)
                    for v in panel(chain, ruled_fake)[:2]]))
    report = chain.report(k["reporter"], k["shop2"].address, honest)
    ok(chain.block([report]))
    ok(chain.block([]))
    ok(chain.block([chain.report_vote(v, report.tx_id, 1, False)
                    for v in panel(chain, report.tx_id)[:2]]))
    lapsing = filed(chain, k, silent)
    ok(chain.block([chain.report_vote(panel(chain, lapsing)[0], lapsing, 1, True)]))
    chain.block([], advance_ms=P.report_ruling_timeout_ms)  # round 2: the rest redrawn
    ok(chain.block([chain.report_vote(panel(chain, lapsing)[1], lapsing, 2, False)]))
    chain.block([], advance_ms=P.report_ruling_timeout_ms)  # no majority: lapses
    states = [chain.report_record(report_id).state
              for report_id in (ruled_fake, report.tx_id, lapsing)]
    assert states == [REPORT_FAKE, REPORT_NOT_FAKE, REPORT_LAPSED]
    assert (digest(b"".join(roots)).hex(), digest("\n".join(events).encode()).hex()) == \
        (PINNED_ROOTS_DIGEST, PINNED_EVENTS_DIGEST)
