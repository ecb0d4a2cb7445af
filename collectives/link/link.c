/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The link-shaping decorator (see link.h and docs/benchmarks.md).
 *
 * Every collective is forwarded to the inner transport unchanged; once it
 * returns, the decorator holds the completion back until the time the
 * emulated link would have needed has passed since the call began. The
 * deadline is absolute (start + model) rather than a relative sleep of
 * (model - elapsed), so that time lost between measuring and sleeping is
 * not added on top. Since every rank applies its own model, ranks that
 * enter together leave together, as on a full-bisection network.
 *
 * A failed inner call returns at once: a failure has no transfer to time,
 * and delaying it only slows the error path.
 *
 * The rank's own segment is not on the link (every transport copies it
 * locally), so it counts neither as bytes nor as a peer.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives/link/link.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/log.h"

/* clock_nanosleep returns late: by the thread's timer slack (50 µs by
 * default) plus its wake-up latency (40-60 µs more on the 2-core CI VM,
 * where waking a fixed 50 µs early still returned 40-60 µs past the
 * deadline, adding that to every emulated transfer). The decorator learns
 * how late its wakes are (wake_late_s: an average that rises fast and
 * falls slowly, so it sits near the late end; one descheduled wake moves
 * it by a quarter of its lateness, taken as at most LINK_LATE_MAX_S),
 * wakes that much plus LINK_SPIN_S before the deadline, and spins the
 * rest: precise, without burning a core for the whole transfer (ranks
 * may share cores). */
#define LINK_SPIN_S      20e-6
#define LINK_LATE_INIT_S 100e-6
#define LINK_LATE_MAX_S  1e-3
#define LINK_LATE_RISE   4.0
#define LINK_LATE_FALL   32.0
/* Longest delay one call may add: keeps the deadline inside time_t and a
 * tiny bandwidth from turning into an overflow. */
#define LINK_MAX_DELAY_S 1e9

typedef struct link_tl {
    const lshmoe_tl_ops_t *inner_ops;
    void                  *inner;
    int                    rank, nranks;
    double                 bytes_per_s;   /* 0 = infinite bandwidth */
    double                 latency_s;
    double                 wake_late_s;   /* how late a wake returns (above) */
    lshmoe_tl_link_stats_t stats;
} link_tl_t;

double lshmoe_tl_link_model_s(double gbps, double latency_us, size_t npeers,
                              uint64_t sent, uint64_t recv)
{
    double t = latency_us * 1e-6 * (double)npeers;
    if (gbps > 0)
        t += (double)(sent > recv ? sent : recv) / (gbps * 1e9 / 8.0);
    return t;
}

static double link_model(const link_tl_t *tl, size_t npeers, double sent, double recv)
{
    double t = tl->latency_s * (double)npeers;
    if (tl->bytes_per_s > 0)
        t += (sent > recv ? sent : recv) / tl->bytes_per_s;
    return t;
}

static double ts_seconds(const struct timespec *ts)
{
    return (double)ts->tv_sec + 1e-9 * (double)ts->tv_nsec;
}

/* ts + s, normalised. */
static struct timespec ts_add(struct timespec ts, double s)
{
    time_t whole = (time_t)s;
    long ns = (long)((s - (double)whole) * 1e9);
    ts.tv_sec += whole;
    ts.tv_nsec += ns;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/*
 * Called after a successful inner call that began at `start`: waits until
 * start + model and records what happened.
 */
static void link_complete(link_tl_t *tl, const struct timespec *start, double model_s)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double inner_s = ts_seconds(&now) - ts_seconds(start);

    tl->stats.calls++;
    tl->stats.model_s += model_s;
    tl->stats.inner_s += inner_s;
    tl->stats.last_model_s = model_s;
    if (inner_s >= model_s) {
        if (model_s > 0)
            tl->stats.overruns++;
        return;
    }
    if (model_s > LINK_MAX_DELAY_S)
        model_s = LINK_MAX_DELAY_S;
    struct timespec deadline = ts_add(*start, model_s);
    double wake_s = model_s - tl->wake_late_s - LINK_SPIN_S;
    if (wake_s > inner_s) {
        struct timespec wake = ts_add(*start, wake_s);
        /* A signal handler may interrupt the sleep; the absolute time
         * makes resuming it exact. */
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &wake, NULL) == EINTR)
            ;
        clock_gettime(CLOCK_MONOTONIC, &now);
        double late = ts_seconds(&now) - ts_seconds(&wake);
        if (late > LINK_LATE_MAX_S)
            late = LINK_LATE_MAX_S;
        tl->wake_late_s += (late - tl->wake_late_s) /
                           (late > tl->wake_late_s ? LINK_LATE_RISE : LINK_LATE_FALL);
    }
    do {
        clock_gettime(CLOCK_MONOTONIC, &now);
    } while (ts_before(&now, &deadline));
    tl->stats.slept_s += model_s - inner_s;
}

/* ------------------------------------------------------------------------ */
/* Ops                                                                       */
/* ------------------------------------------------------------------------ */

static int link_probe(const lshmoe_comm_desc_t *comm)
{
    (void)comm;
    return 0; /* never chosen by the registry: it needs an inner transport */
}

static lshmoe_status_t link_init(const lshmoe_comm_desc_t *comm, void **tl_p)
{
    (void)comm;
    (void)tl_p;
    return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                        "the link decorator is not a transport of its own: create it "
                        "with lshmoe_tl_link_wrap() over an initialised transport");
}

static void link_finalize(void *tl_)
{
    link_tl_t *tl = tl_;
    if (tl == NULL)
        return;
    tl->inner_ops->finalize(tl->inner);
    free(tl);
}

/* allgather and alltoall move `bytes` to and from every other rank. */
static double link_uniform_model(const link_tl_t *tl, size_t bytes)
{
    size_t peers = bytes > 0 ? (size_t)(tl->nranks - 1) : 0;
    double total = (double)bytes * (double)peers;
    return link_model(tl, peers, total, total);
}

static lshmoe_status_t link_allgather(void *tl_, const void *send, size_t bytes, void *recv)
{
    link_tl_t *tl = tl_;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    LSHMOE_CHECK(tl->inner_ops->allgather(tl->inner, send, bytes, recv));
    link_complete(tl, &start, link_uniform_model(tl, bytes));
    return LSHMOE_OK;
}

static lshmoe_status_t link_alltoall(void *tl_, const void *send, size_t bytes, void *recv)
{
    link_tl_t *tl = tl_;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    LSHMOE_CHECK(tl->inner_ops->alltoall(tl->inner, send, bytes, recv));
    link_complete(tl, &start, link_uniform_model(tl, bytes));
    return LSHMOE_OK;
}

static lshmoe_status_t link_alltoallv(void *tl_, const void *const *send_ptrs,
                                      const size_t *send_bytes, void *const *recv_ptrs,
                                      const size_t *recv_bytes, void *stream)
{
    link_tl_t *tl = tl_;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    LSHMOE_CHECK(tl->inner_ops->alltoallv(tl->inner, send_ptrs, send_bytes, recv_ptrs,
                                          recv_bytes, stream));
    /* The sizes were valid for the inner transport, so reading them is safe
     * (it would have failed on NULL arrays). */
    size_t peers = 0;
    double sent = 0, recvd = 0;
    for (int p = 0; p < tl->nranks; p++) {
        if (p == tl->rank)
            continue;
        sent += (double)send_bytes[p];
        recvd += (double)recv_bytes[p];
        if (send_bytes[p] > 0 || recv_bytes[p] > 0)
            peers++;
    }
    link_complete(tl, &start, link_model(tl, peers, sent, recvd));
    return LSHMOE_OK;
}

const lshmoe_tl_ops_t lshmoe_tl_link_ops = {
    .size      = sizeof(lshmoe_tl_ops_t),
    .version   = LSHMOE_TL_OPS_VERSION,
    .name      = "link",
    .probe     = link_probe,
    .init      = link_init,
    .finalize  = link_finalize,
    .allgather = link_allgather,
    .alltoall  = link_alltoall,
    .alltoallv = link_alltoallv,
};

lshmoe_status_t lshmoe_tl_link_wrap(const lshmoe_tl_ops_t *inner_ops, void *inner_tl,
                                    const lshmoe_comm_desc_t *comm, double gbps,
                                    double latency_us, const lshmoe_tl_ops_t **ops_p,
                                    void **tl_p)
{
    if (inner_ops == NULL || inner_tl == NULL || comm == NULL || ops_p == NULL ||
        tl_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "lshmoe_tl_link_wrap: NULL argument");
    if (!(gbps >= 0) || !isfinite(gbps) || !(latency_us >= 0) || !isfinite(latency_us))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "link emulation: bandwidth %g Gb/s and latency %g us must be "
                            "finite and >= 0", gbps, latency_us);
    if (comm->nranks < 1 || comm->rank < 0 || comm->rank >= comm->nranks)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "link emulation: rank %d is not in 0..%d",
                            comm->rank, comm->nranks - 1);
    /* The decorator calls every collective and finalize unconditionally. */
    if (inner_ops->size < sizeof(lshmoe_tl_ops_t) || inner_ops->finalize == NULL ||
        inner_ops->allgather == NULL || inner_ops->alltoall == NULL ||
        inner_ops->alltoallv == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "link emulation: transport %s lacks a collective",
                            inner_ops->name ? inner_ops->name : "(unnamed)");

    link_tl_t *tl = calloc(1, sizeof *tl);
    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "link emulation: out of memory");
    tl->inner_ops = inner_ops;
    tl->inner = inner_tl;
    tl->rank = comm->rank;
    tl->nranks = comm->nranks;
    tl->bytes_per_s = gbps * 1e9 / 8.0;
    tl->latency_s = latency_us * 1e-6;
    tl->wake_late_s = LINK_LATE_INIT_S;
    LSHMOE_INFO("rank %d: emulated link over %s: %g Gb/s, %g us per message",
                comm->rank, inner_ops->name, gbps, latency_us);
    *ops_p = &lshmoe_tl_link_ops;
    *tl_p = tl;
    return LSHMOE_OK;
}

void lshmoe_tl_link_stats(const void *tl_, lshmoe_tl_link_stats_t *stats)
{
    const link_tl_t *tl = tl_;
    if (stats == NULL)
        return;
    if (tl == NULL) {
        memset(stats, 0, sizeof *stats);
        return;
    }
    *stats = tl->stats;
}
