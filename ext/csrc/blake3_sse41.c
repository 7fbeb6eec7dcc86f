/* BLAKE3 SSE4.1 back end: 4 single-chunk inputs at once, one vector per state word.
 *
 * Lanes are messages: vector i holds state word i of all 4 inputs. A block is
 * loaded as four 16-byte rows per input and turned into 16 word vectors by
 * four 4x4 transposes of 32-bit words. The functions carry target("sse4.1")
 * so the file builds with the same flags as the others; the dispatcher calls
 * them only when the CPU has SSE4.1.
 */
#include "blake3_internal.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

#define TARGET __attribute__((target("sse4.1")))
#define INLINE static inline __attribute__((always_inline)) TARGET

INLINE __m128i add(__m128i a, __m128i b) { return _mm_add_epi32(a, b); }
INLINE __m128i xor(__m128i a, __m128i b) { return _mm_xor_si128(a, b); }

/* Rotations by 16 and 8 are byte moves: one shuffle instead of two shifts. */
INLINE __m128i rot16(__m128i x) {
    return _mm_shuffle_epi8(x, _mm_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2));
}
INLINE __m128i rot12(__m128i x) {
    return _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20));
}
INLINE __m128i rot8(__m128i x) {
    return _mm_shuffle_epi8(x, _mm_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1));
}
INLINE __m128i rot7(__m128i x) {
    return _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25));
}

/* Half a round: G on four (a, b, c, d) quadruples at once, written step by
 * step across the four so the four independent chains interleave (the state
 * plus temporaries do not fit in 16 registers; interleaving keeps spills off
 * the critical path). mx/my are the message words for each G. */
INLINE void g4(__m128i v[16], const int a[4], const int b[4], const int c[4], const int d[4],
               const __m128i mx[4], const __m128i my[4]) {
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
INLINE void round_fn(__m128i v[16], const __m128i m[16], int r) {
    const uint8_t *s = CM_B3_SCHEDULE[r];
    const __m128i col_x[4] = {m[s[0]], m[s[2]], m[s[4]], m[s[6]]};
    const __m128i col_y[4] = {m[s[1]], m[s[3]], m[s[5]], m[s[7]]};
    g4(v, COL_A, COL_B, COL_C, COL_D, col_x, col_y);
    const __m128i diag_x[4] = {m[s[8]], m[s[10]], m[s[12]], m[s[14]]};
    const __m128i diag_y[4] = {m[s[9]], m[s[11]], m[s[13]], m[s[15]]};
    g4(v, COL_A, DIAG_B, DIAG_C, DIAG_D, diag_x, diag_y);
}

/* In place: x[j] holds 4 words of input j -> x[w] holds word w of inputs 0..3. */
INLINE void transpose4(__m128i x[4]) {
    __m128i t0 = _mm_unpacklo_epi32(x[0], x[1]);
    __m128i t1 = _mm_unpackhi_epi32(x[0], x[1]);
    __m128i t2 = _mm_unpacklo_epi32(x[2], x[3]);
    __m128i t3 = _mm_unpackhi_epi32(x[2], x[3]);
    x[0] = _mm_unpacklo_epi64(t0, t2);
    x[1] = _mm_unpackhi_epi64(t0, t2);
    x[2] = _mm_unpacklo_epi64(t1, t3);
    x[3] = _mm_unpackhi_epi64(t1, t3);
}

/* The 64-byte blocks at blocks[0..3] as 16 word vectors. */
INLINE void load_block(const uint8_t *const blocks[4], __m128i m[16]) {
    for (int row = 0; row < 4; row++) {
        for (int j = 0; j < 4; j++) {
            m[4 * row + j] = _mm_loadu_si128((const __m128i *)(blocks[j] + 16 * row));
        }
        transpose4(m + 4 * row);
    }
}

TARGET void cm_b3_hash4_sse41(const uint8_t *const inputs[4], const size_t lens[4],
                              size_t blocks, const uint32_t key_words[8], uint8_t flags,
                              uint8_t *const outs[4]) {
    /* Last blocks shorter than 64 bytes are zero-padded copies. */
    uint8_t padded[4][CM_BLAKE3_BLOCK_LEN] __attribute__((aligned(16)));
    const uint8_t *last[4];
    uint32_t last_lens[4];
    size_t last_offset = (blocks - 1) * CM_BLAKE3_BLOCK_LEN;
    for (int j = 0; j < 4; j++) {
        size_t tail = lens[j] - last_offset;
        last_lens[j] = (uint32_t)tail;
        last[j] = inputs[j] + last_offset;
        if (tail < CM_BLAKE3_BLOCK_LEN) {
            memset(padded[j], 0, CM_BLAKE3_BLOCK_LEN);
            if (tail > 0) memcpy(padded[j], last[j], tail);
            last[j] = padded[j];
        }
    }
    __m128i h[8];
    for (int i = 0; i < 8; i++) h[i] = _mm_set1_epi32((int)key_words[i]);
    for (size_t b = 0; b < blocks; b++) {
        int is_last = b + 1 == blocks;
        uint8_t block_flags = flags;
        if (b == 0) block_flags |= CM_B3_CHUNK_START;
        if (is_last) block_flags |= CM_B3_CHUNK_END | CM_B3_ROOT;
        const uint8_t *ptrs[4];
        for (int j = 0; j < 4; j++) ptrs[j] = is_last ? last[j] : inputs[j] + b * CM_BLAKE3_BLOCK_LEN;
        __m128i m[16];
        load_block(ptrs, m);
        __m128i v[16] = {
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7],
            _mm_set1_epi32((int)CM_B3_IV[0]), _mm_set1_epi32((int)CM_B3_IV[1]),
            _mm_set1_epi32((int)CM_B3_IV[2]), _mm_set1_epi32((int)CM_B3_IV[3]),
            _mm_setzero_si128(), _mm_setzero_si128(),
            is_last ? _mm_loadu_si128((const __m128i *)last_lens)
                    : _mm_set1_epi32(CM_BLAKE3_BLOCK_LEN),
            _mm_set1_epi32(block_flags),
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
    /* Words 0..3 and 4..7 of each output, back to one row per input. */
    transpose4(h);
    transpose4(h + 4);
    for (int j = 0; j < 4; j++) {
        _mm_storeu_si128((__m128i *)outs[j], h[j]);
        _mm_storeu_si128((__m128i *)(outs[j] + 16), h[4 + j]);
    }
}

#else

/* Not an x86 CPU: the dispatcher never selects this back end. */
void cm_b3_hash4_sse41(const uint8_t *const inputs[4], const size_t lens[4], size_t blocks,
                       const uint32_t key_words[8], uint8_t flags, uint8_t *const outs[4]) {
    (void)blocks;
    for (int j = 0; j < 4; j++) cm_b3_hash_chunk_portable(inputs[j], lens[j], key_words, flags, outs[j]);
}

#endif
