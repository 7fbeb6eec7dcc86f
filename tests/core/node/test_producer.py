"""The producer's block cap (`BlockSizer`): what the last blocks' time says fits in the target."""

from __future__ import annotations

import pytest
from chainmall.core.constants import BLOCK_TXS_ADAPTIVE_MIN, BLOCK_TXS_ADAPTIVE_START
from chainmall.core.node.producer import BlockSizer


def test_starts_at_the_start_cap_within_the_configured_maximum() -> None:
    assert BlockSizer(20_000, 375).cap == BLOCK_TXS_ADAPTIVE_START
    assert BlockSizer(10, 375).cap == 10


def test_converges_to_what_fits_in_the_target() -> None:
    sizer = BlockSizer(20_000, 400.0)
    for _ in range(40):  # 20 ms fixed + 0.1 ms per tx: 3,800 txs fit in 400 ms
        sizer.observe(sizer.cap, 20.0 + 0.1 * sizer.cap)
    assert 3_700 <= sizer.cap <= 3_800


def test_a_slow_block_shrinks_the_cap_and_full_fast_ones_grow_it_back() -> None:
    sizer = BlockSizer(20_000, 400.0)
    start = sizer.cap
    sizer.observe(start, 1_600.0)  # four times over the target
    assert sizer.cap < start
    for _ in range(10):
        sizer.observe(sizer.cap, 0.1 * sizer.cap)
    assert sizer.cap > start


def test_a_partly_filled_block_in_time_leaves_the_cap() -> None:
    sizer = BlockSizer(20_000, 400.0)
    sizer.observe(10, 30.0)  # mostly the block's fixed cost: says nothing about the cap
    assert sizer.cap == BLOCK_TXS_ADAPTIVE_START


def test_bounds_hold() -> None:
    sizer = BlockSizer(20_000, 100.0)
    for _ in range(20):
        sizer.observe(sizer.cap, 10_000.0)
    assert sizer.cap == BLOCK_TXS_ADAPTIVE_MIN
    for _ in range(40):
        sizer.observe(sizer.cap, 1.0)
    assert sizer.cap == 20_000
    small = BlockSizer(10, 100.0)
    small.observe(10, 10_000.0)
    assert small.cap >= 1 and small.cap <= 10
    with pytest.raises(ValueError):
        BlockSizer(0, 100.0)
