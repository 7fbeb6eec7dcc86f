"""The trust rules' block hooks: epochs and report panels first, counting and ranking last.

Begin (after the mall's, so the mall's deadlines have settled what fell due):
close the epoch if the block is in a later one (`rewards.close_epochs`),
apply the report rounds due, draw the queued report panels.

End (after every tx): count the orders the mall settled at this height
(`0x25 || height`, in order id order); re-score each merchant touched in the
block once and, if its score moved, queue its listings for re-ranking;
re-rank each listing touched once; work through the re-rank queue (at most
RERANK_PER_BLOCK_MAX listings a block) and the decay sweep
(`rank_sweep_per_block` listings a block, cycling over all of them); delete
stale hour buckets. A block pays for what it touched plus two fixed budgets,
however many merchants and listings exist (docs/trust.md section 10).
"""

from __future__ import annotations

from ..constants import HASH_BYTES, RERANK_PER_BLOCK_MAX
from ..genesis import Genesis
from ..mall import keys as mall_keys
from ..mall.codec import NO_ID, Clock, MallState, check_mark
from . import keys, ledger, ranking, reports, reputation, rewards, signals
from .records import decode_id, encode_id


def begin_block(state: MallState, block: Clock, genesis: Genesis) -> None:
    """Epoch close, report deadlines, report draws (docs/trust.md 10)."""
    rewards.close_epochs(state, block, genesis)
    reports.expire_rounds(state, block, genesis)
    reports.draw_panels(state, block, genesis)


def end_block(state: MallState, block: Clock, genesis: Genesis) -> None:
    """Count settlements, re-score, re-rank, sweep, collect (docs/trust.md 10)."""
    params = genesis.trust.params
    height = block.height
    start, end = mall_keys.prefix_range(mall_keys.closed_at(height))
    for key, value in state.scan(start, end):
        check_mark(value, "settled order")
        ledger.count_settlement(state, block, genesis, key[-HASH_BYTES:])
    start, end = keys.prefix_range(keys.queue_prefix(keys.QUEUE_DIRTY_MERCHANT))
    for key, _ in state.scan(start, end):
        merchant = key[2:]
        state.delete(key)
        if reputation.rescore(state, merchant, height, params) and \
                state.get(keys.fanout(merchant)) is None:
            state.set(keys.fanout(merchant), encode_id(NO_ID))
    start, end = keys.prefix_range(keys.queue_prefix(keys.QUEUE_DIRTY_PRODUCT))
    for key, _ in state.scan(start, end):
        state.delete(key)
        ranking.rerank(state, key[2:], height, params)
    _fan_out(state, height, genesis)
    _sweep(state, height, genesis)
    signals.collect_hours(state, block)


def _fan_out(state: MallState, height: int, genesis: Genesis) -> None:
    """Re-rank the listings of merchants whose score moved, RERANK_PER_BLOCK_MAX a block,
    merchant by merchant, each from its cursor (the last listing re-ranked)."""
    budget = RERANK_PER_BLOCK_MAX
    start, end = keys.prefix_range(keys.queue_prefix(keys.QUEUE_FANOUT))
    for key, value in state.scan(start, end):
        if budget == 0:
            return
        merchant = key[2:]
        cursor = decode_id(value, "fan-out cursor")
        products = ranking.merchant_products_after(
            state, merchant, b"" if cursor == NO_ID else cursor, budget + 1)
        for product_id in products[:budget]:
            ranking.rerank(state, product_id, height, genesis.trust.params)
        if len(products) > budget:
            state.set(key, encode_id(products[budget - 1]))
            return
        budget -= len(products)
        state.delete(key)


def _sweep(state: MallState, height: int, genesis: Genesis) -> None:
    """Re-rank the next `rank_sweep_per_block` listings in id order (wrapping around), so
    decay reaches listings nothing touches."""
    count = genesis.trust.params.rank_sweep_per_block
    if count == 0:
        return
    raw = state.get(keys.META_SWEEP)
    cursor = NO_ID if raw is None else decode_id(raw, "sweep cursor")
    table_start, table_end = keys.prefix_range(keys.product(NO_ID)[:1])
    start = table_start if cursor == NO_ID else keys.product(cursor) + b"\x00"
    batch = state.scan(start, table_end, count)
    if len(batch) < count and cursor != NO_ID:
        batch += state.scan(table_start, min(start, table_end), count - len(batch))
    seen: set[bytes] = set()
    for key, _ in batch:
        if key in seen:
            break
        seen.add(key)
        ranking.rerank(state, key[1:], height, genesis.trust.params)
    if batch:
        state.set(keys.META_SWEEP, encode_id(batch[-1][0][1:]))
