/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE passes on a 4-rank self-transport world: one thread per rank runs
 * moe_run_pass() and records; the main thread asserts afterwards (CUnit is
 * not thread-safe).
 */
#ifndef LSHMOE_TESTS_MOE_SELF_H
#define LSHMOE_TESTS_MOE_SELF_H

#include "moe_pass.h"

#define MOE_NR 4

typedef struct moe_world {
    const moe_prob_t    *p;
    const moe_experts_t *ex;
    int                  compress;        /* the context's compress       */
    moe_pass_opts_t      opts[MOE_NR];    /* per rank                     */
    moe_inputs_t         in[MOE_NR];      /* tests may change them        */
    moe_rank_res_t       res[MOE_NR];
    lshmoe_status_t      st_ctx[MOE_NR];
    int32_t              ctx_comp;        /* the context's compensation
                                             (LSHMOE_UNSET_INT: default) */
    int32_t              ctx_codec;       /* the context's codec and error */
    double               ctx_max_error;   /* budget (UNSET: default)      */
} moe_world_t;

/* Generates every rank's inputs; opts default to moe_opts_default(). */
moe_world_t *moe_world_new(const moe_prob_t *p, const moe_experts_t *ex, int compress);
/* Runs one pass on every rank (results of an earlier run are freed first).
 * Returns 0, or -1 if the threads could not run. Prints every failure. */
int moe_world_run(moe_world_t *w);
void moe_world_free(moe_world_t *w);

/* Main-thread CUnit checks over every rank (moe_check.h). */
/* Every rank matches the dense reference (pre/post hooks; bwd: dgates and
 * dx too). With identity experts, RESIDUAL and dyadic gates summing to 1
 * that holds with compression as well: moe_world_check_identity. */
void moe_world_check_reference(const moe_world_t *w, int pre, int post, int bwd);
void moe_world_check_identity(const moe_world_t *w, int pre);
/* Counts and statistics of every rank, and the sums over ranks: every row
 * sent is received; with clustering (clustered), fewer rows than slots. */
void moe_world_check_plain(const moe_world_t *w);
void moe_world_check_clustered(const moe_world_t *w);

/* Numerical tests: clustered fp32 tokens, E 8, K 2, H 64, experts
 * W = I + noise G / sqrt(H), b = 0.1 N(0, 1). */
moe_prob_t moe_prob_numeric(moe_expert_kind_t kind, size_t ntok, double noise);
/* A world with compensation, hook and backward set on every rank. */
moe_world_t *moe_world_numeric(const moe_prob_t *p, const moe_experts_t *ex, int compress,
                               int32_t comp, moe_hook_kind_t hook, int backward);
/* Copies base's warm-up passes, run on base's inputs (SCALED: the same
 * fitted rho_e in every run of a comparison). */
void moe_world_warm_like(moe_world_t *w, const moe_world_t *base);
/* Asserts that every rank finished without a hook violation; returns it. */
int moe_world_all_ok(const moe_world_t *w);
/* Did b group the tokens as a did? (rows sent and received per rank, and
 * every batch's cluster sizes) */
int moe_world_same_grouping(const moe_world_t *a, const moe_world_t *b);
/* Fewer rows than slots over all ranks: groups of several tokens formed. */
int moe_world_clusters_formed(const moe_world_t *w);
/* Sum of squares of n floats, in fp64. */
double moe_norm2(const float *a, size_t n);

#endif /* LSHMOE_TESTS_MOE_SELF_H */
