# cython: language_level=3
"""Argument checks shared by the batch kernels (inline; run with the GIL, before any nogil work).

The same checks, in the same order and with the same exception types, as
core/batchargs.py makes for the pure-Python references: TypeError for a
non-buffer or a non-int, ValueError for a malformed shape.
"""

from cpython.mem cimport PyMem_Malloc
from cpython.number cimport PyNumber_Index
from libc.stdint cimport uint64_t


cdef enum:
    ARGS_BATCH_ITEMS_MAX = 1000000   # core/constants.py BATCH_ITEMS_MAX (a test compares)


cdef inline const unsigned char[::1] byte_view(object data, str what):
    """`data` as a 1-D byte view; TypeError for a non-buffer, ValueError for a buffer
    that is not contiguous bytes (core/batchargs.as_bytes)."""
    if data is None or isinstance(data, str):
        raise TypeError(f"{what} must be bytes-like, got {type(data).__name__}")
    view = memoryview(data)
    if view.itemsize != 1 or not view.c_contiguous:
        raise ValueError(f"{what} must be a contiguous buffer of bytes")
    return view.cast("B") if view.format != "B" or view.ndim != 1 else view


cdef inline unsigned char[::1] writable_view(object data, str what):
    """A bytearray as a writable byte view (TypeError for anything else)."""
    if type(data) is not bytearray:
        raise TypeError(f"{what} must be a bytearray, got {type(data).__name__}")
    return data


cdef inline Py_ssize_t item_count(object offsets) except -1:
    """n from the n + 1 offsets, checked against BATCH_ITEMS_MAX."""
    cdef Py_ssize_t entries = len(offsets)
    if entries < 1:
        raise ValueError("offsets must hold n + 1 entries, at least one")
    if entries - 1 > ARGS_BATCH_ITEMS_MAX:
        raise ValueError(
            f"{entries - 1} items is over BATCH_ITEMS_MAX ({ARGS_BATCH_ITEMS_MAX})")
    return entries - 1


cdef inline int fill_offsets(object offsets, Py_ssize_t n, Py_ssize_t data_len,
                             uint64_t *out) except -1:
    """Copy the n + 1 offsets into `out`, each in [0, data_len] and non-decreasing."""
    cdef Py_ssize_t k
    cdef uint64_t previous = 0
    cdef uint64_t current
    for k in range(n + 1):
        value = PyNumber_Index(offsets[k])  # operator.index
        if value < 0 or value > data_len:
            raise ValueError(f"offsets[{k}] = {value} is outside [0, {data_len}]")
        current = <uint64_t>value
        if current < previous:
            raise ValueError(f"offsets decrease at index {k}")
        out[k] = current
        previous = current
    return 0


cdef inline Py_ssize_t index_in(object value, Py_ssize_t low, Py_ssize_t high,
                                str what) except? -1:
    """An int argument in [low, high] (core/batchargs.index_in)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    if value < low or value > high:
        raise ValueError(f"{what} {value} is outside [{low}, {high}]")
    return <Py_ssize_t>value


cdef inline void *alloc(size_t size) except NULL:
    """PyMem_Malloc that raises MemoryError (never NULL, even for size 0)."""
    cdef void *block = PyMem_Malloc(size if size else 1)
    if block == NULL:
        raise MemoryError()
    return block
