/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device wire checksum (lshmoe_kn_cuda_seal, lshmoe_kn_cuda_check_segment
 * in kernels/cuda/codec_wire.cu) against the CPU's
 * (lshmoe_wire_segment_checksum): for payload lengths around stripe and
 * chunk boundaries, with partial words, with more chunks than one block
 * takes and with more than the grid's blocks take in one pass, on the
 * legacy default stream and on a stream of its own, the sealed header
 * (40 bytes and the checksum) must equal the CPU's byte for byte and the
 * validator must accept it; a flipped byte at a chunk's start, in the
 * middle, in the last word and in the header, and two chunks that trade
 * places, must be refused. Skips (77) without a GPU.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_check.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/error.h"

int gpu_failures, gpu_checks;

#define CK LSHMOE_WCK_CHUNK
#define HDR LSHMOE_WIRE_HEADER_BYTES

static uint64_t rng = 2024;
static uint8_t rbyte(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (uint8_t)(rng >> 56);
}

/* 1 when the device validator flags the segment at d (payload bytes). */
static int device_bad(const uint8_t *d, size_t payload, uint32_t *dbad, void *ws,
                      cudaStream_t s)
{
    lshmoe_kn_seg_t g;
    memset(&g, 0, sizeof g);
    /* a raw segment with no tokens: only the checksum is looked at */
    g.rows_off = HDR;
    g.rows_bytes = payload;
    g.idx_off = HDR + payload;
    g.payload_bytes = payload;
    g.raw = 1;
    uint32_t bad = 0xdead;
    if (cudaMemsetAsync(dbad, 0, 4, s) != cudaSuccess ||
        lshmoe_kn_cuda_check_segment(d, &g, dbad, ws, s) != LSHMOE_OK ||
        cudaMemcpyAsync(&bad, dbad, 4, cudaMemcpyDeviceToHost, s) != cudaSuccess ||
        cudaStreamSynchronize(s) != cudaSuccess) {
        GPU_CHECK(0, "check_segment failed: %s", lshmoe_error_thread_msg());
        return -1;
    }
    return (bad & LSHMOE_KN_SEG_BAD_CHECKSUM) != 0;
}

/* Flips byte `at` of the device segment (host copy h kept equal). */
static void flip(uint8_t *d, uint8_t *h, size_t at)
{
    h[at] ^= 0x20;
    cudaMemcpy(d + at, h + at, 1, cudaMemcpyHostToDevice);
}

static void check_length(size_t payload, cudaStream_t s, uint8_t *d, void *ws, uint32_t *dbad)
{
    const size_t len = HDR + payload;
    uint8_t *h = malloc(len), *back = malloc(len);
    if (h == NULL || back == NULL) {
        GPU_CHECK(0, "host memory");
        free(h);
        free(back);
        return;
    }
    for (size_t i = 0; i < len; i++)
        h[i] = rbyte();
    uint8_t header[HDR];
    memcpy(header, h, HDR);
    GPU_CUDA(cudaMemcpy(d, h, len, cudaMemcpyHostToDevice));
    GPU_CHECK(lshmoe_kn_cuda_seal(d, header, payload, ws, s) == LSHMOE_OK, "seal: %s",
              lshmoe_error_thread_msg());
    GPU_CUDA(cudaStreamSynchronize(s));
    GPU_CUDA(cudaMemcpy(back, d, len, cudaMemcpyDeviceToHost));
    uint64_t want = lshmoe_wire_segment_checksum(h, h + HDR, payload);
    lshmoe_put_le64(h + LSHMOE_WIRE_OFF_CHECKSUM, want);
    GPU_CHECK(memcmp(back, h, len) == 0, "payload %zu: sealed bytes differ from the CPU's "
              "(checksum %016llx, CPU %016llx)", payload,
              (unsigned long long)lshmoe_get_le64(back + LSHMOE_WIRE_OFF_CHECKSUM),
              (unsigned long long)want);
    GPU_CHECK(device_bad(d, payload, dbad, ws, s) == 0, "payload %zu: intact segment refused",
              payload);

    /* one changed byte anywhere: refused; restored: accepted */
    size_t spots[] = {HDR + 3, HDR + payload / 2, HDR + payload - 1, HDR + CK, 20};
    for (size_t k = 0; k < sizeof spots / sizeof spots[0]; k++) {
        size_t at = spots[k];
        if (at >= len || (at >= HDR && payload == 0))
            continue;
        flip(d, h, at);
        GPU_CHECK(device_bad(d, payload, dbad, ws, s) == 1, "payload %zu: byte %zu flipped, "
                  "not refused", payload, at);
        flip(d, h, at);
    }
    GPU_CHECK(device_bad(d, payload, dbad, ws, s) == 0, "payload %zu: restored segment "
              "refused", payload);
    /* two whole chunks trade places */
    if (payload >= 2 * CK) {
        GPU_CUDA(cudaMemcpy(d + HDR, h + HDR + CK, CK, cudaMemcpyHostToDevice));
        GPU_CUDA(cudaMemcpy(d + HDR + CK, h + HDR, CK, cudaMemcpyHostToDevice));
        GPU_CHECK(device_bad(d, payload, dbad, ws, s) == 1, "payload %zu: chunks 0 and 1 "
                  "swapped, not refused", payload);
        GPU_CUDA(cudaMemcpy(d, h, len, cudaMemcpyHostToDevice));
    }
    free(h);
    free(back);
}

int main(void)
{
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device (no GPU or no driver)\n");
        return GPU_EXIT_SKIP;
    }
    /* 2049 chunks: more than 512 blocks of 4 warps take in one pass */
    const size_t big = 2049 * (size_t)CK - 3;
    const size_t lens[] = {0, 1, 7, 8, 200, 255, 256, 257, 264, CK - 8, CK - 1, CK, CK + 1,
                           CK + 8, CK + 259, 2 * CK, 3 * CK + 300, 5 * CK + 4, 37 * CK + 1000,
                           (1u << 20) + 48, big};
    uint8_t *d = NULL;
    void *ws = NULL;
    uint32_t *dbad = NULL;
    if (cudaMalloc((void **)&d, HDR + big) != cudaSuccess ||
        cudaMalloc(&ws, LSHMOE_KN_DEV_CHECKSUM_WS_BYTES) != cudaSuccess ||
        cudaMalloc((void **)&dbad, 4) != cudaSuccess) {
        printf("FAIL: device memory\n");
        return 1;
    }
    cudaStream_t own;
    if (cudaStreamCreate(&own) != cudaSuccess) {
        printf("FAIL: stream\n");
        return 1;
    }
    /* LSHMOE_GPU_QUICK (under compute-sanitizer): up to 37 chunks */
    const size_t nlens = sizeof lens / sizeof lens[0] - (getenv("LSHMOE_GPU_QUICK") ? 2 : 0);
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < nlens; k++)
            check_length(lens[k], pass ? own : (cudaStream_t)0, d, ws, dbad);
    /* argument errors: a status and a message, nothing queued */
    uint8_t header[HDR] = {0};
    GPU_CHECK(lshmoe_kn_cuda_seal(d, header, 8, NULL, own) == LSHMOE_ERR_INVALID_ARG,
              "seal without workspace");
    GPU_CHECK(lshmoe_kn_cuda_seal(d + 4, header, 8, ws, own) == LSHMOE_ERR_INVALID_ARG,
              "seal of a misaligned segment");
    cudaStreamDestroy(own);
    cudaFree(d);
    cudaFree(ws);
    cudaFree(dbad);
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
