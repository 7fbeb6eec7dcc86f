# cython: language_level=3
"""libsodium's Ed25519 verification in a tight C loop: the benchmarks' baseline only.

No verdict in chainmall comes from here (the rule is ZIP 215, docs/verification.md);
`bench/bench_verify.py` times the ZIP 215 kernel against this loop in the same run.
Built only when libsodium's headers are found; the benchmark skips its
comparison without it.
"""

from libc.stdint cimport uint64_t
from cpython.mem cimport PyMem_Free, PyMem_Malloc

from ext._sodium cimport crypto_sign_verify_detached, sodium_init, sodium_version_string

if sodium_init() < 0:
    raise ImportError("sodium_init() failed: libsodium cannot be used")


def verify_batch(const unsigned char[::1] public_keys not None,
                 const unsigned char[::1] messages not None,
                 offsets,
                 const unsigned char[::1] signatures not None):
    """libsodium's verdict on n packed signatures, one thread, no GIL (shapes as
    `chainmall.ext._verify.verify_batch`; offsets are trusted: benchmark use only)."""
    cdef Py_ssize_t n = len(offsets) - 1
    cdef Py_ssize_t i
    if n < 0 or public_keys.shape[0] != 32 * n or signatures.shape[0] != 64 * n:
        raise ValueError("public_keys, offsets and signatures disagree on n")
    if n == 0:
        return []
    cdef uint64_t *offs = <uint64_t *>PyMem_Malloc(sizeof(uint64_t) * (n + 1))
    cdef unsigned char *ok = <unsigned char *>PyMem_Malloc(n)
    if offs == NULL or ok == NULL:
        PyMem_Free(offs)
        PyMem_Free(ok)
        raise MemoryError()
    try:
        for i in range(n + 1):
            offs[i] = offsets[i]
        if offs[n] > <uint64_t>messages.shape[0]:
            raise ValueError("offsets run past the messages")
        with nogil:
            for i in range(n):
                ok[i] = crypto_sign_verify_detached(
                    &signatures[64 * i], &messages[0] + offs[i], offs[i + 1] - offs[i],
                    &public_keys[32 * i]) == 0
        return [ok[i] != 0 for i in range(n)]
    finally:
        PyMem_Free(offs)
        PyMem_Free(ok)


def sodium_version() -> str:
    """Version of the linked libsodium (e.g. "1.0.18")."""
    return sodium_version_string().decode("ascii")
