"""Orders: a buyer orders a quantity of a listing, paying into escrow in the same tx.

ORDER_PLACE reserves the stock and moves the amount from the buyer's balance
into a new escrow (FUNDED) in one tx, so two orders for the last unit in one
block cannot both pass: the first in block order takes it, the second fails
with OutOfStock (411). The shipping address is only the ciphertext of a
sealed box to the merchant (`sealing.py`). The order id is the tx id. The
merchant may cancel an order it has not shipped (full refund, stock back).
Rules and layout: docs/mall.md section 8.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..constants import (
    HASH_BYTES,
    ORDER_QUANTITY_MAX,
    SEALED_ADDRESS_BYTES_MAX,
    SEALED_BOX_OVERHEAD_BYTES,
    U64_MAX,
)
from ..errors import (
    AmountOutOfRange,
    BondTooLow,
    OutOfStock,
    PriceAboveLimit,
    ProductDelisted,
    SelfDealing,
    WrongEscrowState,
    WrongParty,
)
from ..genesis import MallGenesis
from . import keys
from .codec import (
    MARK,
    MallState,
    TxContext,
    address_text,
    emit,
    payload_decoder,
    payload_reader,
    writer,
)
from .escrow import (
    CLOSE_MERCHANT_CANCEL,
    ESCROW_FUNDED,
    ESCROW_REFUNDED,
    Escrow,
    open_escrow,
    require_escrow,
    settle,
)
from .funds import debit, invariant
from .order_record import Order, decode_order_ref, require_order
from .parties import require_party, save_party
from .products import PRODUCT_ACTIVE, require_product, save_product
from .tax import current_rate
from .vocab import ROLE_MERCHANT


@dataclass(frozen=True, slots=True)
class Placement:
    """ORDER_PLACE payload."""

    product_id: bytes
    quantity: int
    max_unit_price: int
    sealed_address: bytes

    def encode(self) -> bytes:
        out = writer().fixed(self.product_id, HASH_BYTES).u32(self.quantity)
        out.u64(self.max_unit_price)
        return out.sized(self.sealed_address, 2, SEALED_ADDRESS_BYTES_MAX).getvalue()


@payload_decoder
def decode_placement(payload: bytes) -> Placement:
    reader = payload_reader(payload, "order")
    placement = Placement(reader.hash("product id"), reader.u32("quantity"),
                          reader.u64("max unit price"),
                          reader.sized(2, SEALED_ADDRESS_BYTES_MAX, "sealed address"))
    reader.finish()
    if not 1 <= placement.quantity <= ORDER_QUANTITY_MAX:
        raise reader.fail(f"quantity {placement.quantity} is outside 1..{ORDER_QUANTITY_MAX}")
    if len(placement.sealed_address) <= SEALED_BOX_OVERHEAD_BYTES:
        raise reader.fail("the sealed address is shorter than a sealed box of one byte")
    return placement


def place(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """ORDER_PLACE (docs/mall.md 8.1), checks in this order."""
    placement = decode_placement(ctx.tx.payload)
    product = require_product(state, placement.product_id)
    if product.status != PRODUCT_ACTIVE:
        raise ProductDelisted(f"product {placement.product_id.hex()} is delisted")
    buyer, merchant_address = ctx.sender, product.merchant
    if buyer == merchant_address:
        raise SelfDealing("a merchant may not order its own product")
    merchant = require_party(state, merchant_address, ROLE_MERCHANT, "the merchant")
    if merchant.bond < mall.params.merchant_bond_min:
        raise BondTooLow("the merchant's bond is below the merchant minimum")
    if product.price > placement.max_unit_price:
        raise PriceAboveLimit(f"unit price {product.price} is above the limit "
                              f"{placement.max_unit_price}")
    if product.stock < placement.quantity:
        raise OutOfStock(f"stock {product.stock} is below the quantity {placement.quantity}")
    amount = product.price * placement.quantity
    if amount > U64_MAX:
        raise AmountOutOfRange("price x quantity exceeds 2^64 - 1")
    debit(state, buyer, amount)
    authority = mall.authority(merchant.jurisdiction)
    invariant(authority is not None, "a merchant's jurisdiction has no tax authority")
    order_id = ctx.tx.tx_id
    order = Order(buyer, merchant_address, placement.product_id, placement.quantity,
                  product.price, amount, current_rate(state, merchant.jurisdiction, mall),
                  mall.params.commission_bps, ctx.height, ctx.timestamp_ms,
                  merchant.jurisdiction, placement.sealed_address)
    state.set(keys.order(order_id), order.encode())
    save_product(state, placement.product_id,
                 product._replace(stock=product.stock - placement.quantity,
                         sold=product.sold + placement.quantity))
    save_party(state, merchant_address, merchant._replace(open_orders=merchant.open_orders + 1))
    state.set(keys.party_order(buyer, keys.SIDE_BUYER, ctx.height, order_id), MARK)
    state.set(keys.party_order(merchant_address, keys.SIDE_MERCHANT, ctx.height, order_id), MARK)
    open_escrow(state, order_id, amount, ctx.timestamp_ms + mall.params.ship_timeout_ms)
    emit(ctx, "mall.order", ("order", order_id.hex()), ("buyer", address_text(buyer)),
         ("merchant", address_text(merchant_address)),
         ("product", placement.product_id.hex()), ("amount", str(amount)))


def cancel(state: MallState, ctx: TxContext, mall: MallGenesis) -> None:
    """ORDER_CANCEL (docs/mall.md 8.2): the merchant refunds an order it has not shipped."""
    order_id = decode_order_ref(ctx.tx.payload).order_id
    order = require_order(state, order_id)
    escrow: Escrow = require_escrow(state, order_id)
    if ctx.sender != order.merchant:
        raise WrongParty("only the merchant may cancel an order")
    if escrow.state != ESCROW_FUNDED:
        raise WrongEscrowState("only an order not yet shipped can be cancelled")
    settle(state, ctx, mall, order_id, order, escrow, ESCROW_REFUNDED, CLOSE_MERCHANT_CANCEL)
