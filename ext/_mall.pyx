# cython: language_level=3
"""The mall's orders, escrow steps and trace events in C: ORDER_PLACE, HANDOVER_PROPOSE,
HANDOVER_ACCEPT, ESCROW_DELIVER, ESCROW_CONFIRM and TRACE_RECORD (ObjectEvent OBSERVE by
item ids).

Kernel of `chainmall.core.mall.orders.place`, `chainmall.core.mall.custody.propose`,
`chainmall.core.mall.custody.accept`,
`chainmall.core.mall.escrow.deliver`, `chainmall.core.mall.escrow.confirm` and
`chainmall.core.mall.trace.record` (the references; `core/mall/native.py` chooses). Each handler has the
reference's signature `(state, ctx, mall)` and does the same thing: the same
reads, the same writes in the same order, the same events, the same bytes.

How it stays exact: a kernel handler first reads and checks everything its
success path needs (the payload's layout and text rules, the records it
reads, the event not recorded yet, the escrow's deadline entry there) and
builds every value in C (the event's canonical payload, its keyed BLAKE3 id,
the stored record, the item's next history hash, the new item and escrow
bytes). Only then does it write. Anything it does not take on (a check that
fails, a packed item, a record that does not decode, a number out of range)
sends the tx to the reference before any write, so every error, with its code
and message, is the reference's own. Records with text fields (items, orders,
parties) are checked by the references' decoders (their caches make that a
lookup); fixed-width ones (hand-overs, escrows) are read here at their offsets.

This module imports nothing from `chainmall.core`: `configure` hands it the
references, the decoders, the ABCI event type, the address text and the
vocabularies, and the numbers it needs are copied below (a test compares
them with core/).
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from ext._blake3 cimport cm_blake3_hash

# --- numbers (copies of core/constants.py and core/mall/*; a test compares) -------------
MALL_VERSION = 1
ADDRESS_BYTES = 20
HASH_BYTES = 32
EPCIS_URI_BYTES_MAX = 128
TX_PAYLOAD_BYTES_MAX = 896
TZ_OFFSET_BIAS = 840
TABLE_MALL_PARTIES = 0x10
TABLE_MALL_ITEMS = 0x17
TABLE_MALL_ITEM_EVENTS = 0x18
TABLE_MALL_EVENTS = 0x19
TABLE_MALL_HANDOVERS = 0x1B
TABLE_MALL_ORDERS = 0x1C
TABLE_MALL_ESCROWS = 0x1D
TABLE_MALL_DEADLINES = 0x21
DEADLINE_ESCROW = 1
ROLE_CARRIER = 1 << 4
ITEM_INSTANCE = 1
ITEM_CLASS = 2
KIND_OBJECT = 1
ACTION_OBSERVE = 2
ESCROW_FUNDED = 1
ESCROW_SHIPPED = 2
ESCROW_DELIVERED = 3
ESCROW_STATES = 7  # states 1..7
CLOSE_REASONS = 8  # reasons 0..7, 0 while open
OPEN_STATES = (1, 2, 3, 4)
HANDOVER_BYTES = 93  # _HANDOVER: version, proposer, order id, height, tx id
ESCROW_BYTES = 123  # _ESCROW
ITEM_HEAD_BYTES = 99  # _ITEM, then the uri (u8 length)
RECORD_HEAD_BYTES = 69  # _RECORD: version, height, block time, tx id, recorder
TX_URI_PREFIX = "urn:chainmall:tx:"
ORDER_URI_PREFIX = "urn:chainmall:order:"
PARTY_URI_PREFIX = "urn:chainmall:party:"
URI_CHARS = (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
             b"-._~:/?#[]@!$&'()*+,;=%")
SCHEME_FIRST = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
SCHEME_REST = SCHEME_FIRST + b"0123456789+.-"

cdef enum:
    C_VERSION = 1
    C_ADDRESS = 20
    C_HASH = 32
    C_URI_MAX = 128
    C_PAYLOAD_MAX = 896
    C_TZ_MAX = 1680  # 2 * TZ_OFFSET_BIAS
    C_HANDOVER = 93
    C_ESCROW = 123
    C_ITEM_HEAD = 99
    C_RECORD_HEAD = 69
    C_EVENT_MAX = 2048  # an event built here: 15 + 9 fields of at most 1 + 128 bytes
    C_ROLE_CARRIER = 16
    C_CLASS = 2
    C_FUNDED = 1
    C_SHIPPED = 2
    C_DELIVERED = 3

# Escrow offsets (_ESCROW = ">BBQQ32sQQQQBQQQQQ").
cdef enum:
    E_STATE = 1
    E_DEADLINE = 10
    E_ITEM = 18
    E_SHIPPED = 50
    E_DELIVERED = 58
    E_REASON = 82
# Item offsets (_ITEM = ">BB20s32sQIB32s", then u8 length and the uri).
cdef enum:
    I_KIND = 1
    I_HOLDER = 2
    I_PARENT = 22
    I_COUNT = 62
    I_HISTORY = 67
    I_URI = 99

cdef uint64_t C_U64_MAX = 0xFFFFFFFFFFFFFFFF
cdef uint8_t _ZEROS[32]
memset(_ZEROS, 0, 32)
cdef uint8_t _URI_OK[256]
cdef uint8_t _SCHEME_FIRST_OK[256]
cdef uint8_t _SCHEME_REST_OK[256]


cdef void _table(uint8_t *table, bytes chars):
    cdef Py_ssize_t i
    memset(table, 0, 256)
    for i in range(len(chars)):
        table[<uint8_t>chars[i]] = 1


_table(_URI_OK, URI_CHARS)
_table(_SCHEME_FIRST_OK, SCHEME_FIRST)
_table(_SCHEME_REST_OK, SCHEME_REST)

# --- what `configure` sets --------------------------------------------------------------
cdef bint _configured = False
cdef uint8_t _event_id_key[32]
cdef uint8_t _history_key[32]
cdef uint8_t _accept_step_ok[256]  # bizStep codes an acceptance may carry
cdef int _dispositions = 0  # disposition codes 1.._dispositions
cdef uint8_t _code_arriving = 0
cdef uint8_t _code_in_progress = 0
cdef uint8_t _code_po = 0
cdef uint8_t _code_possessing = 0
cdef object _Event = None
cdef object _address_text = None
cdef object _decode_item = None
cdef object _decode_order = None
cdef object _decode_party = None
cdef object _accept_reference = None
cdef object _deliver_reference = None
cdef object _confirm_reference = None
cdef object _place_reference = None
cdef object _record_reference = None
cdef object _propose_reference = None
cdef uint8_t _item_key_key[32]
cdef int _biz_steps = 0  # bizStep codes 1.._biz_steps
cdef int _step_roles[256]  # roles that may record a bizStep (code 0: none named)
cdef bint _step_custody[256]  # whether its recorder must hold the items
cdef object _decode_product = None
cdef str _released_name = ""
cdef str _confirmed_name = ""
cdef str _object_event_name = ""
cdef str _shipped_name = ""
cdef str _delivered_name = ""


def configure(*, event_id_key, history_key, item_key_key, event_type, address_text, decode_item,
              decode_order, decode_party, biz_steps, accept_steps, dispositions,
              biz_transaction_types, source_types, kind_names, state_names, close_names,
              decode_product, step_rules, accept_reference, deliver_reference,
              confirm_reference, place_reference, record_reference, propose_reference):
    """Hand the kernel what it takes from core/ (done once, by `core/mall/native.py`).

    `biz_steps`, `dispositions`, `biz_transaction_types` and `source_types` are the
    vocabularies (a word's code is its index + 1); `accept_steps` the bizSteps an
    acceptance may name; `step_rules` the (roles, custody) rule of each bizStep code, code
    0 for an event without one; `kind_names` and `state_names` the event kinds' and escrow
    states' and close reasons' names; the references run every tx the kernel hands back.
    """
    global _configured, _dispositions, _code_arriving, _code_in_progress, _code_po
    global _code_possessing, _Event, _address_text, _decode_item, _decode_order
    global _decode_party, _accept_reference, _deliver_reference, _object_event_name
    global _shipped_name, _delivered_name, _confirm_reference, _released_name
    global _confirmed_name, _place_reference, _decode_product, _record_reference
    global _biz_steps, _propose_reference
    if len(event_id_key) != 32 or len(history_key) != 32 or len(item_key_key) != 32:
        raise ValueError("a BLAKE3 key is 32 bytes")
    if sorted(step_rules) != list(range(len(biz_steps) + 1)):
        raise ValueError("step_rules needs a rule for every bizStep code and for 0")
    if len(biz_steps) > 255 or len(dispositions) > 255:
        raise ValueError("a vocabulary has at most 255 words")
    memcpy(_event_id_key, PyBytes_AS_STRING(bytes(event_id_key)), 32)
    memcpy(_history_key, PyBytes_AS_STRING(bytes(history_key)), 32)
    memcpy(_item_key_key, PyBytes_AS_STRING(bytes(item_key_key)), 32)
    memset(_step_roles, 0, sizeof(_step_roles))
    memset(_step_custody, 0, sizeof(_step_custody))
    for code, (roles, custody) in step_rules.items():
        _step_roles[code] = roles
        _step_custody[code] = bool(custody)
    _biz_steps = len(biz_steps)
    memset(_accept_step_ok, 0, 256)
    for step in accept_steps:
        _accept_step_ok[list(biz_steps).index(step) + 1] = 1
    _dispositions = len(dispositions)
    _code_arriving = list(biz_steps).index("arriving") + 1
    _code_in_progress = list(dispositions).index("in_progress") + 1
    _code_po = list(biz_transaction_types).index("po") + 1
    _code_possessing = list(source_types).index("possessing_party") + 1
    _Event = event_type
    _address_text = address_text
    _decode_item = decode_item
    _decode_order = decode_order
    _decode_party = decode_party
    _accept_reference = accept_reference
    _deliver_reference = deliver_reference
    _object_event_name = kind_names[KIND_OBJECT]
    _shipped_name = state_names[ESCROW_SHIPPED]
    _delivered_name = state_names[ESCROW_DELIVERED]
    _released_name = state_names[ESCROW_RELEASED]
    _confirmed_name = close_names[CLOSE_CONFIRMED]
    _confirm_reference = confirm_reference
    _place_reference = place_reference
    _record_reference = record_reference
    _propose_reference = propose_reference
    _decode_product = decode_product
    _configured = True


def describe():
    """One line for `chainmall doctor`."""
    return ("ORDER_PLACE, HANDOVER_PROPOSE, HANDOVER_ACCEPT, ESCROW_DELIVER, ESCROW_CONFIRM "
            "and TRACE_RECORD (ObjectEvent OBSERVE by item ids) in C; any other case through the Python "
            "reference")


def configured():
    """Whether `configure` has run."""
    return _configured


cdef Py_ssize_t _in_c = 0
cdef Py_ssize_t _handed_back = 0


def counts():
    """(txs done in C, txs handed to the reference) since the module loaded (tests show
    with it that both paths ran)."""
    return _in_c, _handed_back


cdef inline void _require_configured() except *:
    if not _configured:
        raise RuntimeError("chainmall.ext._mall is not configured")


cdef void _settle(bint done_in_c, object reference, tuple args) except *:
    """Count a tx done in C, or hand it to its pure-Python reference (which applies it
    whole: the C path wrote nothing when it declines)."""
    global _in_c, _handed_back
    if done_in_c:
        _in_c += 1
    else:
        _handed_back += 1
        reference(*args)


# --- small helpers ----------------------------------------------------------------------

cdef inline uint64_t _be64(const uint8_t *p) noexcept nogil:
    return ((<uint64_t>p[0] << 56) | (<uint64_t>p[1] << 48) | (<uint64_t>p[2] << 40)
            | (<uint64_t>p[3] << 32) | (<uint64_t>p[4] << 24) | (<uint64_t>p[5] << 16)
            | (<uint64_t>p[6] << 8) | <uint64_t>p[7])


cdef inline uint32_t _be32(const uint8_t *p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16) | (<uint32_t>p[2] << 8)
            | <uint32_t>p[3])


cdef inline void _put64(uint8_t *p, uint64_t v) noexcept nogil:
    cdef int i
    for i in range(8):
        p[7 - i] = <uint8_t>(v & 0xFF)
        v >>= 8


cdef inline void _put32(uint8_t *p, uint32_t v) noexcept nogil:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t>v


cdef bint _uri_ok(const uint8_t *p, Py_ssize_t n) noexcept nogil:
    """`core.mall.codec.check_uri` of a non-empty field's bytes (every URI character is
    ASCII, so bytes that pass are valid UTF-8 too)."""
    cdef Py_ssize_t i, colon = -1
    for i in range(n):
        if not _URI_OK[p[i]]:
            return False
        if colon < 0 and p[i] == 58:  # ':'
            colon = i
    if colon < 1 or colon == n - 1 or not _SCHEME_FIRST_OK[p[0]]:
        return False
    for i in range(1, colon):
        if not _SCHEME_REST_OK[p[i]]:
            return False
    return True


cdef inline Py_ssize_t _put_text(uint8_t *out, Py_ssize_t pos, const uint8_t *text,
                                 Py_ssize_t n) noexcept nogil:
    out[pos] = <uint8_t>n
    memcpy(out + pos + 1, text, n)
    return pos + 1 + n


cdef bytes _party_uri(bytes address):
    """`core.mall.items.party_uri` as bytes."""
    return (PARTY_URI_PREFIX + _address_text(address)).encode("ascii")


cdef inline bytes _cat(uint8_t table, bytes a, bytes b):
    """`bytes([table]) + a + b`."""
    cdef Py_ssize_t la = PyBytes_GET_SIZE(a), lb = PyBytes_GET_SIZE(b)
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 1 + la + lb)
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
    p[0] = table
    memcpy(p + 1, PyBytes_AS_STRING(a), la)
    memcpy(p + 1 + la, PyBytes_AS_STRING(b), lb)
    return out


cdef bytes _deadline_key(uint64_t due_ms, const uint8_t *order_id):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 1 + 8 + 1 + C_HASH)
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
    p[0] = TABLE_MALL_DEADLINES
    _put64(p + 1, due_ms)
    p[9] = DEADLINE_ESCROW
    memcpy(p + 10, order_id, C_HASH)
    return out


cdef bint _escrow_ok(object raw):
    """`decode_escrow` would accept `raw` (fixed width: checked here)."""
    if type(raw) is not bytes or PyBytes_GET_SIZE(raw) != C_ESCROW:
        return False
    cdef const uint8_t *p = <const uint8_t *>PyBytes_AS_STRING(raw)
    cdef uint8_t state = p[E_STATE], reason = p[E_REASON]
    if p[0] != C_VERSION or state < 1 or state > ESCROW_STATES or reason >= CLOSE_REASONS:
        return False
    return (1 <= state <= 4) == (reason == 0)


cdef class _Recorded:
    """What `_record` built for one event: its id, key, stored record, and the item's
    index entry and new value."""

    cdef bytes event_id
    cdef bytes event_key
    cdef bytes record
    cdef bytes index_key
    cdef bytes index_value
    cdef bytes item_value
    cdef uint8_t record_hash[32]


cdef _Recorded _record(object state, object ctx, bytes recorder, const uint8_t *event,
                       Py_ssize_t event_len, bytes item_key, bytes item_raw,
                       const uint8_t *new_holder):
    """`trace.record_event` for one item, built but not written; None where the reference
    must run (the event is recorded already, a number out of range)."""
    if _be32(<const uint8_t *>PyBytes_AS_STRING(item_raw) + I_COUNT) == 0xFFFFFFFF:
        return None
    cdef _Recorded out = _new_record(state, ctx, recorder, event, event_len)
    if out is not None:
        _append(out, item_key, item_raw, new_holder)
    return out


cdef _Recorded _new_record(object state, object ctx, bytes recorder, const uint8_t *event,
                           Py_ssize_t event_len):
    """The event's id, key and stored record (`trace.record_event`), after reading that it
    is not recorded yet; None where the reference must run."""
    cdef uint8_t hashed[C_ADDRESS + C_EVENT_MAX]
    cdef _Recorded out = _Recorded.__new__(_Recorded)
    cdef object height = ctx.height, time_ms = ctx.timestamp_ms
    cdef bytes tx_id = ctx.tx.tx_id
    cdef uint8_t *p
    if event_len > C_PAYLOAD_MAX:
        return None
    if type(tx_id) is not bytes or PyBytes_GET_SIZE(tx_id) != C_HASH:
        return None
    if not (0 <= height <= C_U64_MAX and 0 <= time_ms <= C_U64_MAX):
        return None
    memcpy(hashed, PyBytes_AS_STRING(recorder), C_ADDRESS)
    memcpy(hashed + C_ADDRESS, event, event_len)
    out.event_id = PyBytes_FromStringAndSize(NULL, C_HASH)
    cm_blake3_hash(hashed, C_ADDRESS + event_len, _event_id_key,
                   <uint8_t *>PyBytes_AS_STRING(out.event_id))
    out.event_key = _cat(TABLE_MALL_EVENTS, out.event_id, b"")
    if state.get(out.event_key) is not None:
        return None  # EventExists: the reference says so
    # The stored record: _RECORD head, u16 length, the payload.
    out.record = PyBytes_FromStringAndSize(NULL, C_RECORD_HEAD + 2 + event_len)
    p = <uint8_t *>PyBytes_AS_STRING(out.record)
    p[0] = C_VERSION
    _put64(p + 1, <uint64_t>height)
    _put64(p + 9, <uint64_t>time_ms)
    memcpy(p + 17, PyBytes_AS_STRING(tx_id), C_HASH)
    memcpy(p + 49, PyBytes_AS_STRING(recorder), C_ADDRESS)
    p[69] = <uint8_t>(event_len >> 8)
    p[70] = <uint8_t>event_len
    memcpy(p + 71, event, event_len)
    cm_blake3_hash(p, C_RECORD_HEAD + 2 + event_len, NULL, out.record_hash)
    return out


cdef void _append(_Recorded rec, bytes item_key, bytes item_raw,
                  const uint8_t *new_holder) except *:
    """`items.append_index` of the event in `rec` to one item (its value `item_raw`, whose
    event count is below the u32 limit): the index entry and the item's new value, into
    `rec`."""
    cdef uint8_t chain[64]
    cdef const uint8_t *item = <const uint8_t *>PyBytes_AS_STRING(item_raw)
    cdef uint32_t count = _be32(item + I_COUNT)
    cdef uint8_t *p
    # The history hash after it: keyed BLAKE3(history || BLAKE3(record)).
    memcpy(chain, item + I_HISTORY, C_HASH)
    memcpy(chain + C_HASH, rec.record_hash, C_HASH)
    rec.index_value = PyBytes_FromStringAndSize(NULL, 1 + 2 * C_HASH)
    p = <uint8_t *>PyBytes_AS_STRING(rec.index_value)
    p[0] = C_VERSION
    memcpy(p + 1, PyBytes_AS_STRING(rec.event_id), C_HASH)
    cm_blake3_hash(chain, 64, _history_key, p + 1 + C_HASH)
    rec.index_key = PyBytes_FromStringAndSize(NULL, 1 + C_HASH + 4)
    p = <uint8_t *>PyBytes_AS_STRING(rec.index_key)
    p[0] = TABLE_MALL_ITEM_EVENTS
    memcpy(p + 1, PyBytes_AS_STRING(item_key), C_HASH)
    _put32(p + 1 + C_HASH, count)
    # The item: holder (if it changes hands), event count + 1, the new history.
    rec.item_value = PyBytes_FromStringAndSize(PyBytes_AS_STRING(item_raw),
                                               PyBytes_GET_SIZE(item_raw))
    p = <uint8_t *>PyBytes_AS_STRING(rec.item_value)
    if new_holder != NULL:
        memcpy(p + I_HOLDER, new_holder, C_ADDRESS)
    _put32(p + I_COUNT, count + 1)
    memcpy(p + I_HISTORY, PyBytes_AS_STRING(rec.index_value) + 1 + C_HASH, C_HASH)


cdef void _write_record(object state, object ctx, _Recorded rec, bytes recorder,
                        bytes item_key) except *:
    """The writes and the event of `trace.record_event`, in its order."""
    state.set(rec.event_key, rec.record)
    state.set(rec.index_key, rec.index_value)
    state.set(_cat(TABLE_MALL_ITEMS, item_key, b""), rec.item_value)
    ctx.events.append(_Event("mall.trace", (
        ("event", rec.event_id.hex()), ("recorder", _address_text(recorder)),
        ("kind", _object_event_name))))


cdef class _Move:
    """An escrow move built by `_plan_move`: the deadline entries and the new value."""

    cdef bytes old_deadline  # None if the escrow had none
    cdef bytes new_deadline  # None if the new state has none
    cdef bytes escrow_key
    cdef bytes value
    cdef str state_name


cdef _Move _plan_move(object state, bytes order_id, bytes escrow_raw, uint8_t to_state,
                      object due_ms, const uint8_t *item_key, object shipped_ms,
                      object delivered_ms):
    """`escrow.move` built but not written (`item_key`, `shipped_ms`, `delivered_ms`: the
    fields that change, NULL/None if not); None where the reference must run."""
    cdef const uint8_t *old = <const uint8_t *>PyBytes_AS_STRING(escrow_raw)
    cdef const uint8_t *oid = <const uint8_t *>PyBytes_AS_STRING(order_id)
    cdef uint64_t old_due = _be64(old + E_DEADLINE)
    cdef _Move out = _Move.__new__(_Move)
    cdef uint8_t *p
    if not 0 <= due_ms <= C_U64_MAX:
        return None
    for value in (shipped_ms, delivered_ms):
        if value is not None and not 0 <= value <= C_U64_MAX:
            return None
    if old_due:
        out.old_deadline = _deadline_key(old_due, oid)
        if state.get(out.old_deadline) is None:
            return None  # a broken invariant: the reference raises it
    if due_ms:
        out.new_deadline = _deadline_key(<uint64_t>due_ms, oid)
    out.escrow_key = _cat(TABLE_MALL_ESCROWS, order_id, b"")
    out.value = PyBytes_FromStringAndSize(<const char *>old, C_ESCROW)
    p = <uint8_t *>PyBytes_AS_STRING(out.value)
    p[E_STATE] = to_state
    _put64(p + E_DEADLINE, <uint64_t>due_ms)
    if item_key != NULL:
        memcpy(p + E_ITEM, item_key, C_HASH)
    if shipped_ms is not None:
        _put64(p + E_SHIPPED, <uint64_t>shipped_ms)
    if delivered_ms is not None:
        _put64(p + E_DELIVERED, <uint64_t>delivered_ms)
    out.state_name = _shipped_name if to_state == C_SHIPPED else _delivered_name
    return out


cdef void _write_move(object state, object ctx, _Move move, bytes order_id) except *:
    """The writes and the event of `escrow.move`, in its order."""
    if move.old_deadline is not None:
        state.delete(move.old_deadline)
    if move.new_deadline is not None:
        state.set(move.new_deadline, b"\x01")
    state.set(move.escrow_key, move.value)
    ctx.events.append(_Event("mall.escrow", (("order", order_id.hex()),
                                             ("state", move.state_name))))


cdef object _load(object state, uint8_t table, bytes key, object decode):
    """The value under `table || key` if it is there and `decode` accepts it; else None."""
    raw = state.get(_cat(table, key, b""))
    if raw is None or type(raw) is not bytes:
        return None
    try:
        decode(raw)
    except Exception:
        return None
    return raw


cdef inline bint _unpacked_and_held_by(object item_raw, object holder):
    """Whether the item record `item_raw` is in no container (parent zero) and its holder
    is `holder` (20 bytes): a packed item's custody is its container's, which the
    reference walks, so the native paths leave it to the reference."""
    cdef const uint8_t *item = <const uint8_t *>PyBytes_AS_STRING(item_raw)
    return memcmp(item + I_PARENT, _ZEROS, C_HASH) == 0 and \
        memcmp(item + I_HOLDER, PyBytes_AS_STRING(holder), C_ADDRESS) == 0


cdef object _unpacked_item_held_by(object state, bytes item_key, object holder):
    """The item record under `item_key` if it decodes, is unpacked and `holder` holds it
    (`_unpacked_and_held_by`); else None."""
    item_raw = _load(state, TABLE_MALL_ITEMS, item_key, _decode_item)
    if item_raw is None or not _unpacked_and_held_by(item_raw, holder):
        return None
    return item_raw


cdef object _decoded(object decode, object raw):
    try:
        return decode(raw)
    except Exception:
        return None


cdef Py_ssize_t _put_item_ids(uint8_t *out, Py_ssize_t pos, const uint8_t *item) noexcept:
    """The event's epcs and quantities naming the item: an instance in epcs, a class as a
    quantity without an amount."""
    cdef Py_ssize_t uri_len = item[I_URI]
    if item[I_KIND] == C_CLASS:
        out[pos] = 0
        out[pos + 1] = 1
        pos = _put_text(out, pos + 2, item + I_URI + 1, uri_len)
        out[pos] = 0  # no quantity
        return pos + 1
    out[pos] = 1
    pos = _put_text(out, pos + 1, item + I_URI + 1, uri_len)
    out[pos] = 0  # no quantities
    return pos + 1


# --- HANDOVER_ACCEPT --------------------------------------------------------------------

def accept(state, ctx, mall):
    """HANDOVER_ACCEPT (docs/mall.md 7.2): `custody.accept`, in C where it can."""
    _require_configured()
    _settle(_accept(state, ctx, mall), _accept_reference, (state, ctx, mall))


cdef bint _accept(object state, object ctx, object mall) except -1:
    cdef object payload = ctx.tx.payload
    cdef object receiver = ctx.sender
    cdef const uint8_t *p
    cdef const uint8_t *read_point
    cdef const uint8_t *location
    cdef const uint8_t *item
    cdef Py_ssize_t n, pos, read_len, location_len
    cdef uint8_t event[C_EVENT_MAX]
    cdef Py_ssize_t e
    cdef bint linked
    cdef _Recorded rec
    cdef _Move move = None
    if type(payload) is not bytes or type(receiver) is not bytes \
            or PyBytes_GET_SIZE(receiver) != C_ADDRESS:
        return False
    # The payload (decode_acceptance): version, item key, time u64, tz u16, bizStep,
    # disposition, read point, business location; consumed exactly.
    n = PyBytes_GET_SIZE(payload)
    p = <const uint8_t *>PyBytes_AS_STRING(payload)
    if n < 47 or p[0] != C_VERSION or ((p[41] << 8) | p[42]) > C_TZ_MAX:
        return False
    if not _accept_step_ok[p[43]] or p[44] > _dispositions:
        return False
    read_len = p[45]
    pos = 46 + read_len
    if read_len > C_URI_MAX or pos >= n:
        return False
    read_point = p + 46
    location_len = p[pos]
    location = p + pos + 1
    if location_len > C_URI_MAX or pos + 1 + location_len != n:
        return False
    if (read_len and not _uri_ok(read_point, read_len)) or \
            (location_len and not _uri_ok(location, location_len)):
        return False
    item_key = (<bytes>payload)[1:33]
    # The open proposal and the item, which its proposer must still hold, unpacked.
    handover = state.get(_cat(TABLE_MALL_HANDOVERS, item_key, receiver))
    if handover is None or type(handover) is not bytes or \
            PyBytes_GET_SIZE(handover) != C_HANDOVER or \
            (<const uint8_t *>PyBytes_AS_STRING(handover))[0] != C_VERSION:
        return False
    proposer = (<bytes>handover)[1:21]
    order_id = (<bytes>handover)[21:53]
    item_raw = _unpacked_item_held_by(state, item_key, proposer)
    if item_raw is None:
        return False
    item = <const uint8_t *>PyBytes_AS_STRING(item_raw)
    linked = memcmp(PyBytes_AS_STRING(order_id), _ZEROS, C_HASH) != 0
    # The ObjectEvent OBSERVE (events.handover_event, encoded as TraceEvent.encode does).
    tx_link = (TX_URI_PREFIX + (<bytes>handover)[61:93].hex()).encode("ascii")
    order_link = (ORDER_URI_PREFIX + order_id.hex()).encode("ascii") if linked else b""
    source = _party_uri(proposer)
    destination = _party_uri(receiver)
    if PyBytes_GET_SIZE(source) > C_URI_MAX or PyBytes_GET_SIZE(destination) > C_URI_MAX:
        return False
    event[0] = C_VERSION
    event[1] = KIND_OBJECT
    event[2] = ACTION_OBSERVE
    memcpy(event + 3, p + 33, 8 + 2 + 1 + 1)  # time, tz (biased as stored), bizStep, disp.
    e = _put_text(event, 15, read_point, read_len)
    e = _put_text(event, e, location, location_len)
    event[e] = 0  # no parent
    e = _put_item_ids(event, e + 1, item)
    event[e] = 0  # no output epcs
    event[e + 1] = 0  # no output quantities
    event[e + 2] = 2 if linked else 1
    event[e + 3] = 0  # the proposal tx: no link type
    e = _put_text(event, e + 4, <const uint8_t *>PyBytes_AS_STRING(tx_link),
                  PyBytes_GET_SIZE(tx_link))
    if linked:
        event[e] = _code_po
        e = _put_text(event, e + 1, <const uint8_t *>PyBytes_AS_STRING(order_link),
                      PyBytes_GET_SIZE(order_link))
    event[e] = 1
    event[e + 1] = _code_possessing
    e = _put_text(event, e + 2, <const uint8_t *>PyBytes_AS_STRING(source),
                  PyBytes_GET_SIZE(source))
    event[e] = 1
    event[e + 1] = _code_possessing
    e = _put_text(event, e + 2, <const uint8_t *>PyBytes_AS_STRING(destination),
                  PyBytes_GET_SIZE(destination))
    event[e] = 0  # no lot data
    event[e + 1] = 0  # no certification
    e += 2
    rec = _record(state, ctx, receiver, event, e, item_key, item_raw,
                  <const uint8_t *>PyBytes_AS_STRING(receiver))
    if rec is None:
        return False
    if linked:  # escrow.on_handover: ship or deliver the order
        order_raw = _load(state, TABLE_MALL_ORDERS, order_id, _decode_order)
        if order_raw is None:
            return False
        order = _decode_order(order_raw)
        escrow_raw = state.get(_cat(TABLE_MALL_ESCROWS, order_id, b""))
        if not _escrow_ok(escrow_raw):
            return False
        escrow_state = (<const uint8_t *>PyBytes_AS_STRING(escrow_raw))[E_STATE]
        now = ctx.timestamp_ms
        params = mall.params
        if escrow_state == C_FUNDED and proposer == order.merchant:
            if receiver == order.buyer:
                move = _plan_move(state, order_id, escrow_raw, C_DELIVERED,
                                  now + params.confirm_timeout_ms, <const uint8_t *>PyBytes_AS_STRING(item_key),
                                  now, now)
                if move is None:
                    return False
            else:
                party_raw = state.get(_cat(TABLE_MALL_PARTIES, receiver, b""))
                if party_raw is not None:
                    carrier = _decoded(_decode_party, party_raw)
                    if carrier is None:
                        return False
                    if carrier.roles & C_ROLE_CARRIER:
                        move = _plan_move(state, order_id, escrow_raw, C_SHIPPED,
                                          now + params.delivery_timeout_ms,
                                          <const uint8_t *>PyBytes_AS_STRING(item_key), now, None)
                        if move is None:
                            return False
        elif escrow_state == C_SHIPPED and receiver == order.buyer and \
                memcmp(PyBytes_AS_STRING(escrow_raw) + E_ITEM, <const uint8_t *>PyBytes_AS_STRING(item_key),
                       C_HASH) == 0:
            move = _plan_move(state, order_id, escrow_raw, C_DELIVERED,
                              now + params.confirm_timeout_ms, NULL, None, now)
            if move is None:
                return False
    # Everything checked and built: the writes, in the reference's order.
    state.delete(_cat(TABLE_MALL_HANDOVERS, item_key, receiver))
    _write_record(state, ctx, rec, receiver, item_key)
    if move is not None:
        _write_move(state, ctx, move, order_id)
    ctx.events.append(_Event("mall.handover", (
        ("item", item_key.hex()), ("from", _address_text(proposer)),
        ("to", _address_text(receiver)), ("state", "accepted"))))
    return True


# --- HANDOVER_PROPOSE -------------------------------------------------------------------

def propose(state, ctx, mall):
    """HANDOVER_PROPOSE (docs/mall.md 7.1): `custody.propose`, in C where it can."""
    _require_configured()
    _settle(_propose(state, ctx), _propose_reference, (state, ctx, mall))


cdef bint _propose(object state, object ctx) except -1:
    cdef object payload = ctx.tx.payload
    cdef object sender = ctx.sender
    cdef object tx_id = ctx.tx.tx_id
    cdef object height = ctx.height
    cdef uint8_t *out
    if type(payload) is not bytes or type(sender) is not bytes \
            or PyBytes_GET_SIZE(sender) != C_ADDRESS or type(tx_id) is not bytes \
            or PyBytes_GET_SIZE(tx_id) != C_HASH or type(height) is not int \
            or not 0 <= height <= C_U64_MAX:
        return False
    # The payload (decode_proposal): version, item key, receiver, order id; exactly.
    if PyBytes_GET_SIZE(payload) != 1 + C_HASH + C_ADDRESS + C_HASH or \
            (<const uint8_t *>PyBytes_AS_STRING(payload))[0] != C_VERSION:
        return False
    item_key = (<bytes>payload)[1:33]
    receiver = (<bytes>payload)[33:53]
    order_id = (<bytes>payload)[53:85]
    # The item, unpacked and held by the sender; a hand-over to another; none open yet;
    # a linked order that is there.
    item_raw = _unpacked_item_held_by(state, item_key, sender)
    if item_raw is None or receiver == sender:
        return False
    key = _cat(TABLE_MALL_HANDOVERS, item_key, receiver)
    if state.get(key) is not None:
        return False
    if memcmp(PyBytes_AS_STRING(order_id), _ZEROS, C_HASH) != 0 and \
            _load(state, TABLE_MALL_ORDERS, order_id, _decode_order) is None:
        return False
    # The proposal (custody.Handover): version, proposer, order id, height u64, tx id.
    value = PyBytes_FromStringAndSize(NULL, C_HANDOVER)
    out = <uint8_t *>PyBytes_AS_STRING(value)
    out[0] = C_VERSION
    memcpy(out + 1, PyBytes_AS_STRING(sender), C_ADDRESS)
    memcpy(out + 21, PyBytes_AS_STRING(order_id), C_HASH)
    _put64(out + 53, <uint64_t>height)
    memcpy(out + 61, PyBytes_AS_STRING(tx_id), C_HASH)
    state.set(key, value)
    ctx.events.append(_Event("mall.handover", (
        ("item", item_key.hex()), ("from", _address_text(sender)),
        ("to", _address_text(receiver)), ("state", "proposed"))))
    return True


# --- ESCROW_DELIVER ---------------------------------------------------------------------

def deliver(state, ctx, mall):
    """ESCROW_DELIVER (docs/mall.md 9.2): `escrow.deliver`, in C where it can."""
    _require_configured()
    _settle(_deliver(state, ctx, mall), _deliver_reference, (state, ctx, mall))


cdef bint _deliver(object state, object ctx, object mall) except -1:
    cdef object payload = ctx.tx.payload
    cdef object sender = ctx.sender
    cdef const uint8_t *p
    cdef const uint8_t *item
    cdef Py_ssize_t n, read_len
    cdef uint8_t event[C_EVENT_MAX]
    cdef Py_ssize_t e
    cdef _Recorded rec
    cdef _Move move
    if type(payload) is not bytes or type(sender) is not bytes \
            or PyBytes_GET_SIZE(sender) != C_ADDRESS:
        return False
    # The payload (decode_delivery): version, order id, time u64, tz u16, read point.
    n = PyBytes_GET_SIZE(payload)
    p = <const uint8_t *>PyBytes_AS_STRING(payload)
    if n < 44 or p[0] != C_VERSION or ((p[41] << 8) | p[42]) > C_TZ_MAX:
        return False
    read_len = p[43]
    if read_len > C_URI_MAX or 44 + read_len != n or \
            (read_len and not _uri_ok(p + 44, read_len)):
        return False
    order_id = (<bytes>payload)[1:33]
    # The order, its escrow (shipped), the sender (a carrier) holding the shipped item.
    order_raw = _load(state, TABLE_MALL_ORDERS, order_id, _decode_order)
    if order_raw is None:
        return False
    order = _decode_order(order_raw)
    escrow_raw = state.get(_cat(TABLE_MALL_ESCROWS, order_id, b""))
    if not _escrow_ok(escrow_raw) or \
            (<const uint8_t *>PyBytes_AS_STRING(escrow_raw))[E_STATE] != C_SHIPPED:
        return False
    party_raw = state.get(_cat(TABLE_MALL_PARTIES, sender, b""))
    if party_raw is None:
        return False
    party = _decoded(_decode_party, party_raw)
    if party is None or not party.roles & C_ROLE_CARRIER:
        return False
    item_key = (<bytes>escrow_raw)[E_ITEM:E_ITEM + C_HASH]
    item_raw = _unpacked_item_held_by(state, item_key, sender)
    if item_raw is None:
        return False  # packed (the reference walks its containers) or not the holder
    item = <const uint8_t *>PyBytes_AS_STRING(item_raw)
    # The ObjectEvent OBSERVE "arriving" / "in_progress", linked to the order.
    order_link = (ORDER_URI_PREFIX + order_id.hex()).encode("ascii")
    destination = _party_uri(order.buyer)
    if PyBytes_GET_SIZE(destination) > C_URI_MAX:
        return False
    event[0] = C_VERSION
    event[1] = KIND_OBJECT
    event[2] = ACTION_OBSERVE
    memcpy(event + 3, p + 33, 8 + 2)  # time, tz (biased as stored)
    event[13] = _code_arriving
    event[14] = _code_in_progress
    e = _put_text(event, 15, p + 44, read_len)
    event[e] = 0  # no business location
    event[e + 1] = 0  # no parent
    e = _put_item_ids(event, e + 2, item)
    event[e] = 0  # no output epcs
    event[e + 1] = 0  # no output quantities
    event[e + 2] = 1
    event[e + 3] = _code_po
    e = _put_text(event, e + 4, <const uint8_t *>PyBytes_AS_STRING(order_link),
                  PyBytes_GET_SIZE(order_link))
    event[e] = 0  # no sources
    event[e + 1] = 1
    event[e + 2] = _code_possessing
    e = _put_text(event, e + 3, <const uint8_t *>PyBytes_AS_STRING(destination),
                  PyBytes_GET_SIZE(destination))
    event[e] = 0  # no lot data
    event[e + 1] = 0  # no certification
    e += 2
    rec = _record(state, ctx, sender, event, e, item_key, item_raw, NULL)
    if rec is None:
        return False
    now = ctx.timestamp_ms
    move = _plan_move(state, order_id, escrow_raw, C_DELIVERED,
                      now + mall.params.confirm_timeout_ms, NULL, None, now)
    if move is None:
        return False
    _write_record(state, ctx, rec, sender, item_key)
    _write_move(state, ctx, move, order_id)
    return True


# --- ESCROW_CONFIRM ---------------------------------------------------------------------

ESCROW_RELEASED = 5
CLOSE_CONFIRMED = 1
BPS_DENOMINATOR = 10_000
TABLE_ACCOUNTS = 0x01
TABLE_MALL_TAX_RECORDS = 0x24
TABLE_MALL_CLOSED = 0x25
ACCOUNT_VERSION = 1
ACCOUNT_BYTES = 17
FEE_POOL_KEY = b"\x02fee_pool"
FEE_POOL_VERSION = 1
PARTY_OPEN_ORDERS_OFFSET = 43  # _PARTY = ">BH32sQIIIQ": version, roles, key, bond, open_orders
JURISDICTION_BYTES_MAX = 16

cdef enum:
    C_RELEASED = 5
    C_CONFIRMED = 1
    C_ACCOUNT = 17
    C_FEE_POOL = 9
    C_PARTY_OPEN = 43
    E_HELD = 2
    E_CLOSED_MS = 66
    E_CLOSED_HEIGHT = 74
    E_BUYER_PAID = 83
    E_MERCHANT_PAID = 91
    E_TAX = 99
    E_COMMISSION = 107
    E_ARBITRATION_FEE = 115


cdef class _Writes:
    """A tx's writes in order, and the values it wrote (what its later reads see)."""

    cdef object state
    cdef list ops
    cdef dict mine

    def __cinit__(self, state):
        self.state = state
        self.ops = []
        self.mine = {}

    cdef object get(self, bytes key):
        if key in self.mine:
            return self.mine[key]
        return self.state.get(key)

    cdef void put(self, bytes key, object value) except *:
        self.ops.append((key, value))
        self.mine[key] = value

    cdef void apply(self) except *:
        state = self.state
        for key, value in self.ops:
            if value is None:
                state.delete(key)
            else:
                state.set(key, value)


cdef bytes _u64_bytes(uint64_t value):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 8)
    _put64(<uint8_t *>PyBytes_AS_STRING(out), value)
    return out


cdef bint _credit(_Writes writes, bytes address, object amount) except -1:
    """`funds.credit` into `writes`; False where the reference must run."""
    cdef const uint8_t *p
    if amount == 0:
        return True
    key = _cat(TABLE_ACCOUNTS, address, b"")
    raw = writes.get(key)
    if raw is None:
        balance, nonce = 0, 0
    else:
        if type(raw) is not bytes or PyBytes_GET_SIZE(raw) != C_ACCOUNT:
            return False
        p = <const uint8_t *>PyBytes_AS_STRING(raw)
        if p[0] != ACCOUNT_VERSION:
            return False
        balance, nonce = _be64(p + 1), _be64(p + 9)
    balance = balance + amount
    if balance > C_U64_MAX:
        return False
    writes.put(key, b"\x01" + _u64_bytes(<uint64_t>balance) + _u64_bytes(<uint64_t>nonce))
    return True


cdef bint _credit_fee_pool(_Writes writes, object amount) except -1:
    """`funds.credit_fee_pool` into `writes`; False where the reference must run."""
    if amount == 0:
        return True
    raw = writes.get(FEE_POOL_KEY)
    if raw is None:
        total = amount
    else:
        if type(raw) is not bytes or PyBytes_GET_SIZE(raw) != C_FEE_POOL or \
                (<const uint8_t *>PyBytes_AS_STRING(raw))[0] != FEE_POOL_VERSION:
            return False
        total = _be64(<const uint8_t *>PyBytes_AS_STRING(raw) + 1) + amount
    if total > C_U64_MAX:
        return False
    writes.put(FEE_POOL_KEY, b"\x01" + _u64_bytes(<uint64_t>total))
    return True


def confirm(state, ctx, mall):
    """ESCROW_CONFIRM (docs/mall.md 9.2): `escrow.confirm`, in C where it can."""
    _require_configured()
    _settle(_confirm(state, ctx, mall), _confirm_reference, (state, ctx, mall))


cdef bint _confirm(object state, object ctx, object mall) except -1:
    """`escrow.confirm` and its `settle` (a release: no buyer share, no arbitrators)."""
    cdef object payload = ctx.tx.payload
    cdef const uint8_t *e
    cdef uint8_t *p
    cdef _Writes writes = _Writes(state)
    if type(payload) is not bytes or PyBytes_GET_SIZE(payload) != 1 + C_HASH or \
            (<const uint8_t *>PyBytes_AS_STRING(payload))[0] != C_VERSION:
        return False
    order_id = (<bytes>payload)[1:]
    order_raw = _load(state, TABLE_MALL_ORDERS, order_id, _decode_order)
    if order_raw is None:
        return False
    order = _decode_order(order_raw)
    escrow_raw = state.get(_cat(TABLE_MALL_ESCROWS, order_id, b""))
    if not _escrow_ok(escrow_raw):
        return False
    e = <const uint8_t *>PyBytes_AS_STRING(escrow_raw)
    if ctx.sender != order.buyer or (e[E_STATE] != C_SHIPPED and e[E_STATE] != C_DELIVERED):
        return False
    height, now = ctx.height, ctx.timestamp_ms
    if not (0 <= height <= C_U64_MAX and 0 <= now <= C_U64_MAX):
        return False
    merchant = order.merchant
    gross = _be64(e + E_HELD)  # a release: all of it, less tax and commission
    tax = 0
    if gross:  # tax.withhold
        authority = mall.authority(order.jurisdiction)
        if authority is None:
            return False
        rate = order.tax_rate_bps
        tax = gross * rate // BPS_DENOMINATOR
        if not _credit(writes, authority.address, tax):
            return False
        jurisdiction = order.jurisdiction.encode("utf-8")
        if len(jurisdiction) > JURISDICTION_BYTES_MAX:
            return False
        writes.put(b"".join((bytes([TABLE_MALL_TAX_RECORDS, len(jurisdiction)]), jurisdiction,
                             _u64_bytes(<uint64_t>height), order_id)),
                   b"".join((b"\x01", merchant, _u64_bytes(<uint64_t>gross),
                             _u64_bytes(<uint64_t>tax), bytes([rate >> 8, rate & 0xFF]),
                             authority.address)))
    commission = gross * order.commission_bps // BPS_DENOMINATOR
    to_merchant = gross - tax - commission
    if to_merchant < 0:
        return False
    if not _credit(writes, merchant, to_merchant) or not _credit_fee_pool(writes, commission):
        return False
    deadline = _be64(e + E_DEADLINE)
    if deadline:
        key = _deadline_key(deadline, <const uint8_t *>PyBytes_AS_STRING(order_id))
        if writes.get(key) is None:
            return False
        writes.put(key, None)
    party_key = _cat(TABLE_MALL_PARTIES, merchant, b"")
    party_raw = writes.get(party_key)
    if party_raw is None or type(party_raw) is not bytes:
        return False
    party = _decoded(_decode_party, party_raw)
    if party is None or party.open_orders <= 0:
        return False
    party_value = PyBytes_FromStringAndSize(PyBytes_AS_STRING(party_raw),
                                            PyBytes_GET_SIZE(party_raw))
    _put32(<uint8_t *>PyBytes_AS_STRING(party_value) + C_PARTY_OPEN,
           <uint32_t>(party.open_orders - 1))
    writes.put(party_key, party_value)
    closed = PyBytes_FromStringAndSize(<const char *>e, C_ESCROW)
    p = <uint8_t *>PyBytes_AS_STRING(closed)
    p[E_STATE] = C_RELEASED
    _put64(p + E_HELD, 0)
    _put64(p + E_DEADLINE, 0)
    _put64(p + E_CLOSED_MS, <uint64_t>now)
    _put64(p + E_CLOSED_HEIGHT, <uint64_t>height)
    p[E_REASON] = C_CONFIRMED
    _put64(p + E_BUYER_PAID, 0)
    _put64(p + E_MERCHANT_PAID, <uint64_t>to_merchant)
    _put64(p + E_TAX, <uint64_t>tax)
    _put64(p + E_COMMISSION, <uint64_t>commission)
    _put64(p + E_ARBITRATION_FEE, 0)
    writes.put(_cat(TABLE_MALL_ESCROWS, order_id, b""), closed)
    closed_key = PyBytes_FromStringAndSize(NULL, 1 + 8 + C_HASH)
    p = <uint8_t *>PyBytes_AS_STRING(closed_key)
    p[0] = TABLE_MALL_CLOSED
    _put64(p + 1, <uint64_t>height)
    memcpy(p + 9, PyBytes_AS_STRING(order_id), C_HASH)
    writes.put(closed_key, b"\x01")
    writes.apply()
    ctx.events.append(_Event("mall.escrow", (
        ("order", order_id.hex()), ("state", _released_name), ("reason", _confirmed_name),
        ("buyer_paid", "0"), ("merchant_paid", str(to_merchant)), ("tax", str(tax)))))
    return True


# --- ORDER_PLACE ------------------------------------------------------------------------

TABLE_MALL_PRODUCTS = 0x15
TABLE_MALL_PARTY_ORDERS = 0x1E
TABLE_MALL_TAX_RATES = 0x23
ROLE_MERCHANT = 1
PRODUCT_ACTIVE = 1
PRODUCT_HEAD_BYTES = 90  # _PRODUCT = ">B20sBQIQQQ32s", then the texts
ORDER_QUANTITY_MAX = 1_000_000
SEALED_BOX_OVERHEAD_BYTES = 48
SEALED_ADDRESS_BYTES_MAX = 512
SIDE_BUYER = 1
SIDE_MERCHANT = 2
TAX_RATE_BYTES = 11  # version, rate u16, set height u64

cdef enum:
    P_STATUS = 21
    P_PRICE = 22
    P_STOCK = 30
    P_SOLD = 34
    C_PRODUCT_HEAD = 90
    C_QUANTITY_MAX = 1000000
    C_SEALED_OVERHEAD = 48
    C_SEALED_MAX = 512
    C_TAX_RATE = 11


cdef bytes _party_order(bytes address, uint8_t side, uint64_t height, bytes order_id):
    cdef bytes out = PyBytes_FromStringAndSize(NULL, 1 + C_ADDRESS + 1 + 8 + C_HASH)
    cdef uint8_t *p = <uint8_t *>PyBytes_AS_STRING(out)
    p[0] = TABLE_MALL_PARTY_ORDERS
    memcpy(p + 1, PyBytes_AS_STRING(address), C_ADDRESS)
    p[1 + C_ADDRESS] = side
    _put64(p + 2 + C_ADDRESS, height)
    memcpy(p + 10 + C_ADDRESS, PyBytes_AS_STRING(order_id), C_HASH)
    return out


def place(state, ctx, mall):
    """ORDER_PLACE (docs/mall.md 8.1): `orders.place`, in C where it can."""
    _require_configured()
    _settle(_place(state, ctx, mall), _place_reference, (state, ctx, mall))


cdef bint _place(object state, object ctx, object mall) except -1:
    """`orders.place`: stock reserved, the amount from the buyer into a new escrow."""
    cdef object payload = ctx.tx.payload
    cdef object buyer = ctx.sender
    cdef const uint8_t *p
    cdef const uint8_t *product
    cdef uint8_t *w
    cdef Py_ssize_t n, sealed_len
    cdef uint32_t quantity
    cdef _Writes writes = _Writes(state)
    if type(payload) is not bytes or type(buyer) is not bytes or \
            PyBytes_GET_SIZE(buyer) != C_ADDRESS:
        return False
    # The payload (decode_placement): version, product id, quantity u32, max unit price
    # u64, the sealed address (u16 length); consumed exactly.
    n = PyBytes_GET_SIZE(payload)
    p = <const uint8_t *>PyBytes_AS_STRING(payload)
    if n < 47 or p[0] != C_VERSION:
        return False
    quantity = _be32(p + 33)
    max_price = _be64(p + 37)
    sealed_len = (p[45] << 8) | p[46]
    if sealed_len > C_SEALED_MAX or 47 + sealed_len != n or quantity < 1 or \
            quantity > C_QUANTITY_MAX or sealed_len <= C_SEALED_OVERHEAD:
        return False
    product_id = (<bytes>payload)[1:33]
    # The listing (active, another's), its merchant (registered, bonded), price and stock.
    product_key = _cat(TABLE_MALL_PRODUCTS, product_id, b"")
    product_raw = state.get(product_key)
    if product_raw is None or type(product_raw) is not bytes or \
            _decoded(_decode_product, product_raw) is None:
        return False
    product = <const uint8_t *>PyBytes_AS_STRING(product_raw)
    merchant_address = (<bytes>product_raw)[1:21]
    if product[P_STATUS] != PRODUCT_ACTIVE or buyer == merchant_address:
        return False
    party_key = _cat(TABLE_MALL_PARTIES, merchant_address, b"")
    party_raw = state.get(party_key)
    if party_raw is None or type(party_raw) is not bytes:
        return False
    merchant = _decoded(_decode_party, party_raw)
    if merchant is None or not merchant.roles & ROLE_MERCHANT:
        return False
    params = mall.params
    price = _be64(product + P_PRICE)
    stock = _be32(product + P_STOCK)
    sold = _be64(product + P_SOLD)
    if merchant.bond < params.merchant_bond_min or price > max_price or stock < quantity:
        return False
    amount = price * quantity
    if amount > C_U64_MAX or sold + quantity > C_U64_MAX or merchant.open_orders >= 0xFFFFFFFF:
        return False
    # funds.debit of the buyer.
    account_key = _cat(TABLE_ACCOUNTS, buyer, b"")
    account = state.get(account_key)
    if account is None:
        balance, nonce = 0, 0
    else:
        if type(account) is not bytes or PyBytes_GET_SIZE(account) != C_ACCOUNT or \
                (<const uint8_t *>PyBytes_AS_STRING(account))[0] != ACCOUNT_VERSION:
            return False
        balance = _be64(<const uint8_t *>PyBytes_AS_STRING(account) + 1)
        nonce = _be64(<const uint8_t *>PyBytes_AS_STRING(account) + 9)
    if balance < amount:
        return False
    if amount:
        writes.put(account_key, b"\x01" + _u64_bytes(<uint64_t>(balance - amount))
                   + _u64_bytes(<uint64_t>nonce))
    jurisdiction = merchant.jurisdiction
    authority = mall.authority(jurisdiction)
    if authority is None:
        return False
    # tax.current_rate: the last TAX_RATE_SET, else the genesis rate.
    encoded = jurisdiction.encode("utf-8")
    if len(encoded) > JURISDICTION_BYTES_MAX:
        return False
    rate_raw = state.get(bytes([TABLE_MALL_TAX_RATES, len(encoded)]) + encoded)
    if rate_raw is None:
        rate = authority.rate_bps
    else:
        if type(rate_raw) is not bytes or PyBytes_GET_SIZE(rate_raw) != C_TAX_RATE or \
                (<const uint8_t *>PyBytes_AS_STRING(rate_raw))[0] != C_VERSION:
            return False
        rate = ((<const uint8_t *>PyBytes_AS_STRING(rate_raw))[1] << 8) | \
            (<const uint8_t *>PyBytes_AS_STRING(rate_raw))[2]
    commission = params.commission_bps
    height, now = ctx.height, ctx.timestamp_ms
    due = now + params.ship_timeout_ms
    if not (0 <= rate <= 0xFFFF and 0 <= commission <= 0xFFFF and 0 <= height <= C_U64_MAX
            and 0 <= now <= C_U64_MAX and 0 <= due <= C_U64_MAX):
        return False
    order_id = ctx.tx.tx_id
    if type(order_id) is not bytes or PyBytes_GET_SIZE(order_id) != C_HASH:
        return False
    # The order record (order_record.Order.encode): a 113-byte head, the jurisdiction
    # (u8 length), the sealed address (u16 length).
    order = PyBytes_FromStringAndSize(NULL, 113 + 1 + len(encoded) + 2 + sealed_len)
    w = <uint8_t *>PyBytes_AS_STRING(order)
    w[0] = C_VERSION
    memcpy(w + 1, PyBytes_AS_STRING(buyer), C_ADDRESS)
    memcpy(w + 21, PyBytes_AS_STRING(merchant_address), C_ADDRESS)
    memcpy(w + 41, PyBytes_AS_STRING(product_id), C_HASH)
    _put32(w + 73, quantity)
    _put64(w + 77, <uint64_t>price)
    _put64(w + 85, <uint64_t>amount)
    w[93] = <uint8_t>(rate >> 8)
    w[94] = <uint8_t>(rate & 0xFF)
    w[95] = <uint8_t>(commission >> 8)
    w[96] = <uint8_t>(commission & 0xFF)
    _put64(w + 97, <uint64_t>height)
    _put64(w + 105, <uint64_t>now)
    w[113] = <uint8_t>len(encoded)
    memcpy(w + 114, PyBytes_AS_STRING(encoded), len(encoded))
    w[114 + len(encoded)] = <uint8_t>(sealed_len >> 8)
    w[115 + len(encoded)] = <uint8_t>sealed_len
    memcpy(w + 116 + len(encoded), p + 47, sealed_len)
    writes.put(_cat(TABLE_MALL_ORDERS, order_id, b""), order)
    # The listing: stock down, sold up; the merchant: one more open order.
    new_product = PyBytes_FromStringAndSize(<const char *>product,
                                            PyBytes_GET_SIZE(product_raw))
    w = <uint8_t *>PyBytes_AS_STRING(new_product)
    _put32(w + P_STOCK, stock - quantity)
    _put64(w + P_SOLD, <uint64_t>(sold + quantity))
    writes.put(product_key, new_product)
    new_party = PyBytes_FromStringAndSize(PyBytes_AS_STRING(party_raw),
                                          PyBytes_GET_SIZE(party_raw))
    _put32(<uint8_t *>PyBytes_AS_STRING(new_party) + C_PARTY_OPEN,
           <uint32_t>(merchant.open_orders + 1))
    writes.put(party_key, new_party)
    writes.put(_party_order(buyer, SIDE_BUYER, <uint64_t>height, order_id), b"\x01")
    writes.put(_party_order(merchant_address, SIDE_MERCHANT, <uint64_t>height, order_id),
               b"\x01")
    # escrow.open_escrow: FUNDED, holding the amount, with its ship deadline.
    escrow_value = PyBytes_FromStringAndSize(NULL, C_ESCROW)
    w = <uint8_t *>PyBytes_AS_STRING(escrow_value)
    memset(w, 0, C_ESCROW)
    w[0] = C_VERSION
    w[E_STATE] = C_FUNDED
    _put64(w + E_HELD, <uint64_t>amount)
    _put64(w + E_DEADLINE, <uint64_t>due)
    writes.put(_cat(TABLE_MALL_ESCROWS, order_id, b""), escrow_value)
    writes.put(_deadline_key(<uint64_t>due, <const uint8_t *>PyBytes_AS_STRING(order_id)),
               b"\x01")
    writes.apply()
    ctx.events.append(_Event("mall.order", (
        ("order", order_id.hex()), ("buyer", _address_text(buyer)),
        ("merchant", _address_text(merchant_address)), ("product", product_id.hex()),
        ("amount", str(amount)))))
    return True


# --- TRACE_RECORD (an ObjectEvent OBSERVE naming items by id only) ------------------------

EPCIS_TIME_MS_MAX = 253_402_250_399_999
EPCIS_EVENT_IDS_MAX = 32

cdef enum:
    C_IDS_MAX = 32
    C_EMPTY_LISTS = 7  # quantities, outputs (ids, quantities), links, sources, dest., ilmd

cdef uint64_t C_TIME_MAX = 253402250399999


def record(state, ctx):
    """TRACE_RECORD (docs/mall.md 6.1): `trace.record`, in C for an ObjectEvent OBSERVE
    that names items by id only (an inspection, say); every other event through it."""
    _require_configured()
    _settle(_trace(state, ctx), _record_reference, (state, ctx))


cdef bint _trace(object state, object ctx) except -1:
    cdef object payload = ctx.tx.payload
    cdef object sender = ctx.sender
    cdef const uint8_t *p
    cdef const uint8_t *item
    cdef Py_ssize_t n, pos, size, i, j, k, count
    cdef Py_ssize_t starts[C_IDS_MAX]
    cdef Py_ssize_t sizes[C_IDS_MAX]
    cdef uint8_t step
    cdef _Recorded rec
    if type(payload) is not bytes or type(sender) is not bytes or \
            PyBytes_GET_SIZE(sender) != C_ADDRESS:
        return False
    # The payload (events.decode_event) in the one shape taken here: version, ObjectEvent,
    # OBSERVE, time, tz, bizStep, disposition, read point, business location, no parent,
    # 1..32 distinct item ids, every other list empty, certification; consumed exactly.
    n = PyBytes_GET_SIZE(payload)
    p = <const uint8_t *>PyBytes_AS_STRING(payload)
    if n > C_PAYLOAD_MAX or n < 15 + 2 + 1 + 2 + C_EMPTY_LISTS + 1:
        return False
    if p[0] != C_VERSION or p[1] != KIND_OBJECT or p[2] != ACTION_OBSERVE or \
            _be64(p + 3) > C_TIME_MAX or ((p[11] << 8) | p[12]) > C_TZ_MAX or \
            p[13] > _biz_steps or p[14] > _dispositions:
        return False
    step = p[13]
    pos = 15
    for k in range(2):  # read point, business location
        size = p[pos]
        if size > C_URI_MAX or pos + 1 + size >= n or \
                (size and not _uri_ok(p + pos + 1, size)):
            return False
        pos += 1 + size
    if p[pos] != 0 or pos + 1 >= n:  # a parent, or nothing after
        return False
    count = p[pos + 1]
    pos += 2
    if count < 1 or count > C_IDS_MAX:
        return False
    for i in range(count):
        if pos >= n:
            return False
        size = p[pos]
        if size < 1 or size > C_URI_MAX or pos + 1 + size > n or \
                not _uri_ok(p + pos + 1, size):
            return False
        starts[i] = pos + 1
        sizes[i] = size
        pos += 1 + size
    if pos + C_EMPTY_LISTS >= n:
        return False
    for k in range(C_EMPTY_LISTS):
        if p[pos + k] != 0:
            return False
    pos += C_EMPTY_LISTS
    size = p[pos]
    if size > C_URI_MAX or pos + 1 + size != n or (size and not _uri_ok(p + pos + 1, size)):
        return False
    for i in range(count):
        for j in range(i + 1, count):
            if sizes[i] == sizes[j] and memcmp(p + starts[i], p + starts[j], sizes[i]) == 0:
                return False
    # The recorder: a registered party whose roles may record this bizStep.
    party_raw = state.get(_cat(TABLE_MALL_PARTIES, sender, b""))
    if party_raw is None or type(party_raw) is not bytes:
        return False
    party = _decoded(_decode_party, party_raw)
    if party is None or not party.roles & _step_roles[step]:
        return False
    rec = _new_record(state, ctx, sender, p, n)
    if rec is None:
        return False
    # The items: recorded, each held by the recorder if the bizStep needs custody.
    item_keys = []
    item_values = []
    for i in range(count):
        item_key = PyBytes_FromStringAndSize(NULL, C_HASH)
        cm_blake3_hash(p + starts[i], sizes[i], _item_key_key,
                       <uint8_t *>PyBytes_AS_STRING(item_key))
        item_raw = _load(state, TABLE_MALL_ITEMS, item_key, _decode_item)
        if item_raw is None:
            return False
        item = <const uint8_t *>PyBytes_AS_STRING(item_raw)
        if _step_custody[step] and not _unpacked_and_held_by(item_raw, sender):
            return False  # packed (the reference walks its containers) or not held
        if _be32(item + I_COUNT) == 0xFFFFFFFF:
            return False
        item_keys.append(item_key)
        item_values.append(item_raw)
    appended = []
    for i in range(count):
        _append(rec, item_keys[i], item_values[i], NULL)
        appended.append((rec.index_key, rec.index_value, rec.item_value))
    state.set(rec.event_key, rec.record)
    for i in range(count):
        index_key, index_value, item_value = appended[i]
        state.set(index_key, index_value)
        state.set(_cat(TABLE_MALL_ITEMS, item_keys[i], b""), item_value)
    ctx.events.append(_Event("mall.trace", (
        ("event", rec.event_id.hex()), ("recorder", _address_text(sender)),
        ("kind", _object_event_name))))
    return True
