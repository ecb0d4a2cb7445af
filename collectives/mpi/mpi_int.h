/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Internals of the MPI transport that tests reach. Not installed, not
 * exported from the shared library (hidden visibility).
 */
#ifndef LSHMOE_TL_MPI_INT_H
#define LSHMOE_TL_MPI_INT_H

#include <stddef.h>

#include "collectives/transport.h"

/* The table the registry lists when lshmoe is built with MPI. */
extern const lshmoe_tl_ops_t lshmoe_tl_mpi_ops;

/* The transport's point-to-point messages carry at most 1 GiB each. */
#define LSHMOE_TL_MPI_CHUNK_DEFAULT ((size_t)1 << 30)

/*
 * Sets the largest message the alltoallv path sends (bytes, clamped to
 * 1..INT_MAX; 0 restores LSHMOE_TL_MPI_CHUNK_DEFAULT) and returns the value
 * now in force. Process-wide, not thread-safe: tests call it between
 * collectives, with the same value on every rank, so that the > INT_MAX
 * chunking path runs on small buffers.
 */
size_t lshmoe_tl_mpi_set_chunk_bytes(size_t bytes);

#endif /* LSHMOE_TL_MPI_INT_H */
