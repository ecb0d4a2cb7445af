/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Per-element math of the low-precision row formats (docs/wire-format.md,
 * "Row formats"): FP8 e4m3 rounding and decoding, fp16 scales, int8/int4/
 * int2 codes and the byte size of a coded row. Static inline and free of
 * libc beyond <math.h>, <stdint.h> and <string.h>, so that the CPU loops
 * (kernels/cpu/quant.c) and a GPU build compile the same functions:
 * LSHMOE_HD is empty here and `__host__ __device__` there.
 *
 * Row layouts (scales first, then codes; all little-endian):
 *   FP8   ceil(h/128) fp32 scales, then h e4m3 bytes
 *   INT8  one fp32 scale, then h int8 bytes
 *   INT4  ceil(h/32) fp16 scales, then ceil(h/2) bytes, low nibble first,
 *         two's complement codes -8..7; an odd row's last high nibble is 0
 *   INT2  ceil(h/32) fp16 scales, then ceil(h/4) bytes, lowest bits first,
 *         codes 0..3 meaning (q - 1.5) * scale; unused high bits are 0
 *   INT4E as INT4, but each scale is one byte e: 0 means 0, else
 *         2^((e - 160) / 4) (quarter-octave steps, 2^-39.75 .. 2^23.75);
 *         every byte is a valid scale
 * Value = code * scale (FP8: e4m3(code) * scale). Scales are finite, >= 0.
 */
#ifndef LSHMOE_KERNELS_QUANT_MATH_H
#define LSHMOE_KERNELS_QUANT_MATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "kernels/common/half_math.h"  /* LSHMOE_HD, bit casts, fp16 */

/* Row formats. Values are wire format: never renumber. */
#define LSHMOE_QM_NATIVE 0  /* the caller's dtype, as given              */
#define LSHMOE_QM_FP8    1  /* e4m3, fp32 scale per 128 elements         */
#define LSHMOE_QM_INT8   2  /* int8, fp32 scale per row                  */
#define LSHMOE_QM_INT4   3  /* int4, fp16 scale per 32 elements          */
#define LSHMOE_QM_INT2   4  /* 2-bit, fp16 scale per 32 elements         */
#define LSHMOE_QM_INT4E  5  /* int4, 8-bit exponent scale per 32        */
#define LSHMOE_QM_COUNT  6

#define LSHMOE_QM_FP8_BLOCK  128
#define LSHMOE_QM_LOW_BLOCK  32    /* INT4 and INT2 */
#define LSHMOE_QM_E4M3_MAX   448.0f

/* Scale blocks of a row of `hidden` elements. */
LSHMOE_HD static inline uint64_t lshmoe_qm_nblocks(int fmt, uint64_t hidden)
{
    uint64_t b = fmt == LSHMOE_QM_FP8 ? LSHMOE_QM_FP8_BLOCK
               : fmt == LSHMOE_QM_INT8 ? (hidden > 0 ? hidden : 1)
               : LSHMOE_QM_LOW_BLOCK;
    return (hidden + b - 1) / b;
}

/* Bytes of one coded row (quantized formats only; 0 for NATIVE or an
 * unknown format). hidden < 2^32 keeps every product in range. */
LSHMOE_HD static inline uint64_t lshmoe_qm_row_bytes(int fmt, uint64_t hidden)
{
    switch (fmt) {
    case LSHMOE_QM_FP8:
        return 4 * lshmoe_qm_nblocks(fmt, hidden) + hidden;
    case LSHMOE_QM_INT8:
        return 4 + hidden;
    case LSHMOE_QM_INT4:
        return 2 * lshmoe_qm_nblocks(fmt, hidden) + (hidden + 1) / 2;
    case LSHMOE_QM_INT2:
        return 2 * lshmoe_qm_nblocks(fmt, hidden) + (hidden + 3) / 4;
    case LSHMOE_QM_INT4E:
        return lshmoe_qm_nblocks(fmt, hidden) + (hidden + 1) / 2;
    default:
        return 0;
    }
}

/* Bytes of the scale section at the start of a coded row. */
LSHMOE_HD static inline uint64_t lshmoe_qm_scale_bytes(int fmt, uint64_t hidden)
{
    uint64_t per = (fmt == LSHMOE_QM_FP8 || fmt == LSHMOE_QM_INT8) ? 4
                 : fmt == LSHMOE_QM_INT4E ? 1 : 2;
    return per * lshmoe_qm_nblocks(fmt, hidden);
}

/* Is this fp16 scale finite and >= 0 (+0 included, -0 rejected)? */
LSHMOE_HD static inline int lshmoe_qm_f16_scale_ok(uint16_t h)
{
    return (h & 0x8000u) == 0 && ((h >> 10) & 0x1fu) != 31u;
}

/* fp32 -> e4m3 (bias 7, no Inf; 0x7f/0xff are NaN), round to nearest
 * even, saturating at +-448. The input is finite. */
LSHMOE_HD static inline uint8_t lshmoe_qm_f32_to_e4m3(float x)
{
    uint32_t u = lshmoe_kn_f32_bits(x);
    uint8_t sign = (uint8_t)((u >> 24) & 0x80u);
    uint32_t a = u & 0x7fffffffu;
    if (lshmoe_kn_bits_f32(a) >= LSHMOE_QM_E4M3_MAX)
        return (uint8_t)(sign | 0x7eu);
    if (a < 0x3c800000u) {                      /* below 2^-6: subnormal */
        /* steps of 2^-9: 0..8, where 8 is the smallest normal (0x08) */
        float q = rintf(lshmoe_kn_bits_f32(a) * 512.0f);
        return (uint8_t)(sign | (uint8_t)q);
    }
    uint32_t r = a + 0x7ffffu + ((a >> 20) & 1u); /* round 23 -> 3 bits */
    uint32_t e = (r >> 23) - 127u + 7u;          /* 1..15 */
    return (uint8_t)(sign | (e << 3) | ((r >> 20) & 7u));
}

/* Branch-free (selects only), so that decoding loops vectorise. */
LSHMOE_HD static inline float lshmoe_qm_e4m3_to_f32(uint8_t c)
{
    uint32_t sign = (uint32_t)(c & 0x80u) << 24;
    uint32_t e = (c >> 3) & 15u, m = c & 7u;
    uint32_t normal = sign | ((e + 120u) << 23) | (m << 20);
    uint32_t sub = lshmoe_kn_f32_bits((float)m * 0.001953125f) | sign;
    uint32_t bits = e == 0 ? sub : normal;
    bits = (c & 0x7fu) == 0x7fu ? (sign | 0x7fc00000u) : bits;
    return lshmoe_kn_bits_f32(bits);
}

/* INT4E scale byte -> value: 2^((e - 160) / 4), exact (a power of two
 * times one of four constants), 0 for e = 0. */
LSHMOE_HD static inline float lshmoe_qm_e8_scale(uint8_t e)
{
    const float frac[4] = {1.0f, 1.18920711500272f, 1.41421356237310f,
                           1.68179283050743f};
    if (e == 0)
        return 0.0f;
    int k = (int)e - 160;            /* -159 .. 95 */
    int oct = k >= 0 ? k / 4 : -((-k + 3) / 4);
    int q = k - 4 * oct;             /* 0..3 */
    return lshmoe_kn_bits_f32((uint32_t)(oct + 127) << 23) * frac[q];
}

/*
 * The INT4E scale byte nearest (in log) to s > 0, clamped to 1..255:
 * 160 + round(4 * log2(s)). Computed from the float's exponent and four
 * comparisons of its mantissa m in [1, 2) with 2^(1/8), 2^(3/8), 2^(5/8)
 * and 2^(7/8) (as floats; m at a threshold rounds up), not with log2f,
 * whose last bit differs between libm and the GPU: the byte is a pure
 * function of the float's bits on every backend. Subnormal s clamp to 1,
 * +Inf to 255, NaN and s <= 0 give 0.
 */
LSHMOE_HD static inline uint8_t lshmoe_qm_e8_of(float s)
{
    if (!(s > 0.0f))
        return 0;
    uint32_t u = lshmoe_kn_f32_bits(s);
    uint32_t ef = u >> 23; /* sign is 0 */
    if (ef == 0)
        return 1;
    if (ef == 255)
        return 255;
    float m = lshmoe_kn_bits_f32((u & 0x7fffffu) | 0x3f800000u);
    int q = (m >= 1.09050773f) + (m >= 1.29683955f) + (m >= 1.54221083f) +
            (m >= 1.83400809f);
    int k = 4 * ((int)ef - 127) + q + 160;
    return (uint8_t)(k < 1 ? 1 : (k > 255 ? 255 : k));
}

/* 1 / s, or 0 when s is not > 0 or so small that 1 / s overflows. */
LSHMOE_HD static inline float lshmoe_qm_safe_inv(float s)
{
    if (!(s > 0.0f))
        return 0.0f;
    float inv = 1.0f / s;
    return isfinite(inv) ? inv : 0.0f;
}

/* The inverse of a scale the encoder codes with (lshmoe_qm_safe_inv), and
 * *s set to 0 where that inverse is 0: such a scale codes every element
 * as 0, and the decoder must see the scale that says so. */
LSHMOE_HD static inline float lshmoe_qm_scale_inv(float *s)
{
    float inv = lshmoe_qm_safe_inv(*s);
    if (inv == 0.0f)
        *s = 0.0f;
    return inv;
}

/* The scale code of a low-bit block (INT4/INT2: fp16 bits, saturated at
 * the fp16 maximum; INT4E: the exponent byte) for the scale s > 0, and
 * the value a decoder gives that code: the encoder measures a candidate
 * scale as the decoder will see it. */
LSHMOE_HD static inline uint16_t lshmoe_qm_scale_code(int fmt, float s)
{
    if (fmt == LSHMOE_QM_INT4E)
        return lshmoe_qm_e8_of(s);
    return lshmoe_kn_f32_to_f16(s < 65504.0f ? s : 65504.0f);
}

LSHMOE_HD static inline float lshmoe_qm_scale_value(int fmt, uint16_t code)
{
    return fmt == LSHMOE_QM_INT4E ? lshmoe_qm_e8_scale((uint8_t)code)
                                  : lshmoe_kn_f16_to_f32(code);
}

/* Is this byte an e4m3 NaN (never written by the encoder)? */
LSHMOE_HD static inline int lshmoe_qm_e4m3_is_nan(uint8_t c)
{
    return (c & 0x7fu) == 0x7fu;
}

/* Round to nearest even for |v| < 2^22 by the 1.5 * 2^23 addition: no
 * libm call, so loops over it vectorise (needs IEEE float arithmetic in
 * the default rounding mode, no -ffast-math reassociation). */
LSHMOE_HD static inline float lshmoe_qm_rne(float v)
{
    const float magic = 12582912.0f;
    return (v + magic) - magic;
}

/* Integer code of x / scale (inv = 1 / scale, 0 when the scale is 0),
 * clamped to [lo, hi] and rounded to nearest even. */
LSHMOE_HD static inline float lshmoe_qm_code(float x, float inv, float lo, float hi)
{
    float v = x * inv;
    v = v < lo ? lo : v;
    v = v > hi ? hi : v;
    return lshmoe_qm_rne(v);
}

/* 2-bit code of x / scale: the nearest of the levels -1.5, -0.5, 0.5, 1.5
 * (code 0..3; a tie goes to the even one below). */
LSHMOE_HD static inline float lshmoe_qm_code2(float x, float inv)
{
    float v = x * inv - 0.5f;
    v = v < -2.0f ? -2.0f : v;
    v = v > 1.0f ? 1.0f : v;
    return lshmoe_qm_rne(v) + 2.0f;
}

LSHMOE_HD static inline float lshmoe_qm_level2(int q)
{
    return (float)q - 1.5f;
}

/* Sign-extends a 4-bit two's complement nibble. */
LSHMOE_HD static inline int lshmoe_qm_nibble(unsigned v)
{
    return (int)(v & 7u) - (int)(v & 8u);
}

LSHMOE_HD static inline void lshmoe_qm_put_f32(uint8_t *p, float v)
{
    uint32_t u = lshmoe_kn_f32_bits(v);
    p[0] = (uint8_t)u;
    p[1] = (uint8_t)(u >> 8);
    p[2] = (uint8_t)(u >> 16);
    p[3] = (uint8_t)(u >> 24);
}

LSHMOE_HD static inline float lshmoe_qm_get_f32(const uint8_t *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    return lshmoe_kn_bits_f32(u);
}

LSHMOE_HD static inline void lshmoe_qm_put_f16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

LSHMOE_HD static inline uint16_t lshmoe_qm_get_f16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

/* Element i of a coded row decoded to fp32 (the receiver's value before
 * rounding to the dtype): one product code * scale, the same on the CPU
 * (kernels/cpu/quant_ref.h) and the device decoder (kernels/cuda/). */
LSHMOE_HD static inline float lshmoe_qm_decode_elem(int fmt, const uint8_t *src,
                                                    uint64_t hidden, uint64_t i)
{
    const uint8_t *codes = src + lshmoe_qm_scale_bytes(fmt, hidden);
    uint64_t b = i / LSHMOE_QM_LOW_BLOCK;
    switch (fmt) {
    case LSHMOE_QM_FP8:
        return lshmoe_qm_e4m3_to_f32(codes[i]) *
               lshmoe_qm_get_f32(src + 4 * (i / LSHMOE_QM_FP8_BLOCK));
    case LSHMOE_QM_INT8:
        return (float)(int8_t)codes[i] * lshmoe_qm_get_f32(src);
    case LSHMOE_QM_INT4:
        return (float)lshmoe_qm_nibble(codes[i / 2] >> (4 * (i % 2))) *
               lshmoe_kn_f16_to_f32(lshmoe_qm_get_f16(src + 2 * b));
    case LSHMOE_QM_INT4E:
        return (float)lshmoe_qm_nibble(codes[i / 2] >> (4 * (i % 2))) *
               lshmoe_qm_e8_scale(src[b]);
    case LSHMOE_QM_INT2:
        return lshmoe_qm_level2((codes[i / 4] >> (2 * (i % 4))) & 3) *
               lshmoe_kn_f16_to_f32(lshmoe_qm_get_f16(src + 2 * b));
    default:
        return 0.0f;
    }
}

/* The decoder's check of one coded row (lshmoe_kn_quant_row_check, and
 * the device validator): 0 valid; 1 a scale not finite and >= 0; 2 an
 * e4m3 NaN code; 3 nonzero unused code bits; 4 an unknown format. */
LSHMOE_HD static inline int lshmoe_qm_row_check(int fmt, const uint8_t *src, uint64_t hidden)
{
    uint64_t nb = lshmoe_qm_nblocks(fmt, hidden);
    const uint8_t *codes = src + lshmoe_qm_scale_bytes(fmt, hidden);

    switch (fmt) {
    case LSHMOE_QM_FP8:
    case LSHMOE_QM_INT8:
        for (uint64_t b = 0; b < nb; b++) {
            float s = lshmoe_qm_get_f32(src + 4 * b);
            if (!isfinite(s) || signbit(s))
                return 1;
        }
        if (fmt == LSHMOE_QM_FP8)
            for (uint64_t i = 0; i < hidden; i++)
                if (lshmoe_qm_e4m3_is_nan(codes[i]))
                    return 2;
        return 0;
    case LSHMOE_QM_INT4:
    case LSHMOE_QM_INT2:
    case LSHMOE_QM_INT4E: {
        for (uint64_t b = 0; b < nb && fmt != LSHMOE_QM_INT4E; b++)
            if (!lshmoe_qm_f16_scale_ok(lshmoe_qm_get_f16(src + 2 * b)))
                return 1;
        uint64_t per_byte = fmt == LSHMOE_QM_INT2 ? 4 : 2;
        uint64_t used = hidden % per_byte;
        if (used != 0 && (codes[hidden / per_byte] >> (8 / per_byte * used)) != 0)
            return 3;
        return 0;
    }
    default:
        return 4;
    }
}

/* The row-format encoder's fp64 sums in lshmoe/codec_rd.c's order (token
 * order, from 0.0): sums[0] of norms, sums[1] of row_sse (0 when NULL),
 * sums[2] and sums[3] of row_sse and norms over tokens step/2, step/2 +
 * step, ... (the sampled search's). One thread: any parallel order would
 * round differently, and the encoder's decision must be the CPU's. */
LSHMOE_HD static inline void lshmoe_qm_ordered_sums(const double *row_sse, const double *norms,
                                                    uint64_t n, uint64_t step, double *sums)
{
    double den = 0.0, sse = 0.0, ss = 0.0, sd = 0.0;
    for (uint64_t i = 0; i < n; i++) {
        den += norms[i];
        sse += row_sse != NULL ? row_sse[i] : 0.0;
    }
    for (uint64_t i = step / 2; i < n; i += step) {
        ss += row_sse != NULL ? row_sse[i] : 0.0;
        sd += norms[i];
    }
    sums[0] = den;
    sums[1] = sse;
    sums[2] = ss;
    sums[3] = sd;
}

#endif /* LSHMOE_KERNELS_QUANT_MATH_H */
