/* BLAKE3 AVX2 back end: 8 single-chunk inputs at once, one vector per state word.
 *
 * Lanes are messages: vector i holds state word i of all 8 inputs. A block is
 * loaded as two 32-byte rows per input and turned into 16 word vectors by an
 * 8x8 transpose of 32-bit words (unpack 32, unpack 64, swap 128-bit halves),
 * which costs 24 shuffles per block for all 8 inputs.
 *
 * The 7 rounds are one inline-asm block with a fixed register layout:
 *
 *     ymm0..ymm3   v0..v3   (a)        ymm8..ymm11   v8..v11   (c)
 *     ymm4..ymm7   v4..v7   (b)        ymm12..ymm15  v12..v15  (d)
 *
 * The 16 state vectors fill all 16 registers, so the message words are read
 * as memory operands from the transposed block in `struct frame`, the byte
 * shuffles take their masks from memory, and the rotations by 12 and 7 (two
 * shifts and an or) borrow ymm8 as scratch: v8 goes to a spill slot for the
 * four rotations and comes back right after, off the critical path. Written
 * with intrinsics, gcc 12 spilled state words instead, often reloading one
 * right after storing it (a store-forwarding delay on the dependency chain);
 * that version took ~1.6x the time per block on Zen 3.
 *
 * The functions carry target("avx2") so the file builds with the same flags as
 * the others; the dispatcher calls them only when the CPU has AVX2.
 */
#include "blake3_internal.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TARGET __attribute__((target("avx2")))
#define INLINE static inline __attribute__((always_inline)) TARGET

/* What the asm block reads and writes, 32-byte aligned; offsets are fixed
 * (FRAME_* below) because the asm addresses the fields by hand. */
struct frame {
    __m256i m[16];    /* message word vectors of the current block */
    __m256i h[8];     /* chaining value (in: before the block, out: after) */
    __m256i len;      /* v14: block length per lane */
    __m256i flags;    /* v15: flags, the same in all lanes */
    __m256i spill;    /* v8 while ymm8 is the rotation scratch */
};
#define FRAME_H "512"
#define FRAME_LEN "768"
#define FRAME_FLAGS "800"
#define FRAME_SPILL "832"
_Static_assert(sizeof(struct frame) == 864, "asm offsets of struct frame");

/* Constants at fixed offsets: IV[0..3] broadcast (v8..v11), then the pshufb
 * masks that rotate each 32-bit word right by 16 and by 8 bits (pshufb picks
 * bytes within each 128-bit half, so the masks name bytes 0..15 of a half). */
static const uint32_t CONSTS[6][8] __attribute__((aligned(32))) = {
#define BCAST(w) {w, w, w, w, w, w, w, w}
    BCAST(0x6A09E667u), BCAST(0xBB67AE85u), BCAST(0x3C6EF372u), BCAST(0xA54FF53Au),
#undef BCAST
    /* rotr 16: bytes 2,3,0,1 of each word */
    {0x01000302u, 0x05040706u, 0x09080B0Au, 0x0D0C0F0Eu,
     0x01000302u, 0x05040706u, 0x09080B0Au, 0x0D0C0F0Eu},
    /* rotr 8: bytes 1,2,3,0 of each word */
    {0x00030201u, 0x04070605u, 0x080B0A09u, 0x0C0F0E0Du,
     0x00030201u, 0x04070605u, 0x080B0A09u, 0x0C0F0E0Du},
};

/* --- asm text ----------------------------------------------------------- */
/* AT&T operand order: "op src2, src1, dst" computes dst = src1 op src2. */
#define Y(n) "%%ymm" #n
#define MSG(k) #k "*32(%[f])"
#define ROT16 "128(%[k])"
#define ROT8 "160(%[k])"

#define ADDM(k, a) "vpaddd " MSG(k) ", " Y(a) ", " Y(a) "\n\t"   /* a += m[k] */
#define ADD(s, d) "vpaddd " Y(s) ", " Y(d) ", " Y(d) "\n\t"      /* d += s */
#define XOR(s, d) "vpxor " Y(s) ", " Y(d) ", " Y(d) "\n\t"       /* d ^= s */
#define SHUF(mask, d) "vpshufb " mask ", " Y(d) ", " Y(d) "\n\t" /* d = rotr(d, 16 or 8) */
/* d = rotr(d, n), with ymm8 as scratch. */
#define ROTR(n, d)                                                                           \
    "vpsrld $" #n ", " Y(d) ", %%ymm8\n\t"                                                   \
    "vpslld $(32-" #n "), " Y(d) ", " Y(d) "\n\t"                                            \
    "vpor %%ymm8, " Y(d) ", " Y(d) "\n\t"
#define SPILL8 "vmovdqa %%ymm8, " FRAME_SPILL "(%[f])\n\t"
#define RELOAD8 "vmovdqa " FRAME_SPILL "(%[f]), %%ymm8\n\t"

/* Half a round: G on four (a, b, c, d) register quadruples, step by step
 * across the four so their independent chains interleave; message words
 * x0..x3 and y0..y3 are the first and second word of each G. */
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

/* One round: columns, then diagonals; s0..s15 is the round's message order
 * (a row of CM_B3_SCHEDULE). */
#define ROUND(s0, s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, s12, s13, s14, s15)           \
    HALF(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15,                                \
         s0, s2, s4, s6, s1, s3, s5, s7)                                                      \
    HALF(0, 5, 10, 15, 1, 6, 11, 12, 2, 7, 8, 13, 3, 4, 9, 14,                                \
         s8, s10, s12, s14, s9, s11, s13, s15)

/* One compression of all 8 lanes: f->h = first half of the output of
 * compress(f->h, f->m, counter 0, f->len, f->flags). The rounds are ~1150
 * instructions: keep a single copy of them (one call site, see the block loop
 * in cm_b3_hash8_avx2); two inlined copies, for the inner and the last block,
 * ran ~15% slower, likely from instruction-cache pressure. */
INLINE void compress8(struct frame *f) {
    __asm__ volatile(
        /* v0..v7 = h, v8..v11 = IV, v12, v13 = counter 0, v14 = len, v15 = flags. */
        "vmovdqa " FRAME_H "+0*32(%[f]), %%ymm0\n\t"
        "vmovdqa " FRAME_H "+1*32(%[f]), %%ymm1\n\t"
        "vmovdqa " FRAME_H "+2*32(%[f]), %%ymm2\n\t"
        "vmovdqa " FRAME_H "+3*32(%[f]), %%ymm3\n\t"
        "vmovdqa " FRAME_H "+4*32(%[f]), %%ymm4\n\t"
        "vmovdqa " FRAME_H "+5*32(%[f]), %%ymm5\n\t"
        "vmovdqa " FRAME_H "+6*32(%[f]), %%ymm6\n\t"
        "vmovdqa " FRAME_H "+7*32(%[f]), %%ymm7\n\t"
        "vmovdqa 0*32(%[k]), %%ymm8\n\t"
        "vmovdqa 1*32(%[k]), %%ymm9\n\t"
        "vmovdqa 2*32(%[k]), %%ymm10\n\t"
        "vmovdqa 3*32(%[k]), %%ymm11\n\t"
        "vpxor %%ymm12, %%ymm12, %%ymm12\n\t"
        "vpxor %%ymm13, %%ymm13, %%ymm13\n\t"
        "vmovdqa " FRAME_LEN "(%[f]), %%ymm14\n\t"
        "vmovdqa " FRAME_FLAGS "(%[f]), %%ymm15\n\t"
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
        "vmovdqa %%ymm0, " FRAME_H "+0*32(%[f])\n\t"
        "vmovdqa %%ymm1, " FRAME_H "+1*32(%[f])\n\t"
        "vmovdqa %%ymm2, " FRAME_H "+2*32(%[f])\n\t"
        "vmovdqa %%ymm3, " FRAME_H "+3*32(%[f])\n\t"
        "vmovdqa %%ymm4, " FRAME_H "+4*32(%[f])\n\t"
        "vmovdqa %%ymm5, " FRAME_H "+5*32(%[f])\n\t"
        "vmovdqa %%ymm6, " FRAME_H "+6*32(%[f])\n\t"
        "vmovdqa %%ymm7, " FRAME_H "+7*32(%[f])\n\t"
        :
        : [f] "r"(f), [k] "r"(CONSTS)
        : "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8",
          "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
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

/* Transpose the 64-byte blocks at p[j] + offset (j = 0..7) into f->m: 16
 * vectors, word w of all 8 lanes in f->m[w]. */
INLINE void load_block(struct frame *f, const uint8_t *const p[8], size_t offset) {
    for (int half = 0; half < 2; half++) {
        __m256i x[8];
        for (int j = 0; j < 8; j++)
            x[j] = _mm256_loadu_si256((const __m256i *)(p[j] + offset + 32 * half));
        transpose8(x);
        for (int w = 0; w < 8; w++) _mm256_store_si256(&f->m[8 * half + w], x[w]);
    }
}

/* lens[j] - offset for j = 0..7 as eight 32-bit words (the byte counts of
 * the last blocks, 0..64): two 64-bit subtractions and a pack. */
INLINE __m256i last_lengths(const size_t lens[8], size_t offset) {
    const __m256i off = _mm256_set1_epi64x((long long)offset);
    const __m256i low_words = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    __m256i t0 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)lens), off);
    __m256i t1 = _mm256_sub_epi64(_mm256_loadu_si256((const __m256i *)(lens + 4)), off);
    t0 = _mm256_permutevar8x32_epi32(t0, low_words);
    t1 = _mm256_permutevar8x32_epi32(t1, low_words);
    return _mm256_permute2x128_si256(t0, t1, 0x20);
}

TARGET void cm_b3_hash8_avx2(const uint8_t *const inputs[8], const size_t lens[8],
                             size_t blocks, const uint32_t key_words[8], uint8_t flags,
                             uint8_t *const outs[8]) {
    struct frame f __attribute__((aligned(32)));
    for (int i = 0; i < 8; i++) f.h[i] = _mm256_set1_epi32((int)key_words[i]);
    f.len = _mm256_set1_epi32(CM_BLAKE3_BLOCK_LEN);
    f.flags = _mm256_set1_epi32(flags | CM_B3_CHUNK_START);
    size_t last_offset = (blocks - 1) * CM_BLAKE3_BLOCK_LEN;
    /* One loop and one call site of compress8 for every block (see there). */
    for (size_t offset = 0;; offset += CM_BLAKE3_BLOCK_LEN) {
        if (offset < last_offset) {
            /* Inner blocks are full 64-byte blocks, read in place. */
            load_block(&f, inputs, offset);
        } else {
            /* The last block: lengths differ per lane (v14, computed in
             * vectors), and a block shorter than 64 bytes is read from a
             * zero-padded copy. */
            __m256i tails = last_lengths(lens, last_offset);
            __m256i full = _mm256_cmpeq_epi32(tails, _mm256_set1_epi32(CM_BLAKE3_BLOCK_LEN));
            if (_mm256_movemask_epi8(full) == -1) {
                load_block(&f, inputs, offset);
            } else {
                uint8_t padded[8][CM_BLAKE3_BLOCK_LEN] __attribute__((aligned(32)));
                const uint8_t *last[8];
                for (int j = 0; j < 8; j++) {
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
            f.flags = _mm256_set1_epi32(last_flags);
        }
        compress8(&f);
        if (offset == last_offset) break;
        f.flags = _mm256_set1_epi32(flags);
    }
    __m256i h[8];
    for (int i = 0; i < 8; i++) h[i] = f.h[i];
    transpose8(h);
    for (int j = 0; j < 8; j++) _mm256_storeu_si256((__m256i *)outs[j], h[j]);
}

#else

/* Not x86-64 (no ymm8..ymm15 or no AVX2): the dispatcher never selects this
 * back end on non-x86 CPUs; on 32-bit x86 it falls back to the portable code. */
void cm_b3_hash8_avx2(const uint8_t *const inputs[8], const size_t lens[8], size_t blocks,
                      const uint32_t key_words[8], uint8_t flags, uint8_t *const outs[8]) {
    (void)blocks;
    for (int j = 0; j < 8; j++) cm_b3_hash_chunk_portable(inputs[j], lens[j], key_words, flags, outs[j]);
}

#endif
