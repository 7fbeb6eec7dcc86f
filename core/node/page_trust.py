"""The page's view of the trust rules, when the node has them (docs/page.md section 2.2).

`trust_view()` returns a `storefront.TrustView` over the trust rules' own
reads (`core/trust`: the rank index, the reviews and replies, the merchants'
reputation records) when that package and its query paths are installed,
and None otherwise: the page then ranks by sales and says that there are no
reviews or ratings yet. Nothing here writes state or computes a score: the
reputation shown is the one the trust rules stored at their last re-score.

The trust package is imported by name only when it exists, so this module
works on a node built before the trust rules landed.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType
from typing import Any

from ..constants import HASH_BYTES, PAGE_REVIEWS_SCAN_MAX
from ..mall.codec import StateReader
from ..mall.storefront import Reply, Reputation, Review, TrustView

REPUTATION_SCALE = 100  # the page shows a score out of 100 (the rules keep basis points)
_BPS = 10_000
_TRUST_QUERIES = "..trust.queries"


def trust_view() -> TrustView | None:
    """The trust rules' view for the page, or None when the node has no trust rules (their
    package, or its `/trust/reviews` and `/trust/top` query paths, are absent)."""
    if importlib.util.find_spec("..trust", __package__) is None:
        return None
    queries = importlib.import_module(_TRUST_QUERIES, __package__)
    paths = getattr(queries, "QUERIES", {})
    if "/trust/reviews" not in paths or "/trust/top" not in paths:
        return None
    return _RulesView(*(importlib.import_module(f"..trust.{name}", __package__)
                        for name in ("keys", "ranking", "records", "reviews")))


def _text(raw: bytes, declared: int) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(raw) >= declared else text + "…"  # the rest has not been sent yet


class _RulesView:
    """`TrustView` over the trust rules' state (see the module docstring)."""

    def __init__(self, keys: ModuleType, ranking: ModuleType, records: ModuleType,
                 reviews: ModuleType) -> None:
        self._keys, self._ranking, self._records, self._reviews = keys, ranking, records, reviews

    def _ranked(self, entries: list[tuple[bytes, bytes]], prefix_byte: int) -> list[bytes]:
        return [key[-HASH_BYTES:] for key, _ in entries if key[0] == prefix_byte]

    def top(self, state: StateReader, limit: int) -> list[bytes]:
        prefix = self._keys.rank_prefix(self._keys.TERM_ALL, b"")
        return self._ranked(self._ranking.top(state, limit), prefix[0])

    def search(self, state: StateReader, query: str, limit: int) -> list[bytes]:
        prefix = self._keys.rank_prefix(self._keys.TERM_ALL, b"")
        try:
            found = self._ranking.search(state, query, limit)
        except ValueError:  # no searchable word in the query
            return []
        return self._ranked(found, prefix[0])

    def reputation(self, state: StateReader, merchant: bytes) -> Reputation | None:
        raw = state.get(self._keys.merchant(merchant))
        if raw is None:
            return None
        record: Any = self._records.decode_reputation(raw)
        start, end = self._keys.prefix_range(
            self._keys.review_index_prefix(self._keys.SCOPE_MERCHANT, merchant))
        counted = len(state.scan(start, end, PAGE_REVIEWS_SCAN_MAX))
        return Reputation(record.score_bps * REPUTATION_SCALE // _BPS, REPUTATION_SCALE, counted)

    def reviews(self, state: StateReader, product_id: bytes, limit: int) -> list[Review]:
        start, end = self._keys.prefix_range(
            self._keys.review_index_prefix(self._keys.SCOPE_PRODUCT, product_id))
        listed = state.scan(start, end, PAGE_REVIEWS_SCAN_MAX)
        found = []
        for key, _ in reversed(listed):  # the index is by height: newest last
            if len(found) >= limit:
                break
            order_id = key[-HASH_BYTES:]
            versions = self._reviews.versions(state, order_id)
            if not versions:
                continue
            review = self._reviews.decode_review(versions[-1][1])  # the latest version
            raw_reply = state.get(self._keys.reply(order_id))
            reply = None
            if raw_reply is not None:
                decoded = self._reviews.decode_reply(raw_reply)
                reply = Reply(_text(decoded.text, decoded.declared_bytes), decoded.height)
            found.append(Review(order_id, review.buyer, review.rating,
                                _text(review.text, review.declared_bytes), review.height, reply))
        found.sort(key=lambda review: -review.height)  # a corrected review is as new as its fix
        return found
