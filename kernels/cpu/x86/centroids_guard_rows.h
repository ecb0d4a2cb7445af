/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The part of the one-pass centroid and guard kernels that does not depend
 * on the vector width (included by centroids_guard_avx2.c and
 * centroids_guard_avx512.c, each after it has defined its gsums_t,
 * single_row() and cluster_row()): the walk over the clusters, and the
 * test that decides whether the sums are used or the exact two-pass guard
 * kernel runs instead. centroids_guard_avx512.c explains the method.
 */
#ifndef LSHMOE_KERNELS_CPU_X86_CENTROIDS_GUARD_ROWS_H
#define LSHMOE_KERNELS_CPU_X86_CENTROIDS_GUARD_ROWS_H

#define CG_SAFE_MAX 0x1p30f
#define CG_SAFE_MIN 0x1p-30f

/* Each row kernel, for one dtype, as a function of its own: inlined into
 * one loop with the others, gcc kept the running maximum on the stack,
 * storing and reloading it on every 32 elements. */
#define CG_ROW_FNS(name, dt)                                                               \
    static __attribute__((noinline)) void single_##name(const unsigned char *x,            \
                                                        size_t hidden, unsigned char *out, \
                                                        gsums_t *g)                        \
    {                                                                                      \
        single_row(x, dt, hidden, out, g);                                                 \
    }                                                                                      \
    static __attribute__((noinline)) void cluster_##name(const unsigned char *tok,         \
                                                         size_t hidden, const uint32_t *mem, \
                                                         uint32_t d, unsigned char *out,   \
                                                         gsums_t *g)                       \
    {                                                                                      \
        cluster_row(tok, dt, hidden, mem, d, out, g);                                      \
    }
CG_ROW_FNS(f32, LSHMOE_DTYPE_FP32)
CG_ROW_FNS(bf16, LSHMOE_DTYPE_BF16)
CG_ROW_FNS(f16, LSHMOE_DTYPE_FP16)
#undef CG_ROW_FNS

/* Does `acc` (nclusters * hidden floats) hold the member lists? */
static inline int cg_lists_fit(size_t nclusters, size_t hidden, size_t ntokens)
{
    return nclusters * hidden >= ntokens + nclusters + 1;
}

/* Every cluster's row, in order (member lists: lshmoe_kn_member_lists). */
static void cg_all_rows(const unsigned char *tok, lshmoe_dtype_t dt, size_t hidden,
                        size_t nclusters, const uint32_t *end, const uint32_t *mem,
                        unsigned char *out, gsums_t *g)
{
    const size_t row_bytes = hidden * (dt == LSHMOE_DTYPE_FP32 ? 4 : 2);
    for (size_t c = 0; c < nclusters; c++) {
        uint32_t b = c ? end[c - 1] : 0, d = end[c] - b;
        const unsigned char *x = tok + (size_t)mem[b] * row_bytes;
        unsigned char *o = out + c * row_bytes;
        if (dt == LSHMOE_DTYPE_FP32)
            d == 1 ? single_f32(x, hidden, o, g) : cluster_f32(tok, hidden, mem + b, d, o, g);
        else if (dt == LSHMOE_DTYPE_BF16)
            d == 1 ? single_bf16(x, hidden, o, g) : cluster_bf16(tok, hidden, mem + b, d, o, g);
        else
            d == 1 ? single_f16(x, hidden, o, g) : cluster_f16(tok, hidden, mem + b, d, o, g);
    }
}

/* The sums from the identities (multi, den and sub reduced, mx the largest
 * |x_e|): 1 with *num_p and *den_p set, or 0 when they must come from the
 * exact kernel (a mean with NaN, a non-finite square, or magnitudes
 * outside the safe range). */
static inline int cg_finish(double multi, double den, double sub, float mx, int nan_mean,
                            double *num_p, double *den_p)
{
    /* a vector max may drop a NaN operand; the squares keep it (den != den) */
    if (nan_mean || !(den == den) ||
        !(mx == 0.0f || (mx >= CG_SAFE_MIN && mx <= CG_SAFE_MAX)))
        return 0;
    double num = multi - sub;
    *num_p = num > 0.0 ? num : 0.0;
    *den_p = den;
    return 1;
}

#endif /* LSHMOE_KERNELS_CPU_X86_CENTROIDS_GUARD_ROWS_H */
