/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <pthread.h>

#include "ranks.h"

#define MAX_RANKS 64

typedef struct rank_thread {
    lt_rank_ctx_t rc;
    void        (*fn)(lt_rank_ctx_t *rc);
} rank_thread_t;

static void *rank_main(void *p)
{
    rank_thread_t *t = p;
    t->fn(&t->rc);
    return NULL;
}

int lt_run_ranks(int nranks, double timeout_s, void (*fn)(lt_rank_ctx_t *rc), void *arg)
{
    if (nranks < 1 || nranks > MAX_RANKS)
        return -1;
    lshmoe_self_world_t *world = NULL;
    if (lshmoe_self_world_create(nranks, timeout_s, &world) != LSHMOE_OK)
        return -1;
    pthread_t th[MAX_RANKS];
    rank_thread_t rt[MAX_RANKS];
    int started = 0, rc = 0;
    for (int r = 0; r < nranks; r++) {
        rt[r] = (rank_thread_t){
            .rc = {.rank = r, .nranks = nranks, .world = world, .arg = arg}, .fn = fn};
        if (pthread_create(&th[r], NULL, rank_main, &rt[r]) != 0) {
            rc = -1; /* the started ranks time out on the world and return */
            break;
        }
        started++;
    }
    for (int r = 0; r < started; r++)
        pthread_join(th[r], NULL);
    lshmoe_self_world_destroy(world);
    return rc;
}

lshmoe_comm_desc_t lt_self_desc(const lt_rank_ctx_t *rc)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    d.kind = LSHMOE_COMM_SELF;
    d.native = rc->world;
    d.rank = rc->rank;
    d.nranks = rc->nranks;
    return d;
}
