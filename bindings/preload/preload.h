/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * What the MPI and NCCL shims share: the configuration read once (lazily,
 * with pthread_once, on the first intercepted call: never in a constructor,
 * so loading the library into a program that never calls MPI or NCCL costs
 * nothing), the re-entrancy guard, and the per-communicator statistics
 * printed at exit with LSHMOE_STATS=1.
 *
 * Nothing here is exported: the library's version script exports only the
 * intercepted MPI_* and nccl* names.
 */
#ifndef LSHMOE_PRELOAD_H
#define LSHMOE_PRELOAD_H

#include <stdint.h>

#include "bindings/preload/policy.h"

typedef struct pl_config {
    pl_policy_t policy;
    int         stats;        /* LSHMOE_STATS: print the table at exit      */
    int         fail;         /* LSHMOE_PRELOAD_ON_ERROR=fail: return the
                                 error instead of replaying the plain call  */
    double      max_error;    /* LSHMOE_MAX_ERROR, for the stats line       */
    int         codec;        /* LSHMOE_CODEC (lshmoe_codec_mode_t)         */
} pl_config_t;

/* Reads the configuration once (thread-safe); every shim calls it first.
 * A malformed variable is logged at WARN and makes every float call pass
 * through (reason config-mismatch, agreed by the vote), never an abort. */
const pl_config_t *pl_init(void);

/*
 * The re-entrancy guard. lshmoe's own MPI transport calls MPI collectives
 * (MPI_Alltoall, MPI_Comm_free, ...); with the library preloaded those
 * calls resolve to our shims. A shim that finds pl_inside set forwards
 * straight to the PMPI / real NCCL entry point and counts it.
 */
extern __thread int pl_inside;
void pl_count_reentrant(void);
uint64_t pl_reentrant_calls(void);

/* Logs at WARN the first time only (per process), then at DEBUG. */
void pl_warn_once(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* One communicator's counters. Entries are never freed: a communicator's
 * line is printed at exit even after the program freed it. */
typedef struct pl_stats {
    char     label[48];       /* "MPI_COMM_WORLD", "mpi comm 3", "nccl comm 1" */
    int      rank;            /* in MPI_COMM_WORLD (or the NCCL comm)      */
    int      nranks;          /* of the communicator                       */
    uint64_t calls;           /* intercepted all-to-alls                    */
    uint64_t compressed;      /* encoded by lshmoe                          */
    uint64_t passed[PL_REASON_COUNT];
    uint64_t bytes_before;    /* bytes this rank handed in for other ranks  */
    uint64_t bytes_after;     /* bytes it put on the wire for them          */
    uint64_t seg_encoded;     /* per-peer segments lshmoe sent as centroids */
    uint64_t seg_raw;         /* float segments lshmoe sent raw (too small,
                                 too little gain, or over the error cap)    */
    uint64_t compressed_rows; /* of `compressed`: on the row path           */
    double   err_sq, err_ref; /* achieved error sqrt(err_sq / err_ref) over
                                 the encoded segments lshmoe measured       */
    double   err_max;         /* largest error of one encoded segment       */
    uint64_t seg_unmeasured;  /* encoded segments with no measured error    */
} pl_stats_t;

/* A new zeroed entry with this label, or NULL when out of memory (the
 * caller then keeps no statistics). Thread-safe. */
pl_stats_t *pl_stats_new(const char *label, int rank, int nranks);

/* Counts one passed-through call of `bytes` bytes. */
void pl_stats_pass(pl_stats_t *st, pl_reason_t reason, uint64_t bytes);

/* The stats line of one entry (tests and the exit printer use it). */
void pl_stats_format(const pl_stats_t *st, double max_error, char *buf, size_t len);

#endif /* LSHMOE_PRELOAD_H */
