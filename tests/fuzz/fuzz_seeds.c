/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Writes the fuzz target's seed corpus into the directory given: real
 * segments from the public encoder, for every dtype, every encoding the
 * parameter table offers (CODEC: each row format, alone and as centroids,
 * and the budget ladder), every residual width it offers (RESIDUAL_BITS;
 * the table's codecs other than lsh take no residuals, so they are seeded
 * with 0) and data that the encoder
 * sends compressed (duplicates, clusters) or raw (too few tokens, noise),
 * (a 32-bit row index needs more than 2^16 rows, too large for a seed:
 * test_codec_fuzz covers it). Every combination is enumerated
 * from the library's own tables, so a format the encoder learns joins the
 * corpus without a change here. Each seed is checked with
 * lshmoe_codec_validate() before it is written. Exits non-zero on any
 * failure.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "kernels/common/quant_math.h"
#include "lshmoe/common/param.h"
#include "lshmoe_codec.h"

typedef enum seed_data { DATA_DUP, DATA_CLUSTER, DATA_NOISE, DATA_COUNT } seed_data_t;

static const char *const data_name[] = {"dup", "cluster", "noise"};

static uint64_t mix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

/* fp32 values, converted to the dtype byte by byte for non-float ones. */
static void fill(void *tokens, lshmoe_dtype_t dt, size_t hidden, size_t n, seed_data_t kind)
{
    size_t es = lshmoe_dtype_size(dt);
    unsigned char *b = tokens;
    for (size_t t = 0; t < n; t++) {
        size_t group = kind == DATA_DUP ? t % 3 : kind == DATA_CLUSTER ? t % 7 : t;
        for (size_t k = 0; k < hidden; k++) {
            uint64_t r = mix(group * 1000003u + k);
            float v = (float)((double)(r % 20001) / 10000.0 - 1.0);
            if (kind == DATA_CLUSTER)
                v += (float)((double)(mix(t * 7919u + k) % 101) / 5000.0);
            unsigned char *dst = b + (t * hidden + k) * es;
            if (dt == LSHMOE_DTYPE_FP32) {
                memcpy(dst, &v, 4);
            } else if (dt == LSHMOE_DTYPE_FP16 || dt == LSHMOE_DTYPE_BF16) {
                uint32_t u;
                memcpy(&u, &v, 4);
                uint16_t h = dt == LSHMOE_DTYPE_BF16 ? (uint16_t)(u >> 16)
                                                     : (uint16_t)(0x3c00u | (r & 0x3ffu));
                memcpy(dst, &h, 2);
            } else {
                for (size_t i = 0; i < es; i++)
                    dst[i] = (unsigned char)(r >> (8 * i));
            }
        }
    }
}

/* Row formats (the header's flags bits 4-6, docs/wire-format.md) seen in
 * the corpus: main checks that every one of them is there. */
#define WIRE_FMT_SHIFT 4
#define WIRE_FMT_COUNT 8
static int fmt_seen[WIRE_FMT_COUNT];

static int write_seed(const char *dir, const char *name, const void *seg, size_t len)
{
    lshmoe_segment_info_t info = LSHMOE_SEGMENT_INFO_INITIALIZER;
    if (lshmoe_codec_validate(seg, len, 0, &info) != LSHMOE_OK) {
        fprintf(stderr, "fuzz_seeds: %s does not validate: %s\n", name,
                lshmoe_last_error(NULL));
        return 1;
    }
    fmt_seen[(info.flags >> WIRE_FMT_SHIFT) & (WIRE_FMT_COUNT - 1)] = 1;
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(seg, 1, len, f) != len) {
        fprintf(stderr, "fuzz_seeds: cannot write %s\n", path);
        if (f)
            fclose(f);
        return 1;
    }
    fclose(f);
    return 0;
}

/* Budget seeds ask for this error: loose enough that the quantized and
 * clustered rungs fit the cluster data, tight enough that noise does not
 * fit every rung. */
#define SEED_BUDGET 0.1

static int one_seed(const char *dir, int codec, const char *codec_name, lshmoe_dtype_t dt,
                    int bits, seed_data_t kind, size_t hidden, size_t n)
{
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.codec = codec;
    /* A fixed codec should write its own format, not fall back to RAW
     * under the quality guard: the guard gets the largest budget. */
    cfg.max_error = codec == LSHMOE_CODEC_BUDGET ? SEED_BUDGET : 1000.0;
    cfg.residual_bits = bits;
    cfg.compensation = LSHMOE_COMP_RESIDUAL;
    cfg.min_tokens = 4;
    size_t cap = 0, len = 0;
    if (lshmoe_codec_max_encoded_bytes(dt, hidden, n, &cap) != LSHMOE_OK)
        return 1;
    void *tokens = malloc(n * hidden * lshmoe_dtype_size(dt) + 1), *seg = malloc(cap + 1);
    int bad = tokens == NULL || seg == NULL;
    if (!bad) {
        fill(tokens, dt, hidden, n, kind);
        bad = lshmoe_codec_encode_rows(NULL, &cfg, tokens, dt, hidden, n, seg, cap, &len) !=
              LSHMOE_OK;
        if (bad)
            fprintf(stderr, "fuzz_seeds: encode failed: %s\n", lshmoe_last_error(NULL));
    }
    if (!bad) {
        char name[128];
        snprintf(name, sizeof name, "seg-%s-%s-r%d-%s-h%zu-n%zu", codec_name,
                 lshmoe_dtype_name(dt), bits, data_name[kind], hidden, n);
        bad = write_seed(dir, name, seg, len);
    }
    free(tokens);
    free(seg);
    return bad;
}

/* Every dtype, residual width and data kind for one codec. */
static int codec_seeds(const char *dir, int codec, const char *codec_name, int *written)
{
    const lshmoe_param_desc_t *rb = lshmoe_param_find("RESIDUAL_BITS");
    int fails = 0;
    for (int dt = 0; dt < (int)LSHMOE_DTYPE_COUNT; dt++) {
        /* every residual width the table lists ("0|4|8") */
        for (const char *c = rb->range; c != NULL && *c != '\0';) {
            int bits = atoi(c);
            const char *bar = strchr(c, '|');
            c = bar ? bar + 1 : NULL;
            if (bits != 0 && codec != LSHMOE_CODEC_LSH)
                continue;
            for (int kind = 0; kind < DATA_COUNT; kind++) {
                fails += one_seed(dir, codec, codec_name, (lshmoe_dtype_t)dt, bits,
                                  (seed_data_t)kind, 24, 96);
                (*written)++;
            }
            fails += one_seed(dir, codec, codec_name, (lshmoe_dtype_t)dt, bits, DATA_DUP, 8,
                              2); /* few */
            (*written)++;
        }
    }
    return fails;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_seeds DIR\n");
        return 2;
    }
    /* every encoding the table lists ("lsh|budget|native|fp8|..."), in
     * the order of its choice index, which is the lshmoe_codec_mode_t */
    const lshmoe_param_desc_t *cd = lshmoe_param_find("CODEC");
    int fails = 0, written = 0, codec = 0;
    for (const char *c = cd->range; c != NULL && *c != '\0'; codec++) {
        const char *bar = strchr(c, '|');
        size_t len = bar ? (size_t)(bar - c) : strlen(c);
        char name[32];
        snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), c);
        fails += codec_seeds(argv[1], codec, name, &written);
        c = bar ? bar + 1 : NULL;
    }
    /* The table's fixed codecs name every row format: each must have
     * reached the corpus (a format that silently fell back to RAW would
     * leave the fuzzer without its seeds). */
    int nfmt = 0;
    for (int f = 0; f < WIRE_FMT_COUNT; f++)
        nfmt += fmt_seen[f];
    if (nfmt != LSHMOE_QM_COUNT) {
        fprintf(stderr, "fuzz_seeds: %d row formats in the corpus, expected %d\n", nfmt,
                LSHMOE_QM_COUNT);
        fails++;
    }
    printf("fuzz_seeds: %d seeds over %d codecs, %d row formats, %d failed\n", written, codec,
           nfmt, fails);
    return fails == 0 ? 0 : 1;
}
