"""Every trust state key, in one place (docs/trust.md section 3).

A key is `table id || fields`, fields fixed-width or u8-length-prefixed, so a
table is one key range and an index sorts the way its reads want it: reviews
of a product by height, the rank index best first, hour buckets by hour (so
stale ones are a prefix to delete), report deadlines by time.
"""

from __future__ import annotations

import struct

from ..constants import (
    ADDRESS_BYTES,
    HASH_BYTES,
    TABLE_TRUST_ACCOUNTS,
    TABLE_TRUST_CLAIMS,
    TABLE_TRUST_EPOCHS,
    TABLE_TRUST_HOURS,
    TABLE_TRUST_MERCHANTS,
    TABLE_TRUST_META,
    TABLE_TRUST_ORDERS,
    TABLE_TRUST_PRODUCTS,
    TABLE_TRUST_QUEUE,
    TABLE_TRUST_RANK,
    TABLE_TRUST_RELEASES,
    TABLE_TRUST_REPLIES,
    TABLE_TRUST_REPORT_INDEX,
    TABLE_TRUST_REPORTS,
    TABLE_TRUST_REVIEW_INDEX,
    TABLE_TRUST_REVIEWS,
    TOKEN_BYTES_MAX,
    U32_MAX,
    U64_MAX,
)

_U64 = struct.Struct(">Q")
_U32 = struct.Struct(">I")


def _check(value: bytes, length: int, what: str) -> bytes:
    if len(value) != length:
        raise ValueError(f"{what} is {length} bytes, got {len(value)}")
    return value


def _address(value: bytes) -> bytes:
    return _check(value, ADDRESS_BYTES, "an address")


def _id(value: bytes) -> bytes:
    return _check(value, HASH_BYTES, "an id")


def prefix_range(prefix: bytes) -> tuple[bytes, bytes]:
    """[start, end) of every key that starts with `prefix`."""
    end = prefix.rstrip(b"\xff")
    assert end, "a prefix starts with a table id below 0xFF"
    return prefix, end[:-1] + bytes([end[-1] + 1])


# --- reviews (0x30-0x32) ------------------------------------------------------------


def review(order_id: bytes, version: int) -> bytes:
    assert 1 <= version <= 255
    return bytes([TABLE_TRUST_REVIEWS]) + _id(order_id) + bytes([version])


def reviews_of(order_id: bytes) -> bytes:
    return bytes([TABLE_TRUST_REVIEWS]) + _id(order_id)


def reply(order_id: bytes) -> bytes:
    return bytes([TABLE_TRUST_REPLIES]) + _id(order_id)


SCOPE_PRODUCT = 1
SCOPE_MERCHANT = 2


def review_index(scope: int, subject: bytes, height: int, order_id: bytes) -> bytes:
    """A review listed under its product (scope 1, 32-byte id) or merchant (2, address)."""
    return review_index_prefix(scope, subject) + _U64.pack(height) + _id(order_id)


def review_index_prefix(scope: int, subject: bytes) -> bytes:
    if scope == SCOPE_PRODUCT:
        return bytes([TABLE_TRUST_REVIEW_INDEX, scope]) + _id(subject)
    assert scope == SCOPE_MERCHANT
    return bytes([TABLE_TRUST_REVIEW_INDEX, scope]) + _address(subject)


# --- reputation, product stats, the rank index (0x33-0x35) -----------------------------


def merchant(address: bytes) -> bytes:
    return bytes([TABLE_TRUST_MERCHANTS]) + _address(address)


def product(product_id: bytes) -> bytes:
    return bytes([TABLE_TRUST_PRODUCTS]) + _id(product_id)


TERM_ALL = 0
TERM_CATEGORY = 1
TERM_TOKEN = 2


def rank_prefix(kind: int, term: bytes) -> bytes:
    """The index list of one term: kind 0 every product (term empty), 1 a category, 2 a
    title token."""
    assert kind in (TERM_ALL, TERM_CATEGORY, TERM_TOKEN)
    assert (kind == TERM_ALL) == (not term) and len(term) <= max(TOKEN_BYTES_MAX, 64)
    return bytes([TABLE_TRUST_RANK, kind, len(term)]) + term


def rank_entry(kind: int, term: bytes, rank_ppm: int, product_id: bytes) -> bytes:
    """Best first: the rank is stored inverted (U32_MAX - rank), ties by product id."""
    assert 0 <= rank_ppm <= U32_MAX
    return rank_prefix(kind, term) + _U32.pack(U32_MAX - rank_ppm) + _id(product_id)


def parse_rank_entry(key: bytes) -> tuple[int, bytes]:
    """(rank in ppm, product id) of a rank index key."""
    return U32_MAX - _U32.unpack_from(key, len(key) - HASH_BYTES - 4)[0], key[-HASH_BYTES:]


# --- fake-order signals (0x36-0x38) ------------------------------------------------------


def order(order_id: bytes) -> bytes:
    return bytes([TABLE_TRUST_ORDERS]) + _id(order_id)


def hour_bucket(hour: int, merchant_address: bytes) -> bytes:
    return bytes([TABLE_TRUST_HOURS]) + _U64.pack(hour) + _address(merchant_address)


def hour_buyer(hour: int, merchant_address: bytes, buyer: bytes) -> bytes:
    return hour_bucket(hour, merchant_address) + _address(buyer)


def hours_before(hour: int) -> tuple[bytes, bytes]:
    """[start, end) of every hour-bucket entry of hours before `hour`."""
    return bytes([TABLE_TRUST_HOURS]), bytes([TABLE_TRUST_HOURS]) + _U64.pack(hour)


def releases(merchant_address: bytes, buyer: bytes) -> bytes:
    return releases_prefix() + _address(merchant_address) + _address(buyer)


def releases_prefix() -> bytes:
    """What every `releases` key starts with (the flow-back observer's watched prefix)."""
    return bytes([TABLE_TRUST_RELEASES])


# --- reports (0x39-0x3A) -----------------------------------------------------------------


def report(report_id: bytes) -> bytes:
    return bytes([TABLE_TRUST_REPORTS]) + _id(report_id)


INDEX_MERCHANT = 1  # reports against a merchant
INDEX_SEAT = 2  # an arbitrator's seats on report panels


def report_index(kind: int, address: bytes, report_id: bytes) -> bytes:
    return report_index_prefix(kind, address) + _id(report_id)


def report_index_prefix(kind: int, address: bytes) -> bytes:
    assert kind in (INDEX_MERCHANT, INDEX_SEAT)
    return bytes([TABLE_TRUST_REPORT_INDEX, kind]) + _address(address)


# --- the work queue (0x3B) ----------------------------------------------------------------

QUEUE_DEADLINE = 1  # a report round's deadline: due_ms || report id
QUEUE_DRAW = 2  # a report panel to draw next block: report id
QUEUE_FANOUT = 3  # a merchant whose products are re-ranked: merchant -> cursor
QUEUE_DIRTY_MERCHANT = 4  # touched in this block (deleted by the end hook)
QUEUE_DIRTY_PRODUCT = 5


def queue_prefix(kind: int) -> bytes:
    return bytes([TABLE_TRUST_QUEUE, kind])


def deadline(due_ms: int, report_id: bytes) -> bytes:
    return queue_prefix(QUEUE_DEADLINE) + _U64.pack(due_ms) + _id(report_id)


def deadlines_due(now_ms: int) -> tuple[bytes, bytes]:
    start = queue_prefix(QUEUE_DEADLINE)
    if now_ms >= U64_MAX:
        return prefix_range(start)
    return start, start + _U64.pack(now_ms + 1)


def draw(report_id: bytes) -> bytes:
    return queue_prefix(QUEUE_DRAW) + _id(report_id)


def fanout(merchant_address: bytes) -> bytes:
    return queue_prefix(QUEUE_FANOUT) + _address(merchant_address)


def dirty_merchant(merchant_address: bytes) -> bytes:
    return queue_prefix(QUEUE_DIRTY_MERCHANT) + _address(merchant_address)


def dirty_product(product_id: bytes) -> bytes:
    return queue_prefix(QUEUE_DIRTY_PRODUCT) + _id(product_id)


# --- rewards (0x3C-0x3F) --------------------------------------------------------------------


def epoch(number: int) -> bytes:
    assert 0 <= number <= U32_MAX
    return bytes([TABLE_TRUST_EPOCHS]) + _U32.pack(number)


def reward_account(address: bytes) -> bytes:
    return bytes([TABLE_TRUST_ACCOUNTS]) + _address(address)


def claim(claim_id: bytes) -> bytes:
    return bytes([TABLE_TRUST_CLAIMS]) + _id(claim_id)


META_EPOCH = bytes([TABLE_TRUST_META]) + b"epoch"  # current epoch, oldest unexpired
META_ISSUED = bytes([TABLE_TRUST_META]) + b"issued"  # units issued so far (negative supply)
META_SWEEP = bytes([TABLE_TRUST_META]) + b"sweep"  # the decay sweep's next product id
