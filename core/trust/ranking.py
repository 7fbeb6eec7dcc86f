"""Ranking: product stats, the rank blend, the rank index, `top` and `search`.

Every active listing has a rank in millionths (docs/trust.md section 7): a
blend of quality (the product's Bayesian rating, with its merchant's rating
as the prior), service (the merchant's shipping and dispute record), sales
(units sold in orders that counted, decayed, on a log scale) and the
merchant's reputation; never the price or anything paid. The index
`0x35 || kind || term || inverted rank || product id` lists the listing under
every term (all listings, each category prefix, each title and category
token) best first, so a top-k is one range read of k entries. A listing is
re-ranked when something it depends on moves (its sales or reviews, its
merchant's score) and, for decay, by a bounded sweep; each re-rank deletes
its old index entries and writes the new ones.
"""

from __future__ import annotations

from typing import NamedTuple

from ..constants import (
    CATEGORY_LEVELS_MAX,
    RANK_PPM_MAX,
    SEARCH_SCAN_MAX,
    SEARCH_TERMS_MAX,
    TITLE_TOKENS_MAX,
    TOKEN_BYTES_MAX,
    TOKEN_BYTES_MIN,
    TRUST_COUNT_ONE,
    U32_MAX,
    U64_MAX,
)
from ..genesis import TrustParams
from ..mall import keys as mall_keys
from ..mall.codec import MARK, MallState, StateReader
from ..mall.products import PRODUCT_ACTIVE, Product, load_product
from . import keys, reputation
from .decay import advance, decay_steps
from .records import ProductStats, decode_product_stats, new_product_stats

Q = TRUST_COUNT_ONE
Entries = list[tuple[bytes, bytes]]


# --- terms ----------------------------------------------------------------------------


# Code points that separate tokens besides ASCII non-alphanumerics: Latin-1 punctuation and
# symbols, general punctuation up to miscellaneous symbols and arrows, supplemental and CJK
# punctuation, small and full-width forms' punctuation, emoji. Fixed ranges, not a Unicode
# database, so every node and every Python agrees.
_SEPARATOR_RANGES = ((0x80, 0xBF), (0xD7, 0xD7), (0xF7, 0xF7), (0x2000, 0x2BFF),
                     (0x2E00, 0x2E7F), (0x3000, 0x303F), (0xFE10, 0xFE6F), (0xFF00, 0xFF0F),
                     (0xFF1A, 0xFF20), (0xFF3B, 0xFF40), (0xFF5B, 0xFF65), (0x1F000, 0x1FAFF))


def _token_char(char: str) -> str | None:
    """The character as it goes into a token (ASCII lower-cased), None for a separator."""
    point = ord(char)
    if point < 0x80:
        if "0" <= char <= "9" or "a" <= char <= "z":
            return char
        return chr(point + 32) if "A" <= char <= "Z" else None
    for low, high in _SEPARATOR_RANGES:
        if low <= point <= high:
            return None
    return char


def tokens(text: str, limit: int = TITLE_TOKENS_MAX) -> list[bytes]:
    """The distinct tokens of `text`, in order: maximal runs of ASCII letters and digits and
    non-ASCII characters outside the separator ranges, ASCII lower-cased (other letters as
    written), kept when their UTF-8 is 2..32 bytes, at most `limit`."""
    found: list[bytes] = []
    run: list[str] = []
    for char in text + " ":
        mapped = _token_char(char)
        if mapped is not None:
            run.append(mapped)
            continue
        word = "".join(run).encode("utf-8")
        run.clear()
        if TOKEN_BYTES_MIN <= len(word) <= TOKEN_BYTES_MAX and word not in found:
            found.append(word)
            if len(found) == limit:
                break
    return found


def category_terms(category: str) -> list[bytes]:
    """A category and each of its '/'-prefixes, shortest first (at most 8)."""
    parts = category.split("/")
    terms = []
    for depth in range(1, min(len(parts), CATEGORY_LEVELS_MAX) + 1):
        term = "/".join(parts[:depth])
        if term:
            terms.append(term.encode("ascii"))
    return terms


def terms_of(product: Product) -> list[tuple[int, bytes]]:
    """Every (kind, term) a listing is indexed under."""
    terms: list[tuple[int, bytes]] = [(keys.TERM_ALL, b"")]
    terms += [(keys.TERM_CATEGORY, term) for term in category_terms(product.category)]
    words = tokens(product.title)
    for word in tokens(product.category.replace("/", " ")):
        if word not in words and len(words) < TITLE_TOKENS_MAX:
            words.append(word)
    terms += [(keys.TERM_TOKEN, word) for word in words]
    return terms


# --- stats and rank --------------------------------------------------------------------


def load_stats(state: StateReader, product_id: bytes) -> ProductStats | None:
    raw = state.get(keys.product(product_id))
    return None if raw is None else decode_product_stats(raw)


def bring_forward(stats: ProductStats, height: int, params: TrustParams) -> ProductStats:
    """The stats decayed by the whole steps from `last_height` to `height`."""
    steps, reached = advance(stats.last_height, height, params.half_life_blocks)
    if steps == 0:
        return stats
    return stats._replace(last_height=reached, sales_q=decay_steps(stats.sales_q, steps),
                          rating_sum_q=decay_steps(stats.rating_sum_q, steps),
                          rating_count_q=decay_steps(stats.rating_count_q, steps))


class RankParts(NamedTuple):
    """The parts of a rank (millionths each) and the blend."""

    quality_ppm: int
    service_ppm: int
    sales_ppm: int
    reputation_ppm: int
    rank_ppm: int


def rank_of(stats: ProductStats, merchant_score: reputation.Score,
            params: TrustParams) -> RankParts:
    """The rank blend of docs/trust.md section 7 (stats brought forward already)."""
    rating = reputation.bayesian_milli(stats.rating_sum_q, stats.rating_count_q,
                                       merchant_score.rating_milli, params.prior_weight)
    quality = reputation.stars_to_bps(rating, RANK_PPM_MAX)
    service = merchant_score.service_bps * 100
    units = stats.sales_q // Q
    sales = min(RANK_PPM_MAX, units.bit_length() * RANK_PPM_MAX // params.sales_bits_full)
    standing = merchant_score.score_bps * 100
    weights = (params.rank_weight_quality + params.rank_weight_service
               + params.rank_weight_sales + params.rank_weight_reputation)
    rank = (params.rank_weight_quality * quality + params.rank_weight_service * service
            + params.rank_weight_sales * sales + params.rank_weight_reputation * standing) \
        // weights
    return RankParts(quality, service, sales, standing, rank)


def add_stats(state: MallState, product_id: bytes, merchant: bytes, height: int,
              params: TrustParams, sales_q: int = 0, rating_sum_q: int = 0,
              rating_count_q: int = 0, counted_orders: int = 0, reviews: int = 0) -> None:
    """Add (or, negative, withdraw, floored at 0) to a product's stats brought forward to
    `height`; the product is re-ranked at the end of the block."""
    old = load_stats(state, product_id)
    stats = new_product_stats(merchant, height) if old is None \
        else bring_forward(old, height, params)

    def bounded(value: int, top: int = U64_MAX) -> int:
        return min(max(value, 0), top)

    stats = stats._replace(
        sales_q=bounded(stats.sales_q + sales_q),
        rating_sum_q=bounded(stats.rating_sum_q + rating_sum_q),
        rating_count_q=bounded(stats.rating_count_q + rating_count_q),
        counted_orders=bounded(stats.counted_orders + counted_orders),
        reviews=bounded(stats.reviews + reviews, U32_MAX))
    state.set(keys.product(product_id), stats.encode())
    state.set(keys.dirty_product(product_id), MARK)


def list_product(state: MallState, product_id: bytes, merchant: bytes, height: int) -> None:
    """A new listing: stats at zero, indexed at the end of the block."""
    state.set(keys.product(product_id), new_product_stats(merchant, height).encode())
    state.set(keys.dirty_product(product_id), MARK)


def _index(state: MallState, product_id: bytes, product: Product, rank_ppm: int,
           present: bool) -> None:
    for kind, term in terms_of(product):
        key = keys.rank_entry(kind, term, rank_ppm, product_id)
        if present:
            state.set(key, MARK)
        else:
            state.delete(key)


def rerank(state: MallState, product_id: bytes, height: int, params: TrustParams) -> None:
    """Recompute a listing's rank at `height` and move its index entries if it changed; a
    delisted (or missing) listing leaves the index. Writes only what changed."""
    old = load_stats(state, product_id)
    if old is None:
        return
    product = load_product(state, product_id)
    stats = bring_forward(old, height, params)
    if product is None or product.status != PRODUCT_ACTIVE:
        if stats.indexed and product is not None:
            _index(state, product_id, product, stats.rank_ppm, False)
        stats = stats._replace(indexed=0)
    else:
        _, merchant_score = reputation.current(state, stats.merchant, height, params)
        rank = rank_of(stats, merchant_score, params).rank_ppm
        if stats.indexed and rank != stats.rank_ppm:
            _index(state, product_id, product, stats.rank_ppm, False)
        if not stats.indexed or rank != stats.rank_ppm:
            _index(state, product_id, product, rank, True)
        stats = stats._replace(rank_ppm=rank, indexed=1)
    if stats != old:
        state.set(keys.product(product_id), stats.encode())


def merchant_products_after(state: StateReader, merchant: bytes, cursor: bytes,
                            limit: int) -> list[bytes]:
    """Up to `limit` of the merchant's product ids after `cursor` (exclusive; empty: from
    the first), in id order (the mall's index 0x16)."""
    start, end = mall_keys.prefix_range(mall_keys.products_of(merchant))
    if cursor:
        start = mall_keys.merchant_product(merchant, cursor) + b"\x00"
    return [key[-32:] for key, _ in state.scan(start, end, limit)]


# --- reads: top and search ------------------------------------------------------------------


def _with_objects(state: StateReader, index_entries: Entries) -> Entries:
    entries: Entries = []
    for key, value in index_entries:
        product_id = key[-32:]
        entries.append((key, value))
        for object_key in (mall_keys.product(product_id), keys.product(product_id)):
            raw = state.get(object_key)
            if raw is not None:
                entries.append((object_key, raw))
    return entries


def top(state: StateReader, k: int, category: str = "") -> Entries:
    """The k best listings (of a category and its sub-categories): index entries, each
    followed by its product and its stats."""
    prefix = keys.rank_prefix(keys.TERM_CATEGORY, category.encode("ascii")) if category \
        else keys.rank_prefix(keys.TERM_ALL, b"")
    start, end = keys.prefix_range(prefix)
    return _with_objects(state, state.scan(start, end, k))


def search(state: StateReader, query: str, k: int) -> Entries:
    """The k best listings whose title and category tokens hold every token of `query`
    (ValueError if it has none): the longest token's list is read in rank order, at most
    SEARCH_SCAN_MAX entries, keeping listings that hold the other tokens too."""
    words = tokens(query, SEARCH_TERMS_MAX)
    if not words:
        raise ValueError("the query has no token (2-32 letters or digits)")
    lead = max(words, key=lambda word: (len(word), word))
    others = [word for word in words if word != lead]
    start, end = keys.prefix_range(keys.rank_prefix(keys.TERM_TOKEN, lead))
    found: Entries = []
    scanned = 0
    while scanned < SEARCH_SCAN_MAX and len(found) < k:
        batch = state.scan(start, end, min(SEARCH_SCAN_MAX - scanned, max(4 * k, 64)))
        if not batch:
            break
        scanned += len(batch)
        for key, value in batch:
            if not others or _holds(state, key, others):
                found.append((key, value))
                if len(found) == k:
                    break
        start = batch[-1][0] + b"\x00"
    return _with_objects(state, found)


def _holds(state: StateReader, entry: bytes, words: list[bytes]) -> bool:
    """Whether the listing of index entry `entry` is also listed under each token of `words`:
    one point read per word, since every entry of a listing carries its one stored rank."""
    tail = entry[-(4 + 32):]  # inverted rank u32 || product id
    return all(state.get(keys.rank_prefix(keys.TERM_TOKEN, word) + tail) is not None
               for word in words)
