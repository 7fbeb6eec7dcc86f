# cython: language_level=3
"""nogil declarations of ext/ed25519's C ABI (cm_ed25519.h): ZIP 215 via ed25519-zebra.

The static library is built by setup.py with cargo and linked into the kernels
that cimport this file. Every function is thread-safe and never raises.
"""

from libc.stdint cimport uint8_t


cdef extern from "cm_ed25519.h" nogil:
    # 1 if sig (64 bytes) is a valid ZIP 215 signature of msg[0:msg_len] under pk (32 bytes).
    int cm_ed25519_verify(const uint8_t *pk, const uint8_t *msg, size_t msg_len,
                          const uint8_t *sig)

    # Verdicts on n items (ok[i] = 1 or 0): one batch equation, and single checks of
    # every item if it fails. Returns 1 when the batch equation settled all of them.
    int cm_ed25519_verify_batch(size_t n, const uint8_t *const *pks,
                                const uint8_t *const *msgs, const size_t *msg_lens,
                                const uint8_t *const *sigs, uint8_t *ok)

    const char *cm_ed25519_backend()            # "avx512ifma", "avx2" or "serial"
    const char *cm_ed25519_compiled_backends()  # e.g. "avx512ifma,avx2,serial"
    const char *cm_ed25519_version()            # "ed25519-zebra X, curve25519-dalek Y"
