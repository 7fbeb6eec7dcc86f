"""Accounts, the fee pool and the TRANSFER tx type: balances, nonces, fees.

State keys (docs/state.md): an account is `0x01 || address (20)`, the fee pool
is `0x02 || b"fee_pool"`. Values are versioned canonical encodings. Integers
only, every sum range-checked against U64_MAX: overflow is an error, never a
wrap.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

from ..constants import (
    ACCOUNT_VERSION,
    ADDRESS_BYTES,
    FEE_POOL_VERSION,
    TABLE_ACCOUNTS,
    TABLE_FEE_POOL,
    U64_MAX,
)
from ..encoding import Reader, Writer
from ..errors import (
    BalanceOverflow,
    DecodeError,
    InsufficientBalance,
    MalformedPayload,
    StorageError,
)

FEE_POOL_KEY = bytes([TABLE_FEE_POOL]) + b"fee_pool"
TRANSFER_PAYLOAD_BYTES = ADDRESS_BYTES + 8

# Accounts are read and written several times per tx: a fixed layout, packed
# with struct (the same bytes as Writer().u8().u64().u64()).
_ACCOUNT = struct.Struct(">BQQ")
ACCOUNT_BYTES = _ACCOUNT.size


class StateAccess(Protocol):
    """Read/write access to state entries (the machine's per-tx overlay)."""

    def get(self, key: bytes) -> bytes | None: ...

    def set(self, key: bytes, value: bytes) -> None: ...


def invariant(condition: bool, message: str) -> None:
    """A safety invariant: always checked (not stripped by -O); StorageError if broken."""
    if not condition:
        raise StorageError(f"invariant broken: {message}")


@dataclass(frozen=True, slots=True)
class Account:
    """A balance and the next nonce, both u64."""

    balance: int
    nonce: int

    def __post_init__(self) -> None:
        for name in ("balance", "nonce"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= U64_MAX:
                raise ValueError(f"account {name} must be a u64, got {value!r}")

    def encode(self) -> bytes:
        """version u8 (1) || balance u64 || nonce u64."""
        return _ACCOUNT.pack(ACCOUNT_VERSION, self.balance, self.nonce)


def decode_account(data: bytes) -> Account:
    """Strictly decode an account value (exactly ACCOUNT_BYTES, version 1)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"account: expected bytes, got {type(data).__name__}")
    if len(data) != ACCOUNT_BYTES:
        raise DecodeError(f"account: {len(data)} bytes, expected {ACCOUNT_BYTES}")
    version, balance, nonce = _ACCOUNT.unpack(data)
    if version != ACCOUNT_VERSION:
        raise DecodeError(f"account: unsupported version {version}")
    return Account(balance, nonce)


def account_key(address: bytes) -> bytes:
    """The state key of an account: 0x01 || address."""
    if len(address) != ADDRESS_BYTES:
        raise ValueError(f"an address is {ADDRESS_BYTES} bytes, got {len(address)}")
    return bytes([TABLE_ACCOUNTS]) + bytes(address)


def encode_fee_pool(amount: int) -> bytes:
    """version u8 (1) || amount u64."""
    return Writer().u8(FEE_POOL_VERSION).u64(amount).getvalue()


def decode_fee_pool(data: bytes) -> int:
    """Strictly decode the fee pool value."""
    reader = Reader(data, "fee pool")
    version = reader.u8("version")
    if version != FEE_POOL_VERSION:
        raise DecodeError(f"fee pool: unsupported version {version}")
    amount = reader.u64("amount")
    reader.finish()
    return amount


def get_account(state: StateAccess, address: bytes) -> Account | None:
    """The account at `address`, None if it does not exist."""
    raw = state.get(account_key(address))
    return None if raw is None else decode_account(raw)


def put_account(state: StateAccess, address: bytes, account: Account) -> None:
    state.set(account_key(address), account.encode())


def get_fee_pool(state: StateAccess) -> int:
    """The fee pool's balance (0 if the entry is absent)."""
    raw = state.get(FEE_POOL_KEY)
    return 0 if raw is None else decode_fee_pool(raw)


def credit(balance: int, amount: int) -> int:
    """balance + amount, BalanceOverflow past U64_MAX."""
    assert 0 <= balance <= U64_MAX
    assert 0 <= amount <= U64_MAX
    total = balance + amount
    if total > U64_MAX:
        raise BalanceOverflow(f"balance {balance} + {amount} exceeds 2^64 - 1")
    return total


def credit_fee_pool(state: StateAccess, fee: int) -> None:
    state.set(FEE_POOL_KEY, encode_fee_pool(credit(get_fee_pool(state), fee)))


# --- TRANSFER (tx type 1) ----------------------------------------------------


def encode_transfer(recipient: bytes, amount: int) -> bytes:
    """The TRANSFER payload: recipient address (20) || amount u64."""
    return Writer().fixed(bytes(recipient), ADDRESS_BYTES).u64(amount).getvalue()


def decode_transfer(payload: bytes) -> tuple[bytes, int]:
    """(recipient, amount) of a TRANSFER payload; MalformedPayload unless canonical."""
    if len(payload) != TRANSFER_PAYLOAD_BYTES:
        raise MalformedPayload(
            f"transfer payload is {len(payload)} bytes, expected {TRANSFER_PAYLOAD_BYTES}")
    reader = Reader(payload, "transfer")
    recipient = reader.fixed(ADDRESS_BYTES, "recipient")
    amount = reader.u64("amount")
    reader.finish()
    return recipient, amount


def apply_transfer(state: StateAccess, sender: bytes, payload: bytes) -> None:
    """Move `amount` from `sender` to the recipient (created if absent).

    Runs after the fee is paid. MalformedPayload, InsufficientBalance or
    BalanceOverflow leave the state untouched (the machine discards the
    tx's writes on any failure).
    """
    recipient, amount = decode_transfer(payload)
    source = get_account(state, sender)
    invariant(source is not None, "transfer sender has no account after paying the fee")
    assert source is not None
    if source.balance < amount:
        raise InsufficientBalance(f"balance {source.balance} is below the amount {amount}")
    put_account(state, sender, Account(source.balance - amount, source.nonce))
    target = get_account(state, recipient) or Account(0, 0)
    put_account(state, recipient, Account(credit(target.balance, amount), target.nonce))
