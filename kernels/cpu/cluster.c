/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Grouping tokens by bucket key, cluster means and expansion.
 *
 * Grouping is an open-addressing (linear probing) hash table in the
 * caller's workspace: a power-of-two number of slots >= 2n keeps the load
 * factor <= 1/2; a key's home slot is one multiply away (slot_of). The empty marker is LSHMOE_KN_KEY_NONFINITE, which is never
 * inserted (those tokens get a cluster of their own), so no separate
 * occupancy array is needed. Clusters are numbered in order of first
 * appearance, which makes the numbering a pure function of the keys.
 */
#include <stdint.h>
#include <string.h>

#include "kernels/cpu/cluster_isa.h"
#include "kernels/cpu/expand_isa.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"

#define EMPTY LSHMOE_KN_KEY_NONFINITE
_Static_assert(LSHMOE_KN_KEY_NONFINITE == UINT64_MAX, "the table is cleared with memset 0xff");
/* Floats converted per step when a row is not fp32 (stack buffer). */
#define CONV_CHUNK 256

/* log2 of the table's slots: a power of two >= 2 * ntokens, at least 16. */
static unsigned table_log2(size_t ntokens)
{
    unsigned lg = 4;
    while (((size_t)1 << lg) < 2 * ntokens)
        lg++;
    return lg;
}

/* Slots of uint64 keys then uint32 cluster ids, plus 8 bytes of slack so
 * the table can be aligned inside a workspace of any alignment. */
size_t lshmoe_kn_group_ws_size(size_t ntokens)
{
    return ((size_t)1 << table_log2(ntokens)) * (sizeof(uint64_t) + sizeof(uint32_t)) +
           sizeof(uint64_t);
}

/* The home slot of key k: the top lg bits of k times 2^64 / phi
 * (Fibonacci hashing). One multiply spreads the low, structured bits of
 * packed keys over the index; the numbering does not depend on it. */
static size_t slot_of(uint64_t k, unsigned lg)
{
    return (size_t)((k * 0x9e3779b97f4a7c15ull) >> (64 - lg));
}

void lshmoe_kn_group(const uint64_t *keys, size_t ntokens, uint32_t *cluster_of,
                     size_t *nclusters_p, void *ws)
{
    const unsigned lg = table_log2(ntokens);
    const size_t slots = (size_t)1 << lg, mask = slots - 1;
    uintptr_t base = ((uintptr_t)ws + 7u) & ~(uintptr_t)7u;
    uint64_t *tkey = (uint64_t *)base;
    uint32_t *tid = (uint32_t *)(tkey + slots);
    uint32_t next = 0;

    memset(tkey, 0xff, slots * sizeof *tkey); /* EMPTY is all ones */
    for (size_t i = 0; i < ntokens; i++) {
        uint64_t k = keys[i];
        if (k == EMPTY) {
            cluster_of[i] = next++;
            continue;
        }
        size_t s = slot_of(k, lg);
        while (tkey[s] != EMPTY && tkey[s] != k)
            s = (s + 1) & mask;
        /* Whether the key is new is data-dependent and unpredictable: the
         * insert is written without a branch (selects, not jumps). */
        uint32_t fresh = tkey[s] == EMPTY;
        uint32_t id = fresh ? next : tid[s];
        tkey[s] = k;
        tid[s] = id;
        next += fresh;
        cluster_of[i] = id;
    }
    *nclusters_p = next;
}

/* Element size of any dtype (expand copies bytes of every kind). */
static size_t elem_size(lshmoe_dtype_t dtype)
{
    switch (dtype) {
    case LSHMOE_DTYPE_FP32:
    case LSHMOE_DTYPE_INT32:
        return 4;
    case LSHMOE_DTYPE_FP16:
    case LSHMOE_DTYPE_BF16:
        return 2;
    case LSHMOE_DTYPE_INT64:
        return 8;
    case LSHMOE_DTYPE_BYTES:
    case LSHMOE_DTYPE_INT8:
    case LSHMOE_DTYPE_UINT8:
        return 1;
    default:
        return 0;
    }
}

/* Fixed-count inner loops so gcc vectorises them at -O2. */
#define VEC 16

static void add_f32(float *restrict a, const float *restrict b, size_t n)
{
    size_t i = 0;
    for (; i + VEC <= n; i += VEC)
        for (size_t k = 0; k < VEC; k++)
            a[i + k] += b[i + k];
    for (; i < n; i++)
        a[i] += b[i];
}

static void div_f32(float *restrict a, float d, size_t n)
{
    size_t i = 0;
    for (; i + VEC <= n; i += VEC)
        for (size_t k = 0; k < VEC; k++)
            a[i + k] /= d;
    for (; i < n; i++)
        a[i] /= d;
}

/* a[0..n) += row (any float dtype), in fp32. */
static void add_row(float *restrict a, const unsigned char *row,
                    lshmoe_dtype_t dtype, size_t n)
{
    float buf[CONV_CHUNK];
    for (size_t i = 0; i < n; i += CONV_CHUNK) {
        size_t c = n - i < CONV_CHUNK ? n - i : CONV_CHUNK;
        lshmoe_row_to_f32(row + i * elem_size(dtype), dtype, c, buf);
        add_f32(a + i, buf, c);
    }
}

void lshmoe_kn_centroids_scalar(const void *tokens, lshmoe_dtype_t dtype, size_t hidden,
                                size_t ntokens, const uint32_t *cluster_of,
                                size_t nclusters, void *rows, uint32_t *sizes,
                                float *acc)
{
    if (!lshmoe_dtype_is_float(dtype) || nclusters == 0)
        return;
    const size_t es = elem_size(dtype);
    const size_t row_bytes = hidden * es;
    const unsigned char *tok = tokens;
    unsigned char *out = rows;

    memset(sizes, 0, nclusters * sizeof *sizes);
    /* -0.0, not +0.0: it is the identity of addition, so a coordinate that
     * is -0.0 in every member keeps its sign in the mean (+0.0 + -0.0 would
     * give +0.0); any other sum is the same either way. */
    for (size_t k = 0; k < nclusters * hidden; k++)
        acc[k] = -0.0f;
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = cluster_of[i];
        sizes[c]++;
        add_row(acc + (size_t)c * hidden, tok + i * row_bytes, dtype, hidden);
    }
    for (size_t c = 0; c < nclusters; c++) {
        if (sizes[c] <= 1)
            continue; /* singletons are copied below; empty: never happens */
        /* Division, not a reciprocal: the mean of equal values is then
         * exactly that value. */
        float *a = acc + c * hidden;
        div_f32(a, (float)sizes[c], hidden);
        lshmoe_row_from_f32(a, hidden, dtype, out + c * row_bytes);
    }
    /* Singletons byte for byte: exact, NaN payloads included. */
    for (size_t i = 0; i < ntokens; i++) {
        uint32_t c = cluster_of[i];
        if (sizes[c] == 1)
            memcpy(out + (size_t)c * row_bytes, tok + i * row_bytes, row_bytes);
    }
}

size_t lshmoe_kn_elem_bytes(lshmoe_dtype_t dtype)
{
    return elem_size(dtype);
}

void lshmoe_kn_expand_scalar(const void *rows, size_t row_bytes, size_t ntokens,
                             const uint32_t *cluster_of, void *out)
{
    const unsigned char *src = rows;
    unsigned char *dst = out;
    for (size_t i = 0; i < ntokens; i++)
        memcpy(dst + i * row_bytes, src + (size_t)cluster_of[i] * row_bytes, row_bytes);
}
