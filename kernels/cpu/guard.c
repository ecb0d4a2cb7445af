/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The sums of the codec's quality guard (scalar reference), read straight
 * from the rows in their dtype: no fp32 copy of the centroids first. Per
 * token, fp64 sums in element order; kernels/cpu/x86/guard_*.c split each
 * sum over SIMD lanes and use FMA, so they agree with this one to rounding
 * (relative 1e-12 on realistic data), not bit for bit.
 */
#include <math.h>
#include <stdint.h>

#include "kernels/cpu/guard_isa.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"

#define CONV_CHUNK 256  /* floats converted per step (stack buffers) */

void lshmoe_kn_guard_sums_scalar(const void *tokens, const void *rows,
                                 lshmoe_dtype_t dtype, size_t hidden, size_t ntokens,
                                 const uint32_t *cluster_of, const uint32_t *sizes,
                                 double *num_p, double *den_p)
{
    const size_t row_bytes = hidden * (dtype == LSHMOE_DTYPE_FP32 ? 4 : 2);
    const size_t es = row_bytes / hidden;
    float tb[CONV_CHUNK], rb[CONV_CHUNK];
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < ntokens; i++) {
        const unsigned char *x = (const unsigned char *)tokens + i * row_bytes;
        const unsigned char *r = (const unsigned char *)rows + (size_t)cluster_of[i] * row_bytes;
        const int multi = sizes[cluster_of[i]] > 1;
        double nn = 0.0, d = 0.0;
        for (size_t e0 = 0; e0 < hidden; e0 += CONV_CHUNK) {
            size_t c = hidden - e0 < CONV_CHUNK ? hidden - e0 : CONV_CHUNK;
            lshmoe_row_to_f32(x + e0 * es, dtype, c, tb);
            for (size_t e = 0; e < c; e++)
                nn += (double)tb[e] * tb[e];
            if (!multi)
                continue;
            lshmoe_row_to_f32(r + e0 * es, dtype, c, rb);
            for (size_t e = 0; e < c; e++) {
                double diff = (double)tb[e] - rb[e];
                d += diff * diff;
            }
        }
        if (!isfinite(nn))
            continue;
        den += nn;
        if (multi)
            num += d;
    }
    *num_p = num;
    *den_p = den;
}
