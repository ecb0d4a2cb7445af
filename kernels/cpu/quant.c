/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row quantizers (FP8 e4m3 / int8 / int4 / int2) over fp32 rows: coding,
 * decoding and validation of one row. The per-element math is in
 * kernels/common/quant_math.h, shared with other backends; the layouts are
 * described there and in docs/wire-format.md.
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
        dst[4 + i] = (uint8_t)(int8_t)lshmoe_qm_code(x[i], inv, -127, 127);
}

/* Squared error of a block coded with fp16 scale `sh` (bits = 4 or 2). */
static double block_sse(const float *x, size_t n, uint16_t sh, int bits)
{
    float s = lshmoe_qm_f16_to_f32(sh), inv = safe_inv(s);
    double e = 0.0;
    for (size_t i = 0; i < n; i++) {
        float y = bits == 4 ? (float)lshmoe_qm_code(x[i], inv, -8, 7) * s
                            : lshmoe_qm_level2(lshmoe_qm_code2(x[i], inv)) * s;
        if (inv == 0.0f)
            y = 0.0f;
        double d = (double)x[i] - y;
        e += d * d;
    }
    return e;
}

/* The fp16 scale of a low-bit block: the best of a few clipped scales. */
static uint16_t low_scale(const float *x, size_t n, int bits)
{
    static const float clip4[] = {1.0f, 0.9f, 0.8f, 0.7f};
    static const float clip2[] = {1.0f, 0.85f, 0.7f, 0.55f};
    const float *clip = bits == 4 ? clip4 : clip2;
    float qmax = bits == 4 ? 7.0f : 1.5f;
    float amax = amax_of(x, n);
    uint16_t best = 0;
    double best_e = INFINITY;
    if (amax == 0.0f)
        return 0;
    for (int c = 0; c < 4; c++) {
        float s = clip[c] * amax / qmax;
        uint16_t sh = lshmoe_qm_f32_to_f16(s < 65504.0f ? s : 65504.0f);
        double e = block_sse(x, n, sh, bits);
        if (e < best_e) {
            best_e = e;
            best = sh;
        }
    }
    return best;
}

static void quant_low(const float *x, size_t hidden, uint8_t *dst, int bits)
{
    int fmt = bits == 4 ? LSHMOE_QM_INT4 : LSHMOE_QM_INT2;
    size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden);
    size_t per_byte = 8 / (size_t)bits;
    uint8_t *codes = dst + 2 * nb;
    memset(codes, 0, (hidden + per_byte - 1) / per_byte);
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * LSHMOE_QM_LOW_BLOCK;
        size_t n = hidden - lo < LSHMOE_QM_LOW_BLOCK ? hidden - lo : LSHMOE_QM_LOW_BLOCK;
        uint16_t sh = low_scale(x + lo, n, bits);
        float inv = safe_inv(lshmoe_qm_f16_to_f32(sh));
        if (inv == 0.0f)
            sh = 0;
        lshmoe_qm_put_f16(dst + 2 * b, sh);
        for (size_t i = lo; i < lo + n; i++) {
            unsigned q = bits == 4 ? (unsigned)lshmoe_qm_code(x[i], inv, -8, 7) & 15u
                                   : (unsigned)lshmoe_qm_code2(x[i], inv);
            if (inv == 0.0f)
                q = bits == 4 ? 0u : 2u;  /* scale 0: every level is 0 */
            codes[i / per_byte] |= (uint8_t)(q << (bits * (i % per_byte)));
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
        quant_low(x, hidden, dst, 4);
        break;
    case LSHMOE_QM_INT2:
        quant_low(x, hidden, dst, 2);
        break;
    default:
        break;
    }
}

void lshmoe_kn_dequant_row(int fmt, const uint8_t *src, size_t hidden, float *y)
{
    size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden);
    const uint8_t *codes = src + lshmoe_qm_scale_bytes(fmt, hidden);

    switch (fmt) {
    case LSHMOE_QM_FP8:
        for (size_t i = 0; i < hidden; i++)
            y[i] = lshmoe_qm_e4m3_to_f32(codes[i]) *
                   lshmoe_qm_get_f32(src + 4 * (i / LSHMOE_QM_FP8_BLOCK));
        break;
    case LSHMOE_QM_INT8: {
        float s = lshmoe_qm_get_f32(src);
        for (size_t i = 0; i < hidden; i++)
            y[i] = (float)(int8_t)codes[i] * s;
        break;
    }
    case LSHMOE_QM_INT4:
    case LSHMOE_QM_INT2:
        for (size_t b = 0; b < nb; b++) {
            float s = lshmoe_qm_f16_to_f32(lshmoe_qm_get_f16(src + 2 * b));
            size_t lo = b * LSHMOE_QM_LOW_BLOCK;
            size_t hi = lo + LSHMOE_QM_LOW_BLOCK < hidden ? lo + LSHMOE_QM_LOW_BLOCK : hidden;
            if (fmt == LSHMOE_QM_INT4) {
                for (size_t i = lo; i < hi; i++)
                    y[i] = (float)lshmoe_qm_nibble(codes[i / 2] >> (4 * (i % 2))) * s;
            } else {
                for (size_t i = lo; i < hi; i++)
                    y[i] = lshmoe_qm_level2((codes[i / 4] >> (2 * (i % 4))) & 3) * s;
            }
        }
        break;
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
            if (!isfinite(s) || s < 0.0f || signbit(s))
                return 1;
        }
        if (fmt == LSHMOE_QM_FP8)
            for (size_t i = 0; i < hidden; i++)
                if (lshmoe_qm_e4m3_is_nan(codes[i]))
                    return 2;
        return 0;
    case LSHMOE_QM_INT4:
    case LSHMOE_QM_INT2: {
        for (size_t b = 0; b < nb; b++)
            if (!lshmoe_qm_f16_scale_ok(lshmoe_qm_get_f16(src + 2 * b)))
                return 1;
        size_t per_byte = fmt == LSHMOE_QM_INT4 ? 2 : 4;
        size_t used = hidden % per_byte;
        if (used != 0) {
            uint8_t last = codes[hidden / per_byte];
            if (last >> (8 / per_byte * used))
                return 3;
        }
        return 0;
    }
    default:
        return 4;
    }
}
