/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Log set-up runs once per process (pthread_once) and must never reach the
 * error or log path it is setting up: lshmoe_error() logs at DEBUG, and a
 * log check inside the once-routine would wait for the once-routine itself
 * (a deadlock). So the set-up parses with the silent lshmoe_param_lookup_*
 * helpers and only remembers what went wrong; lshmoe_log_config_status()
 * reports it later, outside the once-routine, where lshmoe_error() is safe.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/log.h"
#include "lshmoe/common/param.h"

int lshmoe_log_level_cached = -1;

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static FILE *log_stream;
/* What the set-up found wrong ("" = nothing); written once, inside the
 * once-routine, read only after it. */
static char log_problem[LSHMOE_ERRMSG_LEN];

static void log_setup(void)
{
    int level = LSHMOE_LOG_WARN;
    const lshmoe_param_desc_t *p = lshmoe_param_find("LOG_LEVEL");
    const char *text = lshmoe_param_text(p, NULL);
    int idx = lshmoe_param_choice_index(p, text);
    /* A bad value keeps the default level for the messages logged until
     * then; context creation fails on it (lshmoe_log_config_status). */
    if (idx >= 0)
        level = idx;
    else
        snprintf(log_problem, sizeof log_problem, "LSHMOE_LOG_LEVEL: '%s' is not one of %s",
                 text, p->range);
    log_stream = stderr;
    const char *path = lshmoe_param_text(lshmoe_param_find("LOG_FILE"), NULL);
    if (path[0] != '\0') {
        FILE *f = fopen(path, "a");
        if (f != NULL)
            log_stream = f;
        else if (log_problem[0] == '\0')
            snprintf(log_problem, sizeof log_problem,
                     "LSHMOE_LOG_FILE: cannot open '%s' for appending", path);
    }
    __atomic_store_n(&lshmoe_log_level_cached, level, __ATOMIC_RELEASE);
}

int lshmoe_log_level_init(void)
{
    pthread_once(&log_once, log_setup);
    return __atomic_load_n(&lshmoe_log_level_cached, __ATOMIC_ACQUIRE);
}

lshmoe_status_t lshmoe_log_config_status(void)
{
    lshmoe_log_level_init();
    if (log_problem[0] != '\0')
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "%s", log_problem);
    return LSHMOE_OK;
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
