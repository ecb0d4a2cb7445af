/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The context object, private to lshmoe/. */
#ifndef LSHMOE_CTX_INT_H
#define LSHMOE_CTX_INT_H

#include "collectives/transport.h"
#include "lshmoe.h"
#include "lshmoe/codec.h"
#include "lshmoe/common/buf.h"
#include "lshmoe/common/error.h"

#define LSHMOE_CTX_MAGIC 0x4C534358u /* "LSCX": catches use of a freed or bogus handle */

/*
 * The adaptive policy's running estimates (LSHMOE_ADAPT, docs/api.md
 * "Adaptive policy"), per rank and context. Each estimate is an EWMA,
 * negative while no sample has been taken. Not reset by
 * lshmoe_stats_reset(): they describe the machine, not the counters.
 */
typedef struct lshmoe_adapt {
    int      on;               /* LSHMOE_ADAPT at context creation          */
    double   enc_s_per_byte;   /* encode seconds per token byte sent         */
    double   dec_s_per_byte;   /* decode seconds per token byte received     */
    /* Data round seconds per link byte (max of sent, received), measured
     * apart for the two kinds of call: each is the average cost at that
     * kind's own transfer size, fixed per-call costs included, which is
     * what predicting a call of that kind needs. */
    double   link_comp_s_per_byte;  /* calls whose segments were encoded  */
    double   link_plain_s_per_byte; /* plain calls of >= 64 KiB           */
    double   ratio;            /* token bytes / wire bytes, compressed calls */
    uint64_t enc_calls;        /* calls whose remote tokens were encoded     */
    uint64_t dec_calls;        /* calls that decoded a codec segment         */
    unsigned plain_streak;     /* plain-by-policy calls since the last codec */
    int      probed;           /* the one plain call that measures the plain
                                  link cost, when link_comp cannot decide,
                                  has been made                            */
} lshmoe_adapt_t;

struct lshmoe_ctx {
    uint32_t               magic;
    int                    rank;
    int                    nranks;
    lshmoe_config_t        cfg;      /* resolved: every field set, transport NULL */
    const lshmoe_tl_ops_t *tl_ops;
    void                  *tl;
    lshmoe_codec_t        *codec;
    lshmoe_stats_t         stats;
    lshmoe_adapt_t         adapt;
    char                   last_error[LSHMOE_ERRMSG_LEN];
    /* alltoallv scratch, grow-only */
    lshmoe_buf_t           send_stage;
    lshmoe_buf_t           recv_stage;
    lshmoe_buf_t           meta;     /* per-peer metadata, both directions   */
    lshmoe_buf_t           ptrs;     /* per-peer pointers and sizes          */
};

/* Resolves `user` (NULL = all unset) into a complete config: explicit
 * values are range-checked, unset ones come from LSHMOE_* or defaults. */
lshmoe_status_t lshmoe_config_resolve(const lshmoe_config_t *user,
                                      lshmoe_config_t *out);

/* Records the thread's last error message in the context and returns st. */
lshmoe_status_t lshmoe_ctx_fail(lshmoe_ctx_t *ctx, lshmoe_status_t st);

/* Is ctx a live context? */
int lshmoe_ctx_valid(const lshmoe_ctx_t *ctx);

#endif /* LSHMOE_CTX_INT_H */
