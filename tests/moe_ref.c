/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "datagen.h"
#include "lshmoe/common/dtype.h"
#include "moe_ref.h"

moe_prob_t moe_prob_default(int nranks, int E, int K, size_t H, lshmoe_dtype_t dtype,
                            size_t ntok)
{
    moe_prob_t p;
    memset(&p, 0, sizeof p);
    p.nranks = nranks;
    p.E = E;
    p.K = K;
    p.H = H;
    p.dtype = dtype;
    for (int r = 0; r < nranks && r < MOE_MAX_RANKS; r++)
        p.ntok[r] = ntok;
    p.data = MOE_X_GAUSS;
    p.route = MOE_ROUTE_RANDOM;
    p.gates = MOE_GATES_RANDOM;
    p.special = 0;
    p.drop_all_rank = -1;
    p.seed = 1;
    p.kind = MOE_EXPERT_LINEAR;
    /* general experts: far from the identity, so a wrong expert row or a
     * stray residual term shows */
    p.w_diag = 0.0;
    p.w_noise = 1.0;
    p.b_scale = 0.5;
    p.expert_rank = NULL;
    return p;
}

moe_prob_t moe_prob_identity_clustered(int nranks)
{
    moe_prob_t p = moe_prob_default(nranks, 8, 2, 64, LSHMOE_DTYPE_FP32, 128);
    p.data = MOE_X_CLUSTERED;
    p.gates = MOE_GATES_DYADIC;
    p.kind = MOE_EXPERT_IDENTITY;
    return p;
}

size_t moe_tb(const moe_prob_t *p)
{
    return p->H * lshmoe_dtype_size(p->dtype);
}

int moe_owner(const moe_prob_t *p, int e)
{
    if (p->expert_rank != NULL)
        return p->expert_rank[e];
    return e / (p->E / p->nranks);
}

/* ------------------------------------------------------------------------ */
/* Inputs                                                                    */
/* ------------------------------------------------------------------------ */

/* Seeds per purpose and rank, so that every rank's data differ. */
static uint64_t rseed(const moe_prob_t *p, int rank, uint64_t purpose)
{
    return p->seed * 0x10001u + (uint64_t)rank * 0x101u + purpose;
}

/* K distinct experts for one token (never `avoid`), by linear probing from
 * a random start. */
static void pick_experts(const moe_prob_t *p, uint64_t h, int avoid, int32_t *idx)
{
    for (int s = 0; s < p->K; s++) {
        int e = (int)((h >> (8 * (s % 4))) % (uint64_t)p->E);
        for (;;) {
            int used = e == avoid;
            for (int q = 0; q < s && !used; q++)
                used = idx[q] == e;
            if (!used)
                break;
            e = (e + 1) % p->E;
        }
        idx[s] = e;
    }
}

static void route_token(const moe_prob_t *p, int rank, size_t t, int32_t *idx)
{
    uint64_t h = lt_hash64(rseed(p, rank, 11), t);
    int K = p->K;
    if (p->route == MOE_ROUTE_ONE) {
        for (int s = 0; s < K; s++)
            idx[s] = s == 0 ? p->special : LSHMOE_MOE_DROPPED;
        return;
    }
    pick_experts(p, h, p->route == MOE_ROUTE_AVOID ? p->special : -1, idx);
    if (p->route == MOE_ROUTE_DUP && K >= 2 && t % 5 == 0)
        idx[K - 1] = idx[0];
    /* Dropped slots: a whole token, the first slot (so a later slot is
     * the first one summed), or the last slot. */
    unsigned u = (unsigned)((h >> 40) % 16);
    for (int s = 0; s < K; s++)
        if (u == 0 || (u == 1 && s == 0) || (u == 2 && s == K - 1) || rank == p->drop_all_rank)
            idx[s] = LSHMOE_MOE_DROPPED;
}

/* Dyadic gates summing to 1 over the routed slots: 3/4+1/4, 1/2+1/2 or
 * 1/4+3/4 for two, halvings for more, 1 for one. Dropped slots get 0.5,
 * which the library must ignore. */
static void dyadic_gates(const moe_prob_t *p, uint64_t h, const int32_t *idx, float *w)
{
    int cnt = 0, m = 0;
    for (int s = 0; s < p->K; s++)
        cnt += idx[s] >= 0;
    static const float two[3][2] = {{0.75f, 0.25f}, {0.5f, 0.5f}, {0.25f, 0.75f}};
    for (int s = 0; s < p->K; s++) {
        if (idx[s] < 0) {
            w[s] = 0.5f;
            continue;
        }
        if (cnt == 1)
            w[s] = 1.0f;
        else if (cnt == 2)
            w[s] = two[h % 3][m];
        else
            w[s] = m < cnt - 1 ? ldexpf(1.0f, -(m + 1)) : ldexpf(1.0f, -(cnt - 1));
        m++;
    }
}

static void gen_tokens(const moe_prob_t *p, int rank, uint64_t purpose, int clustered,
                       void *dst)
{
    size_t n = p->ntok[rank], H = p->H;
    float *f = malloc(n * H * sizeof(float) + 1);
    if (clustered)
        lt_gen_clustered(f, n, H, 8, 0.05, rseed(p, rank, purpose));
    else
        lt_gen_gaussian(f, n, H, rseed(p, rank, purpose));
    lt_to_dtype(f, n * H, p->dtype, dst);
    free(f);
}

void moe_inputs_gen(const moe_prob_t *p, int rank, moe_inputs_t *in)
{
    size_t n = p->ntok[rank], K = (size_t)p->K;
    in->n = n;
    in->x = malloc(n * moe_tb(p) + 1);
    in->dy = malloc(n * moe_tb(p) + 1);
    in->idx = malloc(n * K * sizeof(int32_t) + 1);
    in->w = malloc(n * K * sizeof(float) + 1);
    gen_tokens(p, rank, 21, p->data == MOE_X_CLUSTERED, in->x);
    gen_tokens(p, rank, 31, 0, in->dy);
    for (size_t t = 0; t < n; t++) {
        route_token(p, rank, t, in->idx + t * K);
        uint64_t h = lt_hash64(rseed(p, rank, 41), t);
        if (p->gates == MOE_GATES_DYADIC)
            dyadic_gates(p, h, in->idx + t * K, in->w + t * K);
        else
            for (size_t s = 0; s < K; s++)
                in->w[t * K + s] = (float)(0.05 + 0.95 * lt_uniform(h, s));
    }
}

void moe_inputs_free(moe_inputs_t *in)
{
    free(in->x);
    free(in->dy);
    free(in->idx);
    free(in->w);
    memset(in, 0, sizeof *in);
}

void moe_count_routes(const moe_prob_t *p, const moe_inputs_t *in, size_t *per_rank,
                      size_t *per_expert)
{
    memset(per_rank, 0, (size_t)p->nranks * sizeof(size_t));
    memset(per_expert, 0, (size_t)p->E * sizeof(size_t));
    for (size_t i = 0; i < in->n * (size_t)p->K; i++) {
        if (in->idx[i] < 0)
            continue;
        per_expert[in->idx[i]]++;
        per_rank[moe_owner(p, in->idx[i])]++;
    }
}

void moe_expert_slots_all(const moe_prob_t *p, size_t *per_expert)
{
    size_t pr[MOE_MAX_RANKS], pe[MOE_MAX_E];
    memset(per_expert, 0, (size_t)p->E * sizeof(size_t));
    for (int r = 0; r < p->nranks; r++) {
        moe_inputs_t in;
        moe_inputs_gen(p, r, &in);
        moe_count_routes(p, &in, pr, pe);
        for (int e = 0; e < p->E; e++)
            per_expert[e] += pe[e];
        moe_inputs_free(&in);
    }
}

/* ------------------------------------------------------------------------ */
/* Experts                                                                   */
/* ------------------------------------------------------------------------ */

double moe_scalar(int e)
{
    return ldexp(1.0, -(1 + e % 3));
}

moe_experts_t *moe_experts_new(const moe_prob_t *p)
{
    moe_experts_t *ex = calloc(1, sizeof *ex);
    size_t H = p->H, E = (size_t)p->E;
    ex->kind = p->kind;
    ex->E = p->E;
    ex->H = H;
    ex->dtype = p->dtype;
    ex->W = malloc(E * H * H * sizeof(float));
    ex->b = malloc(E * H * sizeof(float));
    double sc = p->w_noise / sqrt((double)H);
    for (size_t e = 0; e < E; e++) {
        for (size_t i = 0; i < H; i++) {
            for (size_t j = 0; j < H; j++) {
                double v = sc * lt_normal(p->seed ^ 0xE0E0u, (e * H + i) * H + j);
                if (p->scalar_experts)
                    v = i == j ? moe_scalar((int)e) : 0.0;
                else
                    v += i == j ? p->w_diag : 0.0;
                ex->W[(e * H + i) * H + j] = (float)v;
            }
            double b = p->b_scale * lt_normal(p->seed ^ 0xB1B1u, e * H + i);
            ex->b[e * H + i] = p->scalar_experts ? 0.0f : (float)b;
        }
    }
    return ex;
}

void moe_experts_free(moe_experts_t *ex)
{
    if (ex == NULL)
        return;
    free(ex->W);
    free(ex->b);
    free(ex);
}

/* One row of W_e x + b_e: fp64 accumulation over the input in increasing
 * index, rounded once to fp32. The hook and the reference both get here. */
static void linear_row(const moe_experts_t *ex, int e, const float *in, float *out)
{
    size_t H = ex->H;
    const float *W = ex->W + (size_t)e * H * H, *b = ex->b + (size_t)e * H;
    for (size_t i = 0; i < H; i++) {
        double acc = (double)b[i];
        for (size_t j = 0; j < H; j++)
            acc += (double)W[i * H + j] * (double)in[j];
        out[i] = (float)acc;
    }
}

/* One row of W_e^T g, the same way (over the output index). */
static void linear_row_t(const moe_experts_t *ex, int e, const float *g, float *out)
{
    size_t H = ex->H;
    const float *W = ex->W + (size_t)e * H * H;
    for (size_t j = 0; j < H; j++) {
        double acc = 0.0;
        for (size_t i = 0; i < H; i++)
            acc += (double)W[i * H + j] * (double)g[i];
        out[j] = (float)acc;
    }
}

static void apply_rows(const moe_experts_t *ex, int e, const void *in, void *out, size_t rows,
                       void (*row)(const moe_experts_t *, int, const float *, float *))
{
    size_t H = ex->H, tb = H * lshmoe_dtype_size(ex->dtype);
    if (ex->kind == MOE_EXPERT_IDENTITY) {
        if (rows > 0)
            memmove(out, in, rows * tb);
        return;
    }
    float *a = malloc(2 * H * sizeof(float));
    for (size_t r = 0; r < rows; r++) {
        lshmoe_row_to_f32((const char *)in + r * tb, ex->dtype, H, a);
        row(ex, e, a, a + H);
        lshmoe_row_from_f32(a + H, H, ex->dtype, (char *)out + r * tb);
    }
    free(a);
}

void moe_expert_fwd_rows(const moe_experts_t *ex, int e, const void *in, void *out,
                         size_t rows)
{
    apply_rows(ex, e, in, out, rows, linear_row);
}

void moe_expert_bwd_rows(const moe_experts_t *ex, int e, const void *grad_out,
                         void *grad_in, size_t rows)
{
    apply_rows(ex, e, grad_out, grad_in, rows, linear_row_t);
}

double moe_expert_frob_minus(const moe_experts_t *ex, int e, double diag)
{
    size_t H = ex->H;
    double s = 0.0;
    for (size_t i = 0; i < H; i++) {
        for (size_t j = 0; j < H; j++) {
            double w = ex->kind == MOE_EXPERT_IDENTITY ? (i == j)
                                                       : ex->W[((size_t)e * H + i) * H + j];
            double d = w - (i == j ? diag : 0.0);
            s += d * d;
        }
    }
    return sqrt(s);
}

/* Max over rows (by_row) or columns of the absolute sums of W_e. */
static double abs_sum(const moe_experts_t *ex, int e, int by_row)
{
    if (ex->kind == MOE_EXPERT_IDENTITY)
        return 1.0;
    size_t H = ex->H;
    const float *W = ex->W + (size_t)e * H * H;
    double best = 0.0;
    for (size_t i = 0; i < H; i++) {
        double s = 0.0;
        for (size_t j = 0; j < H; j++)
            s += fabs((double)(by_row ? W[i * H + j] : W[j * H + i]));
        best = s > best ? s : best;
    }
    return best;
}

double moe_expert_row_abs(const moe_experts_t *ex, int e)
{
    return abs_sum(ex, e, 1);
}

double moe_expert_col_abs(const moe_experts_t *ex, int e)
{
    return abs_sum(ex, e, 0);
}

/* ------------------------------------------------------------------------ */
/* Reference                                                                 */
/* ------------------------------------------------------------------------ */

float moe_pre_scale(int e)
{
    return (e & 1) ? 2.0f : 1.0f;
}

/* A copy of token row `src` as the PRE_HASH hook leaves it for expert e:
 * scaled by a power of two in fp32, which is exact in every dtype here. */
void moe_pre_scale_row(const moe_experts_t *ex, int e, const void *src, void *dst)
{
    size_t H = ex->H;
    float *a = malloc(H * sizeof(float));
    lshmoe_row_to_f32(src, ex->dtype, H, a);
    for (size_t h = 0; h < H; h++)
        a[h] *= moe_pre_scale(e);
    lshmoe_row_from_f32(a, H, ex->dtype, dst);
    free(a);
}

/* acc (fp64) -> fp32 -> layer dtype, one token. */
static void round_out(const moe_prob_t *p, const double *acc, float *tmp, void *dst)
{
    for (size_t h = 0; h < p->H; h++)
        tmp[h] = (float)acc[h];
    lshmoe_row_from_f32(tmp, p->H, p->dtype, dst);
}

void moe_ref_combine_slots(const moe_prob_t *p, const moe_inputs_t *in, const float *yslot,
                           void *y)
{
    size_t H = p->H, K = (size_t)p->K, tb = moe_tb(p);
    double *acc = malloc(H * sizeof(double));
    float *tmp = malloc(H * sizeof(float));
    for (size_t t = 0; t < in->n; t++) {
        memset(acc, 0, H * sizeof(double));
        for (size_t s = 0; s < K; s++) {
            if (in->idx[t * K + s] < 0)
                continue;
            double g = (double)in->w[t * K + s];
            const float *ys = yslot + (t * K + s) * H;
            for (size_t h = 0; h < H; h++)
                acc[h] += g * (double)ys[h];
        }
        round_out(p, acc, tmp, (char *)y + t * tb);
    }
    free(acc);
    free(tmp);
}

void moe_ref_forward(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                     int pre, int post, void *y, float *yslot)
{
    size_t H = p->H, K = (size_t)p->K, tb = moe_tb(p);
    float *ys = calloc(in->n * K * H + 1, sizeof(float));
    char *row = malloc(2 * tb);
    for (size_t t = 0; t < in->n; t++) {
        for (size_t s = 0; s < K; s++) {
            int e = in->idx[t * K + s];
            if (e < 0)
                continue;
            const void *xin = (const char *)in->x + t * tb;
            if (pre) {
                moe_pre_scale_row(ex, e, xin, row + tb);
                xin = row + tb;
            }
            moe_expert_fwd_rows(ex, e, xin, row, 1);
            float *dst = ys + (t * K + s) * H;
            lshmoe_row_to_f32(row, p->dtype, H, dst);
            for (size_t h = 0; post && h < H; h++)
                dst[h] *= MOE_POST_SCALE;
        }
    }
    moe_ref_combine_slots(p, in, ys, y);
    if (yslot != NULL)
        memcpy(yslot, ys, in->n * K * H * sizeof(float));
    free(ys);
    free(row);
}

void moe_ref_backward(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                      const float *yslot, float *dgates, void *dx)
{
    size_t H = p->H, K = (size_t)p->K, tb = moe_tb(p);
    float *dyf = malloc(2 * H * sizeof(float));
    char *a = malloc(2 * tb);
    double *acc = malloc(H * sizeof(double));
    for (size_t t = 0; t < in->n; t++) {
        lshmoe_row_to_f32((const char *)in->dy + t * tb, p->dtype, H, dyf);
        memset(acc, 0, H * sizeof(double));
        for (size_t s = 0; s < K; s++) {
            int e = in->idx[t * K + s];
            dgates[t * K + s] = 0.0f;
            if (e < 0)
                continue;
            const float *ys = yslot + (t * K + s) * H;
            double dot = 0.0;
            for (size_t h = 0; h < H; h++)
                dot += (double)dyf[h] * (double)ys[h];
            dgates[t * K + s] = (float)dot;
            /* the group's output gradient: g*dy in fp64 -> fp32 -> dtype */
            double g = (double)in->w[t * K + s];
            for (size_t h = 0; h < H; h++)
                dyf[H + h] = (float)(g * (double)dyf[h]);
            lshmoe_row_from_f32(dyf + H, H, p->dtype, a);
            moe_expert_bwd_rows(ex, e, a, a + tb, 1);
            lshmoe_row_to_f32(a + tb, p->dtype, H, dyf + H);
            for (size_t h = 0; h < H; h++)
                acc[h] += (double)dyf[H + h];
        }
        round_out(p, acc, dyf + H, (char *)dx + t * tb);
    }
    free(dyf);
    free(a);
    free(acc);
}

long moe_first_diff(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return (long)i;
    return -1;
}
