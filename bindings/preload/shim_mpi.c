/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The exported MPI entry points. Each is a thin wrapper: re-entrant calls
 * (made by lshmoe's own MPI transport while the preload is working) go
 * straight to PMPI; the others go through the ops table chosen at first
 * use. Everything not defined here (MPI_Ialltoall, persistent and
 * neighbourhood collectives, ...) is not intercepted at all.
 */
#include <pthread.h>

#include "bindings/preload/mpi_ops.h"
#include "bindings/preload/preload.h"

#define PL_EXPORT __attribute__((visibility("default")))

static int fwd_alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                        void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm)
{
    return PMPI_Alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype, comm);
}

static int fwd_alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[],
                         MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                         const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm)
{
    return PMPI_Alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts,
                          rdispls, recvtype, comm);
}

static int fwd_comm_free(MPI_Comm *comm)
{
    return PMPI_Comm_free(comm);
}

static int fwd_finalize(void)
{
    return PMPI_Finalize();
}

const pl_mpi_ops_t pl_mpi_forward_ops = {
    .alltoall = fwd_alltoall,
    .alltoallv = fwd_alltoallv,
    .comm_free = fwd_comm_free,
    .finalize = fwd_finalize,
};

static pthread_once_t ops_once = PTHREAD_ONCE_INIT;
static const pl_mpi_ops_t *ops;

static void choose_ops(void)
{
    ops = pl_init()->policy.disabled ? &pl_mpi_forward_ops : &pl_mpi_lshmoe_ops;
}

static const pl_mpi_ops_t *mpi_ops(void)
{
    pthread_once(&ops_once, choose_ops);
    return ops;
}

PL_EXPORT int MPI_Alltoall(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                           void *recvbuf, int recvcount, MPI_Datatype recvtype,
                           MPI_Comm comm)
{
    if (pl_inside) {
        pl_count_reentrant();
        return fwd_alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                            comm);
    }
    return mpi_ops()->alltoall(sendbuf, sendcount, sendtype, recvbuf, recvcount, recvtype,
                               comm);
}

PL_EXPORT int MPI_Alltoallv(const void *sendbuf, const int sendcounts[], const int sdispls[],
                            MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                            const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm)
{
    if (pl_inside) {
        pl_count_reentrant();
        return fwd_alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts,
                             rdispls, recvtype, comm);
    }
    return mpi_ops()->alltoallv(sendbuf, sendcounts, sdispls, sendtype, recvbuf, recvcounts,
                                rdispls, recvtype, comm);
}

/* Drops the communicator's lshmoe context before MPI frees it. */
PL_EXPORT int MPI_Comm_free(MPI_Comm *comm)
{
    if (pl_inside) {
        pl_count_reentrant();
        return fwd_comm_free(comm);
    }
    return mpi_ops()->comm_free(comm);
}

/* Drops every context while MPI still works (their duplicates are freed). */
PL_EXPORT int MPI_Finalize(void)
{
    if (pl_inside) {
        pl_count_reentrant();
        return fwd_finalize();
    }
    return mpi_ops()->finalize();
}
