/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The lshmoe path of MPI_Alltoall / MPI_Alltoallv, and the per-communicator
 * state (an lshmoe context, created collectively on the first call that
 * compresses, and the statistics entry).
 *
 * Agreement: a call is encoded only if every rank agrees, because the
 * encoded and the plain exchange are different collectives. What every rank
 * knows identically (MPI_IN_PLACE, which MPI requires on all ranks or none;
 * intercommunicators; a non-float type signature) is decided locally with
 * no communication. Everything that can differ between ranks (counts, the
 * minimum size, a derived type on one rank where another passes MPI_FLOAT)
 * goes into a vote, one 16-byte bitwise-OR allreduce on the caller's
 * communicator, and the outcome is the same everywhere. After an encoded
 * call a second one-int allreduce checks that every rank succeeded; if any
 * did not, every rank replays the plain call (or, with
 * LSHMOE_PRELOAD_ON_ERROR=fail, returns MPI_ERR_OTHER).
 */
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bindings/preload/mpi_ops.h"
#include "bindings/preload/preload.h"
#include "bindings/preload/rows.h"
#include "lshmoe.h"
#include "lshmoe_mpi.h"

/* One lshmoe context per encoding path: the codec mode is a context
 * setting, and the row path needs its own (pl_policy_row_mode). */
enum { PATH_LSH = 0, PATH_ROWS = 1, PATH_COUNT };

typedef struct pl_path {
    MPI_Comm      desc_comm;  /* the copy whose address lshmoe was given   */
    lshmoe_ctx_t *ctx;
    int           broken;     /* creation failed: this path passes from now on */
} pl_path_t;

typedef struct pl_comm {
    MPI_Comm        comm;
    pl_path_t       path[PATH_COUNT];
    int             rank, nranks;
    pl_stats_t     *st;
    struct pl_comm *next;
} pl_comm_t;

static pthread_mutex_t comms_lock = PTHREAD_MUTEX_INITIALIZER;
static pl_comm_t *comms;
static int comm_seq;

/* One intercepted call, both flavours; counts and displacements are arrays
 * for both (built for MPI_Alltoall). */
typedef struct a2a_call {
    int           is_v;
    const void   *sbuf;
    void         *rbuf;
    int           scount, rcount;           /* MPI_Alltoall only */
    const int    *sc, *sd, *rc, *rd;       /* all NULL when out of memory */
    MPI_Datatype  stype, rtype;
    MPI_Comm      comm;
} a2a_call_t;

static int forward(const a2a_call_t *c)
{
    if (c->is_v)
        return PMPI_Alltoallv(c->sbuf, c->sc, c->sd, c->stype, c->rbuf, c->rc, c->rd,
                              c->rtype, c->comm);
    return PMPI_Alltoall(c->sbuf, c->scount, c->stype, c->rbuf, c->rcount, c->rtype,
                         c->comm);
}

/* The state of `comm`, created on first sight (no context yet: that is
 * collective and waits for the first call that compresses). */
static pl_comm_t *comm_state(MPI_Comm comm)
{
    pthread_mutex_lock(&comms_lock);
    pl_comm_t *s = comms;
    while (s != NULL && s->comm != comm)
        s = s->next;
    if (s == NULL && (s = calloc(1, sizeof *s)) != NULL) {
        char name[MPI_MAX_OBJECT_NAME] = "";
        char label[64];
        int len = 0;
        int world_rank = 0;
        s->comm = comm;
        PMPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
        PMPI_Comm_rank(comm, &s->rank);
        PMPI_Comm_size(comm, &s->nranks);
        PMPI_Comm_get_name(comm, name, &len);
        if (len > 0)
            snprintf(label, sizeof label, "%.40s", name);
        else
            snprintf(label, sizeof label, "mpi comm %d", ++comm_seq);
        s->st = pl_stats_new(label, world_rank, s->nranks);
        s->next = comms;
        comms = s;
    }
    pthread_mutex_unlock(&comms_lock);
    return s;
}

/* Unlinks comm's state (all of them with `all`) and returns the list. */
static pl_comm_t *comm_unlink(MPI_Comm comm, int all)
{
    pthread_mutex_lock(&comms_lock);
    pl_comm_t *out = NULL, **pp = &comms;
    while (*pp != NULL) {
        pl_comm_t *s = *pp;
        if (all || s->comm == comm) {
            *pp = s->next;
            s->next = out;
            out = s;
        } else {
            pp = &s->next;
        }
    }
    pthread_mutex_unlock(&comms_lock);
    return out;
}

/* Frees a list of states; their stats entries stay for the exit report.
 * lshmoe_ctx_destroy frees lshmoe's duplicate communicator with
 * MPI_Comm_free, which comes back to our shim: hence the guard. */
static void comm_drop(pl_comm_t *list)
{
    while (list != NULL) {
        pl_comm_t *next = list->next;
        pl_inside++;
        for (int k = 0; k < PATH_COUNT; k++)
            lshmoe_ctx_destroy(list->path[k].ctx);
        pl_inside--;
        free(list);
        list = next;
    }
}

static uint64_t remote_bytes(const int *counts, int n, int rank, MPI_Datatype type)
{
    int size = 0;
    uint64_t total = 0;
    if (PMPI_Type_size(type, &size) != MPI_SUCCESS)
        return 0;
    for (int p = 0; p < n; p++)
        if (p != rank)
            total += (uint64_t)counts[p] * (uint64_t)size;
    return total;
}

/* 1 if every rank passes ok != 0 (one-int allreduce). */
static int all_ok(int ok, MPI_Comm comm)
{
    int all = 0;
    if (PMPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, comm) != MPI_SUCCESS)
        return 0;
    return all;
}

/* Creates the path's context once; every rank learns whether all
 * succeeded. The LSH path takes every setting from the environment; the
 * row path the same with the codec mode replaced (and no coded residuals,
 * which only the lsh codec has). */
static int ensure_ctx(const pl_config_t *cfg, pl_comm_t *s, int path)
{
    pl_path_t *pp = &s->path[path];
    if (pp->ctx != NULL)
        return 1;
    if (pp->broken)
        return 0;
    lshmoe_comm_desc_t desc;
    lshmoe_config_t conf = LSHMOE_CONFIG_INITIALIZER;
    lshmoe_status_t st = LSHMOE_ERR_MPI;
    if (path == PATH_ROWS) {
        conf.codec = cfg->policy.row_mode;
        conf.residual_bits = 0;
    }
    pp->desc_comm = s->comm;
    pl_inside++;
    if (lshmoe_comm_desc_from_mpi(&pp->desc_comm, &desc) == LSHMOE_OK)
        st = lshmoe_ctx_create(&desc, &conf, &pp->ctx);
    pl_inside--;
    if (st != LSHMOE_OK) {
        pl_warn_once("cannot create an lshmoe context on %s: %s; its calls pass through",
                     s->st ? s->st->label : "a communicator", lshmoe_last_error(NULL));
        pp->ctx = NULL;
    }
    if (!all_ok(st == LSHMOE_OK, s->comm)) {
        pl_inside++;
        lshmoe_ctx_destroy(pp->ctx);
        pl_inside--;
        pp->ctx = NULL;
        pp->broken = 1;
        return 0;
    }
    return 1;
}

/* Adds what lshmoe did in one call (after - before) to the preload's line.
 * `bytes` is what the caller handed in for the other ranks: on the row
 * path lshmoe's own count includes the zero padding. */
static void count_encoded(pl_stats_t *t, const lshmoe_stats_t *before,
                          const lshmoe_stats_t *after, int rows, uint64_t bytes)
{
    if (t == NULL)
        return;
    t->calls++;
    t->bytes_before += bytes;
    t->bytes_after += after->bytes_wire - before->bytes_wire;
    t->seg_encoded += after->segments_compressed - before->segments_compressed;
    t->seg_raw += after->segments_raw - before->segments_raw;
    t->err_sq += after->err_sq - before->err_sq;
    t->err_ref += after->err_ref - before->err_ref;
    if (after->err_max > t->err_max)
        t->err_max = after->err_max;
    t->seg_unmeasured += after->segments_unmeasured - before->segments_unmeasured;
    if (after->calls_plain_policy > before->calls_plain_policy) {
        t->passed[PL_REASON_ADAPT]++;
    } else {
        t->compressed++;
        t->compressed_rows += rows != 0;
    }
}

/* The arguments of lshmoe_alltoallv for the LSH path: counts in tokens
 * of h elements (the vote said h divides them all). */
static void lsh_layout(const a2a_call_t *c, int n, size_t h, size_t *cnt)
{
    for (int p = 0; p < n; p++) {
        cnt[p] = (size_t)c->sc[p] / h;
        cnt[n + p] = (size_t)c->sd[p] / h;
        cnt[2 * n + p] = (size_t)c->rc[p] / h;
        cnt[3 * n + p] = (size_t)c->rd[p] / h;
    }
}

/* The encoded exchange (d.action LSH or ROWS); cnt has room for 4 * nranks
 * counts. Returns an MPI status. */
static int encode_call(const pl_config_t *cfg, pl_comm_t *s, const a2a_call_t *c,
                       pl_decision_t d, uint64_t bytes, size_t *cnt)
{
    int n = s->nranks, rows = d.action == PL_ACTION_ROWS;
    pl_path_t *pp = &s->path[rows ? PATH_ROWS : PATH_LSH];
    if (!ensure_ctx(cfg, s, rows ? PATH_ROWS : PATH_LSH)) {
        pl_stats_pass(s->st, PL_REASON_CTX_FAILED, bytes);
        return forward(c);
    }
    pl_rows_t rw;
    const void *sendp = c->sbuf;
    void *recvp = c->rbuf;
    memset(&rw, 0, sizeof rw);
    if (rows) {
        /* Out of memory for the staging copy: NULL buffers make lshmoe
         * fail on this rank, its metadata round tells every rank, and all
         * replay the plain call below. */
        if (pl_rows_prepare(&rw, d.hidden, n, c->sbuf, c->sc, c->sd, c->rbuf, c->rc,
                            c->rd, cnt) != 0)
            pl_warn_once("no memory to stage a row-path call on %s",
                         s->st ? s->st->label : "?");
        sendp = rw.send;
        recvp = rw.recv;
    } else {
        lsh_layout(c, n, d.hidden, cnt);
    }
    lshmoe_stats_t before = LSHMOE_STATS_INITIALIZER, after = LSHMOE_STATS_INITIALIZER;
    lshmoe_stats_get(pp->ctx, &before);
    pl_inside++;
    lshmoe_status_t st = lshmoe_alltoallv(pp->ctx, sendp, cnt, cnt + n, recvp, cnt + 2 * n,
                                          cnt + 3 * n, LSHMOE_DTYPE_FP32, d.hidden, NULL);
    pl_inside--;
    if (st != LSHMOE_OK)
        pl_warn_once("lshmoe_alltoallv on %s failed: %s", s->st ? s->st->label : "?",
                     lshmoe_last_error(pp->ctx));
    int ok = all_ok(st == LSHMOE_OK, s->comm);
    if (ok && rows)
        pl_rows_finish(&rw, n, c->rbuf, c->rc, c->rd);
    pl_rows_free(&rw);
    if (!ok) {
        if (cfg->fail) {
            if (s->st != NULL)
                s->st->calls++;
            return MPI_ERR_OTHER;
        }
        pl_stats_pass(s->st, PL_REASON_ERROR, bytes);
        return forward(c);
    }
    lshmoe_stats_get(pp->ctx, &after);
    count_encoded(s->st, &before, &after, rows, bytes);
    return MPI_SUCCESS;
}

static int run(const a2a_call_t *c)
{
    const pl_config_t *cfg = pl_init();
    int inter = 0;
    pl_comm_t *s = comm_state(c->comm), spare;
    int no_state = s == NULL;
    if (no_state) {
        /* Out of memory: this rank still votes (with the error reason, so
         * nobody encodes), or the others would wait for it. */
        memset(&spare, 0, sizeof spare);
        spare.comm = c->comm;
        spare.path[PATH_LSH].broken = spare.path[PATH_ROWS].broken = 1;
        PMPI_Comm_rank(c->comm, &spare.rank);
        PMPI_Comm_size(c->comm, &spare.nranks);
        s = &spare;
    }
    /* Intercommunicators first: their count arrays have the remote group's
     * size, so not even the byte count is read (counted as 0 bytes). */
    if (PMPI_Comm_test_inter(c->comm, &inter) != MPI_SUCCESS || inter) {
        pl_stats_pass(s->st, PL_REASON_INTERCOMM, 0);
        return forward(c);
    }
    int have_counts = c->sc != NULL;
    if (c->sbuf == MPI_IN_PLACE) {
        pl_stats_pass(s->st, PL_REASON_IN_PLACE,
                      have_counts ? remote_bytes(c->rc, s->nranks, s->rank, c->rtype) : 0);
        return forward(c);
    }
    uint64_t bytes = have_counts ? remote_bytes(c->sc, s->nranks, s->rank, c->stype) : 0;
    pl_kind_t ks = pl_mpi_kind(c->stype), kr = pl_mpi_kind(c->rtype);
    if (ks == PL_KIND_OTHER || kr == PL_KIND_OTHER) {
        pl_stats_pass(s->st, PL_REASON_DTYPE, bytes);
        return forward(c);
    }
    pl_shape_t shape = {
        .nranks = s->nranks, .rank = s->rank,
        .kind = ks == PL_KIND_FP32 && kr == PL_KIND_FP32 ? PL_KIND_FP32 : PL_KIND_FP32_DERIVED,
        .elem_size = sizeof(float),
        .send_counts = c->sc, .send_displs = c->sd,
        .recv_counts = c->rc, .recv_displs = c->rd,
    };
    pl_vote_t mine = pl_policy_vote(&cfg->policy, have_counts ? &shape : NULL);
    /* Allocated before the vote: running out of memory here is a local
     * failure, which the vote turns into the same pass on every rank. */
    size_t *cnt = malloc(4 * (size_t)s->nranks * sizeof *cnt);
    if (cnt == NULL || no_state || !have_counts)
        mine.reasons |= 1u << PL_REASON_ERROR;
    uint32_t v[4] = {mine.reasons, mine.misfit, mine.fp, mine.fp_not}, w[4] = {0, 0, 0, 0};
    int rc;
    if (PMPI_Allreduce(v, w, 4, MPI_UINT32_T, MPI_BOR, c->comm) != MPI_SUCCESS) {
        pl_stats_pass(s->st, PL_REASON_ERROR, bytes);
        rc = forward(c);
    } else {
        pl_vote_t all = {w[0], w[1], w[2], w[3]};
        pl_decision_t d = pl_policy_decide(&cfg->policy, all);
        if (d.action == PL_ACTION_PASS) {
            pl_stats_pass(s->st, d.reason, bytes);
            rc = forward(c);
        } else {
            rc = encode_call(cfg, s, c, d, bytes, cnt);
        }
    }
    free(cnt);
    return rc;
}

static int lshmoe_alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                           void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm)
{
    int n = 0;
    if (PMPI_Comm_size(comm, &n) != MPI_SUCCESS || n < 1)
        return PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                             comm);
    /* Local group size for an intercommunicator: run() passes those before
     * reading the arrays. Out of memory, run() still votes (with NULL
     * arrays), so the other ranks do not wait for this one. */
    int *arr = malloc(4 * (size_t)n * sizeof *arr);
    /* Displacements past INT_MAX elements have no int form: such a call is
     * described as "unknown" too (and passes through). */
    if ((long long)n * sendcount > INT_MAX || (long long)n * recvcount > INT_MAX) {
        free(arr);
        arr = NULL;
    }
    for (int p = 0; arr != NULL && p < n; p++) {
        arr[p] = sendcount;
        arr[n + p] = p * sendcount;
        arr[2 * n + p] = recvcount;
        arr[3 * n + p] = p * recvcount;
    }
    a2a_call_t c = {.is_v = 0, .sbuf = sendbuf, .rbuf = recvbuf, .scount = sendcount,
                    .rcount = recvcount, .stype = sendtype, .rtype = recvtype, .comm = comm};
    if (arr != NULL) {
        c.sc = arr;
        c.sd = arr + n;
        c.rc = arr + 2 * n;
        c.rd = arr + 3 * n;
    }
    int rc = run(&c);
    free(arr);
    return rc;
}

static int lshmoe_alltoallv_op(const void *sendbuf, const int sendcounts[],
                               const int sdispls[], MPI_Datatype sendtype, void *recvbuf,
                               const int recvcounts[], const int rdispls[],
                               MPI_Datatype recvtype, MPI_Comm comm)
{
    a2a_call_t c = {.is_v = 1, .sbuf = sendbuf, .rbuf = recvbuf, .sc = sendcounts,
                    .sd = sdispls, .rc = recvcounts, .rd = rdispls, .stype = sendtype,
                    .rtype = recvtype, .comm = comm};
    return run(&c);
}

static int lshmoe_comm_free(MPI_Comm *comm)
{
    if (comm != NULL)
        comm_drop(comm_unlink(*comm, 0));
    return PMPI_Comm_free(comm);
}

static int lshmoe_finalize(void)
{
    comm_drop(comm_unlink(MPI_COMM_NULL, 1));
    return PMPI_Finalize();
}

const pl_mpi_ops_t pl_mpi_lshmoe_ops = {
    .alltoall = lshmoe_alltoall,
    .alltoallv = lshmoe_alltoallv_op,
    .comm_free = lshmoe_comm_free,
    .finalize = lshmoe_finalize,
};
