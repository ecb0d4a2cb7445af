/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * A small fixed pool of worker threads for the codec work of one context
 * (LSHMOE_THREADS). A run hands out jobs 0..njobs-1; the calling thread
 * works too, so a pool of 1 thread is the caller alone and starts no
 * thread. Which thread runs which job varies from run to run, so a job's
 * output must depend only on its index (each thread gets its own codec
 * workspaces: `slot` in 0..threads-1 names them). Not thread-safe: one run
 * at a time per pool, like the context that owns it.
 */
#ifndef LSHMOE_POOL_H
#define LSHMOE_POOL_H

#include <stddef.h>

#include "lshmoe.h"

typedef struct lshmoe_pool lshmoe_pool_t;

/* Job `job` on the thread that owns workspace `slot`. */
typedef void (*lshmoe_pool_job_fn_t)(void *arg, size_t job, int slot);

/* threads >= 1 (1: no worker threads). Returns LSHMOE_ERR_NO_MEMORY or
 * LSHMOE_ERR_INTERNAL (a thread could not be started) with a message. */
lshmoe_status_t lshmoe_pool_create(int threads, lshmoe_pool_t **pool_p);
void lshmoe_pool_destroy(lshmoe_pool_t *pool);
int lshmoe_pool_threads(const lshmoe_pool_t *pool);

/* Runs every job and returns when all are done. */
void lshmoe_pool_run(lshmoe_pool_t *pool, size_t njobs, lshmoe_pool_job_fn_t fn, void *arg);

/* LSHMOE_THREADS resolved: the value, or for 0 (auto) the online cores
 * divided by the ranks sharing this node (`local_ranks`, or the launcher's
 * OMPI_COMM_WORLD_LOCAL_SIZE / MPI_LOCALNRANKS when local_ranks is 0),
 * at least 1 and at most 16. */
lshmoe_status_t lshmoe_pool_threads_from_env(int local_ranks, int *threads_p);

#endif /* LSHMOE_POOL_H */
