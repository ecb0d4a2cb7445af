/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * lshmoe_moe_combine: the experts run (registered functions), their outputs
 * for the centroids go back to the owners, and each owner reconstructs one
 * output per routed slot with compensation,
 *
 *   y_ts = E(c_k) + rho * (x_t - c_k)      (no term for groups of one)
 *
 * then sums the slots with their gate weights. y is formed in fp64 and kept
 * in fp32 (the backward pass needs it for the gate gradients).
 */
#include <math.h>
#include <string.h>

#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/moe_int.h"

lshmoe_status_t moe_run_experts(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int bwd,
                                void *stream)
{
    for (int j = 0; j < m->nlocal; j++) {
        const lshmoe_moe_batch_t *b = &h->batches[j];
        if (b->rows == 0)
            continue;
        void *user = m->user[j];
        int rc = 0;
        if (!bwd) {
            lshmoe_moe_expert_fn f = m->fwd[j];
            if (f == NULL) {
                f = m->fwd_all;
                user = m->user_all;
            }
            if (f != NULL)
                rc = f(b->expert, b->in, b->out, b->rows, user, stream);
        } else {
            lshmoe_moe_expert_bwd_fn f = m->bwd[j];
            if (f == NULL) {
                f = m->bwd_all;
                user = m->user_all;
            }
            if (f != NULL)
                rc = f(b->expert, b->in, b->grad_out, b->grad_in, b->rows, user, stream);
        }
        if (rc != 0)
            return lshmoe_error(LSHMOE_ERR_CALLBACK, "the %s function of expert %d returned "
                                "%d", bwd ? "backward" : "forward", b->expert, rc);
    }
    return LSHMOE_OK;
}

/* y rows of the entries of the expert at position pos. */
static void reconstruct_expert(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int pos,
                               float *ef, float *xf, float *cf)
{
    size_t H = m->hidden, a = h->ent_off[pos], n = h->ent_off[pos + 1] - a;
    const char *erows = (const char *)h->rows.ptr + h->row_off[pos] * m->tb;
    const char *crows = moe_centroid_base(m, h, pos);
    const uint32_t *size = h->row_size + h->row_off[pos];
    float *y = (float *)h->y.ptr + a * H;
    double rho = h->rho[pos];
    for (size_t i = 0; i < n; i++, y += H) {
        uint32_t k = h->cluster_of[a + i];
        lshmoe_row_to_f32(erows + (size_t)k * m->tb, m->dtype, H, ef);
        if (rho == 0.0 || size[k] == 1) {
            memcpy(y, ef, H * sizeof *y);
            continue;
        }
        lshmoe_row_to_f32((const char *)h->staged.ptr + (a + i) * m->tb, m->dtype, H, xf);
        lshmoe_row_to_f32(crows + (size_t)k * m->tb, m->dtype, H, cf);
        for (size_t d = 0; d < H; d++)
            y[d] = (float)((double)ef[d] + rho * ((double)xf[d] - (double)cf[d]));
    }
}

/* The compensation factor of each expert for this pass. */
static void choose_rho(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h)
{
    for (int pos = 0; pos < m->nexp; pos++) {
        double a = m->alpha[m->order[pos]];
        h->rho[pos] = m->comp == LSHMOE_COMP_NONE       ? 0.0
                      : m->comp == LSHMOE_COMP_RESIDUAL ? 1.0
                      : isnan(a)                        ? 1.0 /* no fit yet */
                                                        : a;
    }
}

/*
 * SCALED: the least-squares slope of E over this pass's (centroid, output)
 * pairs of the expert at pos, sum <o - mean o, c - mean c> / sum |c - mean
 * c|^2: the multiple of the identity closest to the expert's Jacobian
 * along the directions its centroids span. It feeds the next passes only,
 * so that rho is a constant of each pass and the backward stays exact.
 */
static void fit_alpha(lshmoe_moe_t *m, const lshmoe_moe_handle_t *h, int pos, float *of,
                      float *cf, double *mo, double *mc)
{
    size_t H = m->hidden, r0 = h->row_off[pos], n = h->row_off[pos + 1] - r0;
    if (n < 2)
        return;
    const char *orows = (const char *)h->rows.ptr + r0 * m->tb;
    const char *crows = moe_centroid_base(m, h, pos);
    memset(mo, 0, H * sizeof *mo);
    memset(mc, 0, H * sizeof *mc);
    for (size_t k = 0; k < n; k++) {
        lshmoe_row_to_f32(orows + k * m->tb, m->dtype, H, of);
        lshmoe_row_to_f32(crows + k * m->tb, m->dtype, H, cf);
        for (size_t d = 0; d < H; d++) {
            mo[d] += of[d] / (double)n;
            mc[d] += cf[d] / (double)n;
        }
    }
    double num = 0.0, den = 0.0;
    for (size_t k = 0; k < n; k++) {
        lshmoe_row_to_f32(orows + k * m->tb, m->dtype, H, of);
        lshmoe_row_to_f32(crows + k * m->tb, m->dtype, H, cf);
        for (size_t d = 0; d < H; d++) {
            num += ((double)of[d] - mo[d]) * ((double)cf[d] - mc[d]);
            den += ((double)cf[d] - mc[d]) * ((double)cf[d] - mc[d]);
        }
    }
    double fit = num / den;
    if (!(den > 0.0) || !isfinite(fit))
        return;
    double *a = &m->alpha[m->order[pos]];
    *a = isnan(*a) ? fit : (1.0 - MOE_ALPHA_EWMA) * *a + MOE_ALPHA_EWMA * fit;
}

/* out_t = sum over slots, in slot order, of gate * y (fp64). */
static void gate_sum(const lshmoe_moe_t *m, const lshmoe_moe_handle_t *h, char *out,
                     double *acc, float *tmp)
{
    size_t H = m->hidden, K = (size_t)m->topk;
    const float *y = h->y.ptr;
    for (size_t t = 0; t < h->ntok; t++) {
        memset(acc, 0, H * sizeof *acc);
        for (size_t s = 0; s < K; s++) {
            size_t i = h->slot_ent[t * K + s];
            if (i == SIZE_MAX)
                continue;
            double g = h->gate[t * K + s];
            const float *yi = y + i * H;
            for (size_t d = 0; d < H; d++)
                acc[d] += g * (double)yi[d];
        }
        moe_store_f64(acc, H, m->dtype, tmp, out + t * m->tb);
    }
}

static lshmoe_status_t reconstruct(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, void *out)
{
    size_t H = m->hidden;
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->y, (h->nent + 1) * H * sizeof(float)));
    /* three float rows, then (from 2H doubles on) one double row */
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->fscratch, 3 * H * sizeof(double) + 64));
    float *ef = h->fscratch.ptr, *xf = ef + H, *cf = xf + H;
    double *acc = (double *)h->fscratch.ptr + 2 * H; /* past the three float rows */
    choose_rho(m, h);
    for (int pos = 0; pos < m->nexp; pos++)
        reconstruct_expert(m, h, pos, ef, xf, cf);
    if (m->token_fn != NULL)
        for (int pos = 0; pos < m->nexp; pos++) {
            size_t a = h->ent_off[pos], n = h->ent_off[pos + 1] - a;
            if (n > 0 && m->token_fn(LSHMOE_MOE_HOOK_POST_RECONSTRUCT, m->order[pos],
                                     (float *)h->y.ptr + a * H, n, m->token_user) != 0)
                return lshmoe_error(LSHMOE_ERR_CALLBACK, "the POST_RECONSTRUCT token hook "
                                    "failed for expert %d", m->order[pos]);
        }
    gate_sum(m, h, out, acc, ef);
    if (m->comp == LSHMOE_COMP_SCALED) {
        LSHMOE_CHECK(lshmoe_buf_reserve(&h->fscratch, 4 * H * sizeof(double)));
        double *mo = h->fscratch.ptr, *mc = mo + H;
        float *of = (float *)(mc + H), *cf2 = of + H;
        for (int pos = 0; pos < m->nexp; pos++)
            fit_alpha(m, h, pos, of, cf2, mo, mc);
    }
    return LSHMOE_OK;
}

static lshmoe_status_t moe_combine_held(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle, void *y,
                                        void *stream)
{
    /* the caller (the public wrapper below) checked the handle */
    lshmoe_error_clear();
    int dev = 0;
    lshmoe_status_t local = moe_check_call(moe, handle, MOE_ST_DISPATCHED, y, "y", stream,
                                           "lshmoe_moe_combine", &dev);
    if (local == LSHMOE_OK && dev != handle->on_dev)
        local = lshmoe_error(LSHMOE_ERR_INVALID_ARG, "lshmoe_moe_combine: y is %s memory but "
                             "the handle was dispatched from %s memory: pass x and y in the "
                             "same memory", dev ? "device" : "host",
                             handle->on_dev ? "device" : "host");
    if (local == LSHMOE_OK && dev) {
        lshmoe_status_t st = moe_dev_combine(moe, handle, y, stream);
        if (st != LSHMOE_OK)
            return lshmoe_ctx_fail(moe->ctx, st);
        handle->state = MOE_ST_COMBINED;
        return LSHMOE_OK;
    }
    if (local == LSHMOE_OK)
        local = moe_run_experts(moe, handle, 0, NULL);
    lshmoe_status_t st = local != LSHMOE_OK
                             ? moe_fail_round(moe, MOE_OP_COMBINE, local)
                             : moe_return_rows(moe, handle, MOE_OP_COMBINE, handle->bout.ptr);
    if (st == LSHMOE_OK)
        st = reconstruct(moe, handle, y);
    if (st != LSHMOE_OK)
        return lshmoe_ctx_fail(moe->ctx, st);
    handle->state = MOE_ST_COMBINED;
    return LSHMOE_OK;
}

/* The context is claimed for the whole call (lshmoe_ctx_enter). */
lshmoe_status_t lshmoe_moe_combine(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle, void *y,
                                   void *stream)
{
    if (moe == NULL || moe->magic != LSHMOE_MOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    LSHMOE_CHECK(lshmoe_ctx_enter(moe->ctx, "lshmoe_moe_combine"));
    lshmoe_status_t st = moe_combine_held(moe, handle, y, stream);
    lshmoe_ctx_leave(moe->ctx);
    return st;
}
