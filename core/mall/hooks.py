"""The mall's begin-block hook: apply the deadlines due at the block time, draw panels.

Runs before the block's txs (docs/abci.md), with the block's height, time
and the previous block's hash (`block_ctx.prev_hash`). First every deadline
entry due at or before the block time, in key order (time, kind, order id),
at most DEADLINES_PER_BLOCK_MAX; then every queued draw, in order id order,
at most DRAWS_PER_BLOCK_MAX. A hook never fails on a domain condition: what
it does is fixed by the state and the block, the same on every node.
"""

from __future__ import annotations

from ..constants import DRAWS_PER_BLOCK_MAX, TABLE_MALL_DRAWS
from ..genesis import MallGenesis
from . import keys
from .codec import Clock, MallState, check_mark
from .deadlines import due
from .disputes import draw_first_panel, expire_round
from .escrow import expire
from .funds import invariant


def begin_block(state: MallState, block: Clock, mall: MallGenesis) -> None:
    """Apply what falls due in this block (docs/mall.md 9.3 and 11.2)."""
    for _, kind, order_id in due(state, block.timestamp_ms):
        if kind == keys.DEADLINE_ESCROW:
            expire(state, block, mall, order_id)
        else:
            invariant(kind == keys.DEADLINE_DISPUTE, f"deadline kind {kind}")
            expire_round(state, block, mall, order_id)
    start, end = keys.table_range(TABLE_MALL_DRAWS)
    for key, value in state.scan(start, end, DRAWS_PER_BLOCK_MAX):
        check_mark(value, "draw")
        draw_first_panel(state, block, mall, key[1:])
