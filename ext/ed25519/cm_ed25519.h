/* C ABI of ext/ed25519 (src/lib.rs): ZIP 215 Ed25519 verification via ed25519-zebra.
 * Every function is thread-safe and may be called without the GIL. */
#ifndef CM_ED25519_H
#define CM_ED25519_H

#include <stddef.h>
#include <stdint.h>

/* 1 if sig (64 bytes) is a valid ZIP 215 signature of msg[0..msg_len] under pk (32 bytes). */
int cm_ed25519_verify(const uint8_t *pk, const uint8_t *msg, size_t msg_len, const uint8_t *sig);

/* Verdicts on n items (ok[i] = 1 or 0); returns 1 when one batch equation settled all
 * of them, 0 when they were checked one by one. */
int cm_ed25519_verify_batch(size_t n, const uint8_t *const *pks, const uint8_t *const *msgs,
                            const size_t *msg_lens, const uint8_t *const *sigs, uint8_t *ok);

/* "avx512ifma", "avx2" or "serial": the back end curve25519-dalek runs here. */
const char *cm_ed25519_backend(void);
/* The back ends compiled in, best first, comma-separated. */
const char *cm_ed25519_compiled_backends(void);
/* "ed25519-zebra X, curve25519-dalek Y". */
const char *cm_ed25519_version(void);

#endif
