"""Accounts, the fee pool and the TRANSFER tx type: balances, nonces, fees.

State keys (docs/state.md): an account is `0x01 || address (20)`, the fee pool
is `0x02 || b"fee_pool"`, an account's creator (who funded it into existence
with a TRANSFER) is `0x03 || address`. Values are versioned canonical encodings. Integers
only, every sum range-checked against U64_MAX: overflow is an error, never a
wrap.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

from ..constants import (
    ACCOUNT_VERSION,
    ADDRESS_BYTES,
    CREATOR_VERSION,
    FEE_POOL_VERSION,
    TABLE_ACCOUNTS,
    TABLE_CREATORS,
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
from .overlay import StateAccess

FEE_POOL_KEY = bytes([TABLE_FEE_POOL]) + b"fee_pool"
TRANSFER_PAYLOAD_BYTES = ADDRESS_BYTES + 8

# Accounts are read and written several times per tx: a fixed layout, packed
# with struct (the same bytes as Writer().u8().u64().u64()).
_ACCOUNT = struct.Struct(">BQQ")
ACCOUNT_BYTES = _ACCOUNT.size


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


def unpack_account(data: bytes) -> tuple[int, int]:
    """(balance, nonce) of an account value; DecodeError unless exactly version 1's layout.

    The hot path of execution: no Account object is built.
    """
    if len(data) != ACCOUNT_BYTES:
        raise DecodeError(f"account: {len(data)} bytes, expected {ACCOUNT_BYTES}")
    version, balance, nonce = _ACCOUNT.unpack(data)
    if version != ACCOUNT_VERSION:
        raise DecodeError(f"account: unsupported version {version}")
    return balance, nonce


def sum_balances(values: Sequence[bytes]) -> int:
    """The sum of the balances of account values: `sum(unpack_account(v)[0] for v in
    values)`, with the same DecodeError for a malformed value, in C loops (a block's
    supply check sums thousands of them)."""
    data = b"".join(values)
    if (len(data) != ACCOUNT_BYTES * len(values)
            or not set(map(len, values)) <= {ACCOUNT_BYTES}
            or not set(data[::ACCOUNT_BYTES]) <= {ACCOUNT_VERSION}):
        return sum(unpack_account(value)[0] for value in values)  # raises the exact error
    return sum(map(itemgetter(1), _ACCOUNT.iter_unpack(data)))


def pack_account(balance: int, nonce: int) -> bytes:
    """The value of an account (`Account(balance, nonce).encode()`, for values in range)."""
    return _ACCOUNT.pack(ACCOUNT_VERSION, balance, nonce)


def decode_account(data: bytes) -> Account:
    """Strictly decode an account value (exactly ACCOUNT_BYTES, version 1)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"account: expected bytes, got {type(data).__name__}")
    return Account(*unpack_account(data))


_ACCOUNT_PREFIX = bytes([TABLE_ACCOUNTS])


def account_key(address: bytes) -> bytes:
    """The state key of an account: 0x01 || address."""
    if len(address) != ADDRESS_BYTES:
        raise ValueError(f"an address is {ADDRESS_BYTES} bytes, got {len(address)}")
    return _ACCOUNT_PREFIX + address


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


_CREATOR_PREFIX = bytes([TABLE_CREATORS])


def creator_key(address: bytes) -> bytes:
    """The state key of an account's creator record: 0x03 || address."""
    if len(address) != ADDRESS_BYTES:
        raise ValueError(f"an address is {ADDRESS_BYTES} bytes, got {len(address)}")
    return _CREATOR_PREFIX + address


def encode_creator(funder: bytes) -> bytes:
    """version u8 (1) || the address whose TRANSFER created the account (20)."""
    return Writer().u8(CREATOR_VERSION).fixed(funder, ADDRESS_BYTES).getvalue()


def decode_creator(data: bytes) -> bytes:
    """The funder address of a creator record (strict)."""
    reader = Reader(data, "creator")
    version = reader.u8("version")
    if version != CREATOR_VERSION:
        raise DecodeError(f"creator: unsupported version {version}")
    funder = reader.fixed(ADDRESS_BYTES, "funder")
    reader.finish()
    return funder


def credit(balance: int, amount: int) -> int:
    """balance + amount, BalanceOverflow past U64_MAX (both are u64 already)."""
    total = balance + amount
    if total > U64_MAX:
        raise BalanceOverflow(f"balance {balance} + {amount} exceeds 2^64 - 1")
    return total


# --- TRANSFER (tx type 1) ----------------------------------------------------


_TRANSFER = struct.Struct(f">{ADDRESS_BYTES}sQ")
assert _TRANSFER.size == TRANSFER_PAYLOAD_BYTES


def encode_transfer(recipient: bytes, amount: int) -> bytes:
    """The TRANSFER payload: recipient address (20) || amount u64."""
    return Writer().fixed(bytes(recipient), ADDRESS_BYTES).u64(amount).getvalue()


def decode_transfer(payload: bytes) -> tuple[bytes, int]:
    """(recipient, amount) of a TRANSFER payload; MalformedPayload unless canonical.

    The layout is fixed (no length fields), so exactly 28 bytes is canonical.
    """
    if len(payload) != TRANSFER_PAYLOAD_BYTES:
        raise MalformedPayload(
            f"transfer payload is {len(payload)} bytes, expected {TRANSFER_PAYLOAD_BYTES}")
    recipient, amount = _TRANSFER.unpack(payload)
    return recipient, amount


def apply_transfer(state: StateAccess, sender: bytes, payload: bytes) -> None:
    """Move `amount` from `sender` to the recipient (created if absent).

    Runs after the fee is paid. MalformedPayload, InsufficientBalance or
    BalanceOverflow leave the state untouched (the machine discards the
    tx's writes on any failure). A transfer to oneself checks the balance
    and changes nothing. A transfer that creates the recipient's account
    also records the sender as its creator (`creator_key`): the mall
    excludes from a dispute's panel the arbitrators a party funded into
    existence (docs/mall.md), and only account creation writes the record,
    so transfers between existing accounts cost nothing more.
    """
    recipient, amount = decode_transfer(payload)
    source_key = account_key(sender)
    raw = state.get(source_key)
    invariant(raw is not None, "transfer sender has no account after paying the fee")
    assert raw is not None
    balance, nonce = unpack_account(raw)
    if balance < amount:
        raise InsufficientBalance(f"balance {balance} is below the amount {amount}")
    state.set(source_key, pack_account(balance - amount, nonce))
    target_key = account_key(recipient)
    raw = state.get(target_key)
    if raw is None:
        state.set(creator_key(recipient), encode_creator(sender))
    target_balance, target_nonce = (0, 0) if raw is None else unpack_account(raw)
    state.set(target_key, pack_account(credit(target_balance, amount), target_nonce))
