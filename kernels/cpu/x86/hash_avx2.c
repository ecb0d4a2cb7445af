/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cross-polytope LSH keys with AVX2 (compiled with -mavx2 -mfma -mf16c
 * -ffp-contract=off; called only when the CPU has them). Bit-identical to
 * the scalar reference (kernels/cpu/lsh_hash.c) because every coordinate
 * sees the same fp32 operations in the same order:
 *  - fold: slot j of z adds s_i * x_i for i = j, j + m, ... in increasing i,
 *    from +0.0f, then the tail element; eight slots per register, the
 *    strides of the reference are the loop here. s_i * x_i is exact (a
 *    sign), and it is a separate multiply anyway: nothing is contracted.
 *  - FWHT: stages h = 1, 2, 4 inside a register (shuffle, add, subtract,
 *    blend: each lane gets exactly a + b or a - b of its pair, and the
 *    order of butterflies within a stage does not matter), stages h >= 8
 *    between registers, then the fp32 scale, per round like the reference.
 *  - argmax and key: the reference's own code (lshmoe_kn_key_rotation).
 * With m = 64 (the default fold) a whole rotation stays in 8 registers.
 * For m up to 128, batches of 8 tokens take the many-token path instead
 * (one token per lane: hash_lanes.h).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/hash_isa.h"
#include "kernels/cpu/x86/rows_avx2.h"
#include "lshmoe/common/dtype.h"

#define ALWAYS_INLINE LSHMOE_KN_INLINE

/* 8 elements of row `x` from element i, widened to fp32 (exact). */
#define FOLD_STEP(a, k) \
    a = _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(s + i + 8 * (k)), lshmoe_kn_load8(x, i + 8 * (k), dt)))

/* Elements i .. i + c - 1 (c < 8) of row x in lanes 0 .. c - 1, the other
 * lanes 0, reading no byte past element i + c - 1 (the row may end
 * there). lanes: all ones in lanes < c. */
ALWAYS_INLINE __m256 load_part8(const unsigned char *x, size_t i, size_t c, lshmoe_dtype_t dt,
                                __m256i lanes)
{
    if (dt == LSHMOE_DTYPE_FP32)
        return _mm256_maskload_ps((const float *)(const void *)(x + 4 * i), lanes);
    /* 16-bit elements: whole pairs as 32-bit lanes, then the odd last one */
    const __m128i iota = _mm_setr_epi32(0, 1, 2, 3);
    __m128i h = _mm_maskload_epi32((const int *)(const void *)(x + 2 * i),
                                   _mm_cmpgt_epi32(_mm_set1_epi32((int)(c / 2)), iota));
    if (c & 1) {
        uint16_t last;
        memcpy(&last, x + 2 * (i + c - 1), sizeof last);
        __m128i at = _mm_cmpeq_epi16(_mm_setr_epi16(0, 1, 2, 3, 4, 5, 6, 7),
                                     _mm_set1_epi16((short)(c - 1)));
        h = _mm_blendv_epi8(h, _mm_set1_epi16((short)last), at);
    }
    if (dt == LSHMOE_DTYPE_BF16)
        return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
    return _mm256_cvtph_ps(h);
}

/* The tail (the reference's last loop: element full + q of the row into
 * slot q, for q < tail: z_q + s * x, a multiply then an add) for the 8
 * slots from slot b, in register a; its other lanes keep their value
 * (adding a zero could turn -0 into +0). */
ALWAYS_INLINE __m256 fold_tail8(__m256 a, const unsigned char *x, lshmoe_dtype_t dt,
                                const float *s, size_t full, size_t tail, size_t b)
{
    if (b >= tail)
        return a;
    if (tail - b >= 8)
        return _mm256_add_ps(a, _mm256_mul_ps(_mm256_loadu_ps(s + full + b),
                                              lshmoe_kn_load8(x, full + b, dt)));
    const size_t c = tail - b;
    const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)c),
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    __m256 p = _mm256_mul_ps(_mm256_maskload_ps(s + full + b, lanes),
                             load_part8(x, full + b, c, dt, lanes));
    return _mm256_blendv_ps(a, _mm256_add_ps(a, p), _mm256_castsi256_ps(lanes));
}

/* Lanes of a where |a| >= 2^64 or a is NaN (the reference's any_huge). */
ALWAYS_INLINE __m256 huge8(__m256 a)
{
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    return _mm256_cmp_ps(_mm256_and_ps(a, absmask), _mm256_set1_ps(0x1p64f), _CMP_NLT_UQ);
}

/* z = the fold of row x; returns 1 if some |z_j| >= 2^64 or is NaN (the
 * reference's any_huge). The tail is added and the test made in registers:
 * reloading z just stored in parts would wait for the store buffer. */
ALWAYS_INLINE int fold_dt(const unsigned char *x, lshmoe_dtype_t dt, const float *s,
                          size_t hidden, size_t m, float *z)
{
    const size_t full = hidden / m * m, tail = hidden - full;
    __m256 bad = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 64 <= m; j += 64) {
        __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0,
               a6 = a0, a7 = a0;
        for (size_t i = j; i < full; i += m) {
            FOLD_STEP(a0, 0); FOLD_STEP(a1, 1); FOLD_STEP(a2, 2); FOLD_STEP(a3, 3);
            FOLD_STEP(a4, 4); FOLD_STEP(a5, 5); FOLD_STEP(a6, 6); FOLD_STEP(a7, 7);
        }
        a0 = fold_tail8(a0, x, dt, s, full, tail, j);
        a1 = fold_tail8(a1, x, dt, s, full, tail, j + 8);
        a2 = fold_tail8(a2, x, dt, s, full, tail, j + 16);
        a3 = fold_tail8(a3, x, dt, s, full, tail, j + 24);
        a4 = fold_tail8(a4, x, dt, s, full, tail, j + 32);
        a5 = fold_tail8(a5, x, dt, s, full, tail, j + 40);
        a6 = fold_tail8(a6, x, dt, s, full, tail, j + 48);
        a7 = fold_tail8(a7, x, dt, s, full, tail, j + 56);
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_or_ps(huge8(a0), huge8(a1)),
                                             _mm256_or_ps(huge8(a2), huge8(a3))));
        bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_or_ps(huge8(a4), huge8(a5)),
                                             _mm256_or_ps(huge8(a6), huge8(a7))));
        _mm256_storeu_ps(z + j, a0);      _mm256_storeu_ps(z + j + 8, a1);
        _mm256_storeu_ps(z + j + 16, a2); _mm256_storeu_ps(z + j + 24, a3);
        _mm256_storeu_ps(z + j + 32, a4); _mm256_storeu_ps(z + j + 40, a5);
        _mm256_storeu_ps(z + j + 48, a6); _mm256_storeu_ps(z + j + 56, a7);
    }
    for (; j < m; j += 8) {
        __m256 a0 = _mm256_setzero_ps();
        for (size_t i = j; i < full; i += m)
            FOLD_STEP(a0, 0);
        a0 = fold_tail8(a0, x, dt, s, full, tail, j);
        bad = _mm256_or_ps(bad, huge8(a0));
        _mm256_storeu_ps(z + j, a0);
    }
    return _mm256_movemask_ps(bad) != 0;
}

/* z = the fold of row x; returns any_huge(z, m). */
static int fold(const unsigned char *x, lshmoe_dtype_t dt, const float *s, size_t hidden,
                size_t m, float *z)
{
    if (dt == LSHMOE_DTYPE_FP32)
        return fold_dt(x, LSHMOE_DTYPE_FP32, s, hidden, m, z);
    if (dt == LSHMOE_DTYPE_BF16)
        return fold_dt(x, LSHMOE_DTYPE_BF16, s, hidden, m, z);
    return fold_dt(x, LSHMOE_DTYPE_FP16, s, hidden, m, z);
}

/* Stages h = 1, 2, 4 of the FWHT on one register. */
ALWAYS_INLINE __m256 fwht8(__m256 v)
{
    __m256 t = _mm256_permute_ps(v, 0xB1);                 /* pairs swapped   */
    v = _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xAA);
    t = _mm256_permute_ps(v, 0x4E);                        /* halves of 128   */
    v = _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xCC);
    t = _mm256_permute2f128_ps(v, v, 0x01);                /* 128-bit halves  */
    return _mm256_blend_ps(_mm256_add_ps(v, t), _mm256_sub_ps(t, v), 0xF0);
}

#define BFLY(a, b)                       \
    do {                                 \
        __m256 s_ = _mm256_add_ps(a, b); \
        b = _mm256_sub_ps(a, b);         \
        a = s_;                          \
    } while (0)

/* y = rotation of z for m = 64: `rounds` times (signs, FWHT-64, scale). */
static void rotate64(const float *z, const float *sg, int rounds, float *y)
{
    const __m256 sc = _mm256_set1_ps(lshmoe_kn_fwht_scale(64));
    __m256 v0 = _mm256_loadu_ps(z), v1 = _mm256_loadu_ps(z + 8),
           v2 = _mm256_loadu_ps(z + 16), v3 = _mm256_loadu_ps(z + 24),
           v4 = _mm256_loadu_ps(z + 32), v5 = _mm256_loadu_ps(z + 40),
           v6 = _mm256_loadu_ps(z + 48), v7 = _mm256_loadu_ps(z + 56);
    for (int k = 0; k < rounds; k++, sg += 64) {
        v0 = fwht8(_mm256_mul_ps(v0, _mm256_loadu_ps(sg)));
        v1 = fwht8(_mm256_mul_ps(v1, _mm256_loadu_ps(sg + 8)));
        v2 = fwht8(_mm256_mul_ps(v2, _mm256_loadu_ps(sg + 16)));
        v3 = fwht8(_mm256_mul_ps(v3, _mm256_loadu_ps(sg + 24)));
        v4 = fwht8(_mm256_mul_ps(v4, _mm256_loadu_ps(sg + 32)));
        v5 = fwht8(_mm256_mul_ps(v5, _mm256_loadu_ps(sg + 40)));
        v6 = fwht8(_mm256_mul_ps(v6, _mm256_loadu_ps(sg + 48)));
        v7 = fwht8(_mm256_mul_ps(v7, _mm256_loadu_ps(sg + 56)));
        BFLY(v0, v1); BFLY(v2, v3); BFLY(v4, v5); BFLY(v6, v7);   /* h = 8  */
        BFLY(v0, v2); BFLY(v1, v3); BFLY(v4, v6); BFLY(v5, v7);   /* h = 16 */
        BFLY(v0, v4); BFLY(v1, v5); BFLY(v2, v6); BFLY(v3, v7);   /* h = 32 */
        v0 = _mm256_mul_ps(v0, sc); v1 = _mm256_mul_ps(v1, sc);
        v2 = _mm256_mul_ps(v2, sc); v3 = _mm256_mul_ps(v3, sc);
        v4 = _mm256_mul_ps(v4, sc); v5 = _mm256_mul_ps(v5, sc);
        v6 = _mm256_mul_ps(v6, sc); v7 = _mm256_mul_ps(v7, sc);
    }
    _mm256_storeu_ps(y, v0);      _mm256_storeu_ps(y + 8, v1);
    _mm256_storeu_ps(y + 16, v2); _mm256_storeu_ps(y + 24, v3);
    _mm256_storeu_ps(y + 32, v4); _mm256_storeu_ps(y + 40, v5);
    _mm256_storeu_ps(y + 48, v6); _mm256_storeu_ps(y + 56, v7);
}

/* The same for any m = 2^k >= 16, in memory. */
static void rotate_mem(const float *z, const float *sg, int rounds, size_t m, float *y)
{
    const __m256 sc = _mm256_set1_ps(lshmoe_kn_fwht_scale(m));
    memcpy(y, z, m * sizeof(float));
    for (int k = 0; k < rounds; k++, sg += m) {
        for (size_t i = 0; i < m; i += 8)
            _mm256_storeu_ps(y + i, fwht8(_mm256_mul_ps(_mm256_loadu_ps(y + i),
                                                        _mm256_loadu_ps(sg + i))));
        for (size_t h = 8; h < m; h *= 2) {
            for (size_t i = 0; i < m; i += 2 * h) {
                for (size_t j = i; j < i + h; j += 8) {
                    __m256 a = _mm256_loadu_ps(y + j), b = _mm256_loadu_ps(y + j + h);
                    _mm256_storeu_ps(y + j, _mm256_add_ps(a, b));
                    _mm256_storeu_ps(y + j + h, _mm256_sub_ps(a, b));
                }
            }
        }
        for (size_t i = 0; i < m; i += 8)
            _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_loadu_ps(y + i), sc));
    }
}

/* 1 if some |z_j| >= 2^64 or is NaN (the reference's any_huge). */
static int any_huge(const float *z, size_t m)
{
    const __m256 lim = _mm256_set1_ps(0x1p64f);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 bad = _mm256_setzero_ps();
    for (size_t i = 0; i < m; i += 8)
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(_mm256_and_ps(_mm256_loadu_ps(z + i), absmask),
                                              lim, _CMP_NLT_UQ));
    return _mm256_movemask_ps(bad) != 0;
}

/* The vector operations of the many-token path (hash_lanes.h). */
#define HL_LANES 8
typedef __m256 hl_vec;
typedef __m256 hl_mask;
#define hl_load(p)        _mm256_loadu_ps(p)
#define hl_store(p, v)    _mm256_storeu_ps((p), (v))
#define hl_set1(f)        _mm256_set1_ps(f)
#define hl_zero()         _mm256_setzero_ps()
#define hl_add(a, b)      _mm256_add_ps((a), (b))
#define hl_sub(a, b)      _mm256_sub_ps((a), (b))
#define hl_mul(a, b)      _mm256_mul_ps((a), (b))
#define hl_abs(a)         _mm256_and_ps((a), _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff)))
#define hl_gt(a, b)       _mm256_cmp_ps((a), (b), _CMP_GT_OQ)
#define hl_sel(m, a, b)   _mm256_blendv_ps((a), (b), (m))

/* Transposition steps (hash_lanes.h's hl_transpose): unpack 32- and
 * 64-bit elements inside each 128-bit half, then swap the halves. */
#define hl_unpacklo32(a, b) _mm256_unpacklo_ps((a), (b))
#define hl_unpackhi32(a, b) _mm256_unpackhi_ps((a), (b))
#define hl_unpacklo64(a, b) \
    _mm256_castpd_ps(_mm256_unpacklo_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)))
#define hl_unpackhi64(a, b) \
    _mm256_castpd_ps(_mm256_unpackhi_pd(_mm256_castps_pd(a), _mm256_castps_pd(b)))

/* b[4 i + c], 128-bit half L, holds rows 4 i .. 4 i + 3 at column 4 L + c;
 * column 4 L + c of the tile is half L of b[c] and of b[4 + c]. */
static void hl_transpose_blocks(const __m256 *b, float *cols)
{
    for (int c = 0; c < 4; c++) {
        _mm256_storeu_ps(cols + (size_t)c * 8, _mm256_permute2f128_ps(b[c], b[4 + c], 0x20));
        _mm256_storeu_ps(cols + (size_t)(4 + c) * 8,
                         _mm256_permute2f128_ps(b[c], b[4 + c], 0x31));
    }
}

static void hl_pack_keys(const float *vals, int L, int bits, uint64_t *out)
{
    __m256i k = _mm256_setzero_si256();
    for (int g = 0; g < L; g++)
        k = _mm256_or_si256(k, _mm256_sll_epi32(_mm256_cvttps_epi32(_mm256_loadu_ps(vals + 8 * g)),
                                                _mm_cvtsi32_si128(g * bits)));
    _mm256_storeu_si256((__m256i *)(void *)out, _mm256_cvtepu32_epi64(_mm256_castsi256_si128(k)));
    _mm256_storeu_si256((__m256i *)(void *)(out + 4),
                        _mm256_cvtepu32_epi64(_mm256_extracti128_si256(k, 1)));
}

#include "kernels/cpu/x86/hash_lanes.h"

void lshmoe_kn_hash_avx2(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                         lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                         void *ws, size_t *nonfinite_p)
{
    lshmoe_kn_hasher_view_t v;
    if (hasher != NULL)
        lshmoe_kn_hasher_view(hasher, &v);
    if (hasher == NULL || !lshmoe_dtype_is_float(dtype) || v.m < 16) {
        /* bad calls and tiny PAD rotations: the reference handles them */
        lshmoe_kn_hash_scalar(hasher, tokens, dtype, ntokens, keys, ws, nonfinite_p);
        return;
    }
    const size_t hidden = v.hidden, m = v.m, es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    float *z = ws;      /* the workspace holds at least 2 m floats */
    float *y = z + m;
    size_t nonfinite = 0, t = 0;
    if (hl_fits(&v)) {
        for (; t < ntokens && ntokens - t >= HL_MIN_BATCH; t += HL_LANES) {
            size_t nt = ntokens - t < HL_LANES ? ntokens - t : HL_LANES;
            nonfinite += hl_batch(hasher, &v, (const unsigned char *)tokens + t * hidden * es,
                                  ntokens - t, dtype, es, nt, keys + t, ws);
        }
    }
    for (; t < ntokens; t++) {
        const unsigned char *row = (const unsigned char *)tokens + t * hidden * es;
        int huge;
        if (v.fold) {
            huge = fold(row, dtype, v.fold_sign, hidden, m, z);
        } else {
            lshmoe_row_to_f32(row, dtype, hidden, z);
            memset(z + hidden, 0, (m - hidden) * sizeof(float));
            huge = any_huge(z, m);
        }
        if (huge) {
            size_t nf = 0;
            lshmoe_kn_hash_scalar(hasher, row, dtype, 1, keys + t, ws, &nf);
            nonfinite += nf;
            continue;
        }
        lshmoe_kn_keystate_t ks = LSHMOE_KN_KEYSTATE_INIT;
        for (int r = 0; r < v.nrot; r++) {
            const float *sg = v.rot_sign + (size_t)r * (size_t)v.rounds * m;
            if (m == 64)
                rotate64(z, sg, v.rounds, y);
            else
                rotate_mem(z, sg, v.rounds, m, y);
            lshmoe_kn_key_rotation(hasher, r, y, &ks);
        }
        keys[t] = lshmoe_kn_key_final(hasher, &ks);
    }
    if (nonfinite_p != NULL)
        *nonfinite_p = nonfinite;
}
