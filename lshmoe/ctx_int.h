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

struct lshmoe_ctx {
    uint32_t               magic;
    int                    rank;
    int                    nranks;
    lshmoe_config_t        cfg;      /* resolved: every field set, transport NULL */
    const lshmoe_tl_ops_t *tl_ops;
    void                  *tl;
    lshmoe_codec_t        *codec;
    lshmoe_stats_t         stats;
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
