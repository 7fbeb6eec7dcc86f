"""Fake-order reports: filed with the order ids as evidence, ruled by a drawn panel.

REPORT_FILE names a merchant and up to REPORT_ORDERS_MAX of its orders and
stakes `report_deposit`. The next block's begin hook draws the panel (one
seat or three) from the mall's arbitrator pool with the mall's draw
(`mall/draw.py`: seeded by that block's `prev_hash`, excluding reporter,
merchant and the accounts that funded either into existence or were funded
by them). A majority of REPORT_VOTEs rules:

* **fake**: `fake_slash_bps` of the merchant's bond is slashed; the reporter
  gets its deposit back plus `reporter_reward_bps` of the slash, the voters
  share `report_fee_bps` of it, the rest goes to the fee pool (the reward
  pool); the orders are marked fake and count for nothing; the merchant
  takes a reputation strike;
* **not fake**: the voters share `report_fee_bps` of the deposit, the rest
  goes to the fee pool; the orders are free to be reported again.

A round that reaches its deadline loses the seats that did not vote; they
are drawn again, up to `report_rounds_max` rounds, after which the report
lapses (deposit returned). Rules: docs/trust.md section 8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

from ..constants import (
    ADDRESS_BYTES,
    BPS_DENOMINATOR,
    HASH_BYTES,
    REPORT_DEADLINES_PER_BLOCK_MAX,
    REPORT_DRAWS_PER_BLOCK_MAX,
    REPORT_ORDERS_MAX,
)
from ..errors import (
    DecodeError,
    NotVoting,
    OrderNotFound,
    ReportClosed,
    ReportInvalid,
    ReportNotFound,
    SelfDealing,
)
from ..genesis import Genesis
from ..mall import panel
from ..mall.codec import (
    MARK,
    NO_ADDRESS,
    NO_ID,
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
from ..mall.funds import credit, credit_fee_pool, debit, invariant
from ..mall.order_record import load_order
from ..mall.panel import Seat
from ..mall.parties import load_party, require_party, save_party, sync_pool
from ..mall.vocab import ROLE_MERCHANT
from . import keys, ledger, reputation
from .records import FLAG_FAKE, FLAG_REPORTED

REPORT_OPEN = 1
REPORT_FAKE = 2
REPORT_NOT_FAKE = 3
REPORT_LAPSED = 4
STATE_NAMES = {REPORT_OPEN: "open", REPORT_FAKE: "fake", REPORT_NOT_FAKE: "not fake",
               REPORT_LAPSED: "lapsed"}
VERDICT_NOT_FAKE = 0
VERDICT_FAKE = 1
NO_VERDICT = 0xFF


# A seat's vote is the verdict, NO_VERDICT before voting (core/mall/panel.py).
EMPTY_SEAT = Seat(NO_ADDRESS, NO_VERDICT)


@dataclass(frozen=True, slots=True)
class Report:
    """`0x39 || report id` (the filing tx's id)."""

    state: int
    reporter: bytes
    merchant: bytes
    evidence: bytes  # BLAKE3 of the off-chain evidence (the watcher's findings)
    deposit: int  # held while open
    filed_height: int
    round: int  # 0 until the first draw
    round_deadline_ms: int  # 0 when no deadline entry
    ruled_height: int
    slashed: int
    reporter_reward: int
    orders: tuple[bytes, ...]
    seats: tuple[Seat, ...]
    past: tuple[bytes, ...]  # every arbitrator ever seated on it

    def encode(self) -> bytes:
        out = writer().u8(self.state).fixed(self.reporter, ADDRESS_BYTES)
        out.fixed(self.merchant, ADDRESS_BYTES).fixed(self.evidence, HASH_BYTES)
        out.u64(self.deposit).u64(self.filed_height).u8(self.round)
        out.u64(self.round_deadline_ms).u64(self.ruled_height).u64(self.slashed)
        out.u64(self.reporter_reward).u8(len(self.orders))
        for order_id in self.orders:
            out.fixed(order_id, HASH_BYTES)
        out.u8(len(self.seats))
        for seat in self.seats:
            out.fixed(seat.arbitrator, ADDRESS_BYTES).u8(seat.vote)
        out.u8(len(self.past))
        for address in self.past:
            out.fixed(address, ADDRESS_BYTES)
        return out.getvalue()

    @property
    def held(self) -> int:
        return self.deposit if self.state == REPORT_OPEN else 0


def decode_report(value: bytes) -> Report:
    reader = value_reader(value, "report")
    head = (reader.u8("state"), reader.address("reporter"), reader.address("merchant"),
            reader.hash("evidence"), reader.u64("deposit"), reader.u64("filed"),
            reader.u8("round"), reader.u64("deadline"), reader.u64("ruled"),
            reader.u64("slashed"), reader.u64("reward"))
    orders = tuple(reader.hash("order id") for _ in range(reader.u8("order count")))
    seats = tuple(Seat(reader.address("arbitrator"), reader.u8("verdict"))
                  for _ in range(reader.u8("seat count")))
    past = tuple(reader.address("past") for _ in range(reader.u8("past count")))
    reader.finish()
    if head[0] not in STATE_NAMES or len(seats) not in (1, 3) or \
            not 1 <= len(orders) <= REPORT_ORDERS_MAX:
        raise DecodeError("report: state, seats or orders out of range")
    return Report(*head, orders, seats, past)


def report_supply(key: bytes, value: bytes) -> int:
    """Units a report holds: its deposit while open (registered with the machine)."""
    return decode_report(value).held


def load_report(state: StateReader, report_id: bytes) -> Report | None:
    raw = state.get(keys.report(report_id))
    return None if raw is None else decode_report(raw)


def _save(state: MallState, report_id: bytes, report: Report) -> None:
    state.set(keys.report(report_id), report.encode())


# --- payloads -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Filing:
    """REPORT_FILE payload: the merchant, the evidence hash, the orders (ascending)."""

    merchant: bytes
    evidence: bytes
    orders: tuple[bytes, ...]

    def encode(self) -> bytes:
        out = writer().fixed(self.merchant, ADDRESS_BYTES).fixed(self.evidence, HASH_BYTES)
        out.u8(len(self.orders))
        for order_id in self.orders:
            out.fixed(order_id, HASH_BYTES)
        return out.getvalue()


@payload_decoder
def decode_filing(payload: bytes) -> Filing:
    reader = payload_reader(payload, "report")
    merchant, evidence = reader.address("merchant"), reader.hash("evidence")
    count = reader.u8("order count")
    if not 1 <= count <= REPORT_ORDERS_MAX:
        raise reader.fail(f"{count} orders, expected 1..{REPORT_ORDERS_MAX}")
    orders = tuple(reader.hash("order id") for _ in range(count))
    reader.finish()
    if any(a >= b for a, b in pairwise(orders)):
        raise reader.fail("order ids must be ascending and distinct")
    return Filing(merchant, evidence, orders)


@dataclass(frozen=True, slots=True)
class Verdict:
    """REPORT_VOTE payload: the report, the round voted in, 1 fake or 0 not fake."""

    report_id: bytes
    round: int
    verdict: int

    def encode(self) -> bytes:
        return writer().fixed(self.report_id, HASH_BYTES).u8(self.round).u8(
            self.verdict).getvalue()


@payload_decoder
def decode_verdict(payload: bytes) -> Verdict:
    reader = payload_reader(payload, "verdict")
    verdict = Verdict(reader.hash("report id"), reader.u8("round"), reader.u8("verdict"))
    reader.finish()
    if verdict.verdict not in (VERDICT_NOT_FAKE, VERDICT_FAKE):
        raise reader.fail(f"verdict {verdict.verdict}: 1 fake, 0 not fake")
    return verdict


# --- handlers --------------------------------------------------------------------------------


def file(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """REPORT_FILE (docs/trust.md 8.1)."""
    filing = decode_filing(ctx.tx.payload)
    require_party(state, filing.merchant, ROLE_MERCHANT, "the merchant")
    if ctx.sender == filing.merchant:
        raise SelfDealing("a merchant may not report itself")
    report_id = ctx.tx.tx_id
    for order_id in filing.orders:
        order = load_order(state, order_id)
        if order is None:
            raise OrderNotFound(f"no order {order_id.hex()}")
        if order.merchant != filing.merchant:
            raise ReportInvalid(f"order {order_id.hex()} is not the merchant's")
        record = ledger.require(state, order_id)
        if record.flags & FLAG_FAKE or record.report_id != NO_ID:
            raise ReportInvalid(f"order {order_id.hex()} is ruled fake or under another "
                                "report")
        ledger.save(state, order_id, record._replace(
            flags=record.flags | FLAG_REPORTED, report_id=report_id))
    deposit = genesis.trust.params.report_deposit
    debit(state, ctx.sender, deposit)
    seats = (EMPTY_SEAT,) * genesis.trust.params.report_seats
    report = Report(REPORT_OPEN, ctx.sender, filing.merchant, filing.evidence, deposit,
                    ctx.height, 0, 0, 0, 0, 0, filing.orders, seats, ())
    _save(state, report_id, report)
    state.set(keys.report_index(keys.INDEX_MERCHANT, filing.merchant, report_id), MARK)
    state.set(keys.draw(report_id), MARK)
    emit(ctx, "trust.report", ("report", report_id.hex()),
         ("reporter", address_text(ctx.sender)), ("merchant", address_text(filing.merchant)),
         ("orders", str(len(filing.orders))), ("state", "filed"))


def vote(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """REPORT_VOTE (docs/trust.md 8.3); a majority rules at once."""
    ballot = decode_verdict(ctx.tx.payload)
    report = load_report(state, ballot.report_id)
    if report is None:
        raise ReportNotFound(f"no report {ballot.report_id.hex()}")
    if report.state != REPORT_OPEN:
        raise ReportClosed(f"the report is {STATE_NAMES[report.state]}")
    if report.round == 0 or ballot.round != report.round:
        raise NotVoting(f"the vote is for round {ballot.round}, the report is in round "
                        f"{report.round} (0: not drawn yet)")
    seats, ruled = panel.cast_vote(report.seats, ctx.sender, ballot.verdict, NO_VERDICT,
                                   "report's panel")
    report = replace(report, seats=seats)
    emit(ctx, "trust.report", ("report", ballot.report_id.hex()),
         ("arbitrator", address_text(ctx.sender)), ("state", "voted"))
    if ruled:
        _rule(state, ctx, genesis, ballot.report_id, report, ballot.verdict)
    else:
        _save(state, ballot.report_id, report)


# --- rulings ---------------------------------------------------------------------------------


def _free_seats(state: MallState, report_id: bytes, report: Report) -> None:
    for seat in report.seats:
        if seat.filled:
            state.delete(keys.report_index(keys.INDEX_SEAT, seat.arbitrator, report_id))
    if report.round_deadline_ms:
        state.delete(keys.deadline(report.round_deadline_ms, report_id))


def _release_orders(state: MallState, report_id: bytes, report: Report) -> None:
    for order_id in report.orders:
        record = ledger.require(state, order_id)
        if record.report_id == report_id:
            ledger.save(state, order_id, record._replace(
                flags=record.flags & ~FLAG_REPORTED, report_id=NO_ID))


def _pay_voters(state: MallState, amount: int, voters: list[bytes]) -> int:
    """Share `amount` equally among `voters`; the floor's remainder is returned."""
    if not voters:
        return amount
    each = amount // len(voters)
    for voter in voters:
        credit(state, voter, each)
    return amount - each * len(voters)


def _rule(state: MallState, clock: Clock, genesis: Genesis, report_id: bytes, report: Report,
          verdict: int) -> None:
    params = genesis.trust.params
    voters = panel.voters(report.seats, NO_VERDICT)
    _free_seats(state, report_id, report)
    slashed = reward = 0
    if verdict == VERDICT_FAKE:
        party = load_party(state, report.merchant)
        invariant(party is not None, "a reported merchant has no party entry")
        assert party is not None
        slashed = party.bond * params.fake_slash_bps // BPS_DENOMINATOR
        party = sync_pool(state, report.merchant, party._replace(bond=party.bond - slashed),
                          genesis.mall.params)
        save_party(state, report.merchant, party)
        reward = slashed * params.reporter_reward_bps // BPS_DENOMINATOR
        fee = slashed * params.report_fee_bps // BPS_DENOMINATOR
        rest = _pay_voters(state, fee, voters)
        credit(state, report.reporter, report.deposit + reward)
        credit_fee_pool(state, slashed - reward - fee + rest)
        invariant(reward + fee <= slashed, "a fake ruling pays out more than it slashed")
        for order_id in report.orders:
            ledger.void(state, clock, genesis, order_id, FLAG_FAKE)
        reputation.touch(state, report.merchant, clock.height, params, strikes=1)
        state_after = REPORT_FAKE
    else:
        fee = report.deposit * params.report_fee_bps // BPS_DENOMINATOR
        rest = _pay_voters(state, fee, voters)
        credit_fee_pool(state, report.deposit - fee + rest)
        _release_orders(state, report_id, report)
        state_after = REPORT_NOT_FAKE
    _save(state, report_id, replace(report, state=state_after, round_deadline_ms=0,
                                    ruled_height=clock.height, slashed=slashed,
                                    reporter_reward=reward))
    emit(clock, "trust.report", ("report", report_id.hex()), ("state", STATE_NAMES[state_after]),
         ("slashed", str(slashed)), ("reporter_reward", str(reward)))


def _lapse(state: MallState, clock: Clock, report_id: bytes, report: Report) -> None:
    """The last round ran out without a majority: the deposit goes back to the reporter."""
    _free_seats(state, report_id, report)
    credit(state, report.reporter, report.deposit)
    _release_orders(state, report_id, report)
    _save(state, report_id, replace(report, state=REPORT_LAPSED, round_deadline_ms=0,
                                    ruled_height=clock.height))
    emit(clock, "trust.report", ("report", report_id.hex()), ("state", "lapsed"))


# --- the draw and the deadlines (begin-block hook) --------------------------------------------


def _fill_seats(state: MallState, block: Clock, genesis: Genesis, report_id: bytes,
                report: Report) -> Report:
    def seated(chosen: bytes) -> None:
        state.set(keys.report_index(keys.INDEX_SEAT, chosen, report_id), MARK)
        emit(block, "trust.report", ("report", report_id.hex()),
             ("arbitrator", address_text(chosen)), ("state", "drawn"))

    prev_hash: bytes = block.prev_hash  # type: ignore[attr-defined]
    seats, past = panel.draw_seats(state, prev_hash, report_id, report.round, report.seats,
                                   report.past, report.reporter, report.merchant, NO_VERDICT,
                                   seated)
    due = block.timestamp_ms + genesis.trust.params.report_ruling_timeout_ms
    state.set(keys.deadline(due, report_id), MARK)
    return replace(report, seats=seats, past=past, round_deadline_ms=due)


def draw_panels(state: MallState, block: Clock, genesis: Genesis) -> None:
    """Every queued report gets round 1's panel."""
    start, end = keys.prefix_range(keys.queue_prefix(keys.QUEUE_DRAW))
    for key, _ in state.scan(start, end, REPORT_DRAWS_PER_BLOCK_MAX):
        report_id = key[-HASH_BYTES:]
        state.delete(key)
        report = load_report(state, report_id)
        invariant(report is not None and report.state == REPORT_OPEN and report.round == 0,
                  "a queued draw for a report not waiting for one")
        assert report is not None
        _save(state, report_id,
              _fill_seats(state, block, genesis, report_id, replace(report, round=1)))


def expire_rounds(state: MallState, block: Clock, genesis: Genesis) -> None:
    """Every report round due at the block time: the seats that did not vote are emptied;
    a new round is drawn, or after the last one the report lapses."""
    start, end = keys.deadlines_due(block.timestamp_ms)
    for key, _ in state.scan(start, end, REPORT_DEADLINES_PER_BLOCK_MAX):
        report_id = key[-HASH_BYTES:]
        state.delete(key)
        report = load_report(state, report_id)
        invariant(report is not None and report.state == REPORT_OPEN,
                  "a deadline for a report that is not open")
        assert report is not None
        seats = []
        for seat in report.seats:
            if seat.filled and seat.vote == NO_VERDICT:
                state.delete(keys.report_index(keys.INDEX_SEAT, seat.arbitrator, report_id))
                seats.append(EMPTY_SEAT)
            else:
                seats.append(seat)
        report = replace(report, seats=tuple(seats), round_deadline_ms=0)
        if report.round >= genesis.trust.params.report_rounds_max:
            _lapse(state, block, report_id, report)
            continue
        report = replace(report, round=report.round + 1)
        _save(state, report_id, _fill_seats(state, block, genesis, report_id, report))
