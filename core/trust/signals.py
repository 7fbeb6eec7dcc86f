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

from ..constants import (
    CONCENTRATION_TRACKED_MAX,
    CREATOR_HOPS_MAX,
    HOUR_GC_PER_BLOCK_MAX,
    HOUR_MS,
)
from ..genesis import Genesis
from ..mall import keys as mall_keys
from ..mall.codec import MARK, Clock, MallState, TxContext
from ..mall.draw import creators
from ..mall.funds import invariant
from ..mall.order_record import require_order
from ..mall.products import decode_product_ref
from ..state.accounts import creator_key, decode_transfer
from . import keys, ledger, ranking
from .records import (
    EMPTY_BUCKET,
    FLAG_BURST,
    FLAG_CONCENTRATION,
    FLAG_FLOWBACK,
    FLAG_FUNDED,
    HourBucket,
    HourBuyer,
    decode_hour_bucket,
    decode_hour_buyer,
    new_order_trust,
)


def _is_first_order(state: MallState, buyer: bytes) -> bool:
    start, end = mall_keys.prefix_range(mall_keys.orders_of(buyer, mall_keys.SIDE_BUYER))
    return len(state.scan(start, end, 2)) == 1


def on_order_placed(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """ORDER_PLACE succeeded: the order's trust record and its signals (docs/trust.md 6.2)."""
    params = genesis.trust.params
    order_id = ctx.tx.tx_id
    order = require_order(state, order_id)
    merchant, buyer = order.merchant, order.buyer
    ledger.save(state, order_id, new_order_trust(merchant, order.product_id, buyer))
    if merchant in creators(state, buyer, CREATOR_HOPS_MAX):
        ledger.void(state, ctx, genesis, order_id, FLAG_FUNDED)
    hour = ctx.timestamp_ms // HOUR_MS
    bucket_key = keys.hour_bucket(hour, merchant)
    raw = state.get(bucket_key)
    bucket = EMPTY_BUCKET if raw is None else decode_hour_bucket(raw)
    buyer_key = keys.hour_buyer(hour, merchant, buyer)
    raw = state.get(buyer_key)
    mine = HourBuyer(0, ()) if raw is None else decode_hour_buyer(raw)
    fresh_first = _is_first_order(state, buyer) and \
        state.get(creator_key(buyer)) is not None
    mine = HourBuyer(mine.count + 1, (*mine.ids, order_id)[:CONCENTRATION_TRACKED_MAX])
    first_ids = bucket.first_ids
    if fresh_first and len(first_ids) < params.burst_first_orders:
        first_ids = (*first_ids, order_id)
    bucket = HourBucket(bucket.orders + 1, bucket.buyers + (mine.count == 1),
                        bucket.first_orders + fresh_first, first_ids)
    state.set(bucket_key, bucket.encode())
    state.set(buyer_key, mine.encode())
    if mine.count >= 2 and bucket.orders >= params.concentration_ratio * bucket.buyers:
        for tracked in (*mine.ids, order_id):  # the buyer's earlier orders this hour too
            ledger.void(state, ctx, genesis, tracked, FLAG_CONCENTRATION)
    if fresh_first and bucket.first_orders > params.burst_first_orders:
        for tracked in (*bucket.first_ids, order_id):  # the first ones of the burst too
            ledger.void(state, ctx, genesis, tracked, FLAG_BURST)


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

