/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Row quantizers (FP8 e4m3 / int8 / int4 / int2) over fp32 rows: coding,
 * decoding and validation of one row, the scalar level. It is the
 * reference the SIMD levels (kernels/cpu/x86/quant_*.c) match byte for
 * byte; the dispatch is in dispatch.c. The per-element math is in
 * kernels/common/quant_math.h, shared with other backends, the per-block
 * steps in quant_ref.h, shared with the SIMD levels; the layouts are
 * described in quant_math.h and docs/wire-format.md. Loops are per scale
 * block, branch-free inside, so that gcc vectorises them at -O2.
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
#include "kernels/cpu/quant_isa.h"
#include "kernels/cpu/quant_ref.h"
#include "kernels/kernels.h"

#define LOW LSHMOE_QM_LOW_BLOCK

static void quant_fp8(const float *x, size_t hidden, uint8_t *dst)
{
    size_t nb = (size_t)lshmoe_qm_nblocks(LSHMOE_QM_FP8, hidden);
    uint8_t *codes = dst + 4 * nb;
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * LSHMOE_QM_FP8_BLOCK;
        size_t n = hidden - lo < LSHMOE_QM_FP8_BLOCK ? hidden - lo : LSHMOE_QM_FP8_BLOCK;
        float s = lshmoe_qr_amax(x + lo, n) / LSHMOE_QM_E4M3_MAX;
        float inv = lshmoe_qm_scale_inv(&s);
        lshmoe_qm_put_f32(dst + 4 * b, s);
        for (size_t i = 0; i < n; i++)
            codes[lo + i] = lshmoe_qm_f32_to_e4m3(x[lo + i] * inv);
    }
}

static void quant_int8(const float *x, size_t hidden, uint8_t *dst)
{
    float s = lshmoe_qr_amax(x, hidden) / 127.0f;
    float inv = lshmoe_qm_scale_inv(&s);
    lshmoe_qm_put_f32(dst, s);
    for (size_t i = 0; i < hidden; i++)
        dst[4 + i] = (uint8_t)(int8_t)lshmoe_qm_code(x[i], inv, -127.0f, 127.0f);
}

/* INT4, INT4E and INT2: per 32-element block, the best of a few clipped
 * scales (kernels/cpu/quant_ref.h); codes packed lowest bits first. */
static void quant_low(const float *x, size_t hidden, uint8_t *dst, int fmt)
{
    size_t nb = (size_t)lshmoe_qm_nblocks(fmt, hidden);
    size_t per_byte = fmt == LSHMOE_QM_INT2 ? 4 : 2;
    uint8_t *codes = dst + lshmoe_qm_scale_bytes(fmt, hidden);

    memset(codes, 0, (hidden + per_byte - 1) / per_byte);
    for (size_t b = 0; b < nb; b++) {
        size_t lo = b * LOW;
        size_t n = hidden - lo < LOW ? hidden - lo : LOW;
        lshmoe_qr_low_block(x + lo, n, b, fmt, dst, codes);
    }
}

void lshmoe_kn_quant_row_scalar(int fmt, const float *x, size_t hidden, uint8_t *dst)
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

void lshmoe_kn_dequant_row_scalar(int fmt, const uint8_t *src, size_t hidden, float *y)
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

/* The reference the other levels match: decode, then round to the dtype. */
void lshmoe_kn_dequant_row_to_scalar(LSHMOE_KN_DEQUANT_TO_ARGS)
{
    if (lshmoe_qm_row_bytes(fmt, hidden) == 0)
        return;
    lshmoe_kn_dequant_row_scalar(fmt, src, hidden, scratch);
    lshmoe_row_from_f32(scratch, hidden, dtype, dst);
}

int lshmoe_kn_quant_row_check(int fmt, const uint8_t *src, size_t hidden)
{
    return lshmoe_qm_row_check(fmt, src, hidden);
}
