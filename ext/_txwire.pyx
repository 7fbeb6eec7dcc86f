# cython: language_level=3
"""Many txs on the wire at once, in C: unframe a block's tx list, check each tx, hash ids, build Txs.

Kernel of `chainmall.core.txwire` (same signatures, same results, same
exceptions). `unframe_txs` and `check_wire` check their arguments with the
GIL, then do all their work in one GIL release (`check_wire` hashes every
well-formed body with the SIMD BLAKE3 kernel); `build_txs` makes Python
objects, so it holds the GIL, and fills their slots from C (ext/_slots.pxd)
instead of calling ten descriptors per tx.

This module imports nothing from `chainmall.core`: the wire form is
ext/_wire.pxd, and the numbers are exported below for a test to compare with
core/constants.py and core/errors.py.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.mem cimport PyMem_Free
from cpython.unicode cimport PyUnicode_DecodeASCII
from libc.stdint cimport int32_t, uint8_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from ext._batchargs cimport (
    ARGS_BATCH_ITEMS_MAX,
    alloc,
    byte_view,
    fill_offsets,
    index_in,
    item_count,
)
from ext._blake3 cimport cm_blake3_backend, cm_blake3_backend_name, cm_blake3_hash_many_var
from ext._slots cimport (
    PyMemberDef,
    new_instance,
    new_instance_check,
    set_slot,
    slot_member,
    untrack,
)
from ext._wire cimport (
    WIRE_BODY_FIXED,
    WIRE_CHAIN_ID_MAX,
    WIRE_CHAIN_ID_MIN,
    WIRE_DECODE_ERROR,
    WIRE_HASH,
    WIRE_OK,
    WIRE_PAYLOAD_MAX,
    WIRE_SIG,
    WIRE_TOO_LARGE,
    WIRE_TX_BYTES_MAX,
    WIRE_TX_BYTES_MIN,
    WIRE_VERSION,
    wire_be16,
    wire_be32,
    wire_be64,
    wire_check,
)

# --- protocol numbers (copies; a test compares them with core/) --------------
TX_OK = WIRE_OK
DECODE_ERROR = WIRE_DECODE_ERROR
TX_TOO_LARGE = WIRE_TOO_LARGE
TX_VERSION = WIRE_VERSION
CHAIN_ID_BYTES_MIN = WIRE_CHAIN_ID_MIN
CHAIN_ID_BYTES_MAX = WIRE_CHAIN_ID_MAX
TX_PAYLOAD_BYTES_MAX = WIRE_PAYLOAD_MAX
TX_BODY_FIXED_BYTES = WIRE_BODY_FIXED
TX_BYTES_MAX = WIRE_TX_BYTES_MAX
TX_BYTES_MIN = WIRE_TX_BYTES_MIN
SIGNATURE_BYTES = WIRE_SIG
HASH_BYTES = WIRE_HASH
BATCH_ITEMS_MAX = ARGS_BATCH_ITEMS_MAX
TX_FIELDS = ("chain_id", "tx_type", "sender", "nonce", "fee", "expiry_height", "payload",
             "signature", "_body", "_tx_id")

# --- C (no GIL, never raises) ---------------------------------------------------
cdef Py_ssize_t _frame_end(const unsigned char *data, size_t size, size_t start,
                           Py_ssize_t count, uint64_t *total) noexcept nogil:
    """The end of `count` u16-framed items from `start` and their total length; -1 if
    the buffer ends inside one."""
    cdef size_t position = start
    cdef size_t length
    cdef Py_ssize_t i
    total[0] = 0
    for i in range(count):
        if position + 2 > size:
            return -1
        length = wire_be16(data + position)
        if position + 2 + length > size:
            return -1
        total[0] += length
        position += 2 + length
    return <Py_ssize_t>position


cdef void _unframe(const unsigned char *data, size_t start, Py_ssize_t count,
                   unsigned char *out, uint64_t *offsets) noexcept nogil:
    """Copy the items framed from `start` back to back into `out`; their offsets."""
    cdef size_t position = start
    cdef size_t length
    cdef Py_ssize_t i
    offsets[0] = 0
    for i in range(count):
        length = wire_be16(data + position)
        memcpy(out + offsets[i], data + position + 2, length)
        offsets[i + 1] = offsets[i] + length
        position += 2 + length


cdef Py_ssize_t _check_all(const unsigned char *txs, const uint64_t *offsets, Py_ssize_t n,
                           int32_t *codes, unsigned char *bodies, uint64_t *body_offsets,
                           Py_ssize_t *decoded) noexcept nogil:
    """codes[i] for each tx; the well-formed bodies packed into `bodies` (their
    offsets, and their tx indexes in `decoded`); returns how many there are."""
    cdef Py_ssize_t i, count = 0
    cdef size_t body_len
    body_offsets[0] = 0
    for i in range(n):
        codes[i] = wire_check(txs + offsets[i], offsets[i + 1] - offsets[i], &body_len)
        if codes[i] == WIRE_OK:
            memcpy(bodies + body_offsets[count], txs + offsets[i], body_len)
            body_offsets[count + 1] = body_offsets[count] + body_len
            decoded[count] = i
            count += 1
    return count


# --- public API ----------------------------------------------------------------
def unframe_txs(block, start, count):
    """Read `count` u16-length-prefixed items from `block` at `start`, as a block's tx
    list holds them: (end, items back to back, their n + 1 offsets).

    `end` is -1 (with b"" and [0]) when `block` ends inside an item or its
    length; the items are not checked. ValueError for `start` outside the
    buffer or `count` outside [0, BATCH_ITEMS_MAX], TypeError for a
    non-buffer or a non-int.
    """
    cdef const unsigned char[::1] view = byte_view(block, "block")
    cdef size_t size = view.shape[0]
    cdef size_t position = index_in(start, 0, size, "start")
    cdef Py_ssize_t n = index_in(count, 0, ARGS_BATCH_ITEMS_MAX, "count")
    cdef uint64_t total = 0
    cdef uint64_t *offs = NULL
    cdef Py_ssize_t end, i
    cdef const unsigned char *data = &view[0] if size else NULL
    if n == 0:
        return position, b"", [0]
    with nogil:
        end = _frame_end(data, size, position, n, &total)
    if end < 0:
        return -1, b"", [0]
    cdef unsigned char *out
    items = PyBytes_FromStringAndSize(NULL, total)
    out = <unsigned char *>PyBytes_AS_STRING(items)
    try:
        offs = <uint64_t *>alloc(sizeof(uint64_t) * (n + 1))
        with nogil:
            _unframe(data, position, n, out, offs)
        offsets = [0] * (n + 1)
        for i in range(1, n + 1):
            offsets[i] = offs[i]
        return end, items, offsets
    finally:
        PyMem_Free(offs)


def check_wire(txs, offsets):
    """The wire-form verdict of each of n packed txs and their ids: (codes, n * 32 bytes).

    Tx i is txs[offsets[i]:offsets[i + 1]]; its code is 0 when it decodes,
    102 (TxTooLarge) or 101 (DecodeError) as `decode_tx` would raise. Ids are
    BLAKE3 of the body, 32 zero bytes where the tx does not decode.
    """
    cdef Py_ssize_t n = item_count(offsets)
    cdef const unsigned char[::1] view = byte_view(txs, "txs")
    cdef Py_ssize_t size = view.shape[0]
    cdef const unsigned char *data = &view[0] if size else NULL
    cdef uint64_t *offs = NULL
    cdef int32_t *codes = NULL
    cdef unsigned char *bodies = NULL
    cdef uint64_t *body_offsets = NULL
    cdef Py_ssize_t *decoded = NULL
    cdef unsigned char *scratch = NULL
    cdef unsigned char *ids_ptr
    cdef Py_ssize_t count, i, j
    ids = PyBytes_FromStringAndSize(NULL, WIRE_HASH * n)
    ids_ptr = <unsigned char *>PyBytes_AS_STRING(ids)
    try:
        offs = <uint64_t *>alloc(sizeof(uint64_t) * (n + 1))
        fill_offsets(offsets, n, size, offs)
        codes = <int32_t *>alloc(sizeof(int32_t) * n)
        bodies = <unsigned char *>alloc(size)
        body_offsets = <uint64_t *>alloc(sizeof(uint64_t) * (n + 1))
        decoded = <Py_ssize_t *>alloc(sizeof(Py_ssize_t) * n)
        scratch = <unsigned char *>alloc(WIRE_HASH * n)
        with nogil:
            memset(ids_ptr, 0, WIRE_HASH * n)
            count = _check_all(data, offs, n, codes, bodies, body_offsets, decoded)
            if count:
                cm_blake3_hash_many_var(bodies, body_offsets, count, NULL, scratch)
            for j in range(count):
                memcpy(ids_ptr + WIRE_HASH * decoded[j], scratch + WIRE_HASH * j, WIRE_HASH)
        return [codes[i] for i in range(n)], ids
    finally:
        PyMem_Free(offs)
        PyMem_Free(codes)
        PyMem_Free(bodies)
        PyMem_Free(body_offsets)
        PyMem_Free(decoded)
        PyMem_Free(scratch)


def build_txs(tx_class, txs, offsets, ids):
    """One `tx_class` object per packed wire tx, its slots TX_FIELDS filled from the bytes.

    Every tx must pass `check_wire` (ValueError naming the first that does
    not); `ids` holds their n * 32 bytes of tx ids. The objects are made with
    `object.__new__`: no `__init__` runs, the fields are known to be valid.
    TypeError unless `tx_class` has a writable object slot for each field.
    """
    if not isinstance(tx_class, type):
        raise TypeError(f"tx_class must be a class, got {type(tx_class).__name__}")
    cdef PyMemberDef *members[10]
    cdef Py_ssize_t f
    for f in range(10):
        members[f] = slot_member(tx_class, TX_FIELDS[f])
    new_instance_check(tx_class)
    cdef bint atomic = tx_class.__dictoffset__ == 0  # no __dict__: its slots are all it holds
    cdef Py_ssize_t n = item_count(offsets)
    cdef const unsigned char[::1] view = byte_view(txs, "txs")
    cdef const unsigned char[::1] id_view = byte_view(ids, "ids")
    cdef Py_ssize_t size = view.shape[0]
    cdef const unsigned char *data = &view[0] if size else NULL
    cdef const unsigned char *id_ptr = &id_view[0] if id_view.shape[0] else NULL
    cdef const unsigned char *tx
    cdef const unsigned char *last_chain = NULL
    cdef size_t last_chain_len = 0
    cdef size_t tx_len, body_len, L
    cdef uint64_t *offs = NULL
    cdef Py_ssize_t i
    if id_view.shape[0] != WIRE_HASH * n:
        raise ValueError(f"ids must be {WIRE_HASH * n} bytes, got {id_view.shape[0]}")
    result = [None] * n
    chain_id = None
    try:
        offs = <uint64_t *>alloc(sizeof(uint64_t) * (n + 1))
        fill_offsets(offsets, n, size, offs)
        for i in range(n):
            tx = data + offs[i]
            tx_len = offs[i + 1] - offs[i]
            if wire_check(tx, tx_len, &body_len) != WIRE_OK:
                raise ValueError(f"build_txs: tx {i} is not a well-formed wire tx")
            L = tx[1]
            if last_chain == NULL or L != last_chain_len or memcmp(tx + 2, last_chain, L) != 0:
                chain_id = PyUnicode_DecodeASCII(<const char *>tx + 2, L, NULL)
                last_chain = tx + 2
                last_chain_len = L
            item = new_instance(tx_class)
            set_slot(item, members[0], chain_id)
            set_slot(item, members[1], wire_be16(tx + 2 + L))
            set_slot(item, members[2], PyBytes_FromStringAndSize(<const char *>tx + 4 + L, 32))
            set_slot(item, members[3], wire_be64(tx + 36 + L))
            set_slot(item, members[4], wire_be64(tx + 44 + L))
            set_slot(item, members[5], wire_be64(tx + 52 + L))
            set_slot(item, members[6], PyBytes_FromStringAndSize(
                <const char *>tx + WIRE_BODY_FIXED + L, body_len - WIRE_BODY_FIXED - L))
            set_slot(item, members[7], PyBytes_FromStringAndSize(
                <const char *>tx + body_len, WIRE_SIG))
            set_slot(item, members[8], PyBytes_FromStringAndSize(<const char *>tx, body_len))
            set_slot(item, members[9], PyBytes_FromStringAndSize(
                <const char *>id_ptr + WIRE_HASH * i, WIRE_HASH))
            if atomic:
                untrack(item)  # str, int and bytes fields only: never in a cycle
            result[i] = item
        return result
    finally:
        PyMem_Free(offs)


def describe() -> str:
    """One line for `doctor`: what this kernel does and its BLAKE3 back end."""
    return (f"block tx lists unframed, checked and built in C, "
            f"tx ids on BLAKE3 {cm_blake3_backend_name(cm_blake3_backend()).decode('ascii')}")
