/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Logging. Output goes to stderr (or LSHMOE_LOG_FILE), never stdout. The
 * level comes from LSHMOE_LOG_LEVEL (none|error|warn|info|debug|trace, any
 * case, default warn); lshmoe_log_enabled() is a cheap check of a cached level so
 * disabled messages cost no formatting.
 */
#ifndef LSHMOE_COMMON_LOG_H
#define LSHMOE_COMMON_LOG_H

#include "lshmoe.h"

typedef enum lshmoe_log_level {
    LSHMOE_LOG_NONE = 0,
    LSHMOE_LOG_ERROR,
    LSHMOE_LOG_WARN,
    LSHMOE_LOG_INFO,
    LSHMOE_LOG_DEBUG,
    LSHMOE_LOG_TRACE
} lshmoe_log_level_t;

extern int lshmoe_log_level_cached; /* -1 until first use */

int lshmoe_log_level_init(void);

/* LSHMOE_OK, or LSHMOE_ERR_INVALID_ARG naming LSHMOE_LOG_LEVEL (a value
 * that is not a level) or LSHMOE_LOG_FILE (a file that cannot be opened).
 * Called at context creation, so a bad logging variable fails there like
 * any other variable instead of being ignored. */
lshmoe_status_t lshmoe_log_config_status(void);

static inline int lshmoe_log_enabled(lshmoe_log_level_t level)
{
    int cur = lshmoe_log_level_cached;
    if (cur < 0)
        cur = lshmoe_log_level_init();
    return (int)level <= cur;
}

void lshmoe_log_emit(lshmoe_log_level_t level, const char *file, int line,
                     const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define LSHMOE_LOG(level, ...)                                               \
    do {                                                                     \
        if (lshmoe_log_enabled(level))                                       \
            lshmoe_log_emit((level), __FILE__, __LINE__, __VA_ARGS__);       \
    } while (0)

#define LSHMOE_WARN(...)  LSHMOE_LOG(LSHMOE_LOG_WARN, __VA_ARGS__)
#define LSHMOE_INFO(...)  LSHMOE_LOG(LSHMOE_LOG_INFO, __VA_ARGS__)
#define LSHMOE_DEBUG(...) LSHMOE_LOG(LSHMOE_LOG_DEBUG, __VA_ARGS__)

#endif /* LSHMOE_COMMON_LOG_H */
