/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Residual coding for transparent mode: per token, an fp32 scale
 * (max |r| / qmax, stored with memcpy because the wire may be unaligned)
 * followed by `hidden` signed integers q_j = round(r_j / scale), clamped to
 * [-qmax, qmax]: int8 (qmax 127) or two int4 per byte, low nibble first
 * (qmax 7; an odd last high nibble is 0). Decoding adds q_j * scale.
 *
 * Edge cases, chosen so the coding never produces NaN/Inf and never
 * disturbs an exact row:
 *  - non-finite r_j (a NaN/Inf token copied byte for byte into its own
 *    row, or an overflowing difference) counts as 0;
 *  - scale is 0 when r is all zero, and also when max |r| is so small that
 *    max |r| / qmax is below FLT_MIN (a residual below 1e-36 is noise);
 *    then every q_j is 0;
 *  - decoding leaves a token whose scale is 0 untouched, so rows that are
 *    already exact (singleton clusters, NaN/Inf tokens) stay byte-identical.
 *
 * `scratch` holds `hidden` floats, for encode and for decode.
 */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"

#define VEC 16          /* fixed inner trip count: vectorises at -O2 */
#define CONV_CHUNK 256  /* floats converted per step (stack buffers) */
/* Adding and subtracting 1.5 * 2^23 rounds an fp32 |v| < 2^22 to the
 * nearest integer, ties to even, in the current (default) rounding mode:
 * rintf() would be a library call at the x86-64 baseline and would stop
 * vectorisation. */
#define RNE_MAGIC 12582912.0f

static size_t elem_size(lshmoe_dtype_t dtype)
{
    return dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
}

size_t lshmoe_kn_residual_bytes(size_t hidden, int bits)
{
    if (bits == 8)
        return sizeof(float) + hidden;
    if (bits == 4)
        return sizeof(float) + (hidden + 1) / 2;
    return 0;
}

/* r = x - c with non-finite differences zeroed; returns max |r|. */
static float diff_f32(const float *restrict x, const float *restrict c, size_t n,
                      float *restrict r)
{
    float mx[VEC] = {0};
    size_t i = 0;
    for (; i + VEC <= n; i += VEC) {
        for (size_t k = 0; k < VEC; k++) {
            float d = x[i + k] - c[i + k];
            /* d - d is 0 for finite d and NaN otherwise */
            d = (d - d == 0.0f) ? d : 0.0f;
            r[i + k] = d;
            float a = d < 0.0f ? -d : d;
            mx[k] = a > mx[k] ? a : mx[k];
        }
    }
    for (; i < n; i++) {
        float d = x[i] - c[i];
        d = (d - d == 0.0f) ? d : 0.0f;
        r[i] = d;
        float a = d < 0.0f ? -d : d;
        mx[0] = a > mx[0] ? a : mx[0];
    }
    float m = 0.0f;
    for (size_t k = 0; k < VEC; k++)
        m = mx[k] > m ? mx[k] : m;
    return m;
}

/* q = round(r * inv) clamped to [-qmax, qmax], as int8. */
static void quantize(const float *restrict r, float inv, float qmax, size_t n,
                     int8_t *restrict q)
{
    size_t i = 0;
    for (; i + VEC <= n; i += VEC) {
        for (size_t k = 0; k < VEC; k++) {
            float v = r[i + k] * inv;
            v = v > qmax ? qmax : v;
            v = v < -qmax ? -qmax : v;
            v = (v + RNE_MAGIC) - RNE_MAGIC;
            q[i + k] = (int8_t)(int)v;
        }
    }
    for (; i < n; i++) {
        float v = r[i] * inv;
        v = v > qmax ? qmax : v;
        v = v < -qmax ? -qmax : v;
        v = (v + RNE_MAGIC) - RNE_MAGIC;
        q[i] = (int8_t)(int)v;
    }
}

static void encode_one(const unsigned char *x, const unsigned char *c,
                       lshmoe_dtype_t dtype, size_t hidden, int bits,
                       unsigned char *out, float *r)
{
    const size_t es = elem_size(dtype);
    const float qmax = bits == 8 ? 127.0f : 7.0f;
    float xb[CONV_CHUNK], cb[CONV_CHUNK];
    float maxabs = 0.0f;
    for (size_t i = 0; i < hidden; i += CONV_CHUNK) {
        size_t n = hidden - i < CONV_CHUNK ? hidden - i : CONV_CHUNK;
        lshmoe_row_to_f32(x + i * es, dtype, n, xb);
        lshmoe_row_to_f32(c + i * es, dtype, n, cb);
        float m = diff_f32(xb, cb, n, r + i);
        maxabs = m > maxabs ? m : maxabs;
    }
    float scale = maxabs / qmax;
    if (!(scale >= FLT_MIN))
        scale = 0.0f;
    memcpy(out, &scale, sizeof scale);
    unsigned char *payload = out + sizeof scale;
    const size_t nq = lshmoe_kn_residual_bytes(hidden, bits) - sizeof scale;
    if (scale == 0.0f) {
        memset(payload, 0, nq);
        return;
    }
    const float inv = 1.0f / scale;
    if (bits == 8) {
        quantize(r, inv, qmax, hidden, (int8_t *)payload);
        return;
    }
    /* int4: quantise a chunk to int8, then pack pairs. */
    int8_t qb[CONV_CHUNK];
    for (size_t i = 0; i < hidden; i += CONV_CHUNK) {
        size_t n = hidden - i < CONV_CHUNK ? hidden - i : CONV_CHUNK;
        quantize(r + i, inv, qmax, n, qb);
        if (n % 2)
            qb[n++] = 0;
        for (size_t k = 0; k < n; k += 2)
            payload[(i + k) / 2] = (unsigned char)(((unsigned)qb[k] & 0xfu) |
                                                   (((unsigned)qb[k + 1] & 0xfu) << 4));
    }
}

void lshmoe_kn_residual_encode(const void *tokens, const void *rows,
                               lshmoe_dtype_t dtype, size_t hidden,
                               size_t ntokens, const uint32_t *cluster_of,
                               int bits, void *coded, float *scratch)
{
    if (!lshmoe_dtype_is_float(dtype) || (bits != 8 && bits != 4))
        return;
    const size_t row_bytes = hidden * elem_size(dtype);
    const size_t stride = lshmoe_kn_residual_bytes(hidden, bits);
    for (size_t i = 0; i < ntokens; i++)
        encode_one((const unsigned char *)tokens + i * row_bytes,
                   (const unsigned char *)rows + (size_t)cluster_of[i] * row_bytes,
                   dtype, hidden, bits, (unsigned char *)coded + i * stride, scratch);
}

/* v += q * scale */
/* v += q * scale, except where q is 0: there v stays as it is, so a
 * centroid coordinate of -0.0 keeps its sign (-0.0 + +0.0 is +0.0). A
 * select, which vectorises like the plain sum. */
static void add_q(float *restrict v, const int8_t *restrict q, float scale, size_t n)
{
    size_t i = 0;
    for (; i + VEC <= n; i += VEC)
        for (size_t k = 0; k < VEC; k++)
            v[i + k] = q[i + k] != 0 ? v[i + k] + (float)q[i + k] * scale : v[i + k];
    for (; i < n; i++)
        v[i] = q[i] != 0 ? v[i] + (float)q[i] * scale : v[i];
}

void lshmoe_kn_residual_decode(const void *coded, lshmoe_dtype_t dtype,
                               size_t hidden, size_t ntokens, int bits,
                               void *out, float *scratch)
{
    if (!lshmoe_dtype_is_float(dtype) || (bits != 8 && bits != 4))
        return;
    const size_t row_bytes = hidden * elem_size(dtype);
    const size_t stride = lshmoe_kn_residual_bytes(hidden, bits);
    for (size_t i = 0; i < ntokens; i++) {
        const unsigned char *in = (const unsigned char *)coded + i * stride;
        const unsigned char *payload = in + sizeof(float);
        unsigned char *row = (unsigned char *)out + i * row_bytes;
        float scale;
        memcpy(&scale, in, sizeof scale);
        if (scale == 0.0f)
            continue;
        lshmoe_row_to_f32(row, dtype, hidden, scratch);
        if (bits == 8) {
            add_q(scratch, (const int8_t *)payload, scale, hidden);
        } else {
            int8_t qb[CONV_CHUNK];
            for (size_t j = 0; j < hidden; j += CONV_CHUNK) {
                size_t n = hidden - j < CONV_CHUNK ? hidden - j : CONV_CHUNK;
                /* j is even, so pairs of k share a byte */
                for (size_t k = 0; k < n; k += 2) {
                    unsigned b = payload[(j + k) / 2];
                    qb[k] = (int8_t)((int)((b & 0xfu) ^ 8u) - 8); /* sign-extend */
                    if (k + 1 < n)
                        qb[k + 1] = (int8_t)((int)((b >> 4) ^ 8u) - 8);
                }
                add_q(scratch + j, qb, scale, n);
            }
        }
        lshmoe_row_from_f32(scratch, hidden, dtype, row);
    }
}
