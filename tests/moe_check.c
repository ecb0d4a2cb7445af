/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdio.h>
#include <string.h>

#include <CUnit/CUnit.h>

#include "moe_check.h"

void moe_check_reference(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                         const moe_rank_res_t *x, int rank, int pre, int post, int bwd)
{
    char why[512];
    CU_ASSERT_EQUAL(x->st, LSHMOE_OK);
    if (x->st != LSHMOE_OK)
        return;
    int nbad = moe_compare_reference(p, ex, in, x, pre, post, bwd, why, sizeof why);
    if (nbad != 0)
        fprintf(stderr, "rank %d vs reference: %s\n", rank, why);
    CU_ASSERT_EQUAL(nbad, 0);
    CU_ASSERT_EQUAL(x->cb.bad, 0);
    CU_ASSERT_EQUAL(x->batch_bad, 0);
    CU_ASSERT_EQUAL(x->hook.bad, 0);
}

void moe_check_local_experts(const moe_prob_t *p, const moe_rank_res_t *x, int rank)
{
    int n = 0;
    for (int e = 0; e < p->E; e++) {
        if (moe_owner(p, e) != rank)
            continue;
        CU_ASSERT(n < x->nlocal && x->local_ids[n] == e); /* ascending */
        n++;
    }
    CU_ASSERT_EQUAL(x->nlocal, n);
}

/* What holds with and without compression. */
static void check_common(const moe_prob_t *p, const moe_inputs_t *in, const moe_rank_res_t *x,
                         int rank, const size_t *slots_e)
{
    size_t pr[MOE_MAX_RANKS], pe[MOE_MAX_E], routed = 0, remote = 0, recv = 0, rows = 0;
    uint64_t dest = 0;
    moe_count_routes(p, in, pr, pe);
    for (int e = 0; e < p->E; e++)
        dest += pe[e] > 0;
    /* each destination expert travels either as centroids or raw */
    CU_ASSERT_EQUAL(x->stats.experts_compressed + x->stats.experts_raw, dest);
    for (int q = 0; q < p->nranks; q++) {
        routed += pr[q];
        remote += q == rank ? 0 : pr[q];
    }
    CU_ASSERT_EQUAL(memcmp(x->per_rank, pr, (size_t)p->nranks * sizeof(size_t)), 0);
    CU_ASSERT_EQUAL(memcmp(x->per_expert, pe, (size_t)p->E * sizeof(size_t)), 0);
    CU_ASSERT_EQUAL(x->stats.tokens, in->n);
    CU_ASSERT_EQUAL(x->stats.slots, routed);
    CU_ASSERT_EQUAL(x->stats.bytes_remote_plain, remote * moe_tb(p));
    for (int j = 0; j < x->nlocal; j++) {
        /* every slot routed to the expert, from every rank, is behind a row */
        CU_ASSERT_EQUAL(x->batch_slots[j], slots_e[x->local_ids[j]]);
        if (slots_e[x->local_ids[j]] == 0)
            CU_ASSERT_EQUAL(x->batch_rows[j], 0);
        recv += x->batch_slots[j];
        rows += x->batch_rows[j];
    }
    CU_ASSERT_EQUAL(x->stats.slots_received, recv);
    CU_ASSERT_EQUAL(x->stats.rows_received, rows);
    CU_ASSERT(x->stats.rows_received <= x->stats.slots_received);
    CU_ASSERT(x->stats.rows_sent <= x->stats.slots);
}

void moe_check_counts(const moe_prob_t *p, const moe_inputs_t *in, const moe_rank_res_t *x,
                      int rank, const size_t *slots_e, int plain)
{
    const lshmoe_moe_stats_t *s = &x->stats;
    if (x->st != LSHMOE_OK)
        return; /* moe_check_reference reports it */
    moe_check_local_experts(p, x, rank);
    check_common(p, in, x, rank, slots_e);
    if (plain) {
        CU_ASSERT_EQUAL(s->rows_sent, s->slots);
        CU_ASSERT_EQUAL(s->rows_received, s->slots_received);
        CU_ASSERT_EQUAL(s->experts_compressed, 0);
        CU_ASSERT(s->bytes_remote_dispatch >= s->bytes_remote_plain);
        CU_ASSERT(s->centroid_rel_error == 0.0);
        return;
    }
    if (s->slots == 0)
        return; /* a rank that sends nothing has nothing to compress */
    CU_ASSERT(s->experts_compressed > 0);
    CU_ASSERT(s->rows_sent < s->slots);
    if (s->bytes_remote_plain > 0)
        CU_ASSERT(s->bytes_remote_dispatch < s->bytes_remote_plain);
    /* noise 0.05 around unit-variance centres: the centroid error is about
     * the noise; 0.15 leaves room for split clusters */
    CU_ASSERT(s->centroid_rel_error > 0.0 && s->centroid_rel_error < 0.15);
}
