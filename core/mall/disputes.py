"""Disputes: opening with evidence, the drawn panel, votes, rounds with slashing, rulings.

Buyer or merchant opens a dispute on a shipped or delivered order; the escrow
becomes DISPUTED and the draw is queued. The begin-block hook of the next
block draws the panel (one seat, or three when the order's amount is above
`panel_threshold`) with the previous block's hash as seed (`draw.py`): chain
data no party controls when it signs the opening. Arbitrators vote the
buyer's share in basis points (10,000 refund, 0 release, between: a split);
the first share that gets a majority rules at once and settles the escrow,
with the arbitration fee shared by the members who voted. A round's deadline
slashes the members who did not vote and re-draws their seats; after
`dispute_rounds_max` rounds the fallback share rules. Docs: section 11.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

from ..constants import (
    ADDRESS_BYTES,
    BPS_DENOMINATOR,
    DECODE_CACHE_ENTRIES,
    EVIDENCE_MAX,
    HASH_BYTES,
    PANEL_SEATS_MAX,
)
from ..errors import (
    DecodeError,
    NotVoting,
    OrderNotFound,
    TooMuchEvidence,
    WrongEscrowState,
    WrongParty,
)
from ..genesis import MallGenesis
from . import keys, panel
from .codec import (
    MARK,
    NO_ADDRESS,
    Clock,
    MallState,
    StateReader,
    TxContext,
    address_text,
    emit,
    payload_decoder,
    payload_reader,
    value_reader,
    writer,
)
from .deadlines import schedule, unschedule
from .escrow import (
    CLOSE_FALLBACK,
    CLOSE_RULING,
    ESCROW_DELIVERED,
    ESCROW_DISPUTED,
    ESCROW_RULED,
    ESCROW_SHIPPED,
    STATE_NAMES,
    move,
    require_escrow,
    settle,
)
from .funds import credit_fee_pool, invariant
from .order_record import Order, require_order
from .panel import Seat
from .parties import load_party, save_party, sync_pool

DISPUTE_OPEN = 1
DISPUTE_RULED = 2
NO_VOTE = 0xFFFF


# A seat's vote is the buyer's share in bps, NO_VOTE before voting (core/mall/panel.py).
EMPTY_SEAT = Seat(NO_ADDRESS, NO_VOTE)


@dataclass(frozen=True, slots=True)
class Dispute:
    """The value under `keys.dispute(order_id)`."""

    state: int
    opener: bytes
    round: int  # 0 until the first draw
    opened_height: int
    round_deadline_ms: int  # 0 when no deadline entry
    ruling_bps: int  # NO_VOTE until ruled
    evidence: tuple[tuple[bytes, bytes], ...]  # (submitter, BLAKE3 of the evidence)
    seats: tuple[Seat, ...]
    past: tuple[bytes, ...]  # every arbitrator ever seated: not drawn again

    def encode(self) -> bytes:
        out = writer().u8(self.state).fixed(self.opener, ADDRESS_BYTES).u8(self.round)
        out.u64(self.opened_height).u64(self.round_deadline_ms).u16(self.ruling_bps)
        out.u8(len(self.evidence))
        for submitter, evidence_hash in self.evidence:
            out.fixed(submitter, ADDRESS_BYTES).fixed(evidence_hash, HASH_BYTES)
        out.u8(len(self.seats))
        for seat in self.seats:
            out.fixed(seat.arbitrator, ADDRESS_BYTES).u16(seat.vote)
        out.u8(len(self.past))
        for address in self.past:
            out.fixed(address, ADDRESS_BYTES)
        return out.getvalue()

    @property
    def majority(self) -> int:
        return panel.majority(len(self.seats))


@functools.lru_cache(maxsize=DECODE_CACHE_ENTRIES)
def decode_dispute(value: bytes) -> Dispute:
    reader = value_reader(value, "dispute")
    state, opener, round_number = reader.u8("state"), reader.address("opener"), reader.u8("round")
    opened, deadline, ruling = reader.u64("opened"), reader.u64("deadline"), reader.u16("ruling")
    evidence = tuple((reader.address("submitter"), reader.hash("evidence"))
                     for _ in range(reader.u8("evidence count")))
    seats = tuple(Seat(reader.address("arbitrator"), reader.u16("vote"))
                  for _ in range(reader.u8("seat count")))
    past = tuple(reader.address("past arbitrator") for _ in range(reader.u8("past count")))
    reader.finish()
    if state not in (DISPUTE_OPEN, DISPUTE_RULED) or len(seats) not in (1, PANEL_SEATS_MAX):
        raise DecodeError(f"dispute: state {state}, {len(seats)} seats")
    if len(evidence) > EVIDENCE_MAX:
        raise DecodeError("dispute: too much evidence")
    return Dispute(state, opener, round_number, opened, deadline, ruling, evidence, seats, past)


def load_dispute(state: StateReader, order_id: bytes) -> Dispute | None:
    raw = state.get(keys.dispute(order_id))
    return None if raw is None else decode_dispute(raw)


def _save(state: MallState, order_id: bytes, dispute: Dispute) -> None:
    state.set(keys.dispute(order_id), dispute.encode())


@dataclass(frozen=True, slots=True)
class Evidence:
    """DISPUTE_OPEN / DISPUTE_EVIDENCE payload: the order and the evidence's BLAKE3 hash."""

    order_id: bytes
    evidence_hash: bytes

    def encode(self) -> bytes:
        return writer().fixed(self.order_id, HASH_BYTES).fixed(self.evidence_hash,
                                                                HASH_BYTES).getvalue()


@payload_decoder
def decode_evidence(payload: bytes) -> Evidence:
    reader = payload_reader(payload, "evidence")
    evidence = Evidence(reader.hash("order id"), reader.hash("evidence hash"))
    reader.finish()
    return evidence


@dataclass(frozen=True, slots=True)
class Vote:
    """DISPUTE_VOTE payload: the order, the round voted in, the buyer's share in bps."""

    order_id: bytes
    round: int
    buyer_bps: int

    def encode(self) -> bytes:
        return writer().fixed(self.order_id, HASH_BYTES).u8(self.round).u16(
            self.buyer_bps).getvalue()


@payload_decoder
def decode_vote(payload: bytes) -> Vote:
    reader = payload_reader(payload, "vote")
    vote = Vote(reader.hash("order id"), reader.u8("round"), reader.u16("buyer share"))
    reader.finish()
    if vote.buyer_bps > BPS_DENOMINATOR:
        raise reader.fail(f"buyer share {vote.buyer_bps} bps is over {BPS_DENOMINATOR}")
    return vote


def _party_side(order: Order, sender: bytes) -> None:
    if sender not in (order.buyer, order.merchant):
        raise WrongParty("only the buyer or the merchant may do this")


def open_dispute(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """DISPUTE_OPEN (docs/mall.md 11.1)."""
    evidence = decode_evidence(ctx.tx.payload)
    order = require_order(state, evidence.order_id)
    _party_side(order, ctx.sender)
    escrow = require_escrow(state, evidence.order_id)
    if escrow.state not in (ESCROW_SHIPPED, ESCROW_DELIVERED):
        raise WrongEscrowState(f"the order is {STATE_NAMES[escrow.state]}, not shipped or "
                               "delivered")
    move(state, ctx, evidence.order_id, escrow, ESCROW_DISPUTED, 0)
    seats = PANEL_SEATS_MAX if order.amount > mall.params.panel_threshold else 1
    dispute = Dispute(DISPUTE_OPEN, ctx.sender, 0, ctx.height, 0, NO_VOTE,
                      ((ctx.sender, evidence.evidence_hash),), (EMPTY_SEAT,) * seats, ())
    _save(state, evidence.order_id, dispute)
    state.set(keys.draw(evidence.order_id), MARK)
    emit(ctx, "mall.dispute", ("order", evidence.order_id.hex()),
         ("opener", address_text(ctx.sender)), ("state", "opened"))


def _open_dispute(state: StateReader, order_id: bytes) -> Dispute:
    dispute = load_dispute(state, order_id)
    if dispute is None:
        require_order(state, order_id)
        raise WrongEscrowState("the order has no dispute")
    if dispute.state != DISPUTE_OPEN:
        raise WrongEscrowState("the dispute is ruled")
    return dispute


def add_evidence(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """DISPUTE_EVIDENCE (docs/mall.md 11.3)."""
    evidence = decode_evidence(ctx.tx.payload)
    order = require_order(state, evidence.order_id)
    _party_side(order, ctx.sender)
    dispute = _open_dispute(state, evidence.order_id)
    if len(dispute.evidence) >= EVIDENCE_MAX:
        raise TooMuchEvidence(f"the dispute holds {EVIDENCE_MAX} evidence hashes")
    _save(state, evidence.order_id, replace(
        dispute, evidence=(*dispute.evidence, (ctx.sender, evidence.evidence_hash))))
    emit(ctx, "mall.dispute", ("order", evidence.order_id.hex()),
         ("submitter", address_text(ctx.sender)), ("state", "evidence"))


def vote(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """DISPUTE_VOTE (docs/mall.md 11.4); a majority rules at once."""
    ballot = decode_vote(ctx.tx.payload)
    if state.get(keys.order(ballot.order_id)) is None:
        raise OrderNotFound(f"no order {ballot.order_id.hex()}")
    dispute = _open_dispute(state, ballot.order_id)
    if dispute.round == 0 or ballot.round != dispute.round:
        raise NotVoting(f"the vote is for round {ballot.round}, the dispute is in round "
                        f"{dispute.round} (0: not drawn yet)")
    seats, ruled = panel.cast_vote(dispute.seats, ctx.sender, ballot.buyer_bps, NO_VOTE,
                                   "panel")
    dispute = replace(dispute, seats=seats)
    emit(ctx, "mall.dispute", ("order", ballot.order_id.hex()),
         ("arbitrator", address_text(ctx.sender)), ("state", "voted"))
    if ruled:
        _rule(state, ctx, mall, ballot.order_id, dispute, ballot.buyer_bps, CLOSE_RULING)
    else:
        _save(state, ballot.order_id, dispute)


def _release_seat(state: MallState, order_id: bytes, arbitrator: bytes) -> None:
    party = load_party(state, arbitrator)
    invariant(party is not None and party.open_seats > 0, "a seated arbitrator has no seat")
    assert party is not None
    save_party(state, arbitrator, party._replace(open_seats=party.open_seats - 1))
    state.delete(keys.seat(arbitrator, order_id))


def _slash(state: MallState, mall: MallGenesis, arbitrator: bytes) -> int:
    """Take slash_bps of the bond into the fee pool; the pool drops it if now under minimum."""
    party = load_party(state, arbitrator)
    invariant(party is not None, "a seated arbitrator has no party entry")
    assert party is not None
    amount = party.bond * mall.params.slash_bps // BPS_DENOMINATOR
    party = sync_pool(state, arbitrator, party._replace(bond=party.bond - amount), mall.params)
    save_party(state, arbitrator, party)
    credit_fee_pool(state, amount)
    return amount


def _rule(state: MallState, clock: Clock, mall: MallGenesis, order_id: bytes, dispute: Dispute,
          buyer_bps: int, reason: int) -> None:
    order = require_order(state, order_id)
    escrow = require_escrow(state, order_id)
    invariant(escrow.state == ESCROW_DISPUTED, "an open dispute's escrow is not disputed")
    voters = tuple(panel.voters(dispute.seats, NO_VOTE)) if reason == CLOSE_RULING else ()
    for seat in dispute.seats:
        if seat.filled:
            _release_seat(state, order_id, seat.arbitrator)
    if dispute.round_deadline_ms:
        unschedule(state, dispute.round_deadline_ms, keys.DEADLINE_DISPUTE, order_id)
    settle(state, clock, mall, order_id, order, escrow, ESCROW_RULED, reason, buyer_bps, voters)
    _save(state, order_id, replace(dispute, state=DISPUTE_RULED, round_deadline_ms=0,
                                   ruling_bps=buyer_bps))
    emit(clock, "mall.dispute", ("order", order_id.hex()), ("state", "ruled"),
         ("buyer_bps", str(buyer_bps)))


def _fill_seats(state: MallState, block: Clock, mall: MallGenesis, order_id: bytes,
                dispute: Dispute) -> Dispute:
    """Draw every empty seat (docs/mall.md 11.2) and start the round's deadline."""
    order = require_order(state, order_id)

    def seated(chosen: bytes) -> None:
        party = load_party(state, chosen)
        invariant(party is not None, "a pool member has no party entry")
        assert party is not None
        save_party(state, chosen, party._replace(open_seats=party.open_seats + 1))
        state.set(keys.seat(chosen, order_id), MARK)
        emit(block, "mall.dispute", ("order", order_id.hex()),
             ("arbitrator", address_text(chosen)), ("state", "drawn"))

    prev_hash: bytes = block.prev_hash  # type: ignore[attr-defined]
    seats, past = panel.draw_seats(state, prev_hash, order_id, dispute.round, dispute.seats,
                                   dispute.past, order.buyer, order.merchant, NO_VOTE, seated)
    due = block.timestamp_ms + mall.params.ruling_timeout_ms
    schedule(state, due, keys.DEADLINE_DISPUTE, order_id)
    return replace(dispute, seats=seats, past=past, round_deadline_ms=due)


def draw_first_panel(state: MallState, block: Clock, mall: MallGenesis, order_id: bytes) -> None:
    """A queued draw (begin-block hook): round 1's panel."""
    state.delete(keys.draw(order_id))
    dispute = load_dispute(state, order_id)
    invariant(dispute is not None and dispute.state == DISPUTE_OPEN and dispute.round == 0,
              "a queued draw for a dispute that is not waiting for one")
    assert dispute is not None
    _save(state, order_id, _fill_seats(state, block, mall, order_id, replace(dispute, round=1)))


def expire_round(state: MallState, block: Clock, mall: MallGenesis, order_id: bytes) -> None:
    """A round's deadline fell due (begin-block hook, docs/mall.md 11.5)."""
    dispute = load_dispute(state, order_id)
    invariant(dispute is not None and dispute.state == DISPUTE_OPEN,
              "a round deadline for a dispute that is not open")
    assert dispute is not None
    unschedule(state, dispute.round_deadline_ms, keys.DEADLINE_DISPUTE, order_id)
    dispute = replace(dispute, round_deadline_ms=0)
    seats = list(dispute.seats)
    for index, seat in enumerate(seats):
        if seat.filled and seat.vote == NO_VOTE:
            slashed = _slash(state, mall, seat.arbitrator)
            _release_seat(state, order_id, seat.arbitrator)
            seats[index] = EMPTY_SEAT
            emit(block, "mall.dispute", ("order", order_id.hex()),
                 ("arbitrator", address_text(seat.arbitrator)), ("state", "slashed"),
                 ("amount", str(slashed)))
    dispute = replace(dispute, seats=tuple(seats))
    if dispute.round >= mall.params.dispute_rounds_max:
        _rule(state, block, mall, order_id, dispute, mall.params.fallback_buyer_bps,
              CLOSE_FALLBACK)
        return
    if all(seat.filled and seat.vote != NO_VOTE for seat in seats):
        for seat in seats:  # every seat voted, no majority: a fresh panel
            _release_seat(state, order_id, seat.arbitrator)
        dispute = replace(dispute, seats=(EMPTY_SEAT,) * len(seats))
    dispute = replace(dispute, round=dispute.round + 1)
    _save(state, order_id, _fill_seats(state, block, mall, order_id, dispute))
