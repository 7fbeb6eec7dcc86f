/* chainmall BLAKE3 kernels: the C API shared by _blake3, _merkle and _verify.
 *
 * Written from the BLAKE3 specification (BLAKE3-team/BLAKE3, blake3.pdf).
 * Portable, SSE4.1 and AVX2 back ends share one interface; the CPU is probed
 * once and the widest supported back end is used unless forced. No function
 * here touches Python objects: all are safe to call without the GIL.
 */
#ifndef CM_BLAKE3_H
#define CM_BLAKE3_H

#include <stddef.h>
#include <stdint.h>

#define CM_BLAKE3_OUT_LEN 32
#define CM_BLAKE3_KEY_LEN 32
#define CM_BLAKE3_BLOCK_LEN 64
#define CM_BLAKE3_CHUNK_LEN 1024

enum cm_blake3_backend {
    CM_BLAKE3_AUTO = 0,
    CM_BLAKE3_PORTABLE = 1,
    CM_BLAKE3_SSE41 = 2,
    CM_BLAKE3_AVX2 = 3,
};

/* Hash of one input of any length (multi-chunk inputs use the portable tree).
 * key == NULL: plain hash; otherwise keyed_hash with the 32-byte key. */
void cm_blake3_hash(const uint8_t *input, size_t input_len, const uint8_t *key,
                    uint8_t out[CM_BLAKE3_OUT_LEN]);

/* `count` inputs of the same length `input_len` (<= 1024), packed back to back
 * at `inputs`; 32-byte outputs packed at `out`. SIMD across inputs. */
void cm_blake3_hash_many_fixed(const uint8_t *inputs, size_t input_len, size_t count,
                               const uint8_t *key, uint8_t *out);

/* `count` inputs of varying length: input i is data[offsets[i] .. offsets[i+1]).
 * offsets has count + 1 entries, non-decreasing. Inputs <= 1024 bytes go
 * through the SIMD path; longer ones are hashed one by one. */
void cm_blake3_hash_many_var(const uint8_t *data, const uint64_t *offsets, size_t count,
                             const uint8_t *key, uint8_t *out);

/* Back end in use now, and the widest the CPU supports. */
enum cm_blake3_backend cm_blake3_backend(void);
enum cm_blake3_backend cm_blake3_best_backend(void);
const char *cm_blake3_backend_name(enum cm_blake3_backend backend);
/* Force a back end (tests, benchmarks); returns 0, or -1 if the CPU lacks it.
 * CM_BLAKE3_AUTO restores the best one. Not thread-safe against hashing. */
int cm_blake3_set_backend(enum cm_blake3_backend backend);

#endif
