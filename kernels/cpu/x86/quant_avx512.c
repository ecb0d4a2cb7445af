/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row quantizers, AVX-512 level: the same bytes, floats and errors as the
 * scalar reference (kernels/cpu/quant.c, quant_sse.c), bit for bit; the
 * same per-lane operations as the AVX2 level (quant_avx2.c, which says
 * why they match) on 16 lanes, with masked loads and stores for the ends
 * of FP8 blocks and int8 rows. Sums keep the reference's 8-lane order: a
 * 16-lane vector of squares is added to the 8 partials as its low half,
 * then its high half. Built with -ffp-contract=off.
 */
#include <immintrin.h>

#include "kernels/cpu/quant_isa.h"
#include "kernels/cpu/quant_ref.h"
#include "kernels/cpu/x86/lane_sums.h"
#include "kernels/cpu/x86/rows_avx512.h"

#define LOW LSHMOE_QM_LOW_BLOCK
#define INL static inline __attribute__((always_inline))

INL __mmask16 first(size_t k)
{
    return k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << k) - 1u);
}

/* max|x| over n elements (exact in any order). */
static float amax_row(const float *x, size_t n)
{
    __m512 m = _mm512_setzero_ps();
    for (size_t i = 0; i < n; i += 16)
        m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_maskz_loadu_ps(first(n - i), x + i)));
    return _mm512_reduce_max_ps(m);
}

INL __m512 rne16(__m512 v)
{
    const __m512 magic = _mm512_set1_ps(12582912.0f);
    return _mm512_sub_ps(_mm512_add_ps(v, magic), magic);
}

INL __m512 code16(__m512 x, __m512 inv, __m512 lo, __m512 hi)
{
    __m512 v = _mm512_max_ps(_mm512_mul_ps(x, inv), lo);
    return rne16(_mm512_min_ps(v, hi));
}

INL __m512 code2_16(__m512 x, __m512 inv)
{
    __m512 v = _mm512_sub_ps(_mm512_mul_ps(x, inv), _mm512_set1_ps(0.5f));
    v = _mm512_max_ps(v, _mm512_set1_ps(-2.0f));
    v = _mm512_min_ps(v, _mm512_set1_ps(1.0f));
    return _mm512_add_ps(rne16(v), _mm512_set1_ps(2.0f));
}

/* lshmoe_qm_f32_to_e4m3() on 16 finite lanes. */
INL __m512i e4m3_16(__m512 v)
{
    __m512i u = _mm512_castps_si512(v);
    __m512i sign = _mm512_and_si512(_mm512_srli_epi32(u, 24), _mm512_set1_epi32(0x80));
    __m512i a = _mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff));
    __mmask16 sat = _mm512_cmpgt_epi32_mask(a, _mm512_set1_epi32(0x43dfffff));
    __mmask16 sub = _mm512_cmpgt_epi32_mask(_mm512_set1_epi32(0x3c800000), a);
    __m512i qs = _mm512_cvtps_epi32(
        _mm512_mul_ps(_mm512_castsi512_ps(a), _mm512_set1_ps(512.0f)));
    __m512i r = _mm512_add_epi32(
        _mm512_add_epi32(a, _mm512_set1_epi32(0x7ffff)),
        _mm512_and_si512(_mm512_srli_epi32(a, 20), _mm512_set1_epi32(1)));
    __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(r, 23), _mm512_set1_epi32(120));
    __m512i q = _mm512_or_si512(_mm512_slli_epi32(e, 3),
                                _mm512_and_si512(_mm512_srli_epi32(r, 20),
                                                 _mm512_set1_epi32(7)));
    q = _mm512_mask_mov_epi32(q, sub, qs);
    q = _mm512_mask_mov_epi32(q, sat, _mm512_set1_epi32(0x7e));
    return _mm512_or_si512(q, sign);
}

/* lshmoe_qm_e4m3_to_f32() on 16 codes (int32 lanes). */
INL __m512 e4m3_dec16(__m512i c)
{
    __m512i sign = _mm512_slli_epi32(_mm512_and_si512(c, _mm512_set1_epi32(0x80)), 24);
    __m512i e = _mm512_and_si512(_mm512_srli_epi32(c, 3), _mm512_set1_epi32(15));
    __m512i m = _mm512_and_si512(c, _mm512_set1_epi32(7));
    __m512i bits = _mm512_or_si512(
        _mm512_or_si512(sign, _mm512_slli_epi32(_mm512_add_epi32(e, _mm512_set1_epi32(120)), 23)),
        _mm512_slli_epi32(m, 20));
    __m512i sub = _mm512_or_si512(
        _mm512_castps_si512(_mm512_mul_ps(_mm512_cvtepi32_ps(m), _mm512_set1_ps(0.001953125f))),
        sign);
    bits = _mm512_mask_mov_epi32(bits, _mm512_cmpeq_epi32_mask(e, _mm512_setzero_si512()), sub);
    __mmask16 nan = _mm512_cmpeq_epi32_mask(_mm512_and_si512(c, _mm512_set1_epi32(0x7f)),
                                            _mm512_set1_epi32(0x7f));
    bits = _mm512_mask_mov_epi32(bits, nan, _mm512_or_si512(sign, _mm512_set1_epi32(0x7fc00000)));
    return _mm512_castsi512_ps(bits);
}

/* The quantizers below also write the decoded row to y when y is not
 * NULL, from the codes in registers, as quant_avx2.c's do. */
static void quant_fp8(const float *x, size_t hidden, uint8_t *dst, float *y)
{
    size_t nb = (size_t)lshmoe_qm_nblocks(LSHMOE_QM_FP8, hidden);
    uint8_t *codes = dst + 4 * nb;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * LSHMOE_QM_FP8_BLOCK;
        size_t n = hidden - lo < LSHMOE_QM_FP8_BLOCK ? hidden - lo : LSHMOE_QM_FP8_BLOCK;
        float s = amax_row(x + lo, n) / LSHMOE_QM_E4M3_MAX;
        float inv = lshmoe_qm_scale_inv(&s);
        lshmoe_qm_put_f32(dst + 4 * b, s);
        const __m512 vi = _mm512_set1_ps(inv);
        for (size_t i = 0; i < n; i += 16) {
            __mmask16 k = first(n - i);
            __m512i q = e4m3_16(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + lo + i), vi));
            _mm_mask_storeu_epi8(codes + lo + i, k, _mm512_cvtepi32_epi8(q));
            if (y != NULL)
                _mm512_mask_storeu_ps(y + lo + i, k,
                                      _mm512_mul_ps(e4m3_dec16(q), _mm512_set1_ps(s)));
        }
    }
}

static void quant_int8(const float *x, size_t hidden, uint8_t *dst, float *y)
{
    float s = amax_row(x, hidden) / 127.0f;
    float inv = lshmoe_qm_scale_inv(&s);
    lshmoe_qm_put_f32(dst, s);
    const __m512 vi = _mm512_set1_ps(inv), lo = _mm512_set1_ps(-127.0f),
                 hi = _mm512_set1_ps(127.0f);
    for (size_t i = 0; i < hidden; i += 16) {
        __mmask16 k = first(hidden - i);
        __m512 f = code16(_mm512_maskz_loadu_ps(k, x + i), vi, lo, hi);
        _mm_mask_storeu_epi8(dst + 4 + i, k, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(f)));
        if (y != NULL)
            _mm512_mask_storeu_ps(y + i, k, _mm512_mul_ps(f, _mm512_set1_ps(s)));
    }
}

/* Adds 16 squares to the 8 lane partials: low half, then high half. */
INL __m256 add_squares(__m256 part, __m512 d)
{
    __m512 sq = _mm512_mul_ps(d, d);
    part = _mm256_add_ps(part, _mm512_castps512_ps256(sq));
    return _mm256_add_ps(part, _mm512_extractf32x8_ps(sq, 1));
}

/*
 * The INT4E scale codes of the four clip scales of a block with max|x| =
 * amax > 0, their decoded scales s and inverses inv, four lanes at once by
 * the scalar steps' exact operations: clip * amax / 7 rounded as C does it
 * (lshmoe_qr_clip_codes), the byte from the float's exponent and four
 * comparisons of its mantissa (lshmoe_qm_e8_of), the scale a power of two
 * times a table entry (lshmoe_qm_e8_scale), and 1 / s, 0 (and s 0) where
 * that is not finite (lshmoe_qm_scale_inv). A scalar prologue of four
 * quotients, branches and table loads per block was most of the block's
 * time. Repeated codes are kept (the caller skips them).
 */
INL void e8_clip4(float amax, uint16_t *codes, float *s, float *inv)
{
    const __m128 v = _mm_div_ps(_mm_mul_ps(_mm_loadu_ps(lshmoe_qr_clip4), _mm_set1_ps(amax)),
                                _mm_set1_ps(7.0f));
    const __m128i u = _mm_castps_si128(v), ef = _mm_srli_epi32(u, 23);
    const __m128 m = _mm_castsi128_ps(_mm_or_si128(_mm_and_si128(u, _mm_set1_epi32(0x7fffff)),
                                                   _mm_set1_epi32(0x3f800000)));
    __m128i q = _mm_add_epi32(
        _mm_add_epi32(_mm_castps_si128(_mm_cmpge_ps(m, _mm_set1_ps(1.09050773f))),
                      _mm_castps_si128(_mm_cmpge_ps(m, _mm_set1_ps(1.29683955f)))),
        _mm_add_epi32(_mm_castps_si128(_mm_cmpge_ps(m, _mm_set1_ps(1.54221083f))),
                      _mm_castps_si128(_mm_cmpge_ps(m, _mm_set1_ps(1.83400809f)))));
    /* 4 (ef - 127) + q + 160, the comparisons' masks being -1 each */
    __m128i k = _mm_sub_epi32(_mm_sub_epi32(_mm_slli_epi32(ef, 2), q), _mm_set1_epi32(348));
    k = _mm_min_epi32(_mm_max_epi32(k, _mm_set1_epi32(1)), _mm_set1_epi32(255));
    k = _mm_mask_mov_epi32(k, _mm_cmpeq_epi32_mask(ef, _mm_setzero_si128()), _mm_set1_epi32(1));
    k = _mm_mask_mov_epi32(k, _mm_cmpeq_epi32_mask(ef, _mm_set1_epi32(255)),
                           _mm_set1_epi32(255));
    k = _mm_maskz_mov_epi32(_mm_cmp_ps_mask(v, _mm_setzero_ps(), _CMP_GT_OQ), k);
    /* the decoded scale: 2^oct x frac[q] for k - 160 = 4 oct + q, 0 for 0 */
    const __m128 frac = _mm_setr_ps(lshmoe_qm_e8_scale(160), lshmoe_qm_e8_scale(161),
                                    lshmoe_qm_e8_scale(162), lshmoe_qm_e8_scale(163));
    __m128i kk = _mm_sub_epi32(k, _mm_set1_epi32(160));
    __m128 p2 = _mm_castsi128_ps(
        _mm_slli_epi32(_mm_add_epi32(_mm_srai_epi32(kk, 2), _mm_set1_epi32(127)), 23));
    __m128 sv = _mm_mul_ps(p2, _mm_permutevar_ps(frac, _mm_and_si128(kk, _mm_set1_epi32(3))));
    sv = _mm_maskz_mov_ps(_mm_cmpneq_epi32_mask(k, _mm_setzero_si128()), sv);
    __m128 iv = _mm_div_ps(_mm_set1_ps(1.0f), sv);
    __mmask8 ok = _mm_cmp_ps_mask(sv, _mm_setzero_ps(), _CMP_GT_OQ) &
                  _mm_cmp_ps_mask(iv, _mm_set1_ps(INFINITY), _CMP_LT_OQ);
    iv = _mm_maskz_mov_ps(ok, iv);
    sv = _mm_maskz_mov_ps(ok, sv);
    uint32_t kc[4];
    _mm_storeu_si128((__m128i *)(void *)kc, k);
    for (int c = 0; c < 4; c++)
        codes[c] = (uint16_t)kc[c];
    _mm_storeu_ps(s, sv);
    _mm_storeu_ps(inv, iv);
}

/*
 * The clip-scale search of one low-bit block of n <= 32 elements (x0, x1:
 * the block, zero past n), as quant_avx2.c's block_search: the scale codes
 * tried (tries, *ntry_p of them: 0, or four with repeats, which can never
 * win: ties keep the earlier) and their errors e; the scale code
 * kept, its decoded scale and codes. Every scale is measured first, then
 * the four errors are summed at once (lane_sums.h) and the first smallest
 * kept, as the reference does. A partial block sums as the reference's
 * does: its whole groups of 8 in the lane partials (the lanes past them
 * masked to 0, which adds nothing to a sum of squares), the n % 8 elements
 * after them one by one first.
 */
INL void block_search(__m512 x0, __m512 x1, size_t n, int fmt, uint16_t *tries, int *ntry_p,
                      float *e, uint16_t *best_p, float *best_s_p, __m512 *best0_p,
                      __m512 *best1_p)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const __m512 off = _mm512_set1_ps(bits == 4 ? 0.0f : 1.5f);
    const __m512 lo = _mm512_set1_ps(-8.0f), hi = _mm512_set1_ps(7.0f);
    const size_t whole = n - n % 8;
    const __mmask16 w0 = first(whole), w1 = first(whole > 16 ? whole - 16 : 0);
    float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(x0), _mm512_abs_ps(x1)));
    float best_e = INFINITY, best_s = 0.0f, s[LSHMOE_QR_NCLIP], inv[LSHMOE_QR_NCLIP];
    float rem[LSHMOE_QR_NCLIP] = {0};
    uint16_t best = 0;
    int ntry = 0;
    __m512 q0[LSHMOE_QR_NCLIP], q1[LSHMOE_QR_NCLIP];
    __m256 part[LSHMOE_QR_NCLIP];
    if (amax > 0.0f && fmt == LSHMOE_QM_INT4E) {
        e8_clip4(amax, tries, s, inv);
        ntry = LSHMOE_QR_NCLIP;
    } else if (amax > 0.0f) {
        ntry = lshmoe_qr_clip_codes(fmt, amax, tries);
        for (int c = 0; c < ntry; c++) {
            s[c] = lshmoe_qm_scale_value(fmt, tries[c]);
            inv[c] = lshmoe_qm_scale_inv(&s[c]);
        }
        for (; ntry < LSHMOE_QR_NCLIP; ntry++) { /* repeats of the last: never win */
            tries[ntry] = tries[ntry - 1];
            s[ntry] = s[ntry - 1];
            inv[ntry] = inv[ntry - 1];
        }
    }
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
        part[c] = _mm256_setzero_ps();
    /* ntry is 0 or all four: a loop of constant length, kept in registers */
    for (int c = 0; ntry > 0 && c < LSHMOE_QR_NCLIP; c++) {
        const __m512 vi = _mm512_set1_ps(inv[c]), vs = _mm512_set1_ps(s[c]);
        q0[c] = bits == 4 ? code16(x0, vi, lo, hi) : code2_16(x0, vi);
        q1[c] = bits == 4 ? code16(x1, vi, lo, hi) : code2_16(x1, vi);
        __m512 d0 = _mm512_sub_ps(x0, _mm512_mul_ps(_mm512_sub_ps(q0[c], off), vs));
        __m512 d1 = _mm512_sub_ps(x1, _mm512_mul_ps(_mm512_sub_ps(q1[c], off), vs));
        part[c] = add_squares(add_squares(part[c], _mm512_maskz_mov_ps(w0, d0)),
                              _mm512_maskz_mov_ps(w1, d1));
        if (whole < n) { /* the elements after the whole groups, in order */
            float d[2 * 16];
            _mm512_storeu_ps(d, d0);
            _mm512_storeu_ps(d + 16, d1);
            for (size_t i = whole; i < n; i++)
                rem[c] += d[i] * d[i];
        }
    }
    __m128 ev = lshmoe_kn_lane_sums4(part, _mm_loadu_ps(rem));
    _mm_storeu_ps(e, ev);
    __m512 best0 = _mm512_setzero_ps(), best1 = best0;
    if (ntry > 0) {
        /* the first smallest error, as a scan keeping e[c] < best (from
         * INFINITY) finds it: NaN never wins, nor an infinite error */
        ev = _mm_mask_mov_ps(_mm_set1_ps(INFINITY), _mm_cmp_ps_mask(ev, ev, _CMP_ORD_Q), ev);
        __m128 mn = _mm_min_ps(ev, _mm_shuffle_ps(ev, ev, _MM_SHUFFLE(2, 3, 0, 1)));
        mn = _mm_min_ps(mn, _mm_shuffle_ps(mn, mn, _MM_SHUFFLE(1, 0, 3, 2)));
        best_e = _mm_cvtss_f32(mn);
        if (best_e < INFINITY) {
            int c = __builtin_ctz((unsigned)_mm_cmp_ps_mask(ev, mn, _CMP_EQ_OQ));
            best = inv[c] == 0.0f ? 0 : tries[c];
            best_s = s[c];
            best0 = q0[c];
            best1 = q1[c];
        }
    }
    if (best == 0) { /* scale 0: every level decodes to 0 */
        best0 = _mm512_set1_ps(bits == 4 ? 0.0f : 2.0f);
        best1 = best0;
        best_s = 0.0f;
    }
    *best_p = best;
    *best_s_p = best_s;
    *best0_p = best0;
    *best1_p = best1;
    *ntry_p = ntry;
}

/* The reference's list leaves out a code equal to the one before it. */
int lshmoe_kn_low_block_errors_avx512(int fmt, const float *x, float *e)
{
    uint16_t best, tries[LSHMOE_QR_NCLIP];
    float best_s, all[LSHMOE_QR_NCLIP];
    __m512 b0, b1;
    int ntry, n = 0;
    block_search(_mm512_loadu_ps(x), _mm512_loadu_ps(x + 16), LOW, fmt, tries, &ntry, all,
                 &best, &best_s, &b0, &b1);
    for (int c = 0; c < ntry; c++)
        if (c == 0 || tries[c] != tries[c - 1])
            e[n++] = all[c];
    return n;
}

/* Low-bit block b: n <= 32 elements at x (a partial block only at the end
 * of a row), as quant_avx2.c's whole blocks: writes its scale, its code
 * bytes (a partial block: the bytes its n codes reach, the codes past n
 * zero, as the reference's memset and OR leave them) and y[0 .. n). */
static void low_block(const float *x, size_t n, size_t b, int fmt, uint8_t *scales,
                      uint8_t *codes, float *y)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const __m512 off = _mm512_set1_ps(bits == 4 ? 0.0f : 1.5f);
    const __mmask16 k0 = first(n), k1 = first(n > 16 ? n - 16 : 0);
    __m512 best0, best1;
    uint16_t best, tries[LSHMOE_QR_NCLIP];
    float e[LSHMOE_QR_NCLIP], best_s;
    int ntry;
    block_search(_mm512_maskz_loadu_ps(k0, x), _mm512_maskz_loadu_ps(k1, x + 16), n, fmt, tries,
                 &ntry, e, &best, &best_s, &best0, &best1);
    if (y != NULL) {
        _mm512_mask_storeu_ps(y, k0,
                              _mm512_mul_ps(_mm512_sub_ps(best0, off), _mm512_set1_ps(best_s)));
        _mm512_mask_storeu_ps(y + 16, k1,
                              _mm512_mul_ps(_mm512_sub_ps(best1, off), _mm512_set1_ps(best_s)));
    }
    if (fmt == LSHMOE_QM_INT4E)
        scales[b] = (uint8_t)best;
    else
        lshmoe_qm_put_f16(scales + 2 * b, best);

    const __m512i m15 = _mm512_set1_epi32(15);
    __m128i c0 = _mm512_cvtepi32_epi8(
        _mm512_maskz_and_epi32(k0, _mm512_cvtps_epi32(best0), m15));
    __m128i c1 = _mm512_cvtepi32_epi8(
        _mm512_maskz_and_epi32(k1, _mm512_cvtps_epi32(best1), m15));
    __m256i by = _mm256_inserti128_si256(_mm256_castsi128_si256(c0), c1, 1);
    if (bits == 4) {
        __m256i t = _mm256_and_si256(_mm256_or_si256(by, _mm256_srli_epi16(by, 4)),
                                     _mm256_set1_epi16(0xff));
        _mm_mask_storeu_epi8(codes + 16 * b, first((n + 1) / 2), _mm256_cvtepi16_epi8(t));
    } else {
        __m256i t = _mm256_or_si256(_mm256_or_si256(by, _mm256_srli_epi32(by, 6)),
                                    _mm256_or_si256(_mm256_srli_epi32(by, 12),
                                                    _mm256_srli_epi32(by, 18)));
        _mm_mask_storeu_epi8(codes + 8 * b, first((n + 3) / 4), _mm256_cvtepi32_epi8(t));
    }
}

static void quant_low(const float *x, size_t hidden, uint8_t *dst, int fmt, float *y)
{
    uint8_t *codes = dst + lshmoe_qm_scale_bytes(fmt, hidden);
    for (size_t lo = 0, b = 0; lo < hidden; lo += LOW, b++)
        low_block(x + lo, hidden - lo < LOW ? hidden - lo : LOW, b, fmt, dst, codes,
                  y == NULL ? NULL : y + lo);
}

/* Codes row x into dst, and with y also decodes it there. */
static void quant_row(int fmt, const float *x, size_t hidden, uint8_t *dst, float *y)
{
    switch (fmt) {
    case LSHMOE_QM_FP8:
        quant_fp8(x, hidden, dst, y);
        break;
    case LSHMOE_QM_INT8:
        quant_int8(x, hidden, dst, y);
        break;
    case LSHMOE_QM_INT4:
    case LSHMOE_QM_INT2:
    case LSHMOE_QM_INT4E:
        quant_low(x, hidden, dst, fmt, y);
        break;
    default:
        break;
    }
}

void lshmoe_kn_quant_row_avx512(int fmt, const float *x, size_t hidden, uint8_t *dst)
{
    quant_row(fmt, x, hidden, dst, NULL);
}

/* Levels (value / scale) of elements i .. i + 15, the first k of them
 * (k a prefix mask; the code bytes of the others are not read). */
INL __m512 level16(int fmt, const uint8_t *codes, size_t i, __mmask16 k)
{
    switch (fmt) {
    case LSHMOE_QM_FP8:
        return e4m3_dec16(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(k, codes + i)));
    case LSHMOE_QM_INT8:
        return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(k, codes + i)));
    case LSHMOE_QM_INT2: {
        unsigned n = (unsigned)__builtin_popcount(k);
        __m128i r = _mm_shuffle_epi8(_mm_maskz_loadu_epi8((__mmask16)((1u << ((n + 3) / 4)) - 1),
                                                          codes + i / 4),
                                     _mm_setr_epi8(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3));
        __m512i v = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(r),
                                      _mm512_setr_epi32(0, 2, 4, 6, 0, 2, 4, 6, 0, 2, 4, 6, 0, 2,
                                                        4, 6));
        v = _mm512_and_si512(v, _mm512_set1_epi32(3));
        return _mm512_sub_ps(_mm512_cvtepi32_ps(v), _mm512_set1_ps(1.5f));
    }
    default: { /* INT4, INT4E */
        unsigned n = (unsigned)__builtin_popcount(k);
        __m128i r = _mm_maskz_loadu_epi8((__mmask16)((1u << ((n + 1) / 2)) - 1), codes + i / 2);
        __m512i v = _mm512_srlv_epi32(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(r, r)),
                                      _mm512_setr_epi32(0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4, 0, 4,
                                                        0, 4));
        v = _mm512_and_si512(v, _mm512_set1_epi32(15));
        v = _mm512_sub_epi32(_mm512_xor_si512(v, _mm512_set1_epi32(8)), _mm512_set1_epi32(8));
        return _mm512_cvtepi32_ps(v);
    }
    }
}

/* A coded row decoded into dst in the dtype (fp32: the decoded floats),
 * 16 at a time; a partial last vector is masked in every format (level16
 * reads only its code bytes). */
INL void dequant_to(int fmt, const uint8_t *src, size_t hidden, lshmoe_dtype_t dtype,
                    void *dst)
{
    const uint8_t *codes = src + lshmoe_qm_scale_bytes(fmt, hidden);
    size_t blk = fmt == LSHMOE_QM_FP8 ? LSHMOE_QM_FP8_BLOCK
               : fmt == LSHMOE_QM_INT8 ? hidden : LOW;
    for (size_t lo = 0; lo < hidden; lo += blk) {
        const __m512 vs = _mm512_set1_ps(lshmoe_qr_block_scale(fmt, src, lo));
        size_t end = hidden - lo < blk ? hidden : lo + blk;
        for (size_t i = lo; i < end; i += 16) {
            __mmask16 k = first(end - i);
            lshmoe_kn_store_part16(dst, i, _mm512_mul_ps(level16(fmt, codes, i, k), vs), k, dtype);
        }
    }
}

/* One copy of the loop per format and dtype, so that neither is tested
 * per vector. */
#define DEQUANT_TO_DTYPES(fmt)                                                     \
    do {                                                                           \
        if (dtype == LSHMOE_DTYPE_BF16)                                            \
            dequant_to(fmt, src, hidden, LSHMOE_DTYPE_BF16, dst);                  \
        else if (dtype == LSHMOE_DTYPE_FP16)                                       \
            dequant_to(fmt, src, hidden, LSHMOE_DTYPE_FP16, dst);                  \
        else                                                                       \
            dequant_to(fmt, src, hidden, LSHMOE_DTYPE_FP32, dst);                  \
    } while (0)

void lshmoe_kn_dequant_row_avx512(int fmt, const uint8_t *src, size_t hidden, float *y)
{
    lshmoe_kn_dequant_row_to_avx512(fmt, src, hidden, LSHMOE_DTYPE_FP32, y, NULL);
}

void lshmoe_kn_dequant_row_to_avx512(LSHMOE_KN_DEQUANT_TO_ARGS)
{
    (void)scratch;
    switch (fmt) {
    case LSHMOE_QM_FP8:
        DEQUANT_TO_DTYPES(LSHMOE_QM_FP8);
        break;
    case LSHMOE_QM_INT8:
        DEQUANT_TO_DTYPES(LSHMOE_QM_INT8);
        break;
    case LSHMOE_QM_INT4:
        DEQUANT_TO_DTYPES(LSHMOE_QM_INT4);
        break;
    case LSHMOE_QM_INT2:
        DEQUANT_TO_DTYPES(LSHMOE_QM_INT2);
        break;
    case LSHMOE_QM_INT4E:
        DEQUANT_TO_DTYPES(LSHMOE_QM_INT4E);
        break;
    default: /* nothing to decode */
        break;
    }
}

INL __m512 round16(__m512 v, lshmoe_dtype_t dtype)
{
    if (dtype == LSHMOE_DTYPE_BF16) {
        __m512i u = _mm512_castps_si512(v);
        __m512i odd = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
        u = _mm512_add_epi32(u, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff)));
        return _mm512_castsi512_ps(_mm512_and_si512(u, _mm512_set1_epi32((int)0xffff0000u)));
    }
    if (dtype == LSHMOE_DTYPE_FP16)
        return _mm512_cvtph_ps(_mm512_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return v;
}

/* Squared distance of a and b (b rounded to the dtype in place first when
 * round_b; b is only read otherwise), in lshmoe_kn_row_sq_dist order. */
INL double dist(const float *a, float *b, size_t n, lshmoe_dtype_t dtype, int round_b)
{
    __m256 part = _mm256_setzero_ps();
    size_t i = 0, whole = n - n % 8;
    for (; i < whole; i += 16) {
        __mmask16 k = first(whole - i); /* 16, or the last 8 */
        __m512 r = _mm512_maskz_loadu_ps(k, b + i);
        if (round_b) {
            r = round16(r, dtype);
            _mm512_mask_storeu_ps(b + i, k, r);
        }
        __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(k, a + i), r);
        if (k == 0xffff) {
            part = add_squares(part, d);
        } else {
            __m256 d8 = _mm512_castps512_ps256(d);
            part = _mm256_add_ps(part, _mm256_mul_ps(d8, d8));
        }
    }
    for (i = whole; round_b && i < n; i++)
        b[i] = lshmoe_qr_round_dtype(b[i], dtype);
    float lanes[8];
    _mm256_storeu_ps(lanes, part);
    return lshmoe_qr_finish_sse(a, b, n, lanes);
}

double lshmoe_kn_row_sq_dist_avx512(const float *a, const float *b, size_t n)
{
    return dist(a, (float *)b, n, LSHMOE_DTYPE_FP32, 0);
}

double lshmoe_kn_quant_row_sse_avx512(LSHMOE_KN_QUANT_SSE_ARGS)
{
    if (lshmoe_qm_row_bytes(fmt, hidden) == 0)
        return 0.0;
    quant_row(fmt, x, hidden, dst, y);
    return dist(x, y, hidden, dtype, dtype != LSHMOE_DTYPE_FP32);
}

double lshmoe_kn_measure_row_avx512(const float *x, float *y, size_t n, lshmoe_dtype_t dtype)
{
    return dist(x, y, n, dtype, dtype != LSHMOE_DTYPE_FP32);
}
