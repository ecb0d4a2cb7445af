/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <stdio.h>
#include <string.h>

#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "lshmoe/ctx_int.h"

lshmoe_status_t lshmoe_config_init(lshmoe_config_t *cfg)
{
    if (cfg == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "config is NULL");
    const lshmoe_config_t init = LSHMOE_CONFIG_INITIALIZER;
    *cfg = init;
    return LSHMOE_OK;
}

static int is_pow2(long long v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

/* An integer field: explicit values are checked against the table's range
 * (so the API and the environment accept the same values); unset ones come
 * from the environment or the default. */
static lshmoe_status_t resolve_int(const char *name, int32_t *field)
{
    const lshmoe_param_desc_t *p = lshmoe_param_find(name);
    long long v;
    if (*field == LSHMOE_UNSET_INT) {
        LSHMOE_CHECK(lshmoe_param_int(name, &v));
    } else {
        char text[32];
        snprintf(text, sizeof text, "%d", (int)*field);
        if (lshmoe_param_parse_int(p, text, &v) != LSHMOE_OK)
            return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "config %s: %d is outside %s",
                                name, (int)*field, p->range);
    }
    *field = (int32_t)v;
    return LSHMOE_OK;
}

/* A choice field whose enum values are `base` + index in the table's list. */
static lshmoe_status_t resolve_choice(const char *name, int32_t *field, int base,
                                      const int *values)
{
    const lshmoe_param_desc_t *p = lshmoe_param_find(name);
    int nchoices = 1;
    for (const char *c = p->range; *c; c++)
        nchoices += *c == '|';
    if (*field == LSHMOE_UNSET_INT) {
        int idx;
        LSHMOE_CHECK(lshmoe_param_choice(name, &idx));
        *field = values ? values[idx] : base + idx;
        return LSHMOE_OK;
    }
    for (int i = 0; i < nchoices; i++)
        if (*field == (values ? values[i] : base + i))
            return LSHMOE_OK;
    return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "config %s: %d is not a valid value (%s)",
                        name, (int)*field, p->range);
}

lshmoe_status_t lshmoe_config_resolve(const lshmoe_config_t *user, lshmoe_config_t *out)
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    if (user != NULL) {
        if (user->size < 3 * sizeof(uint32_t) || user->magic != LSHMOE_MAGIC)
            return lshmoe_error(LSHMOE_ERR_NOT_INIT,
                                "config has size %u and magic 0x%x: fill it with "
                                "LSHMOE_CONFIG_INITIALIZER or lshmoe_config_init()",
                                user->size, user->magic);
        if (user->version > LSHMOE_VERSION_CODE)
            return lshmoe_error(LSHMOE_ERR_VERSION,
                                "config is from header version %u, newer than library %d",
                                user->version, LSHMOE_VERSION_CODE);
        /* Fields the caller's (older, smaller) struct lacks stay unset. */
        size_t n = user->size < sizeof cfg ? user->size : sizeof cfg;
        memcpy(&cfg, user, n);
        cfg.size = sizeof cfg;
    }
    static const int residual_bits[] = {0, 4, 8};
    LSHMOE_CHECK(resolve_int("COMPRESS", &cfg.compress));
    LSHMOE_CHECK(resolve_int("HASHES", &cfg.num_hashes));
    LSHMOE_CHECK(resolve_int("CDIM", &cfg.cdim));
    LSHMOE_CHECK(resolve_choice("REDUCE", &cfg.reduce, LSHMOE_REDUCE_PAD, NULL));
    LSHMOE_CHECK(resolve_int("REDUCE_DIM", &cfg.reduce_dim));
    LSHMOE_CHECK(resolve_int("ROUNDS", &cfg.rounds));
    LSHMOE_CHECK(resolve_int("MIN_TOKENS", &cfg.min_tokens));
    LSHMOE_CHECK(resolve_choice("COMPENSATION", &cfg.compensation, LSHMOE_COMP_NONE, NULL));
    LSHMOE_CHECK(resolve_choice("RESIDUAL_BITS", &cfg.residual_bits, 0, residual_bits));
    LSHMOE_CHECK(resolve_choice("CODEC", &cfg.codec, LSHMOE_CODEC_LSH, NULL));
    if (cfg.max_error < 0.0) {
        LSHMOE_CHECK(lshmoe_param_double("MAX_ERROR", &cfg.max_error));
    } else if (!(cfg.max_error <= 1000.0)) {
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "config MAX_ERROR: %g is outside 0..1000",
                            cfg.max_error);
    }
    if (cfg.seed == LSHMOE_UNSET_U64)
        LSHMOE_CHECK(lshmoe_param_u64("SEED", &cfg.seed));
    if (cfg.min_ratio < 0.0) {
        LSHMOE_CHECK(lshmoe_param_double("MIN_RATIO", &cfg.min_ratio));
    } else if (!(cfg.min_ratio <= 1e6)) {
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "config MIN_RATIO: %g is outside 0..1000000",
                            cfg.min_ratio);
    }
    if (!is_pow2(cfg.cdim))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "CDIM %d is not a power of two",
                            (int)cfg.cdim);
    if (!is_pow2(cfg.reduce_dim))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "REDUCE_DIM %d is not a power of two",
                            (int)cfg.reduce_dim);
    if (cfg.reduce == LSHMOE_REDUCE_FOLD && cfg.cdim > cfg.reduce_dim)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "CDIM %d is larger than REDUCE_DIM %d: a cross-polytope "
                            "cannot exceed the folded dimension",
                            (int)cfg.cdim, (int)cfg.reduce_dim);
    cfg.transport = NULL;
    *out = cfg;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_config_codec_params(const lshmoe_config_t *c, lshmoe_codec_params_t *cp)
{
    *cp = (lshmoe_codec_params_t){
        .lsh = {.seed = c->seed, .num_hashes = c->num_hashes, .cdim = c->cdim,
                .reduce = c->reduce, .reduce_dim = c->reduce_dim, .rounds = c->rounds},
        .compress = c->compress,
        .min_tokens = (size_t)c->min_tokens,
        .min_ratio = c->min_ratio,
        .residual_bits = c->compensation == LSHMOE_COMP_RESIDUAL ? c->residual_bits : 0,
        .error_guard = 1,
        .max_error = c->max_error,
        .mode = c->codec,
    };
    return LSHMOE_OK;
}
