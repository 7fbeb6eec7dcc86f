"""Reputation and ranking (docs/trust.md 5 and 7): the documented formulas, updates per
touched merchant and listing, the rank index, top and search through proven queries."""

from __future__ import annotations

from chainmall.core import constants as C
from chainmall.core.abci.types import QueryRequest
from chainmall.core.errors import QueryError
from chainmall.core.genesis import TrustParams
from chainmall.core.mall.vocab import ROLE_MERCHANT
from chainmall.core.trust import keys, ranking, reputation
from chainmall.core.trust.records import EMPTY_REPUTATION, decode_product_stats
from mall_chain import key, ok
from trust_chain import TRUST_TEST_PARAMS, sell

Q = 1 << 16
P = TrustParams()


def test_a_bayesian_average_three_fives_do_not_beat_three_hundred_four_point_eights():
    three = EMPTY_REPUTATION._replace(rating_sum_q=3 * 5 * Q, rating_count_q=3 * Q)
    many = EMPTY_REPUTATION._replace(rating_sum_q=300 * Q * 48 // 10, rating_count_q=300 * Q)
    a, b = reputation.score(three, P), reputation.score(many, P)
    assert (a.rating_milli, a.quality_bps) == (3846, 7115)  # docs/trust.md 5.2
    assert (b.rating_milli, b.quality_bps) == (4758, 9395)
    assert b.score_bps > a.score_bps


def test_service_falls_with_time_outs_disputes_and_late_shipping():
    good = EMPTY_REPUTATION._replace(orders_q=20 * Q, shipped_q=20 * Q, on_time_q=20 * Q)
    late = good._replace(on_time_q=5 * Q)
    lost = good._replace(disputes_q=5 * Q)
    timed_out = good._replace(timeouts_q=5 * Q)
    cancelled = good._replace(cancels_q=5 * Q)
    service = {name: reputation.score(record, P).service_bps for name, record in
               (("good", good), ("late", late), ("lost", lost), ("timed_out", timed_out),
                ("cancelled", cancelled))}
    assert service["good"] > service["cancelled"] > service["lost"] == service["timed_out"]
    assert service["good"] > service["late"]
    struck = good._replace(strikes=1)
    assert reputation.score(struck, P).score_bps == \
        reputation.score(good, P).score_bps - P.fake_strike_bps


def test_tokens_and_terms():
    assert ranking.tokens("Anello in ARGENTO 925 — Città, di Firenze 💍") == [
        b"anello", b"in", b"argento", b"925", "città".encode(), b"di", b"firenze"]
    assert ranking.tokens("a " + "x" * 40 + " ok") == [b"ok"]  # 1 and 40 bytes skipped
    assert ranking.category_terms("jewellery/rings/silver") == [
        b"jewellery", b"jewellery/rings", b"jewellery/rings/silver"]


def index_entries(chain, product_id):
    with chain.reader() as state:
        found = []
        start, end = bytes([C.TABLE_TRUST_RANK]), bytes([C.TABLE_TRUST_RANK + 1])
        for key_bytes, _ in state.scan(start, end):
            if key_bytes[-32:] == product_id:
                found.append(key_bytes)
        return found


def test_the_index_follows_the_rank_and_top_reads_it_best_first(market):
    chain, k, products = market
    stats = chain.stats(products["ring"])
    assert stats.indexed == 1
    with chain.reader() as state:
        product = ranking.load_product(state, products["ring"])
    expected = {keys.rank_entry(kind, term, stats.rank_ppm, products["ring"])
                for kind, term in ranking.terms_of(product)}
    assert set(index_entries(chain, products["ring"])) == expected
    sell(chain, [(k["shop2"], k["alice"], products["chain"], 5_000)] * 3)
    ok(chain.block(chain.review(k["bob"], sell(
        chain, [(k["shop2"], k["bob"], products["chain"], 5_000)])[0], 5, "Bella")))
    top = chain.query("/trust/top", (10).to_bytes(2, "big"))
    ranked = [key_bytes for key_bytes, _ in top if key_bytes[0] == C.TABLE_TRUST_RANK]
    assert [keys.parse_rank_entry(key_bytes)[1] for key_bytes in ranked] == \
        [products["chain"], products["ring"]]
    ranks = [keys.parse_rank_entry(key_bytes)[0] for key_bytes in ranked]
    assert ranks == sorted(ranks, reverse=True)
    with chain.reader() as state:
        for key_bytes, value in top:
            if key_bytes[0] == C.TABLE_TRUST_PRODUCTS:
                assert keys.rank_entry(0, b"", decode_product_stats(value).rank_ppm,
                                       key_bytes[1:]) in ranked
    rings = chain.query("/trust/top", (10).to_bytes(2, "big") + b"jewellery/rings")
    assert [keys.parse_rank_entry(e)[1] for e, _ in rings if e[0] == C.TABLE_TRUST_RANK] == \
        [products["ring"]]


def test_search_matches_every_token(market):
    chain, _, products = market

    def found(text):
        entries = chain.query("/trust/search", (10).to_bytes(2, "big") + text.encode())
        return [keys.parse_rank_entry(e)[1] for e, _ in entries if e[0] == C.TABLE_TRUST_RANK]

    assert found("argento") == [products["ring"]]
    assert found("SILVER chain") == [products["chain"]]
    assert set(found("jewellery")) == set(products.values())
    assert found("silver argento") == []
    for data in ((10).to_bytes(2, "big") + b"!!", (0).to_bytes(2, "big") + b"ring", b"\x00"):
        result = chain.app.query(QueryRequest("/trust/search", data))
        assert result.code == QueryError.code, data


def test_a_delisted_listing_leaves_the_index(market):
    chain, k, products = market
    ok(chain.block([chain.delist(k["shop"], products["ring"])]))
    assert index_entries(chain, products["ring"]) == []
    assert chain.stats(products["ring"]).indexed == 0


def test_a_block_pays_for_the_merchants_it_touches(market):
    chain, k, products = market
    others = [key(f"quiet-{i}") for i in range(5)]
    ok(chain.block([chain.transfer(k["erin"], q.address, 100_000) for q in others]))
    ok(chain.block([chain.register(q, ROLE_MERCHANT, 10_000, "IT", "Quiet") for q in others]))
    ok(chain.block([chain.list_product(q, 1_000, 10, f"Quiet thing {i}", "misc")
                    for i, q in enumerate(others)]))
    quiet_before = {q.address: chain.get(keys.merchant(q.address)) for q in others}
    before = {key_bytes: value for key_bytes, value in _table(chain, C.TABLE_TRUST_MERCHANTS)}
    sell(chain, [(k["shop"], k["alice"], products["ring"], 20_000)])
    after = dict(_table(chain, C.TABLE_TRUST_MERCHANTS))
    changed = {key_bytes for key_bytes in after if before.get(key_bytes) != after[key_bytes]}
    assert changed == {keys.merchant(k["shop"].address)}
    assert {q.address: chain.get(keys.merchant(q.address)) for q in others} == quiet_before


def _table(chain, table):
    with chain.reader() as state:
        return state.scan(bytes([table]), bytes([table + 1]))


def test_a_moved_score_re_ranks_the_merchant_s_other_listings(market):
    chain, k, products = market
    extra = chain.list_product(k["shop"], 7_000, 100, "Orecchini argento", "jewellery/earrings")
    ok(chain.block([extra]))
    before = chain.stats(extra.tx_id).rank_ppm
    for buyer in ("alice", "bob", "carol"):
        [order] = sell(chain, [(k["shop"], k[buyer], products["ring"], 20_000)])
        ok(chain.block(chain.review(k[buyer], order, 5, "Eccellente")))
    ok(chain.block([]))
    after = chain.stats(extra.tx_id).rank_ppm
    assert after > before  # the merchant's standing lifted a listing nobody touched
    assert chain.get(keys.fanout(k["shop"].address)) is None  # the queue is done
    assert TRUST_TEST_PARAMS.half_life_blocks >= 64


def test_search_equals_filtering_the_lead_tokens_list_by_the_listings_own_tokens():
    """Over 400 listings with titles from a small vocabulary: `search` (point reads of the
    other tokens' index entries) finds exactly the listings a filter on each listing's own
    tokens (`terms_of`) finds, in rank order."""
    import random

    from chainmall.core.mall import keys as mall_keys
    from chainmall.core.mall.codec import MARK, NO_ID
    from chainmall.core.mall.products import PRODUCT_ACTIVE, Product
    from dict_state import DictState

    rng = random.Random(14)
    words = ["silver", "gold", "oak", "linen", "vintage", "handmade", "small", "blue"]
    state = DictState()
    products = {}
    for i in range(400):
        pid = bytes([0xB0]) + i.to_bytes(31, "big")
        product = Product(bytes(20), PRODUCT_ACTIVE, 100, 1, 0, 0, 0, NO_ID,
                          " ".join(rng.sample(words, 3)), rng.choice(["home/lamps", "garden"]))
        products[pid] = product
        state.set(mall_keys.product(pid), product.encode())
        rank = rng.randint(0, 10**6)  # one rank per listing, on every entry, as stored
        for kind, term in ranking.terms_of(product):
            state.set(keys.rank_entry(kind, term, rank, pid), MARK)
    for query in ("silver", "silver vintage", "gold oak blue", "vintage garden", "oak lamps",
                  "handmade small silver gold"):
        words_asked = ranking.tokens(query)
        lead = max(words_asked, key=lambda word: (len(word), word))
        listed = [k for k, _ in state.scan(*keys.prefix_range(
            keys.rank_prefix(keys.TERM_TOKEN, lead)))]
        expected = [k for k in listed if set(words_asked) <= {
            term for kind, term in ranking.terms_of(products[k[-32:]])
            if kind == keys.TERM_TOKEN}][:10]
        found = [k for k, _ in ranking.search(state, query, 10) if k[0] == C.TABLE_TRUST_RANK]
        assert found == expected, query
