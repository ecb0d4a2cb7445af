/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"

/* The defaults of the hashing parameters come from the measurements in
 * docs/algorithm.md (GloVe text stream). Keep docs/env.md in step: a test
 * compares the two. */
static const lshmoe_param_desc_t params[] = {
    {"COMPRESS", LSHMOE_PARAM_INT, "1", "0..1",
     "1 = compress float tokens; 0 = exact plain all-to-all"},
    {"SEED", LSHMOE_PARAM_U64, "0x5eed", NULL,
     "hash seed (decimal or 0x hex); must be equal on every rank"},
    {"HASHES", LSHMOE_PARAM_INT, "6", "1..16",
     "number of cross-polytope hash functions L (more: lower error, less compression)"},
    {"CDIM", LSHMOE_PARAM_INT, "4", "2..256",
     "cross-polytope dimension, a power of two (larger: lower error, less compression)"},
    {"REDUCE", LSHMOE_PARAM_CHOICE, "fold", "pad|fold",
     "token reduction before the rotation: zero-pad to a power of two, or random-sign fold"},
    {"REDUCE_DIM", LSHMOE_PARAM_INT, "64", "16..4096",
     "coordinates after folding (power of two; used with REDUCE fold)"},
    {"ROUNDS", LSHMOE_PARAM_INT, "3", "1..3",
     "rounds of random signs + Hadamard transform in the rotation"},
    {"MIN_TOKENS", LSHMOE_PARAM_INT, "16", "0..1073741824",
     "segments with fewer tokens travel raw"},
    {"MIN_RATIO", LSHMOE_PARAM_DOUBLE, "1.2", "0..1000000",
     "segments that would compress less than this ratio travel raw"},
    {"MAX_ERROR", LSHMOE_PARAM_DOUBLE, "0.5", "0..1000",
     "error budget: a segment whose reconstruction error (relative L2 over the segment) would exceed this travels raw"},
    {"ADAPT", LSHMOE_PARAM_INT, "1", "0..1",
     "1 = per call, send plain when plain calls have cost less per byte than encoded ones; 0 = always compress"},
    {"COMPENSATION", LSHMOE_PARAM_CHOICE, "residual", "none|residual",
     "receiver-side compensation: none, or centroid + residual"},
    {"RESIDUAL_BITS", LSHMOE_PARAM_CHOICE, "0", "0|4|8",
     "transparent mode: bits per element of the coded residual (0 = not sent)"},
    {"TRANSPORT", LSHMOE_PARAM_STRING, "auto", "auto|self|mpi|nccl",
     "transport when the communicator kind is AUTO"},
    {"SELF_TIMEOUT_S", LSHMOE_PARAM_DOUBLE, "120", "0.001..1000000",
     "older name of TIMEOUT_S, used when TIMEOUT_S is unset"},
    {"LINK_GBPS", LSHMOE_PARAM_DOUBLE, "0", "0..100000",
     "emulated per-rank link bandwidth in Gb/s; 0 = off"},
    {"LINK_LATENCY_US", LSHMOE_PARAM_DOUBLE, "0", "0..1000000",
     "emulated per-message latency in microseconds"},
    {"LOG_LEVEL", LSHMOE_PARAM_CHOICE, "warn", "none|error|warn|info|debug|trace",
     "log verbosity (logs go to stderr, never stdout)"},
    {"LOG_FILE", LSHMOE_PARAM_STRING, "", NULL,
     "append logs to this file instead of stderr"},
    {"HIDDEN", LSHMOE_PARAM_STRING, "", NULL,
     "preload: token size(s) in elements, e.g. 100 or 768,1024; the first that divides every count is used"},
    {"DISABLE", LSHMOE_PARAM_INT, "0", "0..1",
     "preload: 1 = every intercepted call goes to MPI/NCCL untouched"},
    {"STATS", LSHMOE_PARAM_INT, "0", "0..1",
     "preload: 1 = print one line per communicator to stderr at exit"},
    {"PRELOAD_MIN_BYTES", LSHMOE_PARAM_INT, "65536", "0..1073741824",
     "preload: a call passes through when some rank sends fewer bytes than this to the others"},
    {"PRELOAD_ON_ERROR", LSHMOE_PARAM_CHOICE, "fallback", "fallback|fail",
     "preload: on an lshmoe error replay the plain call (warned once), or return MPI_ERR_OTHER"},
    {"TIMEOUT_S", LSHMOE_PARAM_DOUBLE, "120", "0.001..1000000",
     "seconds a collective waits for the other ranks (every transport) before LSHMOE_ERR_TIMEOUT"},
    {"CODEC", LSHMOE_PARAM_CHOICE, "lsh",
     "lsh|budget|native|fp8|int8|int4|int2|lsh-fp8|lsh-int8|lsh-int4|lsh-refine|lsh-refine-int8|lsh-refine-int4|int4e|lsh-refine-int4e|budget-rows",
     "segment encoding: budget = per segment the fewest bytes within MAX_ERROR; budget-rows = the same among the row formats only; others fixed"},
    {"CPU_ISA", LSHMOE_PARAM_CHOICE, "auto", "auto|scalar|avx2|avx512",
     "instruction set of the CPU kernels: auto = the best this CPU has (keys, coded rows, checksums and decoded tokens are identical at every level)"},
    {"THREADS", LSHMOE_PARAM_INT, "0", "0..64",
     "threads per rank for encoding and decoding (split over peers); 0 = online cores / ranks on this node if known, else 1; 1 = the caller's thread only"},
};

#define NPARAMS (sizeof params / sizeof params[0])

const lshmoe_param_desc_t *lshmoe_param_table(size_t *n_p)
{
    *n_p = NPARAMS;
    return params;
}

const lshmoe_param_desc_t *lshmoe_param_find(const char *name)
{
    for (size_t i = 0; i < NPARAMS; i++)
        if (strcmp(params[i].name, name) == 0)
            return &params[i];
    return NULL;
}

const char *lshmoe_param_text(const lshmoe_param_desc_t *p, int *from_env_p)
{
    char var[64];
    snprintf(var, sizeof var, "LSHMOE_%s", p->name);
    const char *v = getenv(var);
    int from_env = v != NULL && v[0] != '\0';
    if (from_env_p != NULL)
        *from_env_p = from_env;
    return from_env ? v : p->defval;
}

static lshmoe_status_t lookup(const char *name, lshmoe_param_type_t type,
                              const lshmoe_param_desc_t **p_out)
{
    const lshmoe_param_desc_t *p = lshmoe_param_find(name);
    if (p == NULL || p->type != type)
        return lshmoe_error(LSHMOE_ERR_INTERNAL, "no parameter LSHMOE_%s of this type", name);
    *p_out = p;
    return LSHMOE_OK;
}

/* "lo..hi" of an INT or DOUBLE entry. */
static void range_of(const lshmoe_param_desc_t *p, double *lo, double *hi)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    const char *dots = p->range ? strstr(p->range, "..") : NULL;
    if (dots != NULL) {
        /* strtod would read "1..3" as "1." then ".3": split at ".." first */
        *lo = strtod(p->range, NULL);
        *hi = strtod(dots + 2, NULL);
    }
}

/*
 * Every number goes through here first, so that all types read text the
 * same way: surrounding white space is ignored (' 6' and '6' are one
 * value, and ' -1' is as negative as '-1'), an optional sign follows, and
 * digits are decimal unless they start with 0x (never octal: '010' is ten).
 * Copies the trimmed text into buf[len]; *hex_p says whether it is 0x.
 */
static lshmoe_status_t number_text(const lshmoe_param_desc_t *p, const char *text,
                                   char *buf, size_t len, int *hex_p)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t n = strlen(text);
    while (n > 0 && isspace((unsigned char)text[n - 1]))
        n--;
    if (n == 0 || n >= len)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "LSHMOE_%s: '%s' is not a number",
                            p->name, text);
    memcpy(buf, text, n);
    buf[n] = '\0';
    const char *digits = buf + (buf[0] == '+' || buf[0] == '-');
    *hex_p = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_param_parse_int(const lshmoe_param_desc_t *p,
                                       const char *text, long long *out)
{
    char buf[64], *end;
    int hex;
    LSHMOE_CHECK(number_text(p, text, buf, sizeof buf, &hex));
    errno = 0;
    long long v = strtoll(buf, &end, hex ? 16 : 10);
    double lo, hi;
    range_of(p, &lo, &hi);
    if (errno != 0 || end == buf || *end != '\0')
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "LSHMOE_%s: '%s' is not an integer", p->name, text);
    if ((double)v < lo || (double)v > hi)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "LSHMOE_%s: %lld is outside %s", p->name, v, p->range);
    *out = v;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_param_parse_u64(const lshmoe_param_desc_t *p,
                                       const char *text, uint64_t *out)
{
    char buf[64], *end;
    int hex;
    LSHMOE_CHECK(number_text(p, text, buf, sizeof buf, &hex));
    /* strtoull would wrap '-1' to 2^64 - 1. */
    if (buf[0] == '-')
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "LSHMOE_%s: '%s' is negative; it must be an unsigned integer",
                            p->name, text);
    errno = 0;
    unsigned long long v = strtoull(buf, &end, hex ? 16 : 10);
    if (errno != 0 || end == buf || *end != '\0')
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "LSHMOE_%s: '%s' is not an unsigned integer", p->name, text);
    *out = (uint64_t)v;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_param_parse_double(const lshmoe_param_desc_t *p,
                                          const char *text, double *out)
{
    char buf[64], *end;
    int hex;
    LSHMOE_CHECK(number_text(p, text, buf, sizeof buf, &hex));
    errno = 0;
    double v = strtod(buf, &end);
    double lo, hi;
    range_of(p, &lo, &hi);
    if (errno != 0 || end == buf || *end != '\0' || !isfinite(v))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "LSHMOE_%s: '%s' is not a number", p->name, text);
    if (v < lo || v > hi)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "LSHMOE_%s: %g is outside %s", p->name, v, p->range);
    *out = v;
    return LSHMOE_OK;
}

int lshmoe_param_choice_index(const lshmoe_param_desc_t *p, const char *text)
{
    const char *c = p->range;
    /* White space around a word is ignored, as around a number. */
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    for (int idx = 0; c != NULL && *c != '\0'; idx++) {
        const char *bar = strchr(c, '|');
        size_t n = bar ? (size_t)(bar - c) : strlen(c);
        /* Choices are words: "WARN" means "warn". */
        if (n == len && strncasecmp(c, text, n) == 0)
            return idx;
        c = bar ? bar + 1 : c + n;
    }
    return -1;
}

lshmoe_status_t lshmoe_param_parse_choice(const lshmoe_param_desc_t *p,
                                          const char *text, int *index_out)
{
    int idx = lshmoe_param_choice_index(p, text);
    if (idx < 0)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "LSHMOE_%s: '%s' is not one of %s", p->name, text, p->range);
    *index_out = idx;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_param_int(const char *name, long long *out)
{
    const lshmoe_param_desc_t *p = NULL;
    LSHMOE_CHECK(lookup(name, LSHMOE_PARAM_INT, &p));
    return lshmoe_param_parse_int(p, lshmoe_param_text(p, NULL), out);
}

lshmoe_status_t lshmoe_param_u64(const char *name, uint64_t *out)
{
    const lshmoe_param_desc_t *p = NULL;
    LSHMOE_CHECK(lookup(name, LSHMOE_PARAM_U64, &p));
    return lshmoe_param_parse_u64(p, lshmoe_param_text(p, NULL), out);
}

lshmoe_status_t lshmoe_param_double(const char *name, double *out)
{
    const lshmoe_param_desc_t *p = NULL;
    LSHMOE_CHECK(lookup(name, LSHMOE_PARAM_DOUBLE, &p));
    return lshmoe_param_parse_double(p, lshmoe_param_text(p, NULL), out);
}

lshmoe_status_t lshmoe_param_choice(const char *name, int *index_out)
{
    const lshmoe_param_desc_t *p = NULL;
    LSHMOE_CHECK(lookup(name, LSHMOE_PARAM_CHOICE, &p));
    return lshmoe_param_parse_choice(p, lshmoe_param_text(p, NULL), index_out);
}

lshmoe_status_t lshmoe_param_string(const char *name, const char **out)
{
    const lshmoe_param_desc_t *p = NULL;
    LSHMOE_CHECK(lookup(name, LSHMOE_PARAM_STRING, &p));
    *out = lshmoe_param_text(p, NULL);
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_param_timeout(double *out)
{
    int from_env = 0;
    lshmoe_param_text(lshmoe_param_find("TIMEOUT_S"), &from_env);
    if (!from_env) {
        /* The self transport's older name keeps its users working. */
        int old_set = 0;
        lshmoe_param_text(lshmoe_param_find("SELF_TIMEOUT_S"), &old_set);
        if (old_set)
            return lshmoe_param_double("SELF_TIMEOUT_S", out);
    }
    return lshmoe_param_double("TIMEOUT_S", out);
}
