/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The transport registry: every transport lshmoe knows, built or not, and
 * the choice among them. Knowing the transports that are not built lets a
 * request for one fail with "not built in this version" instead of
 * "unknown", which is what a user who set LSHMOE_TRANSPORT=mpi needs to read.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "collectives/transport.h"
#include "collectives/mpi/mpi_int.h"
#include "collectives/nccl/nccl_int.h"
#include "lshmoe_build_config.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"

/* The one place that knows whether optional transports were compiled in. */
#if LSHMOE_HAVE_MPI
#define TL_MPI_BUILT   1
#define TL_MPI_WHY_NOT NULL
#define TL_MPI_OPS     (&lshmoe_tl_mpi_ops)
#else
#define TL_MPI_BUILT   0
#define TL_MPI_WHY_NOT "the mpi transport is not built in this version: lshmoe " \
                       "was configured without MPI (install one, then -Dmpi=enabled)"
#define TL_MPI_OPS     NULL
#endif

#if LSHMOE_HAVE_NCCL_TL
#define TL_NCCL_BUILT   1
#define TL_NCCL_WHY_NOT NULL
#define TL_NCCL_OPS     (&lshmoe_tl_nccl_ops)
#else
#define TL_NCCL_BUILT   0
#define TL_NCCL_WHY_NOT "the nccl transport is not built in this version: lshmoe " \
                        "was configured without NCCL or CUDA (install both, then " \
                        "-Dnccl=enabled)"
#define TL_NCCL_OPS     NULL
#endif

/*
 * The one table; a transport that gets built puts its ops here and drops
 * its why_not. tl_kinds and tl_ops run parallel to tl_info because
 * lshmoe_tl_list() hands out tl_info as a plain array.
 */
static const lshmoe_tl_info_t tl_info[] = {
    { "self", 1, NULL },
    { "mpi",  TL_MPI_BUILT, TL_MPI_WHY_NOT },
    { "nccl", TL_NCCL_BUILT, TL_NCCL_WHY_NOT },
    { "user", 1, NULL },
};
static const lshmoe_comm_kind_t tl_kinds[] = {
    LSHMOE_COMM_SELF,
    LSHMOE_COMM_MPI,
    LSHMOE_COMM_NCCL,
    LSHMOE_COMM_USER,
};
static const lshmoe_tl_ops_t *const tl_ops[] = {
    &lshmoe_tl_self_ops,
    TL_MPI_OPS,
    TL_NCCL_OPS,
    &lshmoe_tl_user_ops,
};

#define TL_COUNT (sizeof(tl_info) / sizeof(tl_info[0]))

_Static_assert(sizeof(tl_kinds) / sizeof(tl_kinds[0]) == TL_COUNT,
               "tl_kinds must run parallel to tl_info");
_Static_assert(sizeof(tl_ops) / sizeof(tl_ops[0]) == TL_COUNT,
               "tl_ops must run parallel to tl_info");

size_t lshmoe_tl_list(const lshmoe_tl_info_t **list_p)
{
    if (list_p != NULL)
        *list_p = tl_info;
    return TL_COUNT;
}

/* Hands out entry i if it is built; `via` says where the choice came from. */
static lshmoe_status_t tl_take(size_t i, const char *via,
                               const lshmoe_tl_ops_t **ops_p)
{
    const lshmoe_tl_ops_t *ops = tl_ops[i];

    if (ops == NULL)
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "transport %s (%s): %s",
                            tl_info[i].name, via, tl_info[i].why_not);
    /* Built-in tables are compiled with this header; a mismatch is a bug. */
    if (ops->size < sizeof(lshmoe_tl_ops_t) || ops->version != LSHMOE_TL_OPS_VERSION)
        return lshmoe_error(LSHMOE_ERR_INTERNAL,
                            "transport %s has ops table version %u size %u, "
                            "expected version %d size %zu", tl_info[i].name,
                            (unsigned)ops->version, (unsigned)ops->size,
                            LSHMOE_TL_OPS_VERSION, sizeof(lshmoe_tl_ops_t));
    *ops_p = ops;
    return LSHMOE_OK;
}

static lshmoe_status_t tl_by_name(const char *name, const char *via,
                                  const lshmoe_comm_desc_t *comm,
                                  const lshmoe_tl_ops_t **ops_p)
{
    for (size_t i = 0; i < TL_COUNT; i++) {
        if (strcasecmp(name, tl_info[i].name) != 0) /* a word: any case */
            continue;
        /* A named transport must agree with an explicit communicator kind:
         * an MPI communicator handed to "self" would be misread. */
        if (comm != NULL && comm->kind != LSHMOE_COMM_AUTO && comm->kind != tl_kinds[i])
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                                "transport %s (%s) cannot serve a communicator "
                                "of kind %d", name, via, (int)comm->kind);
        return tl_take(i, via, ops_p);
    }
    return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                        "unknown transport '%s' (%s); known: self, mpi, nccl, user",
                        name, via);
}

static int tl_is_auto(const char *name)
{
    return name == NULL || name[0] == '\0' || strcasecmp(name, "auto") == 0;
}

lshmoe_status_t lshmoe_tl_select(const char *name, const lshmoe_comm_desc_t *comm,
                                 const lshmoe_tl_ops_t **ops_p)
{
    if (ops_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "lshmoe_tl_select: ops_p is NULL");
    if (!tl_is_auto(name))
        return tl_by_name(name, "requested by name", comm, ops_p);
    if (comm == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "lshmoe_tl_select: no transport name and no communicator");

    if (comm->kind != LSHMOE_COMM_AUTO) {
        for (size_t i = 0; i < TL_COUNT; i++)
            if (tl_kinds[i] == comm->kind)
                return tl_take(i, "from the communicator kind", ops_p);
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "communicator kind %d is not a known kind",
                            (int)comm->kind);
    }

    const char *env = NULL;
    LSHMOE_CHECK(lshmoe_param_string("TRANSPORT", &env));
    if (!tl_is_auto(env))
        return tl_by_name(env, "from LSHMOE_TRANSPORT", comm, ops_p);

    for (size_t i = 0; i < TL_COUNT; i++) {
        const lshmoe_tl_ops_t *ops = tl_ops[i];
        if (ops != NULL && ops->probe != NULL && ops->probe(comm))
            return tl_take(i, "probed", ops_p);
    }
    return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                        "no built transport can serve this communicator (kind "
                        "auto, rank %d of %d ranks%s); set its kind or "
                        "LSHMOE_TRANSPORT", comm->rank, comm->nranks,
                        comm->native == NULL ? ", native NULL" : "");
}
