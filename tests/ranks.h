/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* Rank threads on one self-transport world, for tests and the demo. */
#ifndef LSHMOE_RANKS_H
#define LSHMOE_RANKS_H

#include "lshmoe.h"

/*
 * Runs fn(rc) on `nranks` (<= 64) threads of one self-transport world
 * whose timeout is timeout_s, and joins them; rc->arg is `arg`. Returns 0,
 * or -1 if the world or a thread could not be created.
 */
typedef struct lt_rank_ctx {
    int                  rank;
    int                  nranks;
    lshmoe_self_world_t *world;
    void                *arg;
} lt_rank_ctx_t;

int lt_run_ranks(int nranks, double timeout_s, void (*fn)(lt_rank_ctx_t *rc),
                 void *arg);

/* A self-transport descriptor for rank rc. */
lshmoe_comm_desc_t lt_self_desc(const lt_rank_ctx_t *rc);

#endif /* LSHMOE_RANKS_H */
