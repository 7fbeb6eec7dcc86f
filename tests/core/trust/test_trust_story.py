"""The silver-jewellery story continued: trust in the mall, block by block.

The certified silver merchant sells rings to three buyers, who review them (one corrects
a review); the merchant replies; reputations and ranks move as docs/trust.md says; an
attester rewards a buyer who watched the merchant's video; the epoch closes and everyone
claims. Meanwhile a rival shop brushes: it funds shills into existence (flagged on
chain), hires workers who order three times an hour and are paid back (flagged), and
camouflaged workers who order across hours and are paid through a middleman (not
flagged). The watcher finds the dense block and files a report, a drawn panel rules it
fake, the rival is slashed, the reporter rewarded, and the campaign leaves the rival no
better placed than before it. Every unit is accounted for at every step.
"""

from __future__ import annotations

import pytest
from chainmall.core import constants as C
from chainmall.core.mall.vocab import ROLE_ARBITRATOR, ROLE_MERCHANT
from chainmall.core.trust import keys, reputation
from chainmall.core.trust.records import (
    FLAG_CONCENTRATION,
    FLAG_FAKE,
    FLAG_FLOWBACK,
    FLAG_FUNDED,
    FLAGS_VOID,
)
from chainmall.core.trust.reports import REPORT_FAKE
from chainmall.core.trust.reviews import decode_reply, decode_review
from chainmall.core.trust.watch import StoreChainReader, Watcher, file_reports
from mall_chain import key, ok
from trust_chain import TRUST_TEST_PARAMS, TrustChain, sell, trust_genesis

P = TRUST_TEST_PARAMS
Q = 1 << 16
HOUR = 3_600_000
DAY = 86_400_000
NAMES = ["rossi", "lucciola", "bianchi", "buyer1", "buyer2", "buyer3", "attester", "watcher",
         "middleman", "agenzia", "assay-office", *(f"arb{i}" for i in range(1, 6)),
         *(f"hired{i}" for i in range(3)), *(f"camo{i}" for i in range(6)),
         *(f"customer{i}" for i in range(30))]


@pytest.fixture(scope="module")
def story(tmp_path_factory):
    chain = TrustChain(tmp_path_factory.mktemp("trust-story") / "data",
                       trust_genesis({name: 10**9 for name in NAMES}))
    k = {name: key(name) for name in NAMES}
    facts: dict = {}

    def supply_kept() -> None:
        assert chain.total_supply() == chain.genesis.total_supply

    ok(chain.block([chain.register(k["rossi"], ROLE_MERCHANT, 10_000, "IT",
                                   "Argenteria Rossi"),
                    chain.register(k["bianchi"], ROLE_MERCHANT, 10_000, "IT", "Orafo Bianchi"),
                    chain.register(k["lucciola"], ROLE_MERCHANT, 10_000, "IT",
                                   "Lucciola Bijoux")]
                   + [chain.register(k[f"arb{i}"], ROLE_ARBITRATOR, 500, name=f"Arbitro {i}")
                      for i in range(1, 6)]))
    ring = chain.list_product(k["rossi"], 20_000, 100, "Anello in argento 925",
                              "jewellery/rings")
    rival = chain.list_product(k["lucciola"], 20_000, 100, "Anello argento brillante",
                               "jewellery/rings")
    brooch = chain.list_product(k["bianchi"], 9_000, 100, "Spilla in oro", "jewellery/brooches")
    ok(chain.block([ring, rival, brooch]))
    facts["ring"], facts["rival"] = ring.tx_id, rival.tx_id
    # The market around them: thirty customers, most at the certified shop.
    sell(chain, [(k["rossi"] if i % 3 else k["bianchi"], k[f"customer{i}"],
                  ring.tx_id if i % 3 else brooch.tx_id, 20_000 if i % 3 else 9_000)
                 for i in range(30)])
    facts["rank0"] = {"ring": chain.stats(ring.tx_id).rank_ppm,
                      "rival": chain.stats(rival.tx_id).rank_ppm}

    # --- honest trade: three buyers, reviews, a correction, a reply ----------------------
    orders = sell(chain, [(k["rossi"], k[f"buyer{i}"], ring.tx_id, 20_000)
                          for i in (1, 2, 3)])
    facts["orders"] = orders
    # The rival's one honest sale, before any brushing.
    facts["rival_honest"] = sell(chain, [(k["lucciola"], k["buyer3"], rival.tx_id, 20_000)])
    facts["rival_before"] = chain.stats(rival.tx_id)
    facts["rival_rank_before"] = chain.stats(rival.tx_id).rank_ppm
    facts["rank_before_reviews"] = chain.stats(ring.tx_id).rank_ppm
    ok(chain.block(chain.review(k["buyer1"], orders[0], 5, "Splendido, argento vero.")
                   + chain.review(k["buyer2"], orders[1], 3, "Arrivato in ritardo")
                   + chain.review(k["buyer3"], orders[2], 5, "Perfetto")))
    ok(chain.block(chain.reply(k["rossi"], orders[1], "Ci scusiamo: il corriere ha tardato.")
                   + chain.review(k["buyer2"], orders[1], 4, "Risolto, grazie", version=2)))
    facts["rank_after_reviews"] = chain.stats(ring.tx_id).rank_ppm
    ok(chain.block([chain.attest(k["attester"], [(k["buyer1"].address, 1, b"\xa1" * 32)])]))
    supply_kept()

    # --- the rival brushes -------------------------------------------------------------------
    shills = [key(f"shill{i}") for i in range(4)]
    ok(chain.block([chain.transfer(k["lucciola"], s.address, 100_000) for s in shills]))
    funded = sell(chain, [(k["lucciola"], s, rival.tx_id, 20_000) for s in shills])
    chain.block([], advance_ms=HOUR - chain.time_ms % HOUR)  # a fresh hour
    hired = []
    for _ in range(3):
        hired += sell(chain, [(k["lucciola"], k[f"hired{i}"], rival.tx_id, 20_000)
                              for i in range(3)], advance_ms=60_000)
    ok(chain.block([chain.transfer(k["lucciola"], k[f"hired{i}"].address, 2_000)
                    for i in range(3)]))
    camouflaged = []
    for _round_number in range(2):
        chain.block([], advance_ms=2 * HOUR)
        camouflaged += sell(chain, [(k["lucciola"], k[f"camo{i}"], rival.tx_id, 20_000)
                                    for i in range(6)])
    camouflage = sell(chain, [(k["rossi"], k[f"camo{i}"], ring.tx_id, 20_000)
                              for i in range(6)])
    ok(chain.block([chain.transfer(k["lucciola"], k["middleman"].address, 50_000)]))
    ok(chain.block([chain.transfer(k["middleman"], k[f"camo{i}"].address, 4_000)
                    for i in range(6)]))
    ok(chain.block([chain.review(k[f"camo{i}"], o, 5, "Top!")[0]
                    for i, o in enumerate(camouflaged[:6])]))
    facts.update(funded=funded, hired=hired, camouflaged=camouflaged, camouflage=camouflage)
    facts["unflagged"] = [o for o in funded + hired + camouflaged
                          if not chain.order_trust(o).flags & FLAGS_VOID]
    facts["rival_during"] = chain.stats(rival.tx_id)
    supply_kept()

    # --- the watcher reports; a drawn panel rules ------------------------------------------
    watcher = Watcher(StoreChainReader(chain.store))
    watcher.catch_up()
    findings = watcher.scan()
    facts["findings"] = findings
    filed = []

    def sink(payload: bytes) -> bytes:
        tx = chain.tx(k["watcher"], C.TX_TRUST_REPORT_FILE, payload)
        filed.append(tx)
        return tx.tx_id

    report_ids = file_reports(watcher, findings, sink)
    watcher_before = chain.balance(k["watcher"])
    bond_before = chain.reputation(k["lucciola"].address)
    ok(chain.block(filed))
    ok(chain.block([]))  # panels drawn
    arbitrators = {k[f"arb{i}"].address: k[f"arb{i}"] for i in range(1, 6)}
    votes = []
    for report_id in report_ids:
        seated = [arbitrators[s.arbitrator] for s in chain.report_record(report_id).seats]
        votes += [chain.report_vote(a, report_id, 1, True) for a in seated[:2]]
    ok(chain.block(votes))
    facts.update(report_ids=report_ids, watcher_gain=chain.balance(k["watcher"]) -
                 watcher_before, bond_record=bond_before)
    supply_kept()

    # --- the epoch closes; everyone claims ----------------------------------------------------
    facts["points"] = {name: getattr(chain.reward_account(k[name].address), "points", 0)
                       for name in ("rossi", "buyer1", "buyer2", "lucciola")}
    facts["shill_account"] = chain.reward_account(shills[0].address)
    facts["epoch_points"] = chain.epoch(0).total_points
    chain.block([], advance_ms=DAY)
    facts["epoch"] = chain.epoch(0)
    before = {name: chain.balance(k[name]) for name in ("rossi", "buyer1", "buyer2")}
    ok(chain.block([chain.claim(k[name]) for name in before]))
    facts["claimed"] = {name: chain.balance(k[name]) - before[name] + 1 for name in before}
    supply_kept()
    chain.k = k
    yield chain, facts
    chain.close()


def test_reviews_are_there_with_their_versions_and_the_reply(story):
    chain, facts = story
    entries = dict(chain.query("/trust/review", facts["orders"][1]))
    versions = [decode_review(v) for key_bytes, v in sorted(entries.items())
                if key_bytes[0] == C.TABLE_TRUST_REVIEWS]
    assert [(v.rating, v.text) for v in versions] == [(3, b"Arrivato in ritardo"),
                                                       (4, b"Risolto, grazie")]
    reply = decode_reply(entries[keys.reply(facts["orders"][1])])
    assert reply.text.startswith(b"Ci scusiamo")


def test_the_merchant_s_reputation_is_the_documented_formula(story):
    chain, _facts = story
    record = chain.reputation(chain.k["rossi"].address)
    sales = 20 + 3 + 6  # the customers, three buyers and the camouflage purchases
    assert record.counted_orders == sales
    assert record.rating_count_q == 3 * Q and record.rating_sum_q == (5 + 4 + 5) * Q
    assert record.orders_q == sales * Q and record.on_time_q == sales * Q
    assert record.strikes == 0
    recomputed = reputation.score(record, chain.genesis.trust.params)
    assert record.score_bps == recomputed.score_bps
    assert recomputed.rating_milli == (10 * Q * 3_500 + 14 * Q * 1_000) // (13 * Q)


def test_good_reviews_lift_the_rank(story):
    _, facts = story
    assert facts["rank_after_reviews"] > facts["rank_before_reviews"] > facts["rank0"]["ring"]


def test_on_chain_signals_flag_the_shills_and_the_hired_workers(story):
    chain, facts = story
    for order in facts["funded"]:
        assert chain.order_trust(order).flags & FLAG_FUNDED
    for order in facts["hired"]:
        assert chain.order_trust(order).flags & (FLAG_CONCENTRATION | FLAG_FLOWBACK)
    # The camouflaged workers' orders escaped every on-chain signal...
    assert set(facts["unflagged"]) == set(facts["camouflaged"])
    # ...their honest purchases at the certified shop stay honest.
    for order in facts["camouflage"]:
        assert chain.order_trust(order).flags == 0


def test_the_watcher_reports_the_dense_block_and_the_panel_slashes(story):
    chain, facts = story
    reported = {order for finding in facts["findings"] for order in finding.orders}
    assert set(facts["camouflaged"]) <= reported
    assert not reported & set(facts["camouflage"])  # the camouflage shop is not accused
    assert all(f.merchant == chain.k["lucciola"].address for f in facts["findings"])
    for report_id in facts["report_ids"]:
        assert chain.report_record(report_id).state == REPORT_FAKE
    for order in facts["camouflaged"]:
        assert chain.order_trust(order).flags & FLAG_FAKE
    rival = chain.reputation(chain.k["lucciola"].address)
    assert rival.strikes == len(facts["report_ids"]) >= 1
    slashed = sum(chain.report_record(r).slashed for r in facts["report_ids"])
    rewarded = sum(chain.report_record(r).reporter_reward for r in facts["report_ids"])
    assert slashed > 0 and facts["watcher_gain"] == rewarded - len(facts["report_ids"])


def test_the_campaign_leaves_the_rival_no_better_placed(story):
    chain, facts = story
    after = chain.stats(facts["rival"])
    before = facts["rival_before"]
    assert after.rank_ppm < facts["rival_rank_before"]  # struck, below where it started
    assert after.sales_q <= before.sales_q and after.rating_count_q == 0
    ring = chain.stats(facts["ring"])
    top = chain.query("/trust/top", (5).to_bytes(2, "big") + b"jewellery/rings")
    ranked = [keys.parse_rank_entry(e)[1] for e, _ in top if e[0] == C.TABLE_TRUST_RANK]
    assert ranked == [facts["ring"], facts["rival"]] and ring.rank_ppm > after.rank_ppm
    assert facts["rank0"]["rival"] >= after.rank_ppm
    # No reward for the fake trade: the shills never had points (their orders were void
    # from the start); the rival's are only its honest sale's (next test).
    assert facts["shill_account"] is None


def test_rewards_paid_at_the_epoch_boundary_and_claimed(story):
    _chain, facts = story
    epoch = facts["epoch"]
    assert epoch.total_points == facts["epoch_points"]
    for name, paid in facts["claimed"].items():
        points = facts["points"][name]
        assert paid == (points * epoch.per_point) >> 64, name
    assert facts["points"]["buyer1"] == 200 + 50 + 10  # purchase, review, video
    assert sum(facts["claimed"].values()) <= epoch.amount
    # The rival earned points only for its one honest sale before brushing.
    assert facts["points"]["lucciola"] == 200


def test_supply_is_conserved_and_issuance_accounted(story):
    chain, facts = story
    assert chain.total_supply() == chain.genesis.total_supply
    assert chain.issued() == facts["epoch"].issued == P.issuance_per_epoch
