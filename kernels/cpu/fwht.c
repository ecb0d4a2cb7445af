/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Normalised fast Walsh-Hadamard transform, in place.
 *
 * The exact sequence of floating-point operations is part of the contract,
 * because bucket keys must be bit-identical across backends (kernels.h):
 *   stages h = 1, 2, 4, ..., n/2; in each, every pair (v[i], v[i+h]) with
 *   (i & h) == 0 becomes (v[i] + v[i+h], v[i] - v[i+h]);
 *   then every element is multiplied by the fp32 constant 1/sqrt(n), which
 *   is 2^-k for n = 4^k (exact) and 0.70710678f * 2^-k for n = 2 * 4^k.
 * The order of the butterflies within a stage does not change the result.
 *
 * Speed: stages h < 16 run inside 16-element blocks, stages h >= 16 run two
 * at a time on 16-element runs through restrict pointers; all inner loops
 * have fixed trip counts, which gcc vectorises at -O2 (very-cheap cost
 * model).
 */
#include <stddef.h>

#include "kernels/common/lsh_math.h"
#include "kernels/kernels.h"

#define FWHT_BLOCK 16

/*
 * Stages h = 1, 2, 4, 8 of a 16-element block, seen as a 4x4 matrix of
 * rows v[4r..4r+3]. Stages 1 and 2 combine the columns of that matrix, so
 * after loading it transposed (c_j[r] = v[4r + j]) they are elementwise
 * operations on whole vectors; stages 4 and 8 combine rows, which are
 * vectors as stored. gcc turns this into shuffles plus 4-wide adds (about
 * twice as fast as a row-wise radix-4 step).
 */
static inline void fwht16(float *restrict v)
{
    float c0[4], c1[4], c2[4], c3[4], b0[4], b1[4], b2[4], b3[4];
    for (size_t r = 0; r < 4; r++) {
        c0[r] = v[4 * r];
        c1[r] = v[4 * r + 1];
        c2[r] = v[4 * r + 2];
        c3[r] = v[4 * r + 3];
    }
    for (size_t r = 0; r < 4; r++) {          /* h = 1 */
        b0[r] = c0[r] + c1[r];
        b1[r] = c0[r] - c1[r];
        b2[r] = c2[r] + c3[r];
        b3[r] = c2[r] - c3[r];
    }
    for (size_t r = 0; r < 4; r++) {          /* h = 2 */
        c0[r] = b0[r] + b2[r];
        c1[r] = b1[r] + b3[r];
        c2[r] = b0[r] - b2[r];
        c3[r] = b1[r] - b3[r];
    }
    for (size_t r = 0; r < 4; r++) {
        v[4 * r] = c0[r];
        v[4 * r + 1] = c1[r];
        v[4 * r + 2] = c2[r];
        v[4 * r + 3] = c3[r];
    }
    for (size_t k = 0; k < 4; k++) {          /* h = 4 */
        float a = v[k], b = v[k + 4], c = v[k + 8], d = v[k + 12];
        v[k] = a + b;
        v[k + 4] = a - b;
        v[k + 8] = c + d;
        v[k + 12] = c - d;
    }
    for (size_t k = 0; k < 8; k++) {          /* h = 8 */
        float a = v[k], b = v[k + 8];
        v[k] = a + b;
        v[k + 8] = a - b;
    }
}

/* One radix-2 stage on two disjoint runs of 16: a' = a + b, b' = a - b,
 * then both times s (s = 1 except in the last stage). */
static inline void butterfly16(float *restrict a, float *restrict b, float s)
{
    for (size_t k = 0; k < FWHT_BLOCK; k++) {
        float x = a[k];
        float y = b[k];
        a[k] = (x + y) * s;
        b[k] = (x - y) * s;
    }
}

/* Two radix-2 stages (h, then 2h) on four runs of 16 at 0, h, 2h, 3h, in
 * one pass over memory: the same additions in the same order as two
 * separate stages, so bit-identical to them. */
static inline void radix4_16(float *restrict a, float *restrict b,
                             float *restrict c, float *restrict d, float s)
{
    for (size_t k = 0; k < FWHT_BLOCK; k++) {
        float a1 = a[k] + b[k], b1 = a[k] - b[k];
        float c1 = c[k] + d[k], d1 = c[k] - d[k];
        a[k] = (a1 + c1) * s;
        b[k] = (b1 + d1) * s;
        c[k] = (a1 - c1) * s;
        d[k] = (b1 - d1) * s;
    }
}

static inline void scale16(float *restrict v, float s)
{
    for (size_t k = 0; k < FWHT_BLOCK; k++)
        v[k] *= s;
}

void lshmoe_kn_fwht(float *v, size_t n)
{
    if (v == NULL || n < 2)
        return; /* n = 1 (and 0): H / sqrt(1) is the identity */
    const float s = lshmoe_kn_fwht_scale(n);
    if (n < FWHT_BLOCK) {
        /* Tiny sizes only occur for PAD of tiny hidden sizes. */
        for (size_t h = 1; h < n; h *= 2) {
            for (size_t i = 0; i < n; i += 2 * h) {
                for (size_t j = i; j < i + h; j++)
                    lshmoe_kn_butterfly(&v[j], &v[j + h]);
            }
        }
        for (size_t i = 0; i < n; i++)
            v[i] *= s;
        return;
    }
    if (n == FWHT_BLOCK) {
        fwht16(v);
        scale16(v, s);
        return;
    }
    for (size_t i = 0; i < n; i += FWHT_BLOCK)
        fwht16(v + i);
    /* Remaining stages h = 16 .. n/2, two at a time; the last pass also
     * applies the scale (multiplying right after the last addition is the
     * same operation as a separate pass). */
    size_t h = FWHT_BLOCK;
    for (; 4 * h <= n; h *= 4) {
        const float sc = 4 * h == n ? s : 1.0f;
        for (size_t i = 0; i < n; i += 4 * h)
            for (size_t j = i; j < i + h; j += FWHT_BLOCK)
                radix4_16(v + j, v + j + h, v + j + 2 * h, v + j + 3 * h, sc);
    }
    if (h < n) {
        for (size_t j = 0; j < h; j += FWHT_BLOCK)
            butterfly16(v + j, v + j + h, s);
    }
}
