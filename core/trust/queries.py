"""Read functions of the trust rules and the `/trust/...` query paths (docs/trust.md 11).

As the mall's (`core/mall/queries.py`): each read returns state entries
`(key, value)`; each path's handler names the keys, which the application
reads and proves against the state root of the height it serves, so every
review, reputation, rank entry, report and reward a client is shown is a
state entry with its own proof.
"""

from __future__ import annotations

from typing import Any

from ..constants import (
    ADDRESS_BYTES,
    HASH_BYTES,
    MALL_CATEGORY_BYTES_MAX,
    REVIEW_VERSIONS_MAX,
    TOP_K_MAX,
    TRUST_QUERY_ITEMS_MAX,
)
from ..encoding import Reader
from ..errors import DecodeError, QueryError
from ..mall import keys as mall_keys
from ..mall.codec import StateReader, check_token
from ..mall.queries import Entries, EntryReader, one_entry, register_queries
from . import keys, ranking
from .rewards import load_account, pointer

REVIEWS_PER_QUERY_MAX = 100


def _prefix(state: StateReader, prefix: bytes, limit: int = TRUST_QUERY_ITEMS_MAX) -> Entries:
    start, end = keys.prefix_range(prefix)
    return state.scan(start, end, limit)


def review(state: StateReader, order_id: bytes) -> Entries:
    """Every review version of the order, the reply, the order's trust record."""
    return (_prefix(state, keys.reviews_of(order_id), REVIEW_VERSIONS_MAX)
            + one_entry(state, keys.reply(order_id)) + one_entry(state, keys.order(order_id)))


def reviews(state: StateReader, scope: int, subject: bytes, from_height: int = 0,
            limit: int = REVIEWS_PER_QUERY_MAX) -> Entries:
    """The reviews of a product (scope 1) or merchant (scope 2) from a height, oldest first:
    index entries, each followed by the order's versions and reply."""
    prefix = keys.review_index_prefix(scope, subject)
    start, end = keys.prefix_range(prefix)
    start = prefix + from_height.to_bytes(8, "big")
    entries: Entries = []
    for key, value in state.scan(start, end, limit):
        entries.append((key, value))
        order_id = key[-HASH_BYTES:]
        entries += _prefix(state, keys.reviews_of(order_id), REVIEW_VERSIONS_MAX)
        entries += one_entry(state, keys.reply(order_id))
    return entries


def reputation(state: StateReader, merchant: bytes) -> Entries:
    """The merchant's reputation record and its mall party entry."""
    return one_entry(state, keys.merchant(merchant)) + one_entry(state, mall_keys.party(merchant))


def product(state: StateReader, product_id: bytes) -> Entries:
    """The listing's stats and the listing."""
    return (one_entry(state, keys.product(product_id))
            + one_entry(state, mall_keys.product(product_id)))


def order(state: StateReader, order_id: bytes) -> Entries:
    """The order's trust record (its signals and what it counted for)."""
    return one_entry(state, keys.order(order_id))


def report(state: StateReader, report_id: bytes) -> Entries:
    return one_entry(state, keys.report(report_id))


def reports_of(state: StateReader, kind: int, address: bytes) -> Entries:
    """Reports against a merchant (kind 1) or an arbitrator's seats (kind 2): index entries
    each followed by the report."""
    entries: Entries = []
    for key, value in _prefix(state, keys.report_index_prefix(kind, address)):
        entries.append((key, value))
        entries += one_entry(state, keys.report(key[-HASH_BYTES:]))
    return entries


def _meta(state: StateReader) -> Entries:
    return one_entry(state, keys.META_EPOCH) + one_entry(state, keys.META_ISSUED)


def rewards(state: StateReader, address: bytes) -> Entries:
    """The reward account, the epoch its points are in, the current epoch, the meta."""
    entries = one_entry(state, keys.reward_account(address))
    for number in sorted({load_account(state, address).epoch, pointer(state).current}):
        entries += one_entry(state, keys.epoch(number))
    return entries + _meta(state)


def epochs(state: StateReader, first: int, count: int) -> Entries:
    """Epoch records first..first+count-1 (those that exist) and the meta entries."""
    last = min(first + count, 2**32 - 1)
    found = state.scan(keys.epoch(first), keys.epoch(last), count) if last > first else []
    return found + _meta(state)


def claim(state: StateReader, claim_id: bytes) -> Entries:
    return one_entry(state, keys.claim(claim_id))


# --- the query paths ----------------------------------------------------------------------


def _fixed(data: bytes, length: int, what: str) -> bytes:
    if len(data) != length:
        raise QueryError(f"{what} query: expected {length} bytes, got {len(data)}")
    return bytes(data)


def _k(reader: Reader) -> int:
    k = reader.u16("k")
    if not 1 <= k <= TOP_K_MAX:
        raise QueryError(f"k {k} is outside 1..{TOP_K_MAX}")
    return k


def _top(state: StateReader, data: bytes) -> Entries:
    try:
        reader = Reader(data, "top query")
        k = _k(reader)
        category = reader.fixed(reader.remaining, "category").decode("ascii")
        if category:
            check_token(category, "category")
        if len(category) > MALL_CATEGORY_BYTES_MAX:
            raise ValueError("the category is too long")
    except (DecodeError, UnicodeDecodeError, ValueError) as exc:
        raise QueryError(f"top query: {exc}") from None
    return ranking.top(state, k, category)


def _search(state: StateReader, data: bytes) -> Entries:
    try:
        reader = Reader(data, "search query")
        k = _k(reader)
        text = reader.fixed(reader.remaining, "text").decode("utf-8")
        return ranking.search(state, text, k)
    except (DecodeError, UnicodeDecodeError, ValueError) as exc:
        raise QueryError(f"search query: {exc}") from None


def _reviews(state: StateReader, data: bytes) -> Entries:
    if not data or data[0] not in (keys.SCOPE_PRODUCT, keys.SCOPE_MERCHANT):
        raise QueryError("reviews query: scope 1 (product) or 2 (merchant) first")
    size = HASH_BYTES if data[0] == keys.SCOPE_PRODUCT else ADDRESS_BYTES
    if len(data) not in (1 + size, 1 + size + 8):
        raise QueryError(f"reviews query: scope || subject ({size}) [|| from height u64]")
    from_height = int.from_bytes(data[1 + size:], "big") if len(data) > 1 + size else 0
    return reviews(state, data[0], bytes(data[1:1 + size]), from_height)


def _epochs(state: StateReader, data: bytes) -> Entries:
    raw = _fixed(data, 6, "epochs")
    count = int.from_bytes(raw[4:], "big")
    if not 1 <= count <= TRUST_QUERY_ITEMS_MAX:
        raise QueryError(f"epochs query: count {count} is outside 1..{TRUST_QUERY_ITEMS_MAX}")
    return epochs(state, int.from_bytes(raw[:4], "big"), count)


def _address(data: bytes) -> bytes:
    return _fixed(data, ADDRESS_BYTES, "address")


def _hash(data: bytes) -> bytes:
    return _fixed(data, HASH_BYTES, "id")


# path -> (read, what its data is); docs/trust.md section 11 lists them.
QUERIES: dict[str, tuple[EntryReader, str]] = {
    "/trust/review": (lambda s, d: review(s, _hash(d)), "order id (32)"),
    "/trust/reviews": (_reviews, "scope u8 (1 product, 2 merchant) || id (32 or 20) "
                                 "[|| from height u64]"),
    "/trust/reputation": (lambda s, d: reputation(s, _address(d)), "merchant address (20)"),
    "/trust/product": (lambda s, d: product(s, _hash(d)), "product id (32)"),
    "/trust/order": (lambda s, d: order(s, _hash(d)), "order id (32)"),
    "/trust/top": (_top, "k u16 || category (ASCII; empty: every listing)"),
    "/trust/search": (_search, "k u16 || query text (UTF-8)"),
    "/trust/report": (lambda s, d: report(s, _hash(d)), "report id (32)"),
    "/trust/reports": (lambda s, d: reports_of(s, keys.INDEX_MERCHANT, _address(d)),
                       "merchant address (20)"),
    "/trust/seats": (lambda s, d: reports_of(s, keys.INDEX_SEAT, _address(d)),
                     "arbitrator address (20)"),
    "/trust/rewards": (lambda s, d: rewards(s, _address(d)), "address (20)"),
    "/trust/epochs": (_epochs, "first epoch u32 || count u16"),
    "/trust/claim": (lambda s, d: claim(s, _hash(d)), "claim id (32)"),
}


def install_queries(app: Any) -> None:
    """Register every `/trust/...` path with the application (`app.register_query`)."""
    register_queries(app, QUERIES)
