/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * MoE mode with the codec's row formats (LSHMOE_CODEC): dispatch rows and
 * combine outputs travel coded. On a 4-rank self world with linear
 * experts, against the same pass in the dtype (codec native, exact):
 *  - bytes: each fixed format sends exactly rows x its row bytes plus the
 *    prefixes, in both directions;
 *  - error: the output error is nonzero and bounded by what the stats
 *    report for the two exchanges;
 *  - backward: quantization is a straight-through step, so with linear
 *    experts dx is bit-identical to the unquantized pass (the gradient
 *    does not depend on the point the expert ran at);
 *  - budget: every rank's dispatch and combine error is within it; at
 *    budget 0 the pass is the exact reference, byte for byte;
 *  - the refinement codecs are refused (not yet in MoE mode).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe_moe.h"
#include "moe_self.h"
#include "testutil.h"

#define NTOK 64
#define PEERS (MOE_NR - 1) /* remote peers of each rank */

static moe_world_t *run_world(const moe_prob_t *p, const moe_experts_t *ex, int32_t codec,
                              double max_error)
{
    moe_world_t *w = moe_world_numeric(p, ex, 1, LSHMOE_COMP_RESIDUAL, MOE_HOOK_NONE, 1);
    w->ctx_codec = codec;
    w->ctx_max_error = max_error;
    if (moe_world_run(w) != 0)
        CU_FAIL("world did not run");
    return w;
}

/* Relative L2 distance of every rank's outputs y (fp32) from b's. */
static double y_error(const moe_world_t *a, const moe_world_t *b)
{
    double num = 0.0, den = 0.0;
    for (int r = 0; r < MOE_NR; r++) {
        const float *ya = a->res[r].y, *yb = b->res[r].y;
        for (size_t i = 0; i < a->in[r].n * a->p->H; i++) {
            num += ((double)ya[i] - yb[i]) * ((double)ya[i] - yb[i]);
            den += (double)yb[i] * yb[i];
        }
    }
    return den > 0.0 ? sqrt(num / den) : 0.0;
}

static int dx_identical(const moe_world_t *a, const moe_world_t *b)
{
    for (int r = 0; r < MOE_NR; r++)
        if (memcmp(a->res[r].dx, b->res[r].dx, a->in[r].n * moe_tb(a->p)) != 0)
            return 0;
    return 1;
}

static const int32_t fixed_codecs[] = {LSHMOE_CODEC_FP8, LSHMOE_CODEC_INT8, LSHMOE_CODEC_INT4,
                                       LSHMOE_CODEC_INT4E, LSHMOE_CODEC_INT2};
static const int fixed_fmts[] = {LSHMOE_QM_FP8, LSHMOE_QM_INT8, LSHMOE_QM_INT4,
                                 LSHMOE_QM_INT4E, LSHMOE_QM_INT2};

static void test_moe_codec_fixed_formats(void)
{
    moe_prob_t p = moe_prob_numeric(MOE_EXPERT_LINEAR, NTOK, 0.3);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *nat = run_world(&p, ex, LSHMOE_CODEC_NATIVE, LSHMOE_UNSET_DOUBLE);
    CU_ASSERT_FATAL(moe_world_all_ok(nat));
    moe_world_check_reference(nat, 0, 0, 1); /* native: the exact pass */
    size_t tb = moe_tb(&p);
    size_t dpre = 16, cpre = 8; /* prefixes: 2 local experts per rank */
    for (size_t c = 0; c < sizeof fixed_codecs / sizeof fixed_codecs[0]; c++) {
        /* the guard at its largest: every block in the format */
        moe_world_t *q = run_world(&p, ex, fixed_codecs[c], 1000.0);
        CU_ASSERT_FATAL(moe_world_all_ok(q));
        size_t rb = (size_t)lshmoe_qm_row_bytes(fixed_fmts[c], p.H);
        double dmax = 0.0, cmax = 0.0;
        for (int r = 0; r < MOE_NR; r++) {
            const lshmoe_moe_stats_t *s = &q->res[r].stats, *n = &nat->res[r].stats;
            /* rows x row bytes plus one prefix per remote peer */
            CU_ASSERT_EQUAL((s->bytes_remote_dispatch - PEERS * dpre) * tb,
                            (n->bytes_remote_dispatch - PEERS * dpre) * rb);
            CU_ASSERT_EQUAL(s->bytes_remote_combine_plain, n->bytes_remote_combine_plain);
            CU_ASSERT_EQUAL((s->bytes_remote_combine - PEERS * cpre) * tb,
                            n->bytes_remote_combine_plain * rb);
            CU_ASSERT_EQUAL(n->bytes_remote_combine, n->bytes_remote_combine_plain +
                                                         PEERS * cpre);
            CU_ASSERT(s->centroid_rel_error > 0.0);
            CU_ASSERT(s->combine_rel_error > 0.0);
            CU_ASSERT_EQUAL(n->centroid_rel_error, 0.0);
            CU_ASSERT_EQUAL(n->combine_rel_error, 0.0);
            dmax = fmax(dmax, s->centroid_rel_error);
            cmax = fmax(cmax, s->combine_rel_error);
        }
        /* W = I + 0.3 G / sqrt(H): a dispatch error reaches the output
         * amplified by at most about ||W|| (< 2 here), the combine error
         * as it is; the gate sum mixes rows of similar norm. */
        double ey = y_error(q, nat);
        fprintf(stderr, "codec %d: dispatch error %.4f, combine error %.4f, output error "
                        "%.4f, dispatch bytes x%.3f\n", (int)fixed_codecs[c], dmax, cmax, ey,
                (double)rb / (double)tb);
        CU_ASSERT(ey > 0.0);
        CU_ASSERT(ey <= 2.0 * dmax + cmax);
        CU_ASSERT(dx_identical(q, nat)); /* straight-through: same gradient */
        moe_world_free(q);
    }
    moe_world_free(nat);
    moe_experts_free(ex);
}

/* LSH groups with centroids in int8: the same groups as LSH with
 * centroids in the dtype, outputs close, dx identical (the compensation's
 * c cancels from the gradient, and the expert is linear). */
static void test_moe_codec_lsh_int8(void)
{
    moe_prob_t p = moe_prob_numeric(MOE_EXPERT_LINEAR, NTOK, 0.3);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *lsh = run_world(&p, ex, LSHMOE_CODEC_LSH, 1000.0);
    moe_world_t *q = run_world(&p, ex, LSHMOE_CODEC_LSH_INT8, 1000.0);
    CU_ASSERT_FATAL(moe_world_all_ok(lsh) && moe_world_all_ok(q));
    CU_ASSERT(moe_world_clusters_formed(q));
    CU_ASSERT_FATAL(moe_world_same_grouping(lsh, q));
    uint64_t bl = 0, bq = 0;
    for (int r = 0; r < MOE_NR; r++) {
        bl += lsh->res[r].stats.bytes_remote_dispatch + lsh->res[r].stats.bytes_remote_combine;
        bq += q->res[r].stats.bytes_remote_dispatch + q->res[r].stats.bytes_remote_combine;
        /* int8 adds little to the grouping error */
        CU_ASSERT(q->res[r].stats.centroid_rel_error <
                  lsh->res[r].stats.centroid_rel_error + 0.02);
    }
    fprintf(stderr, "lsh-int8: bytes x%.3f of lsh, outputs %.4f apart\n",
            (double)bq / (double)bl, y_error(q, lsh));
    CU_ASSERT(bq < bl);
    CU_ASSERT(y_error(q, lsh) > 0.0 && y_error(q, lsh) < 0.05);
    CU_ASSERT(dx_identical(q, lsh));
    moe_world_free(q);
    moe_world_free(lsh);
    moe_experts_free(ex);
}

static void test_moe_codec_budget(void)
{
    moe_prob_t p = moe_prob_numeric(MOE_EXPERT_LINEAR, NTOK, 0.3);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *nat = run_world(&p, ex, LSHMOE_CODEC_NATIVE, LSHMOE_UNSET_DOUBLE);
    CU_ASSERT_FATAL(moe_world_all_ok(nat));
    static const double budgets[] = {0.0, 0.02, 0.1, 0.3};
    uint64_t prev = UINT64_MAX;
    for (size_t b = 0; b < sizeof budgets / sizeof budgets[0]; b++) {
        moe_world_t *w = run_world(&p, ex, LSHMOE_CODEC_BUDGET, budgets[b]);
        CU_ASSERT_FATAL(moe_world_all_ok(w));
        uint64_t bytes = 0, plain = 0;
        for (int r = 0; r < MOE_NR; r++) {
            const lshmoe_moe_stats_t *s = &w->res[r].stats;
            CU_ASSERT(s->centroid_rel_error <= budgets[b] * (1.0 + 1e-12));
            CU_ASSERT(s->combine_rel_error <= budgets[b] * (1.0 + 1e-12));
            bytes += s->bytes_remote_dispatch + s->bytes_remote_combine;
            plain += nat->res[r].stats.bytes_remote_dispatch +
                     nat->res[r].stats.bytes_remote_combine;
        }
        fprintf(stderr, "budget %.2f: bytes x%.3f of native, outputs %.4f from exact\n",
                budgets[b], (double)bytes / (double)plain, y_error(w, nat));
        if (budgets[b] == 0.0) {
            /* nothing fits a zero budget: everything exact */
            CU_ASSERT_EQUAL(bytes, plain);
            moe_world_check_reference(w, 0, 0, 1);
        } else {
            CU_ASSERT(bytes < prev); /* a larger budget buys fewer bytes */
        }
        prev = bytes;
        moe_world_free(w);
    }
    moe_world_free(nat);
    moe_experts_free(ex);
}

static void test_moe_codec_refine_not_yet(void)
{
    moe_prob_t p = moe_prob_numeric(MOE_EXPERT_LINEAR, 8, 0.3);
    moe_experts_t *ex = moe_experts_new(&p);
    moe_world_t *w = run_world(&p, ex, LSHMOE_CODEC_LSH_REFINE, LSHMOE_UNSET_DOUBLE);
    for (int r = 0; r < MOE_NR; r++) {
        CU_ASSERT_EQUAL(w->res[r].st, LSHMOE_ERR_UNSUPPORTED);
        CU_ASSERT(strstr(w->res[r].msg, "not yet") != NULL);
    }
    moe_world_free(w);
    moe_experts_free(ex);
}

static const lt_test_t tests[] = {
    {"test_moe_codec_fixed_formats", test_moe_codec_fixed_formats},
    {"test_moe_codec_lsh_int8", test_moe_codec_lsh_int8},
    {"test_moe_codec_budget", test_moe_codec_budget},
    {"test_moe_codec_refine_not_yet", test_moe_codec_refine_not_yet},
};

LT_MAIN("moe_codec", tests)
