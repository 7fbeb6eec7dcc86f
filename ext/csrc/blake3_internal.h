/* chainmall BLAKE3 internals shared by the portable, SSE4.1 and AVX2 back ends.
 *
 * Written from the BLAKE3 specification. Every back end offers the same shape:
 * hash N single-chunk inputs (each <= 1024 bytes) that need the same number of
 * 64-byte blocks, producing each input's 32-byte root hash. Because all lanes
 * need the same number of blocks, flags are the same in every lane and only
 * the length of the last block differs per lane. Chunk counter is always 0
 * (a single-chunk input is chunk 0 of its own tree).
 */
#ifndef CM_BLAKE3_INTERNAL_H
#define CM_BLAKE3_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cm_blake3.h"

/* Domain flags from the specification (section 2.1). */
enum {
    CM_B3_CHUNK_START = 1,
    CM_B3_CHUNK_END = 2,
    CM_B3_PARENT = 4,
    CM_B3_ROOT = 8,
    CM_B3_KEYED_HASH = 16,
    CM_B3_DERIVE_KEY_CONTEXT = 32,
    CM_B3_DERIVE_KEY_MATERIAL = 64,
};

#define CM_B3_BLOCKS_PER_CHUNK (CM_BLAKE3_CHUNK_LEN / CM_BLAKE3_BLOCK_LEN)

/* The initial chaining value: the SHA-256 IV. */
static const uint32_t CM_B3_IV[8] = {
    0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
    0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u,
};

/* Message word order of each of the 7 rounds: row r is the permutation
 * (2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8) applied r times to 0..15. */
static const uint8_t CM_B3_SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t cm_b3_load32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

static inline void cm_b3_store32(uint8_t *p, uint32_t w) {
    p[0] = (uint8_t)w;
    p[1] = (uint8_t)(w >> 8);
    p[2] = (uint8_t)(w >> 16);
    p[3] = (uint8_t)(w >> 24);
}

/* Blocks a single-chunk input of `len` bytes needs: the empty input is one
 * empty block. */
static inline size_t cm_b3_blocks(size_t len) {
    return len == 0 ? 1 : (len + CM_BLAKE3_BLOCK_LEN - 1) / CM_BLAKE3_BLOCK_LEN;
}

/* The starting chaining value and base flags for plain (key NULL) or keyed mode. */
static inline uint8_t cm_b3_key_words(const uint8_t *key, uint32_t words[8]) {
    if (key == NULL) {
        memcpy(words, CM_B3_IV, sizeof(CM_B3_IV));
        return 0;
    }
    for (int i = 0; i < 8; i++) words[i] = cm_b3_load32(key + 4 * i);
    return CM_B3_KEYED_HASH;
}

/* --- portable (blake3_portable.c) ------------------------------------------ */

/* One compression; the new chaining value (first 8 output words) replaces cv. */
void cm_b3_compress_portable(uint32_t cv[8], const uint8_t block[CM_BLAKE3_BLOCK_LEN],
                             uint8_t block_len, uint64_t counter, uint8_t flags);

/* Root hash of one input of <= 1024 bytes (a single chunk). */
void cm_b3_hash_chunk_portable(const uint8_t *input, size_t len, const uint32_t key_words[8],
                               uint8_t flags, uint8_t out[CM_BLAKE3_OUT_LEN]);

/* Root hash of one input of any length (chunk tree). */
void cm_b3_hash_tree_portable(const uint8_t *input, size_t len, const uint32_t key_words[8],
                              uint8_t flags, uint8_t out[CM_BLAKE3_OUT_LEN]);

/* --- SIMD across inputs --------------------------------------------------- */
/* Lane i hashes inputs[i] (lens[i] bytes, all needing `blocks` blocks, 1..16)
 * into outs[i]. Callers guarantee cm_b3_blocks(lens[i]) == blocks. */

void cm_b3_hash4_sse41(const uint8_t *const inputs[4], const size_t lens[4], size_t blocks,
                       const uint32_t key_words[8], uint8_t flags, uint8_t *const outs[4]);

void cm_b3_hash8_avx2(const uint8_t *const inputs[8], const size_t lens[8], size_t blocks,
                      const uint32_t key_words[8], uint8_t flags, uint8_t *const outs[8]);

#endif
