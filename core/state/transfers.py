"""Runs of TRANSFER txs over a table of prefetched accounts: the reference of ext/_transfer.

The state machine executes a block tx by tx (`machine._execute`, docs/state.md
section 4). Most txs of a block are transfers that succeed, and such a tx
reads and writes nothing but two accounts: its sender's (fee, nonce, amount)
and its recipient's. So the machine hands runs of them to these functions:

1. `plan_transfers` reads the block's txs once: for each tx that passed its
   stateless checks and is a TRANSFER, the sender's address (from its public
   key) and the recipient's, each given a *slot* in first-seen order, and a
   32-byte record of what the tx needs (slots, nonce, fee, amount);
2. the machine reads each slot's account from the block's state (after the
   begin-block hooks) and `load_accounts` makes the table;
3. `run_transfers` executes txs from a given index for as long as each one
   is a transfer that *succeeds*: every admission rule passes and the
   transfer does not fail. It stops before the first other tx (not a
   transfer, failing any check, an account value it cannot read, a
   recipient with no account yet, the block full) and returns its index;
   the machine executes that tx tx-by-tx (with the table's changes written
   back first, `take_dirty`, and the accounts that tx wrote read back
   after, `set_account`), then calls again;
4. `success_results` makes the executed txs' results.

A TRANSFER observer (another domain's reaction to a transfer) may declare a
watched key prefix P: it does nothing unless the state holds
`P || sender || recipient`. `watch_keys` gives that key for every planned
transfer, so the machine can end a run before a transfer whose watched entry
exists (that one then executes tx by tx, with its observers) and let the
others run here (docs/state.md section 4).

So a run changes exactly what executing its txs one by one changes, and
every failure, with its code and message, still comes from the tx-by-tx
path. The table's entries (ENTRY_BYTES each, little-endian): state u8
(ENTRY_ABSENT, ENTRY_ACCOUNT, ENTRY_UNREADABLE), dirty u8, 6 zero bytes,
balance u64, nonce u64. A plan record (PLAN_BYTES, little-endian): sender
slot u32, recipient slot u32 (NO_SLOT where there is none), nonce u64, fee
u64, amount u64.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from ..batchargs import Buffer, as_bytes, as_writable, index_in, item_count, read_offsets
from ..constants import (
    ACCOUNT_VERSION,
    ADDRESS_BYTES,
    BATCH_ITEMS_MAX,
    HASH_BYTES,
    PUBLIC_KEY_BYTES,
    STATE_KEY_BYTES_MAX,
    TX_TYPE_TRANSFER,
    U64_MAX,
)
from ..errors import TX_OK
from ..hashing import digest
from ..txwire import wire_code

__all__ = [
    "ENTRY_ABSENT", "ENTRY_ACCOUNT", "ENTRY_BYTES", "ENTRY_UNREADABLE", "NO_SLOT",
    "PLAN_BYTES", "RESULT_FIELDS", "WATCH_PREFIX_BYTES_MAX", "load_accounts", "plan_transfers",
    "run_transfers", "set_account", "success_results", "take_dirty", "watch_keys",
]

NO_SLOT = 0xFFFFFFFF
ENTRY_ABSENT, ENTRY_ACCOUNT, ENTRY_UNREADABLE = 0, 1, 2
_ENTRY = struct.Struct("<BB6xQQ")
ENTRY_BYTES = _ENTRY.size
_PLAN = struct.Struct("<IIQQQ")
PLAN_BYTES = _PLAN.size
_ACCOUNT = struct.Struct(">BQQ")  # the account value (core/state/accounts.py)
_TRANSFER = struct.Struct(f">{ADDRESS_BYTES}sQ")  # the TRANSFER payload
# A watched key is prefix || sender || recipient: a state key, so the prefix is short.
WATCH_PREFIX_BYTES_MAX = STATE_KEY_BYTES_MAX - 2 * ADDRESS_BYTES
# The slots `success_results` fills, in order (machine.TxResult's fields).
RESULT_FIELDS = ("code", "log", "events", "tx_id", "recorded")

assert ENTRY_BYTES == 24 and PLAN_BYTES == 32


# --- 1. plan ----------------------------------------------------------------------
def plan_transfers(txs: Buffer, offsets: Sequence[int], eligible: Buffer,
                   address_key: Buffer) -> tuple[bytes, bytes]:
    """The accounts the block's transfers name and a record per tx: (addresses, plan).

    Tx i is txs[offsets[i]:offsets[i + 1]], and eligible[i] (n bytes) is
    nonzero if it passed its stateless checks. Each eligible, well-formed
    TRANSFER gives its sender's address (keyed BLAKE3 of its public key
    under `address_key`, first 20 bytes) a slot, then its recipient's if its
    payload is 28 bytes; slots are numbered in first-seen order and
    `addresses` is their k * 20 bytes. `plan` is n records of PLAN_BYTES;
    a tx that is not such a transfer has sender slot NO_SLOT (a run stops
    there). ValueError for malformed arguments, TypeError for non-buffers.
    """
    n = item_count(offsets)
    data = as_bytes(txs, "txs")
    flags = as_bytes(eligible, "eligible")
    key = as_bytes(address_key, "address_key")
    offs = read_offsets(offsets, n, len(data))
    if len(flags) != n:
        raise ValueError(f"eligible must be {n} bytes, got {len(flags)}")
    if len(key) != HASH_BYTES:
        raise ValueError(f"address_key must be {HASH_BYTES} bytes, got {len(key)}")
    slots: dict[bytes, int] = {}

    def slot_of(address: bytes) -> int:
        return slots.setdefault(address, len(slots))

    plan = bytearray()
    for i in range(n):
        tx = data[offs[i] : offs[i + 1]]
        if not flags[i] or wire_code(tx) != TX_OK:
            plan += _PLAN.pack(NO_SLOT, NO_SLOT, 0, 0, 0)
            continue
        chain_id_bytes = tx[1]
        tx_type = int.from_bytes(tx[2 + chain_id_bytes : 4 + chain_id_bytes], "big")
        if tx_type != TX_TYPE_TRANSFER:
            plan += _PLAN.pack(NO_SLOT, NO_SLOT, 0, 0, 0)
            continue
        sender_key = tx[4 + chain_id_bytes : 4 + chain_id_bytes + PUBLIC_KEY_BYTES]
        nonce, fee, _, payload_bytes = struct.unpack_from(">QQQI", tx, 36 + chain_id_bytes)
        sender = slot_of(digest(sender_key, key)[:ADDRESS_BYTES])
        recipient, amount = NO_SLOT, 0
        if payload_bytes == _TRANSFER.size:
            address, amount = _TRANSFER.unpack_from(tx, 64 + chain_id_bytes)
            recipient = slot_of(address)
        plan += _PLAN.pack(sender, recipient, nonce, fee, amount)
    return b"".join(slots), bytes(plan)


# --- 2. the table -----------------------------------------------------------------
def _entry(value: object) -> bytes:
    if value is None:
        return _ENTRY.pack(ENTRY_ABSENT, 0, 0, 0)
    if value.__class__ is bytes and len(value) == _ACCOUNT.size:  # type: ignore[arg-type]
        version, balance, nonce = _ACCOUNT.unpack(value)  # type: ignore[arg-type]
        if version == ACCOUNT_VERSION:
            return _ENTRY.pack(ENTRY_ACCOUNT, 0, balance, nonce)
    return _ENTRY.pack(ENTRY_UNREADABLE, 0, 0, 0)


def load_accounts(values: Sequence[bytes | None]) -> bytearray:
    """The table for the slots' current values, in slot order: None is no account, an
    account value (version 1, exactly 17 bytes, of type bytes) is read, anything else
    is unreadable (a run stops at a tx that touches it)."""
    index_in(len(values), 0, 2 * BATCH_ITEMS_MAX, "slot count")
    return bytearray(b"".join(_entry(value) for value in values))


def _slot_count(table: bytearray) -> int:
    as_writable(table, "table")
    if len(table) % ENTRY_BYTES:
        raise ValueError(f"table is {len(table)} bytes, not a multiple of {ENTRY_BYTES}")
    return len(table) // ENTRY_BYTES


def set_account(table: bytearray, slot: int, value: bytes | None) -> None:
    """Replace one slot's entry with the account's current value (read as
    `load_accounts` reads it; its dirty mark cleared)."""
    count = _slot_count(table)
    index_in(slot, 0, count - 1, "slot")
    table[slot * ENTRY_BYTES : (slot + 1) * ENTRY_BYTES] = _entry(value)


def take_dirty(table: bytearray) -> tuple[list[int], bytes]:
    """The slots changed since the last call, in slot order, and their account values
    (17 bytes each, back to back); their dirty marks are cleared."""
    count = _slot_count(table)
    slots = []
    values = bytearray()
    for slot in range(count):
        state, dirty, balance, nonce = _ENTRY.unpack_from(table, slot * ENTRY_BYTES)
        if dirty:
            slots.append(slot)
            values += _ACCOUNT.pack(ACCOUNT_VERSION, balance, nonce)
            _ENTRY.pack_into(table, slot * ENTRY_BYTES, state, 0, balance, nonce)
    return slots, bytes(values)


# --- 3. runs --------------------------------------------------------------------------
def run_transfers(plan: Buffer, table: bytearray, start: int, stop: int, fee_min: int,
                  room: int) -> tuple[int, int]:
    """Execute txs start, start + 1, … (before `stop`) while each is a transfer that
    succeeds; (the index of the first tx not executed, the fees of those executed).

    A tx is executed when, in this order: it has a sender slot, at most
    `room` txs have been executed, the sender's entry is an account, the tx's
    nonce is the account's and not 2^64 - 1, fee >= `fee_min`, the balance
    covers the fee, the payload is 28 bytes (a recipient slot), the balance
    after the fee covers the amount, the recipient's entry is an account (a
    transfer that creates one also writes its creator record, `accounts.
    apply_transfer`: the tx-by-tx path does that), its balance plus the
    amount fits a u64 (a transfer to oneself always does) and the fee sum
    stays a u64. Then the sender pays fee and amount and its nonce goes up
    by one, the recipient is credited, and both are marked dirty. ValueError for a slot past the
    table or malformed arguments.
    """
    records = as_bytes(plan, "plan")
    if len(records) % PLAN_BYTES:
        raise ValueError(f"plan is {len(records)} bytes, not a multiple of {PLAN_BYTES}")
    count = _slot_count(table)
    n = len(records) // PLAN_BYTES
    index_in(stop, 0, n, "stop")
    index_in(start, 0, stop, "start")
    index_in(fee_min, 0, U64_MAX, "fee_min")
    index_in(room, 0, BATCH_ITEMS_MAX, "room")
    fees = 0
    index = start
    while index < stop and room > 0:
        sender, recipient, nonce, fee, amount = _PLAN.unpack_from(records, index * PLAN_BYTES)
        if sender == NO_SLOT:
            break
        if sender >= count or (recipient != NO_SLOT and recipient >= count):
            raise ValueError(f"plan record {index} names a slot past the table ({count})")
        state, _, balance, account_nonce = _ENTRY.unpack_from(table, sender * ENTRY_BYTES)
        if state != ENTRY_ACCOUNT or nonce != account_nonce or account_nonce == U64_MAX:
            break
        if fee < fee_min or balance < fee or recipient == NO_SLOT or balance - fee < amount:
            break
        if recipient == sender:
            to_state, to_balance, to_nonce = state, balance - fee - amount, nonce + 1
        else:
            to_state, _, to_balance, to_nonce = _ENTRY.unpack_from(
                table, recipient * ENTRY_BYTES)
            if to_state != ENTRY_ACCOUNT:  # absent: creating it also records its creator
                break
        if to_balance + amount > U64_MAX or fees + fee > U64_MAX:
            break
        _ENTRY.pack_into(table, sender * ENTRY_BYTES, ENTRY_ACCOUNT, 1,
                         balance - fee - amount, nonce + 1)
        if recipient == sender:
            _ENTRY.pack_into(table, sender * ENTRY_BYTES, ENTRY_ACCOUNT, 1, balance - fee,
                             nonce + 1)
        else:
            _ENTRY.pack_into(table, recipient * ENTRY_BYTES, ENTRY_ACCOUNT, 1,
                             to_balance + amount, to_nonce)
        fees += fee
        room -= 1
        index += 1
    return index, fees


# --- 4. results -----------------------------------------------------------------------
def success_results(result_class: type, tx_ids: list[bytes], start: int, stop: int) -> list:
    """One `result_class` object per tx start..stop - 1, its slots RESULT_FIELDS set to
    (0, "", (), tx_ids[i], True): the result of a tx that succeeded without events.

    Made with `object.__new__` and the slots' setters (no `__init__` runs).
    """
    if not isinstance(result_class, type):
        raise TypeError(f"result_class must be a class, got {type(result_class).__name__}")
    setters = []
    for name in RESULT_FIELDS:
        descriptor = getattr(result_class, name, None)
        if type(descriptor).__name__ != "member_descriptor":
            raise TypeError(f"{result_class.__name__} has no slot {name!r}")
        setters.append(descriptor.__set__)
    if type(tx_ids) is not list:
        raise TypeError(f"tx_ids must be a list, got {type(tx_ids).__name__}")
    index_in(stop, 0, len(tx_ids), "stop")
    index_in(start, 0, stop, "start")
    set_code, set_log, set_events, set_id, set_recorded = setters
    results = []
    for index in range(start, stop):
        tx_id = tx_ids[index]
        if tx_id.__class__ is not bytes:
            raise TypeError(f"tx_ids[{index}] must be bytes, got {type(tx_id).__name__}")
        result = object.__new__(result_class)
        set_code(result, TX_OK)
        set_log(result, "")
        set_events(result, ())
        set_id(result, tx_id)
        set_recorded(result, True)
        results.append(result)
    return results


# --- 5. watched keys ----------------------------------------------------------------
def watch_keys(plan: Buffer, addresses: Buffer, prefix: Buffer) -> list[bytes | None]:
    """Per plan record: `prefix || sender address || recipient address` (bytes) when it
    names both slots, None when it does not (not a transfer, or a payload that is not
    28 bytes). `addresses` is `plan_transfers`' (20 bytes per slot). ValueError for a
    slot past `addresses`, a prefix of 0 or more than WATCH_PREFIX_BYTES_MAX bytes, or
    malformed arguments; TypeError for non-buffers.
    """
    records = as_bytes(plan, "plan")
    table = as_bytes(addresses, "addresses")
    head = as_bytes(prefix, "prefix")
    if len(records) % PLAN_BYTES:
        raise ValueError(f"plan is {len(records)} bytes, not a multiple of {PLAN_BYTES}")
    if len(table) % ADDRESS_BYTES:
        raise ValueError(f"addresses is {len(table)} bytes, not a multiple of {ADDRESS_BYTES}")
    index_in(len(head), 1, WATCH_PREFIX_BYTES_MAX, "prefix length")
    count = len(table) // ADDRESS_BYTES
    keys: list[bytes | None] = []
    for index in range(len(records) // PLAN_BYTES):
        sender, recipient = struct.unpack_from("<II", records, index * PLAN_BYTES)
        if sender == NO_SLOT or recipient == NO_SLOT:
            keys.append(None)
            continue
        if sender >= count or recipient >= count:
            raise ValueError(f"plan record {index} names a slot past the addresses ({count})")
        keys.append(head + table[sender * ADDRESS_BYTES : (sender + 1) * ADDRESS_BYTES]
                    + table[recipient * ADDRESS_BYTES : (recipient + 1) * ADDRESS_BYTES])
    return keys
