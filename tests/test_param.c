/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The parameter table: parsing, ranges, and docs/env.md agreeing with it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "testutil.h"

static void test_param_defaults_parse(void)
{
    /* Every default must be valid for its own type and range. */
    size_t n;
    const lshmoe_param_desc_t *t = lshmoe_param_table(&n);
    CU_ASSERT_TRUE(n >= 10);
    for (size_t i = 0; i < n; i++) {
        long long iv;
        double dv;
        int idx;
        switch (t[i].type) {
        case LSHMOE_PARAM_INT:
            CU_ASSERT_EQUAL(lshmoe_param_parse_int(&t[i], t[i].defval, &iv), LSHMOE_OK);
            break;
        case LSHMOE_PARAM_DOUBLE:
            CU_ASSERT_EQUAL(lshmoe_param_parse_double(&t[i], t[i].defval, &dv), LSHMOE_OK);
            break;
        case LSHMOE_PARAM_CHOICE:
            CU_ASSERT_EQUAL(lshmoe_param_parse_choice(&t[i], t[i].defval, &idx), LSHMOE_OK);
            break;
        default:
            break;
        }
        CU_ASSERT_PTR_NOT_NULL(t[i].doc);
        CU_ASSERT_TRUE(strlen(t[i].doc) > 10);
    }
}

static void test_param_env_overrides_and_errors_name_the_variable(void)
{
    long long v;
    setenv("LSHMOE_HASHES", "9", 1);
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_OK);
    CU_ASSERT_EQUAL(v, 9);
    setenv("LSHMOE_HASHES", "9x", 1);
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_error_thread_msg(), "LSHMOE_HASHES"));
    setenv("LSHMOE_HASHES", "17", 1);
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_error_thread_msg(), "1..16"));
    setenv("LSHMOE_HASHES", "", 1); /* empty = unset */
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_OK);
    CU_ASSERT_EQUAL(v, 6);
    unsetenv("LSHMOE_HASHES");

    int idx;
    setenv("LSHMOE_REDUCE", "pad", 1);
    CU_ASSERT_EQUAL(lshmoe_param_choice("REDUCE", &idx), LSHMOE_OK);
    CU_ASSERT_EQUAL(idx, 0);
    setenv("LSHMOE_REDUCE", "fol", 1);
    CU_ASSERT_EQUAL(lshmoe_param_choice("REDUCE", &idx), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_error_thread_msg(), "pad|fold"));
    unsetenv("LSHMOE_REDUCE");

    uint64_t s;
    setenv("LSHMOE_SEED", "0x10", 1);
    CU_ASSERT_EQUAL(lshmoe_param_u64("SEED", &s), LSHMOE_OK);
    CU_ASSERT_EQUAL(s, 16);
    setenv("LSHMOE_SEED", "-1", 1);
    CU_ASSERT_EQUAL(lshmoe_param_u64("SEED", &s), LSHMOE_ERR_INVALID_ARG);
    unsetenv("LSHMOE_SEED");

    double d;
    setenv("LSHMOE_MIN_RATIO", "nan", 1);
    CU_ASSERT_EQUAL(lshmoe_param_double("MIN_RATIO", &d), LSHMOE_ERR_INVALID_ARG);
    unsetenv("LSHMOE_MIN_RATIO");
    CU_ASSERT_PTR_NULL(lshmoe_param_find("NO_SUCH_THING"));
}

/* docs/env.md must list every parameter with its default in a table row
 * "| `LSHMOE_<NAME>` | type | `default` | ...", and nothing else. */
static void test_param_docs_env_md_matches_table(void)
{
    const char *root = getenv("LSHMOE_SOURCE_ROOT");
    CU_ASSERT_PTR_NOT_NULL_FATAL(root);
    char path[4096];
    snprintf(path, sizeof path, "%s/docs/env.md", root);
    FILE *f = fopen(path, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    static char doc[1 << 16];
    size_t len = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[len] = '\0';

    size_t n;
    const lshmoe_param_desc_t *t = lshmoe_param_table(&n);
    for (size_t i = 0; i < n; i++) {
        char row[256];
        snprintf(row, sizeof row, "| `LSHMOE_%s` |", t[i].name);
        char *at = strstr(doc, row);
        CU_ASSERT_PTR_NOT_NULL(at);
        if (at == NULL) {
            fprintf(stderr, "docs/env.md lacks LSHMOE_%s\n", t[i].name);
            continue;
        }
        char *eol = strchr(at, '\n');
        char def[128];
        snprintf(def, sizeof def, "| `%s` |", t[i].defval);
        char *d = strstr(at, def);
        CU_ASSERT_TRUE(d != NULL && (eol == NULL || d < eol));
    }
    /* And no documented variable that the table lacks. */
    size_t rows = 0;
    for (char *p = doc; (p = strstr(p, "| `LSHMOE_")) != NULL; p++)
        rows++;
    CU_ASSERT_EQUAL(rows, n);
}

/* Decimal means decimal, and white space and signs read the same for
 * every type of number. */
static void test_param_numbers_decimal_whitespace_and_signs(void)
{
    long long v = 0;
    uint64_t u = 0;
    double d = 0;
    setenv("LSHMOE_HASHES", "010", 1); /* not octal 8 */
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_OK);
    CU_ASSERT_EQUAL(v, 10);
    setenv("LSHMOE_HASHES", " 7 ", 1);
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_OK);
    CU_ASSERT_EQUAL(v, 7);
    setenv("LSHMOE_HASHES", "0x3", 1); /* hex only with 0x */
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_OK);
    CU_ASSERT_EQUAL(v, 3);
    setenv("LSHMOE_HASHES", "08", 1); /* an octal reader rejects this */
    CU_ASSERT_EQUAL(lshmoe_param_int("HASHES", &v), LSHMOE_OK);
    CU_ASSERT_EQUAL(v, 8);
    unsetenv("LSHMOE_HASHES");
    setenv("LSHMOE_CDIM", "016", 1);
    CU_ASSERT_EQUAL(lshmoe_param_int("CDIM", &v), LSHMOE_OK);
    CU_ASSERT_EQUAL(v, 16);
    unsetenv("LSHMOE_CDIM");

    setenv("LSHMOE_SEED", "010", 1);
    CU_ASSERT_EQUAL(lshmoe_param_u64("SEED", &u), LSHMOE_OK);
    CU_ASSERT_EQUAL(u, 10);
    setenv("LSHMOE_SEED", " 0x10", 1);
    CU_ASSERT_EQUAL(lshmoe_param_u64("SEED", &u), LSHMOE_OK);
    CU_ASSERT_EQUAL(u, 16);
    const char *negative[] = {"-1", " -1", "\t-1", "-0x1"};
    for (size_t i = 0; i < sizeof negative / sizeof negative[0]; i++) {
        setenv("LSHMOE_SEED", negative[i], 1);
        CU_ASSERT_EQUAL(lshmoe_param_u64("SEED", &u), LSHMOE_ERR_INVALID_ARG);
        CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_error_thread_msg(), "LSHMOE_SEED"));
    }
    setenv("LSHMOE_SEED", "+5", 1);
    CU_ASSERT_EQUAL(lshmoe_param_u64("SEED", &u), LSHMOE_OK);
    CU_ASSERT_EQUAL(u, 5);
    unsetenv("LSHMOE_SEED");

    setenv("LSHMOE_MIN_RATIO", " 2.5 ", 1);
    CU_ASSERT_EQUAL(lshmoe_param_double("MIN_RATIO", &d), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(d, 2.5, 0.0);
    setenv("LSHMOE_MIN_RATIO", " -1", 1);
    CU_ASSERT_EQUAL(lshmoe_param_double("MIN_RATIO", &d), LSHMOE_ERR_INVALID_ARG);
    unsetenv("LSHMOE_MIN_RATIO");

    int idx = -1;
    setenv("LSHMOE_REDUCE", " PAD", 1);
    CU_ASSERT_EQUAL(lshmoe_param_choice("REDUCE", &idx), LSHMOE_OK);
    CU_ASSERT_EQUAL(idx, 0);
    unsetenv("LSHMOE_REDUCE");
}

/* LSHMOE_TIMEOUT_S serves every transport; the self transport's older
 * name still works when the new one is unset. */
static void test_param_timeout_and_its_older_name(void)
{
    double t = 0;
    unsetenv("LSHMOE_TIMEOUT_S");
    unsetenv("LSHMOE_SELF_TIMEOUT_S");
    CU_ASSERT_EQUAL(lshmoe_param_timeout(&t), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, 120.0, 0.0);
    setenv("LSHMOE_SELF_TIMEOUT_S", "5", 1);
    CU_ASSERT_EQUAL(lshmoe_param_timeout(&t), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, 5.0, 0.0);
    setenv("LSHMOE_TIMEOUT_S", "3", 1);
    CU_ASSERT_EQUAL(lshmoe_param_timeout(&t), LSHMOE_OK);
    CU_ASSERT_DOUBLE_EQUAL(t, 3.0, 0.0);
    setenv("LSHMOE_TIMEOUT_S", "0", 1);
    CU_ASSERT_EQUAL(lshmoe_param_timeout(&t), LSHMOE_ERR_INVALID_ARG);
    CU_ASSERT_PTR_NOT_NULL(strstr(lshmoe_error_thread_msg(), "LSHMOE_TIMEOUT_S"));
    unsetenv("LSHMOE_TIMEOUT_S");
    unsetenv("LSHMOE_SELF_TIMEOUT_S");
}

static const lt_test_t tests[] = {
    {"test_param_defaults_parse", test_param_defaults_parse},
    {"test_param_env_overrides_and_errors_name_the_variable",
     test_param_env_overrides_and_errors_name_the_variable},
    {"test_param_docs_env_md_matches_table", test_param_docs_env_md_matches_table},
    {"test_param_numbers_decimal_whitespace_and_signs",
     test_param_numbers_decimal_whitespace_and_signs},
    {"test_param_timeout_and_its_older_name", test_param_timeout_and_its_older_name},
};

LT_MAIN("param", tests)
