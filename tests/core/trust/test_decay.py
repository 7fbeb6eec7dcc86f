"""Integer decay by height (docs/trust.md 5.1): the table is the integer roots it says, a
half-life halves, steps carry over, and it never grows."""

from __future__ import annotations

import pytest
from chainmall.core.trust.decay import (
    DECAY_Q32,
    advance,
    decay,
    decay_steps,
    integer_root,
    step_blocks,
)
from hypothesis import given
from hypothesis import strategies as st


def test_every_table_entry_is_its_integer_root() -> None:
    for i, entry in enumerate(DECAY_Q32):
        assert entry == integer_root(1 << (2048 - i), 64), i
        assert entry ** 64 <= 1 << (2048 - i) < (entry + 1) ** 64


def test_a_half_life_halves_and_steps_carry_over() -> None:
    assert decay(1 << 40, 6_400, 6_400) == 1 << 39
    assert decay(1 << 40, 12_800, 6_400) == 1 << 38
    assert decay(1000, 99, 6_400) == 1000  # less than one step (100 blocks)
    assert step_blocks(6_400) == 100
    assert advance(7, 7 + 250, 6_400) == (2, 207)  # 50 blocks wait for the next step
    assert advance(207, 300, 6_400) == (0, 207)
    assert decay_steps(12345, 64 * 80) == 0


@given(st.integers(0, 2**64 - 1), st.integers(0, 10**7), st.integers(64, 10**6))
def test_decay_never_grows_and_is_monotone_in_time(value: int, blocks: int,
                                                   half_life: int) -> None:
    once = decay(value, blocks, half_life)
    assert 0 <= once <= value
    assert decay(value, blocks + step_blocks(half_life), half_life) <= once


@given(st.integers(0, 2**64 - 1), st.integers(0, 3000), st.integers(0, 3000))
def test_steps_compose_within_rounding(value: int, a: int, b: int) -> None:
    both = decay_steps(value, a + b)
    split = decay_steps(decay_steps(value, a), b)
    assert abs(split - both) <= max(2, both >> 30)  # two floors and Q32 table rounding


def test_refuses_a_half_life_below_64_blocks() -> None:
    with pytest.raises(AssertionError):
        step_blocks(63)
