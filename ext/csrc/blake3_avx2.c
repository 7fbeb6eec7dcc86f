/* BLAKE3 AVX2 back end: 8 single-chunk inputs at once, one vector per state word.
 *
 * Lanes are messages: vector i holds state word i of all 8 inputs. A block is
 * loaded as two 32-byte rows per input and turned into 16 word vectors by an
 * 8x8 transpose of 32-bit words (unpack 32, unpack 64, swap 128-bit halves),
 * which costs 24 shuffles per block for all 8 inputs. The functions carry
 * target("avx2") so the file builds with the same flags as the others; the
 * dispatcher calls them only when the CPU has AVX2.
 */
#include "blake3_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline)) TARGET

INLINE __m256i add(__m256i a, __m256i b) { return _mm256_add_epi32(a, b); }
INLINE __m256i xor(__m256i a, __m256i b) { return _mm256_xor_si256(a, b); }

/* Rotations by 16 and 8 are byte moves: one shuffle instead of two shifts. */
INLINE __m256i rot16(__m256i x) {
    const __m256i mask = _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2,
                                         13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2);
    return _mm256_shuffle_epi8(x, mask);
}
INLINE __m256i rot12(__m256i x) {
    return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}
INLINE __m256i rot8(__m256i x) {
    const __m256i mask = _mm256_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1,
                                         12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1);
    return _mm256_shuffle_epi8(x, mask);
}
INLINE __m256i rot7(__m256i x) {
    return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}

/* Half a round: G on four (a, b, c, d) quadruples at once, written step by
 * step across the four so the four independent chains interleave (the state
 * plus temporaries do not fit in 16 registers; interleaving keeps spills off
 * the critical path). mx/my are the message words for each G. */
INLINE void g4(__m256i v[16], const int a[4], const int b[4], const int c[4], const int d[4],
               const __m256i mx[4], const __m256i my[4]) {
    for (int i = 0; i < 4; i++) v[a[i]] = add(add(v[a[i]], v[b[i]]), mx[i]);
    for (int i = 0; i < 4; i++) v[d[i]] = rot16(xor(v[d[i]], v[a[i]]));
    for (int i = 0; i < 4; i++) v[c[i]] = add(v[c[i]], v[d[i]]);
    for (int i = 0; i < 4; i++) v[b[i]] = rot12(xor(v[b[i]], v[c[i]]));
    for (int i = 0; i < 4; i++) v[a[i]] = add(add(v[a[i]], v[b[i]]), my[i]);
    for (int i = 0; i < 4; i++) v[d[i]] = rot8(xor(v[d[i]], v[a[i]]));
    for (int i = 0; i < 4; i++) v[c[i]] = add(v[c[i]], v[d[i]]);
    for (int i = 0; i < 4; i++) v[b[i]] = rot7(xor(v[b[i]], v[c[i]]));
}

static const int COL_A[4] = {0, 1, 2, 3}, COL_B[4] = {4, 5, 6, 7};
static const int COL_C[4] = {8, 9, 10, 11}, COL_D[4] = {12, 13, 14, 15};
static const int DIAG_B[4] = {5, 6, 7, 4}, DIAG_C[4] = {10, 11, 8, 9};
static const int DIAG_D[4] = {15, 12, 13, 14};

/* One round: columns, then diagonals, message words in schedule order r. */
INLINE void round_fn(__m256i v[16], const __m256i m[16], int r) {
    const uint8_t *s = CM_B3_SCHEDULE[r];
    const __m256i col_x[4] = {m[s[0]], m[s[2]], m[s[4]], m[s[6]]};
    const __m256i col_y[4] = {m[s[1]], m[s[3]], m[s[5]], m[s[7]]};
    g4(v, COL_A, COL_B, COL_C, COL_D, col_x, col_y);
    const __m256i diag_x[4] = {m[s[8]], m[s[10]], m[s[12]], m[s[14]]};
    const __m256i diag_y[4] = {m[s[9]], m[s[11]], m[s[13]], m[s[15]]};
    g4(v, COL_A, DIAG_B, DIAG_C, DIAG_D, diag_x, diag_y);
}

/* In place: on entry x[j] holds 8 words of input j; on exit x[w] holds word w
 * of inputs 0..7 (the transpose is its own inverse). */
INLINE void transpose8(__m256i x[8]) {
    __m256i t0 = _mm256_unpacklo_epi32(x[0], x[1]);
    __m256i t1 = _mm256_unpackhi_epi32(x[0], x[1]);
    __m256i t2 = _mm256_unpacklo_epi32(x[2], x[3]);
    __m256i t3 = _mm256_unpackhi_epi32(x[2], x[3]);
    __m256i t4 = _mm256_unpacklo_epi32(x[4], x[5]);
    __m256i t5 = _mm256_unpackhi_epi32(x[4], x[5]);
    __m256i t6 = _mm256_unpacklo_epi32(x[6], x[7]);
    __m256i t7 = _mm256_unpackhi_epi32(x[6], x[7]);
    /* u0: words 0 | 4 of inputs 0..3; u4: the same for inputs 4..7. */
    __m256i u0 = _mm256_unpacklo_epi64(t0, t2);
    __m256i u1 = _mm256_unpackhi_epi64(t0, t2);
    __m256i u2 = _mm256_unpacklo_epi64(t1, t3);
    __m256i u3 = _mm256_unpackhi_epi64(t1, t3);
    __m256i u4 = _mm256_unpacklo_epi64(t4, t6);
    __m256i u5 = _mm256_unpackhi_epi64(t4, t6);
    __m256i u6 = _mm256_unpacklo_epi64(t5, t7);
    __m256i u7 = _mm256_unpackhi_epi64(t5, t7);
    x[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    x[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    x[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    x[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    x[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    x[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    x[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    x[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

/* The 64-byte blocks at blocks[0..7] as 16 word vectors. */
INLINE void load_block(const uint8_t *const blocks[8], __m256i m[16]) {
    for (int j = 0; j < 8; j++) {
        m[j] = _mm256_loadu_si256((const __m256i *)blocks[j]);
        m[j + 8] = _mm256_loadu_si256((const __m256i *)(blocks[j] + 32));
    }
    transpose8(m);
    transpose8(m + 8);
}

TARGET void cm_b3_hash8_avx2(const uint8_t *const inputs[8], const size_t lens[8],
                             size_t blocks, const uint32_t key_words[8], uint8_t flags,
                             uint8_t *const outs[8]) {
    /* Last blocks shorter than 64 bytes are zero-padded copies. */
    uint8_t padded[8][CM_BLAKE3_BLOCK_LEN] __attribute__((aligned(32)));
    const uint8_t *last[8];
    uint32_t last_lens[8];
    size_t last_offset = (blocks - 1) * CM_BLAKE3_BLOCK_LEN;
    for (int j = 0; j < 8; j++) {
        size_t tail = lens[j] - last_offset;
        last_lens[j] = (uint32_t)tail;
        last[j] = inputs[j] + last_offset;
        if (tail < CM_BLAKE3_BLOCK_LEN) {
            memset(padded[j], 0, CM_BLAKE3_BLOCK_LEN);
            if (tail > 0) memcpy(padded[j], last[j], tail);
            last[j] = padded[j];
        }
    }
    __m256i h[8];
    for (int i = 0; i < 8; i++) h[i] = _mm256_set1_epi32((int)key_words[i]);
    for (size_t b = 0; b < blocks; b++) {
        int is_last = b + 1 == blocks;
        uint8_t block_flags = flags;
        if (b == 0) block_flags |= CM_B3_CHUNK_START;
        if (is_last) block_flags |= CM_B3_CHUNK_END | CM_B3_ROOT;
        const uint8_t *ptrs[8];
        for (int j = 0; j < 8; j++) ptrs[j] = is_last ? last[j] : inputs[j] + b * CM_BLAKE3_BLOCK_LEN;
        __m256i m[16];
        load_block(ptrs, m);
        __m256i v[16] = {
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
            _mm256_set1_epi32((int)CM_B3_IV[0]), _mm256_set1_epi32((int)CM_B3_IV[1]),
            _mm256_set1_epi32((int)CM_B3_IV[2]), _mm256_set1_epi32((int)CM_B3_IV[3]),
            _mm256_setzero_si256(), _mm256_setzero_si256(),
            is_last ? _mm256_loadu_si256((const __m256i *)last_lens)
                    : _mm256_set1_epi32(CM_BLAKE3_BLOCK_LEN),
            _mm256_set1_epi32(block_flags),
        };
        round_fn(v, m, 0);
        round_fn(v, m, 1);
        round_fn(v, m, 2);
        round_fn(v, m, 3);
        round_fn(v, m, 4);
        round_fn(v, m, 5);
        round_fn(v, m, 6);
        for (int i = 0; i < 8; i++) h[i] = xor(v[i], v[i + 8]);
    }
    transpose8(h);
    for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)outs[j], h[j]);
}

#else

/* Not an x86 CPU: the dispatcher never selects this back end. */
void cm_b3_hash8_avx2(const uint8_t *const inputs[8], const size_t lens[8], size_t blocks,
                      const uint32_t key_words[8], uint8_t flags, uint8_t *const outs[8]) {
    (void)blocks;
    for (int j = 0; j < 8; j++) cm_b3_hash_chunk_portable(inputs[j], lens[j], key_words, flags, outs[j]);
}

#endif
