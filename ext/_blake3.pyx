# cython: language_level=3
"""BLAKE3 batch kernel: hash many messages packed in one buffer, SIMD across messages.

Same signatures and results as the references in `chainmall.core.hashing`
(`hash_many_fixed`, `hash_many`). Every argument is checked here, with the GIL
held; the C code then runs once per batch without the GIL.

Conventions (mirrored by the reference):
  * `data` is any C-contiguous bytes-like object, taken as its raw bytes.
  * `key` is None (plain hash) or a bytes-like of exactly 32 bytes (keyed hash).
  * `hash_many_fixed` needs `item_bytes >= 1`: with 0 the number of messages
    would be undefined. Use `hash_many` for batches of empty messages.
  * `hash_many` takes n + 1 offsets: message i is data[offsets[i]:offsets[i+1]].
The batch size is not capped here; callers enforce `BATCH_ITEMS_MAX`.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from libc.stdint cimport int64_t, uint8_t, uint64_t

# Cython looks for this module's own .pxd as chainmall/ext/_blake3.pxd, which
# does not exist in the source tree; cimport it by its path from the repo root.
from ext._blake3 cimport (
    CM_BLAKE3_AUTO,
    CM_BLAKE3_AVX2,
    CM_BLAKE3_KEY_LEN,
    CM_BLAKE3_OUT_LEN,
    CM_BLAKE3_PORTABLE,
    CM_BLAKE3_SSE41,
    cm_blake3_backend,
    cm_blake3_backend_name,
    cm_blake3_best_backend,
    cm_blake3_hash_many_fixed,
    cm_blake3_hash_many_var,
    cm_blake3_set_backend,
)

import operator
from array import array

_BACKENDS = {
    "auto": CM_BLAKE3_AUTO,
    "portable": CM_BLAKE3_PORTABLE,
    "sse41": CM_BLAKE3_SSE41,
    "avx2": CM_BLAKE3_AVX2,
}
# What an empty `data` points at: C never gets a NULL input pointer.
cdef uint8_t _empty_data = 0
# Buffer formats that are 8-byte unsigned integers in native order.
_U64_FORMATS = frozenset({"Q", "@Q", "=Q", "L", "@L"})


cdef object _byte_view(object data, str what):
    """`data` as a flat, C-contiguous memoryview of bytes."""
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(
            f"{what} must be a bytes-like object, not {type(data).__name__}"
        ) from None
    if not view.c_contiguous:
        raise ValueError(f"{what} must be C-contiguous")
    if view.ndim != 1 or view.itemsize != 1 or view.format != "B":
        view = view.cast("B")
    return view


cdef object _key_view(object key):
    """None for plain hashing, else the key as a 32-byte view (ValueError otherwise)."""
    if key is None:
        return None
    view = _byte_view(key, "key")
    if len(view) != CM_BLAKE3_KEY_LEN:
        raise ValueError(f"key must be exactly {CM_BLAKE3_KEY_LEN} bytes, got {len(view)}")
    return view


cdef object _offset_values(object offsets):
    """The offsets as a flat uint64 view, or an array('q') of Python ints."""
    try:
        view = memoryview(offsets)
    except TypeError:
        view = None
    if view is not None:
        if view.ndim != 1:
            raise ValueError(f"offsets must be one-dimensional, got {view.ndim} dimensions")
        if view.itemsize == 8 and view.format in _U64_FORMATS and view.c_contiguous:
            return view.cast("B").cast("Q")
        offsets = view.tolist()
    if isinstance(offsets, (str, bytes, bytearray)):
        offsets = list(offsets)
    try:
        return array("q", offsets)
    except OverflowError:
        raise ValueError("offsets must be in [0, len(data)]") from None
    except TypeError:
        # array() words its TypeErrors loosely; name the first bad element.
        for value in offsets:
            operator.index(value)
        raise


cdef Py_ssize_t _check_offsets(const uint64_t *values, Py_ssize_t count, bint signed_values,
                               uint64_t data_len) except -1:
    """Validate count >= 1 offsets: all >= 0, non-decreasing, last <= data_len.

    `signed_values`: the words are int64 (from array('q')) and may be negative.
    """
    cdef Py_ssize_t i
    if count < 1:
        raise ValueError("offsets must have at least one entry (n + 1 for n messages)")
    for i in range(count):
        if signed_values and <int64_t>values[i] < 0:
            raise ValueError(f"offsets[{i}] must be >= 0, got {<int64_t>values[i]}")
        if i > 0 and values[i] < values[i - 1]:
            raise ValueError(
                f"offsets must be non-decreasing: offsets[{i - 1}] = {values[i - 1]} > "
                f"offsets[{i}] = {values[i]}"
            )
    if values[count - 1] > data_len:
        raise ValueError(
            f"offsets[-1] = {values[count - 1]} is past the end of data ({data_len} bytes)"
        )
    return 0


def hash_many_fixed(data, item_bytes, key=None):
    """BLAKE3 of each `item_bytes`-byte message in `data`, as n * 32 packed bytes.

    `len(data)` must be a multiple of `item_bytes` (>= 1); `key` (32 bytes)
    selects keyed hashing. Messages longer than 1024 bytes are hashed one at a
    time with the chunk tree.
    """
    cdef const unsigned char[::1] buf
    cdef const unsigned char[::1] key_buf
    cdef const uint8_t *key_ptr = NULL
    cdef Py_ssize_t item_len, count
    cdef uint8_t *out_ptr
    view = _byte_view(data, "data")
    # Checked as a Python int first: a huge item_bytes is "not a multiple", not OverflowError.
    item_int = operator.index(item_bytes)
    if item_int < 1:
        raise ValueError(f"item_bytes must be >= 1, got {item_int}")
    key_view = _key_view(key)
    if key_view is not None:
        key_buf = key_view
        key_ptr = &key_buf[0]
    if len(view) % item_int != 0:
        raise ValueError(
            f"len(data) = {len(view)} is not a multiple of item_bytes = {item_int}"
        )
    count = len(view) // item_int
    out = PyBytes_FromStringAndSize(NULL, count * CM_BLAKE3_OUT_LEN)
    if count == 0:
        return out
    item_len = item_int
    buf = view
    out_ptr = <uint8_t *>PyBytes_AS_STRING(out)
    with nogil:
        cm_blake3_hash_many_fixed(&buf[0], <size_t>item_len, <size_t>count, key_ptr, out_ptr)
    return out


def hash_many(data, offsets, key=None):
    """BLAKE3 of each message data[offsets[i]:offsets[i + 1]], as n * 32 packed bytes.

    `offsets` holds n + 1 non-decreasing ints in [0, len(data)] (a list, an
    array('Q') or a uint64 memoryview); `key` (32 bytes) selects keyed hashing.
    """
    cdef const unsigned char[::1] buf
    cdef const uint64_t[::1] u64
    cdef const int64_t[::1] i64
    cdef const uint64_t *offset_ptr
    cdef const unsigned char[::1] key_buf
    cdef const uint8_t *key_ptr = NULL
    cdef Py_ssize_t count, data_len
    cdef uint8_t *out_ptr
    cdef const uint8_t *data_ptr = &_empty_data
    view = _byte_view(data, "data")
    data_len = len(view)
    key_view = _key_view(key)
    if key_view is not None:
        key_buf = key_view
        key_ptr = &key_buf[0]
    values = _offset_values(offsets)
    if isinstance(values, array):
        if len(values) == 0:
            raise ValueError("offsets must have at least one entry (n + 1 for n messages)")
        i64 = values
        offset_ptr = <const uint64_t *>&i64[0]
        _check_offsets(offset_ptr, len(values), True, <uint64_t>data_len)
    else:
        if len(values) == 0:
            raise ValueError("offsets must have at least one entry (n + 1 for n messages)")
        u64 = values
        offset_ptr = &u64[0]
        _check_offsets(offset_ptr, len(values), False, <uint64_t>data_len)
    count = len(values) - 1
    out = PyBytes_FromStringAndSize(NULL, count * CM_BLAKE3_OUT_LEN)
    if count == 0:
        return out
    if data_len > 0:
        buf = view
        data_ptr = &buf[0]
    out_ptr = <uint8_t *>PyBytes_AS_STRING(out)
    with nogil:
        cm_blake3_hash_many_var(data_ptr, offset_ptr, <size_t>count, key_ptr, out_ptr)
    return out


def backend():
    """Name of the back end in use: "portable", "sse41" or "avx2"."""
    return cm_blake3_backend_name(cm_blake3_backend()).decode()


def best_backend():
    """Name of the widest back end this CPU supports."""
    return cm_blake3_backend_name(cm_blake3_best_backend()).decode()


def set_backend(name):
    """Force a back end ("portable", "sse41", "avx2"), or "auto" for the best one.

    ValueError if the name is unknown or the CPU lacks that back end. Meant for
    tests and benchmarks; do not call it while another thread is hashing.
    """
    if not isinstance(name, str):
        raise TypeError(f"backend name must be a str, not {type(name).__name__}")
    if name not in _BACKENDS:
        raise ValueError(f"unknown BLAKE3 backend {name!r}; choose from {sorted(_BACKENDS)}")
    if cm_blake3_set_backend(_BACKENDS[name]) != 0:
        raise ValueError(f"this CPU does not support the {name} backend (best: {best_backend()})")


def describe():
    """One line for `chainmall doctor` and benchmarks, e.g. 'BLAKE3 SIMD backend avx2 (best: avx2)'."""
    return f"BLAKE3 SIMD backend {backend()} (best: {best_backend()})"
