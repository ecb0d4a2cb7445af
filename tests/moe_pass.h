/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * One rank's MoE pass (create, layout, dispatch, experts, combine, and the
 * backward calls) over any context, recording what happened for the test
 * to assert afterwards: rank threads of the self transport must not call
 * CUnit, and MPI ranks must not stop before a collective the others enter.
 * A failed step ends the pass on that rank; the peers fail in the same
 * collective (LSHMOE_ERR_PEER), so nobody waits.
 */
#ifndef LSHMOE_TESTS_MOE_PASS_H
#define LSHMOE_TESTS_MOE_PASS_H

#include "lshmoe_moe.h"
#include "moe_ref.h"

typedef enum moe_hook_kind {
    MOE_HOOK_NONE = 0,
    MOE_HOOK_CAPTURE,    /* POST_RECONSTRUCT: record y_ts, change nothing   */
    MOE_HOOK_POST_X2,    /* POST_RECONSTRUCT: y_ts *= MOE_POST_SCALE, record */
    MOE_HOOK_PRE_SCALE,  /* PRE_HASH: rows *= moe_pre_scale(e)             */
    MOE_HOOK_FAIL_PRE,   /* PRE_HASH returns an error                      */
    MOE_HOOK_FAIL_POST   /* POST_RECONSTRUCT returns an error              */
} moe_hook_kind_t;

/* The token hook's view. Every call checks the documented rows: at
 * PRE_HASH the copies of this rank's tokens routed to the expert in token
 * order, at POST_RECONSTRUCT one row per such slot. */
typedef struct moe_hook_state {
    const moe_prob_t    *p;
    const moe_experts_t *ex;
    const moe_inputs_t  *in;
    moe_hook_kind_t      kind;
    float               *yslot;   /* ntok*K*H y_ts as the hook left them  */
    int                  calls_pre[MOE_MAX_E], calls_post[MOE_MAX_E];
    int                  bad;     /* calls that broke the contract        */
    char                 why[200];
} moe_hook_state_t;

/* The expert callbacks' view. */
typedef struct moe_cb_user {
    const moe_experts_t *ex;
    int                  fail_fwd, fail_bwd; /* expert whose call fails, -1 */
    int                  fwd_calls, bwd_calls;
    int                  bad;
    char                 why[200];
} moe_cb_user_t;

typedef struct moe_pass_opts {
    int             callbacks;      /* 1: expert fns registered; 0: the test
                                       fills batch->out / grad_in itself  */
    int             backward;       /* run combine_backward and
                                       dispatch_backward                  */
    int32_t         compensation;   /* lshmoe_compensation_t             */
    moe_hook_kind_t hook;
    int             fail_fwd, fail_bwd; /* -1, or an expert of this rank  */
    int             scribble_map;   /* overwrite the caller's placement
                                       map right after lshmoe_moe_create */
    int             warmup;         /* forward passes on the layer before
                                       the recorded one (callbacks only) */
    const moe_inputs_t *warm_in;    /* their inputs; NULL: the pass's own */
    int             regs;           /* 0: catch-all registration; 1: a
                                       failing catch-all, then per-expert
                                       ones; 2: the other way round       */
    int             redispatch;     /* dispatch dy first, then x, on the
                                       same handle                        */
    int             dgates_null;    /* combine_backward with dgates NULL  */
} moe_pass_opts_t;

/* opts: callbacks, backward, RESIDUAL, no hook, no failure. */
moe_pass_opts_t moe_opts_default(void);

typedef struct moe_rank_res {
    lshmoe_status_t    st;          /* first failure, or LSHMOE_OK         */
    char               step[32];    /* the call that failed                */
    char               msg[512];    /* lshmoe_last_error() after it        */
    void              *y, *dx;      /* layer dtype; 0x5a before the calls  */
    float             *dgates;
    lshmoe_moe_stats_t stats;       /* after combine                       */
    size_t             per_rank[MOE_MAX_RANKS], per_expert[MOE_MAX_E];
    int                nlocal;
    int32_t            local_ids[MOE_MAX_E];
    size_t             batch_rows[MOE_MAX_E];  /* by local index           */
    size_t             batch_slots[MOE_MAX_E]; /* sum of cluster sizes     */
    int                batch_bad;
    char               batch_why[200];
    uint64_t           cluster_sig; /* experts, rows and cluster sizes     */
    uint32_t           max_cluster; /* largest group this rank computed    */
    moe_hook_state_t   hook;
    moe_cb_user_t      cb;
} moe_rank_res_t;

/* Runs one pass of problem p on this rank's inputs. Never calls CUnit. */
void moe_run_pass(lshmoe_ctx_t *ctx, const moe_prob_t *p, const moe_experts_t *ex,
                  const moe_inputs_t *in, const moe_pass_opts_t *o, moe_rank_res_t *r);
void moe_res_free(moe_rank_res_t *r);

/*
 * Compares one rank's pass with the dense reference (compress = 0
 * semantics; pre/post: the PRE_SCALE / POST_X2 hooks were installed; bwd:
 * dgates and dx too). Returns the number of buffers that differ in any
 * byte (0 = exact) and describes the first difference in why.
 */
int moe_compare_reference(const moe_prob_t *p, const moe_experts_t *ex,
                          const moe_inputs_t *in, const moe_rank_res_t *r, int pre, int post,
                          int bwd, char *why, size_t len);

/* The context config the MoE tests use: compress as given; with
 * compression, segments of 4 tokens or more may be clustered. */
lshmoe_config_t moe_ctx_config(int compress);

/* The layer config of problem p. */
lshmoe_moe_config_t moe_layer_config(const moe_prob_t *p, int32_t compensation);

/*
 * Every rank dispatches two handles; rank `odd` then combines the second
 * while the others combine the first. st_combine is that combine's status
 * (LSHMOE_ERR_MISMATCH expected everywhere); after it every rank runs a
 * fresh forward pass whose output lands in y (layer dtype, caller-owned,
 * in->n tokens) with status st_after.
 */
typedef struct moe_mismatch_res {
    lshmoe_status_t st_combine, st_after;
    char            msg[512];
} moe_mismatch_res_t;

void moe_flow_mismatched_handles(lshmoe_ctx_t *ctx, const moe_prob_t *p,
                                 const moe_experts_t *ex, const moe_inputs_t *in, int odd,
                                 void *y, moe_mismatch_res_t *res);

#endif /* LSHMOE_TESTS_MOE_PASS_H */
