/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The scalar steps of the row quantizers that every ISA level shares
 * (private to kernels/cpu/): scale choice, one low-bit block, one decoded
 * element and the squared-error sum. The scalar level (quant.c,
 * quant_sse.c) is built from them; the SIMD levels (x86/quant_*.c) call
 * them for scales, partial blocks and row tails, so a level can differ from
 * the reference only where it does its own vector arithmetic, and that is
 * written to round exactly as these do (same operations in the same order,
 * no FMA contraction: every file here is built with -ffp-contract=off or
 * without FMA).
 */
#ifndef LSHMOE_KERNELS_CPU_QUANT_REF_H
#define LSHMOE_KERNELS_CPU_QUANT_REF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/common/dtype.h"

#define LSHMOE_QR_NCLIP 4

/* Clipped scales tried per low-bit block, as fractions of max|x| / qmax:
 * on heavy-tailed rows clipping the largest element costs less than
 * coarse steps for all others. */
static const float lshmoe_qr_clip4[LSHMOE_QR_NCLIP] = {1.0f, 0.9f, 0.8f, 0.7f};
static const float lshmoe_qr_clip2[LSHMOE_QR_NCLIP] = {1.0f, 0.85f, 0.7f, 0.55f};

static inline float lshmoe_qr_amax(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

/* The scale codes a low-bit block with max|x| = amax > 0 tries, in order;
 * returns how many, leaving out a code equal to the one before it (same
 * scale, same error: it could never win, ties keep the earlier one). */
static inline int lshmoe_qr_clip_codes(int fmt, float amax, uint16_t *codes)
{
    const float *clip = fmt == LSHMOE_QM_INT2 ? lshmoe_qr_clip2 : lshmoe_qr_clip4;
    const float qmax = fmt == LSHMOE_QM_INT2 ? 1.5f : 7.0f;
    int n = 0;
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++) {
        uint16_t code = lshmoe_qm_scale_code(fmt, clip[c] * amax / qmax);
        if (n == 0 || code != codes[n - 1])
            codes[n++] = code;
    }
    return n;
}

/* Codes (as floats) of one low-bit block of n <= 32 elements for scale s;
 * returns the squared error: 8 fp32 partial sums (lane k takes elements
 * i = k mod 8 of the whole groups of 8, in order), the other elements
 * summed first, then the partials in lane order. */
static inline float lshmoe_qr_block_codes(const float *restrict x, size_t n, float s,
                                          int bits, float *restrict q)
{
    float inv = lshmoe_qm_scale_inv(&s), part[8] = {0}, e = 0.0f;
    if (bits == 4) {
        for (size_t i = 0; i < n; i++)
            q[i] = lshmoe_qm_code(x[i], inv, -8.0f, 7.0f);
    } else {
        for (size_t i = 0; i < n; i++)
            q[i] = lshmoe_qm_code2(x[i], inv);
    }
    float off = bits == 4 ? 0.0f : 1.5f;
    size_t whole = n - n % 8;
    for (size_t i = 0; i < whole; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = x[i + k] - (q[i + k] - off) * s;
            part[k] += d * d;
        }
    for (size_t i = whole; i < n; i++) {
        float d = x[i] - (q[i] - off) * s;
        e += d * d;
    }
    for (size_t k = 0; k < 8; k++)
        e += part[k];
    return e;
}

/* Low-bit block b (n <= 32 elements from x) of a row: writes its scale and
 * ORs its codes into `codes` (zeroed by the caller). */
static inline void lshmoe_qr_low_block(const float *x, size_t n, size_t b, int fmt,
                                       uint8_t *scales, uint8_t *codes)
{
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const size_t per_byte = 8 / (size_t)bits, lo = b * LSHMOE_QM_LOW_BLOCK;
    float qa[LSHMOE_QM_LOW_BLOCK], qb[LSHMOE_QM_LOW_BLOCK];
    float *q = qa, *best_q = qb, amax = lshmoe_qr_amax(x, n), best_e = INFINITY;
    uint16_t best = 0, tries[LSHMOE_QR_NCLIP];
    int ntry = amax > 0.0f ? lshmoe_qr_clip_codes(fmt, amax, tries) : 0;

    for (int c = 0; c < ntry; c++) {
        float s = lshmoe_qm_scale_value(fmt, tries[c]);
        float e = lshmoe_qr_block_codes(x, n, s, bits, q);
        if (e < best_e) {
            best_e = e;
            best = lshmoe_qm_safe_inv(s) == 0.0f ? 0 : tries[c];
            float *t = best_q; /* keep these codes: swap instead of copying */
            best_q = q;
            q = t;
        }
    }
    if (best == 0) /* scale 0: every level decodes to 0 */
        for (size_t i = 0; i < n; i++)
            best_q[i] = bits == 4 ? 0.0f : 2.0f;
    if (fmt == LSHMOE_QM_INT4E)
        scales[b] = (uint8_t)best;
    else
        lshmoe_qm_put_f16(scales + 2 * b, best);
    for (size_t i = 0; i < n; i++) {
        unsigned v = bits == 4 ? (unsigned)(int)best_q[i] & 15u : (unsigned)best_q[i];
        codes[(lo + i) / per_byte] |= (uint8_t)(v << (bits * ((lo + i) % per_byte)));
    }
}

/* Element i of a coded row decoded to fp32 (what lshmoe_kn_dequant_row()
 * writes there). */
static inline float lshmoe_qr_decode_elem(int fmt, const uint8_t *src, size_t hidden, size_t i)
{
    return lshmoe_qm_decode_elem(fmt, src, hidden, i);
}

/* The decoder's scale of the block that starts at element lo. */
static inline float lshmoe_qr_block_scale(int fmt, const uint8_t *src, size_t lo)
{
    switch (fmt) {
    case LSHMOE_QM_FP8:
        return lshmoe_qm_get_f32(src + 4 * (lo / LSHMOE_QM_FP8_BLOCK));
    case LSHMOE_QM_INT8:
        return lshmoe_qm_get_f32(src);
    case LSHMOE_QM_INT4E:
        return lshmoe_qm_e8_scale(src[lo / LSHMOE_QM_LOW_BLOCK]);
    default:
        return lshmoe_kn_f16_to_f32(lshmoe_qm_get_f16(src + 2 * (lo / LSHMOE_QM_LOW_BLOCK)));
    }
}

/* The partial last low-bit block of a row (hidden not a multiple of 32),
 * if any, by the reference's steps; with y, its elements decoded there. */
static inline void lshmoe_qr_low_tail(const float *x, size_t hidden, uint8_t *dst, int fmt,
                                      float *y)
{
    size_t full = hidden / LSHMOE_QM_LOW_BLOCK, lo = full * LSHMOE_QM_LOW_BLOCK;
    size_t per_byte = fmt == LSHMOE_QM_INT2 ? 4 : 2;
    uint8_t *codes = dst + lshmoe_qm_scale_bytes(fmt, hidden);
    if (lo == hidden)
        return;
    memset(codes + lo / per_byte, 0, (hidden - lo + per_byte - 1) / per_byte);
    lshmoe_qr_low_block(x + lo, hidden - lo, full, fmt, dst, codes);
    for (size_t i = lo; y != NULL && i < hidden; i++)
        y[i] = lshmoe_qr_decode_elem(fmt, dst, hidden, i);
}

/* A finite fp32 value rounded to the dtype and widened back: what a
 * receiver holds after lshmoe_row_from_f32(). */
static inline float lshmoe_qr_round_dtype(float v, lshmoe_dtype_t dtype)
{
    if (dtype == LSHMOE_DTYPE_BF16)
        return lshmoe_bf16_to_f32(lshmoe_f32_to_bf16(v));
    if (dtype == LSHMOE_DTYPE_FP16)
        return lshmoe_f16_to_f32(lshmoe_f32_to_f16(v));
    return v;
}

/* Adds the squared distance of the last n % 8 elements of a and b, then
 * the 8 lane partials (the row's whole groups of 8) in lane order: the
 * summation order every level keeps, so that a row's error is the same
 * bit for bit at every level. */
static inline double lshmoe_qr_finish_sse(const float *a, const float *b, size_t n,
                                          const float part[8])
{
    double s = 0.0;
    for (size_t i = n - n % 8; i < n; i++) {
        double d = (double)a[i] - b[i];
        s += d * d;
    }
    for (size_t k = 0; k < 8; k++)
        s += part[k];
    return s;
}

#endif /* LSHMOE_KERNELS_CPU_QUANT_REF_H */
