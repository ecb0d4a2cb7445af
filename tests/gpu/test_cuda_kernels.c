/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The CUDA kernels against their CPU oracle, for fp32, fp16 and bf16 and
 * several hashing configurations (fold and pad, packed and mixed keys, one
 * and several rotations): bucket keys, grouping (cluster numbers and
 * count), centroids and expanded rows must be bit-identical. The data mix
 * near-duplicate tokens (clusters of several members), an all-zero token,
 * huge finite tokens (the rescaling path) and NaN/Inf tokens.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>

#include "gpu_check.h"
#include "kernels/common/lsh_math.h"
#include "kernels/kernels.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"

int gpu_failures, gpu_checks;

/* Deterministic tokens: 16 centres, each token a centre plus small noise;
 * a few special rows. Returned in fp32. */
static float *make_tokens(size_t n, size_t hidden)
{
    float *x = malloc(n * hidden * sizeof *x);
    uint64_t s = 12345;
    for (size_t t = 0; t < n; t++) {
        size_t c = (t * 7) % 16;
        for (size_t i = 0; i < hidden; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double noise = (double)(s >> 40) / (double)(1ull << 24) - 0.5;
            double centre = sin((double)(c * 131 + i) * 0.37) * 2.0;
            x[t * hidden + i] = (float)(centre + noise * (t % 3 == 0 ? 1e-4 : 0.3));
        }
    }
    memset(x + 5 * hidden, 0, hidden * sizeof *x);            /* zero token */
    for (size_t i = 0; i < hidden; i++)                        /* huge finite */
        x[9 * hidden + i] *= 3e37f;
    x[11 * hidden + hidden / 2] = NAN;
    x[12 * hidden] = INFINITY;
    return x;
}

static void *to_dtype(const float *x, size_t n, lshmoe_dtype_t dt)
{
    size_t es = dt == LSHMOE_DTYPE_FP32 ? 4 : 2;
    void *out = malloc(n * es);
    lshmoe_row_from_f32(x, n, dt, out);
    return out;
}

/* lshmoe_kn_cuda_group_bits() with key_bits against the outputs of
 * lshmoe_kn_cuda_group() already in dcl, dsizes, dstarts, dmembers, dncl. */
static void group_bits_same(const char *name, const uint64_t *dkeys, size_t n, int key_bits,
                            const uint32_t *dcl, const uint32_t *dsizes,
                            const uint32_t *dstarts, const uint32_t *dmembers,
                            const uint32_t *dncl, void *dws, size_t wsb)
{
    uint32_t *d2;
    const size_t per = n + 1; /* cluster_of, sizes, starts, members; count */
    GPU_CUDA(cudaMalloc((void **)&d2, 4 * per * sizeof *d2 + sizeof *d2));
    uint32_t *outs[4] = {d2, d2 + per, d2 + 2 * per, d2 + 3 * per}, *ncl2 = d2 + 4 * per;
    GPU_CHECK(lshmoe_kn_cuda_group_bits(dkeys, n, key_bits, outs[0], outs[1], outs[2], outs[3],
                                        ncl2, dws, wsb, NULL) == LSHMOE_OK,
              "%s: group_bits %d: %s", name, key_bits, lshmoe_error_thread_msg());
    GPU_CUDA(cudaDeviceSynchronize());
    const uint32_t *ref[4] = {dcl, dsizes, dstarts, dmembers};
    const char *what[4] = {"cluster_of", "sizes", "starts", "members"};
    uint32_t *a = malloc(n * 4), *b = malloc(n * 4), na = 0, nb = 0;
    for (int k = 0; k < 4; k++) {
        GPU_CUDA(cudaMemcpy(a, ref[k], n * 4, cudaMemcpyDeviceToHost));
        GPU_CUDA(cudaMemcpy(b, outs[k], n * 4, cudaMemcpyDeviceToHost));
        GPU_CHECK(memcmp(a, b, n * 4) == 0, "%s: %s differs when sorting %d key bits", name,
                  what[k], key_bits);
    }
    GPU_CUDA(cudaMemcpy(&na, dncl, 4, cudaMemcpyDeviceToHost));
    GPU_CUDA(cudaMemcpy(&nb, ncl2, 4, cudaMemcpyDeviceToHost));
    GPU_CHECK(na == nb, "%s: %u clusters sorting 64 bits, %u sorting %d", name, na, nb,
              key_bits);
    free(a);
    free(b);
    cudaFree(d2);
}

static void check_case(const char *name, const lshmoe_kn_lsh_params_t *p, size_t hidden,
                       lshmoe_dtype_t dt, const float *x32, size_t n)
{
    const size_t es = dt == LSHMOE_DTYPE_FP32 ? 4 : 2, rb = hidden * es;
    void *x = to_dtype(x32, n * hidden, dt);
    lshmoe_kn_hasher_t *ch = NULL;
    lshmoe_kn_cuda_hasher_t *gh = NULL;
    GPU_CHECK(lshmoe_kn_hasher_create(p, hidden, &ch) == LSHMOE_OK, "%s", name);
    GPU_CHECK(lshmoe_kn_cuda_hasher_create(p, hidden, NULL, &gh) == LSHMOE_OK, "%s: %s",
              name, lshmoe_error_thread_msg());
    if (ch == NULL || gh == NULL)
        return;

    /* CPU oracle. */
    uint64_t *ckeys = malloc(n * sizeof *ckeys);
    void *ws = aligned_alloc(64, (lshmoe_kn_hash_ws_size(ch) + 63) / 64 * 64);
    size_t nonfinite = 0;
    lshmoe_kn_hash(ch, x, dt, n, ckeys, ws, &nonfinite);
    free(ws);
    uint32_t *ccl = malloc(n * sizeof *ccl);
    void *gws = malloc(lshmoe_kn_group_ws_size(n));
    size_t cncl = 0;
    lshmoe_kn_group(ckeys, n, ccl, &cncl, gws);
    free(gws);
    void *crows = malloc(cncl * rb);
    uint32_t *csizes = malloc(cncl * sizeof *csizes);
    float *acc = malloc(cncl * hidden * sizeof *acc);
    lshmoe_kn_centroids(x, dt, hidden, n, ccl, cncl, crows, csizes, acc);
    void *cout = malloc(n * rb);
    lshmoe_kn_expand(crows, dt, hidden, n, ccl, cout);

    /* Device. */
    void *dx, *drows, *dout, *dws;
    uint64_t *dkeys;
    uint32_t *dcl, *dsizes, *dstarts, *dmembers, *dncl;
    size_t wsb = lshmoe_kn_cuda_group_ws_size(n);
    GPU_CHECK(wsb > 0, "%s: group workspace size", name);
    GPU_CUDA(cudaMalloc(&dx, n * rb));
    GPU_CUDA(cudaMalloc(&drows, n * rb));
    GPU_CUDA(cudaMalloc(&dout, n * rb));
    GPU_CUDA(cudaMalloc(&dws, wsb));
    GPU_CUDA(cudaMalloc((void **)&dkeys, n * sizeof *dkeys));
    GPU_CUDA(cudaMalloc((void **)&dcl, n * 4));
    GPU_CUDA(cudaMalloc((void **)&dsizes, n * 4));
    GPU_CUDA(cudaMalloc((void **)&dstarts, n * 4));
    GPU_CUDA(cudaMalloc((void **)&dmembers, n * 4));
    GPU_CUDA(cudaMalloc((void **)&dncl, 4));
    GPU_CUDA(cudaMemcpy(dx, x, n * rb, cudaMemcpyHostToDevice));
    GPU_CHECK(lshmoe_kn_cuda_hash(gh, dx, dt, n, dkeys, NULL) == LSHMOE_OK, "%s", name);
    GPU_CHECK(lshmoe_kn_cuda_group(dkeys, n, dcl, dsizes, dstarts, dmembers, dncl, dws, wsb,
                                   NULL) == LSHMOE_OK, "%s: %s", name,
              lshmoe_error_thread_msg());
    /* the codec's grouping sorts only the key bits in use (32-bit keys
     * when they fit): every output must equal the whole-key sort's */
    group_bits_same(name, dkeys, n, lshmoe_kn_key_sort_bits(p->num_hashes, p->cdim), dcl,
                    dsizes, dstarts, dmembers, dncl, dws, wsb);
    GPU_CHECK(lshmoe_kn_cuda_centroids(dx, dt, hidden, dsizes, dstarts, dmembers, dncl, n,
                                       drows, NULL) == LSHMOE_OK, "%s", name);
    GPU_CHECK(lshmoe_kn_cuda_expand(drows, dt, hidden, n, dcl, dout, NULL) == LSHMOE_OK,
              "%s", name);
    GPU_CUDA(cudaDeviceSynchronize());

    uint64_t *gkeys = malloc(n * sizeof *gkeys);
    uint32_t *gcl = malloc(n * 4), gncl = 0;
    void *grows = malloc(n * rb), *gout = malloc(n * rb);
    GPU_CUDA(cudaMemcpy(gkeys, dkeys, n * sizeof *gkeys, cudaMemcpyDeviceToHost));
    GPU_CUDA(cudaMemcpy(gcl, dcl, n * 4, cudaMemcpyDeviceToHost));
    GPU_CUDA(cudaMemcpy(&gncl, dncl, 4, cudaMemcpyDeviceToHost));
    GPU_CUDA(cudaMemcpy(grows, drows, cncl * rb, cudaMemcpyDeviceToHost));
    GPU_CUDA(cudaMemcpy(gout, dout, n * rb, cudaMemcpyDeviceToHost));

    size_t kdiff = 0, first = n;
    for (size_t i = 0; i < n; i++)
        if (gkeys[i] != ckeys[i]) {
            kdiff++;
            first = first < i ? first : i;
        }
    GPU_CHECK(kdiff == 0, "%s: %zu of %zu keys differ (first: token %zu, cpu %016llx gpu %016llx)",
              name, kdiff, n, first, first < n ? (unsigned long long)ckeys[first] : 0ull,
              first < n ? (unsigned long long)gkeys[first] : 0ull);
    /* Tokens 11 and 12 hold NaN/Inf; token 9 (about 1e38) also overflows
     * fp16 to Inf, while fp32 and bf16 take the rescaling path with it. */
    GPU_CHECK(nonfinite == (dt == LSHMOE_DTYPE_FP16 ? 3u : 2u),
              "%s: cpu counted %zu non-finite tokens", name, nonfinite);
    GPU_CHECK(gkeys[11] == LSHMOE_KN_KEY_NONFINITE && gkeys[12] == LSHMOE_KN_KEY_NONFINITE,
              "%s: non-finite tokens", name);
    GPU_CHECK(gncl == cncl, "%s: %u clusters on the gpu, %zu on the cpu", name, gncl, cncl);
    GPU_CHECK(cncl < n, "%s: the data should form clusters (%zu of %zu)", name, cncl, n);
    if (kdiff == 0 && gncl == cncl) {
        GPU_CHECK(memcmp(gcl, ccl, n * 4) == 0, "%s: cluster numbers differ", name);
        size_t rdiff = 0;
        for (size_t k = 0; k < cncl; k++)
            rdiff += memcmp((char *)grows + k * rb, (char *)crows + k * rb, rb) != 0;
        GPU_CHECK(rdiff == 0, "%s: %zu of %zu centroid rows differ", name, rdiff, cncl);
        GPU_CHECK(memcmp(gout, cout, n * rb) == 0, "%s: expanded rows differ", name);
    }
    printf("%-28s %zu tokens, %zu clusters: keys %s\n", name, n, cncl,
           kdiff ? "DIFFER" : "identical");

    cudaFree(dx); cudaFree(drows); cudaFree(dout); cudaFree(dws); cudaFree(dkeys);
    cudaFree(dcl); cudaFree(dsizes); cudaFree(dstarts); cudaFree(dmembers); cudaFree(dncl);
    free(gkeys); free(gcl); free(grows); free(gout); free(ckeys); free(ccl); free(crows);
    free(csizes); free(acc); free(cout); free(x);
    lshmoe_kn_hasher_destroy(ch);
    lshmoe_kn_cuda_hasher_destroy(gh);
}

int main(void)
{
    if (lshmoe_kn_cuda_device_count() == 0) {
        printf("SKIP: no usable CUDA device (no GPU or no driver)\n");
        return GPU_EXIT_SKIP;
    }
    struct {
        const char *name;
        lshmoe_kn_lsh_params_t p;
        size_t hidden;
    } cases[] = {
        {"fold64 c4 L6 r3 h1000", {0x5eed, 6, 4, LSHMOE_REDUCE_FOLD, 64, 3}, 1000},
        {"fold64 c4 L6 r3 h4096", {0x5eed, 6, 4, LSHMOE_REDUCE_FOLD, 64, 3}, 4096},
        {"fold16 c16 L16 r2 h333", {7, 16, 16, LSHMOE_REDUCE_FOLD, 16, 2}, 333},
        {"pad c8 L4 r1 h100", {99, 4, 8, LSHMOE_REDUCE_PAD, 0, 1}, 100},
        {"pad c2 L3 r3 h5", {3, 3, 2, LSHMOE_REDUCE_PAD, 0, 3}, 5},
        {"fold256 c256 L2 r3 h768", {11, 2, 256, LSHMOE_REDUCE_FOLD, 256, 3}, 768},
        /* packed keys of 50 bits: the 64-bit sort of 51 bits */
        {"fold64 c16 L10 r1 h512", {5, 10, 16, LSHMOE_REDUCE_FOLD, 64, 1}, 512},
    };
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    const char *dtn[] = {"fp32", "fp16", "bf16"};
    const size_t n = 700;
    /* LSHMOE_GPU_QUICK=1: the first two cases only (for compute-sanitizer,
     * which runs kernels many times slower). */
    const char *quick = getenv("LSHMOE_GPU_QUICK");
    size_t ncases = sizeof cases / sizeof cases[0];
    if (quick != NULL && quick[0] == '1')
        ncases = 2;
    for (size_t c = 0; c < ncases; c++) {
        float *x = make_tokens(n, cases[c].hidden);
        for (size_t d = 0; d < 3; d++) {
            char name[64];
            snprintf(name, sizeof name, "%s %s", cases[c].name, dtn[d]);
            check_case(name, &cases[c].p, cases[c].hidden, dts[d], x, n);
        }
        free(x);
    }
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
