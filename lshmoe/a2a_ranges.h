/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Overlap checks of lshmoe_alltoallv's buffers. MPI forbids a send buffer
 * that overlaps a receive buffer (outside MPI_IN_PLACE), and two receive
 * ranges that overlap make the result depend on arrival order; lshmoe
 * refuses both instead of returning data that depends on its internals.
 */
#ifndef LSHMOE_A2A_RANGES_H
#define LSHMOE_A2A_RANGES_H

#include <stddef.h>

#include "lshmoe.h"

/*
 * The token ranges [displs[p], displs[p] + counts[p]) of tb bytes, for p in
 * 0..n-1, of send (from send) and receive (into recv): LSHMOE_OK when no two
 * receive ranges overlap and no send range overlaps a receive range (empty
 * ranges never overlap); else LSHMOE_ERR_INVALID_ARG naming the ranks.
 * Ranges must already be known not to overflow. O(n log n); allocates.
 */
lshmoe_status_t lshmoe_a2a_check_overlap(const void *send, const size_t *send_counts,
                                         const size_t *send_displs, const void *recv,
                                         const size_t *recv_counts,
                                         const size_t *recv_displs, int n, size_t tb);

#endif /* LSHMOE_A2A_RANGES_H */
