/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The MoE dispatch payload parser against a hostile peer. On a self world
 * of two ranks, rank 0 calls lshmoe_moe_dispatch() as usual; rank 1 plays
 * the same two rounds by hand on the transport, with a correct metadata
 * record and a forged payload: a plausible one (row counts with and
 * without the RAW flag, row formats, rows, group sizes), then randomly mutated bytes
 * and lengths. Rank 0 must return LSHMOE_OK (the forgery is consistent:
 * its batches are then what it describes) or LSHMOE_ERR_CORRUPT, never
 * crash or read past the payload (run under AddressSanitizer in CI).
 * Seeds are fixed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe/ctx_int.h"
#include "lshmoe/meta.h"
#include "lshmoe_moe.h"
#include "testutil.h"

#define NEXP   4   /* experts 0, 1 on rank 0; 2, 3 on rank 1 */
#define HID    8
#define NTOK   16
#define ITERS  400

typedef struct forge_world {
    int             ok, corrupt, other;
    lshmoe_status_t other_st;
} forge_world_t;

static lshmoe_moe_t *make_layer(lshmoe_ctx_t *ctx)
{
    lshmoe_moe_config_t mc = LSHMOE_MOE_CONFIG_INITIALIZER;
    mc.num_experts = NEXP;
    mc.topk = 1;
    mc.dtype = LSHMOE_DTYPE_FP32;
    mc.hidden = HID;
    lshmoe_moe_t *moe = NULL;
    CU_ASSERT_EQUAL(lshmoe_moe_create(ctx, &mc, &moe), LSHMOE_OK);
    return moe;
}

/* A payload for a receiver with 2 local experts: u32 counts (maybe RAW),
 * u8 row formats (native, or int8: an fp32 scale and HID codes), padded to
 * 16, each expert's rows, a u32 size per row of non-RAW experts; then 0..3
 * random byte mutations and maybe a length change. */
#define PREFIX    16
#define FMT_INT8  2   /* LSHMOE_QM_INT8 */
static size_t forge_payload(uint64_t it, uint8_t *buf, size_t cap)
{
    uint32_t c[2];
    uint8_t fmt[2];
    size_t n[2], sized = 0;
    memset(buf, 0, cap);
    for (int j = 0; j < 2; j++) {
        n[j] = (size_t)(lt_hash64(it, (uint64_t)j) % 5);
        int raw = (lt_hash64(it, 10u + (uint64_t)j) & 1) != 0;
        fmt[j] = (lt_hash64(it, 20u + (uint64_t)j) & 1) != 0 ? FMT_INT8 : 0;
        c[j] = (uint32_t)n[j] | (raw ? 0x80000000u : 0);
        sized += raw ? 0 : n[j];
    }
    memcpy(buf, c, sizeof c);
    memcpy(buf + sizeof c, fmt, sizeof fmt);
    size_t len = PREFIX;
    for (int j = 0; j < 2; j++)
        for (size_t r = 0; r < n[j]; r++) {
            if (fmt[j] == FMT_INT8) {
                float scale = 0.01f * (float)(1 + lt_hash64(it, 50 + r) % 100);
                memcpy(buf + len, &scale, 4);
                for (size_t k = 0; k < HID; k++)
                    buf[len + 4 + k] = (uint8_t)(lt_hash64(it, 200 + r * HID + k) % 255);
                len += 4 + HID;
            } else {
                for (size_t k = 0; k < HID; k++) {
                    float v = (float)(lt_hash64(it, 100 + r * HID + k) % 1000) / 100.0f;
                    memcpy(buf + len + 4 * k, &v, 4);
                }
                len += 4 * HID;
            }
        }
    for (size_t r = 0; r < sized; r++) {
        uint32_t s = 1 + (uint32_t)(lt_hash64(it, 5000 + r) % 3);
        memcpy(buf + len, &s, 4);
        len += 4;
    }
    int nmut = (int)(lt_hash64(0xBAD, it) % 4);
    for (int m = 0; m < nmut; m++) {
        uint64_t r = lt_hash64(0xBAE, it * 4 + (uint64_t)m);
        buf[(r >> 8) % (len + 8 < cap ? len + 8 : cap)] = (uint8_t)(r >> 40);
    }
    uint64_t how = lt_hash64(0xBAF, it) % 8;
    if (how == 0 && len >= 4)
        len -= 4;
    else if (how == 1)
        len += 4;
    return len < cap ? len : cap;
}

static void honest_rank(lshmoe_ctx_t *ctx, forge_world_t *w)
{
    lshmoe_moe_t *moe = make_layer(ctx);
    if (moe == NULL)
        return;
    float x[NTOK * HID];
    int32_t idx[NTOK];
    float gate[NTOK];
    for (int t = 0; t < NTOK; t++) {
        idx[t] = t % NEXP;
        gate[t] = 1.0f;
        for (int k = 0; k < HID; k++)
            x[t * HID + k] = (float)(t % 3) + (float)k * 0.1f;
    }
    for (int it = 0; it < ITERS; it++) {
        lshmoe_moe_handle_t *h = NULL;
        CU_ASSERT_EQUAL(lshmoe_moe_layout(moe, NTOK, idx, gate, &h), LSHMOE_OK);
        lshmoe_status_t st = lshmoe_moe_dispatch(moe, h, x, NULL);
        if (st == LSHMOE_OK)
            w->ok++;
        else if (st == LSHMOE_ERR_CORRUPT)
            w->corrupt++;
        else {
            w->other++;
            w->other_st = st;
        }
        lshmoe_moe_handle_destroy(h);
    }
    lshmoe_moe_destroy(moe);
}

/* Rank 1: both rounds of a dispatch by hand, with a forged payload. */
static void hostile_rank(lshmoe_ctx_t *ctx)
{
    lshmoe_moe_t *moe = make_layer(ctx);
    if (moe == NULL)
        return;
    static uint8_t payload[4096], recv[1 << 16];
    for (int it = 0; it < ITERS; it++) {
        size_t len = forge_payload((uint64_t)it, payload, sizeof payload);
        lshmoe_meta_t out[2], in[2];
        for (int p = 0; p < 2; p++) {
            out[p] = lshmoe_meta_header(LSHMOE_COLL_MOE_DISPATCH, (uint64_t)it + 1,
                                        LSHMOE_DTYPE_FP32, HID, LSHMOE_OK);
            out[p].bytes = p == 0 ? len : 0;
        }
        if (ctx->tl_ops->alltoall(ctx->tl, out, sizeof out[0], in) != LSHMOE_OK)
            break;
        size_t got = (size_t)in[0].bytes;
        const void *sp[2] = {payload, NULL};
        size_t sb[2] = {len, 0}, rb[2] = {got <= sizeof recv ? got : 0, 0};
        void *rp[2] = {recv, NULL};
        if (ctx->tl_ops->alltoallv(ctx->tl, sp, sb, rp, rb, NULL) != LSHMOE_OK)
            break;
    }
    lshmoe_moe_destroy(moe);
}

static void forge_rank(lt_rank_ctx_t *rc)
{
    forge_world_t *w = rc->arg;
    lshmoe_comm_desc_t d = lt_self_desc(rc);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.compress = 0; /* rank 0's own payload: rows as they are */
    lshmoe_ctx_t *ctx = NULL;
    if (lshmoe_ctx_create(&d, &cfg, &ctx) != LSHMOE_OK) {
        w->other++;
        return;
    }
    if (rc->rank == 0)
        honest_rank(ctx, w);
    else
        hostile_rank(ctx);
    lshmoe_ctx_destroy(ctx);
}

static void test_moe_forge_dispatch_payloads(void)
{
    forge_world_t w = {0};
    CU_ASSERT_EQUAL_FATAL(lt_run_ranks(2, 60.0, forge_rank, &w), 0);
    CU_ASSERT_EQUAL(w.other, 0);
    if (w.other)
        fprintf(stderr, "unexpected status %s\n", lshmoe_status_name(w.other_st));
    CU_ASSERT_EQUAL(w.ok + w.corrupt, ITERS);
    /* Both outcomes occur: the forgeries reach the parser's checks and its
     * success path alike. */
    CU_ASSERT(w.ok > 0);
    CU_ASSERT(w.corrupt > 0);
}

static const lt_test_t tests[] = {
    {"test_moe_forge_dispatch_payloads", test_moe_forge_dispatch_payloads},
};

LT_MAIN("moe_forge", tests)
