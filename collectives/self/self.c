/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The "self" transport: N ranks as threads of one process sharing a world.
 *
 * Every collective is post / barrier / copy / barrier. Each rank first posts
 * its arguments (pointers into its own buffers) in its slot, the opening
 * barrier publishes them, every rank then pulls its share from the peers'
 * posted buffers into its own, and the closing barrier tells the senders
 * that nobody reads their buffers any more. A slot is therefore written only
 * by its owner, and only outside the window between the two barriers, so
 * the barriers' mutex is the only synchronisation the data needs.
 *
 * A rank whose own arguments are bad does not leave: it posts its error and
 * still goes through both barriers, so the peers fail with LSHMOE_ERR_PEER
 * naming it instead of waiting for it until the timeout.
 *
 * A barrier that times out breaks the world for good: after a missing rank
 * nobody can tell which collective each thread is in any more, so every
 * later collective fails at once instead of pairing up mismatched calls.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "collectives/transport.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"

#define SELF_WORLD_MAGIC   0x53454C46u /* "SELF" */
#define SELF_MAX_RANKS     4096
#define SELF_MAX_TIMEOUT_S 1e9         /* keeps the deadline inside time_t */
#define SELF_WHY_LEN       320

typedef enum self_op {
    SELF_OP_ALLGATHER = 1,
    SELF_OP_ALLTOALL  = 2,
    SELF_OP_ALLTOALLV = 3
} self_op_t;

typedef struct self_slot {
    /* Posted by the owning rank before the opening barrier; read by peers
     * only between the opening and the closing barrier. */
    self_op_t          op;
    lshmoe_status_t    status;     /* the owner's own argument check */
    const void        *send;       /* allgather, alltoall */
    size_t             bytes;
    const void *const *send_ptrs;  /* alltoallv */
    const size_t      *send_bytes;
    /* Guarded by the world's lock. */
    int                bound;       /* a live tl serves this rank */
    uint64_t           arrived_gen; /* last barrier generation reached */
} self_slot_t;

struct lshmoe_self_world {
    uint32_t        magic;
    int             nranks;
    double          timeout_s;
    pthread_mutex_t lock;
    pthread_cond_t  cond;        /* on CLOCK_MONOTONIC */
    uint64_t        generation;  /* barriers completed */
    int             arrived;     /* ranks waiting in the current barrier */
    int             broken;
    char            why[SELF_WHY_LEN]; /* why it broke */
    self_slot_t    *slots;
};

typedef struct self_tl {
    lshmoe_self_world_t *world;
    int                  rank;
    int                  owns_world; /* private 1-rank world (native NULL) */
} self_tl_t;

static const char *self_op_name(self_op_t op)
{
    switch (op) {
    case SELF_OP_ALLGATHER: return "allgather";
    case SELF_OP_ALLTOALL:  return "alltoall";
    case SELF_OP_ALLTOALLV: return "alltoallv";
    }
    return "unknown collective";
}

/* ------------------------------------------------------------------------ */
/* World                                                                     */
/* ------------------------------------------------------------------------ */

static lshmoe_status_t self_world_alloc(int nranks, double timeout_s,
                                        lshmoe_self_world_t **world_p)
{
    lshmoe_self_world_t *w = calloc(1, sizeof(*w));
    self_slot_t *slots = calloc((size_t)nranks, sizeof(*slots));
    pthread_condattr_t attr;

    if (w == NULL || slots == NULL) {
        free(w);
        free(slots);
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY,
                            "self world of %d ranks: out of memory", nranks);
    }
    /* A monotonic clock so that a wall-clock jump neither fires nor
     * postpones a timeout. */
    if (pthread_condattr_init(&attr) != 0) {
        free(w);
        free(slots);
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY,
                            "self world: cannot create a condition attribute");
    }
    int rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&w->cond, &attr);
    pthread_condattr_destroy(&attr);
    if (rc != 0) {
        free(w);
        free(slots);
        return lshmoe_error(LSHMOE_ERR_INTERNAL,
                            "self world: cannot create a monotonic condition "
                            "variable (%s)", strerror(rc));
    }
    rc = pthread_mutex_init(&w->lock, NULL);
    if (rc != 0) {
        pthread_cond_destroy(&w->cond);
        free(w);
        free(slots);
        return lshmoe_error(LSHMOE_ERR_INTERNAL,
                            "self world: cannot create a mutex (%s)",
                            strerror(rc));
    }
    /* No barrier has generation UINT64_MAX, so nobody counts as arrived. */
    for (int r = 0; r < nranks; r++)
        slots[r].arrived_gen = UINT64_MAX;
    w->magic = SELF_WORLD_MAGIC;
    w->nranks = nranks;
    w->timeout_s = timeout_s > SELF_MAX_TIMEOUT_S ? SELF_MAX_TIMEOUT_S : timeout_s;
    w->slots = slots;
    *world_p = w;
    return LSHMOE_OK;
}

LSHMOE_API lshmoe_status_t lshmoe_self_world_create(int nranks, double timeout_s,
                                                    lshmoe_self_world_t **world_p)
{
    if (world_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lshmoe_self_world_create: world_p is NULL");
    if (nranks < 1 || nranks > SELF_MAX_RANKS)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lshmoe_self_world_create: nranks %d is outside 1..%d",
                            nranks, SELF_MAX_RANKS);
    if (isnan(timeout_s))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lshmoe_self_world_create: timeout_s is NaN");
    if (timeout_s <= 0.0)
        LSHMOE_CHECK(lshmoe_param_timeout(&timeout_s));
    return self_world_alloc(nranks, timeout_s, world_p);
}

LSHMOE_API void lshmoe_self_world_destroy(lshmoe_self_world_t *world)
{
    if (world == NULL)
        return;
    pthread_cond_destroy(&world->cond);
    pthread_mutex_destroy(&world->lock);
    world->magic = 0;
    free(world->slots);
    free(world);
}

/* ------------------------------------------------------------------------ */
/* Barrier                                                                   */
/* ------------------------------------------------------------------------ */

static void self_deadline(double timeout_s, struct timespec *ts)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    double whole = floor(timeout_s);
    ts->tv_sec += (time_t)whole;
    ts->tv_nsec += (long)((timeout_s - whole) * 1e9);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec += 1;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Called with the lock held by a rank whose barrier `gen` timed out:
 * records which ranks never arrived, breaks the world and wakes everyone
 * still waiting in it. */
static void self_break(lshmoe_self_world_t *w, uint64_t gen, const char *what)
{
    char list[SELF_WHY_LEN / 2];
    size_t len = 0;
    int nmissing = 0, shown = 0;

    list[0] = '\0';
    for (int r = 0; r < w->nranks; r++) {
        if (w->slots[r].arrived_gen == gen)
            continue;
        nmissing++;
        /* Stop listing before the buffer is full; the count stays exact. */
        if (len + 16 < sizeof(list)) {
            int n = snprintf(list + len, sizeof(list) - len, "%s%d",
                             shown ? ", " : "", r);
            if (n > 0)
                len += (size_t)n;
            shown++;
        }
    }
    if (shown < nmissing)
        snprintf(list + len, sizeof(list) - len, " and %d more", nmissing - shown);
    snprintf(w->why, sizeof(w->why),
             "%s %s did not arrive in %s within %g s", nmissing == 1 ? "rank" : "ranks",
             list, what, w->timeout_s);
    w->broken = 1;
    pthread_cond_broadcast(&w->cond);
}

/*
 * Waits until every rank of the world reached this barrier. `what` names
 * the collective and phase for the messages. On timeout the world breaks
 * and every rank waiting here or arriving later gets LSHMOE_ERR_TIMEOUT.
 */
static lshmoe_status_t self_barrier(self_tl_t *tl, const char *what)
{
    lshmoe_self_world_t *w = tl->world;
    struct timespec deadline;
    int failed = 0;

    self_deadline(w->timeout_s, &deadline);
    pthread_mutex_lock(&w->lock);
    if (w->broken) {
        pthread_mutex_unlock(&w->lock);
        return lshmoe_error(LSHMOE_ERR_TIMEOUT,
                            "self transport %s at rank %d: the self world is "
                            "broken by an earlier timeout (%s)",
                            what, tl->rank, w->why);
    }
    uint64_t gen = w->generation;
    w->slots[tl->rank].arrived_gen = gen;
    if (++w->arrived == w->nranks) {
        w->arrived = 0;
        w->generation++;
        pthread_cond_broadcast(&w->cond);
        pthread_mutex_unlock(&w->lock);
        return LSHMOE_OK;
    }
    while (w->generation == gen && !w->broken) {
        int rc = pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
        if (rc != 0 && w->generation == gen && !w->broken) {
            /* ETIMEDOUT, or a wait that cannot work (EINVAL): either
             * way this barrier cannot complete. */
            self_break(w, gen, what);
            break;
        }
    }
    /* Completion wins over a break: a later barrier may have broken the
     * world after this one completed but before this thread woke up. */
    if (w->generation == gen)
        failed = 1;
    pthread_mutex_unlock(&w->lock);
    if (failed)
        return lshmoe_error(LSHMOE_ERR_TIMEOUT,
                            "self transport %s at rank %d: %s; the self world "
                            "is now broken", what, tl->rank, w->why);
    return LSHMOE_OK;
}

/* ------------------------------------------------------------------------ */
/* Collectives                                                               */
/* ------------------------------------------------------------------------ */

/* Pulls this rank's share from the peers' posted buffers. */
typedef lshmoe_status_t (*self_pull_fn)(self_tl_t *tl, void *const *recv_ptrs,
                                        const size_t *recv_bytes, void *recv);

static void self_copy(void *dst, const void *src, size_t n)
{
    /* n == 0 may come with NULL pointers, which memcpy does not accept;
     * src == dst is an in-place contribution that needs no copy. */
    if (n > 0 && dst != src)
        memcpy(dst, src, n);
}

/*
 * The common skeleton: post, opening barrier, checks, pull, closing barrier.
 * `local` is this rank's own argument check (with its message already
 * recorded when it failed).
 */
static lshmoe_status_t self_run(self_tl_t *tl, const self_slot_t *post,
                                self_pull_fn pull, void *const *recv_ptrs,
                                const size_t *recv_bytes, void *recv)
{
    lshmoe_self_world_t *w = tl->world;
    self_slot_t *mine = &w->slots[tl->rank];
    const char *name = self_op_name(post->op);
    char what[64];
    lshmoe_status_t st = LSHMOE_OK;

    /* A rank that failed a barrier must never post again: a slower peer may
     * still be reading its previous post. Its failure broke the world, so
     * checking that first is enough. */
    pthread_mutex_lock(&w->lock);
    int broken = w->broken;
    pthread_mutex_unlock(&w->lock);
    if (broken)
        return lshmoe_error(LSHMOE_ERR_TIMEOUT,
                            "self transport %s at rank %d: the self world is "
                            "broken by an earlier timeout (%s)",
                            name, tl->rank, w->why);

    mine->op = post->op;
    mine->status = post->status;
    mine->send = post->send;
    mine->bytes = post->bytes;
    mine->send_ptrs = post->send_ptrs;
    mine->send_bytes = post->send_bytes;

    snprintf(what, sizeof(what), "%s (opening barrier)", name);
    LSHMOE_CHECK(self_barrier(tl, what));

    if (LSHMOE_IS_ERR(post->status)) {
        st = post->status;
    } else {
        for (int p = 0; p < w->nranks && !LSHMOE_IS_ERR(st); p++) {
            const self_slot_t *peer = &w->slots[p];
            if (LSHMOE_IS_ERR(peer->status))
                st = lshmoe_error(LSHMOE_ERR_PEER,
                                  "self transport %s at rank %d: peer rank %d "
                                  "failed its argument check (%s); nothing "
                                  "was exchanged", name, tl->rank, p,
                                  lshmoe_status_name(peer->status));
            else if (peer->op != post->op)
                st = lshmoe_error(LSHMOE_ERR_MISMATCH,
                                  "self transport: peer rank %d called %s "
                                  "while rank %d called %s; nothing was "
                                  "exchanged", p, self_op_name(peer->op),
                                  tl->rank, name);
        }
        if (!LSHMOE_IS_ERR(st))
            st = pull(tl, recv_ptrs, recv_bytes, recv);
    }

    /* Every rank passes the closing barrier, failed or not, so that no
     * peer waits for it; a broken world outranks a local error. */
    snprintf(what, sizeof(what), "%s (closing barrier)", name);
    LSHMOE_CHECK(self_barrier(tl, what));
    return st;
}

/*
 * Fixed-size blocks from every peer: allgather takes each peer's whole
 * block (my_block 0), alltoall the block the peer addressed to this rank
 * (my_block 1: offset rank * bytes in the peer's send buffer).
 */
static lshmoe_status_t self_pull_blocks(self_tl_t *tl, const char *name, size_t my_block,
                                        void *recv)
{
    const self_slot_t *slots = tl->world->slots;
    size_t bytes = slots[tl->rank].bytes;
    lshmoe_status_t st = LSHMOE_OK;

    for (int p = 0; p < tl->world->nranks; p++) {
        if (slots[p].bytes != bytes) {
            if (!LSHMOE_IS_ERR(st))
                st = lshmoe_error(LSHMOE_ERR_MISMATCH,
                                  "self transport %s: peer rank %d uses blocks of "
                                  "%zu bytes but rank %d expects %zu; nothing was "
                                  "copied from rank %d",
                                  name, p, slots[p].bytes, tl->rank, bytes, p);
            continue;
        }
        self_copy((char *)recv + (size_t)p * bytes,
                  (const char *)slots[p].send + my_block * (size_t)tl->rank * bytes, bytes);
    }
    return st;
}

static lshmoe_status_t self_pull_allgather(self_tl_t *tl, void *const *recv_ptrs,
                                           const size_t *recv_bytes, void *recv)
{
    (void)recv_ptrs;
    (void)recv_bytes;
    return self_pull_blocks(tl, "allgather", 0, recv);
}

static lshmoe_status_t self_pull_alltoall(self_tl_t *tl, void *const *recv_ptrs,
                                          const size_t *recv_bytes, void *recv)
{
    (void)recv_ptrs;
    (void)recv_bytes;
    return self_pull_blocks(tl, "alltoall", 1, recv);
}

static lshmoe_status_t self_pull_alltoallv(self_tl_t *tl, void *const *recv_ptrs,
                                           const size_t *recv_bytes, void *recv)
{
    const self_slot_t *slots = tl->world->slots;
    int me = tl->rank;
    lshmoe_status_t st = LSHMOE_OK;
    (void)recv;

    for (int p = 0; p < tl->world->nranks; p++) {
        size_t n = slots[p].send_bytes[me];
        if (n != recv_bytes[p]) {
            /* Copying min(n, recv) would hide the disagreement; copying n
             * could overflow. Skip this peer, keep serving the others. */
            if (!LSHMOE_IS_ERR(st))
                st = lshmoe_error(LSHMOE_ERR_MISMATCH,
                                  "self transport alltoallv: peer rank %d sends "
                                  "%zu bytes to rank %d, which expects %zu bytes "
                                  "from it; nothing was copied from rank %d",
                                  p, n, me, recv_bytes[p], p);
            continue;
        }
        if (n > 0)
            self_copy(recv_ptrs[p], slots[p].send_ptrs[me], n);
    }
    return st;
}

/* Checks shared by allgather and alltoall; recv must hold nranks * bytes. */
static lshmoe_status_t self_check_block(const self_tl_t *tl, const char *name,
                                        const void *send, size_t bytes,
                                        const void *recv)
{
    if (bytes > SIZE_MAX / (size_t)tl->world->nranks)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "self transport %s at rank %d: %zu bytes times %d "
                            "ranks overflows size_t", name, tl->rank, bytes,
                            tl->world->nranks);
    if (bytes > 0 && (send == NULL || recv == NULL))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "self transport %s at rank %d: %s is NULL with "
                            "%zu bytes per rank", name, tl->rank,
                            send == NULL ? "send" : "recv", bytes);
    return LSHMOE_OK;
}

static lshmoe_status_t self_allgather(void *tl_, const void *send, size_t bytes,
                                      void *recv)
{
    self_tl_t *tl = tl_;
    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "self transport allgather: tl is NULL");
    self_slot_t post = { .op = SELF_OP_ALLGATHER, .send = send, .bytes = bytes };
    post.status = self_check_block(tl, "allgather", send, bytes, recv);
    return self_run(tl, &post, self_pull_allgather, NULL, NULL, recv);
}

static lshmoe_status_t self_alltoall(void *tl_, const void *send, size_t bytes,
                                     void *recv)
{
    self_tl_t *tl = tl_;
    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "self transport alltoall: tl is NULL");
    self_slot_t post = { .op = SELF_OP_ALLTOALL, .send = send, .bytes = bytes };
    post.status = self_check_block(tl, "alltoall", send, bytes, recv);
    return self_run(tl, &post, self_pull_alltoall, NULL, NULL, recv);
}

static lshmoe_status_t self_check_alltoallv(const self_tl_t *tl,
                                            const void *const *send_ptrs,
                                            const size_t *send_bytes,
                                            void *const *recv_ptrs,
                                            const size_t *recv_bytes, void *stream)
{
    if (stream != NULL)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                            "self transport alltoallv at rank %d: stream must "
                            "be NULL (the self transport moves host memory only)",
                            tl->rank);
    if (send_bytes == NULL || recv_bytes == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "self transport alltoallv at rank %d: %s is NULL",
                            tl->rank, send_bytes == NULL ? "send_bytes" : "recv_bytes");
    for (int p = 0; p < tl->world->nranks; p++) {
        if (send_bytes[p] > 0 && (send_ptrs == NULL || send_ptrs[p] == NULL))
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "self transport alltoallv at rank %d: send "
                                "pointer for peer rank %d is NULL with %zu bytes",
                                tl->rank, p, send_bytes[p]);
        if (recv_bytes[p] > 0 && (recv_ptrs == NULL || recv_ptrs[p] == NULL))
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "self transport alltoallv at rank %d: recv "
                                "pointer for peer rank %d is NULL with %zu bytes",
                                tl->rank, p, recv_bytes[p]);
    }
    return LSHMOE_OK;
}

static lshmoe_status_t self_alltoallv(void *tl_, const void *const *send_ptrs,
                                      const size_t *send_bytes,
                                      void *const *recv_ptrs,
                                      const size_t *recv_bytes, void *stream)
{
    self_tl_t *tl = tl_;
    if (tl == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "self transport alltoallv: tl is NULL");
    self_slot_t post = { .op = SELF_OP_ALLTOALLV };
    post.status = self_check_alltoallv(tl, send_ptrs, send_bytes, recv_ptrs,
                                       recv_bytes, stream);
    if (!LSHMOE_IS_ERR(post.status)) {
        post.send_ptrs = send_ptrs;
        post.send_bytes = send_bytes;
    }
    return self_run(tl, &post, self_pull_alltoallv, recv_ptrs, recv_bytes, NULL);
}

/* ------------------------------------------------------------------------ */
/* Probe, init, finalize                                                     */
/* ------------------------------------------------------------------------ */

static int self_probe(const lshmoe_comm_desc_t *comm)
{
    if (comm == NULL || comm->size < sizeof(*comm) || comm->magic != LSHMOE_MAGIC)
        return 0;
    if (comm->kind == LSHMOE_COMM_SELF)
        return 1;
    /* Under AUTO a non-NULL native could be anything (an MPI_Comm...), so
     * only the communicator-less single rank is certainly ours. */
    return comm->kind == LSHMOE_COMM_AUTO && comm->nranks == 1 &&
           comm->native == NULL;
}

static lshmoe_status_t self_init(const lshmoe_comm_desc_t *comm, void **tl_p)
{
    lshmoe_self_world_t *w;
    int owns = 0;

    if (comm == NULL || tl_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "self transport init: %s is NULL",
                            comm == NULL ? "comm" : "tl_p");
    if (comm->size < sizeof(*comm) || comm->magic != LSHMOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_NOT_INIT,
                            "self transport init: the communicator descriptor "
                            "was not filled with LSHMOE_COMM_DESC_INITIALIZER");
    if (comm->kind != LSHMOE_COMM_SELF && comm->kind != LSHMOE_COMM_AUTO)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "self transport init: communicator kind %d is not "
                            "self or auto", (int)comm->kind);
    if (comm->native == NULL) {
        if (comm->nranks != 1)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "self transport init: native is NULL with nranks "
                                "%d; more than one rank needs a world from "
                                "lshmoe_self_world_create", comm->nranks);
        /* A single rank never waits, so the timeout is irrelevant. */
        LSHMOE_CHECK(self_world_alloc(1, 1.0, &w));
        owns = 1;
    } else {
        w = comm->native;
        if (w->magic != SELF_WORLD_MAGIC)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "self transport init: native does not point to "
                                "a world from lshmoe_self_world_create");
        if (comm->nranks != w->nranks)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "self transport init: nranks %d does not match "
                                "the self world's %d ranks", comm->nranks, w->nranks);
    }
    if (comm->rank < 0 || comm->rank >= w->nranks) {
        if (owns)
            lshmoe_self_world_destroy(w);
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "self transport init: rank %d is out of range for "
                            "a self world of %d ranks", comm->rank, w->nranks);
    }

    self_tl_t *tl = calloc(1, sizeof(*tl));
    if (tl == NULL) {
        if (owns)
            lshmoe_self_world_destroy(w);
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "self transport init: out of memory");
    }
    /* Two tls on one rank would post into the same slot and count twice at
     * every barrier. */
    pthread_mutex_lock(&w->lock);
    int taken = w->slots[comm->rank].bound;
    if (!taken)
        w->slots[comm->rank].bound = 1;
    pthread_mutex_unlock(&w->lock);
    if (taken) {
        free(tl);
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "self transport init: rank %d of this self world is "
                            "already bound to a live transport; finalize it first",
                            comm->rank);
    }
    tl->world = w;
    tl->rank = comm->rank;
    tl->owns_world = owns;
    *tl_p = tl;
    return LSHMOE_OK;
}

static void self_finalize(void *tl_)
{
    self_tl_t *tl = tl_;
    if (tl == NULL)
        return;
    pthread_mutex_lock(&tl->world->lock);
    tl->world->slots[tl->rank].bound = 0;
    pthread_mutex_unlock(&tl->world->lock);
    if (tl->owns_world)
        lshmoe_self_world_destroy(tl->world);
    free(tl);
}

const lshmoe_tl_ops_t lshmoe_tl_self_ops = {
    .size      = sizeof(lshmoe_tl_ops_t),
    .version   = LSHMOE_TL_OPS_VERSION,
    .name      = "self",
    .probe     = self_probe,
    .init      = self_init,
    .finalize  = self_finalize,
    .allgather = self_allgather,
    .alltoall  = self_alltoall,
    .alltoallv = self_alltoallv,
};
