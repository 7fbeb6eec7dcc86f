"""`sum_balances` (the supply check's C-loop sum of account values) against `unpack_account`."""

from __future__ import annotations

import re

import pytest
from chainmall.core.constants import U64_MAX
from chainmall.core.errors import DecodeError
from chainmall.core.state.accounts import pack_account, sum_balances, unpack_account
from hypothesis import given
from hypothesis import strategies as st

u64 = st.integers(0, U64_MAX)


@given(st.lists(st.tuples(u64, u64), max_size=50))
def test_sum_equals_the_sum_of_unpacked_balances(accounts: list[tuple[int, int]]) -> None:
    values = [pack_account(balance, nonce) for balance, nonce in accounts]
    assert sum_balances(values) == sum(unpack_account(value)[0] for value in values)


@given(st.lists(st.tuples(u64, u64), min_size=1, max_size=20), st.data())
def test_a_malformed_value_raises_what_unpack_account_raises(
        accounts: list[tuple[int, int]], data: st.DataObject) -> None:
    values = [pack_account(balance, nonce) for balance, nonce in accounts]
    at = data.draw(st.integers(0, len(values) - 1))
    bad = data.draw(st.one_of(
        st.binary(max_size=40).filter(lambda raw: len(raw) != len(values[0])),
        st.integers(0, 255).filter(lambda version: version != values[0][0]).map(
            lambda version: bytes([version]) + values[at][1:])))
    values[at] = bad
    with pytest.raises(DecodeError) as expected:
        unpack_account(bad)
    with pytest.raises(DecodeError, match=re.escape(str(expected.value))):
        sum_balances(values)


def test_lengths_that_add_up_are_still_refused() -> None:
    """Two values of wrong lengths whose total is right (17 = 16 + 18 - 17) still fail."""
    good = pack_account(5, 1)
    with pytest.raises(DecodeError):
        sum_balances([good[:-1], good + b"\x00"])
    assert sum_balances([]) == 0
