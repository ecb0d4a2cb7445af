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
 * The segment checksum of lshmoe_wire_segment_checksum() (wire format
 * version 4, kernels/common/wire_checksum.h): the header with its checksum
 * field zeroed, seed 0, seeds the payload's. The payload's chunks are
 * independent, so they spread over the whole grid: one warp per chunk at a
 * time (thread l = lane l; each step of the warp reads one 256-byte
 * stripe, coalesced), each thread adding its lanes' avalanched ends over
 * the chunks it takes; a block adds its warps' sums into one partial per
 * lane (in scratch), and a one-block finaliser adds the partials and folds
 * them. Sums modulo 2^64 do not depend on the order of the additions, so
 * the value is the CPU's bit for bit whatever the grid. Payload 8-byte
 * aligned (the segment is, and the header is 48 bytes).
 */
#define WCK_THREADS    128 /* 4 warps a block */
#define WCK_WARPS      (WCK_THREADS / 32)
#define WCK_MAX_BLOCKS (LSHMOE_KN_DEV_CHECKSUM_WS_BYTES / (LSHMOE_WCK_LANES * 8))
#define WCK_FIN_THREADS 256

/* Lane l's avalanched end of chunk c of the `len` payload bytes at p. */
static __device__ uint64_t chunk_lane(const unsigned char *p, size_t len, uint64_t seed,
                                      uint64_t c, int l)
{
    const size_t start = (size_t)c * LSHMOE_WCK_CHUNK;
    const size_t n = len - start < LSHMOE_WCK_CHUNK ? len - start : LSHMOE_WCK_CHUNK;
    const size_t ns = n / LSHMOE_WCK_STRIPE;
    const uint64_t *w = (const uint64_t *)(p + start) + l;
    uint64_t x = lshmoe_wck_lane_start(lshmoe_wck_chunk_base(seed, c), l);
    size_t k = 0;
    /* The chain is sequential; the loads are not: fetch a batch of words
     * before stepping through it, so memory latency is paid once per batch
     * instead of once per step (device memory is little-endian, as the
     * wire). */
    for (; k + CHECK_BATCH <= ns; k += CHECK_BATCH) {
        uint64_t a[CHECK_BATCH];
#pragma unroll
        for (int u = 0; u < CHECK_BATCH; u++)
            a[u] = __ldg(w + LSHMOE_WCK_LANES * (k + u));
#pragma unroll
        for (int u = 0; u < CHECK_BATCH; u++)
            x = lshmoe_wck_step(x, a[u]);
    }
    for (; k < ns; k++)
        x = lshmoe_wck_step(x, __ldg(w + LSHMOE_WCK_LANES * k));
    /* the tail (last chunk only): word l into lane l, the last partial
     * word zero-padded, as lshmoe_wck_tail() */
    const size_t t = n - ns * LSHMOE_WCK_STRIPE;
    if (8 * (size_t)l < t) {
        const unsigned char *q = p + start + ns * LSHMOE_WCK_STRIPE + 8 * (size_t)l;
        unsigned char last[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (size_t i = 0; i < 8 && 8 * (size_t)l + i < t; i++)
            last[i] = q[i];
        x = lshmoe_wck_step(x, lshmoe_wck_read64(last));
    }
    return lshmoe_wck_avalanche(x);
}

/* The header's checksum, the payload's seed (one thread). */
static __device__ uint64_t header_seed(const unsigned char *seg)
{
    unsigned char h[HDR_BYTES];
    for (int b = 0; b < HDR_BYTES; b++)
        h[b] = b >= HDR_OFF_CHECKSUM && b < HDR_OFF_CHECKSUM + 8 ? 0 : seg[b];
    return lshmoe_wck_checksum(h, HDR_BYTES, 0);
}

static unsigned wck_blocks(size_t payload)
{
    size_t chunks = (payload + LSHMOE_WCK_CHUNK - 1) / LSHMOE_WCK_CHUNK;
    size_t b = (chunks + WCK_WARPS - 1) / WCK_WARPS;
    return b == 0 ? 1u : b < WCK_MAX_BLOCKS ? (unsigned)b : (unsigned)WCK_MAX_BLOCKS;
}

/* partials[32 b + l] = block b's sum of lane l's chunk ends. The seed is
 * `seed`, or the header's checksum when from_header. */
static __global__ void wck_partials_kernel(const unsigned char *seg, size_t payload,
                                           uint64_t seed, int from_header,
                                           uint64_t *partials)
{
    __shared__ uint64_t s_seed, sums[WCK_WARPS][LSHMOE_WCK_LANES];
    const int l = (int)(threadIdx.x % 32), wb = (int)(threadIdx.x / 32);
    if (from_header) {
        if (threadIdx.x == 0)
            s_seed = header_seed(seg);
        __syncthreads();
        seed = s_seed;
    }
    const uint64_t nchunks = (payload + LSHMOE_WCK_CHUNK - 1) / LSHMOE_WCK_CHUNK;
    uint64_t acc = 0;
    for (uint64_t c = (uint64_t)blockIdx.x * WCK_WARPS + wb; c < nchunks;
         c += (uint64_t)gridDim.x * WCK_WARPS)
        acc += chunk_lane(seg + HDR_BYTES, payload, seed, c, l);
    sums[wb][l] = acc;
    __syncthreads();
    if (threadIdx.x < LSHMOE_WCK_LANES) {
        uint64_t t = 0;
        for (int k = 0; k < WCK_WARPS; k++)
            t += sums[k][l];
        partials[(size_t)blockIdx.x * LSHMOE_WCK_LANES + l] = t;
    }
}

/* The finaliser: the accumulators from `nblocks` partials, then the fold
 * (thread 0, lshmoe_wck_fold()). Returns the value on thread 0 only. */
static __device__ uint64_t wck_final(const uint64_t *partials, unsigned nblocks,
                                     size_t payload, uint64_t seed)
{
    __shared__ uint64_t part[WCK_FIN_THREADS / 32][LSHMOE_WCK_LANES], acc[LSHMOE_WCK_LANES];
    const int l = (int)(threadIdx.x % 32), g = (int)(threadIdx.x / 32);
    uint64_t t = 0;
    for (unsigned b = (unsigned)g; b < nblocks; b += WCK_FIN_THREADS / 32)
        t += partials[(size_t)b * LSHMOE_WCK_LANES + l];
    part[g][l] = t;
    __syncthreads();
    if (threadIdx.x < LSHMOE_WCK_LANES) {
        uint64_t a = 0;
        for (int k = 0; k < WCK_FIN_THREADS / 32; k++)
            a += part[k][l];
        acc[l] = a;
    }
    __syncthreads();
    return threadIdx.x == 0 ? lshmoe_wck_fold(acc, payload, seed) : 0;
}

/* The header as a kernel argument: a launch copies it, so the host
 * neither waits nor keeps the bytes alive. */
struct seg_header {
    unsigned char b[HDR_BYTES];
};

/* Writes the header and its checksum (the payload is only read). */
static __global__ void seal_final_kernel(unsigned char *seg, seg_header h, size_t payload,
                                         uint64_t seed, const uint64_t *partials,
                                         unsigned nblocks)
{
    uint64_t c = wck_final(partials, nblocks, payload, seed);
    if (threadIdx.x < HDR_OFF_CHECKSUM)
        seg[threadIdx.x] = h.b[threadIdx.x];
    if (threadIdx.x == 0)
        for (int b = 0; b < 8; b++)
            seg[HDR_OFF_CHECKSUM + b] = (unsigned char)(c >> (8 * b));
}

extern "C" lshmoe_status_t lshmoe_kn_cuda_seal(void *seg, const void *header,
                                               size_t payload_bytes, void *ws, void *stream)
{
    if (seg == NULL || header == NULL || (uintptr_t)seg % 8 != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda seal: segment not 8-byte aligned");
    if (ws == NULL || (uintptr_t)ws % 8 != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda seal: no checksum workspace");
    seg_header h;
    memcpy(h.b, header, HDR_BYTES);
    memset(h.b + HDR_OFF_CHECKSUM, 0, 8);
    /* the header is here: its checksum, the payload's seed, on the host */
    const uint64_t seed = lshmoe_wck_checksum(h.b, HDR_BYTES, 0);
    const unsigned nb = wck_blocks(payload_bytes);
    cudaStream_t s = kn_stream(stream);
    wck_partials_kernel<<<nb, WCK_THREADS, 0, s>>>((const unsigned char *)seg, payload_bytes,
                                                   seed, 0, (uint64_t *)ws);
    KN_CUDA_LAUNCHED("seal chunks");
    seal_final_kernel<<<1, WCK_FIN_THREADS, 0, s>>>((unsigned char *)seg, h, payload_bytes,
                                                    seed, (const uint64_t *)ws, nb);
    KN_CUDA_LAUNCHED("seal");
    return LSHMOE_OK;
}

static __global__ void check_final_kernel(const unsigned char *seg, size_t payload,
                                          const uint64_t *partials, unsigned nblocks,
                                          uint32_t *bad)
{
    __shared__ uint64_t s_seed;
    if (threadIdx.x == 0)
        s_seed = header_seed(seg);
    __syncthreads();
    uint64_t c = wck_final(partials, nblocks, payload, s_seed);
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
                                                        uint32_t *bad, void *ws, void *stream)
{
    if (seg == NULL || g == NULL || bad == NULL || (uintptr_t)seg % 8 != 0 || ws == NULL ||
        (uintptr_t)ws % 8 != 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda check segment: bad argument");
    cudaStream_t s = kn_stream(stream);
    const unsigned nb = wck_blocks(g->payload_bytes);
    wck_partials_kernel<<<nb, WCK_THREADS, 0, s>>>((const unsigned char *)seg,
                                                   g->payload_bytes, 0, 1, (uint64_t *)ws);
    KN_CUDA_LAUNCHED("check checksum chunks");
    check_final_kernel<<<1, WCK_FIN_THREADS, 0, s>>>((const unsigned char *)seg,
                                                     g->payload_bytes, (const uint64_t *)ws,
                                                     nb, bad);
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
