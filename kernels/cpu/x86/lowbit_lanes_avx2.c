/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The low-bit row quantizers (INT4, INT4E, INT2) on many rows at once,
 * AVX2 level: the cross-block search of lowbit_lanes_avx512.c (which says
 * why, and why every step is the scalar reference's bit for bit) on 8
 * blocks per vector. The differences are AVX2's: masks are vectors and
 * selections blends, a block is transposed in four 8 x 8 pieces, and the
 * bytes of a partial block are copied from a buffer instead of stored
 * under a byte mask. Built with -ffp-contract=off; the one fused
 * multiply-add (fp16 scales only) is exact there, as the AVX-512 file
 * explains.
 */
#include <immintrin.h>

#include "kernels/cpu/x86/lowbit_lanes.h"

#define LOW LSHMOE_QM_LOW_BLOCK
#define LANES 8
#define INL static inline __attribute__((always_inline))
#define UNROLL _Pragma("GCC unroll 32")

typedef lshmoe_kn_lanes_t lanes_t;

/* In-place transpose of an 8 x 8 matrix of floats (row j: r[j]). */
INL void transpose8(__m256 r[8])
{
    __m256 t[8], u[8];
    UNROLL
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    UNROLL
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xee);
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xee);
    }
    /* u[4g + k], 128-bit lane h: element 4h + k of rows 4g .. 4g + 3 */
    UNROLL
    for (int k = 0; k < 4; k++) {
        r[k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x20);
        r[4 + k] = _mm256_permute2f128_ps(u[k], u[4 + k], 0x31);
    }
}

/* A candidate scale per lane: code (int32 lanes), decoded s and inverse
 * inv (both 0 where the reference's inverse is 0). */
typedef struct scale8 {
    __m256i code;
    __m256  s, inv;
} scale8_t;

INL __m256 mask_ps(__m256 v, __m256 m)
{
    return _mm256_and_ps(v, m);
}

/* lshmoe_qm_scale_inv on decoded scales sv. */
INL void invert8(__m256 sv, scale8_t *o)
{
    __m256 iv = _mm256_div_ps(_mm256_set1_ps(1.0f), sv);
    __m256 ok = _mm256_and_ps(_mm256_cmp_ps(sv, _mm256_setzero_ps(), _CMP_GT_OQ),
                              _mm256_cmp_ps(iv, _mm256_set1_ps(INFINITY), _CMP_LT_OQ));
    o->inv = mask_ps(iv, ok);
    o->s = mask_ps(sv, ok);
}

/* lshmoe_qm_e8_of(v) and lshmoe_qm_e8_scale() of it, v >= 0. */
INL void e8_scale8(__m256 v, scale8_t *o)
{
    const __m256i u = _mm256_castps_si256(v), ef = _mm256_srli_epi32(u, 23);
    const __m256 m = _mm256_castsi256_ps(_mm256_or_si256(
        _mm256_and_si256(u, _mm256_set1_epi32(0x7fffff)), _mm256_set1_epi32(0x3f800000)));
    const __m256i one = _mm256_set1_epi32(1), k255 = _mm256_set1_epi32(255);
    /* 4 (ef - 127) + q + 160; each comparison's mask is -1 */
    __m256i k = _mm256_sub_epi32(_mm256_slli_epi32(ef, 2), _mm256_set1_epi32(348));
    k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(1.09050773f),
                                                               _CMP_GE_OQ)));
    k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(1.29683955f),
                                                               _CMP_GE_OQ)));
    k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(1.54221083f),
                                                               _CMP_GE_OQ)));
    k = _mm256_sub_epi32(k, _mm256_castps_si256(_mm256_cmp_ps(m, _mm256_set1_ps(1.83400809f),
                                                               _CMP_GE_OQ)));
    k = _mm256_min_epi32(_mm256_max_epi32(k, one), k255);
    k = _mm256_blendv_epi8(k, one, _mm256_cmpeq_epi32(ef, _mm256_setzero_si256()));
    k = _mm256_blendv_epi8(k, k255, _mm256_cmpeq_epi32(ef, k255));
    k = _mm256_and_si256(k, _mm256_castps_si256(_mm256_cmp_ps(v, _mm256_setzero_ps(),
                                                              _CMP_GT_OQ)));
    /* 2^oct x frac[q] for k - 160 = 4 oct + q; 0 for k = 0 */
    const __m256 frac = _mm256_setr_ps(lshmoe_qm_e8_scale(160), lshmoe_qm_e8_scale(161),
                                       lshmoe_qm_e8_scale(162), lshmoe_qm_e8_scale(163),
                                       lshmoe_qm_e8_scale(160), lshmoe_qm_e8_scale(161),
                                       lshmoe_qm_e8_scale(162), lshmoe_qm_e8_scale(163));
    __m256i kk = _mm256_sub_epi32(k, _mm256_set1_epi32(160));
    __m256 p2 = _mm256_castsi256_ps(_mm256_slli_epi32(
        _mm256_add_epi32(_mm256_srai_epi32(kk, 2), _mm256_set1_epi32(127)), 23));
    __m256 sv = _mm256_mul_ps(
        p2, _mm256_permutevar_ps(frac, _mm256_and_si256(kk, _mm256_set1_epi32(3))));
    sv = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(k, _mm256_setzero_si256())), sv);
    o->code = k;
    invert8(sv, o);
}

/* lshmoe_qm_scale_code / lshmoe_qm_scale_value for fp16 scales. */
INL void f16_scale8(__m256 v, scale8_t *o)
{
    __m128i h = _mm256_cvtps_ph(_mm256_min_ps(v, _mm256_set1_ps(65504.0f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    o->code = _mm256_cvtepu16_epi32(h);
    invert8(_mm256_cvtph_ps(h), o);
}

/* A try's (or the kept) levels (code less the decoder's offset), as
 * level16 of the AVX-512 file. */
INL __m256 level8(__m256 v, __m256 inv, int bits, int exact_zero)
{
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    __m256 t = _mm256_mul_ps(v, inv);
    if (bits == 4) {
        t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-8.0f)), _mm256_set1_ps(7.0f));
    } else {
        t = _mm256_sub_ps(t, _mm256_set1_ps(0.5f));
        t = _mm256_min_ps(_mm256_max_ps(t, _mm256_set1_ps(-2.0f)), _mm256_set1_ps(1.0f));
    }
    t = exact_zero ? _mm256_sub_ps(_mm256_add_ps(t, magic), magic) : _mm256_round_ps(t, rn);
    return bits == 4 ? t : _mm256_add_ps(t, _mm256_set1_ps(0.5f));
}

/* (x - level * s)^2 for one try (fused where the product is exact). */
INL __m256 d2_8(__m256 v, __m256 inv, __m256 s, int fmt)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    __m256 q = level8(v, inv, bits, 0);
    __m256 d = fmt == LSHMOE_QM_INT4E ? _mm256_sub_ps(v, _mm256_mul_ps(q, s))
                                      : _mm256_fnmadd_ps(q, s, v);
    return _mm256_mul_ps(d, d);
}

#define LL_VEC __m256
#define LL_SCALE scale8_t
#define ll_zero _mm256_setzero_ps
#define ll_add _mm256_add_ps
#define ll_d2 d2_8
#include "kernels/cpu/x86/lowbit_errors.h"

/* An AVX2 mask of the first k of 8 int32 lanes. */
INL __m256i first8(int k)
{
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(k), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* Stores the first nbytes of a block's code bytes (all: 16 or 8). */
INL void put_bytes(uint8_t *p, __m128i v, int nbytes, int all)
{
    if (nbytes == all && all == 16) {
        _mm_storeu_si128((__m128i *)(void *)p, v);
    } else if (nbytes == all) {
        _mm_storel_epi64((__m128i *)(void *)p, v);
    } else {
        uint8_t b[16];
        _mm_storeu_si128((__m128i *)(void *)b, v);
        memcpy(p, b, (size_t)nbytes);
    }
}

/* Per lane, the 4 (4-bit) or 2 (2-bit) dwords w[t] of its code bytes. */
INL void store_codes(const __m256i *w, int bits, int nbytes, const lanes_t *L)
{
    __m256i t0 = _mm256_unpacklo_epi32(w[0], w[1]), t1 = _mm256_unpackhi_epi32(w[0], w[1]);
    if (bits == 2) { /* 128-bit lane h: blocks 4h, 4h + 1 (t0); 4h + 2, 4h + 3 (t1) */
        __m128i a[2] = {_mm256_castsi256_si128(t0), _mm256_extracti128_si256(t0, 1)};
        __m128i b[2] = {_mm256_castsi256_si128(t1), _mm256_extracti128_si256(t1, 1)};
        UNROLL
        for (int h = 0; h < 2; h++) {
            put_bytes(L->code[4 * h], a[h], nbytes, 8);
            put_bytes(L->code[4 * h + 1], _mm_unpackhi_epi64(a[h], a[h]), nbytes, 8);
            put_bytes(L->code[4 * h + 2], b[h], nbytes, 8);
            put_bytes(L->code[4 * h + 3], _mm_unpackhi_epi64(b[h], b[h]), nbytes, 8);
        }
        return;
    }
    __m256i t2 = _mm256_unpacklo_epi32(w[2], w[3]), t3 = _mm256_unpackhi_epi32(w[2], w[3]);
    __m256i o[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                    _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
    /* o[k], 128-bit lane h: the 16 bytes of block 4h + k */
    UNROLL
    for (int k = 0; k < 4; k++) {
        put_bytes(L->code[k], _mm256_castsi256_si128(o[k]), nbytes, 16);
        put_bytes(L->code[4 + k], _mm256_extracti128_si256(o[k], 1), nbytes, 16);
    }
}

/* The search, codes and decoded elements of 8 blocks of n <= 32 elements
 * (search16 of the AVX-512 file on 8 lanes). */
INL void search8(const lanes_t *L, int fmt, int n)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const float *clip = fmt == LSHMOE_QM_INT2 ? lshmoe_qr_clip2 : lshmoe_qr_clip4;
    const __m256 qmax = _mm256_set1_ps(fmt == LSHMOE_QM_INT2 ? 1.5f : 7.0f);
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 v[LOW], amax = _mm256_setzero_ps();

    UNROLL
    for (int q = 0; q < LOW / 8; q++) {
        const int cnt = n - 8 * q;
        if (cnt <= 0) {
            for (int j = 0; j < 8; j++)
                v[8 * q + j] = _mm256_setzero_ps();
            continue;
        }
        UNROLL
        for (int j = 0; j < LANES; j++)
            v[8 * q + j] = cnt >= 8 ? _mm256_loadu_ps(L->x[j] + 8 * q)
                                    : _mm256_maskload_ps(L->x[j] + 8 * q, first8(cnt));
        transpose8(v + 8 * q);
    }
    UNROLL
    for (int i = 0; i < n && i < LOW; i++)
        amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[i]));

    scale8_t t[LSHMOE_QR_NCLIP];
    __m256 e[LSHMOE_QR_NCLIP];
    UNROLL
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++) {
        __m256 sc = _mm256_div_ps(_mm256_mul_ps(_mm256_set1_ps(clip[c]), amax), qmax);
        if (fmt == LSHMOE_QM_INT4E)
            e8_scale8(sc, &t[c]);
        else
            f16_scale8(sc, &t[c]);
    }
    try_errors(v, t, fmt, n, e);
    for (int c = 0; L->err != NULL && c < LSHMOE_QR_NCLIP; c++) {
        _mm256_storeu_ps(L->err + c * LANES, e[c]);
        _mm256_storeu_si256((__m256i *)(void *)(L->err_code + c * LANES), t[c].code);
    }
    __m256 best_e = _mm256_set1_ps(INFINITY), best_s = _mm256_setzero_ps();
    __m256 best_inv = _mm256_setzero_ps();
    __m256i best = _mm256_setzero_si256();
    UNROLL
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++) {
        __m256 win = _mm256_cmp_ps(e[c], best_e, _CMP_LT_OQ);
        best_e = _mm256_blendv_ps(best_e, e[c], win);
        best = _mm256_blendv_epi8(best, t[c].code, _mm256_castps_si256(win));
        best_s = _mm256_blendv_ps(best_s, t[c].s, win);
        best_inv = _mm256_blendv_ps(best_inv, t[c].inv, win);
    }
    /* a winner whose inverse is 0 (or none): scale code 0, codes of 0 */
    best = _mm256_and_si256(best, _mm256_castps_si256(_mm256_cmp_ps(
                                      best_inv, _mm256_setzero_ps(), _CMP_NEQ_UQ)));

    const int per_byte = 8 / bits, per_dword = 4 * per_byte;
    __m256i w[4];
    UNROLL
    for (int dw = 0; dw < LOW / per_dword; dw++) {
        __m256i acc = _mm256_setzero_si256();
        UNROLL
        for (int i = 0; i < per_dword; i++) {
            int at = dw * per_dword + i;
            if (at >= n) { /* past a partial block: decoded 0, code bits 0 */
                v[at] = _mm256_setzero_ps();
                continue;
            }
            __m256 q = level8(v[at], best_inv, bits, 1);
            v[at] = _mm256_mul_ps(q, best_s); /* decoded, as the decoder does */
            __m256i qi = _mm256_cvtps_epi32(bits == 4 ? q : _mm256_add_ps(q, _mm256_set1_ps(1.5f)));
            qi = _mm256_and_si256(qi, _mm256_set1_epi32(bits == 4 ? 15 : 3));
            acc = _mm256_or_si256(acc, _mm256_slli_epi32(qi, bits * i));
        }
        w[dw] = acc;
    }
    store_codes(w, bits, (n + per_byte - 1) / per_byte, L);

    uint32_t codes[LANES];
    _mm256_storeu_si256((__m256i *)(void *)codes, best);
    UNROLL
    for (int j = 0; j < LANES; j++) {
        if (fmt == LSHMOE_QM_INT4E)
            L->scale[j][0] = (uint8_t)codes[j];
        else
            lshmoe_qm_put_f16(L->scale[j], (uint16_t)codes[j]);
    }
    for (int q = 0; L->y[0] != NULL && q < LOW / 8; q++) {
        const int cnt = n - 8 * q;
        if (cnt <= 0)
            break;
        transpose8(v + 8 * q);
        for (int j = 0; j < LANES; j++) {
            if (cnt >= 8)
                _mm256_storeu_ps(L->y[j] + 8 * q, v[8 * q + j]);
            else
                _mm256_maskstore_ps(L->y[j] + 8 * q, first8(cnt), v[8 * q + j]);
        }
    }
}

/* Whole blocks and partial ones are separate instances. */
static void search(const lanes_t *L, int fmt, int n)
{
    if (n == LOW && fmt == LSHMOE_QM_INT4)
        search8(L, LSHMOE_QM_INT4, LOW);
    else if (n == LOW && fmt == LSHMOE_QM_INT4E)
        search8(L, LSHMOE_QM_INT4E, LOW);
    else if (n == LOW)
        search8(L, LSHMOE_QM_INT2, LOW);
    else if (fmt == LSHMOE_QM_INT4)
        search8(L, LSHMOE_QM_INT4, n);
    else if (fmt == LSHMOE_QM_INT4E)
        search8(L, LSHMOE_QM_INT4E, n);
    else
        search8(L, LSHMOE_QM_INT2, n);
}

void lshmoe_kn_quant_rows_sse_avx2(LSHMOE_KN_QUANT_ROWS_ARGS)
{
    if (fmt != LSHMOE_QM_INT4 && fmt != LSHMOE_QM_INT4E && fmt != LSHMOE_QM_INT2)
        lshmoe_kn_rows_by_row(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride, y, sse,
                              lshmoe_kn_quant_row_avx2, lshmoe_kn_quant_row_sse_avx2);
    else
        lshmoe_kn_lanes_rows(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride, y, sse,
                             LANES, search, lshmoe_kn_measure_row_avx2);
}

int lshmoe_kn_low_block_errors_n_avx2(int fmt, const float *x, size_t n, float *e)
{
    return lshmoe_kn_lanes_errors(fmt, x, n, e, LANES, search);
}
