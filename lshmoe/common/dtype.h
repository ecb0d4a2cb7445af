/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * fp16 / bf16 <-> fp32 conversions, shared by every CPU kernel. Conversions
 * to half types round to nearest even; NaN stays NaN (quiet), Inf stays Inf;
 * fp16 handles subnormals and overflow to Inf as IEEE 754 says.
 */
#ifndef LSHMOE_COMMON_DTYPE_H
#define LSHMOE_COMMON_DTYPE_H

#include <stdint.h>
#include <string.h>

#include "lshmoe.h"

static inline float lshmoe_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline uint16_t lshmoe_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u)          /* NaN: keep sign, quiet */
        return (uint16_t)((u >> 16) | 0x0040u);
    u += 0x7fffu + ((u >> 16) & 1u);              /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float lshmoe_f16_to_f32(uint16_t h);
uint16_t lshmoe_f32_to_f16(float f);

/* Is `dtype` one lshmoe may compress (fp32/fp16/bf16)? */
static inline int lshmoe_dtype_is_float(lshmoe_dtype_t dtype)
{
    return dtype == LSHMOE_DTYPE_FP32 || dtype == LSHMOE_DTYPE_FP16 ||
           dtype == LSHMOE_DTYPE_BF16;
}

/* Row conversions: n elements. */
void lshmoe_row_to_f32(const void *src, lshmoe_dtype_t dtype, size_t n, float *dst);
void lshmoe_row_from_f32(const float *src, size_t n, lshmoe_dtype_t dtype, void *dst);

#endif /* LSHMOE_COMMON_DTYPE_H */
