/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The MPI transport's bounded wait (mpi_wait.c). Needs mpi.h, so it is
 * apart from mpi_int.h, which the registry includes without MPI. */
#ifndef LSHMOE_TL_MPI_WAIT_H
#define LSHMOE_TL_MPI_WAIT_H

#include <mpi.h>

/*
 * Polls the n requests until all are complete (returns 1) or timeout_s
 * seconds passed (returns 0; the incomplete ones are still active and
 * still non-null in reqs). Completed requests become MPI_REQUEST_NULL and
 * their status lands in sts[i] with MPI_ERROR set. *rc_p: MPI_SUCCESS,
 * MPI_ERR_IN_STATUS (see the statuses) or another MPI error code.
 */
int lshmoe_tl_mpi_wait_bounded(int n, MPI_Request *reqs, MPI_Status *sts,
                               double timeout_s, int *rc_p);

#endif /* LSHMOE_TL_MPI_WAIT_H */
