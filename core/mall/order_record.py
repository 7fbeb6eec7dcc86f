"""The order record: what was bought, by whom, at what price, tax rate and commission.

`0x1C || order id` (the ORDER_PLACE tx id), written once when the order is
placed and never changed; the escrow entry (`escrow.py`) carries what moves.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import (
    ADDRESS_BYTES,
    HASH_BYTES,
    JURISDICTION_BYTES_MAX,
    SEALED_ADDRESS_BYTES_MAX,
)
from ..errors import OrderNotFound
from ..genesis import check_jurisdiction
from . import keys
from .codec import StateReader, payload_reader, put_text, value_reader, writer


def _jurisdiction_rule(text: str, what: str) -> str:
    return check_jurisdiction(text)


@dataclass(frozen=True, slots=True)
class Order:
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
        out = writer().fixed(self.buyer, ADDRESS_BYTES).fixed(self.merchant, ADDRESS_BYTES)
        out.fixed(self.product_id, HASH_BYTES).u32(self.quantity).u64(self.unit_price)
        out.u64(self.amount).u16(self.tax_rate_bps).u16(self.commission_bps)
        out.u64(self.placed_height).u64(self.placed_ms)
        put_text(out, self.jurisdiction, JURISDICTION_BYTES_MAX)
        return out.sized(self.sealed_address, 2, SEALED_ADDRESS_BYTES_MAX).getvalue()


def decode_order(value: bytes) -> Order:
    reader = value_reader(value, "order")
    order = Order(reader.address("buyer"), reader.address("merchant"),
                  reader.hash("product id"), reader.u32("quantity"), reader.u64("unit price"),
                  reader.u64("amount"), reader.u16("tax rate"), reader.u16("commission"),
                  reader.u64("placed height"), reader.u64("placed ms"),
                  reader.text(JURISDICTION_BYTES_MAX, "jurisdiction", _jurisdiction_rule),
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


def decode_order_ref(payload: bytes) -> OrderRef:
    reader = payload_reader(payload, "order reference")
    ref = OrderRef(reader.hash("order id"))
    reader.finish()
    return ref
