"""Plugging the trust rules into the state machine: handlers, observers, hooks, supply.

`install(machine, genesis)` registers the trust tx types (docs/trust.md
section 1), the observers of the mall's and the ledger's txs that compute
the fake-order signals and keep listings indexed (`signals.py`), the begin-
and end-block hooks (`hooks.py`) and the four tables that hold supply
(report deposits, closed epochs' unsettled rewards, accounts' pending
rewards, and the issued counter that holds minus the issuance). Installed
after the mall (`core/abci/app.py: default_modules`): its hooks run after
the mall's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..constants import (
    TABLE_TRUST_ACCOUNTS,
    TABLE_TRUST_EPOCHS,
    TABLE_TRUST_META,
    TABLE_TRUST_REPORTS,
    TX_MALL_ORDER_PLACE,
    TX_MALL_PRODUCT_DELIST,
    TX_MALL_PRODUCT_LIST,
    TX_TRUST_REPORT_FILE,
    TX_TRUST_REPORT_VOTE,
    TX_TRUST_REVIEW_ADD,
    TX_TRUST_REVIEW_CONTINUE,
    TX_TRUST_REVIEW_REPLY,
    TX_TRUST_REWARD_ATTEST,
    TX_TRUST_REWARD_CLAIM,
    TX_TYPE_TRANSFER,
)
from ..genesis import Genesis
from . import hooks, keys, reports, reviews, rewards, signals

TrustHandler = Callable[[Any, Any, Genesis], None]

# Every trust tx type and its handler, in tx type order (docs/trust.md section 1).
HANDLERS: dict[int, TrustHandler] = {
    TX_TRUST_REVIEW_ADD: reviews.add,
    TX_TRUST_REVIEW_REPLY: reviews.reply,
    TX_TRUST_REVIEW_CONTINUE: reviews.continue_text,
    TX_TRUST_REPORT_FILE: reports.file,
    TX_TRUST_REPORT_VOTE: reports.vote,
    TX_TRUST_REWARD_CLAIM: rewards.claim,
    TX_TRUST_REWARD_ATTEST: rewards.attest,
}

# The txs of other domains the trust rules observe (docs/trust.md section 6.2).
OBSERVERS: dict[int, TrustHandler] = {
    TX_TYPE_TRANSFER: signals.on_transfer,
    TX_MALL_PRODUCT_LIST: signals.on_product_listed,
    TX_MALL_PRODUCT_DELIST: signals.on_product_delisted,
    TX_MALL_ORDER_PLACE: signals.on_order_placed,
}


# The observers that act only when an entry exists (`register_tx_observer`'s `watch`):
# a transfer from S to R is a flow-back only if `releases(S, R)` exists, so transfers
# without one run in the transfer kernel (docs/state.md section 4).
WATCHES: dict[int, bytes] = {
    TX_TYPE_TRANSFER: keys.releases_prefix(),
}


def _bind(function: TrustHandler, genesis: Genesis) -> Callable[[Any, Any], None]:
    def run(state: Any, ctx: Any) -> None:
        function(state, ctx, genesis)

    run.__doc__ = function.__doc__
    return run


def install(machine: Any, genesis: Genesis) -> None:
    """Register the trust handlers, observers, block hooks and supply tables."""
    for tx_type, handler in HANDLERS.items():
        machine.register(tx_type, _bind(handler, genesis))
    for tx_type, observer in OBSERVERS.items():
        machine.register_tx_observer(tx_type, _bind(observer, genesis), WATCHES.get(tx_type))
    machine.register_block_hook(_bind(hooks.begin_block, genesis), "begin")
    machine.register_block_hook(_bind(hooks.end_block, genesis), "end")
    machine.register_supply(TABLE_TRUST_REPORTS, reports.report_supply)
    machine.register_supply(TABLE_TRUST_EPOCHS, rewards.epoch_supply)
    machine.register_supply(TABLE_TRUST_ACCOUNTS, rewards.account_supply)
    machine.register_supply(TABLE_TRUST_META, rewards.meta_supply)
