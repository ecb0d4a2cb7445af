/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The adaptive policy's choice for a call whose float tokens could be
 * encoded. It compares what the two kinds of call have cost this rank,
 * measured end to end: whole-call seconds per remote token byte, one
 * running average for encoded calls and one for plain calls. A model
 * (codec cost + wire bytes / link speed) was tried first and dropped: the
 * data round of an encoded call also absorbs the peers' encode skew, which,
 * divided by the few wire bytes, made compression look expensive even on a
 * 1 Gb/s link. End-to-end times carry that skew in both modes.
 *
 * Rules: the first encoded call is not sampled (hasher creation, first
 * touch of the buffers), so the first two calls encode; then one plain call
 * (when it moves at least ADAPT_MIN_BYTES) measures the plain cost; from
 * then on the cheaper mode wins, and now and then a call tries the other
 * one so that both estimates follow the data and the load. Each try costs
 * a slow call, so the interval doubles (ADAPT_EXPLORE_MIN up to
 * ADAPT_EXPLORE_MAX) while the tries confirm the preferred mode, and falls
 * back to the minimum when the preference flips.
 */
#include "lshmoe/adapt.h"
#include "lshmoe/common/log.h"

static void ewma(double *est, double sample)
{
    *est = *est < 0.0 ? sample : *est + ADAPT_ALPHA * (sample - *est);
}

int lshmoe_adapt_choose_plain(lshmoe_ctx_t *ctx, double remote_bytes)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    if (!a->on || remote_bytes < (double)ADAPT_MIN_BYTES || a->comp_s_per_byte < 0.0)
        return 0;
    int plain;
    if (a->plain_s_per_byte < 0.0) {
        plain = 1; /* the probe */
    } else {
        int prefer_plain = a->plain_s_per_byte < a->comp_s_per_byte;
        if (a->prefer_plain != prefer_plain) { /* the preference flipped */
            a->prefer_plain = prefer_plain;
            a->explore_every = ADAPT_EXPLORE_MIN;
        }
        plain = prefer_plain;
        if (++a->since_explore >= a->explore_every) {
            plain = !prefer_plain;
            a->since_explore = 0;
            /* if this try does not flip the preference, wait longer next time */
            if (a->explore_every < ADAPT_EXPLORE_MAX)
                a->explore_every *= 2;
        }
    }
    LSHMOE_DEBUG("rank %d adapt: encoded %.3g s/B, plain %.3g s/B: %s", ctx->rank,
                 a->comp_s_per_byte, a->plain_s_per_byte, plain ? "plain" : "encode");
    return plain;
}

void lshmoe_adapt_update(lshmoe_ctx_t *ctx, int codec_ok, int compressed,
                         double remote_bytes, double t)
{
    lshmoe_adapt_t *a = &ctx->adapt;
    if (!a->on || !codec_ok || remote_bytes < (double)ADAPT_MIN_BYTES)
        return;
    if (compressed) {
        if (a->comp_calls++ > 0)
            ewma(&a->comp_s_per_byte, t / remote_bytes);
    } else {
        ewma(&a->plain_s_per_byte, t / remote_bytes);
    }
}
