"""Arbitrator panels, shared by the mall's disputes (docs/mall.md 11) and the trust rules'
fake-order reports (docs/trust.md 8): a panel's seats, the draw of its empty seats, and
a vote with its majority.

The records that hold a panel keep their own encodings (a dispute's ballot is a u16
share for the buyer, a report's a u8 verdict, each with its own "not voted yet" value)
and their own bookkeeping around a seat (seat counts, index entries, deadlines, events,
slashing): a caller passes its "not voted" value, and `draw_seats` calls back for each
member it seats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import AlreadyVoted, NotOnPanel
from .codec import NO_ADDRESS, StateReader
from .draw import Eligibility, draw_one


@dataclass(frozen=True, slots=True)
class Seat:
    """One seat of a panel: its arbitrator (NO_ADDRESS when empty) and its ballot (the
    holder's "not voted" value until the arbitrator votes)."""

    arbitrator: bytes
    vote: int

    @property
    def filled(self) -> bool:
        return self.arbitrator != NO_ADDRESS


def majority(seat_count: int) -> int:
    """Ballots that rule at once: more than half the seats (1 of 1, 2 of 3)."""
    return seat_count // 2 + 1


def cast_vote(seats: tuple[Seat, ...], sender: bytes, ballot: int, no_vote: int,
              panel: str) -> tuple[tuple[Seat, ...], bool]:
    """The seats with `sender`'s ballot recorded, and whether that ballot now has a
    majority. NotOnPanel unless `sender` holds a seat (`panel` names the panel in the
    message), AlreadyVoted if it has voted in this round."""
    index = next((i for i, seat in enumerate(seats) if seat.arbitrator == sender), None)
    if index is None:
        raise NotOnPanel(f"the sender holds no seat on this {panel}")
    if seats[index].vote != no_vote:
        raise AlreadyVoted("the arbitrator has voted in this round")
    seats = (*seats[:index], Seat(sender, ballot), *seats[index + 1:])
    agreeing = sum(1 for seat in seats if seat.vote == ballot)
    return seats, agreeing >= majority(len(seats))


def voters(seats: tuple[Seat, ...], no_vote: int) -> list[bytes]:
    """The arbitrators who voted, in seat order."""
    return [seat.arbitrator for seat in seats if seat.filled and seat.vote != no_vote]


def draw_seats(state: StateReader, prev_hash: bytes, subject_id: bytes, round_number: int,
               seats: tuple[Seat, ...], past: tuple[bytes, ...], first_party: bytes,
               second_party: bytes, no_vote: int, seated: Callable[[bytes], None],
               ) -> tuple[tuple[Seat, ...], tuple[bytes, ...]]:
    """Every empty seat drawn in seat order (docs/mall.md 11.2: `draw.draw_one`, seeded by
    `prev_hash` and `subject_id`, excluding the two parties, the accounts that funded
    either into existence or that they funded, and everyone in `past`); a seat no
    eligible member was found for stays empty. `seated(arbitrator)` runs for each member
    seated, in order, before the next seat is drawn. The new seats, and `past` with the
    members seated appended."""
    seats_out, past_out = list(seats), list(past)
    for index, seat in enumerate(seats_out):
        if seat.filled:
            continue
        eligible = Eligibility(state, first_party, second_party, past_out)
        chosen = draw_one(state, prev_hash, subject_id, round_number, index, eligible)
        if chosen is None:
            continue
        seats_out[index] = Seat(chosen, no_vote)
        past_out.append(chosen)
        seated(chosen)
    return tuple(seats_out), tuple(past_out)
