/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The exact backward pass of the approximate forward (docs/algorithm.md,
 * "MoE backward"). With dy_t = dL/dout_t, for a routed slot i = (t, s) of
 * group k (n_k members, centroid c_k, expert output E(c_k)):
 *
 *   dL/dgate_i = <dy_t, y_i>
 *   A_k        = sum over members i of gate_i dy_t(i)     (dL/dE(c_k))
 *   B_k        = J_E(c_k)^T A_k                         (the expert's backward)
 *   dL/dx_t    = sum over slots i of t of
 *                  (B_k - rho_e A_k) / n_k + rho_e gate_i dy_t   (n_k > 1)
 *                  B_k                                          (n_k = 1)
 *
 * with the rho_e combine used (a constant of the pass, also for SCALED).
 *
 * combine_backward forms the gate gradients, A (one row per group: the
 * backward exchange is as compressed as the forward) and the residual-path
 * terms, which never leave the owner; dispatch_backward brings B back.
 */
#include <string.h>

#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "lshmoe/moe_int.h"

static void gate_grads(const lshmoe_moe_t *m, const lshmoe_moe_handle_t *h, const char *dy,
                       float *dgates, float *dyf)
{
    size_t H = m->hidden, K = (size_t)m->topk;
    const float *y = h->y.ptr;
    for (size_t t = 0; t < h->ntok; t++) {
        lshmoe_row_to_f32(dy + t * m->tb, m->dtype, H, dyf);
        for (size_t s = 0; s < K; s++) {
            size_t i = h->slot_ent[t * K + s];
            double dot = 0.0;
            if (i != SIZE_MAX)
                for (size_t d = 0; d < H; d++)
                    dot += (double)dyf[d] * (double)y[i * H + d];
            dgates[t * K + s] = (float)dot;
        }
    }
}

/* A rows of the expert at position pos (into h->rows) and the owner-side
 * residual terms (into dxacc). acc: the expert's rows x H doubles. */
static void expert_grads(const lshmoe_moe_t *m, lshmoe_moe_handle_t *h, int pos, const char *dy,
                         double *acc, float *dyf)
{
    size_t H = m->hidden, K = (size_t)m->topk;
    size_t a = h->ent_off[pos], n = h->ent_off[pos + 1] - a;
    size_t r0 = h->row_off[pos], nr = h->row_off[pos + 1] - r0;
    const uint32_t *size = h->row_size + r0;
    double *dxacc = h->dxacc.ptr, rho = h->rho[pos];
    memset(acc, 0, nr * H * sizeof *acc);
    /* one read of each member's dy: A_k, and the rho g dy residual term */
    for (size_t i = a; i < a + n; i++) {
        size_t slot = h->ent_slot[i];
        uint32_t k = h->cluster_of[i];
        double g = h->gate[slot];
        double *ak = acc + (size_t)k * H;
        double *dx = dxacc + (slot / K) * H;
        lshmoe_row_to_f32(dy + (slot / K) * m->tb, m->dtype, H, dyf);
        for (size_t d = 0; d < H; d++)
            ak[d] += g * (double)dyf[d];
        if (rho != 0.0 && size[k] > 1)
            for (size_t d = 0; d < H; d++)
                dx[d] += rho * g * (double)dyf[d];
    }
    for (size_t k = 0; k < nr; k++)
        moe_store_f64(acc + k * H, H, m->dtype, dyf, (char *)h->rows.ptr + (r0 + k) * m->tb);
    if (rho == 0.0)
        return;
    /* -rho A_k / n_k once A_k is complete */
    for (size_t i = a; i < a + n; i++) {
        uint32_t k = h->cluster_of[i];
        if (size[k] == 1)
            continue;
        double c = rho / (double)size[k];
        const double *ak = acc + (size_t)k * H;
        double *dx = dxacc + (h->ent_slot[i] / K) * H;
        for (size_t d = 0; d < H; d++)
            dx[d] -= c * ak[d];
    }
}

static lshmoe_status_t owner_grads(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, const char *dy,
                                   float *dgates)
{
    size_t H = m->hidden, maxr = 1;
    for (int pos = 0; pos < m->nexp; pos++)
        if (h->row_off[pos + 1] - h->row_off[pos] > maxr)
            maxr = h->row_off[pos + 1] - h->row_off[pos];
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->rows, h->nrows * m->tb + 1));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->dxacc, (h->ntok + 1) * H * sizeof(double)));
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->fscratch, (maxr + 1) * H * sizeof(double)));
    double *acc = h->fscratch.ptr;
    float *dyf = (float *)(acc + maxr * H);
    memset(h->dxacc.ptr, 0, h->ntok * H * sizeof(double));
    if (dgates != NULL)
        gate_grads(m, h, dy, dgates, dyf);
    for (int pos = 0; pos < m->nexp; pos++)
        expert_grads(m, h, pos, dy, acc, dyf);
    return LSHMOE_OK;
}

static lshmoe_status_t moe_combine_backward_held(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle,
                                                 const void *dy, float *dgates, void *stream)
{
    /* the caller (the public wrapper below) checked the handle */
    lshmoe_error_clear();
    lshmoe_status_t local = moe_check_call(moe, handle, MOE_ST_COMBINED, dy, "dy", stream,
                                       "lshmoe_moe_combine_backward", NULL);
    if (local == LSHMOE_OK)
        local = owner_grads(moe, handle, dy, dgates);
    lshmoe_status_t st = local != LSHMOE_OK
                             ? moe_fail_round(moe, MOE_OP_COMBINE_BWD, local)
                             : moe_send_rows(moe, handle, MOE_OP_COMBINE_BWD, handle->bgout.ptr);
    if (st != LSHMOE_OK)
        return lshmoe_ctx_fail(moe->ctx, st);
    handle->state = MOE_ST_COMBINE_BWD;
    return LSHMOE_OK;
}

/* dx_t = residual terms + sum over slots of B_k / n_k (fp64, slot order). */
static lshmoe_status_t token_grads(lshmoe_moe_t *m, lshmoe_moe_handle_t *h, char *dx)
{
    size_t H = m->hidden, K = (size_t)m->topk;
    LSHMOE_CHECK(lshmoe_buf_reserve(&h->fscratch, 2 * H * sizeof(double)));
    double *acc = h->fscratch.ptr;
    float *bf = (float *)(acc + H);
    const double *dxacc = h->dxacc.ptr;
    for (size_t t = 0; t < h->ntok; t++) {
        memcpy(acc, dxacc + t * H, H * sizeof *acc);
        for (size_t s = 0; s < K; s++) {
            size_t i = h->slot_ent[t * K + s];
            if (i == SIZE_MAX)
                continue;
            size_t r = h->row_off[m->pos_of[h->idx[t * K + s]]] + h->cluster_of[i];
            double n = (double)h->row_size[r];
            lshmoe_row_to_f32((const char *)h->rows.ptr + r * m->tb, m->dtype, H, bf);
            for (size_t d = 0; d < H; d++)
                acc[d] += (double)bf[d] / n;
        }
        moe_store_f64(acc, H, m->dtype, bf, dx + t * m->tb);
    }
    return LSHMOE_OK;
}

static lshmoe_status_t moe_dispatch_backward_held(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle,
                                                  void *dx, void *stream)
{
    /* the caller (the public wrapper below) checked the handle */
    lshmoe_error_clear();
    lshmoe_status_t local = moe_check_call(moe, handle, MOE_ST_COMBINE_BWD, dx, "dx", stream,
                                       "lshmoe_moe_dispatch_backward", NULL);
    if (local == LSHMOE_OK)
        local = moe_run_experts(moe, handle, 1, NULL);
    lshmoe_status_t st = local != LSHMOE_OK
                             ? moe_fail_round(moe, MOE_OP_DISPATCH_BWD, local)
                             : moe_return_rows(moe, handle, MOE_OP_DISPATCH_BWD,
                                               handle->bgin.ptr);
    if (st == LSHMOE_OK)
        st = token_grads(moe, handle, dx);
    if (st != LSHMOE_OK)
        return lshmoe_ctx_fail(moe->ctx, st);
    return LSHMOE_OK;
}

/* The context is claimed for the whole call (lshmoe_ctx_enter). */
lshmoe_status_t lshmoe_moe_combine_backward(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle,
                                            const void *dy, float *dgates, void *stream)
{
    if (moe == NULL || moe->magic != LSHMOE_MOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    LSHMOE_CHECK(lshmoe_ctx_enter(moe->ctx, "lshmoe_moe_combine_backward"));
    lshmoe_status_t st = moe_combine_backward_held(moe, handle, dy, dgates, stream);
    lshmoe_ctx_leave(moe->ctx);
    return st;
}

/* The context is claimed for the whole call (lshmoe_ctx_enter). */
lshmoe_status_t lshmoe_moe_dispatch_backward(lshmoe_moe_t *moe, lshmoe_moe_handle_t *handle,
                                             void *dx, void *stream)
{
    if (moe == NULL || moe->magic != LSHMOE_MOE_MAGIC)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "MoE layer is NULL or invalid");
    LSHMOE_CHECK(lshmoe_ctx_enter(moe->ctx, "lshmoe_moe_dispatch_backward"));
    lshmoe_status_t st = moe_dispatch_backward_held(moe, handle, dx, stream);
    lshmoe_ctx_leave(moe->ctx);
    return st;
}
