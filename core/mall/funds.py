"""Money moves of the mall: debit and credit accounts, credit the fee pool.

Every mall payout goes through these three functions, on the same account
and fee-pool entries as transfers (core/state/accounts.py), so the supply
check sees every unit: what leaves a balance enters an escrow or a bond, and
what leaves an escrow or a bond enters a balance or the fee pool.
"""

from __future__ import annotations

from ..constants import U64_MAX
from ..errors import InsufficientBalance, StorageError
from ..state.accounts import (
    FEE_POOL_KEY,
    account_key,
    decode_fee_pool,
    encode_fee_pool,
    pack_account,
    unpack_account,
)
from .codec import MallState


def invariant(condition: bool, message: str) -> None:
    """A safety invariant of the mall (payout <= escrow, supply kept): always checked."""
    if not condition:
        raise StorageError(f"mall invariant broken: {message}")


def balance_of(state: MallState, address: bytes) -> int:
    """The balance of `address` (0 when it has no account)."""
    raw = state.get(account_key(address))
    return 0 if raw is None else unpack_account(raw)[0]


def debit(state: MallState, address: bytes, amount: int) -> None:
    """Take `amount` from `address`'s balance; InsufficientBalance (154) if it has less."""
    key = account_key(address)
    raw = state.get(key)
    balance, nonce = (0, 0) if raw is None else unpack_account(raw)
    if balance < amount:
        raise InsufficientBalance(f"balance {balance} is below the amount {amount}")
    if amount:
        state.set(key, pack_account(balance - amount, nonce))


def credit(state: MallState, address: bytes, amount: int) -> None:
    """Add `amount` to `address`'s balance (an account is created at nonce 0 if absent).

    Supply is conserved and at most U64_MAX, so a credit of units taken from
    an escrow, a bond or a balance can never overflow: checked as an invariant.
    """
    if amount == 0:
        return
    key = account_key(address)
    raw = state.get(key)
    balance, nonce = (0, 0) if raw is None else unpack_account(raw)
    invariant(balance + amount <= U64_MAX, "a mall credit overflows a balance")
    state.set(key, pack_account(balance + amount, nonce))


def credit_fee_pool(state: MallState, amount: int) -> None:
    """Add `amount` to the fee pool (commissions, slashed bonds, fee remainders)."""
    if amount == 0:
        return
    raw = state.get(FEE_POOL_KEY)
    total = (0 if raw is None else decode_fee_pool(raw)) + amount
    invariant(total <= U64_MAX, "the fee pool overflows u64")
    state.set(FEE_POOL_KEY, encode_fee_pool(total))
