/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode on device buffers, one rank over NCCL, against the same layer
 * on host buffers over the self transport: the same batches (rows byte for
 * byte, group sizes) and the same y bit for bit, for fp32, bf16 and fp16,
 * raw (compress 0) and clustered (compress 1 with RESIDUAL and with NONE
 * compensation; near-duplicate tokens, so groups of several tokens with
 * residuals form), with a token routed twice to one expert, dropped slots
 * and a token whose slots are all dropped. Also: warm passes allocate no
 * device memory, the NULL stream, and the clear refusals (mixed host/device
 * buffers, the backward pass, SCALED compensation, coded rows, token hooks,
 * a transport other than nccl).
 * Exits 77 without a usable device.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime.h>
#include <nccl.h>

#include "gpu_check.h"
#include "gpu_nccl.h"
#include "kernels/cuda/lsh_cuda.h"
#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe_moe.h"
#include "lshmoe_nccl.h"

int gpu_failures, gpu_checks;

enum { T = 301, H = 136, E = 4, K = 2 };

/* The expert: out = (1 + expert / 4) * in + 0.01 * d, in fp32, then the
 * dtype. With a stream (the device path) it reads and writes device rows
 * through the host; without one, host rows. */
typedef struct expert_user {
    lshmoe_dtype_t dtype;
    int            device_calls;
} expert_user_t;

static void expert_rows(int expert, const void *in, void *out, size_t rows,
                        lshmoe_dtype_t dt)
{
    size_t tb = H * lshmoe_dtype_size(dt);
    float f[H];
    for (size_t r = 0; r < rows; r++) {
        lshmoe_row_to_f32((const char *)in + r * tb, dt, H, f);
        for (int d = 0; d < H; d++)
            f[d] = (1.0f + (float)expert * 0.25f) * f[d] + 0.01f * (float)d;
        lshmoe_row_from_f32(f, H, dt, (char *)out + r * tb);
    }
}

static int expert_fwd(int expert, const void *in, void *out, size_t rows, void *user,
                      void *stream)
{
    expert_user_t *u = user;
    if (stream == NULL) {
        expert_rows(expert, in, out, rows, u->dtype);
        return 0;
    }
    u->device_calls++;
    size_t bytes = rows * H * lshmoe_dtype_size(u->dtype);
    char *hi = malloc(bytes), *ho = malloc(bytes);
    int rc = hi == NULL || ho == NULL;
    rc = rc || cudaMemcpyAsync(hi, in, bytes, cudaMemcpyDeviceToHost, stream) != cudaSuccess;
    rc = rc || cudaStreamSynchronize(stream) != cudaSuccess;
    if (!rc)
        expert_rows(expert, hi, ho, rows, u->dtype);
    rc = rc || cudaMemcpyAsync(out, ho, bytes, cudaMemcpyHostToDevice, stream) != cudaSuccess;
    rc = rc || cudaStreamSynchronize(stream) != cudaSuccess;
    free(hi);
    free(ho);
    return rc;
}

typedef struct inputs {
    int32_t idx[T * K];
    float   gate[T * K];
    char   *x;       /* host tokens */
} inputs_t;

static void make_inputs(inputs_t *in, lshmoe_dtype_t dt)
{
    size_t tb = H * lshmoe_dtype_size(dt);
    float f[H];
    in->x = malloc(T * tb);
    for (int t = 0; t < T; t++) {
        /* tokens t, t + 100, t + 200 nearly equal, and routed alike */
        for (int d = 0; d < H; d++)
            f[d] = (float)((((t % 100) * 37 + d * 11) % 101) - 50) / 17.0f +
                   0.003f * (float)(t / 100) * (float)(d % 3);
        lshmoe_row_from_f32(f, H, dt, in->x + (size_t)t * tb);
        in->idx[t * K] = t % E;
        in->idx[t * K + 1] = (t % 7 == 0) ? t % E          /* twice to one expert */
                             : (t % 5 == 0) ? LSHMOE_MOE_DROPPED
                                            : (t * 3 + 1) % E;
        in->gate[t * K] = 0.6f + 0.001f * (float)(t % 13);
        in->gate[t * K + 1] = 0.3f - 0.002f * (float)(t % 11);
    }
    /* token 3: every slot dropped (y must be 0) */
    in->idx[3 * K] = in->idx[3 * K + 1] = LSHMOE_MOE_DROPPED;
}

static lshmoe_config_t raw_config(int compress)
{
    lshmoe_config_t c = LSHMOE_CONFIG_INITIALIZER;
    c.compress = compress;
    c.codec = LSHMOE_CODEC_LSH;
    return c;
}

/* The layer's compensation (LSHMOE_UNSET_INT: the context's). */
static int layer_comp = LSHMOE_UNSET_INT;

static lshmoe_moe_t *make_layer(lshmoe_ctx_t *ctx, lshmoe_dtype_t dt, expert_user_t *u)
{
    lshmoe_moe_config_t mc = LSHMOE_MOE_CONFIG_INITIALIZER;
    mc.num_experts = E;
    mc.topk = K;
    mc.dtype = dt;
    mc.hidden = H;
    mc.compensation = layer_comp;
    lshmoe_moe_t *moe = NULL;
    lshmoe_status_t st = lshmoe_moe_create(ctx, &mc, &moe);
    GPU_CHECK(st == LSHMOE_OK, "moe_create: %s", lshmoe_last_error(ctx));
    if (moe != NULL && u != NULL)
        lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, expert_fwd, NULL, u);
    return moe;
}

/* One rank of the self transport. */
static lshmoe_comm_desc_t self_desc(lshmoe_self_world_t *world)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.kind = LSHMOE_COMM_SELF;
    d.native = world;
    d.rank = 0;
    d.nranks = 1;
    return d;
}

/* Host reference: one rank over the self transport. Fills y and the
 * batches' rows (all experts' in, concatenated) and sizes. */
typedef struct host_ref {
    char     *y, *rows;
    uint32_t *sizes;
    size_t    nrows;
} host_ref_t;

static void host_reference(const inputs_t *in, lshmoe_dtype_t dt, int compress,
                           host_ref_t *ref)
{
    size_t tb = H * lshmoe_dtype_size(dt);
    lshmoe_self_world_t *world = NULL;
    GPU_CHECK(lshmoe_self_world_create(1, 30.0, &world) == LSHMOE_OK, "self world");
    lshmoe_comm_desc_t d = self_desc(world);
    lshmoe_config_t cfg = raw_config(compress);
    lshmoe_ctx_t *ctx = NULL;
    GPU_CHECK(lshmoe_ctx_create(&d, &cfg, &ctx) == LSHMOE_OK, "self ctx");
    expert_user_t u = {dt, 0};
    lshmoe_moe_t *moe = make_layer(ctx, dt, &u);
    lshmoe_moe_handle_t *h = NULL;
    GPU_CHECK(lshmoe_moe_layout(moe, T, in->idx, in->gate, &h) == LSHMOE_OK, "layout");
    GPU_CHECK(lshmoe_moe_dispatch(moe, h, in->x, NULL) == LSHMOE_OK, "host dispatch: %s",
              lshmoe_last_error(ctx));
    const lshmoe_moe_batch_t *b = NULL;
    int nb = 0;
    lshmoe_moe_batches(h, &b, &nb);
    ref->nrows = 0;
    for (int j = 0; j < nb; j++)
        ref->nrows += b[j].rows;
    ref->rows = malloc(ref->nrows * tb + 1);
    ref->sizes = malloc(ref->nrows * sizeof(uint32_t) + 1);
    size_t r = 0;
    for (int j = 0; j < nb; j++) {
        memcpy(ref->rows + r * tb, b[j].in, b[j].rows * tb);
        memcpy(ref->sizes + r, b[j].cluster_size, b[j].rows * sizeof(uint32_t));
        r += b[j].rows;
    }
    ref->y = malloc(T * tb);
    GPU_CHECK(lshmoe_moe_combine(moe, h, ref->y, NULL) == LSHMOE_OK, "host combine: %s",
              lshmoe_last_error(ctx));
    lshmoe_moe_handle_destroy(h);
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
    lshmoe_self_world_destroy(world);
}

/* Allocator hooks that count what the device path asks of them. */
static int hook_allocs, hook_frees;

static int count_alloc(void *user, size_t bytes, void *stream, void **ptr_p)
{
    (void)user;
    (void)stream;
    hook_allocs++;
    return cudaMalloc(ptr_p, bytes ? bytes : 1) != cudaSuccess;
}

static void count_free(void *user, void *ptr, size_t bytes, void *stream)
{
    (void)user;
    (void)bytes;
    (void)stream;
    hook_frees++;
    cudaFree(ptr);
}

/* The device batches, copied back, against the host reference. */
static void check_batches(lshmoe_moe_handle_t *h, const host_ref_t *ref, size_t tb,
                          const char *what)
{
    const lshmoe_moe_batch_t *b = NULL;
    int nb = 0;
    GPU_CHECK(lshmoe_moe_batches(h, &b, &nb) == LSHMOE_OK && nb == E, "%s: batches", what);
    size_t r = 0;
    for (int j = 0; j < nb; j++) {
        if (r + b[j].rows > ref->nrows) {
            GPU_CHECK(0, "%s: more rows than the host's", what);
            return;
        }
        char *rows = malloc(b[j].rows * tb + 1);
        uint32_t *sz = malloc(b[j].rows * sizeof(uint32_t) + 1);
        GPU_CUDA(cudaMemcpy(rows, b[j].in, b[j].rows * tb, cudaMemcpyDeviceToHost));
        GPU_CUDA(cudaMemcpy(sz, b[j].cluster_size, b[j].rows * sizeof(uint32_t),
                            cudaMemcpyDeviceToHost));
        GPU_CHECK(memcmp(rows, ref->rows + r * tb, b[j].rows * tb) == 0,
                  "%s: expert %d's rows differ from the host path's", what, b[j].expert);
        GPU_CHECK(memcmp(sz, ref->sizes + r, b[j].rows * sizeof(uint32_t)) == 0,
                  "%s: expert %d's group sizes differ", what, b[j].expert);
        GPU_CHECK(b[j].grad_out == NULL && b[j].grad_in == NULL, "%s: no grad buffers", what);
        free(rows);
        free(sz);
        r += b[j].rows;
    }
    GPU_CHECK(r == ref->nrows, "%s: %zu rows, host %zu", what, r, ref->nrows);
}

static void check_dtype(const lshmoe_comm_desc_t *nccl, lshmoe_dtype_t dt, int compress)
{
    size_t tb = H * lshmoe_dtype_size(dt);
    inputs_t in;
    make_inputs(&in, dt);
    host_ref_t ref = {0};
    host_reference(&in, dt, compress, &ref);
    printf("dtype %d, compress %d, compensation %d: %zu rows for %d tokens\n", (int)dt,
           compress, layer_comp, ref.nrows, T);

    lshmoe_config_t cfg = raw_config(compress);
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_status_t st = lshmoe_ctx_create(nccl, &cfg, &ctx);
    GPU_CHECK(st == LSHMOE_OK, "nccl ctx: %s", lshmoe_status_name(st));
    if (ctx == NULL)
        return;
    GPU_CHECK(lshmoe_ctx_set_device_allocator(ctx, count_alloc, count_free, NULL) ==
              LSHMOE_OK, "hooks");
    expert_user_t u = {dt, 0};
    lshmoe_moe_t *moe = make_layer(ctx, dt, &u);
    cudaStream_t s;
    void *dx, *dy;
    char *y = malloc(T * tb);
    GPU_CUDA(cudaStreamCreate(&s));
    GPU_CUDA(cudaMalloc(&dx, T * tb));
    GPU_CUDA(cudaMalloc(&dy, T * tb));
    GPU_CUDA(cudaMemcpy(dx, in.x, T * tb, cudaMemcpyHostToDevice));
    lshmoe_moe_handle_t *h = NULL;
    GPU_CHECK(lshmoe_moe_layout(moe, T, in.idx, in.gate, &h) == LSHMOE_OK, "layout");

    int warm = 0;
    for (int pass = 0; pass < 3; pass++) {
        void *strm = pass == 2 ? NULL : (void *)s; /* pass 2: the legacy default stream */
        GPU_CUDA(cudaMemset(dy, 0xff, T * tb));
        st = lshmoe_moe_dispatch(moe, h, dx, strm);
        GPU_CHECK(st == LSHMOE_OK, "device dispatch (dtype %d, pass %d): %s", (int)dt, pass,
                  lshmoe_last_error(ctx));
        GPU_CUDA(cudaStreamSynchronize(s));
        GPU_CUDA(cudaDeviceSynchronize());
        check_batches(h, &ref, tb, "device dispatch");
        st = lshmoe_moe_combine(moe, h, dy, strm);
        GPU_CHECK(st == LSHMOE_OK, "device combine (dtype %d, pass %d): %s", (int)dt, pass,
                  lshmoe_last_error(ctx));
        GPU_CUDA(cudaDeviceSynchronize());
        GPU_CUDA(cudaMemcpy(y, dy, T * tb, cudaMemcpyDeviceToHost));
        size_t bad = 0;
        for (size_t i = 0; i < T * tb; i++)
            bad += y[i] != ref.y[i];
        GPU_CHECK(bad == 0, "dtype %d pass %d: %zu bytes of y differ from the host path's",
                  (int)dt, pass, bad);
        if (pass == 0)
            warm = hook_allocs;
    }
    GPU_CHECK(warm > 0, "the handle's device memory came from the hooks");
    GPU_CHECK(hook_allocs == warm, "warm passes allocated: %d then %d", warm, hook_allocs);
    GPU_CHECK(u.device_calls > 0, "the expert ran on device rows, with the stream");
    lshmoe_moe_stats_t stats = LSHMOE_MOE_STATS_INITIALIZER;
    GPU_CHECK(lshmoe_moe_stats_get(h, &stats) == LSHMOE_OK && stats.tokens == T &&
              stats.rows_sent == ref.nrows && stats.rows_received == ref.nrows &&
              (stats.experts_compressed > 0) == (compress != 0), "stats: %llu rows sent, "
              "%llu experts compressed", (unsigned long long)stats.rows_sent,
              (unsigned long long)stats.experts_compressed);

    /* Refusals, each with the reason in lshmoe_last_error(). */
    st = lshmoe_moe_combine(moe, h, y, s);
    GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED, "host y with a stream: %s",
              lshmoe_status_name(st));
    st = lshmoe_moe_combine(moe, h, y, NULL);
    GPU_CHECK(st == LSHMOE_ERR_INVALID_ARG, "host y after a device dispatch: %s",
              lshmoe_status_name(st));
    GPU_CHECK(strstr(lshmoe_last_error(ctx), "same memory") != NULL, "reason: %s",
              lshmoe_last_error(ctx));
    GPU_CHECK(lshmoe_moe_combine(moe, h, dy, s) == LSHMOE_OK, "combine after the refusals");
    float *dg = malloc(T * K * sizeof(float));
    st = lshmoe_moe_combine_backward(moe, h, dy, dg, s);
    GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED, "combine_backward on device: %s",
              lshmoe_status_name(st));
    st = lshmoe_moe_combine_backward(moe, h, y, dg, NULL);
    GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED, "host combine_backward of a device pass: %s",
              lshmoe_status_name(st));
    /* host x over nccl, then device y: refused, nothing written */
    GPU_CHECK(lshmoe_moe_dispatch(moe, h, in.x, NULL) == LSHMOE_OK,
              "host dispatch over nccl: %s", lshmoe_last_error(ctx));
    st = lshmoe_moe_combine(moe, h, dy, s);
    GPU_CHECK(st == LSHMOE_ERR_INVALID_ARG, "device y after a host dispatch: %s",
              lshmoe_status_name(st));
    GPU_CHECK(lshmoe_moe_combine(moe, h, y, NULL) == LSHMOE_OK, "host combine over nccl: %s",
              lshmoe_last_error(ctx));
    GPU_CHECK(memcmp(y, ref.y, T * tb) == 0, "host path over nccl equals the reference");
    free(dg);
    lshmoe_moe_handle_destroy(h);
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
    GPU_CHECK(hook_frees == hook_allocs, "every hook allocation went back: %d, %d",
              hook_allocs, hook_frees);
    cudaFree(dx);
    cudaFree(dy);
    cudaStreamDestroy(s);
    free(y);
    free(in.x);
    free(ref.y);
    free(ref.rows);
    free(ref.sizes);
}

static int hook_noop(lshmoe_moe_hook_point_t where, int expert, void *rows, size_t n,
                     void *user)
{
    (void)where, (void)expert, (void)rows, (void)n, (void)user;
    return 0;
}

/* Modes the device path does not have yet: refused before any round. */
static void check_refusals(const lshmoe_comm_desc_t *nccl)
{
    lshmoe_dtype_t dt = LSHMOE_DTYPE_BF16;
    size_t tb = H * lshmoe_dtype_size(dt);
    inputs_t in;
    make_inputs(&in, dt);
    void *dx;
    GPU_CUDA(cudaMalloc(&dx, T * tb));
    GPU_CUDA(cudaMemcpy(dx, in.x, T * tb, cudaMemcpyHostToDevice));
    /* SCALED compensation with clustering, then coded rows (int8) */
    lshmoe_config_t cfg;
    lshmoe_ctx_t *ctx;
    lshmoe_moe_t *moe;
    lshmoe_moe_handle_t *h;
    for (int mode = 0; mode < 2; mode++) {
        cfg = raw_config(1);
        if (mode == 1)
            cfg.codec = LSHMOE_CODEC_INT8;
        layer_comp = mode == 0 ? LSHMOE_COMP_SCALED : LSHMOE_UNSET_INT;
        ctx = NULL;
        GPU_CHECK(lshmoe_ctx_create(nccl, &cfg, &ctx) == LSHMOE_OK, "ctx");
        moe = ctx ? make_layer(ctx, dt, NULL) : NULL;
        h = NULL;
        if (moe != NULL && lshmoe_moe_layout(moe, T, in.idx, in.gate, &h) == LSHMOE_OK) {
            lshmoe_status_t st = lshmoe_moe_dispatch(moe, h, dx, NULL);
            GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED, "%s on device: %s",
                      mode == 0 ? "SCALED" : "int8 rows", lshmoe_status_name(st));
            GPU_CHECK(strstr(lshmoe_last_error(ctx), mode == 0 ? "SCALED" : "coded rows") !=
                      NULL, "reason: %s", lshmoe_last_error(ctx));
            lshmoe_moe_handle_destroy(h);
        }
        lshmoe_moe_destroy(moe);
        lshmoe_ctx_destroy(ctx);
    }
    layer_comp = LSHMOE_UNSET_INT;
    /* a token hook */
    cfg = raw_config(0);
    ctx = NULL;
    GPU_CHECK(lshmoe_ctx_create(nccl, &cfg, &ctx) == LSHMOE_OK, "ctx");
    moe = ctx ? make_layer(ctx, dt, NULL) : NULL;
    h = NULL;
    if (moe != NULL && lshmoe_moe_layout(moe, T, in.idx, in.gate, &h) == LSHMOE_OK) {
        lshmoe_moe_set_token_hook(moe, hook_noop, NULL);
        lshmoe_status_t st = lshmoe_moe_dispatch(moe, h, dx, NULL);
        GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED, "token hook on device: %s",
                  lshmoe_status_name(st));
        lshmoe_moe_handle_destroy(h);
    }
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
    /* a transport other than nccl */
    lshmoe_self_world_t *world = NULL;
    GPU_CHECK(lshmoe_self_world_create(1, 30.0, &world) == LSHMOE_OK, "self world");
    lshmoe_comm_desc_t d = self_desc(world);
    ctx = NULL;
    GPU_CHECK(lshmoe_ctx_create(&d, &cfg, &ctx) == LSHMOE_OK, "self ctx");
    moe = ctx ? make_layer(ctx, dt, NULL) : NULL;
    h = NULL;
    if (moe != NULL && lshmoe_moe_layout(moe, T, in.idx, in.gate, &h) == LSHMOE_OK) {
        lshmoe_status_t st = lshmoe_moe_dispatch(moe, h, dx, NULL);
        GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED, "device x over self: %s",
                  lshmoe_status_name(st));
        GPU_CHECK(strstr(lshmoe_last_error(ctx), "nccl") != NULL, "reason: %s",
                  lshmoe_last_error(ctx));
        lshmoe_moe_handle_destroy(h);
    }
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
    lshmoe_self_world_destroy(world);
    cudaFree(dx);
    free(in.x);
}

int main(void)
{
    ncclComm_t comm;
    lshmoe_comm_desc_t desc;
    int start = gpu_nccl_one_rank(&comm, &desc);
    if (start != 0)
        return start;
    lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_BF16, LSHMOE_DTYPE_FP16};
    for (int i = 0; i < 3; i++)
        check_dtype(&desc, dts[i], 0);
    for (int c = 0; c < 2; c++) { /* clustered: RESIDUAL, then NONE */
        layer_comp = c == 0 ? LSHMOE_COMP_RESIDUAL : LSHMOE_COMP_NONE;
        for (int i = 0; i < 3; i++)
            check_dtype(&desc, dts[i], 1);
    }
    layer_comp = LSHMOE_UNSET_INT;
    check_refusals(&desc);
    ncclCommDestroy(comm);
    printf("%d checks, %d failed\n", gpu_checks, gpu_failures);
    return gpu_failures ? 1 : 0;
}
