/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The codec's worker pool (pool.h): a generation counter wakes the
 * workers, an atomic counter hands out jobs, a count of finished threads
 * ends the run. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "lshmoe/pool.h"

#define AUTO_MAX_THREADS 16

struct lshmoe_pool {
    int                  threads;
    pthread_t           *tid;        /* threads - 1 workers              */
    pthread_mutex_t      mu;
    pthread_cond_t       wake, done;
    unsigned long        generation; /* bumped per run (under mu)        */
    int                  finished;   /* workers done with this run       */
    int                  stop;
    /* the current run */
    lshmoe_pool_job_fn_t fn;
    void                *arg;
    size_t               njobs;
    atomic_size_t        next;
};

typedef struct worker_arg {
    lshmoe_pool_t *pool;
    int            slot;
} worker_arg_t;

static void work(lshmoe_pool_t *p, int slot)
{
    for (;;) {
        size_t j = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (j >= p->njobs)
            return;
        p->fn(p->arg, j, slot);
    }
}

static void *worker(void *v)
{
    worker_arg_t wa = *(worker_arg_t *)v;
    free(v);
    lshmoe_pool_t *p = wa.pool;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        work(p, wa.slot);
        pthread_mutex_lock(&p->mu);
        if (++p->finished == p->threads - 1)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

lshmoe_status_t lshmoe_pool_create(int threads, lshmoe_pool_t **pool_p)
{
    *pool_p = NULL;
    if (threads < 1)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "pool: %d threads", threads);
    lshmoe_pool_t *p = calloc(1, sizeof *p);
    if (p == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "pool: out of memory");
    p->threads = 1;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    if (threads > 1) {
        p->tid = calloc((size_t)threads - 1, sizeof *p->tid);
        if (p->tid == NULL) {
            lshmoe_pool_destroy(p);
            return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "pool: out of memory");
        }
    }
    for (int t = 1; t < threads; t++) {
        worker_arg_t *wa = malloc(sizeof *wa);
        if (wa != NULL)
            *wa = (worker_arg_t){p, t};
        if (wa == NULL || pthread_create(&p->tid[t - 1], NULL, worker, wa) != 0) {
            free(wa);
            lshmoe_pool_destroy(p);
            return lshmoe_error(LSHMOE_ERR_INTERNAL, "pool: cannot start thread %d of %d", t,
                                threads);
        }
        p->threads = t + 1;
    }
    *pool_p = p;
    return LSHMOE_OK;
}

void lshmoe_pool_destroy(lshmoe_pool_t *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int t = 1; t < p->threads; t++)
        pthread_join(p->tid[t - 1], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    free(p->tid);
    free(p);
}

int lshmoe_pool_threads(const lshmoe_pool_t *p)
{
    return p != NULL ? p->threads : 1;
}

void lshmoe_pool_run(lshmoe_pool_t *p, size_t njobs, lshmoe_pool_job_fn_t fn, void *arg)
{
    if (p->threads == 1 || njobs < 2) {
        for (size_t j = 0; j < njobs; j++)
            fn(arg, j, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->njobs = njobs;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->finished = 0;
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    work(p, 0);
    pthread_mutex_lock(&p->mu);
    while (p->finished < p->threads - 1)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

static int env_int(const char *name)
{
    const char *v = getenv(name);
    return v != NULL ? atoi(v) : 0;
}

lshmoe_status_t lshmoe_pool_threads_from_env(int local_ranks, int *threads_p)
{
    long long t;
    LSHMOE_CHECK(lshmoe_param_int("THREADS", &t));
    if (t == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        if (local_ranks <= 0)
            local_ranks = env_int("OMPI_COMM_WORLD_LOCAL_SIZE");
        if (local_ranks <= 0)
            local_ranks = env_int("MPI_LOCALNRANKS");
        t = cores > 0 && local_ranks > 0 ? cores / local_ranks : 1;
        if (t > AUTO_MAX_THREADS)
            t = AUTO_MAX_THREADS;
        if (t < 1)
            t = 1;
    }
    *threads_p = (int)t;
    return LSHMOE_OK;
}
