/* BLAKE3 SSE4.1 back end: 4 single-chunk inputs at once, one vector per state word.
 *
 * Lanes are messages: vector i holds state word i of all 4 inputs. A block is
 * loaded as four 16-byte rows per input and turned into 16 word vectors by
 * four 4x4 transposes of 32-bit words.
 *
 * The 7 rounds are one inline-asm block with the same register layout as the
 * AVX2 back end (blake3_avx2.c, which explains it): v0..v15 in xmm0..xmm15,
 * message words and byte-shuffle masks as memory operands, and xmm8 spilled
 * to borrow it as the scratch register of the rotations by 12 and 7.
 * SSE has two-operand instructions only, so each rotation also copies its
 * input first (a register move, which the CPU handles at rename).
 *
 * The functions carry target("sse4.1") so the file builds with the same flags
 * as the others; the dispatcher calls them only when the CPU has SSE4.1.
 */
#include "blake3_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("sse4.1")))
#define INLINE static inline __attribute__((always_inline)) TARGET

/* What the asm block reads and writes, 16-byte aligned (SSE memory operands
 * must be); offsets are fixed (FRAME_* below) because the asm uses them. */
struct frame {
    __m128i m[16];    /* message word vectors of the current block */
    __m128i h[8];     /* chaining value (in: before the block, out: after) */
    __m128i len;      /* v14: block length per lane */
    __m128i flags;    /* v15: flags, the same in all lanes */
    __m128i spill;    /* v8 while xmm8 is the rotation scratch */
};
#define FRAME_H "256"
#define FRAME_LEN "384"
#define FRAME_FLAGS "400"
#define FRAME_SPILL "416"
_Static_assert(sizeof(struct frame) == 432, "asm offsets of struct frame");

/* IV[0..3] broadcast (v8..v11), then the pshufb masks that rotate each 32-bit
 * word right by 16 (bytes 2,3,0,1) and by 8 bits (bytes 1,2,3,0). */
static const uint32_t CONSTS[6][4] __attribute__((aligned(16))) = {
    {0x6A09E667u, 0x6A09E667u, 0x6A09E667u, 0x6A09E667u},
    {0xBB67AE85u, 0xBB67AE85u, 0xBB67AE85u, 0xBB67AE85u},
    {0x3C6EF372u, 0x3C6EF372u, 0x3C6EF372u, 0x3C6EF372u},
    {0xA54FF53Au, 0xA54FF53Au, 0xA54FF53Au, 0xA54FF53Au},
    {0x01000302u, 0x05040706u, 0x09080B0Au, 0x0D0C0F0Eu},
    {0x00030201u, 0x04070605u, 0x080B0A09u, 0x0C0F0E0Du},
};

/* --- asm text (AT&T: "op src, dst" computes dst = dst op src) ------------- */
#define X(n) "%%xmm" #n
#define MSG(k) #k "*16(%[f])"
#define ROT16 "64(%[k])"
#define ROT8 "80(%[k])"

#define ADDM(k, a) "paddd " MSG(k) ", " X(a) "\n\t"     /* a += m[k] */
#define ADD(s, d) "paddd " X(s) ", " X(d) "\n\t"        /* d += s */
#define XOR(s, d) "pxor " X(s) ", " X(d) "\n\t"         /* d ^= s */
#define SHUF(mask, d) "pshufb " mask ", " X(d) "\n\t"   /* d = rotr(d, 16 or 8) */
/* d = rotr(d, n), with xmm8 as scratch. */
#define ROTR(n, d)                                                                           \
    "movdqa " X(d) ", %%xmm8\n\t"                                                           \
    "psrld $" #n ", %%xmm8\n\t"                                                             \
    "pslld $(32-" #n "), " X(d) "\n\t"                                                      \
    "por %%xmm8, " X(d) "\n\t"
#define SPILL8 "movdqa %%xmm8, " FRAME_SPILL "(%[f])\n\t"
#define RELOAD8 "movdqa " FRAME_SPILL "(%[f]), %%xmm8\n\t"

/* Half a round: G on four (a, b, c, d) register quadruples, step by step
 * across the four; x0..x3 and y0..y3 are the message words of each G. */
#define HALF(a0, b0, c0, d0, a1, b1, c1, d1, a2, b2, c2, d2, a3, b3, c3, d3,                   \
             x0, x1, x2, x3, y0, y1, y2, y3)                                                  \
    ADDM(x0, a0) ADDM(x1, a1) ADDM(x2, a2) ADDM(x3, a3)                                       \
    ADD(b0, a0) ADD(b1, a1) ADD(b2, a2) ADD(b3, a3)                                           \
    XOR(a0, d0) XOR(a1, d1) XOR(a2, d2) XOR(a3, d3)                                           \
    SHUF(ROT16, d0) SHUF(ROT16, d1) SHUF(ROT16, d2) SHUF(ROT16, d3)                           \
    ADD(d0, c0) ADD(d1, c1) ADD(d2, c2) ADD(d3, c3)                                           \
    XOR(c0, b0) XOR(c1, b1) XOR(c2, b2) XOR(c3, b3)                                           \
    SPILL8                                                                                    \
    ROTR(12, b0) ROTR(12, b1) ROTR(12, b2) ROTR(12, b3)                                       \
    ADDM(y0, a0) ADDM(y1, a1) ADDM(y2, a2) ADDM(y3, a3)                                       \
    ADD(b0, a0) ADD(b1, a1) ADD(b2, a2) ADD(b3, a3)                                           \
    XOR(a0, d0) XOR(a1, d1) XOR(a2, d2) XOR(a3, d3)                                           \
    SHUF(ROT8, d0) SHUF(ROT8, d1) SHUF(ROT8, d2) SHUF(ROT8, d3)                               \
    RELOAD8                                                                                   \
    ADD(d0, c0) ADD(d1, c1) ADD(d2, c2) ADD(d3, c3)                                           \
    XOR(c0, b0) XOR(c1, b1) XOR(c2, b2) XOR(c3, b3)                                           \
    SPILL8                                                                                    \
    ROTR(7, b0) ROTR(7, b1) ROTR(7, b2) ROTR(7, b3)                                           \
    RELOAD8

/* One round: columns, then diagonals; s0..s15 is a row of CM_B3_SCHEDULE. */
#define ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15)           \
    HALF(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,                                \
         s0, s2, s4, s6, s1, s3, s5, s7)                                                      \
    HALF(0, 5, 10, 15, 1, 6, 11, 12, 2, 7, 8, 13, 3, 4, 9, 14,                                \
         s8, s10, s12, s14, s9, s11, s13, s15)

/* One compression of all 4 lanes: f->h = first half of the output of
 * compress(f->h, f->m, counter 0, f->len, f->flags). Called from one place
 * only, so that a single copy of its ~1250 instructions exists. */
INLINE void compress4(struct frame *f) {
    __asm__ volatile(
        /* v0..v7 = h, v8..v11 = IV, v12, v13 = counter 0, v14 = len, v15 = flags. */
        "movdqa " FRAME_H "+0*16(%[f]), %%xmm0\n\t"
        "movdqa " FRAME_H "+1*16(%[f]), %%xmm1\n\t"
        "movdqa " FRAME_H "+2*16(%[f]), %%xmm2\n\t"
        "movdqa " FRAME_H "+3*16(%[f]), %%xmm3\n\t"
        "movdqa " FRAME_H "+4*16(%[f]), %%xmm4\n\t"
        "movdqa " FRAME_H "+5*16(%[f]), %%xmm5\n\t"
        "movdqa " FRAME_H "+6*16(%[f]), %%xmm6\n\t"
        "movdqa " FRAME_H "+7*16(%[f]), %%xmm7\n\t"
        "movdqa 0*16(%[k]), %%xmm8\n\t"
        "movdqa 1*16(%[k]), %%xmm9\n\t"
        "movdqa 2*16(%[k]), %%xmm10\n\t"
        "movdqa 3*16(%[k]), %%xmm11\n\t"
        "pxor %%xmm12, %%xmm12\n\t"
        "pxor %%xmm13, %%xmm13\n\t"
        "movdqa " FRAME_LEN "(%[f]), %%xmm14\n\t"
        "movdqa " FRAME_FLAGS "(%[f]), %%xmm15\n\t"
        /* The rows of CM_B3_SCHEDULE. */
        ROUND(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
        ROUND(2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)
        ROUND(3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1)
        ROUND(10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6)
        ROUND(12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4)
        ROUND(9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7)
        ROUND(11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13)
        /* h = v0..v7 ^ v8..v15. */
        XOR(8, 0) XOR(9, 1) XOR(10, 2) XOR(11, 3)
        XOR(12, 4) XOR(13, 5) XOR(14, 6) XOR(15, 7)
        "movdqa %%xmm0, " FRAME_H "+0*16(%[f])\n\t"
        "movdqa %%xmm1, " FRAME_H "+1*16(%[f])\n\t"
        "movdqa %%xmm2, " FRAME_H "+2*16(%[f])\n\t"
        "movdqa %%xmm3, " FRAME_H "+3*16(%[f])\n\t"
        "movdqa %%xmm4, " FRAME_H "+4*16(%[f])\n\t"
        "movdqa %%xmm5, " FRAME_H "+5*16(%[f])\n\t"
        "movdqa %%xmm6, " FRAME_H "+6*16(%[f])\n\t"
        "movdqa %%xmm7, " FRAME_H "+7*16(%[f])\n\t"
        :
        : [f] "r"(f), [k] "r"(CONSTS)
        : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
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

/* Transpose the 64-byte blocks at p[j] + offset (j = 0..3) into f->m: word w
 * of all 4 lanes in f->m[w]. */
INLINE void load_block(struct frame *f, const uint8_t *const p[4], size_t offset) {
    for (int row = 0; row < 4; row++) {
        __m128i x[4];
        for (int j = 0; j < 4; j++)
            x[j] = _mm_loadu_si128((const __m128i *)(p[j] + offset + 16 * row));
        transpose4(x);
        for (int w = 0; w < 4; w++) _mm_store_si128(&f->m[4 * row + w], x[w]);
    }
}

/* lens[j] - offset for j = 0..3 as four 32-bit words (the byte counts of the
 * last blocks, 0..64): two 64-bit subtractions and a pack. */
INLINE __m128i last_lengths(const size_t lens[4], size_t offset) {
    const __m128i off = _mm_set1_epi64x((long long)offset);
    __m128i t0 = _mm_sub_epi64(_mm_loadu_si128((const __m128i *)lens), off);
    __m128i t1 = _mm_sub_epi64(_mm_loadu_si128((const __m128i *)(lens + 2)), off);
    return _mm_castps_si128(
        _mm_shuffle_ps(_mm_castsi128_ps(t0), _mm_castsi128_ps(t1), _MM_SHUFFLE(2, 0, 2, 0)));
}

TARGET void cm_b3_hash4_sse41(const uint8_t *const inputs[4], const size_t lens[4],
                              size_t blocks, const uint32_t key_words[8], uint8_t flags,
                              uint8_t *const outs[4]) {
    struct frame f __attribute__((aligned(16)));
    for (int i = 0; i < 8; i++) f.h[i] = _mm_set1_epi32((int)key_words[i]);
    f.len = _mm_set1_epi32(CM_BLAKE3_BLOCK_LEN);
    f.flags = _mm_set1_epi32(flags | CM_B3_CHUNK_START);
    size_t last_offset = (blocks - 1) * CM_BLAKE3_BLOCK_LEN;
    /* One loop and one call site of compress4 for every block. */
    for (size_t offset = 0;; offset += CM_BLAKE3_BLOCK_LEN) {
        if (offset < last_offset) {
            /* Inner blocks are full 64-byte blocks, read in place. */
            load_block(&f, inputs, offset);
        } else {
            /* The last block: lengths differ per lane (v14, computed in
             * vectors), and a block shorter than 64 bytes is read from a
             * zero-padded copy. */
            __m128i tails = last_lengths(lens, last_offset);
            __m128i full = _mm_cmpeq_epi32(tails, _mm_set1_epi32(CM_BLAKE3_BLOCK_LEN));
            if (_mm_movemask_epi8(full) == 0xFFFF) {
                load_block(&f, inputs, offset);
            } else {
                uint8_t padded[4][CM_BLAKE3_BLOCK_LEN] __attribute__((aligned(16)));
                const uint8_t *last[4];
                for (int j = 0; j < 4; j++) {
                    size_t tail = lens[j] - last_offset;
                    last[j] = inputs[j] + last_offset;
                    if (tail < CM_BLAKE3_BLOCK_LEN) {
                        memset(padded[j], 0, CM_BLAKE3_BLOCK_LEN);
                        if (tail > 0) memcpy(padded[j], last[j], tail);
                        last[j] = padded[j];
                    }
                }
                load_block(&f, last, 0);
            }
            f.len = tails;
            uint8_t last_flags = flags | CM_B3_CHUNK_END | CM_B3_ROOT;
            if (blocks == 1) last_flags |= CM_B3_CHUNK_START;
            f.flags = _mm_set1_epi32(last_flags);
        }
        compress4(&f);
        if (offset == last_offset) break;
        f.flags = _mm_set1_epi32(flags);
    }
    /* Words 0..3 and 4..7 of each output, back to one row per input. */
    __m128i h[8];
    for (int i = 0; i < 8; i++) h[i] = f.h[i];
    transpose4(h);
    transpose4(h + 4);
    for (int j = 0; j < 4; j++) {
        _mm_storeu_si128((__m128i *)outs[j], h[j]);
        _mm_storeu_si128((__m128i *)(outs[j] + 16), h[4 + j]);
    }
}

#else

/* Not x86-64 (no xmm8..xmm15 on 32-bit x86): the dispatcher never selects
 * this back end on non-x86 CPUs; on 32-bit x86 it falls back to the portable
 * code. */
void cm_b3_hash4_sse41(const uint8_t *const inputs[4], const size_t lens[4], size_t blocks,
                       const uint32_t key_words[8], uint8_t flags, uint8_t *const outs[4]) {
    (void)blocks;
    for (int j = 0; j < 4; j++) cm_b3_hash_chunk_portable(inputs[j], lens[j], key_words, flags, outs[j]);
}

#endif
