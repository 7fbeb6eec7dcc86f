"""The arbitrator panel shared by disputes and fake-order reports (core/mall/panel.py).

The draw and the rulings through it are checked by the dispute and report tests and the
state-root pins (test_root_pin.py, tests/core/trust): these are its own rules."""

from __future__ import annotations

import pytest
from chainmall.core.errors import AlreadyVoted, NotOnPanel
from chainmall.core.mall.codec import NO_ADDRESS
from chainmall.core.mall.panel import Seat, cast_vote, majority, voters

NONE = 0xFF
A, B, C = (bytes([n]) * 20 for n in (1, 2, 3))


def test_a_majority_is_more_than_half_the_seats() -> None:
    assert [majority(n) for n in (1, 2, 3, 5)] == [1, 2, 2, 3]


def test_a_vote_is_recorded_and_rules_at_a_majority() -> None:
    seats = (Seat(A, NONE), Seat(B, NONE), Seat(C, NONE))
    seats, ruled = cast_vote(seats, A, 1, NONE, "panel")
    assert not ruled and seats[0] == Seat(A, 1)
    seats, ruled = cast_vote(seats, B, 0, NONE, "panel")
    assert not ruled
    seats, ruled = cast_vote(seats, C, 1, NONE, "panel")
    assert ruled and voters(seats, NONE) == [A, B, C]
    assert cast_vote((Seat(A, NONE),), A, 0, NONE, "panel")[1]  # 1 of 1


def test_only_a_seated_arbitrator_votes_once() -> None:
    seats = (Seat(A, NONE), Seat(NO_ADDRESS, NONE))
    with pytest.raises(NotOnPanel, match="this report's panel"):
        cast_vote(seats, B, 1, NONE, "report's panel")
    voted, _ = cast_vote(seats, A, 1, NONE, "panel")
    with pytest.raises(AlreadyVoted):
        cast_vote(voted, A, 0, NONE, "panel")
    assert voters(voted, NONE) == [A] and not voted[1].filled
