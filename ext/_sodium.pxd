# cython: language_level=3
"""nogil declarations of the few libsodium calls the benchmark baseline uses (sodium.h).

Only `ext/_sodium_bench.pyx` cimports this: libsodium gives no verdict in
chainmall (the rule is ZIP 215, ext/ed25519). Signing stays in Python (PyNaCl).
Every function here is thread-safe once `sodium_init()` has returned 0 or 1.
"""

cdef extern from "sodium.h" nogil:
    # 0 on first success, 1 if already initialised, -1 on failure.
    int sodium_init()
    const char *sodium_version_string()
    int sodium_library_version_major()
    int sodium_library_version_minor()

    enum:
        crypto_sign_BYTES
        crypto_sign_PUBLICKEYBYTES

    # 0 if `sig` is a valid signature of m[0:mlen] under `pk`, -1 otherwise.
    # libsodium's strict, cofactorless rule (not chainmall's: docs/verification.md).
    int crypto_sign_verify_detached(const unsigned char *sig,
                                    const unsigned char *m,
                                    unsigned long long mlen,
                                    const unsigned char *pk)
