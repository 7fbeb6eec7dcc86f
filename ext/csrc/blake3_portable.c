/* BLAKE3 portable back end: the compression function, single chunks and the
 * chunk tree, in plain C11 (no intrinsics). Written from the specification.
 */
#include "blake3_internal.h"

static inline uint32_t rotr32(uint32_t w, unsigned c) {
    return (w >> c) | (w << (32 - c));
}

/* The quarter-round G of the specification, on state words a, b, c, d. */
static inline void g(uint32_t v[16], int a, int b, int c, int d, uint32_t mx, uint32_t my) {
    v[a] = v[a] + v[b] + mx;
    v[d] = rotr32(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d];
    v[b] = rotr32(v[b] ^ v[c], 12);
    v[a] = v[a] + v[b] + my;
    v[d] = rotr32(v[d] ^ v[a], 8);
    v[c] = v[c] + v[d];
    v[b] = rotr32(v[b] ^ v[c], 7);
}

static inline void round_fn(uint32_t v[16], const uint32_t m[16], int r) {
    const uint8_t *s = CM_B3_SCHEDULE[r];
    /* Columns, then diagonals. */
    g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

void cm_b3_compress_portable(uint32_t cv[8], const uint8_t block[CM_BLAKE3_BLOCK_LEN],
                             uint8_t block_len, uint64_t counter, uint8_t flags) {
    uint32_t m[16];
    for (int i = 0; i < 16; i++) m[i] = cm_b3_load32(block + 4 * i);
    uint32_t v[16] = {
        cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
        CM_B3_IV[0], CM_B3_IV[1], CM_B3_IV[2], CM_B3_IV[3],
        (uint32_t)counter, (uint32_t)(counter >> 32), (uint32_t)block_len, (uint32_t)flags,
    };
    for (int r = 0; r < 7; r++) round_fn(v, m, r);
    for (int i = 0; i < 8; i++) cv[i] = v[i] ^ v[i + 8];
}

/* Chaining value of one chunk (<= 1024 bytes) at position `chunk_counter`;
 * `root` adds the ROOT flag to its last block (an input of one chunk). */
static void chunk_cv(const uint8_t *input, size_t len, uint64_t chunk_counter,
                     const uint32_t key_words[8], uint8_t flags, int root, uint32_t cv[8]) {
    size_t blocks = cm_b3_blocks(len);
    memcpy(cv, key_words, 8 * sizeof(uint32_t));
    for (size_t b = 0; b < blocks; b++) {
        uint8_t block_flags = flags;
        if (b == 0) block_flags |= CM_B3_CHUNK_START;
        size_t block_len = CM_BLAKE3_BLOCK_LEN;
        const uint8_t *block = input + b * CM_BLAKE3_BLOCK_LEN;
        uint8_t padded[CM_BLAKE3_BLOCK_LEN];
        if (b + 1 == blocks) {
            block_flags |= CM_B3_CHUNK_END;
            if (root) block_flags |= CM_B3_ROOT;
            block_len = len - b * CM_BLAKE3_BLOCK_LEN;
            if (block_len < CM_BLAKE3_BLOCK_LEN) {
                memset(padded, 0, sizeof(padded));
                if (block_len > 0) memcpy(padded, block, block_len);
                block = padded;
            }
        }
        cm_b3_compress_portable(cv, block, (uint8_t)block_len, chunk_counter, block_flags);
    }
}

static void store_cv(const uint32_t cv[8], uint8_t out[CM_BLAKE3_OUT_LEN]) {
    for (int i = 0; i < 8; i++) cm_b3_store32(out + 4 * i, cv[i]);
}

void cm_b3_hash_chunk_portable(const uint8_t *input, size_t len, const uint32_t key_words[8],
                               uint8_t flags, uint8_t out[CM_BLAKE3_OUT_LEN]) {
    uint32_t cv[8];
    chunk_cv(input, len, 0, key_words, flags, 1, cv);
    store_cv(cv, out);
}

/* Bytes in the left subtree of an input of `len` > 1024 bytes: the largest
 * power-of-two number of chunks that leaves at least one byte on the right. */
static size_t left_len(size_t len) {
    size_t full_chunks = (len - 1) / CM_BLAKE3_CHUNK_LEN;
    size_t chunks = 1;
    while (chunks <= full_chunks / 2) chunks *= 2;
    return chunks * CM_BLAKE3_CHUNK_LEN;
}

static void parent_cv(const uint32_t left[8], const uint32_t right[8],
                      const uint32_t key_words[8], uint8_t flags, uint32_t cv[8]) {
    uint8_t block[CM_BLAKE3_BLOCK_LEN];
    store_cv(left, block);
    store_cv(right, block + 32);
    memcpy(cv, key_words, 8 * sizeof(uint32_t));
    cm_b3_compress_portable(cv, block, CM_BLAKE3_BLOCK_LEN, 0, flags | CM_B3_PARENT);
}

/* Chaining value of the non-root subtree over `len` (>= 1) bytes whose first
 * chunk has index `chunk_counter`. Depth is log2 of the chunk count. */
static void subtree_cv(const uint8_t *input, size_t len, uint64_t chunk_counter,
                       const uint32_t key_words[8], uint8_t flags, uint32_t cv[8]) {
    if (len <= CM_BLAKE3_CHUNK_LEN) {
        chunk_cv(input, len, chunk_counter, key_words, flags, 0, cv);
        return;
    }
    size_t split = left_len(len);
    uint32_t left[8], right[8];
    subtree_cv(input, split, chunk_counter, key_words, flags, left);
    subtree_cv(input + split, len - split, chunk_counter + split / CM_BLAKE3_CHUNK_LEN,
               key_words, flags, right);
    parent_cv(left, right, key_words, flags, cv);
}

void cm_b3_hash_tree_portable(const uint8_t *input, size_t len, const uint32_t key_words[8],
                              uint8_t flags, uint8_t out[CM_BLAKE3_OUT_LEN]) {
    if (len <= CM_BLAKE3_CHUNK_LEN) {
        cm_b3_hash_chunk_portable(input, len, key_words, flags, out);
        return;
    }
    size_t split = left_len(len);
    uint32_t left[8], right[8], cv[8];
    subtree_cv(input, split, 0, key_words, flags, left);
    subtree_cv(input + split, len - split, split / CM_BLAKE3_CHUNK_LEN, key_words, flags, right);
    parent_cv(left, right, key_words, flags | CM_B3_ROOT, cv);
    store_cv(cv, out);
}
