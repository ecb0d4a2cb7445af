/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* alltoall_perf --transport nccl (alltoall_perf_nccl.c; built with NCCL).
 * Takes alltoall_perf's argv; returns its exit status. */
#ifndef LSHMOE_BENCH_ALLTOALL_PERF_NCCL_H
#define LSHMOE_BENCH_ALLTOALL_PERF_NCCL_H

int alltoall_perf_nccl_main(int argc, char **argv);

#endif
