"""Fake-order ("brushing") signals computed on chain, as the mall's txs execute.

Tx observers (core/state/machine.py `register_tx_observer`), each part of the
tx it observes (docs/trust.md section 6.2):

* ORDER_PLACE: the order gets its trust record, flagged when
  - **funded**: the buyer was funded into existence by the merchant, or by
    an account the merchant funded (creator records, 2 links);
  - **concentration**: counting it, the shop's orders in that hour of block
    time are at least `concentration_ratio` times its unique buyers, and its
    buyer has ordered there at least twice in the hour;
  - **burst**: it is its buyer's first order, and more than
    `burst_first_orders` first orders reached the shop in that hour;
* TRANSFER: money the merchant sends to a buyer within `flowback_window_ms`
  of one of the buyer's released orders voids those orders (**flow-back**);
* PRODUCT_LIST / PRODUCT_DELIST: the listing enters / leaves the rank index.

A flagged order counts for nothing (`ledger.py`). Hour buckets are kept
only for the current and the previous hour (`collect_hours`, end hook).
"""

from __future__ import annotations

from ..constants import CREATOR_HOPS_MAX, HOUR_GC_PER_BLOCK_MAX, HOUR_MS
from ..genesis import Genesis
from ..mall import keys as mall_keys
from ..mall.codec import MARK, Clock, MallState, TxContext
from ..mall.draw import creators
from ..mall.funds import invariant
from ..mall.order_record import require_order
from ..mall.products import decode_product_ref
from ..state.accounts import decode_transfer
from . import keys, ledger, ranking
from .records import (
    FLAG_BURST,
    FLAG_CONCENTRATION,
    FLAG_FLOWBACK,
    FLAG_FUNDED,
    HourBucket,
    decode_count,
    decode_hour_bucket,
    encode_count,
    new_order_trust,
)


def _is_first_order(state: MallState, buyer: bytes) -> bool:
    start, end = mall_keys.prefix_range(mall_keys.orders_of(buyer, mall_keys.SIDE_BUYER))
    return len(state.scan(start, end, 2)) == 1


def on_order_placed(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """ORDER_PLACE succeeded: the order's trust record and its signals."""
    params = genesis.trust.params
    order_id = ctx.tx.tx_id
    order = require_order(state, order_id)
    merchant, buyer = order.merchant, order.buyer
    flags = 0
    if merchant in creators(state, buyer, CREATOR_HOPS_MAX):
        flags |= FLAG_FUNDED
    hour = ctx.timestamp_ms // HOUR_MS
    bucket_key = keys.hour_bucket(hour, merchant)
    raw = state.get(bucket_key)
    bucket = HourBucket(0, 0, 0) if raw is None else decode_hour_bucket(raw)
    buyer_key = keys.hour_buyer(hour, merchant, buyer)
    raw = state.get(buyer_key)
    seen = 0 if raw is None else decode_count(raw, "hour buyer")
    first = _is_first_order(state, buyer)
    bucket = HourBucket(bucket.orders + 1, bucket.buyers + (seen == 0),
                        bucket.first_orders + first)
    state.set(bucket_key, bucket.encode())
    state.set(buyer_key, encode_count(seen + 1))
    if seen + 1 >= 2 and bucket.orders >= params.concentration_ratio * bucket.buyers:
        flags |= FLAG_CONCENTRATION
    if first and bucket.first_orders > params.burst_first_orders:
        flags |= FLAG_BURST
    ledger.save(state, order_id, new_order_trust(merchant, order.product_id, buyer))
    if flags:
        ledger.void(state, ctx, genesis, order_id, flags)


def on_transfer(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """TRANSFER succeeded: money from a merchant to a buyer after a release voids it."""
    recipient, amount = decode_transfer(ctx.tx.payload)
    if amount == 0 or recipient == ctx.sender:
        return
    key = keys.releases(ctx.sender, recipient)
    raw = state.get(key)
    if raw is None:
        return
    window = genesis.trust.params.flowback_window_ms
    for order_id, released_ms in ledger.decode_releases(raw):
        if ctx.timestamp_ms - released_ms <= window:
            ledger.void(state, ctx, genesis, order_id, FLAG_FLOWBACK)
    state.delete(key)


def on_product_listed(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """PRODUCT_LIST succeeded: the listing's stats; indexed at the end of the block."""
    ranking.list_product(state, ctx.tx.tx_id, ctx.sender, ctx.height)


def on_product_delisted(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """PRODUCT_DELIST succeeded: the listing leaves the index at the end of the block."""
    product_id = decode_product_ref(ctx.tx.payload).product_id
    invariant(state.get(keys.product(product_id)) is not None, "a listing without stats")
    state.set(keys.dirty_product(product_id), MARK)


def collect_hours(state: MallState, block: Clock) -> None:
    """Delete hour-bucket entries older than the previous hour (bounded per block)."""
    hour = block.timestamp_ms // HOUR_MS
    if hour < 1:
        return
    start, end = keys.hours_before(hour - 1)
    for key, _ in state.scan(start, end, HOUR_GC_PER_BLOCK_MAX):
        state.delete(key)

