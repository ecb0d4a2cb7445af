/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The four clip tries' squared errors of a cross-block low-bit search, on
 * every lane at once (lowbit_lanes_avx512.c says why each step is the
 * scalar reference's bit for bit). Included (once) by lowbit_lanes_avx2.c
 * and lowbit_lanes_avx512.c, which first define INL, UNROLL, LOW and:
 *   LL_VEC                 a vector of floats, one block per lane
 *   LL_SCALE               a try's scales: members s and inv, LL_VEC each
 *   ll_zero(), ll_add(a, b)
 *   ll_d2(v, inv, s, fmt)  (v - level * s)^2 of one try, per lane
 */
#ifndef LSHMOE_KERNELS_CPU_X86_LOWBIT_ERRORS_H
#define LSHMOE_KERNELS_CPU_X86_LOWBIT_ERRORS_H

/* The squared errors e[c] of the four tries t, blocks of n elements, each
 * in the reference's order: the lane partials over the whole groups of 8,
 * the n % 8 elements after them summed first, then the partials in order.
 * The tries advance together, element by element, so that each element is
 * loaded once and four independent chains overlap. */
INL void try_errors(const LL_VEC v[LOW], const LL_SCALE t[LSHMOE_QR_NCLIP], int fmt, int n,
                    LL_VEC e[LSHMOE_QR_NCLIP])
{
    const int whole = n - n % 8;
    UNROLL
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
        e[c] = ll_zero();
    UNROLL
    for (int i = whole; i < n && i < LOW; i++)
        UNROLL
        for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
            e[c] = ll_add(e[c], ll_d2(v[i], t[c].inv, t[c].s, fmt));
    UNROLL
    for (int k = 0; k < 8 && k < whole; k++) {
        LL_VEC part[LSHMOE_QR_NCLIP];
        UNROLL
        for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
            part[c] = ll_d2(v[k], t[c].inv, t[c].s, fmt);
        UNROLL
        for (int g = 8; g < whole && g < LOW; g += 8)
            UNROLL
            for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
                part[c] = ll_add(part[c], ll_d2(v[g + k], t[c].inv, t[c].s, fmt));
        UNROLL
        for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
            e[c] = k == 0 && whole == n ? part[c] : ll_add(e[c], part[c]);
    }
}

#endif /* LSHMOE_KERNELS_CPU_X86_LOWBIT_ERRORS_H */
