/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The ISA-independent half of the low-bit quantizers' cross-block search
 * (lowbit_lanes_avx512.c: 16 blocks per vector, lowbit_lanes_avx2.c: 8):
 * which block goes to which lane, where its results go, the driver that
 * collects the whole blocks of a batch of rows and then their partial last
 * blocks, and the test hook's bookkeeping. Plain C, static inline; private
 * to those two files.
 */
#ifndef LSHMOE_KERNELS_CPU_X86_LOWBIT_LANES_H
#define LSHMOE_KERNELS_CPU_X86_LOWBIT_LANES_H

#include "kernels/cpu/quant_isa.h"
#include "kernels/cpu/quant_ref.h"

#define LSHMOE_KN_LANES_MAX 16

/* Where each lane's block comes from and where its results go; a level
 * with fewer lanes uses the first ones. */
typedef struct lshmoe_kn_lanes {
    const float *x[LSHMOE_KN_LANES_MAX];     /* 32 elements (n of a partial block) */
    uint8_t     *scale[LSHMOE_KN_LANES_MAX]; /* 1 byte (INT4E) or 2 (fp16)         */
    uint8_t     *code[LSHMOE_KN_LANES_MAX];  /* 16 (4-bit) or 8 (2-bit) code bytes */
    float       *y[LSHMOE_KN_LANES_MAX];     /* decoded elements; all NULL: none   */
    int          n;                          /* lanes filled                       */
    /* NULL, or where the test hook wants each try's error and scale code
     * (try c, lane j: [c * lanes + j]) */
    float       *err;
    uint32_t    *err_code;
} lshmoe_kn_lanes_t;

/* A level's search of the blocks of n elements in L (every lane set). */
typedef void (*lshmoe_kn_lanes_search_fn)(const lshmoe_kn_lanes_t *L, int fmt, int n);

/* Runs the blocks collected in L with `lanes` lanes, the unused ones on
 * zeros into a sink, and empties L. */
static inline void lshmoe_kn_lanes_flush(lshmoe_kn_lanes_t *L, int lanes, int fmt, int n,
                                         lshmoe_kn_lanes_search_fn search)
{
    static const float zeros[LSHMOE_QM_LOW_BLOCK];
    uint8_t sink_scale[2], sink_code[16];
    float sink_y[LSHMOE_QM_LOW_BLOCK];
    if (L->n == 0)
        return;
    for (int j = L->n; j < lanes; j++) {
        L->x[j] = zeros;
        L->scale[j] = sink_scale;
        L->code[j] = sink_code;
        L->y[j] = L->y[0] == NULL ? NULL : sink_y;
    }
    search(L, fmt, n);
    L->n = 0;
}

/* lshmoe_kn_quant_rows_sse() for INT4, INT4E and INT2: the whole blocks
 * of every row, lanes at a time, then the partial last blocks (all of
 * hidden % 32 elements), then each row's measurement. */
static inline void lshmoe_kn_lanes_rows(LSHMOE_KN_QUANT_ROWS_ARGS, int lanes,
                                        lshmoe_kn_lanes_search_fn search,
                                        double (*measure)(const float *x, float *y, size_t n,
                                                          lshmoe_dtype_t dtype))
{
    const size_t low = LSHMOE_QM_LOW_BLOCK, full = hidden / low;
    const size_t sb = (size_t)lshmoe_qm_scale_bytes(fmt, hidden), tail = hidden - full * low;
    const size_t per_scale = fmt == LSHMOE_QM_INT4E ? 1 : 2;
    const size_t per_block = fmt == LSHMOE_QM_INT2 ? 8 : 16;
    lshmoe_kn_lanes_t L;
    L.n = 0;
    L.err = NULL;
    L.err_code = NULL;
    for (int part = 0; part < 2; part++) {
        size_t b0 = part ? full : 0, b1 = part && tail ? full + 1 : full;
        int n = part ? (int)tail : (int)low;
        for (size_t r = 0; r < nrows; r++) {
            uint8_t *d = dst + r * dst_stride;
            for (size_t b = b0; b < b1; b++) {
                L.x[L.n] = x + r * x_stride + b * low;
                L.scale[L.n] = d + b * per_scale;
                L.code[L.n] = d + sb + b * per_block;
                L.y[L.n] = y == NULL ? NULL : y + r * hidden + b * low;
                if (++L.n == lanes)
                    lshmoe_kn_lanes_flush(&L, lanes, fmt, n, search);
            }
        }
        lshmoe_kn_lanes_flush(&L, lanes, fmt, n, search);
    }
    for (size_t r = 0; y != NULL && r < nrows; r++) {
        double e = measure(x + r * x_stride, y + r * hidden, hidden, dtype);
        if (sse != NULL)
            sse[r] = e;
    }
}

/* The test hook (kernels.h: lshmoe_kn_low_block_errors_n): the block of n
 * elements in lane 0, the others on zeros; a code equal to the try before
 * it is left out, as the reference leaves it out. */
static inline int lshmoe_kn_lanes_errors(int fmt, const float *x, size_t n, float *e, int lanes,
                                         lshmoe_kn_lanes_search_fn search)
{
    float err[LSHMOE_QR_NCLIP * LSHMOE_KN_LANES_MAX];
    uint32_t code[LSHMOE_QR_NCLIP * LSHMOE_KN_LANES_MAX];
    uint8_t scale[2], bytes[16];
    int k = 0;
    lshmoe_kn_lanes_t L = {.x = {x}, .scale = {scale}, .code = {bytes}, .y = {NULL}, .n = 1,
                           .err = err, .err_code = code};
    lshmoe_kn_lanes_flush(&L, lanes, fmt, (int)n, search);
    if (!(lshmoe_qr_amax(x, n) > 0.0f))
        return 0;
    for (int c = 0; c < LSHMOE_QR_NCLIP; c++)
        if (c == 0 || code[c * lanes] != code[(c - 1) * lanes])
            e[k++] = err[c * lanes];
    return k;
}

#endif /* LSHMOE_KERNELS_CPU_X86_LOWBIT_LANES_H */
