/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe over NCCL: the one helper that needs <nccl.h>, kept out of
 * lshmoe.h so that lshmoe.h stays free of CUDA and NCCL. Installed only
 * when lshmoe was built with NCCL. Header-only: nothing here is exported
 * by the library.
 */
#ifndef LSHMOE_NCCL_H
#define LSHMOE_NCCL_H

#include <nccl.h>

#include "lshmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Fills *desc to hand `comm` to lshmoe_ctx_create(): LSHMOE_COMM_DESC_INITIALIZER,
 * kind LSHMOE_COMM_NCCL, native = comm, and rank/nranks from
 * ncclCommUserRank and ncclCommCount.
 * Not collective; not stream-ordered; thread-safe.
 * [in]  comm: caller-owned, initialised NCCL communicator; lshmoe uses it
 *             as is (no split), so it must outlive every context created
 *             over it, and lshmoe's collectives must be issued in the same
 *             order on every rank, as NCCL requires of any collective
 * [out] desc: caller-owned; every field is written
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (comm or desc NULL);
 * LSHMOE_ERR_NCCL (ncclCommUserRank/ncclCommCount failed). Errors leave no
 * message in lshmoe_last_error(): this function runs in the caller's code.
 */
static inline lshmoe_status_t lshmoe_comm_desc_from_nccl(ncclComm_t comm,
                                                         lshmoe_comm_desc_t *desc)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;

    if (comm == NULL || desc == NULL)
        return LSHMOE_ERR_INVALID_ARG;
    if (ncclCommUserRank(comm, &d.rank) != ncclSuccess ||
        ncclCommCount(comm, &d.nranks) != ncclSuccess)
        return LSHMOE_ERR_NCCL;
    d.kind = LSHMOE_COMM_NCCL;
    d.native = (void *)comm;
    *desc = d;
    return LSHMOE_OK;
}

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_NCCL_H */
