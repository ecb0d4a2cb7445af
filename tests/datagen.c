/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datagen.h"
#include "lshmoe/common/dtype.h"

uint64_t lt_hash64(uint64_t seed, uint64_t index)
{
    /* splitmix64 finaliser over (seed, index) */
    uint64_t z = seed * 0x9E3779B97F4A7C15ull + index + 0x632BE59BD9B4E019ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

double lt_uniform(uint64_t seed, uint64_t index)
{
    return (double)(lt_hash64(seed, index) >> 11) * (1.0 / 9007199254740992.0);
}

double lt_normal(uint64_t seed, uint64_t index)
{
    double u1 = lt_uniform(seed, 2 * index);
    double u2 = lt_uniform(seed, 2 * index + 1);
    if (u1 < 1e-300)
        u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void lt_gen_gaussian(float *out, size_t ntokens, size_t hidden, uint64_t seed)
{
    for (size_t i = 0; i < ntokens * hidden; i++)
        out[i] = (float)lt_normal(seed, i);
}

void lt_gen_clustered(float *out, size_t ntokens, size_t hidden,
                      size_t ncenters, double noise, uint64_t seed)
{
    for (size_t i = 0; i < ntokens; i++) {
        size_t c = (size_t)(lt_uniform(seed ^ 0xC1u, i) * (double)ncenters);
        for (size_t j = 0; j < hidden; j++) {
            double center = lt_normal(seed ^ 0xCE17u, c * hidden + j);
            double eps = noise > 0.0 ? noise * lt_normal(seed ^ 0x4015Eu, i * hidden + j) : 0.0;
            out[i * hidden + j] = (float)(center + eps);
        }
    }
}

double lt_rel_l2(const float *a, const float *b, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - (double)b[i];
        num += d * d;
        den += (double)b[i] * (double)b[i];
    }
    return den > 0.0 ? sqrt(num / den) : sqrt(num);
}

void lt_to_dtype(const float *src, size_t n, lshmoe_dtype_t dtype, void *dst)
{
    lshmoe_row_from_f32(src, n, dtype, dst);
}

int lt_gen_is_builtin(const char *name)
{
    return !strcmp(name, "clustered") || !strcmp(name, "gaussian");
}

float *lt_gen_named(const char *name, size_t ntokens, size_t hidden, size_t ncenters,
                    double noise, uint64_t seed)
{
    if (!lt_gen_is_builtin(name))
        return NULL;
    float *x = malloc(ntokens * hidden * sizeof(float));
    if (x == NULL)
        return NULL;
    if (!strcmp(name, "gaussian"))
        lt_gen_gaussian(x, ntokens, hidden, seed);
    else
        lt_gen_clustered(x, ntokens, hidden, ncenters, noise, seed);
    return x;
}
