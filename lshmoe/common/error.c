/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdarg.h>
#include <stdio.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/log.h"

/* Thread-local so concurrent contexts on different threads never see each
 * other's messages; public entry points copy it into their context. */
static _Thread_local char thread_msg[LSHMOE_ERRMSG_LEN];

lshmoe_status_t lshmoe_error(lshmoe_status_t status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(thread_msg, sizeof thread_msg, fmt, ap);
    va_end(ap);
    LSHMOE_DEBUG("%s: %s", lshmoe_status_name(status), thread_msg);
    return status;
}

const char *lshmoe_error_thread_msg(void)
{
    return thread_msg;
}

void lshmoe_error_clear(void)
{
    thread_msg[0] = '\0';
}
