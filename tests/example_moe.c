/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode from start to end: 4 ranks (threads of one process, the self
 * transport), 16 experts, top-2 routing, one linear expert per id. This
 * file is the example in docs/api.md ("MoE mode: a complete example");
 * a test builds and runs it, and another checks that the two match.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include <lshmoe.h>
#include <lshmoe_moe.h>

#define NR      4
#define EXPERTS 16
#define TOPK    2
#define HIDDEN  64
#define TOKENS  512

/* Expert e: out = s_e * in, with s_e = 1 + e / 16 (a stand-in for an FFN). */
static float scale_of(int e) { return 1.0f + (float)e / 16.0f; }

static int expert_fwd(int e, const void *in, void *out, size_t rows, void *user,
                      void *stream)
{
    (void)user, (void)stream;
    for (size_t i = 0; i < rows * HIDDEN; i++)
        ((float *)out)[i] = scale_of(e) * ((const float *)in)[i];
    return 0;
}

static int expert_bwd(int e, const void *in, const void *grad_out, void *grad_in,
                      size_t rows, void *user, void *stream)
{
    (void)in, (void)user, (void)stream;
    for (size_t i = 0; i < rows * HIDDEN; i++)
        ((float *)grad_in)[i] = scale_of(e) * ((const float *)grad_out)[i];
    return 0;
}

typedef struct rank_arg {
    lshmoe_self_world_t *world;
    int                  rank;
    int                  failed;
} rank_arg_t;

#define CHECK(call)                                                          \
    do {                                                                     \
        lshmoe_status_t st_ = (call);                                        \
        if (st_ != LSHMOE_OK) {                                              \
            fprintf(stderr, "rank %d: %s: %s\n", a->rank,                    \
                    lshmoe_status_name(st_), lshmoe_last_error(ctx));        \
            a->failed = 1;                                                   \
            goto out;                                                        \
        }                                                                    \
    } while (0)

static void *rank_main(void *p)
{
    rank_arg_t *a = p;
    lshmoe_ctx_t *ctx = NULL;
    lshmoe_moe_t *moe = NULL;
    lshmoe_moe_handle_t *h = NULL;
    float *x = malloc(sizeof(float) * TOKENS * HIDDEN * 4);
    float *y = x + TOKENS * HIDDEN, *dy = y + TOKENS * HIDDEN, *dx = dy + TOKENS * HIDDEN;
    int32_t idx[TOKENS * TOPK];
    float gate[TOKENS * TOPK], dgate[TOKENS * TOPK];

    /* Tokens: 32 distinct patterns, slightly perturbed; routing: two
     * experts per pattern, gates 0.75 / 0.25. */
    for (int t = 0; t < TOKENS; t++) {
        int pattern = (t * 7 + a->rank) % 32;
        for (int d = 0; d < HIDDEN; d++)
            x[t * HIDDEN + d] = (float)((pattern * 31 + d * 17) % 64) / 32.0f - 1.0f +
                                0.001f * (float)((t + d) % 5);
        idx[t * TOPK] = pattern % EXPERTS;
        idx[t * TOPK + 1] = (pattern + 5) % EXPERTS;
        gate[t * TOPK] = 0.75f;
        gate[t * TOPK + 1] = 0.25f;
    }

    lshmoe_comm_desc_t comm = LSHMOE_COMM_DESC_INITIALIZER;
    comm.kind = LSHMOE_COMM_SELF;
    comm.native = a->world;
    comm.rank = a->rank;
    comm.nranks = NR;
    CHECK(lshmoe_ctx_create(&comm, NULL, &ctx));

    lshmoe_moe_config_t mc = LSHMOE_MOE_CONFIG_INITIALIZER;
    mc.num_experts = EXPERTS; /* 4 per rank, contiguous */
    mc.topk = TOPK;
    mc.dtype = LSHMOE_DTYPE_FP32;
    mc.hidden = HIDDEN;
    CHECK(lshmoe_moe_create(ctx, &mc, &moe));
    CHECK(lshmoe_moe_set_expert(moe, LSHMOE_MOE_ALL_EXPERTS, expert_fwd, expert_bwd, NULL));

    /* Forward: layout, dispatch (centroids travel), combine (the experts
     * run inside it, then outputs come back with residual compensation). */
    CHECK(lshmoe_moe_layout(moe, TOKENS, idx, gate, &h));
    CHECK(lshmoe_moe_dispatch(moe, h, x, NULL));
    CHECK(lshmoe_moe_combine(moe, h, y, NULL));

    /* Backward of the loss sum(y): dy = 1. */
    for (int i = 0; i < TOKENS * HIDDEN; i++)
        dy[i] = 1.0f;
    CHECK(lshmoe_moe_combine_backward(moe, h, dy, dgate, NULL));
    CHECK(lshmoe_moe_dispatch_backward(moe, h, dx, NULL));

    lshmoe_moe_stats_t s = LSHMOE_MOE_STATS_INITIALIZER;
    CHECK(lshmoe_moe_stats_get(h, &s));
    /* Rows sent and computed, bytes, and the centroids' error against
     * the tokens they stand for. */
    printf("rank %d: %llu slots -> %llu rows sent, experts computed %llu rows for %llu "
           "slots, dispatch %llu of %llu remote bytes, centroid error %.4f, "
           "dx[0] %.4f\n", a->rank, (unsigned long long)s.slots,
           (unsigned long long)s.rows_sent, (unsigned long long)s.rows_received,
           (unsigned long long)s.slots_received, (unsigned long long)s.bytes_remote_dispatch,
           (unsigned long long)s.bytes_remote_plain, s.centroid_rel_error, (double)dx[0]);
    if (s.rows_sent >= s.slots) { /* the data is built to cluster */
        fprintf(stderr, "rank %d: nothing was grouped\n", a->rank);
        a->failed = 1;
    }
out:
    lshmoe_moe_handle_destroy(h);
    lshmoe_moe_destroy(moe);
    lshmoe_ctx_destroy(ctx);
    free(x);
    return NULL;
}

int main(void)
{
    lshmoe_self_world_t *world;
    if (lshmoe_self_world_create(NR, 60.0, &world) != LSHMOE_OK)
        return 1;
    pthread_t th[NR];
    rank_arg_t args[NR];
    for (int r = 0; r < NR; r++) {
        args[r] = (rank_arg_t){.world = world, .rank = r};
        pthread_create(&th[r], NULL, rank_main, &args[r]);
    }
    int failed = 0;
    for (int r = 0; r < NR; r++) {
        pthread_join(th[r], NULL);
        failed |= args[r].failed;
    }
    lshmoe_self_world_destroy(world);
    return failed;
}
