/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bindings/preload/preload.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/log.h"
#include "lshmoe/common/param.h"
#include "lshmoe.h"

__thread int pl_inside;

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static pl_config_t config;

static uint64_t reentrant;
static int warned;

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static pl_stats_t **stats_all;
static size_t stats_n, stats_cap;

void pl_count_reentrant(void)
{
    __atomic_add_fetch(&reentrant, 1, __ATOMIC_RELAXED);
}

uint64_t pl_reentrant_calls(void)
{
    return __atomic_load_n(&reentrant, __ATOMIC_RELAXED);
}

void pl_warn_once(const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (__atomic_exchange_n(&warned, 1, __ATOMIC_ACQ_REL) == 0)
        LSHMOE_WARN("preload: %s (further errors are logged at debug level)", msg);
    else
        LSHMOE_DEBUG("preload: %s", msg);
}

pl_stats_t *pl_stats_new(const char *label, int rank, int nranks)
{
    pl_stats_t *st = calloc(1, sizeof *st);
    if (st == NULL)
        return NULL;
    snprintf(st->label, sizeof st->label, "%s", label);
    st->rank = rank;
    st->nranks = nranks;
    pthread_mutex_lock(&stats_lock);
    if (stats_n == stats_cap) {
        size_t cap = stats_cap ? 2 * stats_cap : 16;
        pl_stats_t **grown = realloc(stats_all, cap * sizeof *grown);
        if (grown == NULL) {
            pthread_mutex_unlock(&stats_lock);
            free(st);
            return NULL;
        }
        stats_all = grown;
        stats_cap = cap;
    }
    stats_all[stats_n++] = st;
    pthread_mutex_unlock(&stats_lock);
    return st;
}

void pl_stats_pass(pl_stats_t *st, pl_reason_t reason, uint64_t bytes)
{
    if (st == NULL)
        return;
    st->calls++;
    st->passed[reason]++;
    st->bytes_before += bytes;
    st->bytes_after += bytes;
}

void pl_stats_format(const pl_stats_t *st, double max_error, char *buf, size_t len)
{
    uint64_t passed = 0;
    char why[512] = "";
    size_t off = 0;
    for (int r = 1; r < PL_REASON_COUNT; r++) {
        if (st->passed[r] == 0)
            continue;
        passed += st->passed[r];
        int n = snprintf(why + off, sizeof why - off, "%s%s %llu", off ? ", " : "",
                         pl_reason_name((pl_reason_t)r), (unsigned long long)st->passed[r]);
        if (n > 0 && (size_t)n < sizeof why - off)
            off += (size_t)n;
    }
    double ratio = st->bytes_after ? (double)st->bytes_before / (double)st->bytes_after : 1.0;
    /* The achieved error: over what was encoded (raw segments are exact) */
    char err[128] = "-";
    if (st->err_ref > 0.0)
        snprintf(err, sizeof err, "%.4f (segment max %.4f)", sqrt(st->err_sq / st->err_ref),
                 st->err_max);
    char unmeasured[64] = "";
    if (st->seg_unmeasured > 0)
        snprintf(unmeasured, sizeof unmeasured, ", not measured in %llu segments",
                 (unsigned long long)st->seg_unmeasured);
    snprintf(buf, len, "lshmoe-preload: rank %d %s (%d ranks): calls %llu, compressed %llu "
             "(lsh %llu, rows %llu), passed %llu (%s), bytes %llu -> %llu (%.2fx), segments "
             "encoded %llu raw %llu, error %s%s, budget %g per segment",
             st->rank, st->label, st->nranks, (unsigned long long)st->calls,
             (unsigned long long)st->compressed,
             (unsigned long long)(st->compressed - st->compressed_rows),
             (unsigned long long)st->compressed_rows, (unsigned long long)passed,
             off ? why : "-", (unsigned long long)st->bytes_before,
             (unsigned long long)st->bytes_after, ratio, (unsigned long long)st->seg_encoded,
             (unsigned long long)st->seg_raw, err, unmeasured, max_error);
}

/* Runs at exit: one line per communicator, then the process's guard count.
 * One fprintf per line keeps lines of different ranks whole. */
static void print_stats(void)
{
    char line[1024];
    pthread_mutex_lock(&stats_lock);
    for (size_t i = 0; i < stats_n; i++) {
        pl_stats_format(stats_all[i], config.max_error, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    pthread_mutex_unlock(&stats_lock);
    fprintf(stderr, "lshmoe-preload: pid %d: %llu re-entrant calls forwarded\n",
            (int)getpid(), (unsigned long long)pl_reentrant_calls());
}

/* Reads one integer variable; on a malformed value warns once, keeps `def`
 * and marks the configuration bad. */
static long long read_int(pl_config_t *c, const char *name, long long def)
{
    long long v;
    if (lshmoe_param_int(name, &v) == LSHMOE_OK)
        return v;
    pl_warn_once("%s; calls pass through (config-mismatch)", lshmoe_error_thread_msg());
    c->policy.config_error = 1;
    return def;
}

/*
 * A malformed variable must not make this rank behave differently from the
 * others in a way that hangs them: it does not turn the shims off (a rank
 * that stopped voting would leave the others waiting). The rank keeps
 * voting, with the config-mismatch reason set, so every rank passes every
 * float call through.
 */
static void read_config(pl_config_t *c)
{
    const char *hidden;
    char err[256] = "LSHMOE_HIDDEN cannot be read";
    int idx;
    c->policy.disabled = (int)read_int(c, "DISABLE", 0);
    c->stats = (int)read_int(c, "STATS", 0);
    c->policy.min_bytes = (size_t)read_int(c, "PRELOAD_MIN_BYTES", 65536);
    if (lshmoe_param_choice("PRELOAD_ON_ERROR", &idx) == LSHMOE_OK) {
        c->fail = idx == 1;
    } else {
        pl_warn_once("%s; calls pass through (config-mismatch)", lshmoe_error_thread_msg());
        c->policy.config_error = 1;
    }
    if (lshmoe_param_double("MAX_ERROR", &c->max_error) != LSHMOE_OK)
        c->max_error = -1.0;  /* lshmoe's context creation reports it */
    /* The row path's mode depends on LSHMOE_CODEC, so a malformed value
     * must pass on every rank like a malformed LSHMOE_HIDDEN. */
    c->codec = LSHMOE_CODEC_LSH;
    if (lshmoe_param_choice("CODEC", &c->codec) != LSHMOE_OK) {
        pl_warn_once("%s; calls pass through (config-mismatch)", lshmoe_error_thread_msg());
        c->policy.config_error = 1;
        c->codec = LSHMOE_CODEC_LSH;
    }
    c->policy.row_mode = pl_policy_row_mode(c->codec);
    if (lshmoe_param_string("HIDDEN", &hidden) != LSHMOE_OK ||
        pl_policy_parse_hidden(&c->policy, hidden, err, sizeof err) != 0) {
        pl_warn_once("%s; calls pass through (config-mismatch)", err);
        c->policy.nhidden = 0;
        c->policy.config_error = 1;
    }
}

static void init(void)
{
    pl_config_t c;
    memset(&c, 0, sizeof c);
    read_config(&c);
    config = c;
    if (config.stats)
        atexit(print_stats);
}

const pl_config_t *pl_init(void)
{
    pthread_once(&init_once, init);
    return &config;
}
