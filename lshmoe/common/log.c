/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lshmoe/common/log.h"
#include "lshmoe/common/param.h"

int lshmoe_log_level_cached = -1;

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static FILE *log_stream;

static void log_setup(void)
{
    int level = LSHMOE_LOG_WARN;
    int idx;
    /* A bad LSHMOE_LOG_LEVEL keeps the default: logging cannot report its own
     * configuration errors anywhere better than the default level. */
    if (lshmoe_param_choice("LOG_LEVEL", &idx) == LSHMOE_OK)
        level = idx;
    log_stream = stderr;
    const char *path = NULL;
    if (lshmoe_param_string("LOG_FILE", &path) == LSHMOE_OK && path[0] != '\0') {
        FILE *f = fopen(path, "a");
        if (f != NULL)
            log_stream = f;
    }
    __atomic_store_n(&lshmoe_log_level_cached, level, __ATOMIC_RELEASE);
}

int lshmoe_log_level_init(void)
{
    pthread_once(&log_once, log_setup);
    return __atomic_load_n(&lshmoe_log_level_cached, __ATOMIC_ACQUIRE);
}

static const char *level_name(lshmoe_log_level_t level)
{
    static const char *const names[] = {"NONE", "ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
    return (unsigned)level < sizeof names / sizeof names[0] ? names[level] : "?";
}

void lshmoe_log_emit(lshmoe_log_level_t level, const char *file, int line,
                     const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const char *base = strrchr(file, '/');
    /* One fprintf per line keeps lines from different threads whole. */
    fprintf(log_stream, "%d LSHMOE %s %s:%d %s\n", (int)getpid(), level_name(level),
            base ? base + 1 : file, line, msg);
}
