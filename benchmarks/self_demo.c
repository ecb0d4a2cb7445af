/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * self_demo: what lshmoe does to an all-to-all, in one screen. Four ranks
 * (threads on the in-process `self` transport) exchange bf16 tokens with
 * lshmoe_alltoallv, first plain (compress 0), then compressed with the
 * default configuration, then with 8-bit residuals, on two built-in data
 * sets: clustered tokens (what MoE batches look like: many near-duplicate
 * tokens) and i.i.d. Gaussian tokens (no structure: lshmoe must send them
 * raw). Every received token is checked against what was sent.
 *
 * Usage: self_demo [--tokens N] [--hidden H]   (tokens per peer)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lshmoe.h"
#include "lshmoe/common/dtype.h"
#include "tests/datagen.h"
#include "tests/ranks.h"

#define NR 4

typedef struct demo {
    size_t         tokens;      /* per peer */
    size_t         hidden;
    int            gaussian;
    int            compress;
    int            residual_bits;
    /* per-rank results */
    lshmoe_status_t st[NR];
    char           msg[NR][256];
    double         err_num[NR], err_den[NR], cos_sum[NR];
    lshmoe_stats_t stats[NR];
} demo_t;

/* Token j that rank r sends to rank p, as fp32. Clustered: 32 centers per
 * (r, p) segment, noise 0.1 per element around unit-variance centers. */
static void token(const demo_t *d, int r, int p, size_t j, float *out)
{
    uint64_t seg = (uint64_t)r * NR + (uint64_t)p;
    if (d->gaussian) {
        for (size_t k = 0; k < d->hidden; k++)
            out[k] = (float)lt_normal(seg + 1, j * d->hidden + k);
        return;
    }
    size_t c = (size_t)(lt_uniform(seg + 100, j) * 32);
    for (size_t k = 0; k < d->hidden; k++)
        out[k] = (float)(lt_normal(seg + 200, c * d->hidden + k) +
                         0.1 * lt_normal(seg + 300, j * d->hidden + k));
}

static void rank_main(lt_rank_ctx_t *rc)
{
    demo_t *d = rc->arg;
    int me = rc->rank;
    size_t tb = d->hidden * 2, n = d->tokens;
    size_t counts[NR], displs[NR];
    for (int p = 0; p < NR; p++) {
        counts[p] = n;
        displs[p] = (size_t)p * n;
    }
    uint16_t *send = malloc(NR * n * tb), *recv = malloc(NR * n * tb);
    float *row = malloc(d->hidden * sizeof(float)), *got = malloc(d->hidden * sizeof(float));
    lshmoe_ctx_t *ctx = NULL;
    if (send == NULL || recv == NULL || row == NULL || got == NULL) {
        d->st[me] = LSHMOE_ERR_NO_MEMORY;
        goto out;
    }
    for (int p = 0; p < NR; p++)
        for (size_t j = 0; j < n; j++) {
            token(d, me, p, j, row);
            lshmoe_row_from_f32(row, d->hidden, LSHMOE_DTYPE_BF16,
                                (char *)send + ((size_t)p * n + j) * tb);
        }
    lshmoe_comm_desc_t desc = lt_self_desc(rc);
    lshmoe_config_t cfg = LSHMOE_CONFIG_INITIALIZER;
    cfg.compress = d->compress;
    cfg.residual_bits = d->residual_bits;
    d->st[me] = lshmoe_ctx_create(&desc, &cfg, &ctx);
    /* A warm-up call sizes the workspaces; the second one is measured. */
    for (int it = 0; it < 2 && d->st[me] == LSHMOE_OK; it++) {
        lshmoe_stats_reset(ctx);
        d->st[me] = lshmoe_alltoallv(ctx, send, counts, displs, recv, counts, displs,
                                     LSHMOE_DTYPE_BF16, d->hidden, NULL);
    }
    snprintf(d->msg[me], sizeof d->msg[me], "%s",
             ctx ? lshmoe_last_error(ctx) : lshmoe_last_error(NULL));
    if (d->st[me] != LSHMOE_OK)
        goto out;
    d->stats[me] = (lshmoe_stats_t)LSHMOE_STATS_INITIALIZER;
    lshmoe_stats_get(ctx, &d->stats[me]);
    for (int p = 0; p < NR; p++)
        for (size_t j = 0; j < n; j++) {
            /* what p sent, rounded to bf16 as the sender did */
            token(d, p, me, j, row);
            uint16_t tmp[1];
            double dot = 0, na = 0, nb = 0;
            lshmoe_row_to_f32((char *)recv + ((size_t)p * n + j) * tb, LSHMOE_DTYPE_BF16,
                              d->hidden, got);
            for (size_t k = 0; k < d->hidden; k++) {
                lshmoe_row_from_f32(&row[k], 1, LSHMOE_DTYPE_BF16, tmp);
                double want = lshmoe_bf16_to_f32(tmp[0]), diff = got[k] - want;
                d->err_num[me] += diff * diff;
                d->err_den[me] += want * want;
                dot += got[k] * want;
                na += (double)got[k] * got[k];
                nb += want * want;
            }
            d->cos_sum[me] += dot / (sqrt(na * nb) + 1e-30);
        }
out:
    lshmoe_ctx_destroy(ctx);
    free(send);
    free(recv);
    free(row);
    free(got);
}

static int run_row(demo_t *d, const char *data, const char *mode)
{
    memset(d->st, 0, sizeof d->st);
    memset(d->err_num, 0, sizeof d->err_num);
    memset(d->err_den, 0, sizeof d->err_den);
    memset(d->cos_sum, 0, sizeof d->cos_sum);
    if (lt_run_ranks(NR, 120.0, rank_main, d) != 0) {
        fprintf(stderr, "self_demo: cannot start %d rank threads\n", NR);
        return 1;
    }
    double in = 0, wire = 0, num = 0, den = 0, cos = 0, t = 0;
    for (int r = 0; r < NR; r++) {
        if (d->st[r] != LSHMOE_OK) {
            fprintf(stderr, "self_demo: rank %d: %s: %s\n", r, lshmoe_status_name(d->st[r]),
                    d->msg[r]);
            return 1;
        }
        in += (double)d->stats[r].bytes_in;
        wire += (double)d->stats[r].bytes_wire;
        num += d->err_num[r];
        den += d->err_den[r];
        cos += d->cos_sum[r];
        if (d->stats[r].time_total_s > t)
            t = d->stats[r].time_total_s;
    }
    printf("%-10s %-14s %12.0f %12.0f %7.2f %9.4f %8.4f %9.2f\n", data, mode, in, wire,
           in / wire, sqrt(num / den), cos / (NR * NR * (double)d->tokens), t * 1e3);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    demo_t d = {.tokens = 512, .hidden = 1024};
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--tokens") == 0)
            d.tokens = strtoul(argv[++i], NULL, 10);
        else if (i + 1 < argc && strcmp(argv[i], "--hidden") == 0)
            d.hidden = strtoul(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: %s [--tokens N] [--hidden H]\n", argv[0]);
            return 2;
        }
    }
    if (d.tokens == 0 || d.hidden == 0 || d.tokens > (1u << 20) || d.hidden > (1u << 16)) {
        fprintf(stderr, "self_demo: tokens must be 1..1048576 and hidden 1..65536\n");
        return 2;
    }
    printf("# lshmoe %s demo: %d ranks on the in-process self transport, bf16, hidden %zu, "
           "%zu tokens per peer\n", lshmoe_version_string(), NR, d.hidden, d.tokens);
    printf("# bytes_in: remote token bytes handed in; wire_bytes: bytes sent; ratio = in/wire;\n"
           "# rel_err: relative L2 error of what arrived; time_ms: slowest rank, one call\n"
           "# (threads on one machine: times show codec cost, not network savings)\n");
    printf("%-10s %-14s %12s %12s %7s %9s %8s %9s\n", "data", "mode", "bytes_in", "wire_bytes",
           "ratio", "rel_err", "cosine", "time_ms");
    static const struct { const char *name; int compress, bits; } modes[] = {
        {"plain", 0, 0}, {"lshmoe", 1, 0}, {"lshmoe+res8", 1, 8}};
    for (int g = 0; g < 2; g++) {
        d.gaussian = g;
        for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++) {
            d.compress = modes[m].compress;
            d.residual_bits = modes[m].bits;
            if (run_row(&d, g ? "gaussian" : "clustered", modes[m].name) != 0)
                return 1;
        }
    }
    return 0;
}
