"""The order record: what was bought, by whom, at what price, tax rate and commission.

`0x1C || order id` (the ORDER_PLACE tx id), written once when the order is
placed and never changed; the escrow entry (`escrow.py`) carries what moves.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from typing import NamedTuple

from ..constants import (
    DECODE_CACHE_ENTRIES,
    HASH_BYTES,
    JURISDICTION_BYTES_MAX,
    MALL_VERSION,
    SEALED_ADDRESS_BYTES_MAX,
)
from ..errors import DecodeError, OrderNotFound
from . import keys
from .codec import (
    FieldReader,
    StateReader,
    check_jurisdiction_text,
    payload_decoder,
    payload_reader,
    writer,
)

_ORDER = struct.Struct(">B20s20s32sIQQHHQQ")  # version .. placed_ms; then jurisdiction, box


class Order(NamedTuple):
    """The value under `keys.order(order_id)`: what was bought, by whom, at what terms."""

    buyer: bytes
    merchant: bytes
    product_id: bytes
    quantity: int
    unit_price: int
    amount: int
    tax_rate_bps: int  # the merchant jurisdiction's rate when the order was placed
    commission_bps: int
    placed_height: int
    placed_ms: int
    jurisdiction: str
    sealed_address: bytes

    def encode(self) -> bytes:
        jurisdiction = self.jurisdiction.encode()
        if len(jurisdiction) > JURISDICTION_BYTES_MAX or \
                len(self.sealed_address) > SEALED_ADDRESS_BYTES_MAX:
            raise ValueError("order field over its limit")
        return b"".join((_ORDER.pack(MALL_VERSION, *self[:10]), bytes([len(jurisdiction)]),
                         jurisdiction, len(self.sealed_address).to_bytes(2, "big"),
                         self.sealed_address))


@functools.lru_cache(maxsize=DECODE_CACHE_ENTRIES)
def decode_order(value: bytes) -> Order:
    reader = FieldReader(value, "order", DecodeError, _ORDER)
    order = Order(*reader.head[1:],
                  reader.text(JURISDICTION_BYTES_MAX, "jurisdiction", check_jurisdiction_text),
                  reader.sized(2, SEALED_ADDRESS_BYTES_MAX, "sealed address"))
    reader.finish()
    return order


def load_order(state: StateReader, order_id: bytes) -> Order | None:
    raw = state.get(keys.order(order_id))
    return None if raw is None else decode_order(raw)


def require_order(state: StateReader, order_id: bytes) -> Order:
    order = load_order(state, order_id)
    if order is None:
        raise OrderNotFound(f"no order {order_id.hex()}")
    return order


@dataclass(frozen=True, slots=True)
class OrderRef:
    """A payload that names one order (ORDER_CANCEL, ESCROW_CONFIRM)."""

    order_id: bytes

    def encode(self) -> bytes:
        return writer().fixed(self.order_id, HASH_BYTES).getvalue()


@payload_decoder
def decode_order_ref(payload: bytes) -> OrderRef:
    reader = payload_reader(payload, "order reference")
    ref = OrderRef(reader.hash("order id"))
    reader.finish()
    return ref
