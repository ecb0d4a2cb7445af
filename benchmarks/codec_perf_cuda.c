/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * codec_perf --device cuda: the CUDA kernels of the codec on one GPU,
 * timed with CUDA events on one stream beside a device-to-device copy of
 * the same token bytes in the same run. Encode = hash + group (sorting
 * only the key bits in use, as the codec does; the grouping over whole
 * 64-bit keys is timed beside it, outside encode) + centroids
 * (no host synchronisation); the read-back of the cluster count (the one
 * host synchronisation a device path needs, to size the exchange) is timed
 * on its own; decode = expand. Reports the median over --iters, the
 * compression ratio (token bytes over centroid rows plus 2- or 4-byte
 * cluster indices; headers not counted) and the relative L2 error.
 *
 * Options: --tokens N (4096) --hidden H (4096) --dtype bf16|fp16|fp32
 * (bf16) --hashes L (6) --cdim C (4) --reduce-dim M (64) --data
 * clustered|gaussian (clustered) --iters N (20). Exit 77 when no device.
 * Then the whole device segment codec, wire format included
 * (codec_perf_wire.c).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "benchmarks/codec_perf_cuda.h"
#include "benchmarks/gpu_bench.h"
#include "kernels/common/lsh_math.h"
#include "kernels/cuda/lsh_cuda.h"
#include "kernels/kernels.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "tests/datagen.h"

#define PHASES 7
enum { PH_HASH, PH_GROUP, PH_CENTROIDS, PH_SYNC, PH_EXPAND, PH_COPY, PH_GROUP64 };
/* group: sorting the key bits in use, as the codec does; group (64 bits):
 * the same grouping sorting whole keys, timed beside it (not in encode) */
static const char *phase_name[PHASES] = {"hash", "group", "centroids", "count read-back",
                                         "expand", "d2d copy", "group (64 bits)"};

#define TRY(call)                                                             \
    do {                                                                      \
        cudaError_t e_ = (call);                                              \
        if (e_ != cudaSuccess) {                                              \
            fprintf(stderr, "codec_perf: %s: %s\n", #call, cudaGetErrorString(e_)); \
            return 1;                                                         \
        }                                                                     \
    } while (0)

#define KTRY(call)                                                            \
    do {                                                                      \
        if ((call) != LSHMOE_OK) {                                            \
            fprintf(stderr, "codec_perf: %s: %s\n", #call,                    \
                    lshmoe_error_thread_msg());                               \
            return 1;                                                         \
        }                                                                     \
    } while (0)

typedef codec_perf_cuda_opts_t gopts_t;

static int parse(int argc, char **argv, gopts_t *o)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--device")) {
            if (v == NULL || strcmp(v, "cuda") != 0)
                return fprintf(stderr, "codec_perf: --device takes 'cuda'\n"), 2;
        } else if (v == NULL) {
            return fprintf(stderr, "codec_perf: %s: missing value or unknown option\n", a), 2;
        } else if (!strcmp(a, "--tokens")) {
            o->tokens = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--hidden")) {
            o->hidden = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--hashes")) {
            o->hashes = atoi(v);
        } else if (!strcmp(a, "--cdim")) {
            o->cdim = atoi(v);
        } else if (!strcmp(a, "--reduce-dim")) {
            o->reduce_dim = atoi(v);
        } else if (!strcmp(a, "--iters")) {
            o->iters = atoi(v);
        } else if (!strcmp(a, "--data")) {
            o->data = v;
        } else if (!strcmp(a, "--dtype")) {
            if (!strcmp(v, "fp32"))
                o->dtype = LSHMOE_DTYPE_FP32;
            else if (!strcmp(v, "fp16"))
                o->dtype = LSHMOE_DTYPE_FP16;
            else if (!strcmp(v, "bf16"))
                o->dtype = LSHMOE_DTYPE_BF16;
            else
                return fprintf(stderr, "codec_perf: --dtype fp32|fp16|bf16\n"), 2;
        } else {
            return fprintf(stderr, "codec_perf --device cuda: unknown option %s\n", a), 2;
        }
        i++;
    }
    if (o->tokens == 0 || o->hidden == 0 || o->iters < 1 || o->tokens >= (1u << 31))
        return fprintf(stderr, "codec_perf: bad --tokens, --hidden or --iters\n"), 2;
    return 0;
}

int codec_perf_cuda_main(int argc, char **argv)
{
    gopts_t o = {4096, 4096, LSHMOE_DTYPE_BF16, 6, 4, 64, 20, "clustered"};
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc;
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device\n");
        return 77;
    }
    const size_t n = o.tokens, es = o.dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    const size_t rb = o.hidden * es, bytes = n * rb;
    float *x32 = malloc(n * o.hidden * sizeof *x32);
    void *x = malloc(bytes), *y = malloc(bytes);
    if (x32 == NULL || x == NULL || y == NULL)
        return fprintf(stderr, "codec_perf: out of memory\n"), 1;
    if (!strcmp(o.data, "gaussian"))
        lt_gen_gaussian(x32, n, o.hidden, 1);
    else
        lt_gen_clustered(x32, n, o.hidden, n / 8, 0.05, 1);
    lshmoe_row_from_f32(x32, n * o.hidden, o.dtype, x);

    lshmoe_kn_lsh_params_t p = {0x5eed, o.hashes, o.cdim, LSHMOE_REDUCE_FOLD,
                                o.reduce_dim, 3};
    cudaStream_t s;
    TRY(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
    lshmoe_kn_cuda_hasher_t *h = NULL;
    KTRY(lshmoe_kn_cuda_hasher_create(&p, o.hidden, s, &h));
    const int key_bits = lshmoe_kn_key_sort_bits(o.hashes, o.cdim);
    void *dx, *drows, *dout, *dcopy, *dws;
    uint64_t *dkeys;
    uint32_t *dcl, *dsizes, *dstarts, *dmembers, *dncl, *hncl;
    size_t wsb = lshmoe_kn_cuda_group_ws_size(n);
    TRY(cudaMalloc(&dx, bytes));
    TRY(cudaMalloc(&drows, bytes));
    TRY(cudaMalloc(&dout, bytes));
    TRY(cudaMalloc(&dcopy, bytes));
    TRY(cudaMalloc(&dws, wsb));
    TRY(cudaMalloc((void **)&dkeys, n * 8));
    TRY(cudaMalloc((void **)&dcl, n * 4));
    TRY(cudaMalloc((void **)&dsizes, n * 4));
    TRY(cudaMalloc((void **)&dstarts, n * 4));
    TRY(cudaMalloc((void **)&dmembers, n * 4));
    TRY(cudaMalloc((void **)&dncl, 4));
    TRY(cudaMallocHost((void **)&hncl, 4));
    TRY(cudaMemcpy(dx, x, bytes, cudaMemcpyHostToDevice));

    cudaEvent_t ev[PHASES + 1];
    for (int i = 0; i <= PHASES; i++)
        TRY(cudaEventCreate(&ev[i]));
    float *t[PHASES];
    for (int i = 0; i < PHASES; i++)
        t[i] = calloc((size_t)o.iters, sizeof(float));
    float *tenc = calloc((size_t)o.iters, sizeof(float));
    float *tall = calloc((size_t)o.iters, sizeof(float));

    for (int it = -2; it < o.iters; it++) { /* two warm-up rounds */
        TRY(cudaEventRecord(ev[0], s));
        KTRY(lshmoe_kn_cuda_hash(h, dx, o.dtype, n, dkeys, s));
        TRY(cudaEventRecord(ev[1], s));
        KTRY(lshmoe_kn_cuda_group_bits(dkeys, n, key_bits, dcl, dsizes, dstarts, dmembers, dncl,
                                       dws, wsb, s));
        TRY(cudaEventRecord(ev[2], s));
        KTRY(lshmoe_kn_cuda_centroids(dx, o.dtype, o.hidden, dsizes, dstarts, dmembers, dncl,
                                      n, drows, s));
        TRY(cudaEventRecord(ev[3], s));
        TRY(cudaMemcpyAsync(hncl, dncl, 4, cudaMemcpyDeviceToHost, s));
        TRY(cudaStreamSynchronize(s));
        TRY(cudaEventRecord(ev[4], s));
        KTRY(lshmoe_kn_cuda_expand(drows, o.dtype, o.hidden, n, dcl, dout, s));
        TRY(cudaEventRecord(ev[5], s));
        TRY(cudaMemcpyAsync(dcopy, dx, bytes, cudaMemcpyDeviceToDevice, s));
        TRY(cudaEventRecord(ev[6], s));
        KTRY(lshmoe_kn_cuda_group(dkeys, n, dcl, dsizes, dstarts, dmembers, dncl, dws, wsb, s));
        TRY(cudaEventRecord(ev[7], s));
        TRY(cudaEventSynchronize(ev[7]));
        if (it < 0)
            continue;
        for (int i = 0; i < PHASES; i++)
            TRY(cudaEventElapsedTime(&t[i][it], ev[i], ev[i + 1]));
        TRY(cudaEventElapsedTime(&tenc[it], ev[0], ev[3]));
        tall[it] = tenc[it] + t[PH_EXPAND][it];
    }
    TRY(cudaMemcpy(y, dout, bytes, cudaMemcpyDeviceToHost));
    const size_t ncl = *hncl;

    /* Error of the reconstruction, in fp64 over fp32 values. */
    double num = 0, den = 0;
    for (size_t i = 0; i < n * o.hidden; i++) {
        float a, b;
        lshmoe_row_to_f32((const char *)x + i * es, o.dtype, 1, &a);
        lshmoe_row_to_f32((const char *)y + i * es, o.dtype, 1, &b);
        num += ((double)a - b) * ((double)a - b);
        den += (double)a * a;
    }
    const size_t idx_bytes = ncl <= 65536 ? 2 : 4;
    const double wire = (double)ncl * (double)rb + (double)n * (double)idx_bytes;

    const char *dtn = o.dtype == LSHMOE_DTYPE_FP32 ? "fp32" :
                      o.dtype == LSHMOE_DTYPE_FP16 ? "fp16" : "bf16";
    printf("# codec_perf --device cuda: %zu tokens x hidden %zu %s (%.1f MiB), %d hashes, "
           "cdim %d, fold %d, data %s, median of %d; group sorts %d key bits (%s keys)\n",
           n, o.hidden, dtn, (double)bytes / 1048576.0, o.hashes, o.cdim, o.reduce_dim,
           o.data, o.iters, key_bits, key_bits <= 32 ? "32-bit" : "64-bit");
    float med[PHASES];
    for (int i = 0; i < PHASES; i++) {
        med[i] = gpu_bench_median(t[i], o.iters);
        printf("%-16s %10.1f us  %8.1f GB/s of token bytes\n", phase_name[i],
               1e3 * med[i], (double)bytes / (1e6 * med[i]));
    }
    float menc = gpu_bench_median(tenc, o.iters), mall = gpu_bench_median(tall, o.iters);
    printf("%-16s %10.1f us  (%.2fx the d2d copy)\n", "encode", 1e3 * menc,
           menc / med[PH_COPY]);
    printf("%-16s %10.1f us  (%.2fx the d2d copy)\n", "encode+decode", 1e3 * mall,
           mall / med[PH_COPY]);
    printf("clusters %zu of %zu tokens, ratio %.2f, rel L2 error %.4f\n", ncl, n,
           (double)bytes / wire, den > 0 ? sqrt(num / den) : 0.0);
    printf("RESULT codec_cuda tokens=%zu hidden=%zu dtype=%s encode_us=%.1f "
           "decode_us=%.1f sync_us=%.1f encdec_us=%.1f copy_us=%.1f ratio=%.3f "
           "hash_us=%.1f group_us=%.1f group64_us=%.1f centroids_us=%.1f key_bits=%d\n",
           n, o.hidden, dtn, 1e3 * menc, 1e3 * med[PH_EXPAND], 1e3 * med[PH_SYNC],
           1e3 * mall, 1e3 * med[PH_COPY], (double)bytes / wire, 1e3 * med[PH_HASH],
           1e3 * med[PH_GROUP], 1e3 * med[PH_GROUP64], 1e3 * med[PH_CENTROIDS], key_bits);
    rc = codec_perf_cuda_wire(&o, dx, s, med[PH_COPY]);

    lshmoe_kn_cuda_hasher_destroy(h);
    cudaFree(dx); cudaFree(drows); cudaFree(dout); cudaFree(dcopy); cudaFree(dws);
    cudaFree(dkeys); cudaFree(dcl); cudaFree(dsizes); cudaFree(dstarts);
    cudaFree(dmembers); cudaFree(dncl); cudaFreeHost(hncl);
    cudaStreamDestroy(s);
    for (int i = 0; i < PHASES; i++)
        free(t[i]);
    free(tenc); free(tall); free(x32); free(x); free(y);
    return rc;
}
