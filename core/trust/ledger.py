"""What an order counts for, and taking it back: settlements, reviews, voiding.

When an escrow settles (the mall lists it under `0x25 || height`), the end
hook counts the order (`count_settlement`): its merchant's record (completed,
cancelled, timed out, disputes lost, shipped on time, value), its product's
sales, the purchase points of buyer and merchant, and the release the
flow-back signal watches. A review counts its rating and review points
(`count_review`). An order that is flagged (an on-chain signal) or ruled
fake counts for nothing: flagged before it settles, it is never counted;
voided after (`void`), each contribution is withdrawn as it weighs now
(decayed from when it was made, floored at 0) and its points are taken back
(docs/trust.md section 6.3). The order's record keeps what it contributed,
so this needs nothing else.
"""

from __future__ import annotations

from ..constants import BPS_DENOMINATOR, RELEASES_TRACKED_MAX, TRUST_COUNT_ONE
from ..errors import DecodeError
from ..genesis import Genesis, TrustParams
from ..mall.codec import Clock, MallState, StateReader, address_text, emit, value_reader, writer
from ..mall.disputes import load_dispute
from ..mall.escrow import (
    CLOSE_CONFIRM_TIMEOUT,
    CLOSE_CONFIRMED,
    CLOSE_DELIVERY_TIMEOUT,
    CLOSE_FALLBACK,
    CLOSE_MERCHANT_CANCEL,
    CLOSE_RULING,
    CLOSE_SHIP_TIMEOUT,
    Escrow,
    require_escrow,
)
from ..mall.funds import invariant
from ..mall.order_record import Order, require_order
from . import keys, ranking, reputation, rewards
from .records import (
    FLAG_FAKE,
    FLAG_NAMES,
    FLAGS_VOID,
    ORDER_COUNTED,
    ORDER_OPEN,
    ORDER_VOID,
    OrderTrust,
    decode_order_trust,
)

Q = TRUST_COUNT_ONE


def load(state: StateReader, order_id: bytes) -> OrderTrust | None:
    raw = state.get(keys.order(order_id))
    return None if raw is None else decode_order_trust(raw)


def require(state: StateReader, order_id: bytes) -> OrderTrust:
    record = load(state, order_id)
    invariant(record is not None, f"order {order_id.hex()} has no trust record")
    assert record is not None
    return record


def save(state: MallState, order_id: bytes, record: OrderTrust) -> None:
    state.set(keys.order(order_id), record.encode())


def purchase_points(value: int, params: TrustParams) -> int:
    """Points of a completed purchase, for buyer and merchant alike: one per
    `point_value_unit` of value, at most `purchase_points_max`."""
    return min(value // params.point_value_unit, params.purchase_points_max)


def _contribution(order: Order, escrow: Escrow, buyer_bps: int,
                  params: TrustParams) -> dict[str, int]:
    """The merchant-record fields one settled order adds (docs/trust.md 6.1)."""
    reason = escrow.close_reason
    shipped = escrow.shipped_ms != 0
    on_time = shipped and escrow.shipped_ms - order.placed_ms <= params.on_time_ms
    fields = {"orders_q": 0, "cancels_q": 0, "timeouts_q": 0, "disputes_q": 0,
              "shipped_q": Q if shipped else 0, "on_time_q": Q if on_time else 0,
              "value": escrow.merchant_paid + escrow.tax + escrow.commission}
    if reason in (CLOSE_CONFIRMED, CLOSE_CONFIRM_TIMEOUT):
        fields["orders_q"] = Q
    elif reason in (CLOSE_RULING, CLOSE_FALLBACK):
        fields["disputes_q"] = Q * buyer_bps // BPS_DENOMINATOR
        fields["orders_q"] = Q - fields["disputes_q"]
    elif reason == CLOSE_MERCHANT_CANCEL:
        fields["cancels_q"] = Q
    else:
        invariant(reason in (CLOSE_SHIP_TIMEOUT, CLOSE_DELIVERY_TIMEOUT),
                  f"a settled escrow with close reason {reason}")
        fields["timeouts_q"] = Q
    return fields


def count_settlement(state: MallState, block: Clock, genesis: Genesis,
                     order_id: bytes) -> None:
    """A settled order (end hook): count it, or mark it void if it is flagged."""
    params = genesis.trust.params
    record = require(state, order_id)
    invariant(record.state == ORDER_OPEN, "an order settles twice")
    height = block.height
    if record.void:
        save(state, order_id, record._replace(state=ORDER_VOID))
        return
    order = require_order(state, order_id)
    escrow = require_escrow(state, order_id)
    invariant(not escrow.open, "a listed settlement of an open escrow")
    buyer_bps = 0
    if escrow.close_reason in (CLOSE_RULING, CLOSE_FALLBACK):
        dispute = load_dispute(state, order_id)
        invariant(dispute is not None, "a ruled escrow without its dispute")
        assert dispute is not None
        buyer_bps = dispute.ruling_bps
    fields = _contribution(order, escrow, buyer_bps, params)
    sales_q = order.quantity * fields["orders_q"]
    counted = 1 if fields["orders_q"] else 0
    reputation.touch(state, order.merchant, height, params, counted_orders=counted, **fields)
    ranking.add_stats(state, order.product_id, order.merchant, height, params,
                      sales_q=sales_q, counted_orders=counted)
    points = purchase_points(fields["value"], params) if fields["value"] else 0
    epoch = 0
    if points:
        epoch = rewards.award(state, order.buyer, points)
        rewards.award(state, order.merchant, points)
        _remember_release(state, order_id, order, escrow, params)
    save(state, order_id, record._replace(
        state=ORDER_COUNTED, counted_height=height, sales_q=sales_q, points_epoch=epoch,
        buyer_points=points, merchant_points=points, **fields))


def _remember_release(state: MallState, order_id: bytes, order: Order, escrow: Escrow,
                      params: TrustParams) -> None:
    """Keep the release for the flow-back signal: merchant -> buyer, the latest
    RELEASES_TRACKED_MAX within the window."""
    key = keys.releases(order.merchant, order.buyer)
    kept = [(other, when) for other, when in decode_releases(state.get(key))
            if escrow.closed_ms - when <= params.flowback_window_ms]
    kept = ([*kept, (order_id, escrow.closed_ms)])[-RELEASES_TRACKED_MAX:]
    state.set(key, encode_releases(kept))


def encode_releases(items: list[tuple[bytes, int]]) -> bytes:
    """`01 || count u8 || (order id || released_ms u64)*`."""
    out = writer().u8(len(items))
    for order_id, when in items:
        out.fixed(order_id, 32).u64(when)
    return out.getvalue()


def decode_releases(value: bytes | None) -> list[tuple[bytes, int]]:
    if value is None:
        return []
    reader = value_reader(value, "releases")
    count = reader.u8("count")
    if count > RELEASES_TRACKED_MAX:
        raise DecodeError(f"releases: {count} entries")
    items = [(reader.hash("order id"), reader.u64("released")) for _ in range(count)]
    reader.finish()
    return items


def count_review(state: MallState, height: int, genesis: Genesis, order_id: bytes,
                 rating: int) -> None:
    """A review version of a counting order: the first counts its rating and review points,
    a correction replaces the rating (as it weighs now). Nothing for a void order."""
    params = genesis.trust.params
    record = require(state, order_id)
    if record.void:
        return
    if record.review_rating == 0:
        reputation.touch(state, record.merchant, height, params, rating_sum_q=rating * Q,
                         rating_count_q=Q)
        ranking.add_stats(state, record.product_id, record.merchant, height, params,
                          rating_sum_q=rating * Q, rating_count_q=Q, reviews=1)
        points = params.review_points
        epoch = rewards.award(state, record.buyer, points) if points else 0
        save(state, order_id, record._replace(review_height=height, review_rating=rating,
                                              review_points=points, review_epoch=epoch))
        return
    weight = reputation.decayed_since(Q, record.review_height, height, params)
    delta = (rating - record.review_rating) * weight
    reputation.touch(state, record.merchant, height, params, rating_sum_q=delta)
    ranking.add_stats(state, record.product_id, record.merchant, height, params,
                      rating_sum_q=delta)
    save(state, order_id, record._replace(review_rating=rating))


def void(state: MallState, clock: Clock, genesis: Genesis, order_id: bytes,
         flag: int) -> bool:
    """Flag the order (a signal, or a fake ruling); if that makes it void, withdraw what it
    counted for. Whether it became void now."""
    record = require(state, order_id)
    was_void = record.void
    record = record._replace(flags=record.flags | flag)
    if was_void or not flag & FLAGS_VOID:
        save(state, order_id, record)
        return False
    params = genesis.trust.params
    height = clock.height
    if record.state == ORDER_COUNTED:
        since = record.counted_height

        def back(value: int) -> int:
            return -reputation.decayed_since(value, since, height, params)

        reputation.touch(
            state, record.merchant, height, params,
            orders_q=back(record.orders_q), cancels_q=back(record.cancels_q),
            timeouts_q=back(record.timeouts_q), disputes_q=back(record.disputes_q),
            shipped_q=back(record.shipped_q), on_time_q=back(record.on_time_q),
            value=back(record.value), counted_orders=-1 if record.orders_q else 0)
        ranking.add_stats(state, record.product_id, record.merchant, height, params,
                          sales_q=back(record.sales_q),
                          counted_orders=-1 if record.orders_q else 0)
        rewards.withdraw(state, record.buyer, record.buyer_points, record.points_epoch)
        rewards.withdraw(state, record.merchant, record.merchant_points, record.points_epoch)
        record = record._replace(state=ORDER_VOID)
    if record.review_rating:
        weight = reputation.decayed_since(Q, record.review_height, height, params)
        reputation.touch(state, record.merchant, height, params,
                         rating_sum_q=-record.review_rating * weight, rating_count_q=-weight)
        ranking.add_stats(state, record.product_id, record.merchant, height, params,
                          rating_sum_q=-record.review_rating * weight,
                          rating_count_q=-weight, reviews=-1)
        rewards.withdraw(state, record.buyer, record.review_points, record.review_epoch)
    counter = {"fake_orders": 1} if flag & FLAG_FAKE else {"flagged_orders": 1}
    reputation.touch(state, record.merchant, height, params, **counter)
    save(state, order_id, record)
    emit(clock, "trust.void", ("order", order_id.hex()),
         ("merchant", address_text(record.merchant)),
         ("signal", FLAG_NAMES.get(flag & FLAGS_VOID, "flag")))
    return True

