/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#ifndef LSHMOE_COMMON_TIMER_H
#define LSHMOE_COMMON_TIMER_H

#include <time.h>

/* Monotonic wall-clock seconds. */
static inline double lshmoe_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

#endif /* LSHMOE_COMMON_TIMER_H */
