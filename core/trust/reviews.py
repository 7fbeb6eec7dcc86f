"""Verified-buyer reviews: one per settled order, corrections as new versions, one reply.

Only the buyer of an order that completed (released) or was settled by a
dispute ruling may review it, within `review_window_ms` of the settlement:
a rating of 1-5 stars and up to 1,000 bytes of UTF-8 text. A review is
never edited or deleted: a correction is a new version (`0x30 || order id
|| version`), every version stays. The merchant may reply once. A text
longer than one tx carries (REVIEW_PART_BYTES_MAX) is sent in parts: the
first part with its declared length, the rest by REVIEW_CONTINUE
(docs/trust.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import (
    ADDRESS_BYTES,
    HASH_BYTES,
    RATING_MAX,
    RATING_MIN,
    REVIEW_PART_BYTES_MAX,
    REVIEW_TEXT_BYTES_MAX,
    REVIEW_VERSIONS_MAX,
)
from ..errors import (
    DecodeError,
    NotReviewable,
    ReplyExists,
    ReviewLimit,
    ReviewNotFound,
    ReviewTextInvalid,
    ReviewWindowClosed,
    WrongParty,
)
from ..genesis import Genesis
from ..mall.codec import (
    MARK,
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
from ..mall.escrow import ESCROW_RELEASED, ESCROW_RULED, require_escrow
from ..mall.order_record import require_order
from . import keys, ledger

_CONTROL_ALLOWED = frozenset(b"\t\n")


def text_problem(raw: bytes) -> str | None:
    """Why `raw` is not a valid review text (None if it is): strict UTF-8, and no ASCII
    control character but tab and newline (byte rules, the same on every node)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return "the text is not valid UTF-8"
    if any((byte < 0x20 and byte not in _CONTROL_ALLOWED) or byte == 0x7F for byte in raw):
        return "the text holds a control character"
    return None


# --- stored values ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Review:
    """`0x30 || order id || version`: one version of a buyer's review."""

    buyer: bytes
    product_id: bytes
    rating: int
    height: int
    time_ms: int
    declared_bytes: int  # the text's full length; `text` holds the parts received so far
    text: bytes

    @property
    def complete(self) -> bool:
        return len(self.text) == self.declared_bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.buyer, ADDRESS_BYTES).fixed(self.product_id, HASH_BYTES)
        out.u8(self.rating).u64(self.height).u64(self.time_ms).u16(self.declared_bytes)
        return out.sized(self.text, 2, REVIEW_TEXT_BYTES_MAX).getvalue()


def decode_review(value: bytes) -> Review:
    reader = value_reader(value, "review")
    review = Review(reader.address("buyer"), reader.hash("product id"), reader.u8("rating"),
                    reader.u64("height"), reader.u64("time"), reader.u16("declared"),
                    reader.sized(2, REVIEW_TEXT_BYTES_MAX, "text"))
    reader.finish()
    if not RATING_MIN <= review.rating <= RATING_MAX or \
            len(review.text) > review.declared_bytes:
        raise DecodeError("review: rating or text length out of range")
    return review


@dataclass(frozen=True, slots=True)
class Reply:
    """`0x31 || order id`: the merchant's one reply."""

    merchant: bytes
    height: int
    time_ms: int
    declared_bytes: int
    text: bytes

    @property
    def complete(self) -> bool:
        return len(self.text) == self.declared_bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.merchant, ADDRESS_BYTES).u64(self.height).u64(self.time_ms)
        out.u16(self.declared_bytes)
        return out.sized(self.text, 2, REVIEW_TEXT_BYTES_MAX).getvalue()


def decode_reply(value: bytes) -> Reply:
    reader = value_reader(value, "reply")
    reply = Reply(reader.address("merchant"), reader.u64("height"), reader.u64("time"),
                  reader.u16("declared"), reader.sized(2, REVIEW_TEXT_BYTES_MAX, "text"))
    reader.finish()
    if len(reply.text) > reply.declared_bytes:
        raise DecodeError("reply: text longer than declared")
    return reply


def versions(state: StateReader, order_id: bytes) -> list[tuple[bytes, bytes]]:
    """Every review version of an order (key, value), oldest first."""
    start, end = keys.prefix_range(keys.reviews_of(order_id))
    return state.scan(start, end, REVIEW_VERSIONS_MAX)


# --- payloads ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewDraft:
    """REVIEW_ADD payload: the order, the rating, the text's full length, its first part."""

    order_id: bytes
    rating: int
    declared_bytes: int
    part: bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.order_id, HASH_BYTES).u8(self.rating)
        out.u16(self.declared_bytes)
        return out.sized(self.part, 2, REVIEW_PART_BYTES_MAX).getvalue()


def _check_declared(reader, declared: int, part: bytes, low: int) -> None:
    if not low <= declared <= REVIEW_TEXT_BYTES_MAX:
        raise reader.fail(f"declared text length {declared} is outside "
                          f"{low}..{REVIEW_TEXT_BYTES_MAX}")
    if len(part) > declared:
        raise reader.fail("the text part is longer than the declared length")


@payload_decoder
def decode_review_draft(payload: bytes) -> ReviewDraft:
    reader = payload_reader(payload, "review")
    draft = ReviewDraft(reader.hash("order id"), reader.u8("rating"), reader.u16("declared"),
                        reader.sized(2, REVIEW_PART_BYTES_MAX, "text part"))
    reader.finish()
    if not RATING_MIN <= draft.rating <= RATING_MAX:
        raise reader.fail(f"rating {draft.rating} is outside {RATING_MIN}..{RATING_MAX}")
    _check_declared(reader, draft.declared_bytes, draft.part, 0)
    return draft


@dataclass(frozen=True, slots=True)
class ReplyDraft:
    """REVIEW_REPLY payload: the order, the reply's full length, its first part."""

    order_id: bytes
    declared_bytes: int
    part: bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.order_id, HASH_BYTES).u16(self.declared_bytes)
        return out.sized(self.part, 2, REVIEW_PART_BYTES_MAX).getvalue()


@payload_decoder
def decode_reply_draft(payload: bytes) -> ReplyDraft:
    reader = payload_reader(payload, "reply")
    draft = ReplyDraft(reader.hash("order id"), reader.u16("declared"),
                       reader.sized(2, REVIEW_PART_BYTES_MAX, "text part"))
    reader.finish()
    _check_declared(reader, draft.declared_bytes, draft.part, 1)
    return draft


REPLY_TARGET = 0  # REVIEW_CONTINUE's target: 0 the reply, 1..8 a review version


@dataclass(frozen=True, slots=True)
class TextPart:
    """REVIEW_CONTINUE payload: the order, which text (0 reply, else the version), a part."""

    order_id: bytes
    target: int
    part: bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.order_id, HASH_BYTES).u8(self.target)
        return out.sized(self.part, 2, REVIEW_PART_BYTES_MAX).getvalue()


@payload_decoder
def decode_text_part(payload: bytes) -> TextPart:
    reader = payload_reader(payload, "text part")
    part = TextPart(reader.hash("order id"), reader.u8("target"),
                    reader.sized(2, REVIEW_PART_BYTES_MAX, "text part"))
    reader.finish()
    if part.target > REVIEW_VERSIONS_MAX:
        raise reader.fail(f"target {part.target} is outside 0..{REVIEW_VERSIONS_MAX}")
    if not part.part:
        raise reader.fail("an empty text part")
    return part


def split_text(text: str, first: int = REVIEW_PART_BYTES_MAX) -> list[bytes]:
    """A text's UTF-8 in parts of at most REVIEW_PART_BYTES_MAX bytes, cut between
    characters (a client's helper; the chain accepts any cut)."""
    raw = text.encode("utf-8")
    parts: list[bytes] = []
    while raw:
        cut = min(len(raw), first if not parts else REVIEW_PART_BYTES_MAX)
        while cut < len(raw) and (raw[cut] & 0xC0) == 0x80:
            cut -= 1
        parts.append(raw[:cut])
        raw = raw[cut:]
    return parts or [b""]


# --- handlers ----------------------------------------------------------------------------


def _complete_check(text: bytes, declared: int) -> None:
    if len(text) == declared:
        problem = text_problem(text)
        if problem:
            raise ReviewTextInvalid(problem)


def add(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """REVIEW_ADD (docs/trust.md 4.1): a review, or a correction as a new version."""
    draft = decode_review_draft(ctx.tx.payload)
    order = require_order(state, draft.order_id)
    if ctx.sender != order.buyer:
        raise WrongParty("only the order's buyer may review it")
    escrow = require_escrow(state, draft.order_id)
    if escrow.state not in (ESCROW_RELEASED, ESCROW_RULED):
        raise NotReviewable("only a completed order, or one settled by a dispute ruling, "
                            "may be reviewed")
    if ctx.timestamp_ms > escrow.closed_ms + genesis.trust.params.review_window_ms:
        raise ReviewWindowClosed("the review window of this order has closed")
    existing = versions(state, draft.order_id)
    if len(existing) >= REVIEW_VERSIONS_MAX:
        raise ReviewLimit(f"the order has {REVIEW_VERSIONS_MAX} review versions")
    if existing and not decode_review(existing[-1][1]).complete:
        raise ReviewTextInvalid("the last version's text is not complete yet")
    _complete_check(draft.part, draft.declared_bytes)
    version = len(existing) + 1
    review = Review(order.buyer, order.product_id, draft.rating, ctx.height, ctx.timestamp_ms,
                    draft.declared_bytes, draft.part)
    state.set(keys.review(draft.order_id, version), review.encode())
    if version == 1:
        state.set(keys.review_index(keys.SCOPE_PRODUCT, order.product_id, ctx.height,
                                    draft.order_id), MARK)
        state.set(keys.review_index(keys.SCOPE_MERCHANT, order.merchant, ctx.height,
                                    draft.order_id), MARK)
    ledger.count_review(state, ctx.height, genesis, draft.order_id, draft.rating)
    emit(ctx, "trust.review", ("order", draft.order_id.hex()),
         ("buyer", address_text(order.buyer)), ("version", str(version)),
         ("rating", str(draft.rating)))


def reply(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """REVIEW_REPLY (docs/trust.md 4.2): the merchant's one reply to an order's review."""
    draft = decode_reply_draft(ctx.tx.payload)
    order = require_order(state, draft.order_id)
    if ctx.sender != order.merchant:
        raise WrongParty("only the order's merchant may reply")
    if not versions(state, draft.order_id):
        raise ReviewNotFound("the order has no review to reply to")
    if state.get(keys.reply(draft.order_id)) is not None:
        raise ReplyExists("the merchant has replied to this review already")
    _complete_check(draft.part, draft.declared_bytes)
    record = Reply(order.merchant, ctx.height, ctx.timestamp_ms, draft.declared_bytes,
                   draft.part)
    state.set(keys.reply(draft.order_id), record.encode())
    emit(ctx, "trust.reply", ("order", draft.order_id.hex()),
         ("merchant", address_text(order.merchant)))


def continue_text(state: MallState, ctx: TxContext, genesis: Genesis) -> None:
    """REVIEW_CONTINUE (docs/trust.md 4.3): the next part of a review's or reply's text."""
    part = decode_text_part(ctx.tx.payload)
    order = require_order(state, part.order_id)
    if part.target == REPLY_TARGET:
        key = keys.reply(part.order_id)
        author = order.merchant
        raw = state.get(key)
        record: Review | Reply | None = None if raw is None else decode_reply(raw)
    else:
        key = keys.review(part.order_id, part.target)
        author = order.buyer
        raw = state.get(key)
        record = None if raw is None else decode_review(raw)
    if record is None:
        raise ReviewNotFound("no such review version or reply")
    if ctx.sender != author:
        raise WrongParty("only its author may continue a text")
    if record.complete:
        raise ReviewTextInvalid("the text is complete")
    text = record.text + part.part
    if len(text) > record.declared_bytes:
        raise ReviewTextInvalid(f"the part runs past the declared {record.declared_bytes} "
                                "bytes")
    _complete_check(text, record.declared_bytes)
    new = Reply(record.merchant, record.height, record.time_ms, record.declared_bytes, text) \
        if isinstance(record, Reply) else Review(
            record.buyer, record.product_id, record.rating, record.height, record.time_ms,
            record.declared_bytes, text)
    state.set(key, new.encode())
    emit(ctx, "trust.review", ("order", part.order_id.hex()), ("part", str(part.target)),
         ("bytes", str(len(text))))
