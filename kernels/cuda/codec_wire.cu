/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The wire side of the device codec: the quality guard's sums, the probe's
 * key sample, packing the index and sealing a segment with its checksum,
 * and on the receiver validating a segment and expanding it, gated on the
 * validation (an invalid segment writes no output byte). The bytes written
 * are those of lshmoe/codec_encode.c (docs/wire-format.md); the checksum is
 * kernels/common/wire_checksum.h, the same code the tests run on the CPU.
 */
#include <string.h>

#include <cuda_runtime.h>

#include "kernels/common/wire_checksum.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/lsh_cuda.h"

#define GUARD_THREADS 256
#define WIRE_THREADS 256
#define HDR_BYTES 48
#define HDR_OFF_CHECKSUM 40
#define CHECK_BATCH 32 /* words a checksum lane loads ahead */

static unsigned grid_for(size_t n, unsigned threads)
{
    size_t b = (n + threads - 1) / threads;
    return b < 4096 ? (unsigned)(b ? b : 1) : 4096u;
}

/* sn[0], sd[0] = the sums of a and b over the block (a power of two of
 * threads), in a fixed tree: the same order on every run. */
static __device__ void block_sum2(double a, double b, double *sn, double *sd)
{
    sn[threadIdx.x] = a;
    sd[threadIdx.x] = b;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (threadIdx.x < s) {
            sn[threadIdx.x] += sn[threadIdx.x + s];
            sd[threadIdx.x] += sd[threadIdx.x + s];
        }
        __syncthreads();
    }
}

/* Per token: ||x||^2 and, in a cluster of two or more, ||x - row||^2, in
 * fp64 from the fp32 values (as kernels/cpu/guard.c); a block per token,
 * a fixed tree order, so the sums agree with the CPU's to rounding. */
static __global__ void guard_token_kernel(const unsigned char *tokens, const unsigned char *rows,
                                          int dtype, size_t hidden, size_t ntokens,
                                          const uint32_t *cluster_of, const uint32_t *sizes,
                                          double *tok)
{
    __shared__ double sn[GUARD_THREADS], sd[GUARD_THREADS];
    const size_t es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    for (size_t i = blockIdx.x; i < ntokens; i += gridDim.x) {
        const unsigned char *x = tokens + i * hidden * es;
        const unsigned char *r = rows + (size_t)cluster_of[i] * hidden * es;
        const int multi = sizes[cluster_of[i]] > 1;
        double nn = 0.0, d = 0.0;
        for (size_t e = threadIdx.x; e < hidden; e += blockDim.x) {
            float xv = kn_load(x, dtype, e);
            nn += (double)xv * xv;
            if (multi) {
                double diff = (double)xv - kn_load(r, dtype, e);
                d += diff * diff;
            }
        }
        block_sum2(nn, d, sn, sd);
        if (threadIdx.x == 0) {
            tok[2 * i] = sn[0];
            tok[2 * i + 1] = multi ? sd[0] : 0.0;
        }
        __syncthreads();
    }
}

/* sums = {num, den} over the tokens with a finite squared norm: one block,
 * thread t adds tokens t, t + T, ... in order, then a fixed tree; the same
 * order on every run (deterministic), another than the CPU's. */
static __global__ void guard_total_kernel(const double *tok, size_t ntokens, double *sums)
{
    __shared__ double sn[GUARD_THREADS], sd[GUARD_THREADS];
    double num = 0.0, den = 0.0;
    for (size_t i = threadIdx.x; i < ntokens; i += blockDim.x) {
        double nn = tok[2 * i];
        if (!isfinite(nn))
            continue;
        den += nn;
        num += tok[2 * i + 1];
    }
    block_sum2(num, den, sn, sd);
    if (threadIdx.x == 0) {
        sums[0] = sn[0];
        sums[1] = sd[0];
    }
}

extern "C" lshmoe_status_t
lshmoe_kn_cuda_guard_sums(const void *tokens, const void *rows, lshmoe_dtype_t dtype,
                          size_t hidden, size_t ntokens, const uint32_t *cluster_of,
                          const uint32_t *sizes, double *tok_ws, double *sums, void *stream)
{
    if (ntokens == 0 || hidden == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda guard: no tokens");
    if (tokens == NULL || rows == NULL || cluster_of == NULL || sizes == NULL ||
        tok_ws == NULL || sums == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda guard: null argument");
    cudaStream_t s = kn_stream(stream);
    unsigned grid = ntokens < 65535 ? (unsigned)ntokens : 65535u;
    guard_token_kernel<<<grid, GUARD_THREADS, 0, s>>>(
        (const unsigned char *)tokens, (const unsigned char *)rows, (int)dtype, hidden,
        ntokens, cluster_of, sizes, tok_ws);
    KN_CUDA_LAUNCHED("guard");
    guard_total_kernel<<<1, GUARD_THREADS, 0, s>>>(tok_ws, ntokens, sums);
    KN_CUDA_LAUNCHED("guard total");
    return LSHMOE_OK;
}

/* out[i] = keys[floor(i * n / s)], the tokens lshmoe/codec_probe.c hashes
 * (the same double arithmetic, IEEE on both sides). */
static __global__ void sample_kernel(const uint64_t *keys, size_t n, size_t s, uint64_t *out)
{
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < s;
         i += (size_t)gridDim.x * blockDim.x)
        out[i] = keys[(size_t)((double)i * (double)n / (double)s)];
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_sample_keys(const uint64_t *keys, size_t ntokens,
                                                      size_t s, uint64_t *out, void *stream)
{
    if (s == 0)
        return LSHMOE_OK;
    if (keys == NULL || out == NULL || s > ntokens)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda sample keys: bad argument");
    sample_kernel<<<grid_for(s, WIRE_THREADS), WIRE_THREADS, 0, kn_stream(stream)>>>(
        keys, ntokens, s, out);
    KN_CUDA_LAUNCHED("sample keys");
    return LSHMOE_OK;
}

/* Index entries little-endian (u16 or u32), then zeros up to `padded`. */
static __global__ void pack_index_kernel(const uint32_t *cluster_of, size_t n, int idx32,
                                         unsigned char *dst, size_t padded)
{
    const size_t w = idx32 ? 4 : 2;
    for (size_t b = (size_t)blockIdx.x * blockDim.x + threadIdx.x; b < padded;
         b += (size_t)gridDim.x * blockDim.x) {
        size_t i = b / w;
        dst[b] = i < n ? (unsigned char)(cluster_of[i] >> (8 * (b % w))) : 0;
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_pack_index(const uint32_t *cluster_of, size_t ntokens,
                                                     int idx32, void *dst, size_t padded_bytes,
                                                     void *stream)
{
    if (padded_bytes == 0)
        return LSHMOE_OK;
    if (cluster_of == NULL || dst == NULL || padded_bytes < ntokens * (idx32 ? 4u : 2u))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda pack index: bad argument");
    pack_index_kernel<<<grid_for(padded_bytes, WIRE_THREADS), WIRE_THREADS, 0,
                        kn_stream(stream)>>>(cluster_of, ntokens, idx32,
                                             (unsigned char *)dst, padded_bytes);
    KN_CUDA_LAUNCHED("pack index");
    return LSHMOE_OK;
}

/*
 * The segment checksum of lshmoe_wire_segment_checksum(): the header with
 * its checksum field zeroed, seed 0, seeds the payload's. Lane l of the
 * payload runs on thread l (its chain is sequential by construction);
 * thread 0 hashes the header first and finishes. payload 8-byte aligned.
 */
static __device__ uint64_t segment_checksum(const unsigned char *seg, size_t payload)
{
    __shared__ uint64_t lanes[4], seed;
    if (threadIdx.x == 0) {
        unsigned char h[HDR_BYTES];
        for (int b = 0; b < HDR_BYTES; b++)
            h[b] = b >= HDR_OFF_CHECKSUM ? 0 : seg[b];
        seed = lshmoe_wck_checksum(h, HDR_BYTES, 0);
    }
    __syncthreads();
    if (threadIdx.x < 4) {
        uint64_t v[4];
        lshmoe_wck_init(seed, v);
        uint64_t x = v[threadIdx.x];
        const uint64_t *w = (const uint64_t *)(seg + HDR_BYTES) + threadIdx.x;
        const size_t nb = payload / 32;
        size_t k = 0;
        /* The chain is sequential; the loads are not: fetch a batch of
         * words before stepping through it, so memory latency is paid once
         * per batch instead of once per step (device memory is
         * little-endian, as the wire). */
        for (; k + CHECK_BATCH <= nb; k += CHECK_BATCH) {
            uint64_t a[CHECK_BATCH];
#pragma unroll
            for (int u = 0; u < CHECK_BATCH; u++)
                a[u] = __ldg(w + 4 * (k + u));
#pragma unroll
            for (int u = 0; u < CHECK_BATCH; u++)
                x = lshmoe_wck_step(x, a[u]);
        }
        for (; k < nb; k++)
            x = lshmoe_wck_step(x, w[4 * k]);
        lanes[threadIdx.x] = x;
    }
    __syncthreads();
    size_t tail = payload % 32;
    return lshmoe_wck_finish(lanes, seg + HDR_BYTES + payload - tail, tail, payload, seed);
}

/* The header as a kernel argument: a launch copies it, so the host
 * neither waits nor keeps the bytes alive. */
struct seg_header {
    unsigned char b[HDR_BYTES];
};

static __global__ void seal_kernel(unsigned char *seg, seg_header h, size_t payload)
{
    if (threadIdx.x < HDR_OFF_CHECKSUM)
        seg[threadIdx.x] = h.b[threadIdx.x];
    __syncthreads();
    uint64_t c = segment_checksum(seg, payload);
    if (threadIdx.x == 0)
        for (int b = 0; b < 8; b++)
            seg[HDR_OFF_CHECKSUM + b] = (unsigned char)(c >> (8 * b));
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_seal(void *seg, const void *header,
                                               size_t payload_bytes, void *stream)
{
    if (seg == NULL || header == NULL || (uintptr_t)seg % 8 != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda seal: segment not 8-byte aligned");
    seg_header h;
    memcpy(h.b, header, HDR_BYTES);
    seal_kernel<<<1, 64, 0, kn_stream(stream)>>>((unsigned char *)seg, h, payload_bytes);
    KN_CUDA_LAUNCHED("seal");
    return LSHMOE_OK;
}

static __global__ void check_sum_kernel(const unsigned char *seg, size_t payload, uint32_t *bad)
{
    uint64_t c = segment_checksum(seg, payload);
    if (threadIdx.x == 0) {
        uint64_t have = 0;
        for (int b = 7; b >= 0; b--)
            have = (have << 8) | seg[HDR_OFF_CHECKSUM + b];
        if (have != c)
            atomicOr(bad, LSHMOE_KN_SEG_BAD_CHECKSUM);
    }
}

/* Zero padding after rows and index; index entries below nrows. */
static __global__ void check_body_kernel(const unsigned char *seg, lshmoe_kn_seg_t g,
                                         uint32_t *bad)
{
    const size_t stride = (size_t)gridDim.x * blockDim.x;
    const size_t t0 = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    uint32_t flag = 0;
    for (uint64_t b = g.rows_off + g.rows_bytes + t0; b < g.idx_off; b += stride)
        flag |= seg[b] ? LSHMOE_KN_SEG_BAD_PAD : 0u;
    if (!g.raw) {
        const unsigned char *idx = seg + g.idx_off;
        for (uint64_t i = t0; i < g.ntokens; i += stride) {
            uint32_t v = g.idx32 ? (uint32_t)idx[4 * i] | (uint32_t)idx[4 * i + 1] << 8 |
                                       (uint32_t)idx[4 * i + 2] << 16 |
                                       (uint32_t)idx[4 * i + 3] << 24
                                 : (uint32_t)idx[2 * i] | (uint32_t)idx[2 * i + 1] << 8;
            flag |= v >= g.nrows ? LSHMOE_KN_SEG_BAD_INDEX : 0u;
        }
        uint64_t end = g.idx_off + g.idx_bytes;
        for (uint64_t b = end + t0; b < ((end + 7) & ~(uint64_t)7); b += stride)
            flag |= seg[b] ? LSHMOE_KN_SEG_BAD_PAD : 0u;
    }
    if (flag)
        atomicOr(bad, flag);
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_check_segment(const void *seg, const lshmoe_kn_seg_t *g,
                                                        uint32_t *bad, void *stream)
{
    if (seg == NULL || g == NULL || bad == NULL || (uintptr_t)seg % 8 != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda check segment: bad argument");
    cudaStream_t s = kn_stream(stream);
    check_sum_kernel<<<1, 32, 0, s>>>((const unsigned char *)seg, g->payload_bytes, bad);
    KN_CUDA_LAUNCHED("check checksum");
    check_body_kernel<<<grid_for(g->ntokens + 8, WIRE_THREADS), WIRE_THREADS, 0, s>>>(
        (const unsigned char *)seg, *g, bad);
    KN_CUDA_LAUNCHED("check body");
    return LSHMOE_OK;
}

/* Token t = row index[t] (raw: row t), a block per token; nothing at all
 * when *bad is set. Rows are 16- or 8-byte copies when aligned. */
template <typename V>
static __global__ void unpack_kernel(const unsigned char *seg, lshmoe_kn_seg_t g,
                                     size_t row_vecs, const uint32_t *bad, V *out)
{
    if (*bad)
        return;
    const V *rows = (const V *)(seg + g.rows_off);
    const unsigned char *idx = seg + g.idx_off;
    for (size_t t = blockIdx.x; t < g.ntokens; t += gridDim.x) {
        size_t k = g.raw ? t
                 : g.idx32 ? ((size_t)idx[4 * t] | (size_t)idx[4 * t + 1] << 8 |
                              (size_t)idx[4 * t + 2] << 16 | (size_t)idx[4 * t + 3] << 24)
                           : ((size_t)idx[2 * t] | (size_t)idx[2 * t + 1] << 8);
        const V *src = rows + k * row_vecs;
        V *dst = out + t * row_vecs;
        for (size_t v = threadIdx.x; v < row_vecs; v += blockDim.x)
            dst[v] = src[v];
    }
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_unpack(const void *seg, const lshmoe_kn_seg_t *g,
                                                 size_t row_bytes, const uint32_t *bad,
                                                 void *out, void *stream)
{
    if (g == NULL || g->ntokens == 0)
        return LSHMOE_OK;
    if (seg == NULL || bad == NULL || out == NULL || row_bytes == 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda unpack: bad argument");
    const unsigned char *s8 = (const unsigned char *)seg;
    unsigned grid = g->ntokens < 65535 ? (unsigned)g->ntokens : 65535u;
    cudaStream_t s = kn_stream(stream);
    if (row_bytes % 16 == 0 && (uintptr_t)(s8 + g->rows_off) % 16 == 0 &&
        (uintptr_t)out % 16 == 0)
        unpack_kernel<uint4><<<grid, 128, 0, s>>>(s8, *g, row_bytes / 16, bad, (uint4 *)out);
    else if (row_bytes % 8 == 0 && (uintptr_t)(s8 + g->rows_off) % 8 == 0 &&
             (uintptr_t)out % 8 == 0)
        unpack_kernel<uint2><<<grid, 128, 0, s>>>(s8, *g, row_bytes / 8, bad, (uint2 *)out);
    else
        unpack_kernel<unsigned char><<<grid, 128, 0, s>>>(s8, *g, row_bytes, bad,
                                                          (unsigned char *)out);
    KN_CUDA_LAUNCHED("unpack");
    return LSHMOE_OK;
}
