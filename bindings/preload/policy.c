/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "bindings/preload/policy.h"
#include "lshmoe.h"

const char *pl_reason_name(pl_reason_t r)
{
    static const char *const names[PL_REASON_COUNT] = {
        [PL_REASON_NONE] = "none",
        [PL_REASON_DISABLED] = "disabled",
        [PL_REASON_IN_PLACE] = "in-place",
        [PL_REASON_INTERCOMM] = "intercomm",
        [PL_REASON_DTYPE] = "dtype",
        [PL_REASON_DERIVED] = "derived-type",
        [PL_REASON_SMALL] = "small",
        [PL_REASON_CONFIG] = "config-mismatch",
        [PL_REASON_NO_HIDDEN] = "no-token-size",
        [PL_REASON_NOT_MULTIPLE] = "not-multiple",
        [PL_REASON_NO_CODEC] = "no-device-codec",
        [PL_REASON_ADAPT] = "adaptive-plain",
        [PL_REASON_CTX_FAILED] = "context-failed",
        [PL_REASON_ERROR] = "error",
    };
    return (unsigned)r < PL_REASON_COUNT ? names[r] : "?";
}

/* 1 if h divides every count and displacement of one direction. */
static int fits(size_t h, int n, const int *counts, const int *displs)
{
    for (int p = 0; p < n; p++)
        if ((size_t)counts[p] % h != 0 || (size_t)displs[p] % h != 0)
            return 0;
    return 1;
}

int pl_policy_row_mode(int codec)
{
    switch (codec) {
    case LSHMOE_CODEC_NATIVE:
        return -1;
    case LSHMOE_CODEC_FP8:
    case LSHMOE_CODEC_INT8:
    case LSHMOE_CODEC_INT4:
    case LSHMOE_CODEC_INT4E:
    case LSHMOE_CODEC_INT2:
    case LSHMOE_CODEC_BUDGET_ROWS:
        return codec;
    default:  /* budget and the LSH modes: clustering needs tokens */
        return LSHMOE_CODEC_BUDGET_ROWS;
    }
}

static uint32_t fnv_u64(uint32_t h, uint64_t v)
{
    for (int b = 0; b < 8; b++)
        h = (h ^ (uint32_t)((v >> (8 * b)) & 0xff)) * 16777619u;
    return h;
}

/* FNV-1a over the token-size list and the row path's mode. */
static uint32_t settings_fingerprint(const pl_policy_t *pol)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < pol->nhidden; i++)
        h = fnv_u64(h, pol->hidden[i]);
    return fnv_u64(h, (uint64_t)(int64_t)pol->row_mode);
}

pl_vote_t pl_policy_vote(const pl_policy_t *pol, const pl_shape_t *s)
{
    uint32_t fp = settings_fingerprint(pol);
    pl_vote_t v = {0, 0, fp, ~fp};
    if (pol->config_error)
        v.reasons |= 1u << PL_REASON_CONFIG;
    if (s == NULL) {             /* the caller could not describe the call */
        v.reasons |= 1u << PL_REASON_ERROR;
        return v;
    }
    if (s->kind == PL_KIND_FP32_DERIVED)
        v.reasons |= 1u << PL_REASON_DERIVED;
    else if (s->kind != PL_KIND_FP32)
        v.reasons |= 1u << PL_REASON_DTYPE;

    /* What this rank sends to other ranks (its own segment never travels). */
    size_t bytes = 0;
    for (int p = 0; p < s->nranks; p++)
        if (p != s->rank)
            bytes += (size_t)s->send_counts[p] * s->elem_size;
    if (bytes < pol->min_bytes)
        v.reasons |= 1u << PL_REASON_SMALL;

    for (int i = 0; i < pol->nhidden; i++) {
        size_t h = pol->hidden[i];
        if (!fits(h, s->nranks, s->send_counts, s->send_displs) ||
            !fits(h, s->nranks, s->recv_counts, s->recv_displs))
            v.misfit |= 1u << i;
    }
    return v;
}

pl_decision_t pl_policy_decide(const pl_policy_t *pol, pl_vote_t all)
{
    pl_decision_t d = {PL_ACTION_PASS, PL_REASON_NONE, 0};
    if (pol->disabled) {
        d.reason = PL_REASON_DISABLED;
        return d;
    }
    if (all.fp != ~all.fp_not)
        all.reasons |= 1u << PL_REASON_CONFIG;
    if (all.reasons != 0) {
        for (int r = 1; r < PL_REASON_COUNT; r++)
            if (all.reasons & (1u << r)) {
                d.reason = (pl_reason_t)r;
                return d;
            }
    }
    for (int i = 0; i < pol->nhidden; i++)
        if (!(all.misfit & (1u << i))) {
            d.action = PL_ACTION_LSH;
            d.hidden = pol->hidden[i];
            return d;
        }
    /* No token size fits every rank: rows need none (the fingerprint says
     * every rank has the same row mode). */
    if (pol->row_mode >= 0) {
        d.action = PL_ACTION_ROWS;
        d.hidden = PL_ROW_BLOCK;
        return d;
    }
    d.reason = pol->nhidden == 0 ? PL_REASON_NO_HIDDEN : PL_REASON_NOT_MULTIPLE;
    return d;
}

int pl_policy_parse_hidden(pl_policy_t *pol, const char *text, char *err, size_t err_len)
{
    pol->nhidden = 0;
    const char *c = text;
    while (*c != '\0') {
        char *end;
        errno = 0;
        long long v = strtoll(c, &end, 10);
        if (errno != 0 || end == c || v < 1 || v > (1 << 24) ||
            (*end != ',' && *end != '\0')) {
            snprintf(err, err_len, "LSHMOE_HIDDEN: '%s' is not a comma-separated list "
                     "of token sizes 1..16777216", text);
            return -1;
        }
        if (pol->nhidden == PL_MAX_HIDDEN) {
            snprintf(err, err_len, "LSHMOE_HIDDEN: more than %d token sizes in '%s'",
                     PL_MAX_HIDDEN, text);
            return -1;
        }
        pol->hidden[pol->nhidden++] = (size_t)v;
        c = *end == ',' ? end + 1 : end;
    }
    return 0;
}
