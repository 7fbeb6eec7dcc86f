"""Escrow: the transition table, settlement with fees and withheld tax, delivery, confirm.

The escrow of an order (`0x1D || order id`) holds the buyer's payment from
ORDER_PLACE until it settles. Every change goes through `move` or `settle`,
which check the transition against `ALLOWED` (a safety invariant; handlers
check first and fail with a code) and keep the deadline index in step. An
escrow never pays out more than it holds: `settle` splits exactly `held`
among buyer, merchant, tax authority, fee pool and arbitrators, checked as an
invariant. The table, the deadline rule and the split are docs/mall.md
section 9.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from ..constants import (
    BPS_DENOMINATOR,
    DECODE_CACHE_ENTRIES,
    EPCIS_URI_BYTES_MAX,
    HASH_BYTES,
    MALL_VERSION,
    PRODUCT_STOCK_MAX,
)
from ..errors import DecodeError, NotHolder, OrderNotFound, WrongEscrowState, WrongParty
from ..genesis import MallGenesis
from . import keys
from .codec import (
    MARK,
    NO_ID,
    Clock,
    FieldReader,
    MallState,
    StateReader,
    TxContext,
    address_text,
    check_uri,
    decoded_values,
    emit,
    payload_decoder,
    payload_reader,
    put_text,
    writer,
)
from .deadlines import schedule, unschedule
from .events import TZ_OFFSET_BIAS, BizTransaction, Quantity, SourceDest, TraceEvent
from .funds import credit, credit_fee_pool, invariant
from .items import ITEM_INSTANCE, ORDER_URI_PREFIX, holder_of, party_uri, require_item
from .order_record import Order, decode_order_ref, require_order
from .parties import load_party, require_party, save_party
from .products import load_product, save_product
from .tax import withhold
from .trace import record_event
from .vocab import ACTION_OBSERVE, KIND_OBJECT, ROLE_CARRIER

ESCROW_FUNDED = 1
ESCROW_SHIPPED = 2
ESCROW_DELIVERED = 3
ESCROW_DISPUTED = 4
ESCROW_RELEASED = 5
ESCROW_REFUNDED = 6
ESCROW_RULED = 7
STATE_NAMES = {ESCROW_FUNDED: "funded", ESCROW_SHIPPED: "shipped",
               ESCROW_DELIVERED: "delivered", ESCROW_DISPUTED: "disputed",
               ESCROW_RELEASED: "released", ESCROW_REFUNDED: "refunded",
               ESCROW_RULED: "ruled"}
OPEN_STATES = frozenset({ESCROW_FUNDED, ESCROW_SHIPPED, ESCROW_DELIVERED, ESCROW_DISPUTED})

CLOSE_OPEN = 0
CLOSE_CONFIRMED = 1
CLOSE_CONFIRM_TIMEOUT = 2
CLOSE_SHIP_TIMEOUT = 3
CLOSE_DELIVERY_TIMEOUT = 4
CLOSE_MERCHANT_CANCEL = 5
CLOSE_RULING = 6
CLOSE_FALLBACK = 7
CLOSE_NAMES = {CLOSE_OPEN: "open", CLOSE_CONFIRMED: "confirmed",
               CLOSE_CONFIRM_TIMEOUT: "confirm time-out", CLOSE_SHIP_TIMEOUT: "ship time-out",
               CLOSE_DELIVERY_TIMEOUT: "delivery time-out",
               CLOSE_MERCHANT_CANCEL: "merchant cancel", CLOSE_RULING: "ruling",
               CLOSE_FALLBACK: "fallback ruling"}

# The transition table (docs/mall.md 9.1): (from, trigger, signed by, to).
TRANSITIONS: tuple[tuple[str, str, str, str], ...] = (
    ("funded", "hand-over linked to the order, proposed by the merchant, accepted by a carrier",
     "merchant + carrier", "shipped"),
    ("funded", "hand-over linked to the order, proposed by the merchant, accepted by the buyer",
     "merchant + buyer", "delivered"),
    ("funded", "ORDER_CANCEL", "merchant", "refunded"),
    ("funded", "ship deadline passes", "(block time)", "refunded"),
    ("shipped", "hand-over of the shipped item linked to the order, accepted by the buyer",
     "holder + buyer", "delivered"),
    ("shipped", "ESCROW_DELIVER by the carrier holding the shipped item", "carrier",
     "delivered"),
    ("shipped", "ESCROW_CONFIRM", "buyer", "released"),
    ("shipped", "DISPUTE_OPEN", "buyer or merchant", "disputed"),
    ("shipped", "delivery deadline passes", "(block time)", "refunded"),
    ("delivered", "ESCROW_CONFIRM", "buyer", "released"),
    ("delivered", "DISPUTE_OPEN", "buyer or merchant", "disputed"),
    ("delivered", "confirm deadline passes", "(block time)", "released"),
    ("disputed", "majority vote of the panel", "arbitrators", "ruled"),
    ("disputed", "last round's deadline passes without a majority", "(block time)", "ruled"),
)
_BY_NAME = {name: state for state, name in STATE_NAMES.items()}
ALLOWED: dict[int, frozenset[int]] = {}
for _from, _, _, _to in TRANSITIONS:
    ALLOWED[_BY_NAME[_from]] = ALLOWED.get(_BY_NAME[_from], frozenset()) | {_BY_NAME[_to]}


_ESCROW = struct.Struct(">BBQQ32sQQQQBQQQQQ")


class Escrow(NamedTuple):
    """The value under `keys.escrow(order_id)` (fixed width: `_ESCROW`)."""

    state: int
    held: int  # units still in escrow (the order amount until it settles, then 0)
    deadline_ms: int  # due time of its deadline entry, 0 when none
    item_key: bytes  # the shipped item (or container), NO_ID before shipping
    shipped_ms: int
    delivered_ms: int
    closed_ms: int
    closed_height: int
    close_reason: int
    buyer_paid: int
    merchant_paid: int
    tax: int
    commission: int
    arbitration_fee: int

    def encode(self) -> bytes:
        return _ESCROW.pack(MALL_VERSION, *self)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES


@decoded_values(DECODE_CACHE_ENTRIES)
def decode_escrow(value: bytes) -> Escrow:
    reader = FieldReader(value, "escrow", DecodeError, _ESCROW)
    reader.finish()
    escrow = Escrow(*reader.head[1:])
    if escrow.state not in STATE_NAMES or escrow.close_reason not in CLOSE_NAMES:
        raise DecodeError(f"escrow: state {escrow.state} / reason {escrow.close_reason}")
    if escrow.open != (escrow.close_reason == CLOSE_OPEN):
        raise DecodeError("escrow: open state with a close reason, or closed without one")
    return escrow


_HELD = struct.Struct(">Q")
_HELD_OFFSET = 1 + 1  # version, state


def escrow_held(key: bytes, value: bytes) -> int:
    """Supply held by an escrow entry (registered with `register_supply`), read at its
    fixed offset (the supply check reads every changed escrow of every block)."""
    if len(value) < _HELD_OFFSET + _HELD.size or value[0] != MALL_VERSION:
        return decode_escrow(value).held
    return _HELD.unpack_from(value, _HELD_OFFSET)[0]


def load_escrow(state: StateReader, order_id: bytes) -> Escrow | None:
    raw = state.get(keys.escrow(order_id))
    return None if raw is None else decode_escrow(raw)


def require_escrow(state: StateReader, order_id: bytes) -> Escrow:
    escrow = load_escrow(state, order_id)
    if escrow is None:
        raise OrderNotFound(f"no order {order_id.hex()}")
    return escrow


def open_escrow(state: MallState, order_id: bytes, amount: int, due_ms: int) -> None:
    """A new FUNDED escrow of `amount`, with its ship deadline."""
    escrow = Escrow(ESCROW_FUNDED, amount, due_ms, NO_ID, 0, 0, 0, 0, CLOSE_OPEN,
                    0, 0, 0, 0, 0)
    state.set(keys.escrow(order_id), decode_escrow.remember(escrow.encode(), escrow))
    schedule(state, due_ms, keys.DEADLINE_ESCROW, order_id)


def move(state: MallState, clock: Clock, order_id: bytes, escrow: Escrow, to_state: int,
         due_ms: int, **changes: object) -> Escrow:
    """An open-to-open transition: check it, reschedule the deadline (0: none), save."""
    invariant(to_state in ALLOWED.get(escrow.state, ()), f"escrow transition "
              f"{STATE_NAMES[escrow.state]} -> {STATE_NAMES[to_state]} is not in the table")
    invariant(to_state in OPEN_STATES, "move() is for open states; settle() closes")
    if escrow.deadline_ms:
        unschedule(state, escrow.deadline_ms, keys.DEADLINE_ESCROW, order_id)
    if due_ms:
        schedule(state, due_ms, keys.DEADLINE_ESCROW, order_id)
    new = escrow._replace(state=to_state, deadline_ms=due_ms, **changes)  # type: ignore[arg-type]
    state.set(keys.escrow(order_id), decode_escrow.remember(new.encode(), new))
    emit(clock, "mall.escrow", ("order", order_id.hex()), ("state", STATE_NAMES[to_state]))
    return new


def settle(state: MallState, clock: Clock, mall: MallGenesis, order_id: bytes, order: Order,
           escrow: Escrow, final_state: int, reason: int, buyer_bps: int | None = None,
           fee_to: tuple[bytes, ...] = ()) -> Escrow:
    """Close the escrow, paying out exactly what it holds (docs/mall.md 9.4).

    `buyer_bps` (default: all for a refund, none for a release) is the buyer's
    share after the arbitration fee, which is taken only when `fee_to` names
    the arbitrators who earned it. The merchant's share pays the tax of the
    order's rate (to the authority) and the commission (to the fee pool).
    """
    invariant(final_state in ALLOWED.get(escrow.state, ()), f"escrow transition "
              f"{STATE_NAMES[escrow.state]} -> {STATE_NAMES[final_state]} is not in the table")
    invariant(final_state not in OPEN_STATES, "settle() closes an escrow")
    if buyer_bps is None:
        buyer_bps = BPS_DENOMINATOR if final_state == ESCROW_REFUNDED else 0
    invariant(0 <= buyer_bps <= BPS_DENOMINATOR, "buyer share outside 0..10000 bps")
    held = escrow.held
    fee = held * mall.params.arbitration_fee_bps // BPS_DENOMINATOR if fee_to else 0
    rest = held - fee
    to_buyer = rest * buyer_bps // BPS_DENOMINATOR
    gross = rest - to_buyer
    tax = withhold(state, clock, mall, order_id, order.jurisdiction, order.merchant, gross,
                   order.tax_rate_bps)
    commission = gross * order.commission_bps // BPS_DENOMINATOR
    to_merchant = gross - tax - commission
    invariant(to_merchant >= 0, "tax and commission exceed the merchant's share")
    invariant(to_buyer + to_merchant + tax + commission + fee == held,
              "a settlement pays out other than what the escrow holds")
    credit(state, order.buyer, to_buyer)
    credit(state, order.merchant, to_merchant)
    fee_each = fee // len(fee_to) if fee_to else 0
    for arbitrator in fee_to:
        credit(state, arbitrator, fee_each)
    credit_fee_pool(state, commission + (fee - fee_each * len(fee_to)))
    if escrow.deadline_ms:
        unschedule(state, escrow.deadline_ms, keys.DEADLINE_ESCROW, order_id)
    if escrow.state == ESCROW_FUNDED and final_state == ESCROW_REFUNDED:
        _restock(state, order)
    merchant = load_party(state, order.merchant)
    invariant(merchant is not None and merchant.open_orders > 0,
              "an open escrow's merchant has no open orders")
    assert merchant is not None
    save_party(state, order.merchant, merchant._replace(open_orders=merchant.open_orders - 1))
    closed = escrow._replace(state=final_state, held=0, deadline_ms=0,
                     closed_ms=clock.timestamp_ms, closed_height=clock.height,
                     close_reason=reason, buyer_paid=to_buyer, merchant_paid=to_merchant,
                     tax=tax, commission=commission, arbitration_fee=fee)
    state.set(keys.escrow(order_id), decode_escrow.remember(closed.encode(), closed))
    state.set(keys.closed(clock.height, order_id), MARK)
    emit(clock, "mall.escrow", ("order", order_id.hex()), ("state", STATE_NAMES[final_state]),
         ("reason", CLOSE_NAMES[reason]), ("buyer_paid", str(to_buyer)),
         ("merchant_paid", str(to_merchant)), ("tax", str(tax)))
    return closed


def _restock(state: MallState, order: Order) -> None:
    """Units of an order refunded before shipping go back to the listing's stock."""
    product = load_product(state, order.product_id)
    invariant(product is not None, "an order's product is gone")
    assert product is not None
    invariant(product.sold >= order.quantity, "a listing sold fewer units than an order holds")
    save_product(state, order.product_id,
                 product._replace(stock=min(PRODUCT_STOCK_MAX, product.stock + order.quantity),
                         sold=product.sold - order.quantity))


# --- the hand-over link (called by custody.py when a linked hand-over is accepted) -----


def on_handover(state: MallState, ctx: TxContext, mall: MallGenesis, order_id: bytes,
                item_key: bytes, proposer: bytes, receiver: bytes) -> None:
    """Ship or deliver the order if this accepted hand-over does (docs/mall.md 9.1)."""
    order = require_order(state, order_id)
    escrow = require_escrow(state, order_id)
    now = ctx.timestamp_ms
    params = mall.params
    if escrow.state == ESCROW_FUNDED and proposer == order.merchant:
        if receiver == order.buyer:
            move(state, ctx, order_id, escrow, ESCROW_DELIVERED, now + params.confirm_timeout_ms,
                 item_key=item_key, shipped_ms=now, delivered_ms=now)
            return
        carrier = load_party(state, receiver)
        if carrier is not None and carrier.has(ROLE_CARRIER):
            move(state, ctx, order_id, escrow, ESCROW_SHIPPED, now + params.delivery_timeout_ms,
                 item_key=item_key, shipped_ms=now)
        return
    if escrow.state == ESCROW_SHIPPED and receiver == order.buyer \
            and item_key == escrow.item_key:
        move(state, ctx, order_id, escrow, ESCROW_DELIVERED, now + params.confirm_timeout_ms,
             delivered_ms=now)


# --- ESCROW_DELIVER and ESCROW_CONFIRM -------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeliveryNote:
    """ESCROW_DELIVER payload: the order, when (ms, time zone offset) and where."""

    order_id: bytes
    event_time_ms: int
    tz_offset_min: int
    read_point: str

    def encode(self) -> bytes:
        out = writer().fixed(self.order_id, HASH_BYTES).u64(self.event_time_ms)
        out.u16(self.tz_offset_min + TZ_OFFSET_BIAS)
        return put_text(out, self.read_point, EPCIS_URI_BYTES_MAX).getvalue()


@payload_decoder
def decode_delivery(payload: bytes) -> DeliveryNote:
    reader = payload_reader(payload, "delivery")
    order_id, time_ms, tz = reader.hash("order id"), reader.u64("time"), reader.u16("tz")
    if tz > 2 * TZ_OFFSET_BIAS:
        raise reader.fail(f"time zone offset {tz} is over {2 * TZ_OFFSET_BIAS}")
    note = DeliveryNote(order_id, time_ms, tz - TZ_OFFSET_BIAS,
                        reader.text(EPCIS_URI_BYTES_MAX, "read point", check_uri))
    reader.finish()
    return note


def deliver(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """ESCROW_DELIVER (docs/mall.md 9.2): the carrier holding the shipped item records the
    delivery (an ObjectEvent in the item's history); the confirm window starts."""
    note = decode_delivery(ctx.tx.payload)
    order = require_order(state, note.order_id)
    escrow = require_escrow(state, note.order_id)
    if escrow.state != ESCROW_SHIPPED:
        raise WrongEscrowState(f"the order is {STATE_NAMES[escrow.state]}, not shipped")
    require_party(state, ctx.sender, ROLE_CARRIER)
    item = require_item(state, escrow.item_key)
    if holder_of(state, escrow.item_key, item) != ctx.sender:
        raise NotHolder(f"{address_text(ctx.sender)} does not hold the shipped item")
    event = TraceEvent(
        KIND_OBJECT, ACTION_OBSERVE, note.event_time_ms, note.tz_offset_min, "arriving",
        "in_progress", note.read_point,
        epcs=(item.uri,) if item.kind == ITEM_INSTANCE else (),
        quantities=() if item.kind == ITEM_INSTANCE else (Quantity(item.uri),),
        biz_transactions=(BizTransaction(ORDER_URI_PREFIX + note.order_id.hex(), "po"),),
        destinations=(SourceDest("possessing_party", party_uri(order.buyer)),))
    record_event(state, ctx, ctx.sender, event.encode(check=False), [escrow.item_key], [item])
    now = ctx.timestamp_ms
    move(state, ctx, note.order_id, escrow, ESCROW_DELIVERED,
         now + mall.params.confirm_timeout_ms, delivered_ms=now)


def confirm(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """ESCROW_CONFIRM (docs/mall.md 9.2): the buyer releases the payment to the merchant."""
    order_id = decode_order_ref(ctx.tx.payload).order_id
    order = require_order(state, order_id)
    escrow = require_escrow(state, order_id)
    if ctx.sender != order.buyer:
        raise WrongParty("only the buyer may confirm")
    if escrow.state not in (ESCROW_SHIPPED, ESCROW_DELIVERED):
        raise WrongEscrowState(f"the order is {STATE_NAMES[escrow.state]}, not shipped or "
                               "delivered")
    settle(state, ctx, mall, order_id, order, escrow, ESCROW_RELEASED, CLOSE_CONFIRMED)


def expire(state: MallState, clock: Clock, mall: MallGenesis, order_id: bytes) -> None:
    """An escrow deadline fell due (docs/mall.md 9.3): refund or release by its state."""
    order = require_order(state, order_id)
    escrow = require_escrow(state, order_id)
    if escrow.state == ESCROW_FUNDED:
        settle(state, clock, mall, order_id, order, escrow, ESCROW_REFUNDED, CLOSE_SHIP_TIMEOUT)
    elif escrow.state == ESCROW_SHIPPED:
        settle(state, clock, mall, order_id, order, escrow, ESCROW_REFUNDED,
               CLOSE_DELIVERY_TIMEOUT)
    elif escrow.state == ESCROW_DELIVERED:
        settle(state, clock, mall, order_id, order, escrow, ESCROW_RELEASED,
               CLOSE_CONFIRM_TIMEOUT)
    else:
        invariant(False, f"a deadline entry for an escrow in state {escrow.state}")
