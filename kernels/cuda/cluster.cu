/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Grouping by key, centroids and expansion on the device, equal to
 * kernels/cpu/cluster.c bit for bit.
 *
 * Grouping: a stable radix sort of (key, token index) puts each bucket in
 * one run, in increasing token order; a run's first token is its first
 * appearance, so scanning "is the first token of a run" over token order
 * numbers the clusters as the CPU does (order of first appearance). A
 * non-finite key starts a run at every token (each is its own cluster).
 * Centroids: one block per cluster, each thread a set of columns, members
 * added in increasing token order from -0.0f, then one division, as on
 * the CPU; so fp32 results are identical, not merely close.
 */
#include <cub/cub.cuh>

#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/lsh_cuda.h"

#define GROUP_THREADS 256
#define CENTROID_THREADS 256

static unsigned blocks_for(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return b < 65535 ? (unsigned)(b ? b : 1) : 65535u;
}

#define FOR_EACH(i, n)                                                        \
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);   \
         i += (size_t)gridDim.x * blockDim.x)

static __global__ void iota(uint32_t *v, size_t n)
{
    FOR_EACH(i, n) v[i] = (uint32_t)i;
}

/* The low 32 bits of each key (keys below 2^32, or non-finite: all ones
 * both ways), for the narrow sort. */
static __global__ void narrow_keys(const uint64_t *keys, size_t n, uint32_t *keys32)
{
    FOR_EACH(i, n) keys32[i] = (uint32_t)keys[i];
}

/* head[p]: sorted position p starts a run. K is the sorted key type: the
 * non-finite key narrowed to 32 bits is 0xffffffff, which no finite key
 * of the narrow sort reaches (they are below 2^31). */
template <typename K>
static __global__ void mark_heads(const K *skeys, size_t n, uint32_t *head)
{
    FOR_EACH(p, n)
        head[p] = p == 0 || skeys[p] != skeys[p - 1] ||
                  skeys[p] == (K)LSHMOE_KN_KEY_NONFINITE;
}

/* first[token] = 1 for the first token of each run; runstart[run] = p. */
static __global__ void mark_firsts(const uint32_t *head, const uint32_t *runincl,
                                   const uint32_t *sidx, size_t n, uint32_t *first,
                                   uint32_t *runstart)
{
    FOR_EACH(p, n) {
        if (head[p]) {
            first[sidx[p]] = 1;
            runstart[runincl[p] - 1] = (uint32_t)p;
        }
    }
}

/* cluster_of and sizes from the run of each sorted position. */
static __global__ void assign(const uint32_t *runincl, const uint32_t *runstart,
                              const uint32_t *sidx, const uint32_t *cnum,
                              const uint32_t *first, size_t n, uint32_t *cluster_of,
                              uint32_t *sizes, uint32_t *nclusters)
{
    const uint32_t nruns = runincl[n - 1];
    FOR_EACH(p, n) {
        uint32_t r = runincl[p] - 1;
        uint32_t rs = runstart[r];
        uint32_t c = cnum[sidx[rs]];
        cluster_of[sidx[p]] = c;
        if (rs == p) {
            uint32_t re = r + 1 < nruns ? runstart[r + 1] : (uint32_t)n;
            sizes[c] = re - rs;
        }
        if (p == 0)
            *nclusters = cnum[n - 1] + first[n - 1];
    }
}

static __global__ void place_members(const uint32_t *runincl, const uint32_t *runstart,
                                     const uint32_t *sidx, const uint32_t *cluster_of,
                                     const uint32_t *starts, size_t n, uint32_t *members)
{
    FOR_EACH(p, n) {
        uint32_t r = runincl[p] - 1;
        uint32_t t = sidx[p];
        members[starts[cluster_of[t]] + ((uint32_t)p - runstart[r])] = t;
    }
}

/* Workspace layout: 256-byte aligned parts. */
struct group_ws {
    uint64_t *skeys;
    uint32_t *idx, *sidx, *head, *runincl, *first, *cnum, *runstart;
    void *tmp;
    size_t tmp_bytes;
};

static size_t align256(size_t v)
{
    return (v + 255) / 256 * 256;
}

static size_t cub_tmp_bytes(size_t n)
{
    size_t a = 0, b = 0, a32 = 0;
    /* all key bits: the most passes, the most temporary storage */
    if (cub::DeviceRadixSort::SortPairs(NULL, a, (const uint64_t *)NULL, (uint64_t *)NULL,
                                        (const uint32_t *)NULL, (uint32_t *)NULL,
                                        (int)n) != cudaSuccess)
        return 0;
    if (cub::DeviceRadixSort::SortPairs(NULL, a32, (const uint32_t *)NULL, (uint32_t *)NULL,
                                        (const uint32_t *)NULL, (uint32_t *)NULL,
                                        (int)n) != cudaSuccess)
        return 0;
    a = a > a32 ? a : a32;
    if (cub::DeviceScan::InclusiveSum(NULL, b, (const uint32_t *)NULL, (uint32_t *)NULL,
                                      (int)n) != cudaSuccess)
        return 0;
    size_t c = 0;
    if (cub::DeviceScan::ExclusiveSum(NULL, c, (const uint32_t *)NULL, (uint32_t *)NULL,
                                      (int)n + 1) != cudaSuccess)
        return 0;
    return align256(a > b ? (a > c ? a : c) : (b > c ? b : c));
}

static size_t layout(size_t n, unsigned char *base, group_ws *w)
{
    size_t off = 0, u32 = align256(n * sizeof(uint32_t));
    /* the sorted 64-bit keys, or (narrow sort) the narrowed keys and the
     * sorted ones, u32 bytes apart: 2 * u32 >= align256(8 n) */
    w->skeys = (uint64_t *)(base + off);
    off += 2 * u32;
    uint32_t **parts[] = {&w->idx, &w->sidx, &w->head, &w->runincl,
                          &w->first, &w->cnum, &w->runstart};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        *parts[i] = (uint32_t *)(base + off);
        off += u32;
    }
    w->tmp = base + off;
    w->tmp_bytes = cub_tmp_bytes(n);
    return w->tmp_bytes ? off + w->tmp_bytes : 0;
}

extern "C" size_t lshmoe_kn_cuda_group_ws_size(size_t ntokens)
{
    group_ws w;
    return layout(ntokens, NULL, &w);
}

extern "C" lshmoe_status_t
lshmoe_kn_cuda_group(const uint64_t *keys, size_t n, uint32_t *cluster_of,
                     uint32_t *sizes, uint32_t *starts, uint32_t *members,
                     uint32_t *nclusters, void *ws, size_t ws_bytes, void *stream)
{
    return lshmoe_kn_cuda_group_bits(keys, n, 64, cluster_of, sizes, starts, members,
                                     nclusters, ws, ws_bytes, stream);
}

extern "C" lshmoe_status_t
lshmoe_kn_cuda_group_bits(const uint64_t *keys, size_t n, int key_bits, uint32_t *cluster_of,
                          uint32_t *sizes, uint32_t *starts, uint32_t *members,
                          uint32_t *nclusters, void *ws, size_t ws_bytes, void *stream)
{
    if (n == 0 || n >= ((size_t)1 << 31))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "cuda group: %zu tokens is outside 1..2^31-1", n);
    if (key_bits < 1 || key_bits > 64)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "cuda group: %d key bits is outside 1..64", key_bits);
    if (keys == NULL || cluster_of == NULL || sizes == NULL || starts == NULL ||
        members == NULL || nclusters == NULL || ws == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda group: null argument");
    group_ws w;
    size_t need = layout(n, (unsigned char *)ws, &w);
    if (need == 0 || ws_bytes < need)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "cuda group: workspace of %zu bytes, %zu needed",
                            ws_bytes, need);
    cudaStream_t s = kn_stream(stream);
    const unsigned nb = blocks_for(n, GROUP_THREADS);
    const int ni = (int)n;
    size_t tb = w.tmp_bytes;

    iota<<<nb, GROUP_THREADS, 0, s>>>(w.idx, n);
    KN_CUDA_LAUNCHED("iota");
    /* Radix passes cost in proportion to the bits sorted: only the bits
     * that tell keys apart (lshmoe_kn_key_sort_bits), and 32-bit keys
     * (half the bytes per pass) when they fit. Same order either way. */
    if (key_bits <= 32) {
        uint32_t *k32 = (uint32_t *)w.skeys;
        uint32_t *sk32 = (uint32_t *)((unsigned char *)w.skeys + align256(n * sizeof(uint32_t)));
        narrow_keys<<<nb, GROUP_THREADS, 0, s>>>(keys, n, k32);
        KN_CUDA_LAUNCHED("narrow_keys");
        KN_CUDA_TRY(cub::DeviceRadixSort::SortPairs(w.tmp, tb, k32, sk32, w.idx, w.sidx, ni,
                                                    0, key_bits, s));
        mark_heads<uint32_t><<<nb, GROUP_THREADS, 0, s>>>(sk32, n, w.head);
    } else {
        KN_CUDA_TRY(cub::DeviceRadixSort::SortPairs(w.tmp, tb, keys, w.skeys, w.idx, w.sidx,
                                                    ni, 0, key_bits, s));
        mark_heads<uint64_t><<<nb, GROUP_THREADS, 0, s>>>(w.skeys, n, w.head);
    }
    KN_CUDA_LAUNCHED("mark_heads");
    tb = w.tmp_bytes;
    KN_CUDA_TRY(cub::DeviceScan::InclusiveSum(w.tmp, tb, w.head, w.runincl, ni, s));
    KN_CUDA_TRY(cudaMemsetAsync(w.first, 0, n * sizeof(uint32_t), s));
    KN_CUDA_TRY(cudaMemsetAsync(sizes, 0, n * sizeof(uint32_t), s));
    mark_firsts<<<nb, GROUP_THREADS, 0, s>>>(w.head, w.runincl, w.sidx, n, w.first,
                                             w.runstart);
    KN_CUDA_LAUNCHED("mark_firsts");
    tb = w.tmp_bytes;
    KN_CUDA_TRY(cub::DeviceScan::ExclusiveSum(w.tmp, tb, w.first, w.cnum, ni, s));
    assign<<<nb, GROUP_THREADS, 0, s>>>(w.runincl, w.runstart, w.sidx, w.cnum, w.first, n,
                                        cluster_of, sizes, nclusters);
    KN_CUDA_LAUNCHED("assign");
    /* starts[k] = sizes[0] + ... + sizes[k-1]. */
    tb = w.tmp_bytes;
    KN_CUDA_TRY(cub::DeviceScan::ExclusiveSum(w.tmp, tb, sizes, starts, ni, s));
    place_members<<<nb, GROUP_THREADS, 0, s>>>(w.runincl, w.runstart, w.sidx, cluster_of,
                                               starts, n, members);
    KN_CUDA_LAUNCHED("place_members");
    return LSHMOE_OK;
}

/* Stores v rounded to `dtype` at element i of row. */
static __device__ __forceinline__ void store_elem(unsigned char *row, int dtype, size_t i,
                                                  float v)
{
    if (dtype == LSHMOE_DTYPE_FP32)
        ((float *)row)[i] = v;
    else if (dtype == LSHMOE_DTYPE_BF16)
        ((uint16_t *)row)[i] = lshmoe_kn_f32_to_bf16(v);
    else
        ((uint16_t *)row)[i] = lshmoe_kn_f32_to_f16(v);
}

static __global__ void centroid_kernel(const unsigned char *tokens, int dtype, size_t hidden,
                                       const uint32_t *sizes, const uint32_t *starts,
                                       const uint32_t *members, const uint32_t *nclusters,
                                       size_t max_clusters, unsigned char *rows)
{
    const size_t es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    const uint32_t nc = *nclusters;
    for (size_t k = blockIdx.x; k < nc && k < max_clusters; k += gridDim.x) {
        const uint32_t cnt = sizes[k], st = starts[k];
        unsigned char *out = rows + k * hidden * es;
        if (cnt == 1) {
            const unsigned char *src = tokens + (size_t)members[st] * hidden * es;
            for (size_t b = threadIdx.x; b < hidden * es; b += blockDim.x)
                out[b] = src[b]; /* exact, NaN payloads included */
            continue;
        }
        for (size_t d = threadIdx.x; d < hidden; d += blockDim.x) {
            float acc = -0.0f; /* as the CPU: the identity, keeps -0.0 means */
            for (uint32_t q = 0; q < cnt; q++)
                acc = acc + kn_load(tokens + (size_t)members[st + q] * hidden * es, dtype, d);
            store_elem(out, dtype, d, acc / (float)cnt);
        }
    }
}

extern "C" lshmoe_status_t
lshmoe_kn_cuda_centroids(const void *tokens, lshmoe_dtype_t dtype, size_t hidden,
                         const uint32_t *sizes, const uint32_t *starts,
                         const uint32_t *members, const uint32_t *nclusters,
                         size_t max_clusters, void *rows, void *stream)
{
    if (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_FP16 &&
        dtype != LSHMOE_DTYPE_BF16)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "cuda centroids: dtype %d is not a float dtype", (int)dtype);
    if (max_clusters == 0)
        return LSHMOE_OK;
    if (tokens == NULL || sizes == NULL || starts == NULL || members == NULL ||
        nclusters == NULL || rows == NULL || hidden == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda centroids: null argument");
    unsigned grid = max_clusters < 65535 ? (unsigned)max_clusters : 65535u;
    centroid_kernel<<<grid, CENTROID_THREADS, 0, kn_stream(stream)>>>(
        (const unsigned char *)tokens, (int)dtype, hidden, sizes, starts, members,
        nclusters, max_clusters, (unsigned char *)rows);
    KN_CUDA_LAUNCHED("centroids");
    return LSHMOE_OK;
}

/* One block per token; 16-byte copies when rows allow it. */
template <typename V>
static __global__ void expand_kernel(const V *rows, size_t row_vecs, size_t n,
                                     const uint32_t *cluster_of, V *out)
{
    for (size_t t = blockIdx.x; t < n; t += gridDim.x) {
        const V *src = rows + (size_t)cluster_of[t] * row_vecs;
        V *dst = out + t * row_vecs;
        for (size_t v = threadIdx.x; v < row_vecs; v += blockDim.x)
            dst[v] = src[v];
    }
}

extern "C" lshmoe_status_t
lshmoe_kn_cuda_expand(const void *rows, lshmoe_dtype_t dtype, size_t hidden,
                      size_t ntokens, const uint32_t *cluster_of, void *out, void *stream)
{
    if (ntokens == 0)
        return LSHMOE_OK;
    if (rows == NULL || cluster_of == NULL || out == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda expand: null argument");
    const size_t rb = hidden * kn_elem_size(dtype);
    unsigned grid = ntokens < 65535 ? (unsigned)ntokens : 65535u;
    cudaStream_t s = kn_stream(stream);
    if (rb % 16 == 0 && (uintptr_t)rows % 16 == 0 && (uintptr_t)out % 16 == 0)
        expand_kernel<uint4><<<grid, 128, 0, s>>>((const uint4 *)rows, rb / 16, ntokens,
                                                  cluster_of, (uint4 *)out);
    else
        expand_kernel<unsigned char><<<grid, 128, 0, s>>>(
            (const unsigned char *)rows, rb, ntokens, cluster_of, (unsigned char *)out);
    KN_CUDA_LAUNCHED("expand");
    return LSHMOE_OK;
}
