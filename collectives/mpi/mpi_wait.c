/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The MPI transport's bounded wait: MPI_Waitall would wait forever for a
 * rank that never posts its side, so requests are polled with MPI_Testsome
 * until they complete or the deadline passes. Polling yields the core
 * between tests (ranks may share cores) and, after the first milliseconds,
 * also sleeps briefly, so a long wait does not burn a core.
 */
#include <sched.h>
#include <stdlib.h>
#include <time.h>

#include <mpi.h>

#include "collectives/mpi/mpi_wait.h"

/* Polls without sleeping for this long: keeps short exchanges fast. */
#define WAIT_SPIN_S  0.002
#define WAIT_NAP_NS  20000L

int lshmoe_tl_mpi_wait_bounded(int n, MPI_Request *reqs, MPI_Status *sts,
                               double timeout_s, int *rc_p)
{
    int *idx = malloc(((size_t)n + 1) * sizeof(*idx));
    MPI_Status *got = malloc(((size_t)n + 1) * sizeof(*got));
    int left = n, rc = MPI_SUCCESS;
    double t0 = MPI_Wtime();

    if (idx == NULL || got == NULL) {
        free(idx);
        free(got);
        *rc_p = MPI_ERR_NO_MEM;
        return 1;
    }
    while (left > 0) {
        int outcount = 0;
        int r = MPI_Testsome(n, reqs, &outcount, idx, got);
        if (r != MPI_SUCCESS && r != MPI_ERR_IN_STATUS) {
            rc = r;
            break;
        }
        if (outcount == MPI_UNDEFINED) /* every request is already done */
            break;
        for (int k = 0; k < outcount; k++) {
            sts[idx[k]] = got[k];
            /* MPI sets MPI_ERROR only under MPI_ERR_IN_STATUS. */
            if (r == MPI_SUCCESS)
                sts[idx[k]].MPI_ERROR = MPI_SUCCESS;
        }
        if (r == MPI_ERR_IN_STATUS)
            rc = MPI_ERR_IN_STATUS;
        left -= outcount;
        if (left == 0)
            break;
        double waited = MPI_Wtime() - t0;
        if (waited > timeout_s) {
            free(idx);
            free(got);
            *rc_p = rc;
            return 0;
        }
        if (outcount == 0) {
            if (waited > WAIT_SPIN_S) {
                struct timespec nap = {0, WAIT_NAP_NS};
                nanosleep(&nap, NULL);
            } else {
                sched_yield();
            }
        }
    }
    free(idx);
    free(got);
    *rc_p = rc;
    return 1;
}
