/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The call log of tests/fake_nccl.c (a libnccl stand-in). */
#ifndef LSHMOE_TESTS_FAKE_NCCL_H
#define LSHMOE_TESTS_FAKE_NCCL_H

#include <stddef.h>

#define FAKE_LOG_MAX 256

typedef struct fake_comm {
    int size, rank;
} fake_comm_t;

typedef struct fake_call {
    char        what[12];   /* start end simend send recv alltoall destroy abort */
    int         peer;
    size_t      count;
    const void *comm;
} fake_call_t;

extern fake_call_t fake_log[FAKE_LOG_MAX];
extern int fake_nlog;

#endif /* LSHMOE_TESTS_FAKE_NCCL_H */
