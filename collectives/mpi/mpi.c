/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The "mpi" transport: the ranks of an MPI communicator, one per process.
 *
 * init duplicates the caller's communicator, so lshmoe's messages can never
 * match the caller's receives (nor the other way round), and sets
 * MPI_ERRORS_RETURN on the duplicate only: an MPI failure inside lshmoe
 * becomes LSHMOE_ERR_MPI with MPI_Error_string's text instead of an abort,
 * while the caller's own communicator keeps its handler.
 *
 * Every collective is nonblocking point-to-point (MPI_Isend / MPI_Irecv per
 * peer) finished by a bounded wait (mpi_wait.c): a rank that never calls
 * the collective makes the others fail with LSHMOE_ERR_TIMEOUT after
 * LSHMOE_TIMEOUT_S, naming the ranks they did not hear from. Point-to-point
 * rather than MPI_Alltoall, because a collective's request cannot say who
 * is missing. After a timeout the transport is broken for good and every
 * later call fails at once: the receives of the missing ranks are
 * cancelled, but MPI offers no way to cancel a collective or to be sure a
 * send is withdrawn, so nobody can tell which of those messages a late
 * rank would still match.
 *
 * MPI counts are int, so every peer's bytes are split into chunks of at
 * most 1 GiB. Chunks to one peer share a tag and MPI never reorders
 * messages between one pair on one tag, so the k-th receive gets the k-th
 * chunk.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mpi.h>

#include "collectives/mpi/mpi_int.h"
#include "collectives/mpi/mpi_wait.h"
#include "collectives/transport.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"

/* Any value below 32767 (the smallest MPI_TAG_UB the standard allows);
 * the communicator is private, so the tag only has to be fixed. */
#define MPI_TL_TAG 0x4C53

#define MPI_WHY_LEN 320

typedef struct mpi_tl {
    MPI_Comm comm;      /* our duplicate; freed by finalize */
    int      rank;
    int      nranks;
    double   timeout_s; /* LSHMOE_TIMEOUT_S at init */
    int      broken;    /* a collective timed out: every later call fails */
    char     why[MPI_WHY_LEN];
} mpi_tl_t;

/* One posted request: whom it talks to and, for receives, what must come. */
typedef struct mpi_xfer {
    int peer;
    int bytes;
    int is_recv;
} mpi_xfer_t;

static size_t mpi_chunk_bytes = LSHMOE_TL_MPI_CHUNK_DEFAULT;

size_t lshmoe_tl_mpi_set_chunk_bytes(size_t bytes)
{
    if (bytes == 0)
        bytes = LSHMOE_TL_MPI_CHUNK_DEFAULT;
    if (bytes > INT_MAX)
        bytes = INT_MAX;
    mpi_chunk_bytes = bytes;
    return mpi_chunk_bytes;
}

/*
 * Records "<what>: <MPI's own text>" as LSHMOE_ERR_MPI. Every MPI return
 * code in this file goes through here, so the message says both which call
 * failed on which rank and why MPI thinks it did.
 */
static lshmoe_status_t mpi_fail(int rc, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static lshmoe_status_t mpi_fail(int rc, const char *fmt, ...)
{
    char what[256];
    char why[MPI_MAX_ERROR_STRING];
    int len = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (MPI_Error_string(rc, why, &len) != MPI_SUCCESS)
        snprintf(why, sizeof(why), "mpi error code %d", rc);
    return lshmoe_error(LSHMOE_ERR_MPI, "%s: %s", what, why);
}

static int mpi_error_class(int rc)
{
    int cls = rc;
    if (MPI_Error_class(rc, &cls) != MPI_SUCCESS)
        return rc;
    return cls;
}

/* ------------------------------------------------------------------------ */
/* alltoallv: chunked nonblocking point-to-point                             */
/* ------------------------------------------------------------------------ */

static size_t mpi_nchunks(size_t bytes, size_t chunk)
{
    return bytes == 0 ? 0 : (bytes - 1) / chunk + 1;
}

/*
 * A request could not be posted: the ones already posted point into the
 * caller's buffers and must be finished before returning. Receives are
 * cancelled; sends are waited for, which completes because every peer posts
 * all its receives before its first send.
 */
static void mpi_abandon(MPI_Request *reqs, const mpi_xfer_t *xfer, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (xfer[i].is_recv)
            MPI_Cancel(&reqs[i]);
    MPI_Waitall((int)n, reqs, MPI_STATUSES_IGNORE);
}

/* After Waitall: any failed request (named by peer), then every receive's
 * size against what the sizes promised. */
static lshmoe_status_t mpi_check_done(const mpi_tl_t *tl, int wait_rc,
                                      const MPI_Status *sts, const mpi_xfer_t *xfer,
                                      size_t n)
{
    if (wait_rc != MPI_SUCCESS && mpi_error_class(wait_rc) != MPI_ERR_IN_STATUS)
        return mpi_fail(wait_rc, "mpi transport alltoallv at rank %d: MPI_Waitall "
                        "failed", tl->rank);
    for (size_t i = 0; i < n; i++) {
        int err = wait_rc == MPI_SUCCESS ? MPI_SUCCESS : sts[i].MPI_ERROR;
        if (err == MPI_SUCCESS || err == MPI_ERR_PENDING)
            continue;
        if (xfer[i].is_recv && mpi_error_class(err) == MPI_ERR_TRUNCATE)
            return lshmoe_error(LSHMOE_ERR_MISMATCH,
                                "mpi transport alltoallv at rank %d: rank %d sent "
                                "more than the %d bytes expected in one chunk",
                                tl->rank, xfer[i].peer, xfer[i].bytes);
        return mpi_fail(err, "mpi transport alltoallv at rank %d: %s rank %d "
                        "failed", tl->rank, xfer[i].is_recv ? "receive from" : "send to",
                        xfer[i].peer);
    }
    for (size_t i = 0; i < n; i++) {
        int got = -1;
        if (!xfer[i].is_recv)
            continue;
        int rc = MPI_Get_count(&sts[i], MPI_BYTE, &got);
        if (rc != MPI_SUCCESS)
            return mpi_fail(rc, "mpi transport alltoallv at rank %d: MPI_Get_count "
                            "for rank %d failed", tl->rank, xfer[i].peer);
        if (got != xfer[i].bytes)
            return lshmoe_error(LSHMOE_ERR_MISMATCH,
                                "mpi transport alltoallv at rank %d: rank %d sent a "
                                "chunk of %d bytes where %d were expected",
                                tl->rank, xfer[i].peer, got, xfer[i].bytes);
    }
    return LSHMOE_OK;
}

/* Posts one direction (receives or sends) for every peer, `chunk` bytes at a
 * time, starting from the neighbour so that not every rank hits rank 0. */
static lshmoe_status_t mpi_post(const mpi_tl_t *tl, int is_recv, void *const *ptrs,
                                const size_t *sizes, size_t chunk,
                                MPI_Request *reqs, mpi_xfer_t *xfer, size_t *n)
{
    for (int k = 1; k < tl->nranks; k++) {
        int p = is_recv ? (tl->rank - k + tl->nranks) % tl->nranks
                        : (tl->rank + k) % tl->nranks;
        char *base = ptrs[p];
        for (size_t off = 0; off < sizes[p]; off += chunk) {
            size_t left = sizes[p] - off;
            int len = (int)(left < chunk ? left : chunk);
            int rc = is_recv
                ? MPI_Irecv(base + off, len, MPI_BYTE, p, MPI_TL_TAG, tl->comm, &reqs[*n])
                : MPI_Isend(base + off, len, MPI_BYTE, p, MPI_TL_TAG, tl->comm, &reqs[*n]);
            if (rc != MPI_SUCCESS)
                return mpi_fail(rc, "mpi transport alltoallv at rank %d: %s rank %d "
                                "(%d bytes at offset %zu) failed", tl->rank,
                                is_recv ? "MPI_Irecv from" : "MPI_Isend to", p, len, off);
            xfer[*n] = (mpi_xfer_t){.peer = p, .bytes = len, .is_recv = is_recv};
            (*n)++;
        }
    }
    return LSHMOE_OK;
}

/*
 * The wait of mpi_exchange timed out: names the ranks whose messages did
 * not all arrive (or, when every receive completed, those that did not
 * take this rank's sends), withdraws what can be withdrawn and breaks the
 * transport. Receives are cancelled and their completion awaited (briefly:
 * a cancelled receive completes at once); sends cannot be withdrawn
 * reliably, so they are released to finish on their own.
 */
static lshmoe_status_t mpi_timed_out(mpi_tl_t *tl, MPI_Request *reqs, const mpi_xfer_t *xfer,
                                     size_t n)
{
    char list[MPI_WHY_LEN / 2];
    size_t len = 0;
    int shown = 0, missing = 0, last = -1, want_recv = 0;
    for (size_t i = 0; i < n; i++)
        if (reqs[i] != MPI_REQUEST_NULL && xfer[i].is_recv)
            want_recv = 1;
    list[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (reqs[i] == MPI_REQUEST_NULL || xfer[i].is_recv != want_recv ||
            xfer[i].peer == last)
            continue;
        last = xfer[i].peer; /* a peer's chunks are consecutive */
        missing++;
        if (len + 16 < sizeof(list)) {
            int k = snprintf(list + len, sizeof(list) - len, "%s%d", shown ? ", " : "",
                             xfer[i].peer);
            if (k > 0)
                len += (size_t)k;
            shown++;
        }
    }
    if (shown < missing)
        snprintf(list + len, sizeof(list) - len, " and %d more", missing - shown);
    snprintf(tl->why, sizeof(tl->why), "rank %d did not hear from %s %s within %g s",
             tl->rank, missing == 1 ? "rank" : "ranks", list, tl->timeout_s);
    if (!want_recv)
        snprintf(tl->why, sizeof(tl->why), "%s %s did not take rank %d's messages within "
                 "%g s", missing == 1 ? "rank" : "ranks", list, tl->rank, tl->timeout_s);
    tl->broken = 1;
    for (size_t i = 0; i < n; i++) {
        if (reqs[i] == MPI_REQUEST_NULL)
            continue;
        if (xfer[i].is_recv) {
            MPI_Cancel(&reqs[i]);
        } else {
            MPI_Request_free(&reqs[i]);
        }
    }
    int rc;
    MPI_Status *sts = malloc((n + 1) * sizeof(*sts));
    if (sts != NULL)
        lshmoe_tl_mpi_wait_bounded((int)n, reqs, sts, 1.0, &rc);
    free(sts);
    return lshmoe_error(LSHMOE_ERR_TIMEOUT, "mpi transport: %s; this context is now "
                        "broken (an MPI exchange cannot be withdrawn once posted)", tl->why);
}

static lshmoe_status_t mpi_broken(const mpi_tl_t *tl, const char *what)
{
    return lshmoe_error(LSHMOE_ERR_TIMEOUT, "mpi transport %s at rank %d: the context is "
                        "broken by an earlier timeout (%s); destroy it", what, tl->rank,
                        tl->why);
}

static lshmoe_status_t mpi_exchange(mpi_tl_t *tl, const void *const *send_ptrs,
                                    const size_t *send_bytes, void *const *recv_ptrs,
                                    const size_t *recv_bytes)
{
    size_t chunk = mpi_chunk_bytes;
    size_t nreq = 0, n = 0;
    lshmoe_status_t st = LSHMOE_OK, self_st = LSHMOE_OK;

    for (int p = 0; p < tl->nranks; p++) {
        if ((send_bytes[p] > 0 && send_ptrs[p] == NULL) ||
            (recv_bytes[p] > 0 && recv_ptrs[p] == NULL))
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "mpi transport alltoallv at rank %d: %s pointer for "
                                "rank %d is NULL with %zu bytes", tl->rank,
                                send_ptrs[p] == NULL && send_bytes[p] > 0 ? "send" : "receive",
                                p, send_ptrs[p] == NULL && send_bytes[p] > 0
                                ? send_bytes[p] : recv_bytes[p]);
        if (p != tl->rank)
            nreq += mpi_nchunks(send_bytes[p], chunk) + mpi_nchunks(recv_bytes[p], chunk);
    }
    if (nreq > INT_MAX)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "mpi transport alltoallv at rank %d: %zu messages of at "
                            "most %zu bytes exceed what MPI_Waitall can count",
                            tl->rank, nreq, chunk);

    MPI_Request *reqs = malloc((nreq + 1) * sizeof(*reqs));
    MPI_Status *sts = malloc((nreq + 1) * sizeof(*sts));
    mpi_xfer_t *xfer = malloc((nreq + 1) * sizeof(*xfer));
    if (reqs == NULL || sts == NULL || xfer == NULL) {
        st = lshmoe_error(LSHMOE_ERR_NO_MEMORY, "mpi transport alltoallv at rank %d: "
                          "cannot allocate %zu requests", tl->rank, nreq);
        goto out;
    }

    /* Every receive is posted before the first send, so no message ever
     * waits in an unexpected-message queue or for a rendezvous partner. */
    st = mpi_post(tl, 1, recv_ptrs, recv_bytes, chunk, reqs, xfer, &n);
    if (st == LSHMOE_OK)
        st = mpi_post(tl, 0, (void *const *)send_ptrs, send_bytes, chunk, reqs, xfer, &n);
    if (st != LSHMOE_OK) {
        mpi_abandon(reqs, xfer, n);
        goto out;
    }

    /* The own segment never touches MPI; copied while the network works.
     * Its sizes come from this rank alone, so a disagreement is recorded
     * but does not stop the peers' traffic (they would wait for it). */
    if (send_bytes[tl->rank] != recv_bytes[tl->rank])
        self_st = lshmoe_error(LSHMOE_ERR_MISMATCH,
                               "mpi transport alltoallv at rank %d: rank %d sends "
                               "itself %zu bytes but expects %zu", tl->rank, tl->rank,
                               send_bytes[tl->rank], recv_bytes[tl->rank]);
    else if (send_bytes[tl->rank] > 0 && send_ptrs[tl->rank] != recv_ptrs[tl->rank])
        memcpy(recv_ptrs[tl->rank], send_ptrs[tl->rank], send_bytes[tl->rank]);

    int rc = MPI_SUCCESS;
    if (!lshmoe_tl_mpi_wait_bounded((int)n, reqs, sts, tl->timeout_s, &rc)) {
        st = mpi_timed_out(tl, reqs, xfer, n);
        goto out;
    }
    st = mpi_check_done(tl, rc, sts, xfer, n);
    if (st == LSHMOE_OK)
        st = self_st;
out:
    free(reqs);
    free(sts);
    free(xfer);
    return st;
}

static lshmoe_status_t mpi_alltoallv(void *tl_, const void *const *send_ptrs,
                                     const size_t *send_bytes, void *const *recv_ptrs,
                                     const size_t *recv_bytes, void *stream)
{
    mpi_tl_t *tl = tl_;

    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "mpi transport alltoallv: tl is NULL");
    if (tl->broken)
        return mpi_broken(tl, "alltoallv");
    if (stream != NULL)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                            "mpi transport alltoallv at rank %d: stream must be "
                            "NULL (host memory only)", tl->rank);
    if (send_ptrs == NULL || send_bytes == NULL || recv_ptrs == NULL || recv_bytes == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "mpi transport alltoallv at rank %d: a pointer or size "
                            "array is NULL", tl->rank);
    return mpi_exchange(tl, send_ptrs, send_bytes, recv_ptrs, recv_bytes);
}

/*
 * allgather / alltoall: the same per-peer exchange, with every peer getting
 * `send` (stride 0, allgather) or its own block (stride bytes, alltoall).
 */
static lshmoe_status_t mpi_big_exchange(mpi_tl_t *tl, const void *send,
                                        size_t send_stride, size_t bytes, void *recv)
{
    size_t nr = (size_t)tl->nranks;
    const void **sp = malloc(nr * sizeof(*sp));
    void **rp = malloc(nr * sizeof(*rp));
    size_t *sizes = malloc(nr * sizeof(*sizes));
    lshmoe_status_t st;

    if (sp == NULL || rp == NULL || sizes == NULL) {
        st = lshmoe_error(LSHMOE_ERR_NO_MEMORY, "mpi transport at rank %d: cannot "
                          "allocate %zu peer slots", tl->rank, nr);
    } else {
        for (size_t p = 0; p < nr; p++) {
            sp[p] = (const char *)send + p * send_stride;
            rp[p] = (char *)recv + p * bytes;
            sizes[p] = bytes;
        }
        st = mpi_exchange(tl, sp, sizes, rp, sizes);
    }
    free(sp);
    free(rp);
    free(sizes);
    return st;
}

/* ------------------------------------------------------------------------ */
/* allgather, alltoall                                                       */
/* ------------------------------------------------------------------------ */

static lshmoe_status_t mpi_allgather(void *tl_, const void *send, size_t bytes, void *recv)
{
    mpi_tl_t *tl = tl_;

    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "mpi transport allgather: tl is NULL");
    if (bytes > 0 && (send == NULL || recv == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "mpi transport allgather at rank "
                            "%d: %s is NULL", tl->rank, send == NULL ? "send" : "recv");
    if (tl->broken)
        return mpi_broken(tl, "allgather");
    return mpi_big_exchange(tl, send, 0, bytes, recv);
}

static lshmoe_status_t mpi_alltoall(void *tl_, const void *send, size_t bytes, void *recv)
{
    mpi_tl_t *tl = tl_;

    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "mpi transport alltoall: tl is NULL");
    if (bytes > 0 && (send == NULL || recv == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "mpi transport alltoall at rank "
                            "%d: %s is NULL", tl->rank, send == NULL ? "send" : "recv");
    if (tl->broken)
        return mpi_broken(tl, "alltoall");
    return mpi_big_exchange(tl, send, bytes, bytes, recv);
}

/* ------------------------------------------------------------------------ */
/* Probe, init, finalize                                                     */
/* ------------------------------------------------------------------------ */

static int mpi_usable(void)
{
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    return inited && !finalized;
}

static int mpi_probe(const lshmoe_comm_desc_t *comm)
{
    if (comm == NULL || comm->size < sizeof(*comm) || comm->magic != LSHMOE_MAGIC)
        return 0;
    /* Under AUTO a non-NULL native could be anything; only an explicit MPI
     * kind says it points to an MPI_Comm. */
    return comm->kind == LSHMOE_COMM_MPI && comm->native != NULL && mpi_usable();
}

/*
 * Collective over the communicator (MPI_Comm_idup and one exchange of the
 * descriptor check), which lshmoe_ctx_create() is anyway, and bounded by
 * LSHMOE_TIMEOUT_S like every other collective. The descriptor check is
 * agreed on collectively so that one rank with a wrong rank or size fails
 * everyone instead of leaving the others waiting in the next collective.
 */
static lshmoe_status_t mpi_init(const lshmoe_comm_desc_t *comm, void **tl_p)
{
    if (comm == NULL || tl_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "mpi transport init: %s is NULL",
                            comm == NULL ? "comm" : "tl_p");
    if (comm->size < sizeof(*comm) || comm->magic != LSHMOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_NOT_INIT,
                            "mpi transport init: the communicator descriptor was "
                            "not filled with LSHMOE_COMM_DESC_INITIALIZER");
    if (comm->kind != LSHMOE_COMM_MPI && comm->kind != LSHMOE_COMM_AUTO)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "mpi transport init: communicator kind %d is not mpi "
                            "or auto", (int)comm->kind);
    if (comm->native == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "mpi transport init: native is NULL; it must point to "
                            "an MPI_Comm");
    if (!mpi_usable())
        return lshmoe_error(LSHMOE_ERR_MPI,
                            "mpi transport init: MPI is not initialised or already "
                            "finalized (call MPI_Init before lshmoe_ctx_create)");
    MPI_Comm user = *(const MPI_Comm *)comm->native;
    if (user == MPI_COMM_NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "mpi transport init: native points to MPI_COMM_NULL");
    double timeout_s;
    LSHMOE_CHECK(lshmoe_param_timeout(&timeout_s));

    mpi_tl_t *tl = calloc(1, sizeof(*tl));
    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "mpi transport init: out of memory");
    tl->timeout_s = timeout_s;
    lshmoe_status_t st = LSHMOE_OK;
    MPI_Request dup_req = MPI_REQUEST_NULL;
    MPI_Status dup_st;
    int rc = MPI_Comm_idup(user, &tl->comm, &dup_req);
    if (rc != MPI_SUCCESS) {
        st = mpi_fail(rc, "mpi transport init at rank %d: MPI_Comm_idup failed", comm->rank);
        free(tl);
        return st;
    }
    if (!lshmoe_tl_mpi_wait_bounded(1, &dup_req, &dup_st, timeout_s, &rc)) {
        /* A nonblocking collective cannot be cancelled or freed, and it
         * still writes tl->comm when it completes: tl is left behind. */
        return lshmoe_error(LSHMOE_ERR_TIMEOUT,
                            "mpi transport init at rank %d: not every rank of the "
                            "communicator joined lshmoe_ctx_create within %g s "
                            "(MPI_Comm_idup did not complete)", comm->rank, timeout_s);
    }
    if (rc != MPI_SUCCESS) {
        st = mpi_fail(rc, "mpi transport init at rank %d: MPI_Comm_idup failed", comm->rank);
        free(tl);
        return st;
    }
    rc = MPI_Comm_set_errhandler(tl->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(tl->comm, &tl->rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(tl->comm, &tl->nranks);
    if (rc != MPI_SUCCESS) {
        /* Cannot even exchange the verdict on this communicator. */
        st = mpi_fail(rc, "mpi transport init at rank %d: cannot set up the "
                      "duplicated communicator", comm->rank);
        MPI_Comm_free(&tl->comm);
        free(tl);
        return st;
    }
    if (tl->rank != comm->rank || tl->nranks != comm->nranks)
        st = lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                          "mpi transport init: the descriptor says rank %d of %d "
                          "ranks but the MPI communicator says rank %d of %d",
                          comm->rank, comm->nranks, tl->rank, tl->nranks);
    /* Still take part in the agreement below, as a failed rank. */
    int *all = calloc((size_t)tl->nranks, sizeof(*all));
    int mine = st == LSHMOE_OK ? 0 : 1;
    lshmoe_status_t xst = all == NULL
        ? lshmoe_error(LSHMOE_ERR_NO_MEMORY, "mpi transport init: out of memory")
        : mpi_big_exchange(tl, &mine, 0, sizeof(mine), all);
    if (st == LSHMOE_OK && xst != LSHMOE_OK)
        st = xst;
    for (int r = 0; st == LSHMOE_OK && r < tl->nranks; r++)
        if (all[r] != 0)
            st = lshmoe_error(LSHMOE_ERR_PEER,
                              "mpi transport init at rank %d: rank %d failed its "
                              "communicator check", tl->rank, r);
    free(all);
    if (st != LSHMOE_OK) {
        /* After a timeout, requests may still refer to the communicator. */
        if (!tl->broken) {
            MPI_Comm_free(&tl->comm);
            free(tl);
        }
        return st;
    }
    *tl_p = tl;
    return LSHMOE_OK;
}

static void mpi_finalize(void *tl_)
{
    mpi_tl_t *tl = tl_;
    int finalized = 0;

    if (tl == NULL)
        return;
    /* After MPI_Finalize every handle is gone already; freeing it would be
     * an error of its own. */
    MPI_Finalized(&finalized);
    if (tl->broken) {
        /* Sends released after a timeout may still use the communicator
         * and this rank's buffers: both stay (a small, bounded leak per
         * timeout, which ends the context's life anyway). */
        return;
    }
    if (!finalized)
        MPI_Comm_free(&tl->comm);
    free(tl);
}

const lshmoe_tl_ops_t lshmoe_tl_mpi_ops = {
    .size      = sizeof(lshmoe_tl_ops_t),
    .version   = LSHMOE_TL_OPS_VERSION,
    .name      = "mpi",
    .probe     = mpi_probe,
    .init      = mpi_init,
    .finalize  = mpi_finalize,
    .allgather = mpi_allgather,
    .alltoall  = mpi_alltoall,
    .alltoallv = mpi_alltoallv,
};
