/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * codec_perf --device cuda, second part: the whole device segment codec
 * that lshmoe_alltoallv runs on device buffers (lshmoe/codec_device.c):
 * encode = hash, group, centroids, the quality guard, the probe's key
 * sample, the one host wait (read-back of the counts that size the
 * segment), index, padding, header and checksum; decode = the read-back of
 * the header (host wait), validation with the checksum, the read-back of
 * the result (host wait) and the expansion. Timed with CUDA events on the
 * stream, so the host waits are inside the figures; the checksum (one warp
 * per chunk of the segment, then a one-block finaliser) is also timed alone
 * on the encoded segment. Defaults of the library's configuration
 * (MIN_RATIO, MAX_ERROR, ...) except the hashing options given.
 */
#include <stdio.h>
#include <stdlib.h>

#include <cuda_runtime.h>

#include "benchmarks/codec_perf_cuda.h"
#include "benchmarks/gpu_bench.h"
#include "lshmoe/codec_device.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/error.h"
#include "lshmoe/ctx_int.h"

#define WTRY(call)                                                            \
    do {                                                                      \
        if ((call) != 0) {                                                    \
            fprintf(stderr, "codec_perf: %s: %s\n", #call,                    \
                    lshmoe_error_thread_msg());                               \
            rc = 1;                                                           \
            goto out;                                                         \
        }                                                                     \
    } while (0)

int codec_perf_cuda_wire(const codec_perf_cuda_opts_t *o, const void *dx, void *stream,
                         float copy_ms)
{
    int rc = 0;
    lshmoe_config_t cfg;
    lshmoe_codec_params_t cp;
    lshmoe_codec_t *codec = NULL;
    lshmoe_dev_ws_t ws = {0};
    void *stage = NULL, *dout = NULL;
    size_t cap, bytes = o->tokens * o->hidden * (o->dtype == LSHMOE_DTYPE_FP32 ? 4 : 2);
    cudaEvent_t ev[5] = {0};
    float *t[4] = {0};
    lshmoe_dev_seg_t seg = {0};

    WTRY(lshmoe_config_resolve(NULL, &cfg));
    WTRY(lshmoe_config_codec_params(&cfg, &cp));
    cp.mode = LSHMOE_CODEC_LSH;
    cp.residual_bits = 0;
    cp.lsh.num_hashes = o->hashes;
    cp.lsh.cdim = o->cdim;
    cp.lsh.reduce = LSHMOE_REDUCE_FOLD;
    cp.lsh.reduce_dim = o->reduce_dim;
    WTRY(lshmoe_codec_create(&cp, &codec));
    ws.ops = lshmoe_kn_dev_ops(LSHMOE_KN_MEM_CUDA);
    WTRY(ws.ops == NULL);
    WTRY(lshmoe_codec_max_bytes(o->dtype, o->hidden, o->tokens, &cap));
    WTRY(cudaMalloc(&stage, cap));
    WTRY(cudaMalloc(&dout, bytes));
    for (int i = 0; i < 5; i++)
        WTRY(cudaEventCreate(&ev[i]));
    for (int i = 0; i < 4; i++)
        WTRY((t[i] = calloc((size_t)o->iters, sizeof(float))) == NULL);

    uint8_t hdr[LSHMOE_WIRE_HEADER_BYTES];
    for (int it = -2; it < o->iters; it++) {
        seg = (lshmoe_dev_seg_t){.tokens = dx, .ntokens = o->tokens, .cap = cap, .out = dout};
        WTRY(cudaEventRecord(ev[0], stream));
        WTRY(lshmoe_codec_dev_encode(&ws, codec, o->dtype, o->hidden, &seg, 1, stage, stream));
        WTRY(cudaEventRecord(ev[1], stream));
        WTRY(lshmoe_codec_dev_decode(&ws, codec, o->dtype, o->hidden, &seg, 1, stage, stream));
        WTRY(cudaEventRecord(ev[2], stream));
        /* the checksum alone: seal the segment again with its own header */
        WTRY(cudaMemcpy(hdr, stage, sizeof hdr, cudaMemcpyDeviceToHost));
        WTRY(cudaEventRecord(ev[3], stream));
        WTRY(ws.ops->seal(stage, hdr, seg.len - LSHMOE_WIRE_HEADER_BYTES, ws.checksum_ws.ptr,
                          stream));
        WTRY(cudaEventRecord(ev[4], stream));
        WTRY(cudaEventSynchronize(ev[4]));
        if (it < 0)
            continue;
        WTRY(cudaEventElapsedTime(&t[0][it], ev[0], ev[1]));
        WTRY(cudaEventElapsedTime(&t[1][it], ev[1], ev[2]));
        WTRY(cudaEventElapsedTime(&t[2][it], ev[3], ev[4]));
        t[3][it] = t[0][it] + t[1][it];
    }
    float enc = gpu_bench_median(t[0], o->iters), dec = gpu_bench_median(t[1], o->iters);
    float sum = gpu_bench_median(t[2], o->iters), all = gpu_bench_median(t[3], o->iters);
    printf("# the device segment codec (wire format, guard, checksum, host waits), "
           "%s, MAX_ERROR %g\n", seg.cs.segments_compressed ? "compressed" : "sent raw",
           cp.max_error);
    printf("%-16s %10.1f us\n", "wire encode", 1e3 * enc);
    printf("%-16s %10.1f us\n", "wire decode", 1e3 * dec);
    printf("%-16s %10.1f us  (%.2fx the d2d copy)\n", "wire enc+dec", 1e3 * all,
           all / copy_ms);
    printf("%-16s %10.1f us  (once per side; one warp per %d-byte chunk, %.1f GB/s)\n",
           "of it checksum", 1e3 * sum, LSHMOE_WCK_CHUNK,
           1e-6 * (double)seg.len / (double)sum);
    printf("wire bytes %zu of %zu token bytes (ratio %.2f), %llu rows\n", seg.len, bytes,
           (double)bytes / (double)seg.len, (unsigned long long)seg.cs.rows);
    printf("RESULT codec_cuda_wire tokens=%zu hidden=%zu encode_us=%.1f decode_us=%.1f "
           "encdec_us=%.1f checksum_us=%.1f copy_us=%.1f wire_bytes=%zu compressed=%d\n",
           o->tokens, o->hidden, 1e3 * enc, 1e3 * dec, 1e3 * all, 1e3 * sum, 1e3 * copy_ms,
           seg.len, seg.cs.segments_compressed ? 1 : 0);
out:
    lshmoe_dev_ws_release(&ws, stream);
    for (int i = 0; i < 5; i++)
        if (ev[i] != NULL)
            cudaEventDestroy(ev[i]);
    for (int i = 0; i < 4; i++)
        free(t[i]);
    cudaFree(stage);
    cudaFree(dout);
    lshmoe_codec_destroy(codec);
    return rc;
}
