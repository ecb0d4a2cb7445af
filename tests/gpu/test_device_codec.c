/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device codec (lshmoe/codec_device.c) against the CPU codec, for
 * fp32, fp16 and bf16: a batch of segments (clustered with NaN/Inf, zero
 * and huge tokens; small; empty; structureless) encoded on the device must
 * give the CPU encoder's wire bytes exactly, under a loose quality guard
 * and under a tight one (segments sent raw); CPU wire bytes decoded on the
 * device must give the CPU decoder's tokens exactly; a corrupted segment
 * must fail with LSHMOE_ERR_CORRUPT and write nothing; after the first
 * call, further calls allocate no device memory. Skips (77) without a GPU.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_check.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe/codec_device.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"

int gpu_failures, gpu_checks;

#define NSEG 4
static const size_t seg_n[NSEG] = {600, 37, 0, 300};
#define HIDDEN 1000

static uint64_t rng = 777;
static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 40) / (double)(1ull << 24) - 0.5;
}

/* Segment 3 is noise (no structure: raw after the probe); the others are
 * 16 centres plus noise, with a zero, a NaN and an Inf token. */
static float *make_tokens(size_t n, size_t hidden, int noise_only)
{
    float *x = malloc((n ? n : 1) * hidden * sizeof *x);
    for (size_t t = 0; t < n; t++) {
        size_t c = (t * 7) % 16;
        for (size_t i = 0; i < hidden; i++) {
            double centre = noise_only ? 0.0 : sin((double)(c * 131 + i) * 0.37) * 2.0;
            x[t * hidden + i] = (float)(centre + urand() * (t % 3 == 0 ? 1e-4 : 0.3));
        }
    }
    if (n > 20 && !noise_only) {
        memset(x + 5 * hidden, 0, hidden * sizeof *x);
        x[11 * hidden + hidden / 2] = NAN;
        x[12 * hidden] = INFINITY;
    }
    /* A huge finite token (fp16: Inf) in the small segment: its cluster's
     * mean is far from the other members, so the guard sends it raw. */
    if (n > 20 && n < 100)
        for (size_t i = 0; i < hidden; i++)
            x[9 * hidden + i] *= 3e37f;
    return x;
}

static void check_dtype(lshmoe_dtype_t dt, double max_error)
{
    const size_t es = lshmoe_dtype_size(dt), tb = HIDDEN * es;
    lshmoe_codec_params_t p;
    memset(&p, 0, sizeof p);
    p.lsh = (lshmoe_kn_lsh_params_t){.seed = 42, .num_hashes = 6, .cdim = 4,
                                     .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64,
                                     .rounds = 3};
    p.compress = 1;
    p.min_tokens = 16;
    p.min_ratio = 1.2;
    p.error_guard = 1;
    p.max_error = max_error;
    p.mode = LSHMOE_CODEC_LSH;
    lshmoe_codec_t *codec = NULL;
    GPU_CHECK(lshmoe_codec_create(&p, &codec) == LSHMOE_OK, "codec: %s",
              lshmoe_error_thread_msg());
    if (codec == NULL)
        return;

    /* host tokens, CPU wire bytes, device copies */
    lshmoe_dev_ws_t ws;
    memset(&ws, 0, sizeof ws);
    ws.ops = lshmoe_kn_dev_ops(LSHMOE_KN_MEM_CUDA);
    GPU_CHECK(ws.ops != NULL, "cuda ops table");
    if (ws.ops == NULL)
        return;
    lshmoe_dev_seg_t segs[NSEG];
    void *htok[NSEG], *cpu_wire[NSEG], *dtok[NSEG];
    size_t cpu_len[NSEG], off = 0, total_tok = 0;
    memset(segs, 0, sizeof segs);
    for (int i = 0; i < NSEG; i++) {
        size_t n = seg_n[i], cap;
        float *x = make_tokens(n, HIDDEN, i == 3);
        htok[i] = malloc(n * tb + 1);
        lshmoe_row_from_f32(x, n * HIDDEN, dt, htok[i]);
        free(x);
        GPU_CHECK(lshmoe_codec_max_bytes(dt, HIDDEN, n, &cap) == LSHMOE_OK, "max_bytes");
        cpu_wire[i] = malloc(cap);
        lshmoe_status_t st = lshmoe_codec_encode(codec, htok[i], dt, HIDDEN, n, cpu_wire[i],
                                                 cap, &cpu_len[i], NULL);
        GPU_CHECK(st == LSHMOE_OK, "cpu encode: %s", lshmoe_error_thread_msg());
        GPU_CUDA(cudaMalloc(&dtok[i], n * tb + 1));
        GPU_CUDA(cudaMemcpy(dtok[i], htok[i], n * tb, cudaMemcpyHostToDevice));
        segs[i].tokens = dtok[i];
        segs[i].ntokens = n;
        segs[i].off = off;
        segs[i].cap = cap;
        off += (cap + 7) & ~(size_t)7;
        total_tok += n;
    }
    uint8_t *dstage, *hstage = malloc(off);
    void *dout;
    GPU_CUDA(cudaMalloc((void **)&dstage, off));
    GPU_CUDA(cudaMalloc(&dout, total_tok * tb + 1));
    cudaStream_t s;
    GPU_CUDA(cudaStreamCreate(&s));

    uint64_t allocs_warm = 0;
    int multi_chunk_tail = 0; /* a payload of several checksum chunks and a tail */
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < NSEG; i++)
            memset(&segs[i].cs, 0, sizeof segs[i].cs);
        lshmoe_status_t st = lshmoe_codec_dev_encode(&ws, codec, dt, HIDDEN, segs, NSEG,
                                                     dstage, s);
        GPU_CHECK(st == LSHMOE_OK, "device encode: %s", lshmoe_error_thread_msg());
        GPU_CUDA(cudaStreamSynchronize(s));
        GPU_CUDA(cudaMemcpy(hstage, dstage, off, cudaMemcpyDeviceToHost));
        for (int i = 0; i < NSEG && rep == 0; i++) {
            GPU_CHECK(segs[i].len == cpu_len[i], "dtype %s guard %g segment %d: %zu bytes, "
                      "CPU %zu", lshmoe_dtype_name(dt), max_error, i, segs[i].len, cpu_len[i]);
            size_t diff = SIZE_MAX;
            for (size_t b = 0; b < cpu_len[i] && b < segs[i].len; b++)
                if (hstage[segs[i].off + b] != ((uint8_t *)cpu_wire[i])[b]) {
                    diff = b;
                    break;
                }
            GPU_CHECK(diff == SIZE_MAX, "dtype %s guard %g segment %d: wire bytes differ "
                      "from the CPU's at byte %zu", lshmoe_dtype_name(dt), max_error, i, diff);
            size_t payload = segs[i].len - LSHMOE_WIRE_HEADER_BYTES;
            multi_chunk_tail += payload > LSHMOE_WCK_CHUNK && payload % LSHMOE_WCK_STRIPE != 0;
            printf("%-5s guard %-5g segment %d: %4zu tokens, %8zu wire bytes, %s, %s\n",
                   lshmoe_dtype_name(dt), max_error, i, seg_n[i], segs[i].len,
                   segs[i].cs.segments_compressed ? "compressed" : "raw",
                   diff == SIZE_MAX && segs[i].len == cpu_len[i] ? "identical" : "DIFFERENT");
        }
        /* decode the CPU's bytes on the device */
        for (int i = 0; i < NSEG; i++)
            GPU_CUDA(cudaMemcpy(dstage + segs[i].off, cpu_wire[i], cpu_len[i],
                                cudaMemcpyHostToDevice));
        size_t o = 0;
        for (int i = 0; i < NSEG; i++) {
            segs[i].out = (char *)dout + o;
            segs[i].len = cpu_len[i];
            o += seg_n[i] * tb;
        }
        st = lshmoe_codec_dev_decode(&ws, codec, dt, HIDDEN, segs, NSEG, dstage, s);
        GPU_CHECK(st == LSHMOE_OK, "device decode: %s", lshmoe_error_thread_msg());
        uint8_t *got = malloc(total_tok * tb + 1), *want = malloc(tb * 600 + 1);
        GPU_CUDA(cudaMemcpy(got, dout, total_tok * tb, cudaMemcpyDeviceToHost));
        o = 0;
        for (int i = 0; i < NSEG; i++) {
            GPU_CHECK(lshmoe_codec_decode(codec, cpu_wire[i], cpu_len[i], dt, HIDDEN, seg_n[i],
                                          want, NULL) == LSHMOE_OK, "cpu decode");
            GPU_CHECK(memcmp(got + o, want, seg_n[i] * tb) == 0,
                      "segment %d decoded on the device differs from the CPU", i);
            o += seg_n[i] * tb;
        }
        free(got);
        free(want);
        if (rep == 0)
            allocs_warm = ws.allocs;
        else
            GPU_CHECK(ws.allocs == allocs_warm, "device allocations grew after warm-up: %llu "
                      "then %llu", (unsigned long long)allocs_warm,
                      (unsigned long long)ws.allocs);
    }

    GPU_CHECK(multi_chunk_tail > 0, "dtype %s guard %g: no segment of several checksum "
              "chunks with a tail", lshmoe_dtype_name(dt), max_error);

    /* a flipped payload byte: CORRUPT, and the output keeps its old bytes */
    uint8_t *bad = malloc(cpu_len[0]);
    memcpy(bad, cpu_wire[0], cpu_len[0]);
    bad[LSHMOE_WIRE_HEADER_BYTES + 3] ^= 0x10;
    GPU_CUDA(cudaMemcpy(dstage + segs[0].off, bad, cpu_len[0], cudaMemcpyHostToDevice));
    GPU_CUDA(cudaMemset(dout, 0xA5, seg_n[0] * tb));
    lshmoe_status_t st = lshmoe_codec_dev_decode(&ws, codec, dt, HIDDEN, segs, 1, dstage, s);
    GPU_CHECK(st == LSHMOE_ERR_CORRUPT, "corrupt segment: %s", lshmoe_status_name(st));
    GPU_CHECK(strstr(lshmoe_error_thread_msg(), "checksum") != NULL, "reason: %s",
              lshmoe_error_thread_msg());
    uint8_t *after = malloc(seg_n[0] * tb);
    GPU_CUDA(cudaMemcpy(after, dout, seg_n[0] * tb, cudaMemcpyDeviceToHost));
    size_t untouched = 0;
    for (size_t b = 0; b < seg_n[0] * tb; b++)
        untouched += after[b] == 0xA5;
    GPU_CHECK(untouched == seg_n[0] * tb, "corrupt segment wrote %zu bytes",
              seg_n[0] * tb - untouched);
    free(after);
    free(bad);

    lshmoe_dev_ws_release(&ws, s);
    GPU_CHECK(ws.bytes == 0, "workspace released (%zu bytes left)", ws.bytes);
    cudaStreamDestroy(s);
    cudaFree(dstage);
    cudaFree(dout);
    free(hstage);
    for (int i = 0; i < NSEG; i++) {
        free(htok[i]);
        free(cpu_wire[i]);
        cudaFree(dtok[i]);
    }
    lshmoe_codec_destroy(codec);
}

int main(void)
{
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device (no GPU or no driver)\n");
        return GPU_EXIT_SKIP;
    }
    lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    for (int d = 0; d < 3; d++) {
        check_dtype(dts[d], 0.6);  /* loose guard: clustered segments compress */
        check_dtype(dts[d], 1e-3); /* tight guard: they travel raw */
    }
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
