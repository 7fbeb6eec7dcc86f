# cython: language_level=3
"""Runs of TRANSFER txs over a table of prefetched accounts, in C.

Kernel of `chainmall.core.state.transfers` (same signatures, same results,
same exceptions; that module's docstring says how the state machine uses
them and why the result is exactly tx-by-tx execution). Arguments are checked
with the GIL; `plan_transfers` (parse every tx, hash the senders' public keys
into addresses with the SIMD BLAKE3 kernel, give each address a slot through
an open-addressing table) and `run_transfers` (the accounting) then run
without it and cannot fail. `success_results` makes Python objects, so it
holds the GIL and fills their slots from C (ext/_slots.pxd).

The slot table's buckets are placed by a hash seeded at random when the
module loads: recipients are addresses a tx sender picks, and a fixed hash
would let one craft a block whose addresses all collide. The seed moves only
where an address sits in the hash table, never its slot number (first-seen
order), so every output is the same on every run.

This module imports nothing from `chainmall.core`; the numbers it needs are
exported below and a test compares them with core/.
"""

import os

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from ext._batchargs cimport (
    ARGS_BATCH_ITEMS_MAX,
    alloc,
    byte_view,
    fill_offsets,
    index_in,
    item_count,
    writable_view,
)
from ext._blake3 cimport cm_blake3_hash_many_fixed
from ext._slots cimport (
    PyMemberDef,
    new_instance,
    new_instance_check,
    set_slot,
    slot_member,
    untrack,
)
from ext._wire cimport WIRE_OK, WIRE_PK, wire_be16, wire_be32, wire_be64, wire_check

# --- numbers (copies of core/constants.py and core/state/transfers.py; a test compares)
TX_TYPE_TRANSFER = 1
ADDRESS_BYTES = 20
ACCOUNT_VERSION = 1
ACCOUNT_BYTES = 17
U64_MAX = 2**64 - 1
NO_SLOT = 0xFFFFFFFF
ENTRY_ABSENT = 0
ENTRY_ACCOUNT = 1
ENTRY_UNREADABLE = 2
ENTRY_BYTES = 24
PLAN_BYTES = 32
BATCH_ITEMS_MAX = ARGS_BATCH_ITEMS_MAX
RESULT_FIELDS = ("code", "log", "events", "tx_id", "recorded")
STATE_KEY_BYTES_MAX = 128
WATCH_PREFIX_BYTES_MAX = STATE_KEY_BYTES_MAX - 2 * ADDRESS_BYTES

cdef enum:
    C_TRANSFER = 1
    C_ADDRESS = 20
    C_TRANSFER_PAYLOAD = 28     # recipient address (20) || amount u64
    C_ACCOUNT_VERSION = 1
    C_ACCOUNT = 17
    C_ENTRY = 24
    C_PLAN = 32
    C_ABSENT = 0
    C_ACCOUNT_ENTRY = 1
    C_UNREADABLE = 2

cdef uint32_t C_NO_SLOT = 0xFFFFFFFF
cdef uint64_t C_U64_MAX = 0xFFFFFFFFFFFFFFFF

# The hash table's seed (see the module docstring): where addresses sit, not their slots.
cdef uint64_t _SEED = int.from_bytes(os.urandom(8), "little")


# --- little-endian fields of table entries and plan records ------------------------
cdef inline uint64_t _le64(const unsigned char *p) noexcept nogil:
    cdef uint64_t value = 0
    cdef int k
    for k in range(7, -1, -1):
        value = (value << 8) | p[k]
    return value


cdef inline uint32_t _le32(const unsigned char *p) noexcept nogil:
    return (<uint32_t>p[0]) | ((<uint32_t>p[1]) << 8) | ((<uint32_t>p[2]) << 16) | (
        (<uint32_t>p[3]) << 24)


cdef inline void _put_le64(unsigned char *p, uint64_t value) noexcept nogil:
    cdef int k
    for k in range(8):
        p[k] = <unsigned char>(value >> (8 * k))


cdef inline void _put_le32(unsigned char *p, uint32_t value) noexcept nogil:
    cdef int k
    for k in range(4):
        p[k] = <unsigned char>(value >> (8 * k))


cdef inline void _put_be64(unsigned char *p, uint64_t value) noexcept nogil:
    cdef int k
    for k in range(8):
        p[k] = <unsigned char>(value >> (8 * (7 - k)))


cdef inline void _put_entry(unsigned char *entry, int state, int dirty, uint64_t balance,
                            uint64_t nonce) noexcept nogil:
    memset(entry, 0, C_ENTRY)
    entry[0] = <unsigned char>state
    entry[1] = <unsigned char>dirty
    _put_le64(entry + 8, balance)
    _put_le64(entry + 16, nonce)


# --- the slot table (open addressing over 20-byte addresses) -------------------------
cdef inline uint64_t _address_hash(const unsigned char *address) noexcept nogil:
    cdef uint64_t a = 0, b = 0, c = 0
    memcpy(&a, address, 8)
    memcpy(&b, address + 8, 8)
    memcpy(&c, address + 16, 4)
    cdef uint64_t h = (a ^ _SEED) * <uint64_t>0x9E3779B97F4A7C15
    h ^= h >> 32
    h = (h ^ b) * <uint64_t>0xC2B2AE3D27D4EB4F
    h ^= h >> 29
    h = (h ^ c) * <uint64_t>0x165667B19E3779F9
    h ^= h >> 32
    return h


cdef inline uint32_t _slot(const unsigned char *address, uint32_t *buckets, uint64_t mask,
                           unsigned char *addresses, uint32_t *count) noexcept nogil:
    """The slot of `address`, given the next free one if it has none yet."""
    cdef uint64_t at = _address_hash(address) & mask
    cdef uint32_t held
    while True:
        held = buckets[at]
        if held == 0:
            buckets[at] = count[0] + 1
            memcpy(addresses + C_ADDRESS * count[0], address, C_ADDRESS)
            count[0] += 1
            return count[0] - 1
        if memcmp(addresses + C_ADDRESS * (held - 1), address, C_ADDRESS) == 0:
            return held - 1
        at = (at + 1) & mask


cdef uint32_t _plan_all(const unsigned char *txs, const uint64_t *offsets, Py_ssize_t n,
                        const unsigned char *eligible, const unsigned char *key,
                        unsigned char *plan, unsigned char *keys, unsigned char *digests,
                        Py_ssize_t *senders, uint32_t *buckets, uint64_t mask,
                        unsigned char *addresses) noexcept nogil:
    """Fill `plan` (n records) and `addresses`; the number of slots.

    Scratch: keys and digests (n * 32), senders (n), buckets (mask + 1, zeroed).
    """
    cdef Py_ssize_t i, j, transfers = 0
    cdef const unsigned char *tx
    cdef size_t body_len, L, P
    cdef uint32_t count = 0, sender, recipient
    cdef unsigned char *record
    # 1. Which txs are eligible transfers; their public keys packed for one batch hash.
    for i in range(n):
        tx = txs + offsets[i]
        memset(plan + C_PLAN * i, 0, C_PLAN)
        _put_le32(plan + C_PLAN * i, C_NO_SLOT)
        _put_le32(plan + C_PLAN * i + 4, C_NO_SLOT)
        if not eligible[i]:
            continue
        if wire_check(tx, offsets[i + 1] - offsets[i], &body_len) != WIRE_OK:
            continue
        L = tx[1]
        if wire_be16(tx + 2 + L) != C_TRANSFER:
            continue
        memcpy(keys + WIRE_PK * transfers, tx + 4 + L, WIRE_PK)
        senders[transfers] = i
        transfers += 1
    if transfers:
        cm_blake3_hash_many_fixed(keys, WIRE_PK, transfers, key, digests)
    # 2. Slots in first-seen order: each transfer's sender, then its recipient.
    for j in range(transfers):
        i = senders[j]
        tx = txs + offsets[i]
        L = tx[1]
        record = plan + C_PLAN * i
        sender = _slot(digests + 32 * j, buckets, mask, addresses, &count)
        recipient = C_NO_SLOT
        P = wire_be32(tx + 60 + L)
        if P == C_TRANSFER_PAYLOAD:
            recipient = _slot(tx + 64 + L, buckets, mask, addresses, &count)
            _put_le64(record + 24, wire_be64(tx + 64 + L + C_ADDRESS))
        _put_le32(record, sender)
        _put_le32(record + 4, recipient)
        _put_le64(record + 8, wire_be64(tx + 36 + L))
        _put_le64(record + 16, wire_be64(tx + 44 + L))
    return count


cdef Py_ssize_t _run(const unsigned char *plan, unsigned char *table, uint32_t slots,
                     Py_ssize_t start, Py_ssize_t stop, uint64_t fee_min, Py_ssize_t room,
                     uint64_t *fees) noexcept nogil:
    """run_transfers' loop; the first index not executed, or -1 - index for a record
    naming a slot past the table."""
    cdef Py_ssize_t index = start
    cdef const unsigned char *record
    cdef unsigned char *source
    cdef unsigned char *target = NULL
    cdef uint32_t sender, recipient
    cdef uint64_t nonce, fee, amount, balance, account_nonce, to_balance, to_nonce
    cdef int to_state
    fees[0] = 0
    while index < stop and room > 0:
        record = plan + C_PLAN * index
        sender = _le32(record)
        recipient = _le32(record + 4)
        if sender == C_NO_SLOT:
            break
        if sender >= slots or (recipient != C_NO_SLOT and recipient >= slots):
            return -1 - index
        nonce = _le64(record + 8)
        fee = _le64(record + 16)
        amount = _le64(record + 24)
        source = table + C_ENTRY * sender
        balance = _le64(source + 8)
        account_nonce = _le64(source + 16)
        if source[0] != C_ACCOUNT_ENTRY or nonce != account_nonce or account_nonce == C_U64_MAX:
            break
        if fee < fee_min or balance < fee or recipient == C_NO_SLOT or balance - fee < amount:
            break
        if recipient == sender:
            to_balance = balance - fee - amount
            to_nonce = nonce + 1
        else:
            target = table + C_ENTRY * recipient
            to_state = target[0]
            if to_state != C_ACCOUNT_ENTRY:  # absent: creating it also records its creator
                break
            to_balance = _le64(target + 8)
            to_nonce = _le64(target + 16)
        if to_balance > C_U64_MAX - amount or fees[0] > C_U64_MAX - fee:
            break
        if recipient == sender:
            _put_entry(source, C_ACCOUNT_ENTRY, 1, balance - fee, nonce + 1)
        else:
            _put_entry(source, C_ACCOUNT_ENTRY, 1, balance - fee - amount, nonce + 1)
            _put_entry(target, C_ACCOUNT_ENTRY, 1, to_balance + amount, to_nonce)
        fees[0] += fee
        room -= 1
        index += 1
    return index


# --- argument helpers (with the GIL) -------------------------------------------------
cdef uint32_t _slot_count(unsigned char[::1] table) except? 0:
    if table.shape[0] % C_ENTRY:
        raise ValueError(f"table is {table.shape[0]} bytes, not a multiple of {C_ENTRY}")
    return <uint32_t>(table.shape[0] // C_ENTRY)


cdef void _load_entry(unsigned char *entry, object value):
    """One table entry from an account value, as core/state/transfers._entry reads it."""
    cdef const unsigned char *raw
    if value is None:
        _put_entry(entry, C_ABSENT, 0, 0, 0)
        return
    if type(value) is bytes and len(<bytes>value) == C_ACCOUNT:
        raw = <const unsigned char *>PyBytes_AS_STRING(value)
        if raw[0] == C_ACCOUNT_VERSION:
            _put_entry(entry, C_ACCOUNT_ENTRY, 0, wire_be64(raw + 1), wire_be64(raw + 9))
            return
    _put_entry(entry, C_UNREADABLE, 0, 0, 0)


# --- public API -------------------------------------------------------------------------
def plan_transfers(txs, offsets, eligible, address_key):
    """The accounts the block's transfers name and a record per tx: (addresses, plan).

    See core/state/transfers.py: slots in first-seen order (each eligible,
    well-formed TRANSFER's sender, then its recipient if the payload is 28
    bytes), `addresses` their k * 20 bytes, `plan` n records of PLAN_BYTES.
    """
    cdef Py_ssize_t n = item_count(offsets)
    cdef const unsigned char[::1] view = byte_view(txs, "txs")
    cdef const unsigned char[::1] flags = byte_view(eligible, "eligible")
    cdef const unsigned char[::1] key = byte_view(address_key, "address_key")
    cdef Py_ssize_t size = view.shape[0]
    cdef const unsigned char *data = &view[0] if size else NULL
    cdef const unsigned char *flag_ptr
    cdef uint64_t *offs = NULL
    cdef unsigned char *keys = NULL
    cdef unsigned char *digests = NULL
    cdef Py_ssize_t *senders = NULL
    cdef uint32_t *buckets = NULL
    cdef unsigned char *addresses = NULL
    cdef uint64_t capacity = 64
    cdef uint32_t count
    cdef unsigned char *plan_ptr
    cdef const unsigned char *key_ptr
    if flags.shape[0] != n:
        raise ValueError(f"eligible must be {n} bytes, got {flags.shape[0]}")
    if key.shape[0] != 32:
        raise ValueError(f"address_key must be 32 bytes, got {key.shape[0]}")
    while capacity < 4 * <uint64_t>n:   # at most 2n addresses: the table stays half empty
        capacity *= 2
    plan = PyBytes_FromStringAndSize(NULL, C_PLAN * n)
    plan_ptr = <unsigned char *>PyBytes_AS_STRING(plan)
    flag_ptr = &flags[0] if n else NULL
    key_ptr = &key[0]
    try:
        offs = <uint64_t *>alloc(sizeof(uint64_t) * (n + 1))
        fill_offsets(offsets, n, size, offs)
        keys = <unsigned char *>alloc(32 * n)
        digests = <unsigned char *>alloc(32 * n)
        senders = <Py_ssize_t *>alloc(sizeof(Py_ssize_t) * n)
        buckets = <uint32_t *>alloc(sizeof(uint32_t) * capacity)
        addresses = <unsigned char *>alloc(C_ADDRESS * 2 * n)
        with nogil:
            memset(buckets, 0, sizeof(uint32_t) * capacity)
            count = _plan_all(data, offs, n, flag_ptr, key_ptr, plan_ptr, keys, digests,
                              senders, buckets, capacity - 1, addresses)
        return PyBytes_FromStringAndSize(<const char *>addresses, C_ADDRESS * count), plan
    finally:
        PyMem_Free(offs)
        PyMem_Free(keys)
        PyMem_Free(digests)
        PyMem_Free(senders)
        PyMem_Free(buckets)
        PyMem_Free(addresses)


def load_accounts(values):
    """The table for the slots' current values, in slot order (None: no account; a
    17-byte version-1 account value of type bytes is read; anything else unreadable)."""
    cdef Py_ssize_t count = index_in(len(values), 0, 2 * ARGS_BATCH_ITEMS_MAX, "slot count")
    cdef Py_ssize_t slot
    table = bytearray(C_ENTRY * count)
    cdef unsigned char[::1] view = table
    for slot in range(count):
        _load_entry(&view[C_ENTRY * slot], values[slot])
    return table


def set_account(table, slot, value):
    """Replace one slot's entry with the account's current value (dirty mark cleared)."""
    cdef unsigned char[::1] view = writable_view(table, "table")
    cdef uint32_t count = _slot_count(view)
    cdef Py_ssize_t at = index_in(slot, 0, <Py_ssize_t>count - 1, "slot")
    _load_entry(&view[C_ENTRY * at], value)


def take_dirty(table):
    """The slots changed since the last call, in slot order, and their account values
    (17 bytes each, back to back); their dirty marks are cleared."""
    cdef unsigned char[::1] view = writable_view(table, "table")
    cdef uint32_t count = _slot_count(view)
    cdef uint32_t slot, dirty = 0
    cdef unsigned char *entry
    cdef unsigned char *out
    for slot in range(count):
        dirty += view[C_ENTRY * slot + 1] != 0
    values = PyBytes_FromStringAndSize(NULL, C_ACCOUNT * dirty)
    out = <unsigned char *>PyBytes_AS_STRING(values)
    slots = [0] * dirty
    dirty = 0
    for slot in range(count):
        entry = &view[C_ENTRY * slot]
        if entry[1]:
            entry[1] = 0
            out[0] = C_ACCOUNT_VERSION
            _put_be64(out + 1, _le64(entry + 8))
            _put_be64(out + 9, _le64(entry + 16))
            out += C_ACCOUNT
            slots[dirty] = slot
            dirty += 1
    return slots, values


def run_transfers(plan, table, start, stop, fee_min, room):
    """Execute txs start, start + 1, … (before `stop`) while each is a transfer that
    succeeds; (the index of the first tx not executed, the fees of those executed).

    The rules are core/state/transfers.py's. ValueError for a slot past the
    table or malformed arguments.
    """
    cdef const unsigned char[::1] records = byte_view(plan, "plan")
    if records.shape[0] % C_PLAN:
        raise ValueError(f"plan is {records.shape[0]} bytes, not a multiple of {C_PLAN}")
    cdef unsigned char[::1] view = writable_view(table, "table")
    cdef uint32_t count = _slot_count(view)
    cdef Py_ssize_t n = records.shape[0] // C_PLAN
    cdef Py_ssize_t last = index_in(stop, 0, n, "stop")
    cdef Py_ssize_t first = index_in(start, 0, last, "start")
    if isinstance(fee_min, bool) or not isinstance(fee_min, int):
        raise TypeError(f"fee_min must be an int, got {type(fee_min).__name__}")
    if fee_min < 0 or fee_min > U64_MAX:
        raise ValueError(f"fee_min {fee_min} is outside [0, {U64_MAX}]")
    cdef uint64_t minimum = fee_min
    cdef Py_ssize_t left = index_in(room, 0, ARGS_BATCH_ITEMS_MAX, "room")
    cdef uint64_t fees = 0
    cdef Py_ssize_t index
    cdef const unsigned char *plan_ptr = &records[0] if n else NULL
    cdef unsigned char *table_ptr = &view[0] if count else NULL
    with nogil:
        index = _run(plan_ptr, table_ptr, count, first, last, minimum, left, &fees)
    if index < 0:
        raise ValueError(f"plan record {-1 - index} names a slot past the table ({count})")
    return index, fees


def success_results(result_class, tx_ids, start, stop):
    """One `result_class` object per tx start..stop - 1, its slots RESULT_FIELDS set to
    (0, "", (), tx_ids[i], True); made without `__init__`, as the reference does."""
    if not isinstance(result_class, type):
        raise TypeError(f"result_class must be a class, got {type(result_class).__name__}")
    cdef PyMemberDef *members[5]
    cdef Py_ssize_t f
    for f in range(5):
        members[f] = slot_member(result_class, RESULT_FIELDS[f])
    new_instance_check(result_class)
    cdef bint atomic = result_class.__dictoffset__ == 0  # no __dict__: its slots are all
    if type(tx_ids) is not list:
        raise TypeError(f"tx_ids must be a list, got {type(tx_ids).__name__}")
    cdef list ids = tx_ids
    cdef Py_ssize_t last = index_in(stop, 0, len(ids), "stop")
    cdef Py_ssize_t first = index_in(start, 0, last, "start")
    cdef Py_ssize_t index
    results = [None] * (last - first)
    empty = ()
    for index in range(first, last):
        tx_id = ids[index]
        if type(tx_id) is not bytes:
            raise TypeError(f"tx_ids[{index}] must be bytes, got {type(tx_id).__name__}")
        result = new_instance(result_class)
        set_slot(result, members[0], 0)
        set_slot(result, members[1], "")
        set_slot(result, members[2], empty)
        set_slot(result, members[3], tx_id)
        set_slot(result, members[4], True)
        if atomic:
            untrack(result)  # atomic fields and the empty tuple: never in a cycle
        results[index - first] = result
    return results


def watch_keys(plan, addresses, prefix):
    """Per plan record: `prefix || sender address || recipient address` (bytes) when it
    names both slots, None when it does not (core/state/transfers.py)."""
    cdef const unsigned char[::1] records = byte_view(plan, "plan")
    cdef const unsigned char[::1] table = byte_view(addresses, "addresses")
    cdef const unsigned char[::1] head = byte_view(prefix, "prefix")
    if records.shape[0] % C_PLAN:
        raise ValueError(f"plan is {records.shape[0]} bytes, not a multiple of {C_PLAN}")
    if table.shape[0] % C_ADDRESS:
        raise ValueError(f"addresses is {table.shape[0]} bytes, not a multiple of "
                         f"{C_ADDRESS}")
    cdef Py_ssize_t head_len = index_in(head.shape[0], 1, WATCH_PREFIX_BYTES_MAX,
                                        "prefix length")
    cdef Py_ssize_t count = table.shape[0] // C_ADDRESS
    cdef Py_ssize_t n = records.shape[0] // C_PLAN
    cdef Py_ssize_t index
    cdef uint32_t sender, recipient
    cdef const unsigned char *record
    cdef unsigned char *out
    keys = [None] * n
    for index in range(n):
        record = &records[C_PLAN * index]
        sender = _le32(record)
        recipient = _le32(record + 4)
        if sender == C_NO_SLOT or recipient == C_NO_SLOT:
            continue
        if sender >= count or recipient >= count:
            raise ValueError(f"plan record {index} names a slot past the addresses ({count})")
        key = PyBytes_FromStringAndSize(NULL, head_len + 2 * C_ADDRESS)
        out = <unsigned char *>PyBytes_AS_STRING(key)
        memcpy(out, &head[0], head_len)
        memcpy(out + head_len, &table[C_ADDRESS * sender], C_ADDRESS)
        memcpy(out + head_len + C_ADDRESS, &table[C_ADDRESS * recipient], C_ADDRESS)
        keys[index] = key
    return keys


def describe() -> str:
    """One line for `doctor`."""
    return "runs of transfers executed in C over prefetched accounts"
