/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The per-element and per-token arithmetic of cross-polytope LSH that every
 * backend shares (kernels/cpu/lsh_hash.c and fwht.c, kernels/cuda/): the
 * counter-based random signs, the Hadamard butterfly and its scale, the
 * block argmax with its tie rule, and the packing of block values into a
 * bucket key. Bucket keys must be bit-identical across backends, so the
 * exact operations live here once; lsh_hash.c documents the algorithm.
 *
 * Plain C11 for the CPU; __host__ __device__ under nvcc (hd.h). No
 * allocation, no state, no library calls except fabsf.
 */
#ifndef LSHMOE_KN_LSH_MATH_H
#define LSHMOE_KN_LSH_MATH_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/common/hd.h"

/* Purposes of the random draws (part of the key contract). */
#define LSHMOE_KN_PURPOSE_FOLD 1u
#define LSHMOE_KN_PURPOSE_ROT  2u

/* Start value of the mixed key (keys wider than 63 bits). */
#define LSHMOE_KN_KEY_MIX_INIT 0x243f6a8885a308d3ull

/* splitmix64 finaliser. */
static inline LSHMOE_HD uint64_t lshmoe_kn_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Counter-based: no state, the same (seed, purpose, index) always gives
 * the same draw on every rank and backend. */
static inline LSHMOE_HD uint64_t lshmoe_kn_draw(uint64_t seed, uint64_t purpose,
                                                uint64_t index)
{
    return lshmoe_kn_mix64(lshmoe_kn_mix64(seed ^ (purpose * 0x9e3779b97f4a7c15ull)) +
                           index * 0xd1b54a32d192ed03ull);
}

/* -1 when the top bit of the draw is set, else +1. */
static inline LSHMOE_HD float lshmoe_kn_sign_of(uint64_t draw)
{
    return (draw >> 63) ? -1.0f : 1.0f;
}

/* Sign of hidden element i in the fold. */
static inline LSHMOE_HD float lshmoe_kn_fold_sign(uint64_t seed, size_t i)
{
    return lshmoe_kn_sign_of(lshmoe_kn_draw(seed, LSHMOE_KN_PURPOSE_FOLD, i));
}

/* Sign j of round k of rotation r. */
static inline LSHMOE_HD float lshmoe_kn_rot_sign(uint64_t seed, int r, int k, size_t j)
{
    return lshmoe_kn_sign_of(lshmoe_kn_draw(seed, LSHMOE_KN_PURPOSE_ROT,
                                            (uint64_t)r << 40 | (uint64_t)k << 32 |
                                                (uint64_t)j));
}

/* The Hadamard butterfly every stage applies to a pair (v[i], v[i+h]):
 * (a, b) -> (a + b, a - b), each rounded to fp32. */
static inline LSHMOE_HD void lshmoe_kn_butterfly(float *a, float *b)
{
    float x = *a, y = *b;
    *a = x + y;
    *b = x - y;
}

/* 1/sqrt(n) for n = 2^k as the transform applies it: 2^-(k/2), times
 * 0.70710678f when k is odd (exact powers of two otherwise). */
static inline LSHMOE_HD float lshmoe_kn_fwht_scale(size_t n)
{
    int k = 0;
    while (((size_t)1 << k) < n)
        k++;
    float s = (k & 1) ? 0.70710678118654752f : 1.0f;
    for (int i = 0; i < k / 2; i++)
        s *= 0.5f; /* exact: a power of two, far from underflow */
    return s;
}

/* Value of one cross-polytope block of cdim coordinates: 2 j* + (y_j* < 0)
 * with j* = argmax |y_j|; ties go to the first maximum (strict >). */
static inline LSHMOE_HD unsigned lshmoe_kn_block_value(const float *y, int cdim)
{
    int best = 0;
    float bv = fabsf(y[0]);
    for (int j = 1; j < cdim; j++) {
        float a = fabsf(y[j]);
        if (a > bv) {
            bv = a;
            best = j;
        }
    }
    return 2u * (unsigned)best + (y[best] < 0.0f);
}

/* bits = log2(2 * cdim): width of one block value. */
static inline LSHMOE_HD int lshmoe_kn_value_bits(int cdim)
{
    int bits = 1;
    while ((1 << bits) < 2 * cdim)
        bits++;
    return bits;
}

/*
 * Key accumulation, one block value v of block g at a time, g = 0, 1, ...
 * in order. Start from lshmoe_kn_key_init(packed); finish with
 * lshmoe_kn_key_finish(). packed (L * bits <= 63): key = sum of
 * v << (g * bits); otherwise acc = mix64(acc ^ (v | g << 16)) from
 * LSHMOE_KN_KEY_MIX_INIT, top bit cleared. Finite keys are < 2^63.
 */
static inline LSHMOE_HD uint64_t lshmoe_kn_key_init(int packed)
{
    return packed ? 0 : LSHMOE_KN_KEY_MIX_INIT;
}

static inline LSHMOE_HD uint64_t lshmoe_kn_key_add(uint64_t key, int packed, int bits,
                                                   int g, unsigned v)
{
    if (packed)
        return key | (uint64_t)v << (g * bits);
    return lshmoe_kn_mix64(key ^ ((uint64_t)v | (uint64_t)g << 16));
}

static inline LSHMOE_HD uint64_t lshmoe_kn_key_finish(uint64_t key, int packed)
{
    return packed ? key : key & (UINT64_MAX >> 1);
}

/*
 * The low bits of a key that a radix sort must compare to order the keys
 * of (L, cdim) exactly as a sort of all 64 bits does: packed keys
 * (L * bits <= 63) are below 2^(L * bits), and the non-finite key
 * (all ones) is the only key with bit L * bits set, so L * bits + 1 bits
 * tell every two keys apart in the same order; mixed keys need all 64.
 * Fewer bits, fewer radix passes (the device grouping).
 */
static inline LSHMOE_HD int lshmoe_kn_key_sort_bits(int L, int cdim)
{
    int used = L * lshmoe_kn_value_bits(cdim);
    return used <= 63 ? used + 1 : 64;
}

#endif /* LSHMOE_KN_LSH_MATH_H */
