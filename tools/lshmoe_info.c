/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_info: the library version, which components this build has, and
 * every LSHMOE_* parameter with its current value and where it came from.
 * `lshmoe_info --env-md` prints the parameter table as docs/env.md has it.
 */
#include <stdio.h>
#include <string.h>

#include "collectives/transport.h"
#include "lshmoe.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "lshmoe_build_config.h"

static const char *type_name(lshmoe_param_type_t t)
{
    switch (t) {
    case LSHMOE_PARAM_INT:    return "int";
    case LSHMOE_PARAM_U64:    return "u64";
    case LSHMOE_PARAM_DOUBLE: return "real";
    case LSHMOE_PARAM_CHOICE: return "choice";
    case LSHMOE_PARAM_STRING: return "string";
    }
    return "?";
}

/* Validates the parameter's current value exactly as the library will. */
static lshmoe_status_t check_value(const lshmoe_param_desc_t *p)
{
    long long iv;
    uint64_t uv;
    double dv;
    int idx;
    const char *sv;
    switch (p->type) {
    case LSHMOE_PARAM_INT:    return lshmoe_param_int(p->name, &iv);
    case LSHMOE_PARAM_U64:    return lshmoe_param_u64(p->name, &uv);
    case LSHMOE_PARAM_DOUBLE: return lshmoe_param_double(p->name, &dv);
    case LSHMOE_PARAM_CHOICE: return lshmoe_param_choice(p->name, &idx);
    case LSHMOE_PARAM_STRING: return lshmoe_param_string(p->name, &sv);
    }
    return LSHMOE_ERR_INTERNAL;
}

static void print_env_md(void)
{
    size_t n;
    const lshmoe_param_desc_t *t = lshmoe_param_table(&n);
    printf("| variable | type | default | range | meaning |\n");
    printf("|---|---|---|---|---|\n");
    for (size_t i = 0; i < n; i++)
        printf("| `LSHMOE_%s` | %s | `%s` | %s | %s |\n", t[i].name, type_name(t[i].type),
               t[i].defval, t[i].range ? t[i].range : "", t[i].doc);
}

static void print_info(void)
{
    printf("lshmoe %s (library version code %d, header %d)\n", lshmoe_version_string(),
           lshmoe_get_version(), LSHMOE_VERSION_CODE);
    printf("\ncomponents\n");
    printf("  %-16s %s\n", "CPU kernels", "yes");
    printf("  %-16s no (not written yet; CUDA toolkit found at build: %s)\n", "CUDA kernels",
           LSHMOE_HAVE_CUDA ? "yes" : "no");
    size_t ntl;
    const lshmoe_tl_info_t *tl = NULL;
    ntl = lshmoe_tl_list(&tl);
    for (size_t i = 0; i < ntl; i++) {
        char label[40];
        snprintf(label, sizeof label, "transport %s", tl[i].name);
        if (tl[i].why_not)
            printf("  %-16s no (%s)\n", label, tl[i].why_not);
        else
            printf("  %-16s %s\n", label, tl[i].built ? "yes" : "no");
    }
    printf("\nparameters (value, where it came from)\n");
    size_t n;
    const lshmoe_param_desc_t *t = lshmoe_param_table(&n);
    for (size_t i = 0; i < n; i++) {
        int from_env;
        const char *v = lshmoe_param_text(&t[i], &from_env);
        char var[64];
        snprintf(var, sizeof var, "LSHMOE_%s", t[i].name);
        printf("  %-24s %-10s %-8s %s\n", var, v[0] ? v : "\"\"", from_env ? "env" : "default",
               t[i].doc);
        if (check_value(&t[i]) != LSHMOE_OK)
            printf("  %-24s ^ INVALID: %s\n", "", lshmoe_last_error(NULL));
    }
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--env-md") == 0) {
        print_env_md();
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "usage: %s [--env-md]\n", argv[0]);
        return 2;
    }
    print_info();
    return 0;
}
