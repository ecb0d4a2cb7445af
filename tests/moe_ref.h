/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE-mode test support shared by the self-transport and MPI tests: the
 * problem (routing, gates, tokens: pure functions of seeds, so any rank can
 * recompute any other rank's data), deterministic experts, and a dense
 * single-rank reference written from the "Numerics" paragraph of
 * lshmoe_moe.h. No CUnit and no MPI in here.
 *
 * Bit-exactness rests on one rule: the expert rows that the library's hook
 * computes and the rows the reference computes come from the very same
 * function (moe_expert_fwd_rows / moe_expert_bwd_rows), which is a fixed
 * sequence of fp64 operations per output element, rounded once to fp32 and
 * once to the layer dtype.
 */
#ifndef LSHMOE_TESTS_MOE_REF_H
#define LSHMOE_TESTS_MOE_REF_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe.h"
#include "lshmoe_moe.h"

#define MOE_MAX_RANKS 64
#define MOE_MAX_E     256

typedef enum moe_data {
    MOE_X_GAUSS = 0,      /* i.i.d. N(0,1): clusters are mostly singletons */
    MOE_X_CLUSTERED = 1   /* 8 centres, noise 0.05: clusters really form   */
} moe_data_t;

typedef enum moe_route {
    MOE_ROUTE_RANDOM = 0, /* distinct experts per token, some slots dropped */
    MOE_ROUTE_AVOID = 1,  /* as RANDOM, but expert `special` gets no token  */
    MOE_ROUTE_ONE = 2,    /* slot 0 -> `special` for every token, the other
                             slots dropped                                  */
    MOE_ROUTE_DUP = 3     /* as RANDOM, but every 5th token routes its last
                             slot to the same expert as its slot 0          */
} moe_route_t;

typedef enum moe_gates {
    MOE_GATES_RANDOM = 0, /* uniform in [0.05, 1), not normalised           */
    MOE_GATES_DYADIC = 1  /* the routed slots' gates are dyadic, sum to 1   */
} moe_gates_t;

typedef enum moe_expert_kind {
    MOE_EXPERT_LINEAR = 0,   /* E_e(x) = W_e x + b_e                        */
    MOE_EXPERT_IDENTITY = 1  /* E_e(x) = x, parameter-free                  */
} moe_expert_kind_t;

typedef struct moe_prob {
    int               nranks, E, K;
    size_t            H;
    lshmoe_dtype_t    dtype;
    size_t            ntok[MOE_MAX_RANKS];   /* tokens per rank             */
    moe_data_t        data;
    moe_route_t       route;
    moe_gates_t       gates;
    int               special;        /* expert for AVOID / ONE            */
    int               drop_all_rank;  /* this rank drops every slot (-1)   */
    uint64_t          seed;
    moe_expert_kind_t kind;
    double            w_diag, w_noise, b_scale; /* W = diag*I + noise*G/sqrt(H) */
    int               scalar_experts; /* instead: W_e = moe_scalar(e) I, b = 0 */
    const int32_t    *expert_rank;    /* placement map or NULL             */
} moe_prob_t;

/* A problem with every rank holding `ntok` tokens, random routing and
 * gates, Gaussian tokens, general linear experts, contiguous placement. */
moe_prob_t moe_prob_default(int nranks, int E, int K, size_t H, lshmoe_dtype_t dtype,
                            size_t ntok);

/* Clustered fp32 tokens (8 centres, noise 0.05), identity experts, dyadic
 * gates: with RESIDUAL the compressed output is the input exactly. */
moe_prob_t moe_prob_identity_clustered(int nranks);

/* Bytes of one token in the layer dtype. */
size_t moe_tb(const moe_prob_t *p);
/* Owner rank of expert e (the map, else contiguous blocks). */
int moe_owner(const moe_prob_t *p, int e);

/* One rank's inputs. x and dy are in the layer dtype. */
typedef struct moe_inputs {
    size_t   n;
    void    *x, *dy;
    int32_t *idx;
    float   *w;
} moe_inputs_t;

/* Allocates and fills rank `rank`'s inputs (buffers have at least one
 * byte, so ntokens 0 still gives non-NULL token pointers). */
void moe_inputs_gen(const moe_prob_t *p, int rank, moe_inputs_t *in);
void moe_inputs_free(moe_inputs_t *in);

/* ------------------------------------------------------------------------ */
/* Experts                                                                   */
/* ------------------------------------------------------------------------ */

typedef struct moe_experts {
    moe_expert_kind_t kind;
    int               E;
    size_t            H;
    lshmoe_dtype_t    dtype;
    float            *W;   /* E x H x H, row-major (out, in)              */
    float            *b;   /* E x H                                       */
} moe_experts_t;

moe_experts_t *moe_experts_new(const moe_prob_t *p);
/* 1/2, 1/4 or 1/8 by e mod 3: powers of two, so that every product with
 * them is exact. */
double moe_scalar(int e);
void moe_experts_free(moe_experts_t *ex);

/* out = E_e(in) for `rows` rows of the layer dtype. */
void moe_expert_fwd_rows(const moe_experts_t *ex, int e, const void *in, void *out,
                         size_t rows);
/* grad_in = W_e^T grad_out (identity: a copy), layer dtype. */
void moe_expert_bwd_rows(const moe_experts_t *ex, int e, const void *grad_out,
                         void *grad_in, size_t rows);
/* Norms for error bounds: ||W_e - diag I||_F, max row and column abs sums
 * of W_e (identity: 1). */
double moe_expert_frob_minus(const moe_experts_t *ex, int e, double diag);
double moe_expert_row_abs(const moe_experts_t *ex, int e);
double moe_expert_col_abs(const moe_experts_t *ex, int e);

/* ------------------------------------------------------------------------ */
/* Reference                                                                 */
/* ------------------------------------------------------------------------ */

/* What a token hook does to the rows, for the reference to mirror. */
float moe_pre_scale(int e);    /* PRE_HASH hook: rows *= 1 (even e) or 2 (odd) */
#define MOE_POST_SCALE 2.0f    /* POST_RECONSTRUCT hook: rows *= 2           */
/* One token row (layer dtype) as the PRE_HASH hook leaves it for expert e;
 * src and dst may not overlap. */
void moe_pre_scale_row(const moe_experts_t *ex, int e, const void *src, void *dst);

/*
 * Dense reference of one rank's forward with compress = 0 (every group one
 * token). pre: apply moe_pre_scale to the expert inputs; post: scale y by
 * MOE_POST_SCALE. Writes y (layer dtype) and, if yslot is not NULL, the
 * fp32 y_ts of every slot (ntok*K*H; dropped slots 0) after the hooks.
 */
void moe_ref_forward(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                     int pre, int post, void *y, float *yslot);

/* Dense reference backward (compress = 0): dgates from yslot (what the
 * forward left after the hooks), dx through the experts' backward. */
void moe_ref_backward(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                      const float *yslot, float *dgates, void *dx);

/* out_t = sum over slots of g * yslot, fp64 in slot order, rounded to fp32
 * then to the layer dtype: the library's combine given its y_ts. */
void moe_ref_combine_slots(const moe_prob_t *p, const moe_inputs_t *in, const float *yslot,
                           void *y);

/* Index of the first differing byte of two buffers of n bytes, or -1. */
long moe_first_diff(const void *a, const void *b, size_t n);

/* Routed (non-dropped) slots of one rank, per expert / per owner rank. */
void moe_count_routes(const moe_prob_t *p, const moe_inputs_t *in, size_t *per_rank,
                      size_t *per_expert);
/* Routed slots per expert over every rank (E entries), from the generated
 * routing: any rank can compute it. */
void moe_expert_slots_all(const moe_prob_t *p, size_t *per_expert);

#endif /* LSHMOE_TESTS_MOE_REF_H */
