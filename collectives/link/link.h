/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The link-shaping decorator: wraps any transport and stretches each of its
 * collectives to the time a link of a given per-rank injection bandwidth and
 * per-message latency would take (libfabric "hook provider" style: it holds
 * the inner ops and tl and forwards every call). It lets a benchmark on one
 * machine compare lshmoe with the plain all-to-all as if the ranks sat on a
 * cluster network. The model is described in docs/benchmarks.md, "Emulated
 * link model". The core applies it when LSHMOE_LINK_GBPS or
 * LSHMOE_LINK_LATENCY_US is positive.
 */
#ifndef LSHMOE_TL_LINK_H
#define LSHMOE_TL_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "collectives/transport.h"

/* The decorator's ops (name "link"); only lshmoe_tl_link_wrap() makes its tl:
 * its init() fails with LSHMOE_ERR_UNSUPPORTED. */
extern const lshmoe_tl_ops_t lshmoe_tl_link_ops;

/*
 * Wraps (inner_ops, inner_tl), an initialised transport of rank comm->rank
 * in comm->nranks, into a decorator with gbps Gb/s per rank (0 = infinite)
 * and latency_us per message. On success *ops_p and *tl_p are the
 * decorator's, and the decorator owns inner_tl: its finalize finalizes the
 * inner. On failure nothing changes and the caller still owns inner_tl.
 * ops_p may point at the variable inner_ops came from.
 * Returns LSHMOE_OK, LSHMOE_ERR_INVALID_ARG, LSHMOE_ERR_NO_MEMORY.
 */
lshmoe_status_t lshmoe_tl_link_wrap(const lshmoe_tl_ops_t *inner_ops, void *inner_tl,
                                    const lshmoe_comm_desc_t *comm, double gbps,
                                    double latency_us, const lshmoe_tl_ops_t **ops_p,
                                    void **tl_p);

/*
 * The model: seconds a collective takes on the emulated link when this rank
 * exchanges data with `npeers` other ranks, sending `sent` and receiving
 * `recv` bytes in all (its own segment excluded):
 *   latency_us * 1e-6 * npeers + max(sent, recv) / (gbps * 1e9 / 8).
 * gbps 0 means infinite bandwidth.
 */
double lshmoe_tl_link_model_s(double gbps, double latency_us, size_t npeers,
                              uint64_t sent, uint64_t recv);

/* What a decorator did, summed over its successful collectives. */
typedef struct lshmoe_tl_link_stats {
    uint64_t calls;
    double   model_s;    /* modelled link time                              */
    double   inner_s;    /* time the inner transport took                   */
    double   slept_s;    /* delay added (model - inner where positive)      */
    uint64_t overruns;   /* calls whose inner time exceeded the model: the
                          * emulated link was faster than the real transport,
                          * so those calls took the transport's time          */
    double   last_model_s; /* model of the latest call                      */
} lshmoe_tl_link_stats_t;

/* Copies the stats of `tl`, which must be a decorator's tl (ops ==
 * &lshmoe_tl_link_ops). Not collective; not thread-safe with calls on tl. */
void lshmoe_tl_link_stats(const void *tl, lshmoe_tl_link_stats_t *stats);

#endif /* LSHMOE_TL_LINK_H */
