/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Error reporting inside the library. The layer that first detects an error
 * calls lshmoe_error() with the exact cause; it records a thread-local
 * message and returns the status, so callers only propagate. Public entry
 * points copy that message into their context (see lshmoe_last_error()).
 */
#ifndef LSHMOE_COMMON_ERROR_H
#define LSHMOE_COMMON_ERROR_H

#include "lshmoe.h"

#define LSHMOE_ERRMSG_LEN 512

/* Records "fmt..." as this thread's last error (also logged at DEBUG) and
 * returns `status`. */
lshmoe_status_t lshmoe_error(lshmoe_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* This thread's last error message ("" if none). */
const char *lshmoe_error_thread_msg(void);

/* Clears this thread's last error message. */
void lshmoe_error_clear(void);

/* Propagate an error status without adding a message. */
#define LSHMOE_CHECK(expr)                                                   \
    do {                                                                     \
        lshmoe_status_t st_ = (expr);                                        \
        if (LSHMOE_IS_ERR(st_))                                              \
            return st_;                                                      \
    } while (0)

#define LSHMOE_CHECK_GOTO(expr, st, label)                                   \
    do {                                                                     \
        (st) = (expr);                                                       \
        if (LSHMOE_IS_ERR(st))                                               \
            goto label;                                                      \
    } while (0)

#endif /* LSHMOE_COMMON_ERROR_H */
