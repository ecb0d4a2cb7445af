/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The MPI side of the preload: the exported shims (shim_mpi.c) are thin
 * wrappers that call through this ops table, chosen once at first use:
 * straight PMPI forwarding with LSHMOE_DISABLE=1, the lshmoe path
 * (mpi_path.c) otherwise.
 */
#ifndef LSHMOE_PRELOAD_MPI_OPS_H
#define LSHMOE_PRELOAD_MPI_OPS_H

#include <mpi.h>

#include "bindings/preload/policy.h"

typedef struct pl_mpi_ops {
    int (*alltoall)(const void *sendbuf, int sendcount, MPI_Datatype sendtype,
                    void *recvbuf, int recvcount, MPI_Datatype recvtype, MPI_Comm comm);
    int (*alltoallv)(const void *sendbuf, const int sendcounts[], const int sdispls[],
                     MPI_Datatype sendtype, void *recvbuf, const int recvcounts[],
                     const int rdispls[], MPI_Datatype recvtype, MPI_Comm comm);
    int (*comm_free)(MPI_Comm *comm);
    int (*finalize)(void);
} pl_mpi_ops_t;

extern const pl_mpi_ops_t pl_mpi_forward_ops;  /* PMPI only           */
extern const pl_mpi_ops_t pl_mpi_lshmoe_ops;   /* mpi_path.c          */

/* The element kind of a datatype's signature (mpi_type.c): predefined
 * MPI_FLOAT, a derived type built only of MPI_FLOAT, or anything else. */
pl_kind_t pl_mpi_kind(MPI_Datatype type);

#endif /* LSHMOE_PRELOAD_MPI_OPS_H */
