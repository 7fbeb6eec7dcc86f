"""Plugging the mall into the state machine: handlers, the begin-block hook, supply.

`install(machine, genesis)` registers every mall tx type (docs/mall.md
section 1 lists them), the begin-block hook (`hooks.py`) and the two tables
that hold supply (party bonds and escrows), through the seam of docs/abci.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..constants import (
    TABLE_MALL_ESCROWS,
    TABLE_MALL_PARTIES,
    TX_MALL_CERTIFY,
    TX_MALL_DISPUTE_EVIDENCE,
    TX_MALL_DISPUTE_OPEN,
    TX_MALL_DISPUTE_VOTE,
    TX_MALL_ESCROW_CONFIRM,
    TX_MALL_ESCROW_DELIVER,
    TX_MALL_HANDOVER_ACCEPT,
    TX_MALL_HANDOVER_CANCEL,
    TX_MALL_HANDOVER_PROPOSE,
    TX_MALL_HANDOVER_REJECT,
    TX_MALL_ORDER_CANCEL,
    TX_MALL_ORDER_PLACE,
    TX_MALL_PARTY_REGISTER,
    TX_MALL_PARTY_UNBOND,
    TX_MALL_PARTY_UPDATE,
    TX_MALL_PRODUCT_DELIST,
    TX_MALL_PRODUCT_LIST,
    TX_MALL_PRODUCT_UPDATE,
    TX_MALL_REVOKE,
    TX_MALL_TAX_RATE_SET,
    TX_MALL_TRACE_DECLARE_ERROR,
    TX_MALL_TRACE_RECORD,
)
from ..genesis import Genesis, MallGenesis
from . import custody, disputes, escrow, hooks, native, orders, parties, products, tax, trace

MallHandler = Callable[[Any, Any, MallGenesis], None]


def _plain(handler: Callable[[Any, Any], None]) -> MallHandler:
    def run(state: Any, ctx: Any, mall: MallGenesis) -> None:
        handler(state, ctx)

    run.__doc__ = handler.__doc__
    return run


# Every mall tx type and its handler, in tx type order (docs/mall.md section 1).
HANDLERS: dict[int, MallHandler] = {
    TX_MALL_PARTY_REGISTER: parties.register,
    TX_MALL_PARTY_UPDATE: parties.update,
    TX_MALL_PARTY_UNBOND: parties.unbond,
    TX_MALL_CERTIFY: parties.certify,
    TX_MALL_REVOKE: parties.revoke,
    TX_MALL_PRODUCT_LIST: _plain(products.list_product),
    TX_MALL_PRODUCT_UPDATE: _plain(products.update_product),
    TX_MALL_PRODUCT_DELIST: _plain(products.delist_product),
    TX_MALL_TRACE_RECORD: _plain(native.record),  # the kernel's, or trace.record
    TX_MALL_TRACE_DECLARE_ERROR: _plain(trace.declare_error),
    TX_MALL_HANDOVER_PROPOSE: native.propose,  # the kernel's, or custody.propose
    TX_MALL_HANDOVER_ACCEPT: native.accept,  # the kernel's, or custody.accept
    TX_MALL_HANDOVER_REJECT: custody.reject,
    TX_MALL_HANDOVER_CANCEL: custody.cancel,
    TX_MALL_ORDER_PLACE: native.place,  # the kernel's, or orders.place
    TX_MALL_ORDER_CANCEL: orders.cancel,
    TX_MALL_ESCROW_DELIVER: native.deliver,  # the kernel's, or escrow.deliver
    TX_MALL_ESCROW_CONFIRM: native.confirm,  # the kernel's, or escrow.confirm
    TX_MALL_DISPUTE_OPEN: disputes.open_dispute,
    TX_MALL_DISPUTE_EVIDENCE: disputes.add_evidence,
    TX_MALL_DISPUTE_VOTE: disputes.vote,
    TX_MALL_TAX_RATE_SET: tax.set_rate,
}


def _bind(handler: MallHandler, mall: MallGenesis) -> Callable[[Any, Any], None]:
    def run(state: Any, ctx: Any) -> None:
        handler(state, ctx, mall)

    run.__doc__ = handler.__doc__
    return run


def install(machine: Any, genesis: Genesis) -> None:
    """Register the mall's tx handlers, its begin-block hook and its supply tables."""
    mall = genesis.mall
    for tx_type, handler in HANDLERS.items():
        machine.register(tx_type, _bind(handler, mall))

    def begin(state: Any, block_ctx: Any) -> None:
        hooks.begin_block(state, block_ctx, mall)

    machine.register_block_hook(begin, "begin")
    machine.register_supply(TABLE_MALL_PARTIES, parties.party_bond)
    machine.register_supply(TABLE_MALL_ESCROWS, escrow.escrow_held)
