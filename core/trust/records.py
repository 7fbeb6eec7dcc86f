"""The fixed-layout trust records: per order, per merchant, per product, epochs, accounts.

Each is a NamedTuple packed with one `struct` layout, the version byte first
(`TRUST_VERSION`), decoded strictly (exact length, known version and enum
values); a stored value that does not decode is a corrupt store
(DecodeError). Layouts are docs/trust.md section 3; the variable-length
records (reviews, reports) live beside their rules.
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

from ..constants import (
    BURST_TRACKED_MAX,
    CONCENTRATION_TRACKED_MAX,
    HASH_BYTES,
    TRUST_VERSION,
)
from ..errors import DecodeError
from ..mall.codec import NO_ID, StateReader, value_reader, writer


def _pack(layout: struct.Struct, record: tuple) -> bytes:
    return layout.pack(TRUST_VERSION, *record)


def _unpack(layout: struct.Struct, value: bytes, what: str) -> tuple:
    if len(value) != layout.size:
        raise DecodeError(f"{what}: {len(value)} bytes, expected {layout.size}")
    fields = layout.unpack(value)
    if fields[0] != TRUST_VERSION:
        raise DecodeError(f"{what}: unsupported version {fields[0]}")
    return fields[1:]


# --- the order's trust record (0x36) --------------------------------------------------

FLAG_FUNDED = 0x01  # the buyer was funded into existence by the merchant (2 links)
FLAG_CONCENTRATION = 0x02  # the shop's hour had >= ratio orders per unique buyer
FLAG_BURST = 0x04  # one of too many first orders of fresh buyers in the shop's hour
FLAG_FLOWBACK = 0x08  # the merchant paid the buyer after the release
FLAG_FAKE = 0x10  # ruled fake on a report
FLAG_REPORTED = 0x20  # named by an open report, or by the report that ruled it fake
FLAGS_VOID = FLAG_FUNDED | FLAG_CONCENTRATION | FLAG_BURST | FLAG_FLOWBACK | FLAG_FAKE
FLAG_NAMES = {FLAG_FUNDED: "funded-by-merchant", FLAG_CONCENTRATION: "concentration",
              FLAG_BURST: "fresh-account-burst", FLAG_FLOWBACK: "flow-back",
              FLAG_FAKE: "ruled-fake", FLAG_REPORTED: "reported"}

ORDER_OPEN = 0  # not settled (or its settlement not yet processed)
ORDER_COUNTED = 1  # its settlement counted (reputation, sales, points)
ORDER_VOID = 2  # settled, counting for nothing (flagged, or voided after counting)
ORDER_STATES = (ORDER_OPEN, ORDER_COUNTED, ORDER_VOID)

_ORDER = struct.Struct(">BBB20s32s20s32sQ" + "Q" * 8 + "IQQ" + "QBQI")


class OrderTrust(NamedTuple):
    """`0x36 || order id`: the order's signals and what it contributed (to take it back)."""

    flags: int
    state: int
    merchant: bytes
    product_id: bytes
    buyer: bytes
    report_id: bytes  # the open (or fake-ruling) report naming it, NO_ID if none
    counted_height: int
    orders_q: int  # contributions to the merchant's record at counted_height (Q16)
    cancels_q: int
    timeouts_q: int
    disputes_q: int
    shipped_q: int
    on_time_q: int
    value: int
    sales_q: int  # to the product's record
    points_epoch: int
    buyer_points: int
    merchant_points: int
    review_height: int  # the counted review: its height, rating (0 none), points, epoch
    review_rating: int
    review_points: int
    review_epoch: int

    def encode(self) -> bytes:
        return _pack(_ORDER, self)

    @property
    def void(self) -> bool:
        """Flagged or ruled fake: the order counts for nothing."""
        return bool(self.flags & FLAGS_VOID)


def decode_order_trust(value: bytes) -> OrderTrust:
    record = OrderTrust(*_unpack(_ORDER, value, "order trust record"))
    if record.state not in ORDER_STATES or record.review_rating > 5:
        raise DecodeError(f"order trust record: state {record.state}")
    return record


def new_order_trust(merchant: bytes, product_id: bytes, buyer: bytes) -> OrderTrust:
    return OrderTrust(0, ORDER_OPEN, merchant, product_id, buyer, NO_ID, *([0] * 16))


# --- a merchant's reputation (0x33) -----------------------------------------------------

_MERCHANT = struct.Struct(">BQ" + "Q" * 9 + "IIIQH")


class Reputation(NamedTuple):
    """`0x33 || merchant`: decayed accumulators as of `last_height`, and the score then."""

    last_height: int
    orders_q: int  # completed orders (Q16), a ruled split counts its merchant share
    cancels_q: int  # refunds by the merchant before shipping
    timeouts_q: int  # ship and delivery time-outs
    disputes_q: int  # disputes lost: the buyer's share of each ruling
    shipped_q: int  # orders that shipped
    on_time_q: int  # of which shipped within on_time_ms of the order
    value: int  # completed value in base units (the merchant's gross)
    rating_sum_q: int  # sum of counted ratings (stars, Q16)
    rating_count_q: int  # counted reviews (Q16)
    strikes: int  # fake-order rulings against it (never decays)
    fake_orders: int  # orders ruled fake
    flagged_orders: int  # orders voided by an on-chain signal
    counted_orders: int  # orders that counted, lifetime
    score_bps: int  # the reputation (0..10000) at last_height

    def encode(self) -> bytes:
        return _pack(_MERCHANT, self)


def decode_reputation(value: bytes) -> Reputation:
    record = Reputation(*_unpack(_MERCHANT, value, "reputation"))
    if record.score_bps > 10_000:
        raise DecodeError(f"reputation: score {record.score_bps} bps")
    return record


EMPTY_REPUTATION = Reputation(*([0] * 15))

# --- a product's stats and rank (0x34) -----------------------------------------------------

_PRODUCT = struct.Struct(">B20sQQQQIBQI")


class ProductStats(NamedTuple):
    """`0x34 || product id`: decayed sales and ratings as of `last_height`, and the rank the
    index holds it under (when `indexed`)."""

    merchant: bytes
    last_height: int
    sales_q: int  # units sold in counted orders (Q16)
    rating_sum_q: int
    rating_count_q: int
    rank_ppm: int
    indexed: int  # 1: its rank index entries exist (active listing), 0: none
    counted_orders: int
    reviews: int  # counted reviews, lifetime

    def encode(self) -> bytes:
        return _pack(_PRODUCT, self)


def decode_product_stats(value: bytes) -> ProductStats:
    record = ProductStats(*_unpack(_PRODUCT, value, "product stats"))
    if record.indexed not in (0, 1) or record.rank_ppm > 1_000_000:
        raise DecodeError("product stats: indexed flag or rank out of range")
    return record


def new_product_stats(merchant: bytes, height: int) -> ProductStats:
    return ProductStats(merchant, height, 0, 0, 0, 0, 0, 0, 0)


# --- rewards (0x3C, 0x3D, 0x3E, 0x3F) ---------------------------------------------------------

EPOCH_OPEN = 1
EPOCH_CLOSED = 2
EPOCH_EXPIRED = 3
_EPOCH = struct.Struct(">BBQQQ16sQQ")


class EpochRecord(NamedTuple):
    """`0x3C || epoch`: its points, and once closed its reward and reward per point."""

    state: int
    total_points: int
    amount: int  # units distributed (pool share + issuance), set at the close
    issued: int  # of which newly issued
    per_point_q64: bytes  # reward per point, Q64, 16 bytes big-endian
    settled: int  # units moved to accounts' pending rewards so far
    closed_height: int

    def encode(self) -> bytes:
        return _pack(_EPOCH, self)

    @property
    def per_point(self) -> int:
        return int.from_bytes(self.per_point_q64, "big")

    @property
    def held(self) -> int:
        """Units this entry holds in the supply: the closed epoch's unsettled rest."""
        return self.amount - self.settled if self.state == EPOCH_CLOSED else 0


def decode_epoch(value: bytes) -> EpochRecord:
    record = EpochRecord(*_unpack(_EPOCH, value, "epoch"))
    if record.state not in (EPOCH_OPEN, EPOCH_CLOSED, EPOCH_EXPIRED) \
            or record.settled > record.amount:
        raise DecodeError(f"epoch: state {record.state} or settled above amount")
    return record


NEW_EPOCH = EpochRecord(EPOCH_OPEN, 0, 0, 0, bytes(16), 0, 0)

_ACCOUNT = struct.Struct(">BIQHQQ")


class RewardAccount(NamedTuple):
    """`0x3D || address`: points in its current epoch, rewards settled and not claimed."""

    epoch: int
    points: int
    attested: int  # attested actions rewarded in `epoch`
    pending: int  # settled rewards owed (supply held here)
    claimed: int  # lifetime claimed

    def encode(self) -> bytes:
        return _pack(_ACCOUNT, self)


def decode_reward_account(value: bytes) -> RewardAccount:
    return RewardAccount(*_unpack(_ACCOUNT, value, "reward account"))


EMPTY_ACCOUNT = RewardAccount(0, 0, 0, 0, 0)

ACTION_VIDEO = 1
ACTION_AD = 2
ACTION_SHARE = 3
ACTION_NAMES = {ACTION_VIDEO: "video", ACTION_AD: "ad", ACTION_SHARE: "share"}
_CLAIM = struct.Struct(">B20sBIQ")


class ClaimRecord(NamedTuple):
    """`0x3E || claim id`: the attested action rewarded once."""

    account: bytes
    action: int
    epoch: int
    height: int

    def encode(self) -> bytes:
        return _pack(_CLAIM, self)


def decode_claim(value: bytes) -> ClaimRecord:
    record = ClaimRecord(*_unpack(_CLAIM, value, "claim"))
    if record.action not in ACTION_NAMES:
        raise DecodeError(f"claim: action {record.action}")
    return record


_META_EPOCH = struct.Struct(">BII")
_META_U64 = struct.Struct(">BQ")
_META_ID = struct.Struct(">B32s")


class EpochPointer(NamedTuple):
    """`0x3F || "epoch"`: the current epoch and the oldest closed one not yet expired."""

    current: int
    oldest: int

    def encode(self) -> bytes:
        return _pack(_META_EPOCH, self)


def decode_epoch_pointer(value: bytes) -> EpochPointer:
    return EpochPointer(*_unpack(_META_EPOCH, value, "epoch pointer"))


def encode_u64(amount: int) -> bytes:
    return _META_U64.pack(TRUST_VERSION, amount)


def decode_u64(value: bytes, what: str) -> int:
    return _unpack(_META_U64, value, what)[0]


def encode_id(identifier: bytes) -> bytes:
    assert len(identifier) == HASH_BYTES
    return _META_ID.pack(TRUST_VERSION, identifier)


def decode_id(value: bytes, what: str) -> bytes:
    return _unpack(_META_ID, value, what)[0]


# --- small counters -----------------------------------------------------------------------

class HourBucket(NamedTuple):
    """`0x37 || hour || merchant`: the shop's orders in that hour of block time, and the
    fresh buyers' first orders (their ids while at most `burst_first_orders`)."""

    orders: int
    buyers: int  # unique buyers
    first_orders: int  # orders that were a fresh buyer's first
    first_ids: tuple[bytes, ...]

    def encode(self) -> bytes:
        out = writer().u32(self.orders).u32(self.buyers).u32(self.first_orders)
        out.u8(len(self.first_ids))
        for order_id in self.first_ids:
            out.fixed(order_id, HASH_BYTES)
        return out.getvalue()


def decode_hour_bucket(value: bytes) -> HourBucket:
    reader = value_reader(value, "hour bucket")
    head = (reader.u32("orders"), reader.u32("buyers"), reader.u32("first orders"))
    ids = tuple(reader.hash("order id") for _ in range(reader.u8("ids")))
    reader.finish()
    if len(ids) > BURST_TRACKED_MAX:
        raise DecodeError("hour bucket: too many ids")
    return HourBucket(*head, ids)


EMPTY_BUCKET = HourBucket(0, 0, 0, ())


class HourBuyer(NamedTuple):
    """`0x37 || hour || merchant || buyer`: the buyer's orders at the shop in that hour
    (their ids, the first CONCENTRATION_TRACKED_MAX)."""

    count: int
    ids: tuple[bytes, ...]

    def encode(self) -> bytes:
        out = writer().u32(self.count).u8(len(self.ids))
        for order_id in self.ids:
            out.fixed(order_id, HASH_BYTES)
        return out.getvalue()


def decode_hour_buyer(value: bytes) -> HourBuyer:
    reader = value_reader(value, "hour buyer")
    count = reader.u32("count")
    ids = tuple(reader.hash("order id") for _ in range(reader.u8("ids")))
    reader.finish()
    if len(ids) > CONCENTRATION_TRACKED_MAX:
        raise DecodeError("hour buyer: too many ids")
    return HourBuyer(count, ids)


def load(state: StateReader, key: bytes, decode: Any, default: Any = None) -> Any:
    """The decoded value under `key`, `default` when absent."""
    raw = state.get(key)
    return default if raw is None else decode(raw)

