/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The adaptive policy of lshmoe_alltoallv (LSHMOE_ADAPT, docs/api.md
 * "Adaptive policy"): per call, should this rank's float segments travel
 * plain instead of encoded? Private to lshmoe/; the state lives in the
 * context (lshmoe_adapt_t, ctx_int.h). Not thread-safe: one call at a
 * time per context, like the all-to-all itself.
 */
#ifndef LSHMOE_ADAPT_H
#define LSHMOE_ADAPT_H

#include "lshmoe/ctx_int.h"

/* 1 = send this call's segments plain. `remote_bytes`: token bytes this
 * rank sends to the other ranks in the call. */
int lshmoe_adapt_choose_plain(lshmoe_ctx_t *ctx, double remote_bytes);

/* Feeds the policy from a successful call; `codec_ok`: its tokens could
 * have been encoded, `compressed`: they were, `t`: the call's wall time
 * on this rank. */
void lshmoe_adapt_update(lshmoe_ctx_t *ctx, int codec_ok, int compressed,
                         double remote_bytes, double t);

#endif /* LSHMOE_ADAPT_H */
