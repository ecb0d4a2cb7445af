/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row quantizers, AVX2 level: the same bytes, floats and errors as the
 * scalar reference (kernels/cpu/quant.c, quant_sse.c), bit for bit. Each
 * vector step is the reference's fp32 operation on 8 lanes (products,
 * clamps as max/min, rounding by the 1.5 * 2^23 addition, integer bit
 * manipulation for e4m3 and bf16, F16C for fp16 with round-to-nearest-even);
 * built with -ffp-contract=off, so no product is fused into a sum. Sums
 * keep the reference's order: 8 lanes, lane k taking elements k mod 8,
 * then the lanes in order (kernels/cpu/quant_ref.h). Scale codes, partial
 * blocks and row tails run the shared scalar steps.
 */
#include <immintrin.h>

#include "kernels/cpu/quant_isa.h"
#include "kernels/cpu/quant_ref.h"
#include "kernels/cpu/x86/lane_sums.h"
#include "kernels/cpu/x86/rows_avx2.h"

#define LOW LSHMOE_QM_LOW_BLOCK
#define INL static inline __attribute__((always_inline))

INL __m256 abs8(__m256 v)
{
    return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
}

INL float hmax8(__m256 m)
{
    float lanes[8], r = 0.0f;
    _mm256_storeu_ps(lanes, m);
    for (int k = 0; k < 8; k++)
        r = lanes[k] > r ? lanes[k] : r;
    return r;
}

/* max|x| over n elements: the maximum is exact, so any order gives the
 * reference's value. */
static float amax_row(const float *x, size_t n)
{
    __m256 m = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + i)));
    float r = lshmoe_qr_amax(x + i, n - i), v = hmax8(m);
    return v > r ? v : r;
}

/* lshmoe_qm_rne() on 8 lanes. */
INL __m256 rne8(__m256 v)
{
    const __m256 magic = _mm256_set1_ps(12582912.0f);
    return _mm256_sub_ps(_mm256_add_ps(v, magic), magic);
}

/* lshmoe_qm_code(): clamp(x * inv, lo, hi), rounded. */
INL __m256 code8(__m256 x, __m256 inv, __m256 lo, __m256 hi)
{
    __m256 v = _mm256_mul_ps(x, inv);
    v = _mm256_max_ps(v, lo);
    return rne8(_mm256_min_ps(v, hi));
}

/* lshmoe_qm_code2(). */
INL __m256 code2_8(__m256 x, __m256 inv)
{
    __m256 v = _mm256_sub_ps(_mm256_mul_ps(x, inv), _mm256_set1_ps(0.5f));
    v = _mm256_max_ps(v, _mm256_set1_ps(-2.0f));
    v = _mm256_min_ps(v, _mm256_set1_ps(1.0f));
    return _mm256_add_ps(rne8(v), _mm256_set1_ps(2.0f));
}

/* lshmoe_qm_f32_to_e4m3() on 8 finite lanes (codes as int32). */
INL __m256i e4m3_8(__m256 v)
{
    __m256i u = _mm256_castps_si256(v);
    __m256i sign = _mm256_and_si256(_mm256_srli_epi32(u, 24), _mm256_set1_epi32(0x80));
    __m256i a = _mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff));
    __m256i sat = _mm256_cmpgt_epi32(a, _mm256_set1_epi32(0x43dfffff)); /* >= 448 */
    __m256i sub = _mm256_cmpgt_epi32(_mm256_set1_epi32(0x3c800000), a);  /* < 2^-6 */
    __m256i qs = _mm256_cvtps_epi32(
        _mm256_mul_ps(_mm256_castsi256_ps(a), _mm256_set1_ps(512.0f)));
    __m256i r = _mm256_add_epi32(
        _mm256_add_epi32(a, _mm256_set1_epi32(0x7ffff)),
        _mm256_and_si256(_mm256_srli_epi32(a, 20), _mm256_set1_epi32(1)));
    __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(r, 23), _mm256_set1_epi32(120));
    __m256i qn = _mm256_or_si256(_mm256_slli_epi32(e, 3),
                                 _mm256_and_si256(_mm256_srli_epi32(r, 20),
                                                  _mm256_set1_epi32(7)));
    __m256i q = _mm256_blendv_epi8(qn, qs, sub);
    q = _mm256_blendv_epi8(q, _mm256_set1_epi32(0x7e), sat);
    return _mm256_or_si256(q, sign);
}

/* lshmoe_qm_e4m3_to_f32() on 8 codes (int32 lanes). */
INL __m256 e4m3_dec8(__m256i c)
{
    __m256i sign = _mm256_slli_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x80)), 24);
    __m256i e = _mm256_and_si256(_mm256_srli_epi32(c, 3), _mm256_set1_epi32(15));
    __m256i m = _mm256_and_si256(c, _mm256_set1_epi32(7));
    __m256i normal = _mm256_or_si256(
        _mm256_or_si256(sign, _mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(120)), 23)),
        _mm256_slli_epi32(m, 20));
    __m256i sub = _mm256_or_si256(
        _mm256_castps_si256(_mm256_mul_ps(_mm256_cvtepi32_ps(m), _mm256_set1_ps(0.001953125f))),
        sign);
    __m256i bits = _mm256_blendv_epi8(normal, sub, _mm256_cmpeq_epi32(e, _mm256_setzero_si256()));
    __m256i nan = _mm256_cmpeq_epi32(_mm256_and_si256(c, _mm256_set1_epi32(0x7f)),
                                     _mm256_set1_epi32(0x7f));
    bits = _mm256_blendv_epi8(bits, _mm256_or_si256(sign, _mm256_set1_epi32(0x7fc00000)), nan);
    return _mm256_castsi256_ps(bits);
}

/* 4 x 8 int32 lanes (0..255, or -128..127 when is_signed) -> 32 bytes in
 * element order. */
INL __m256i pack32(__m256i a, __m256i b, __m256i c, __m256i d, int is_signed)
{
    __m256i p = is_signed ? _mm256_packs_epi16(_mm256_packs_epi32(a, b),
                                               _mm256_packs_epi32(c, d))
                          : _mm256_packus_epi16(_mm256_packus_epi32(a, b),
                                                _mm256_packus_epi32(c, d));
    return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

/* The quantizers below also write the decoded row to y when y is not
 * NULL, from the codes in registers: the decoder's products (level times
 * the decoded scale), so y is what lshmoe_kn_dequant_row() would give. */
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
        const __m256 vi = _mm256_set1_ps(inv);
        const float *xb = x + lo;
        size_t i = 0;
        for (; i + 32 <= n; i += 32) {
            __m256i q[4];
            for (int k = 0; k < 4; k++)
                q[k] = e4m3_8(_mm256_mul_ps(_mm256_loadu_ps(xb + i + 8 * k), vi));
            _mm256_storeu_si256((__m256i *)(void *)(codes + lo + i),
                                pack32(q[0], q[1], q[2], q[3], 0));
            for (int k = 0; y != NULL && k < 4; k++)
                _mm256_storeu_ps(y + lo + i + 8 * k,
                                 _mm256_mul_ps(e4m3_dec8(q[k]), _mm256_set1_ps(s)));
        }
        for (; i < n; i++) {
            codes[lo + i] = lshmoe_qm_f32_to_e4m3(xb[i] * inv);
            if (y != NULL)
                y[lo + i] = lshmoe_qm_e4m3_to_f32(codes[lo + i]) * s;
        }
    }
}

static void quant_int8(const float *x, size_t hidden, uint8_t *dst, float *y)
{
    float s = amax_row(x, hidden) / 127.0f;
    float inv = lshmoe_qm_scale_inv(&s);
    lshmoe_qm_put_f32(dst, s);
    const __m256 vi = _mm256_set1_ps(inv), lo = _mm256_set1_ps(-127.0f),
                 hi = _mm256_set1_ps(127.0f);
    size_t i = 0;
    for (; i + 32 <= hidden; i += 32) {
        __m256 f[4];
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
            f[k] = code8(_mm256_loadu_ps(x + i + 8 * k), vi, lo, hi);
            q[k] = _mm256_cvtps_epi32(f[k]);
        }
        _mm256_storeu_si256((__m256i *)(void *)(dst + 4 + i), pack32(q[0], q[1], q[2], q[3], 1));
        for (int k = 0; y != NULL && k < 4; k++)
            _mm256_storeu_ps(y + i + 8 * k, _mm256_mul_ps(f[k], _mm256_set1_ps(s)));
    }
    for (; i < hidden; i++) {
        dst[4 + i] = (uint8_t)(int8_t)lshmoe_qm_code(x[i], inv, -127.0f, 127.0f);
        if (y != NULL)
            y[i] = (float)(int8_t)dst[4 + i] * s;
    }
}

/* The clip-scale search of one whole low-bit block xv (32 elements), in
 * the reference's order: the error of each scale code tried (e; returns
 * how many), and the one kept (*best_p: the first smallest error, 0 for a
 * zero scale) with its decoded scale and codes (as floats). */
INL int block_search(const __m256 xv[4], int fmt, float *e, uint16_t *best_p, float *best_s_p,
                     __m256 best_q[4])
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const __m256 off = _mm256_set1_ps(bits == 4 ? 0.0f : 1.5f);
    const __m256 lo = _mm256_set1_ps(-8.0f), hi = _mm256_set1_ps(7.0f);
    __m256 m = _mm256_setzero_ps(), q[LSHMOE_QR_NCLIP][4];
    for (int k = 0; k < 4; k++)
        m = _mm256_max_ps(m, abs8(xv[k]));
    float amax = hmax8(m), best_e = INFINITY, best_s = 0.0f, s[LSHMOE_QR_NCLIP];
    uint16_t best = 0, tries[LSHMOE_QR_NCLIP];
    int ntry = amax > 0.0f ? lshmoe_qr_clip_codes(fmt, amax, tries) : 0, zero[LSHMOE_QR_NCLIP];
    __m256 part[LSHMOE_QR_NCLIP];
    /* every scale measured first, the four errors summed at once
     * (lane_sums.h); then the first smallest kept, as the reference does */
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
        part[c] = _mm256_setzero_ps();
    for (int c = 0; c < ntry; c++) {
        s[c] = lshmoe_qm_scale_value(fmt, tries[c]);
        float inv = lshmoe_qm_scale_inv(&s[c]);
        zero[c] = inv == 0.0f;
        const __m256 vi = _mm256_set1_ps(inv), vs = _mm256_set1_ps(s[c]);
        for (int k = 0; k < 4; k++) {
            q[c][k] = bits == 4 ? code8(xv[k], vi, lo, hi) : code2_8(xv[k], vi);
            __m256 d = _mm256_sub_ps(xv[k], _mm256_mul_ps(_mm256_sub_ps(q[c][k], off), vs));
            part[c] = _mm256_add_ps(part[c], _mm256_mul_ps(d, d));
        }
    }
    float all[LSHMOE_QR_NCLIP];
    _mm_storeu_ps(all, lshmoe_kn_lane_sums4(part, _mm_setzero_ps()));
    for (int c = 0; c < ntry; c++) {
        e[c] = all[c];
        if (e[c] < best_e) {
            best_e = e[c];
            best = zero[c] ? 0 : tries[c];
            best_s = s[c];
            for (int k = 0; k < 4; k++)
                best_q[k] = q[c][k];
        }
    }
    if (best == 0) { /* scale 0: every level decodes to 0 */
        best_s = 0.0f;
        for (int k = 0; k < 4; k++)
            best_q[k] = _mm256_set1_ps(bits == 4 ? 0.0f : 2.0f);
    }
    *best_p = best;
    *best_s_p = best_s;
    return ntry;
}

int lshmoe_kn_low_block_errors_avx2(int fmt, const float *x, float *e)
{
    __m256 xv[4], best_q[4];
    uint16_t best;
    float best_s;
    for (int k = 0; k < 4; k++)
        xv[k] = _mm256_loadu_ps(x + 8 * k);
    return block_search(xv, fmt, e, &best, &best_s, best_q);
}

/* One whole low-bit block (32 elements at x): the reference's clip-scale
 * search with the block in registers; writes the scale and the block's
 * 16 (4-bit) or 8 (2-bit) code bytes (and y: (code - offset) * scale). */
static void low_block32(const float *x, size_t b, int fmt, uint8_t *scales, uint8_t *codes,
                        float *y)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const __m256 off = _mm256_set1_ps(bits == 4 ? 0.0f : 1.5f);
    __m256 xv[4], best_q[4];
    uint16_t best;
    float e[LSHMOE_QR_NCLIP], best_s;
    for (int k = 0; k < 4; k++)
        xv[k] = _mm256_loadu_ps(x + 8 * k);
    (void)block_search(xv, fmt, e, &best, &best_s, best_q);
    if (fmt == LSHMOE_QM_INT4E)
        scales[b] = (uint8_t)best;
    else
        lshmoe_qm_put_f16(scales + 2 * b, best);
    for (int k = 0; y != NULL && k < 4; k++)
        _mm256_storeu_ps(y + 8 * k,
                         _mm256_mul_ps(_mm256_sub_ps(best_q[k], off), _mm256_set1_ps(best_s)));

    __m256i v[4];
    for (int k = 0; k < 4; k++)
        v[k] = _mm256_and_si256(_mm256_cvtps_epi32(best_q[k]), _mm256_set1_epi32(15));
    __m256i by = pack32(v[0], v[1], v[2], v[3], 0); /* one code per byte */
    if (bits == 4) {
        /* 16-bit lane = lo | hi << 8 -> lo | hi << 4 */
        __m256i t = _mm256_and_si256(_mm256_or_si256(by, _mm256_srli_epi16(by, 4)),
                                     _mm256_set1_epi16(0xff));
        __m128i out = _mm_packus_epi16(_mm256_castsi256_si128(t),
                                       _mm256_extracti128_si256(t, 1));
        _mm_storeu_si128((__m128i *)(void *)(codes + 16 * b), out);
    } else {
        /* 32-bit lane = c0 | c1 << 8 | c2 << 16 | c3 << 24 -> c0 | c1 << 2 | ... */
        __m256i t = _mm256_or_si256(_mm256_or_si256(by, _mm256_srli_epi32(by, 6)),
                                    _mm256_or_si256(_mm256_srli_epi32(by, 12),
                                                    _mm256_srli_epi32(by, 18)));
        t = _mm256_and_si256(t, _mm256_set1_epi32(0xff));
        __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
        _mm_storel_epi64((__m128i *)(void *)(codes + 8 * b), _mm_packus_epi16(w, w));
    }
}

static void quant_low(const float *x, size_t hidden, uint8_t *dst, int fmt, float *y)
{
    uint8_t *codes = dst + lshmoe_qm_scale_bytes(fmt, hidden);
    for (size_t b = 0; b < hidden / LOW; b++)
        low_block32(x + b * LOW, b, fmt, dst, codes, y == NULL ? NULL : y + b * LOW);
    lshmoe_qr_low_tail(x, hidden, dst, fmt, y);
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

void lshmoe_kn_quant_row_avx2(int fmt, const float *x, size_t hidden, uint8_t *dst)
{
    quant_row(fmt, x, hidden, dst, NULL);
}

/* The level (value / scale) of elements i .. i + 7 (i a multiple of 8). */
INL __m256 level8(int fmt, const uint8_t *codes, size_t i)
{
    switch (fmt) {
    case LSHMOE_QM_FP8:
        return e4m3_dec8(
            _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(codes + i))));
    case LSHMOE_QM_INT8:
        return _mm256_cvtepi32_ps(
            _mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)(const void *)(codes + i))));
    case LSHMOE_QM_INT2: {
        uint16_t w;
        memcpy(&w, codes + i / 4, sizeof w);
        __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32(w),
                                      _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
        v = _mm256_and_si256(v, _mm256_set1_epi32(3));
        return _mm256_sub_ps(_mm256_cvtepi32_ps(v), _mm256_set1_ps(1.5f));
    }
    default: { /* INT4, INT4E */
        uint32_t w;
        memcpy(&w, codes + i / 2, sizeof w);
        __m256i v = _mm256_srlv_epi32(_mm256_set1_epi32((int)w),
                                      _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28));
        v = _mm256_and_si256(v, _mm256_set1_epi32(15));
        v = _mm256_sub_epi32(_mm256_xor_si256(v, _mm256_set1_epi32(8)), _mm256_set1_epi32(8));
        return _mm256_cvtepi32_ps(v);
    }
    }
}

/* A coded row decoded into dst in the dtype (fp32: the decoded floats),
 * 8 at a time; the elements after a block's last whole 8 are decoded one
 * by one (at most 7: no vector load may read past the row). */
static void dequant_to(int fmt, const uint8_t *src, size_t hidden, lshmoe_dtype_t dtype,
                       void *dst)
{
    if (lshmoe_qm_row_bytes(fmt, hidden) == 0)
        return;
    const uint8_t *codes = src + lshmoe_qm_scale_bytes(fmt, hidden);
    const size_t es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2; /* a float dtype */
    size_t blk = fmt == LSHMOE_QM_FP8 ? LSHMOE_QM_FP8_BLOCK
               : fmt == LSHMOE_QM_INT8 ? hidden : LOW;
    for (size_t lo = 0; lo < hidden; lo += blk) {
        size_t end = hidden - lo < blk ? hidden : lo + blk, i = lo;
        const __m256 vs = _mm256_set1_ps(lshmoe_qr_block_scale(fmt, src, lo));
        for (; i + 8 <= end; i += 8)
            lshmoe_kn_store8(dst, i, _mm256_mul_ps(level8(fmt, codes, i), vs), dtype);
        if (i < end) {
            float tail[8];
            for (size_t t = i; t < end; t++)
                tail[t - i] = lshmoe_qr_decode_elem(fmt, src, hidden, t);
            lshmoe_row_from_f32(tail, end - i, dtype, (uint8_t *)dst + i * es);
        }
    }
}

void lshmoe_kn_dequant_row_avx2(int fmt, const uint8_t *src, size_t hidden, float *y)
{
    dequant_to(fmt, src, hidden, LSHMOE_DTYPE_FP32, y);
}

void lshmoe_kn_dequant_row_to_avx2(LSHMOE_KN_DEQUANT_TO_ARGS)
{
    (void)scratch;
    dequant_to(fmt, src, hidden, dtype, dst);
}

/* The dtype's rounding of 8 finite lanes, widened back. */
INL __m256 round8(__m256 v, lshmoe_dtype_t dtype)
{
    if (dtype == LSHMOE_DTYPE_BF16) {
        __m256i u = _mm256_castps_si256(v);
        __m256i odd = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
        u = _mm256_add_epi32(u, _mm256_add_epi32(odd, _mm256_set1_epi32(0x7fff)));
        return _mm256_castsi256_ps(_mm256_and_si256(u, _mm256_set1_epi32((int)0xffff0000u)));
    }
    if (dtype == LSHMOE_DTYPE_FP16)
        return _mm256_cvtph_ps(_mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    return v;
}

/* Rounds y to the dtype in place and returns its squared distance to x
 * (lshmoe_kn_row_sq_dist order). */
static double round_dist(const float *x, float *y, size_t n, lshmoe_dtype_t dtype)
{
    __m256 acc = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 r = round8(_mm256_loadu_ps(y + i), dtype);
        _mm256_storeu_ps(y + i, r);
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), r);
        acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
    }
    for (; i < n; i++)
        y[i] = lshmoe_qr_round_dtype(y[i], dtype);
    float part[8];
    _mm256_storeu_ps(part, acc);
    return lshmoe_qr_finish_sse(x, y, n, part);
}

double lshmoe_kn_row_sq_dist_avx2(const float *a, const float *b, size_t n)
{
    __m256 acc = _mm256_setzero_ps();
    for (size_t i = 0; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        acc = _mm256_add_ps(acc, _mm256_mul_ps(d, d));
    }
    float part[8];
    _mm256_storeu_ps(part, acc);
    return lshmoe_qr_finish_sse(a, b, n, part);
}

double lshmoe_kn_quant_row_sse_avx2(LSHMOE_KN_QUANT_SSE_ARGS)
{
    if (lshmoe_qm_row_bytes(fmt, hidden) == 0)
        return 0.0;
    quant_row(fmt, x, hidden, dst, y);
    return round_dist(x, y, hidden, dtype);
}

double lshmoe_kn_measure_row_avx2(const float *x, float *y, size_t n, lshmoe_dtype_t dtype)
{
    return round_dist(x, y, n, dtype);
}
