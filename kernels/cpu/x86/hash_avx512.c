/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cross-polytope LSH keys with AVX-512 (compiled with -mavx512f -mavx512bw
 * -mavx512vl -mavx512dq -ffp-contract=off; called only when the CPU has
 * them). The same operation-for-operation copy of the reference as
 * hash_avx2.c (whose comment gives the argument for bit-identical keys),
 * sixteen lanes wide (the fold's multiply and add are one multiply-add:
 * the product by a sign is exact, so it rounds once, as the add does):
 * stages h = 1, 2, 4, 8 inside a register, h >= 16
 * between registers; with m = 64 a rotation is 4 registers. For m up to
 * 128, batches of 16 tokens take the many-token path instead (one token per
 * lane: hash_lanes.h).
 */
#include <immintrin.h>
#include <string.h>

#include "kernels/cpu/hash_isa.h"
#include "kernels/cpu/x86/rows_avx512.h"
#include "lshmoe/common/dtype.h"

#define ALWAYS_INLINE LSHMOE_KN_INLINE

/*
 * a += s_i * x_i for the 16 elements of row x from element i (widened to
 * fp32: exact). s_i = +-1 makes the product exact, so the one rounding of
 * the multiply-add is that of the reference's addition, bit for bit.
 */
#define FOLD_STEP(a, k) \
    a = _mm512_fmadd_ps(_mm512_loadu_ps(s + i + 16 * (k)), lshmoe_kn_load16(x, i + 16 * (k), dt), a)

/* The tail (the reference's last loop: element full + q of the row into
 * slot q, for q < tail) for the 16 slots from slot b, in register a: its
 * other lanes keep their value (adding a zero could turn -0 into +0). */
ALWAYS_INLINE __m512 fold_tail16(__m512 a, const unsigned char *x, lshmoe_dtype_t dt,
                                 const float *s, size_t full, size_t tail, size_t b)
{
    if (b >= tail)
        return a;
    size_t c = tail - b < 16 ? tail - b : 16;
    __mmask16 mk = (__mmask16)((1u << c) - 1u);
    __m512 xv = c == 16 ? lshmoe_kn_load16(x, full + b, dt) : lshmoe_kn_load_part(x, full + b, c, dt);
    return _mm512_mask3_fmadd_ps(_mm512_maskz_loadu_ps(mk, s + full + b), xv, a, mk);
}

/* 1 in a lane where |a| >= 2^64 or a is NaN (the reference's any_huge). */
ALWAYS_INLINE __mmask16 huge16(__m512 a)
{
    return _mm512_cmp_ps_mask(_mm512_abs_ps(a), _mm512_set1_ps(0x1p64f), _CMP_NLT_UQ);
}

/* z = the fold of row x; returns 1 if some |z_j| >= 2^64 or is NaN (the
 * reference's any_huge), tested in registers: reloading z just stored
 * would wait for the store buffer. The tail is added in registers too. */
ALWAYS_INLINE int fold_dt(const unsigned char *x, lshmoe_dtype_t dt, const float *s,
                           size_t hidden, size_t m, float *z)
{
    const size_t full = hidden / m * m, tail = hidden - full;
    __mmask16 bad = 0;
    size_t j = 0;
    for (; j + 64 <= m; j += 64) {
        __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
        for (size_t i = j; i < full; i += m) {
            FOLD_STEP(a0, 0); FOLD_STEP(a1, 1); FOLD_STEP(a2, 2); FOLD_STEP(a3, 3);
        }
        a0 = fold_tail16(a0, x, dt, s, full, tail, j);
        a1 = fold_tail16(a1, x, dt, s, full, tail, j + 16);
        a2 = fold_tail16(a2, x, dt, s, full, tail, j + 32);
        a3 = fold_tail16(a3, x, dt, s, full, tail, j + 48);
        bad |= huge16(a0) | huge16(a1) | huge16(a2) | huge16(a3);
        _mm512_storeu_ps(z + j, a0);      _mm512_storeu_ps(z + j + 16, a1);
        _mm512_storeu_ps(z + j + 32, a2); _mm512_storeu_ps(z + j + 48, a3);
    }
    for (; j < m; j += 16) {
        __m512 a0 = _mm512_setzero_ps();
        for (size_t i = j; i < full; i += m)
            FOLD_STEP(a0, 0);
        a0 = fold_tail16(a0, x, dt, s, full, tail, j);
        bad |= huge16(a0);
        _mm512_storeu_ps(z + j, a0);
    }
    return bad != 0;
}

static int fold(const unsigned char *x, lshmoe_dtype_t dt, const float *s, size_t hidden,
               size_t m, float *z)
{
    if (dt == LSHMOE_DTYPE_FP32)
        return fold_dt(x, LSHMOE_DTYPE_FP32, s, hidden, m, z);
    if (dt == LSHMOE_DTYPE_BF16)
        return fold_dt(x, LSHMOE_DTYPE_BF16, s, hidden, m, z);
    return fold_dt(x, LSHMOE_DTYPE_FP16, s, hidden, m, z);
}

/* Stages h = 1, 2, 4, 8 of the FWHT on one register: in each, lanes with
 * bit h clear get a + b, the others a - b (a = the lane with bit h clear). */
ALWAYS_INLINE __m512 fwht16(__m512 v)
{
    __m512 t = _mm512_permute_ps(v, 0xB1);
    v = _mm512_mask_blend_ps(0xAAAA, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
    t = _mm512_permute_ps(v, 0x4E);
    v = _mm512_mask_blend_ps(0xCCCC, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
    t = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1));
    v = _mm512_mask_blend_ps(0xF0F0, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
    t = _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2));
    return _mm512_mask_blend_ps(0xFF00, _mm512_add_ps(v, t), _mm512_sub_ps(t, v));
}

#define BFLY(a, b)                       \
    do {                                 \
        __m512 s_ = _mm512_add_ps(a, b); \
        b = _mm512_sub_ps(a, b);         \
        a = s_;                          \
    } while (0)

static void rotate64(const float *z, const float *sg, int rounds, float *y)
{
    const __m512 sc = _mm512_set1_ps(lshmoe_kn_fwht_scale(64));
    __m512 v0 = _mm512_loadu_ps(z), v1 = _mm512_loadu_ps(z + 16),
           v2 = _mm512_loadu_ps(z + 32), v3 = _mm512_loadu_ps(z + 48);
    for (int k = 0; k < rounds; k++, sg += 64) {
        v0 = fwht16(_mm512_mul_ps(v0, _mm512_loadu_ps(sg)));
        v1 = fwht16(_mm512_mul_ps(v1, _mm512_loadu_ps(sg + 16)));
        v2 = fwht16(_mm512_mul_ps(v2, _mm512_loadu_ps(sg + 32)));
        v3 = fwht16(_mm512_mul_ps(v3, _mm512_loadu_ps(sg + 48)));
        BFLY(v0, v1); BFLY(v2, v3);   /* h = 16 */
        BFLY(v0, v2); BFLY(v1, v3);   /* h = 32 */
        v0 = _mm512_mul_ps(v0, sc); v1 = _mm512_mul_ps(v1, sc);
        v2 = _mm512_mul_ps(v2, sc); v3 = _mm512_mul_ps(v3, sc);
    }
    _mm512_storeu_ps(y, v0);      _mm512_storeu_ps(y + 16, v1);
    _mm512_storeu_ps(y + 32, v2); _mm512_storeu_ps(y + 48, v3);
}

static void rotate_mem(const float *z, const float *sg, int rounds, size_t m, float *y)
{
    const __m512 sc = _mm512_set1_ps(lshmoe_kn_fwht_scale(m));
    memcpy(y, z, m * sizeof(float));
    for (int k = 0; k < rounds; k++, sg += m) {
        for (size_t i = 0; i < m; i += 16)
            _mm512_storeu_ps(y + i, fwht16(_mm512_mul_ps(_mm512_loadu_ps(y + i),
                                                         _mm512_loadu_ps(sg + i))));
        for (size_t h = 16; h < m; h *= 2) {
            for (size_t i = 0; i < m; i += 2 * h) {
                for (size_t j = i; j < i + h; j += 16) {
                    __m512 a = _mm512_loadu_ps(y + j), b = _mm512_loadu_ps(y + j + h);
                    _mm512_storeu_ps(y + j, _mm512_add_ps(a, b));
                    _mm512_storeu_ps(y + j + h, _mm512_sub_ps(a, b));
                }
            }
        }
        for (size_t i = 0; i < m; i += 16)
            _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_loadu_ps(y + i), sc));
    }
}

static int any_huge(const float *z, size_t m)
{
    const __m512 lim = _mm512_set1_ps(0x1p64f);
    __mmask16 bad = 0;
    for (size_t i = 0; i < m; i += 16)
        bad |= _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(z + i)), lim, _CMP_NLT_UQ);
    return bad != 0;
}

/* The vector operations of the many-token path (hash_lanes.h). */
#define HL_LANES 16
typedef __m512 hl_vec;
typedef __mmask16 hl_mask;
#define hl_load(p)        _mm512_loadu_ps(p)
#define hl_store(p, v)    _mm512_storeu_ps((p), (v))
#define hl_set1(f)        _mm512_set1_ps(f)
#define hl_zero()         _mm512_setzero_ps()
#define hl_add(a, b)      _mm512_add_ps((a), (b))
#define hl_sub(a, b)      _mm512_sub_ps((a), (b))
#define hl_mul(a, b)      _mm512_mul_ps((a), (b))
#define hl_abs(a)         _mm512_abs_ps(a)
#define hl_gt(a, b)       _mm512_cmp_ps_mask((a), (b), _CMP_GT_OQ)
#define hl_sel(m, a, b)   _mm512_mask_blend_ps((m), (a), (b))

/* Transposition steps (hash_lanes.h's hl_transpose): unpack 32- and
 * 64-bit elements inside each 128-bit block, then a 4 x 4 transposition of
 * the 128-bit blocks themselves. */
#define hl_unpacklo32(a, b) _mm512_unpacklo_ps((a), (b))
#define hl_unpackhi32(a, b) _mm512_unpackhi_ps((a), (b))
#define hl_unpacklo64(a, b) \
    _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))
#define hl_unpackhi64(a, b) \
    _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)))

/* b[4 i + c], 128-bit block L, holds rows 4 i .. 4 i + 3 at column 4 L + c;
 * column 4 L + c of the tile is block L of b[c], b[4 + c], b[8 + c],
 * b[12 + c]. */
static void hl_transpose_blocks(const __m512 *b, float *cols)
{
    for (int c = 0; c < 4; c++) {
        __m512 p0 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0x44);
        __m512 p1 = _mm512_shuffle_f32x4(b[c], b[4 + c], 0xEE);
        __m512 p2 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0x44);
        __m512 p3 = _mm512_shuffle_f32x4(b[8 + c], b[12 + c], 0xEE);
        _mm512_storeu_ps(cols + (size_t)c * 16, _mm512_shuffle_f32x4(p0, p2, 0x88));
        _mm512_storeu_ps(cols + (size_t)(4 + c) * 16, _mm512_shuffle_f32x4(p0, p2, 0xDD));
        _mm512_storeu_ps(cols + (size_t)(8 + c) * 16, _mm512_shuffle_f32x4(p1, p3, 0x88));
        _mm512_storeu_ps(cols + (size_t)(12 + c) * 16, _mm512_shuffle_f32x4(p1, p3, 0xDD));
    }
}

static void hl_pack_keys(const float *vals, int L, int bits, uint64_t *out)
{
    __m512i k = _mm512_setzero_si512();
    for (int g = 0; g < L; g++)
        k = _mm512_or_si512(k, _mm512_sll_epi32(_mm512_cvttps_epi32(_mm512_loadu_ps(vals + 16 * g)),
                                                _mm_cvtsi32_si128(g * bits)));
    _mm512_storeu_si512(out, _mm512_cvtepu32_epi64(_mm512_castsi512_si256(k)));
    _mm512_storeu_si512(out + 8, _mm512_cvtepu32_epi64(_mm512_extracti64x4_epi64(k, 1)));
}

#include "kernels/cpu/x86/hash_lanes.h"

void lshmoe_kn_hash_avx512(const lshmoe_kn_hasher_t *hasher, const void *tokens,
                           lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys,
                           void *ws, size_t *nonfinite_p)
{
    lshmoe_kn_hasher_view_t v;
    if (hasher != NULL)
        lshmoe_kn_hasher_view(hasher, &v);
    if (hasher == NULL || !lshmoe_dtype_is_float(dtype) || v.m < 16) {
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
