/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The low-bit row quantizers (INT4, INT4E, INT2) on many rows at once,
 * AVX-512 level (kernels.h: lshmoe_kn_quant_rows_sse): the clip-scale
 * search of 16 whole 32-element blocks side by side, one block per lane.
 *
 * Why: searched one block at a time (quant_avx512.c, low_block), a block
 * is one long dependent chain (max|x| reduced across lanes, four scale
 * codes with two divisions each, four tries, their lane sums, the
 * minimum, the packing): about 170 cycles of latency for some 100 vector
 * operations. Here the 16 blocks are transposed so that vector v[i]
 * holds element i of every block; then every step is a vertical
 * operation on 16 independent blocks and the chain's latency is spread
 * over 16 of them.
 *
 * Bit identity with the scalar reference (kernels/cpu/quant_ref.h),
 * lane by lane:
 *  - max|x| is exact in any order;
 *  - the scale of try c is (clip[c] * amax) / qmax, coded as the
 *    reference codes it (INT4E: lshmoe_qm_e8_of from the float's bits;
 *    INT4/INT2: fp16 by round-to-nearest-even, VCVTPS2PH, of the value
 *    saturated at 65504 by a min with the reference's operand order),
 *    decoded, and inverted (0, and the scale 0, where 1 / s is not
 *    finite: lshmoe_qm_scale_inv);
 *  - a try's codes are the reference's clamp and round (the rounding by
 *    VRNDSCALEPS: it can differ from the 1.5 * 2^23 addition only in the
 *    sign of a zero code, which changes neither x - q * s's square nor
 *    the packed nibble, and the codes kept are recomputed below by the
 *    addition);
 *  - a try's error is the reference's sum for a whole block: part[k] =
 *    d[k]^2 + d[k+8]^2 + d[k+16]^2 + d[k+24]^2 in that order, then
 *    part[0] + ... + part[7] in that order (the reference starts both
 *    sums at +0, which adds nothing to a sum of squares);
 *  - the first strictly smaller error wins, from +Inf, as the reference
 *    scans: a repeated code (the reference leaves it out) has the same
 *    error and never wins, NaN never wins, and a block where nothing
 *    wins or where the winner's inverse is 0 gets the scale code 0 and
 *    the codes of 0;
 *  - the kept codes are recomputed with the winner's inverse (0 for the
 *    scale code 0, which gives the codes of 0) and decoded as the
 *    decoder does, (code - offset) * scale.
 * Built with -ffp-contract=off like every file of this level.
 *
 * Partial blocks (the end of a row whose width is not a multiple of 32:
 * every row of a call has one of the same length) are searched side by
 * side as well, after the whole ones, with the reference's sum for a
 * partial block (its n % 8 last elements first) and masked loads and
 * stores. Each row's error is then measured over the row in the
 * reference's order (lshmoe_kn_measure_row_avx512).
 */
#include <immintrin.h>

#include "kernels/cpu/x86/lowbit_lanes.h"

#define LOW LSHMOE_QM_LOW_BLOCK
#define LANES 16
#define INL static inline __attribute__((always_inline))
/* Loops over elements, lanes and tries run in full: their trip counts are
 * constants (n too, for whole blocks), and unrolled they leave the
 * out-of-order core 16 independent blocks per step and no loop state. */
#define UNROLL _Pragma("GCC unroll 32")

typedef lshmoe_kn_lanes_t lanes_t;

/* In-place transpose of a 16 x 16 matrix of floats (row j: r[j]). */
INL void transpose16(__m512 r[16])
{
    __m512 t[16];
    UNROLL
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    UNROLL
    for (int i = 0; i < 16; i += 4) {
        __m512d a = _mm512_castps_pd(t[i]), b = _mm512_castps_pd(t[i + 1]);
        __m512d c = _mm512_castps_pd(t[i + 2]), d = _mm512_castps_pd(t[i + 3]);
        r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    /* r[4g + k], 128-bit lane L: element 4L + k of rows 4g .. 4g + 3 */
    UNROLL
    for (int k = 0; k < 4; k++) {
        __m512 ab_lo = _mm512_shuffle_f32x4(r[k], r[4 + k], 0x44);
        __m512 ab_hi = _mm512_shuffle_f32x4(r[k], r[4 + k], 0xee);
        __m512 cd_lo = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0x44);
        __m512 cd_hi = _mm512_shuffle_f32x4(r[8 + k], r[12 + k], 0xee);
        t[k] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0x88);
        t[4 + k] = _mm512_shuffle_f32x4(ab_lo, cd_lo, 0xdd);
        t[8 + k] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0x88);
        t[12 + k] = _mm512_shuffle_f32x4(ab_hi, cd_hi, 0xdd);
    }
    UNROLL
    for (int i = 0; i < 16; i++)
        r[i] = t[i];
}

/* A candidate scale per lane: its code (int32 lanes), decoded value s and
 * inverse inv (both 0 where the reference's inverse is 0). */
typedef struct scale16 {
    __m512i code;
    __m512  s, inv;
} scale16_t;

/* lshmoe_qm_scale_inv on decoded scales sv. */
INL void invert16(__m512 sv, scale16_t *o)
{
    __m512 iv = _mm512_div_ps(_mm512_set1_ps(1.0f), sv);
    __mmask16 ok = _mm512_cmp_ps_mask(sv, _mm512_setzero_ps(), _CMP_GT_OQ) &
                   _mm512_cmp_ps_mask(iv, _mm512_set1_ps(INFINITY), _CMP_LT_OQ);
    o->inv = _mm512_maskz_mov_ps(ok, iv);
    o->s = _mm512_maskz_mov_ps(ok, sv);
}

/* lshmoe_qm_e8_of(v) and lshmoe_qm_e8_scale() of it, v >= 0 (as
 * quant_avx512.c's e8_clip4, on 16 lanes). */
INL void e8_scale16(__m512 v, scale16_t *o)
{
    const __m512i u = _mm512_castps_si512(v), ef = _mm512_srli_epi32(u, 23);
    const __m512 m = _mm512_castsi512_ps(_mm512_or_si512(
        _mm512_and_si512(u, _mm512_set1_epi32(0x7fffff)), _mm512_set1_epi32(0x3f800000)));
    const __m512i one = _mm512_set1_epi32(1);
    /* 4 (ef - 127) + q + 160, q = the thresholds m is at or above */
    __m512i k = _mm512_sub_epi32(_mm512_slli_epi32(ef, 2), _mm512_set1_epi32(348));
    k = _mm512_mask_add_epi32(k, _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.09050773f), _CMP_GE_OQ),
                              k, one);
    k = _mm512_mask_add_epi32(k, _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.29683955f), _CMP_GE_OQ),
                              k, one);
    k = _mm512_mask_add_epi32(k, _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.54221083f), _CMP_GE_OQ),
                              k, one);
    k = _mm512_mask_add_epi32(k, _mm512_cmp_ps_mask(m, _mm512_set1_ps(1.83400809f), _CMP_GE_OQ),
                              k, one);
    k = _mm512_min_epi32(_mm512_max_epi32(k, one), _mm512_set1_epi32(255));
    k = _mm512_mask_mov_epi32(k, _mm512_cmpeq_epi32_mask(ef, _mm512_setzero_si512()), one);
    k = _mm512_mask_mov_epi32(k, _mm512_cmpeq_epi32_mask(ef, _mm512_set1_epi32(255)),
                              _mm512_set1_epi32(255));
    k = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GT_OQ), k);
    /* 2^oct x frac[q] for k - 160 = 4 oct + q; 0 for k = 0 */
    const __m512 frac = _mm512_setr_ps(lshmoe_qm_e8_scale(160), lshmoe_qm_e8_scale(161),
                                       lshmoe_qm_e8_scale(162), lshmoe_qm_e8_scale(163), 0, 0,
                                       0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    __m512i kk = _mm512_sub_epi32(k, _mm512_set1_epi32(160));
    __m512 p2 = _mm512_castsi512_ps(_mm512_slli_epi32(
        _mm512_add_epi32(_mm512_srai_epi32(kk, 2), _mm512_set1_epi32(127)), 23));
    __m512 sv = _mm512_mul_ps(
        p2, _mm512_permutexvar_ps(_mm512_and_si512(kk, _mm512_set1_epi32(3)), frac));
    sv = _mm512_maskz_mov_ps(_mm512_cmpneq_epi32_mask(k, _mm512_setzero_si512()), sv);
    o->code = k;
    invert16(sv, o);
}

/* lshmoe_qm_scale_code / lshmoe_qm_scale_value for fp16 scales. */
INL void f16_scale16(__m512 v, scale16_t *o)
{
    __m256i h = _mm512_cvtps_ph(_mm512_min_ps(v, _mm512_set1_ps(65504.0f)),
                                _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    o->code = _mm512_cvtepu16_epi32(h);
    invert16(_mm512_cvtph_ps(h), o);
}

/* A try's (or the kept) codes of element vector v, as floats: the
 * reference's lshmoe_qm_code (-8..7) or lshmoe_qm_code2 (0..3), less the
 * decoder's offset for 2-bit codes ((q - 1.5) = rne + 0.5 exactly). With
 * exact_zero the rounding is the reference's addition (a zero code is
 * +0); without, VRNDSCALEPS (see the top of the file). */
INL __m512 level16(__m512 v, __m512 inv, int bits, int exact_zero)
{
    const int rn = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    __m512 t = _mm512_mul_ps(v, inv);
    if (bits == 4) {
        t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-8.0f)), _mm512_set1_ps(7.0f));
    } else {
        t = _mm512_sub_ps(t, _mm512_set1_ps(0.5f));
        t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-2.0f)), _mm512_set1_ps(1.0f));
    }
    t = exact_zero ? _mm512_sub_ps(_mm512_add_ps(t, magic), magic)
                   : _mm512_roundscale_ps(t, rn);
    return bits == 4 ? t : _mm512_add_ps(t, _mm512_set1_ps(0.5f));
}

/* (x - level * s)^2 for one try. With fp16 scales (INT4, INT2) the
 * product level * s is exact in fp32 (a level of at most 4 significant
 * bits times an 11-bit significand, far from the fp32 range's ends), so
 * x - level * s rounds once either way and one fused negated multiply-add
 * gives the reference's difference bit for bit; INT4E's scales have
 * 24-bit significands, so there the product is rounded first, as the
 * reference rounds it. */
INL __m512 d2_16(__m512 v, __m512 inv, __m512 s, int fmt)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    __m512 q = level16(v, inv, bits, 0);
    __m512 d = fmt == LSHMOE_QM_INT4E ? _mm512_sub_ps(v, _mm512_mul_ps(q, s))
                                      : _mm512_fnmadd_ps(q, s, v);
    return _mm512_mul_ps(d, d);
}

#define LL_VEC __m512
#define LL_SCALE scale16_t
#define ll_zero _mm512_setzero_ps
#define ll_add _mm512_add_ps
#define ll_d2 d2_16
#include "kernels/cpu/x86/lowbit_errors.h"

/* The four 128-bit lanes of v (the index must be a constant). */
INL void split4(__m512i v, __m128i out[4])
{
    out[0] = _mm512_castsi512_si128(v);
    out[1] = _mm512_extracti32x4_epi32(v, 1);
    out[2] = _mm512_extracti32x4_epi32(v, 2);
    out[3] = _mm512_extracti32x4_epi32(v, 3);
}

/* Stores the first nbytes (all: 16 or 8) of a block's code bytes. */
INL void put_bytes(uint8_t *p, __m128i v, int nbytes, int all)
{
    if (nbytes == all && all == 16)
        _mm_storeu_si128((__m128i *)(void *)p, v);
    else if (nbytes == all)
        _mm_storel_epi64((__m128i *)(void *)p, v);
    else
        _mm_mask_storeu_epi8(p, (__mmask16)((1u << nbytes) - 1u), v);
}

/* Packs 4 (4-bit) or 2 (2-bit) dwords per lane, w[t] holding bytes
 * 4t .. 4t + 3 of each block's codes, and stores each lane's first
 * nbytes. */
INL void store_codes(const __m512i *w, int bits, int nbytes, const lanes_t *L)
{
    __m512i t0 = _mm512_unpacklo_epi32(w[0], w[1]), t1 = _mm512_unpackhi_epi32(w[0], w[1]);
    __m128i a[4], b[4];
    if (bits == 2) { /* 128-bit lane q: blocks 4q, 4q + 1 (t0); 4q + 2, 4q + 3 (t1) */
        split4(t0, a);
        split4(t1, b);
        UNROLL
        for (int q = 0; q < 4; q++) {
            put_bytes(L->code[4 * q], a[q], nbytes, 8);
            put_bytes(L->code[4 * q + 1], _mm_unpackhi_epi64(a[q], a[q]), nbytes, 8);
            put_bytes(L->code[4 * q + 2], b[q], nbytes, 8);
            put_bytes(L->code[4 * q + 3], _mm_unpackhi_epi64(b[q], b[q]), nbytes, 8);
        }
        return;
    }
    __m512i t2 = _mm512_unpacklo_epi32(w[2], w[3]), t3 = _mm512_unpackhi_epi32(w[2], w[3]);
    __m512i o[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                    _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
    /* o[k], 128-bit lane q: the 16 bytes of block 4q + k */
    UNROLL
    for (int k = 0; k < 4; k++) {
        split4(o[k], a);
        UNROLL
        for (int q = 0; q < 4; q++)
            put_bytes(L->code[4 * q + k], a[q], nbytes, 16);
    }
}

/* The first k of 16 lanes. */
INL __mmask16 first(int k)
{
    return k >= 16 ? (__mmask16)0xffff : k <= 0 ? 0 : (__mmask16)((1u << k) - 1u);
}

/* The search, codes and decoded elements of the blocks in L (every lane
 * set; unused lanes read zeros and write to a sink), for one format and
 * blocks of n <= 32 elements (a partial block: the elements past n are
 * neither read nor written, nor summed, and their code bits are 0). */
INL void search16(const lanes_t *L, int fmt, int n)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const float *clip = fmt == LSHMOE_QM_INT2 ? lshmoe_qr_clip2 : lshmoe_qr_clip4;
    const __m512 qmax = _mm512_set1_ps(fmt == LSHMOE_QM_INT2 ? 1.5f : 7.0f);
    __m512 v[LOW], amax = _mm512_setzero_ps();

    UNROLL
    for (int half = 0; half < 2; half++) {
        const __mmask16 k = first(n - 16 * half);
        UNROLL
        for (int j = 0; j < LANES; j++)
            v[16 * half + j] = k == 0xffff ? _mm512_loadu_ps(L->x[j] + 16 * half)
                                           : _mm512_maskz_loadu_ps(k, L->x[j] + 16 * half);
        if (k != 0)
            transpose16(v + 16 * half);
    }
    UNROLL
    for (int i = 0; i < n; i++)
        amax = _mm512_max_ps(amax, _mm512_abs_ps(v[i]));

    __m512 best_e = _mm512_set1_ps(INFINITY), best_s = _mm512_setzero_ps();
    __m512 best_inv = _mm512_setzero_ps();
    __m512i best = _mm512_setzero_si512();
    scale16_t t[LSHMOE_QR_NCLIP];
    __m512 e[LSHMOE_QR_NCLIP];
    UNROLL
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++) {
        __m512 sc = _mm512_div_ps(_mm512_mul_ps(_mm512_set1_ps(clip[c]), amax), qmax);
        if (fmt == LSHMOE_QM_INT4E)
            e8_scale16(sc, &t[c]);
        else
            f16_scale16(sc, &t[c]);
    }
    try_errors(v, t, fmt, n, e);
    for (int c = 0; L->err != NULL && c < LSHMOE_QR_NCLIP; c++) {
        _mm512_storeu_ps(L->err + c * LANES, e[c]);
        _mm512_storeu_si512(L->err_code + c * LANES, t[c].code);
    }
    UNROLL
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++) {
        __mmask16 win = _mm512_cmp_ps_mask(e[c], best_e, _CMP_LT_OQ);
        best_e = _mm512_mask_mov_ps(best_e, win, e[c]);
        best = _mm512_mask_mov_epi32(best, win, t[c].code);
        best_s = _mm512_mask_mov_ps(best_s, win, t[c].s);
        best_inv = _mm512_mask_mov_ps(best_inv, win, t[c].inv);
    }
    /* a winner whose inverse is 0 (or none): scale code 0, codes of 0 */
    best = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(best_inv, _mm512_setzero_ps(), _CMP_NEQ_UQ),
                                  best);

    /* the kept codes, packed: byte j of a block holds codes 8j / bits ..
     * (dword t: bytes 4t .. 4t + 3) */
    const int per_byte = 8 / bits, per_dword = 4 * per_byte;
    __m512i w[4];
    UNROLL
    for (int dw = 0; dw < LOW / per_dword; dw++) {
        __m512i acc = _mm512_setzero_si512();
        UNROLL
        for (int i = 0; i < per_dword; i++) {
            int at = dw * per_dword + i;
            if (at >= n) { /* past a partial block: decoded 0, code bits 0 */
                v[at] = _mm512_setzero_ps();
                continue;
            }
            __m512 q = level16(v[at], best_inv, bits, 1);
            v[at] = _mm512_mul_ps(q, best_s); /* decoded, as the decoder does */
            __m512i qi = _mm512_cvtps_epi32(bits == 4 ? q : _mm512_add_ps(q, _mm512_set1_ps(1.5f)));
            qi = _mm512_and_si512(qi, _mm512_set1_epi32(bits == 4 ? 15 : 3));
            acc = _mm512_or_si512(acc, _mm512_slli_epi32(qi, bits * i));
        }
        w[dw] = acc;
    }
    store_codes(w, bits, (n + per_byte - 1) / per_byte, L);

    uint32_t codes[LANES];
    _mm512_storeu_si512(codes, best);
    UNROLL
    for (int j = 0; j < LANES; j++) {
        if (fmt == LSHMOE_QM_INT4E)
            L->scale[j][0] = (uint8_t)codes[j];
        else
            lshmoe_qm_put_f16(L->scale[j], (uint16_t)codes[j]);
    }
    for (int half = 0; L->y[0] != NULL && half < 2; half++) {
        const __mmask16 k = first(n - 16 * half);
        if (k == 0)
            break;
        transpose16(v + 16 * half);
        UNROLL
        for (int j = 0; j < LANES; j++) {
            if (k == 0xffff)
                _mm512_storeu_ps(L->y[j] + 16 * half, v[16 * half + j]);
            else
                _mm512_mask_storeu_ps(L->y[j] + 16 * half, k, v[16 * half + j]);
        }
    }
}

/* Whole blocks and partial ones are separate instances (the whole ones'
 * loops fully unrolled). */
static void search(const lanes_t *L, int fmt, int n)
{
    if (n == LOW && fmt == LSHMOE_QM_INT4)
        search16(L, LSHMOE_QM_INT4, LOW);
    else if (n == LOW && fmt == LSHMOE_QM_INT4E)
        search16(L, LSHMOE_QM_INT4E, LOW);
    else if (n == LOW)
        search16(L, LSHMOE_QM_INT2, LOW);
    else if (fmt == LSHMOE_QM_INT4)
        search16(L, LSHMOE_QM_INT4, n);
    else if (fmt == LSHMOE_QM_INT4E)
        search16(L, LSHMOE_QM_INT4E, n);
    else
        search16(L, LSHMOE_QM_INT2, n);
}

void lshmoe_kn_quant_rows_sse_avx512(LSHMOE_KN_QUANT_ROWS_ARGS)
{
    if (fmt != LSHMOE_QM_INT4 && fmt != LSHMOE_QM_INT4E && fmt != LSHMOE_QM_INT2)
        lshmoe_kn_rows_by_row(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride, y, sse,
                              lshmoe_kn_quant_row_avx512, lshmoe_kn_quant_row_sse_avx512);
    else
        lshmoe_kn_lanes_rows(fmt, x, x_stride, nrows, hidden, dtype, dst, dst_stride, y, sse,
                             LANES, search, lshmoe_kn_measure_row_avx512);
}

int lshmoe_kn_low_block_errors_n_avx512(int fmt, const float *x, size_t n, float *e)
{
    return lshmoe_kn_lanes_errors(fmt, x, n, e, LANES, search);
}
