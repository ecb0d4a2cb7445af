/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The preload's one decision: should this intercepted all-to-all be encoded,
 * and how? Pure functions over the call's shape, so the MPI shim, the NCCL
 * shim and the unit tests share them.
 *
 * A decision is taken in two steps because ranks see different things: each
 * rank computes a local vote (pl_policy_vote) from its own counts; the MPI
 * shim combines the votes of all ranks with one bitwise-OR allreduce; and
 * pl_policy_decide() turns the combined vote into the action, which is then
 * the same on every rank.
 */
#ifndef LSHMOE_PRELOAD_POLICY_H
#define LSHMOE_PRELOAD_POLICY_H

#include <stddef.h>
#include <stdint.h>

/* Why a call passed through. The order fixes which reason a call is
 * counted under when several ranks pass for different reasons (lowest). */
typedef enum pl_reason {
    PL_REASON_NONE = 0,       /* not passed through                        */
    PL_REASON_DISABLED,       /* LSHMOE_DISABLE=1                          */
    PL_REASON_IN_PLACE,       /* MPI_IN_PLACE                              */
    PL_REASON_INTERCOMM,      /* intercommunicator                         */
    PL_REASON_DTYPE,          /* not a float type the codec encodes        */
    PL_REASON_DERIVED,        /* derived datatype (even of floats)         */
    PL_REASON_SMALL,          /* below LSHMOE_PRELOAD_MIN_BYTES on a rank  */
    PL_REASON_CONFIG,         /* ranks have different LSHMOE_HIDDEN lists,
                                 or a preload variable is malformed        */
    PL_REASON_NO_HIDDEN,      /* no token size known (LSHMOE_HIDDEN unset) */
    PL_REASON_NOT_MULTIPLE,   /* counts/displacements not multiples of any
                                 token size on some rank                   */
    PL_REASON_NO_CODEC,       /* no device codec (NCCL, this build)        */
    PL_REASON_ADAPT,          /* lshmoe's adaptive policy sent it plain    */
    PL_REASON_CTX_FAILED,     /* the lshmoe context could not be created   */
    PL_REASON_ERROR,          /* lshmoe failed; the plain call was replayed */
    PL_REASON_COUNT
} pl_reason_t;

/* Short name for the stats line ("in-place", "dtype", ...). */
const char *pl_reason_name(pl_reason_t r);

#define PL_MAX_HIDDEN 16  /* token sizes LSHMOE_HIDDEN may list */

/*
 * Rows of the row path: a float buffer whose token size is unknown is cut
 * into rows of this many elements. 128 is FP8's scale block and four of
 * int4/int4e/int2's (32), so those formats code every element exactly as
 * they would inside any token whose size is a multiple of 128; int8's one
 * scale per row becomes one per 128 elements. A shorter row would add
 * scale bytes, a longer one more zero padding at the end of each
 * segment whose count is not a multiple of it.
 */
#define PL_ROW_BLOCK 128

typedef struct pl_policy {
    int      disabled;               /* LSHMOE_DISABLE                        */
    int      config_error;           /* a preload variable was malformed      */
    size_t   min_bytes;              /* LSHMOE_PRELOAD_MIN_BYTES              */
    int      nhidden;                /* entries in hidden[]                   */
    size_t   hidden[PL_MAX_HIDDEN];  /* token sizes in elements, in the order
                                        given (the first that fits wins)     */
    int      row_mode;               /* codec mode of the row path
                                        (lshmoe_codec_mode_t), -1: none      */
} pl_policy_t;

/* The row path's codec mode for an LSHMOE_CODEC value: a row format keeps
 * its mode; budget and every LSH mode become budget-rows (the budget
 * ladder without clustering); native gives -1 (nothing lossy: no row
 * path). */
int pl_policy_row_mode(int codec);

/* The element kind of a buffer's type signature, as the shim classified it. */
typedef enum pl_kind {
    PL_KIND_FP32 = 0,     /* predefined 32-bit float                         */
    PL_KIND_FP32_DERIVED, /* derived type whose signature is only fp32      */
    PL_KIND_OTHER         /* integers, fp64, mixed, ...: never encoded       */
} pl_kind_t;

/* One rank's view of an all-to-all(v); counts and displacements are in
 * elements (MPI semantics), one entry per peer. */
typedef struct pl_shape {
    int        nranks;
    int        rank;          /* this rank: its own segment never travels */
    pl_kind_t  kind;
    size_t     elem_size;
    const int *send_counts, *send_displs, *recv_counts, *recv_displs;
} pl_shape_t;

/* A vote: bit (1 << reason) for every reason this rank passes, and bit i of
 * misfit for every hidden[i] that does not divide this rank's counts and
 * displacements. Votes combine with bitwise OR (four uint32, one
 * allreduce). The fingerprint of the settings the decision depends on (the
 * token-size list and the row path's mode) travels as itself and as its
 * complement: after the OR, the settings agree on every rank exactly when
 * fp == ~fp_not (OR and AND of the fingerprints are equal). */
typedef struct pl_vote {
    uint32_t reasons;
    uint32_t misfit;
    uint32_t fp;
    uint32_t fp_not;
} pl_vote_t;

typedef enum pl_action {
    PL_ACTION_PASS = 0,   /* plain call, byte-exact                          */
    PL_ACTION_LSH,        /* lshmoe_alltoallv with hidden = token size, the
                             codec LSHMOE_CODEC names                        */
    PL_ACTION_ROWS        /* no token size fits: rows of PL_ROW_BLOCK
                             elements in pol->row_mode (no clustering)       */
} pl_action_t;

typedef struct pl_decision {
    pl_action_t action;
    pl_reason_t reason;   /* when PASS                                      */
    size_t      hidden;   /* when LSH: the token size; ROWS: PL_ROW_BLOCK   */
} pl_decision_t;

/* This rank's vote for a call of this shape (only meaningful for the
 * FP32 kinds; the caller passes other kinds through without voting).
 * shape NULL: the caller could not describe the call (out of memory); the
 * vote then carries PL_REASON_ERROR so that no rank encodes. */
pl_vote_t pl_policy_vote(const pl_policy_t *pol, const pl_shape_t *shape);

/* The action for the combined (OR-ed) votes of all ranks. */
pl_decision_t pl_policy_decide(const pl_policy_t *pol, pl_vote_t all);

/* Parses LSHMOE_HIDDEN's text ("100" or "100,768,1024") into pol->hidden.
 * Returns 0, or -1 with a message in err (err_len bytes) on bad text. */
int pl_policy_parse_hidden(pl_policy_t *pol, const char *text, char *err, size_t err_len);

#endif /* LSHMOE_PRELOAD_POLICY_H */
