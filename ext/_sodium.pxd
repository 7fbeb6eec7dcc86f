# cython: language_level=3
"""nogil declarations of the few libsodium calls the kernels use (from sodium.h).

Only Ed25519 detached verification and library set-up are declared: signing
stays in Python (PyNaCl), where keys live. Every function here is thread-safe
once `sodium_init()` has returned 0 or 1.
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
    # libsodium's strict, cofactorless rule (see docs/verification.md).
    int crypto_sign_verify_detached(const unsigned char *sig,
                                    const unsigned char *m,
                                    unsigned long long mlen,
                                    const unsigned char *pk)
