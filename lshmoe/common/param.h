/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The one table of LSHMOE_* parameters: name, type, default, range and a
 * one-line doc. It serves config resolution, `lshmoe_info` and docs/env.md
 * (a test checks that docs/env.md lists the same names and defaults).
 * Values are read from the environment when asked for (contexts are created
 * rarely); a malformed or out-of-range value is an error naming the
 * variable, never silently replaced by the default.
 */
#ifndef LSHMOE_COMMON_PARAM_H
#define LSHMOE_COMMON_PARAM_H

#include <stddef.h>
#include <stdint.h>

#include "lshmoe.h"

typedef enum lshmoe_param_type {
    LSHMOE_PARAM_INT,     /* signed integer in range "lo..hi"              */
    LSHMOE_PARAM_U64,     /* unsigned 64-bit integer (decimal or 0x hex)   */
    LSHMOE_PARAM_DOUBLE,  /* real number in range "lo..hi"                 */
    LSHMOE_PARAM_CHOICE,  /* one of "a|b|c", any case; value = list index   */
    LSHMOE_PARAM_STRING   /* free text                                     */
} lshmoe_param_type_t;

typedef struct lshmoe_param_desc {
    const char         *name;    /* without the LSHMOE_ prefix             */
    lshmoe_param_type_t type;
    const char         *defval;  /* default, as text                       */
    const char         *range;   /* "1..16", "pad|fold", or NULL           */
    const char         *doc;     /* one line                               */
} lshmoe_param_desc_t;

/* The whole table; *n_p = number of entries. */
const lshmoe_param_desc_t *lshmoe_param_table(size_t *n_p);

/* Entry by name without prefix ("HASHES"), NULL if unknown. */
const lshmoe_param_desc_t *lshmoe_param_find(const char *name);

/* The value's text: the environment's if set and non-empty (then
 * *from_env_p = 1), else the default. */
const char *lshmoe_param_text(const lshmoe_param_desc_t *p, int *from_env_p);

/* Typed getters over lshmoe_param_text(). They validate type and range and
 * return LSHMOE_ERR_INVALID_ARG with a message naming LSHMOE_<name>. */
lshmoe_status_t lshmoe_param_int(const char *name, long long *out);
lshmoe_status_t lshmoe_param_u64(const char *name, uint64_t *out);
lshmoe_status_t lshmoe_param_double(const char *name, double *out);
lshmoe_status_t lshmoe_param_choice(const char *name, int *index_out);
lshmoe_status_t lshmoe_param_string(const char *name, const char **out);

/* The collective timeout in seconds: LSHMOE_TIMEOUT_S, or when that is
 * unset its older name LSHMOE_SELF_TIMEOUT_S, or the default. */
lshmoe_status_t lshmoe_param_timeout(double *out);

/* Parses `text` as parameter p (no environment involved). Numbers: white
 * space around them is ignored, an optional sign, decimal digits unless
 * they start with 0x (never octal); words: any case. */
lshmoe_status_t lshmoe_param_parse_int(const lshmoe_param_desc_t *p,
                                       const char *text, long long *out);
lshmoe_status_t lshmoe_param_parse_u64(const lshmoe_param_desc_t *p,
                                       const char *text, uint64_t *out);
lshmoe_status_t lshmoe_param_parse_double(const lshmoe_param_desc_t *p,
                                          const char *text, double *out);
lshmoe_status_t lshmoe_param_parse_choice(const lshmoe_param_desc_t *p,
                                          const char *text, int *index_out);

/* Index of `text` in a CHOICE entry's list, compared without regard to
 * case, or -1. Records no error and logs nothing: log set-up uses it. */
int lshmoe_param_choice_index(const lshmoe_param_desc_t *p, const char *text);

#endif /* LSHMOE_COMMON_PARAM_H */
