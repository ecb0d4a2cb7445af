/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdio.h>

#include "lshmoe/common/error.h"
#include "lshmoe/meta.h"

lshmoe_meta_t lshmoe_meta_header(lshmoe_coll_t coll, uint64_t seq, lshmoe_dtype_t dtype,
                                 uint64_t hidden, lshmoe_status_t status)
{
    return (lshmoe_meta_t){.magic = LSHMOE_META_MAGIC, .coll = (uint32_t)coll, .seq = seq,
                           .dtype = (int32_t)dtype, .status = (int32_t)status,
                           .hidden = hidden};
}

const char *lshmoe_coll_name(uint32_t coll)
{
    switch (coll) {
    case LSHMOE_COLL_ALLTOALLV: return "alltoallv";
    case LSHMOE_COLL_MOE_DISPATCH: return "moe dispatch";
    case LSHMOE_COLL_MOE_COMBINE: return "moe combine";
    case LSHMOE_COLL_MOE_COMBINE_BWD: return "moe combine_backward";
    case LSHMOE_COLL_MOE_DISPATCH_BWD: return "moe dispatch_backward";
    default: return "an unknown collective";
    }
}

/* "alltoallv call #3" or "moe combine of dispatch #4". */
static void describe(const lshmoe_meta_t *m, char *buf, size_t len)
{
    if (m->coll == LSHMOE_COLL_ALLTOALLV)
        snprintf(buf, len, "alltoallv call #%llu", (unsigned long long)m->seq);
    else if (m->coll == LSHMOE_COLL_MOE_DISPATCH)
        snprintf(buf, len, "moe dispatch #%llu", (unsigned long long)m->seq);
    else
        snprintf(buf, len, "%s of dispatch #%llu", lshmoe_coll_name(m->coll),
                 (unsigned long long)m->seq);
}

static lshmoe_status_t mismatch(const lshmoe_meta_t *in, int p)
{
    char a[96], b[96];
    describe(&in[0], a, sizeof a);
    describe(&in[p], b, sizeof b);
    return lshmoe_error(LSHMOE_ERR_MISMATCH, "rank 0 called %s while rank %d called %s: "
                        "every rank must make the same collective call; nothing was "
                        "exchanged", a, p, b);
}

lshmoe_status_t lshmoe_meta_check(const lshmoe_meta_t *in, int nranks, int check_seq)
{
    for (int p = 0; p < nranks; p++)
        if (in[p].magic != LSHMOE_META_MAGIC)
            return lshmoe_error(LSHMOE_ERR_CORRUPT, "rank %d sent a metadata record without "
                                "lshmoe's magic (0x%08x): it is not in an lshmoe collective "
                                "of this context", p, in[p].magic);
    for (int p = 1; p < nranks; p++)
        if (in[p].coll != in[0].coll)
            return mismatch(in, p);
    for (int p = 0; p < nranks; p++)
        if (in[p].status != LSHMOE_OK)
            return lshmoe_error(LSHMOE_ERR_PEER, "rank %d failed this %s before the "
                                "exchange (%s)", p, lshmoe_coll_name(in[p].coll),
                                lshmoe_status_name((lshmoe_status_t)in[p].status));
    for (int p = 1; p < nranks; p++) {
        if (check_seq && in[p].seq != in[0].seq)
            return mismatch(in, p);
        if (in[p].dtype != in[0].dtype || in[p].hidden != in[0].hidden)
            return lshmoe_error(LSHMOE_ERR_MISMATCH, "rank 0 calls %s with dtype %s and "
                                "hidden %llu but rank %d with dtype %s and hidden %llu: "
                                "every rank must pass the same", lshmoe_coll_name(in[0].coll),
                                lshmoe_dtype_name((lshmoe_dtype_t)in[0].dtype),
                                (unsigned long long)in[0].hidden, p,
                                lshmoe_dtype_name((lshmoe_dtype_t)in[p].dtype),
                                (unsigned long long)in[p].hidden);
    }
    return LSHMOE_OK;
}
