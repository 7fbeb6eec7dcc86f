"""Custody hand-over, two-sided: the holder proposes, the receiver accepts (or rejects),
the proposer may cancel; at most one open proposal per item and receiver.

A proposal is `0x1B || item key || receiver`. Accepting it makes the receiver
the holder and records an ObjectEvent (OBSERVE, the receiver's bizStep, source
and destination possessing parties, a link to the proposal tx) in the item's
history, signed by the receiver's tx. A proposal may name an order: the
accepted hand-over then ships or delivers the escrow (`escrow.on_handover`).
Rules: docs/mall.md section 7.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import NamedTuple

from ..constants import ADDRESS_BYTES, EPCIS_URI_BYTES_MAX, HASH_BYTES, MALL_VERSION
from ..errors import (
    DecodeError,
    HandoverExists,
    HandoverNotFound,
    HandoverStale,
    ItemPacked,
    NotHolder,
    NotOwner,
    SelfDealing,
)
from ..genesis import MallGenesis
from . import keys
from .codec import (
    NO_ID,
    FieldReader,
    MallState,
    StateReader,
    TxContext,
    address_text,
    check_uri,
    emit,
    payload_decoder,
    payload_reader,
    put_text,
    writer,
)
from .escrow import on_handover
from .events import TZ_OFFSET_BIAS, BizTransaction, TraceEvent, handover_event
from .items import ITEM_CLASS, ORDER_URI_PREFIX, TX_URI_PREFIX, party_uri, require_item
from .order_record import require_order
from .trace import record_event
from .vocab import BIZ_STEPS, DISPOSITIONS, index_of, word_at

ACCEPT_STEPS = ("receiving", "accepting", "arriving")


_HANDOVER = struct.Struct(">B20s32sQ32s")


class Handover(NamedTuple):
    """An open proposal (the value under `keys.handover(item, receiver)`)."""

    proposer: bytes
    order_id: bytes  # NO_ID if the hand-over is not linked to an order
    proposed_height: int
    tx_id: bytes  # the proposal tx, whose signature is the proposer's side

    def encode(self) -> bytes:
        return _HANDOVER.pack(MALL_VERSION, *self)


def decode_handover(value: bytes) -> Handover:
    reader = FieldReader(value, "hand-over", DecodeError, _HANDOVER)
    reader.finish()
    return Handover(*reader.head[1:])


def load_handover(state: StateReader, item_key: bytes, receiver: bytes) -> Handover | None:
    raw = state.get(keys.handover(item_key, receiver))
    return None if raw is None else decode_handover(raw)


@dataclass(frozen=True, slots=True)
class Proposal:
    """HANDOVER_PROPOSE payload."""

    item_key: bytes
    receiver: bytes
    order_id: bytes = NO_ID

    def encode(self) -> bytes:
        out = writer().fixed(self.item_key, HASH_BYTES).fixed(self.receiver, ADDRESS_BYTES)
        return out.fixed(self.order_id, HASH_BYTES).getvalue()


@payload_decoder
def decode_proposal(payload: bytes) -> Proposal:
    reader = payload_reader(payload, "hand-over proposal")
    proposal = Proposal(reader.hash("item"), reader.address("receiver"), reader.hash("order"))
    reader.finish()
    return proposal


@dataclass(frozen=True, slots=True)
class Acceptance:
    """HANDOVER_ACCEPT payload: the item, and the receiving event's when, why and where."""

    item_key: bytes
    event_time_ms: int
    tz_offset_min: int
    biz_step: str = "receiving"
    disposition: str | None = None
    read_point: str = ""
    biz_location: str = ""

    def encode(self) -> bytes:
        out = writer().fixed(self.item_key, HASH_BYTES).u64(self.event_time_ms)
        out.u16(self.tz_offset_min + TZ_OFFSET_BIAS).u8(index_of(BIZ_STEPS, self.biz_step))
        out.u8(0 if self.disposition is None else index_of(DISPOSITIONS, self.disposition))
        put_text(out, self.read_point, EPCIS_URI_BYTES_MAX)
        return put_text(out, self.biz_location, EPCIS_URI_BYTES_MAX).getvalue()


@payload_decoder
def decode_acceptance(payload: bytes) -> Acceptance:
    reader = payload_reader(payload, "hand-over acceptance")
    item_key, time_ms, tz = reader.hash("item"), reader.u64("time"), reader.u16("tz")
    step_index, disposition_index = reader.u8("bizStep"), reader.u8("disposition")
    read_point = reader.text(EPCIS_URI_BYTES_MAX, "read point", check_uri)
    biz_location = reader.text(EPCIS_URI_BYTES_MAX, "business location", check_uri)
    reader.finish()
    if tz > 2 * TZ_OFFSET_BIAS:
        raise reader.fail(f"time zone offset {tz} is over {2 * TZ_OFFSET_BIAS}")
    try:
        step = word_at(BIZ_STEPS, step_index)
        disposition = None if disposition_index == 0 else word_at(DISPOSITIONS,
                                                                  disposition_index)
    except ValueError as exc:
        raise reader.fail(str(exc)) from None
    if step not in ACCEPT_STEPS:
        raise reader.fail(f"bizStep {step} is not one of {', '.join(ACCEPT_STEPS)}")
    return Acceptance(item_key, time_ms, tz - TZ_OFFSET_BIAS, step, disposition, read_point,
                      biz_location)


@dataclass(frozen=True, slots=True)
class HandoverRef:
    """HANDOVER_REJECT (receiver = sender) / HANDOVER_CANCEL (proposer = sender) payload."""

    item_key: bytes
    receiver: bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.item_key, HASH_BYTES)
        return out.fixed(self.receiver, ADDRESS_BYTES).getvalue()


@payload_decoder
def decode_handover_ref(payload: bytes) -> HandoverRef:
    reader = payload_reader(payload, "hand-over reference")
    ref = HandoverRef(reader.hash("item"), reader.address("receiver"))
    reader.finish()
    return ref


def propose(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """HANDOVER_PROPOSE (docs/mall.md 7.1)."""
    proposal = decode_proposal(ctx.tx.payload)
    item = require_item(state, proposal.item_key)
    if item.packed:
        raise ItemPacked(f"{item.uri} is packed: hand over its container")
    if item.holder != ctx.sender:
        raise NotHolder(f"{address_text(ctx.sender)} does not hold {item.uri}")
    if proposal.receiver == ctx.sender:
        raise SelfDealing("a hand-over to oneself")
    key = keys.handover(proposal.item_key, proposal.receiver)
    if state.get(key) is not None:
        raise HandoverExists("an open proposal for this item and receiver exists")
    if proposal.order_id != NO_ID:
        require_order(state, proposal.order_id)
    state.set(key, Handover(ctx.sender, proposal.order_id, ctx.height, ctx.tx.tx_id).encode())
    emit(ctx, "mall.handover", ("item", proposal.item_key.hex()),
         ("from", address_text(ctx.sender)), ("to", address_text(proposal.receiver)),
         ("state", "proposed"))


def accept(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """HANDOVER_ACCEPT (docs/mall.md 7.2)."""
    acceptance = decode_acceptance(ctx.tx.payload)
    receiver = ctx.sender
    key = keys.handover(acceptance.item_key, receiver)
    raw = state.get(key)
    if raw is None:
        raise HandoverNotFound("no open proposal of this item to the sender")
    handover = decode_handover(raw)
    item = require_item(state, acceptance.item_key)
    if item.packed or item.holder != handover.proposer:
        raise HandoverStale("the proposer no longer holds the item")
    links = (BizTransaction(TX_URI_PREFIX + handover.tx_id.hex()),)
    if handover.order_id != NO_ID:
        links += (BizTransaction(ORDER_URI_PREFIX + handover.order_id.hex(), "po"),)
    event: TraceEvent = handover_event(
        item.uri, item.kind == ITEM_CLASS, acceptance.event_time_ms, acceptance.tz_offset_min,
        acceptance.biz_step, acceptance.disposition, acceptance.read_point,
        acceptance.biz_location, party_uri(handover.proposer), party_uri(receiver), links)
    state.delete(key)
    # The item changes hands and gains the event: saved once, by record_event.
    record_event(state, ctx, receiver, event.encode(check=False), [acceptance.item_key],
                 [item._replace(holder=receiver)])
    if handover.order_id != NO_ID:
        on_handover(state, ctx, mall, handover.order_id, acceptance.item_key,
                    handover.proposer, receiver)
    emit(ctx, "mall.handover", ("item", acceptance.item_key.hex()),
         ("from", address_text(handover.proposer)), ("to", address_text(receiver)),
         ("state", "accepted"))


def reject(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """HANDOVER_REJECT (docs/mall.md 7.3): the receiver refuses the proposal to it."""
    ref = decode_handover_ref(ctx.tx.payload)
    if ref.receiver != ctx.sender:
        raise NotOwner("only the receiver may reject a proposal")
    _close(state, ctx, ref, "rejected")


def cancel(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """HANDOVER_CANCEL (docs/mall.md 7.4): the proposer withdraws its proposal."""
    ref = decode_handover_ref(ctx.tx.payload)
    handover = load_handover(state, ref.item_key, ref.receiver)
    if handover is None:
        raise HandoverNotFound("no open proposal of this item to that receiver")
    if handover.proposer != ctx.sender:
        raise NotOwner("only the proposer may cancel a proposal")
    _close(state, ctx, ref, "cancelled")


def _close(state: MallState, ctx: TxContext, ref: HandoverRef, how: str) -> None:
    key = keys.handover(ref.item_key, ref.receiver)
    raw = state.get(key)
    if raw is None:
        raise HandoverNotFound("no open proposal of this item to that receiver")
    handover = decode_handover(raw)
    state.delete(key)
    emit(ctx, "mall.handover", ("item", ref.item_key.hex()),
         ("from", address_text(handover.proposer)), ("to", address_text(ref.receiver)),
         ("state", how))

