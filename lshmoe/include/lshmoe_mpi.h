/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe over MPI: the one helper that needs <mpi.h>, kept out of lshmoe.h
 * so that lshmoe.h stays free of MPI. Installed only when lshmoe was built
 * with MPI. Header-only: nothing here is exported by the library.
 */
#ifndef LSHMOE_MPI_H
#define LSHMOE_MPI_H

#include <mpi.h>

#include "lshmoe.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Fills *desc to hand `comm` to lshmoe_ctx_create(): LSHMOE_COMM_DESC_INITIALIZER,
 * kind LSHMOE_COMM_MPI, native = comm, and rank/nranks from MPI_Comm_rank
 * and MPI_Comm_size. lshmoe_ctx_create() then duplicates the communicator
 * (MPI_Comm_dup), so lshmoe's traffic never matches the caller's.
 * Not collective (MPI_Comm_rank/size are local); call it after MPI_Init.
 * [in]  comm: caller-owned; only its address is stored, so *comm must stay
 *             valid until lshmoe_ctx_create() returns, and the communicator
 *             itself must outlive every context created over it
 * [out] desc: caller-owned; every field is written
 * Returns LSHMOE_OK; LSHMOE_ERR_INVALID_ARG (comm or desc NULL, *comm is
 * MPI_COMM_NULL); LSHMOE_ERR_MPI (MPI not initialised, or MPI_Comm_rank/size
 * failed). Errors leave no message in lshmoe_last_error(): this function
 * runs in the caller's code, not in the library.
 */
static inline lshmoe_status_t lshmoe_comm_desc_from_mpi(MPI_Comm *comm,
                                                        lshmoe_comm_desc_t *desc)
{
    lshmoe_comm_desc_t d = LSHMOE_COMM_DESC_INITIALIZER;
    int inited = 0;

    if (comm == NULL || desc == NULL || *comm == MPI_COMM_NULL)
        return LSHMOE_ERR_INVALID_ARG;
    if (MPI_Initialized(&inited) != MPI_SUCCESS || !inited)
        return LSHMOE_ERR_MPI;
    if (MPI_Comm_rank(*comm, &d.rank) != MPI_SUCCESS ||
        MPI_Comm_size(*comm, &d.nranks) != MPI_SUCCESS)
        return LSHMOE_ERR_MPI;
    d.kind = LSHMOE_COMM_MPI;
    d.native = (void *)comm;
    *desc = d;
    return LSHMOE_OK;
}

#ifdef __cplusplus
}
#endif

#endif /* LSHMOE_MPI_H */
