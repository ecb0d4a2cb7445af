/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row quantizers (FP8 e4m3 / int8 / int4 / int2) over fp32 rows: coding,
 * decoding and validation of one row. The per-element math is in
 * kernels/common/quant_math.h, shared with other backends; the layouts are
 * described there and in docs/wire-format.md. Loops are per scale block,
 * branch-free inside, so that gcc vectorises them at -O2.
 *
 * Scale choice is the encoder's business (the decoder only multiplies):
 * FP8 and int8 take max|x| / qmax; int4 and int2 try a few clipped scales
 * per 32-element block and keep the one with the least squared error,
 * because on heavy-tailed rows clipping the largest element costs less
 * than coarse steps for all others.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "kernels/kernels.h"

#define LOW LSHMOE_QM_LOW_BLOCK
#define NCLIP 4

static float amax_of(const float *x, size_t n)
{
    float m = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        m = a > m ? a : m;
    }
    return m;
}

/* 1 / s, or 0 when s is 0 or so small that 1 / s overflows. */
static float safe_inv(float s)
{
    if (!(s > 0.0f))
        return 0.0f;
    float inv = 1.0f / s;
    return isfinite(inv) ? inv : 0.0f;
}

static void quant_fp8(const float *x, size_t hidden, uint8_t *dst)
{
    size_t nb = (size_t)lshmoe_qm_nblocks(LSHMOE_QM_FP8, hidden);
    uint8_t *codes = dst + 4 * nb;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * LSHMOE_QM_FP8_BLOCK;
        size_t n = hidden - lo < LSHMOE_QM_FP8_BLOCK ? hidden - lo : LSHMOE_QM_FP8_BLOCK;
        float s = amax_of(x + lo, n) / LSHMOE_QM_E4M3_MAX;
        float inv = safe_inv(s);
        if (inv == 0.0f)
            s = 0.0f;
        lshmoe_qm_put_f32(dst + 4 * b, s);
        for (size_t i = 0; i < n; i++)
            codes[lo + i] = lshmoe_qm_f32_to_e4m3(x[lo + i] * inv);
    }
}

static void quant_int8(const float *x, size_t hidden, uint8_t *dst)
{
    float s = amax_of(x, hidden) / 127.0f;
    float inv = safe_inv(s);
    if (inv == 0.0f)
        s = 0.0f;
    lshmoe_qm_put_f32(dst, s);
    for (size_t i = 0; i < hidden; i++)
        dst[4 + i] = (uint8_t)(int8_t)lshmoe_qm_code(x[i], inv, -127.0f, 127.0f);
}

/* Codes (as floats) of one block of n <= 32 elements for scale s; returns
 * the squared error. bits is 4 or 2 (a constant at each call site). */
static inline float block_codes(const float *restrict x, size_t n, float s, int bits,
                                float *restrict q)
{
    float inv = safe_inv(s), part[8] = {0}, e = 0.0f;
    if (inv == 0.0f)
        s = 0.0f;
    if (bits == 4) {
        for (size_t i = 0; i < n; i++)
            q[i] = lshmoe_qm_code(x[i], inv, -8.0f, 7.0f);
    } else {
        for (size_t i = 0; i < n; i++)
            q[i] = lshmoe_qm_code2(x[i], inv);
    }
    float off = bits == 4 ? 0.0f : 1.5f;
    size_t i = 0;
    /* 8 partial sums: vectorisable without reassociation */
    for (; i + 8 <= n; i += 8)
        for (size_t k = 0; k < 8; k++) {
            float d = x[i + k] - (q[i + k] - off) * s;
            part[k] += d * d;
        }
    for (; i < n; i++) {
        float d = x[i] - (q[i] - off) * s;
        e += d * d;
    }
    for (size_t k = 0; k < 8; k++)
        e += part[k];
    return e;
}

/* The scale code of a low-bit block (fp16 bits, or the INT4E byte) for the
 * scale s > 0, and the value a decoder gives that code. */
static uint16_t scale_code(int fmt, float s)
{
    if (fmt == LSHMOE_QM_INT4E)
        return lshmoe_qm_e8_of(s);
    return lshmoe_kn_f32_to_f16(s < 65504.0f ? s : 65504.0f);
}

static float scale_value(int fmt, uint16_t code)
{
    return fmt == LSHMOE_QM_INT4E ? lshmoe_qm_e8_scale((uint8_t)code)
                                  : lshmoe_kn_f16_to_f32(code);
}

/* INT4, INT4E and INT2: per 32-element block, the best of a few clipped
 * scales; codes packed lowest bits first. */
static void quant_low(const float *x, size_t hidden, uint8_t *dst, int fmt)
{
    static const float clip4[NCLIP] = {1.0f, 0.9f, 0.8f, 0.7f};
    static const float clip2[NCLIP] = {1.0f, 0.85f, 0.7f, 0.55f};
    const int bits = fmt == LSHMOE_QM_INT2 ? 2 : 4;
    const float *clip = bits == 4 ? clip4 : clip2;
    const float qmax = bits == 4 ? 7.0f : 1.5f;
    const size_t sbytes = fmt == LSHMOE_QM_INT4E ? 1 : 2;
    size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden);
    size_t per_byte = 8 / (size_t)bits;
    uint8_t *codes = dst + sbytes * nb;
    float q[LOW], best_q[LOW];

    memset(codes, 0, (hidden + per_byte - 1) / per_byte);
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * LOW;
        size_t n = hidden - lo < LOW ? hidden - lo : LOW;
        float amax = amax_of(x + lo, n), best_e = INFINITY;
        uint16_t best = 0;
        for (int c = 0; c < NCLIP && amax > 0.0f; c++) {
            uint16_t code = scale_code(fmt, clip[c] * amax / qmax);
            float e = block_codes(x + lo, n, scale_value(fmt, code), bits, q);
            if (e < best_e) {
                best_e = e;
                best = safe_inv(scale_value(fmt, code)) == 0.0f ? 0 : code;
                memcpy(best_q, q, n * sizeof *q);
            }
        }
        if (best == 0) /* scale 0: every level decodes to 0 */
            for (size_t i = 0; i < n; i++)
                best_q[i] = bits == 4 ? 0.0f : 2.0f;
        if (sbytes == 1)
            dst[b] = (uint8_t)best;
        else
            lshmoe_qm_put_f16(dst + 2 * b, best);
        for (size_t i = 0; i < n; i++) {
            unsigned v = bits == 4 ? (unsigned)(int)best_q[i] & 15u : (unsigned)best_q[i];
            codes[(lo + i) / per_byte] |= (uint8_t)(v << (bits * ((lo + i) % per_byte)));
        }
    }
}

void lshmoe_kn_quant_row(int fmt, const float *x, size_t hidden, uint8_t *dst)
{
    switch (fmt) {
    case LSHMOE_QM_FP8:
        quant_fp8(x, hidden, dst);
        break;
    case LSHMOE_QM_INT8:
        quant_int8(x, hidden, dst);
        break;
    case LSHMOE_QM_INT4:
    case LSHMOE_QM_INT2:
    case LSHMOE_QM_INT4E:
        quant_low(x, hidden, dst, fmt);
        break;
    default:
        break;
    }
}

static void dequant_fp8(const uint8_t *src, size_t hidden, float *restrict y)
{
    size_t nb = (size_t)lshmoe_qm_nblocks(LSHMOE_QM_FP8, hidden);
    const uint8_t *codes = src + 4 * nb;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * LSHMOE_QM_FP8_BLOCK;
        size_t n = hidden - lo < LSHMOE_QM_FP8_BLOCK ? hidden - lo : LSHMOE_QM_FP8_BLOCK;
        float s = lshmoe_qm_get_f32(src + 4 * b);
        for (size_t i = 0; i < n; i++)
            y[lo + i] = lshmoe_qm_e4m3_to_f32(codes[lo + i]) * s;
    }
}

static void dequant_low(const uint8_t *src, size_t hidden, float *restrict y, int bits)
{
    int fmt = bits == 4 ? LSHMOE_QM_INT4 : LSHMOE_QM_INT2;
    size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden);
    const uint8_t *codes = src + 2 * nb;
    for (size_t b = 0; b < nb; b++) {
        float s = lshmoe_kn_f16_to_f32(lshmoe_qm_get_f16(src + 2 * b));
        size_t lo = b * LOW;
        size_t n = hidden - lo < LOW ? hidden - lo : LOW;
        if (bits == 4) {
            for (size_t i = lo; i < lo + n; i++)
                y[i] = (float)lshmoe_qm_nibble(codes[i / 2] >> (4 * (i % 2))) * s;
        } else {
            for (size_t i = lo; i < lo + n; i++)
                y[i] = lshmoe_qm_level2((codes[i / 4] >> (2 * (i % 4))) & 3) * s;
        }
    }
}

void lshmoe_kn_dequant_row(int fmt, const uint8_t *src, size_t hidden, float *y)
{
    switch (fmt) {
    case LSHMOE_QM_FP8:
        dequant_fp8(src, hidden, y);
        break;
    case LSHMOE_QM_INT8: {
        float s = lshmoe_qm_get_f32(src);
        for (size_t i = 0; i < hidden; i++)
            y[i] = (float)(int8_t)src[4 + i] * s;
        break;
    }
    case LSHMOE_QM_INT4:
        dequant_low(src, hidden, y, 4);
        break;
    case LSHMOE_QM_INT2:
        dequant_low(src, hidden, y, 2);
        break;
    case LSHMOE_QM_INT4E: {
        size_t nb = (size_t)lshmoe_qm_nblocks(LSHMOE_QM_INT4E, hidden);
        const uint8_t *codes = src + nb;
        for (size_t b = 0; b < nb; b++) {
            float sc = lshmoe_qm_e8_scale(src[b]);
            size_t lo = b * LOW, hi = lo + LOW < hidden ? lo + LOW : hidden;
            for (size_t i = lo; i < hi; i++)
                y[i] = (float)lshmoe_qm_nibble(codes[i / 2] >> (4 * (i % 2))) * sc;
        }
        break;
    }
    default:
        break;
    }
}

int lshmoe_kn_quant_row_check(int fmt, const uint8_t *src, size_t hidden)
{
    size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden);
    const uint8_t *codes = src + lshmoe_qm_scale_bytes(fmt, hidden);

    switch (fmt) {
    case LSHMOE_QM_FP8:
    case LSHMOE_QM_INT8:
        for (size_t b = 0; b < nb; b++) {
            float s = lshmoe_qm_get_f32(src + 4 * b);
            if (!isfinite(s) || signbit(s))
                return 1;
        }
        if (fmt == LSHMOE_QM_FP8)
            for (size_t i = 0; i < hidden; i++)
                if (lshmoe_qm_e4m3_is_nan(codes[i]))
                    return 2;
        return 0;
    case LSHMOE_QM_INT4:
    case LSHMOE_QM_INT2:
    case LSHMOE_QM_INT4E: {
        for (size_t b = 0; b < nb && fmt != LSHMOE_QM_INT4E; b++)
            if (!lshmoe_qm_f16_scale_ok(lshmoe_qm_get_f16(src + 2 * b)))
                return 1;
        size_t per_byte = fmt == LSHMOE_QM_INT2 ? 4 : 2;
        size_t used = hidden % per_byte;
        if (used != 0 && (codes[hidden / per_byte] >> (8 / per_byte * used)) != 0)
            return 3;
        return 0;
    }
    default:
        return 4;
    }
}
