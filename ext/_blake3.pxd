# cython: language_level=3
"""nogil declarations of the BLAKE3 C API (ext/csrc/cm_blake3.h), shared by the kernels.

`cimport` it from another kernel (`from chainmall.ext._blake3 cimport ...` or
`from ._blake3 cimport ...`); the C sources are compiled into every kernel, so
this adds no run-time import of `_blake3`.
"""

from libc.stdint cimport uint8_t, uint64_t


cdef extern from "cm_blake3.h" nogil:
    enum:
        CM_BLAKE3_OUT_LEN
        CM_BLAKE3_KEY_LEN
        CM_BLAKE3_BLOCK_LEN
        CM_BLAKE3_CHUNK_LEN

    # The C enum tag and the getter share a name; Cython names the type cm_blake3_backend_t.
    cdef enum cm_blake3_backend_t "cm_blake3_backend":
        CM_BLAKE3_AUTO
        CM_BLAKE3_PORTABLE
        CM_BLAKE3_SSE41
        CM_BLAKE3_AVX2

    void cm_blake3_hash(const uint8_t *input, size_t input_len, const uint8_t *key,
                        uint8_t *out)
    void cm_blake3_hash_many_fixed(const uint8_t *inputs, size_t input_len, size_t count,
                                   const uint8_t *key, uint8_t *out)
    void cm_blake3_hash_many_var(const uint8_t *data, const uint64_t *offsets, size_t count,
                                 const uint8_t *key, uint8_t *out)

    cm_blake3_backend_t cm_blake3_backend()
    cm_blake3_backend_t cm_blake3_best_backend()
    const char *cm_blake3_backend_name(cm_blake3_backend_t backend)
    int cm_blake3_set_backend(cm_blake3_backend_t backend)
