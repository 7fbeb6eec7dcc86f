"""A ranked market as a bulk-built state, for the trust benchmarks (no txs needed).

`ranked_market(merchants, products_each, seed)` gives the state entries of
`merchants` registered merchants with reputations, each with `products_each`
active listings with stats and their rank index entries, exactly as the
trust rules would have stored them (scores by `reputation.score`, ranks by
`ranking.rank_of`, index terms by `ranking.terms_of`). Titles and categories
come from small seeded vocabularies, so search terms have realistic lists.
"""

from __future__ import annotations

import random
from typing import Any

from chainmall.core.constants import TRUST_COUNT_ONE
from chainmall.core.genesis import TrustParams
from chainmall.core.mall import keys as mall_keys
from chainmall.core.mall.codec import MARK, NO_ID
from chainmall.core.mall.parties import Party
from chainmall.core.mall.pool import NOT_IN_POOL
from chainmall.core.mall.products import PRODUCT_ACTIVE, Product
from chainmall.core.mall.vocab import ROLE_MERCHANT
from chainmall.core.trust import keys, ranking, reputation
from chainmall.core.trust.records import EMPTY_REPUTATION, ProductStats

Q = TRUST_COUNT_ONE
CATEGORIES = [f"{top}/{sub}" for top in ("jewellery", "home", "garden", "fashion", "tools")
              for sub in ("rings", "chains", "lamps", "chairs", "seeds", "shirts", "saws", "bags")]
WORDS = ["silver", "gold", "oak", "linen", "steel", "vintage", "handmade", "classic", "modern",
         "small", "large", "blue", "green", "red", "white", "black", "round", "square", "light",
         "heavy", "soft", "bright", "antique", "rustic", "elegant", "simple", "royal", "tiny"]


def merchant_address(i: int) -> bytes:
    return b"\xa0" + i.to_bytes(19, "big")


def product_id(merchant: int, j: int) -> bytes:
    return b"\xb0" + merchant.to_bytes(23, "big") + j.to_bytes(8, "big")


def ranked_market(merchants: int, products_each: int, params: TrustParams,
                  seed: int = 7) -> dict[bytes, bytes]:
    """The entries (see the module docstring)."""
    rng = random.Random(seed)
    state: dict[bytes, bytes] = {}
    for i in range(merchants):
        address = merchant_address(i)
        state[mall_keys.party(address)] = Party(
            ROLE_MERCHANT, bytes(32), 1_000, 0, 0, NOT_IN_POOL, 0, "IT", f"shop {i}",
            NO_ID).encode()
        orders = rng.randint(0, 400)
        record = EMPTY_REPUTATION._replace(
            orders_q=orders * Q, shipped_q=orders * Q, on_time_q=orders * Q * 9 // 10,
            value=orders * 5_000, rating_sum_q=orders // 3 * Q * rng.randint(3, 5),
            rating_count_q=orders // 3 * Q, counted_orders=orders)
        score = reputation.score(record, params)
        state[keys.merchant(address)] = record._replace(score_bps=score.score_bps).encode()
        for j in range(products_each):
            pid = product_id(i, j)
            title = " ".join(rng.sample(WORDS, 3))
            product = Product(address, PRODUCT_ACTIVE, rng.randint(100, 100_000), 1_000, 0, 0,
                              0, NO_ID, title, rng.choice(CATEGORIES))
            sales = rng.randint(0, orders + 1)
            stats = ProductStats(address, 0, sales * Q, sales // 3 * Q * 4, sales // 3 * Q,
                                 0, 1, sales, sales // 3)
            rank = ranking.rank_of(stats, score, params).rank_ppm
            state[mall_keys.product(pid)] = product.encode()
            state[mall_keys.merchant_product(address, pid)] = MARK
            state[keys.product(pid)] = stats._replace(rank_ppm=rank).encode()
            for kind, term in ranking.terms_of(product):
                state[keys.rank_entry(kind, term, rank, pid)] = MARK
    return state


__all__: list[Any] = ["CATEGORIES", "WORDS", "merchant_address", "product_id", "ranked_market"]
