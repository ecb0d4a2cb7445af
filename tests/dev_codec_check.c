/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The device codec against the CPU codec, through an ops table
 * (dev_codec_check.h). Device memory is reached only through the ops. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/common/quant_math.h"
#include "lshmoe/codec_device.h"
#include "lshmoe/codec_internal.h"
#include "lshmoe/common/dtype.h"
#include "lshmoe/common/error.h"
#include "tests/dev_codec_check.h"
#include "tests/gpu/gpu_check.h"

/* Segments: clustered with NaN/Inf and a zero token; small with a huge
 * finite token; empty; noise; clean clustered; under min_tokens. */
#define NSEG 6
static const size_t seg_n[NSEG] = {600, 37, 0, 300, 200, 10};
enum { SEG_SPECIAL = 0, SEG_HUGE = 1, SEG_NOISE = 3 };

static uint64_t rng;
static double urand(void)
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(rng >> 40) / (double)(1ull << 24) - 0.5;
}

/* 16 centres plus noise (or noise only), with the segment's specials. */
static float *make_tokens(int seg, size_t n, size_t hidden)
{
    float *x = malloc((n ? n : 1) * hidden * sizeof *x);
    for (size_t t = 0; t < n; t++) {
        size_t c = (t * 7) % 16;
        for (size_t i = 0; i < hidden; i++) {
            double centre = seg == SEG_NOISE ? 0.0 : sin((double)(c * 131 + i) * 0.37) * 2.0;
            x[t * hidden + i] = (float)(centre + urand() * (t % 3 == 0 ? 1e-4 : 0.3));
        }
    }
    if (seg == SEG_SPECIAL) {
        memset(x + 5 * hidden, 0, hidden * sizeof *x);
        x[11 * hidden + hidden / 2] = NAN;
        x[12 * hidden] = INFINITY;
    }
    /* fp32: its squared norm overflows, fp16: Inf; LSH: its cluster's mean
     * is far from the other members, so the guard sends it raw */
    if (seg == SEG_HUGE)
        for (size_t i = 0; i < hidden; i++)
            x[9 * hidden + i] *= 3e37f;
    return x;
}

typedef struct batch {
    const lshmoe_kn_dev_ops_t *ops;
    void *stream;
    lshmoe_dtype_t dt;
    size_t hidden, tb, total_tok, stage_bytes;
    void *htok[NSEG], *dtok[NSEG];
    uint8_t *dstage, *hstage, *dout;
    lshmoe_dev_seg_t segs[NSEG];
} batch_t;

static void to_dev(batch_t *b, void *dst, const void *src, size_t n)
{
    GPU_CHECK(b->ops->copy(dst, src, n, b->stream) == LSHMOE_OK, "copy");
    GPU_CHECK(b->ops->sync(b->stream) == LSHMOE_OK, "sync: %s", lshmoe_error_thread_msg());
}

static void *dev_alloc(batch_t *b, size_t n)
{
    void *p = NULL;
    GPU_CHECK(b->ops->alloc(n, &p) == LSHMOE_OK, "alloc %zu", n);
    return p;
}

static void batch_make(batch_t *b, const lshmoe_kn_dev_ops_t *ops, void *stream,
                       lshmoe_dtype_t dt, size_t hidden)
{
    memset(b, 0, sizeof *b);
    b->ops = ops;
    b->stream = stream;
    b->dt = dt;
    b->hidden = hidden;
    b->tb = hidden * lshmoe_dtype_size(dt);
    rng = 777;
    for (int i = 0; i < NSEG; i++) {
        size_t n = seg_n[i], cap;
        float *x = make_tokens(i, n, hidden);
        b->htok[i] = malloc(n * b->tb + 1);
        lshmoe_row_from_f32(x, n * hidden, dt, b->htok[i]);
        free(x);
        GPU_CHECK(lshmoe_codec_max_bytes(dt, hidden, n, &cap) == LSHMOE_OK, "max_bytes");
        b->dtok[i] = dev_alloc(b, n * b->tb + 1);
        to_dev(b, b->dtok[i], b->htok[i], n * b->tb);
        b->segs[i].tokens = b->dtok[i];
        b->segs[i].ntokens = n;
        b->segs[i].off = b->stage_bytes;
        b->segs[i].cap = cap;
        b->stage_bytes += (cap + 7) & ~(size_t)7;
        b->total_tok += n;
    }
    b->dstage = dev_alloc(b, b->stage_bytes);
    b->dout = dev_alloc(b, b->total_tok * b->tb + 1);
    b->hstage = malloc(b->stage_bytes);
}

static void batch_free(batch_t *b)
{
    for (int i = 0; i < NSEG; i++) {
        free(b->htok[i]);
        b->ops->free(b->dtok[i]);
    }
    b->ops->free(b->dstage);
    b->ops->free(b->dout);
    free(b->hstage);
}

static lshmoe_codec_t *make_codec(int mode, double max_error, int guard, int search, int resid)
{
    lshmoe_codec_params_t p;
    memset(&p, 0, sizeof p);
    p.lsh = (lshmoe_kn_lsh_params_t){.seed = 42, .num_hashes = 6, .cdim = 4,
                                     .reduce = LSHMOE_REDUCE_FOLD, .reduce_dim = 64,
                                     .rounds = 3};
    p.compress = 1;
    p.min_tokens = 16;
    p.min_ratio = 1.2;
    p.error_guard = guard;
    p.max_error = max_error;
    p.mode = mode;
    p.search = search;
    p.residual_bits = resid;
    lshmoe_codec_t *codec = NULL;
    GPU_CHECK(lshmoe_codec_create(&p, &codec) == LSHMOE_OK, "codec: %s",
              lshmoe_error_thread_msg());
    return codec;
}

/* CPU bytes of every segment (wire[i], len[i], stats st[i]). */
static void cpu_encode(batch_t *b, lshmoe_codec_t *codec, uint8_t **wire, size_t *len,
                       lshmoe_codec_stats_t *st)
{
    for (int i = 0; i < NSEG; i++) {
        wire[i] = malloc(b->segs[i].cap);
        memset(&st[i], 0, sizeof st[i]);
        lshmoe_status_t s = lshmoe_codec_encode(codec, b->htok[i], b->dt, b->hidden, seg_n[i],
                                                wire[i], b->segs[i].cap, &len[i], &st[i]);
        GPU_CHECK(s == LSHMOE_OK, "cpu encode: %s", lshmoe_error_thread_msg());
    }
}

/* CPU bytes decoded through the ops equal the CPU decoder's tokens. */
static void check_decode(batch_t *b, lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec, uint8_t **wire,
                         const size_t *len, const char *what)
{
    size_t o = 0;
    for (int i = 0; i < NSEG; i++) {
        to_dev(b, b->dstage + b->segs[i].off, wire[i], len[i]);
        b->segs[i].out = b->dout + o;
        b->segs[i].len = len[i];
        memset(&b->segs[i].cs, 0, sizeof b->segs[i].cs);
        o += seg_n[i] * b->tb;
    }
    lshmoe_status_t st = lshmoe_codec_dev_decode(ws, codec, b->dt, b->hidden, b->segs, NSEG,
                                                 b->dstage, b->stream);
    GPU_CHECK(st == LSHMOE_OK, "%s: device decode: %s", what, lshmoe_error_thread_msg());
    uint8_t *got = malloc(b->total_tok * b->tb + 1), *want = malloc(b->total_tok * b->tb + 1);
    to_dev(b, got, b->dout, b->total_tok * b->tb);
    o = 0;
    for (int i = 0; i < NSEG; i++) {
        GPU_CHECK(lshmoe_codec_decode(codec, wire[i], len[i], b->dt, b->hidden, seg_n[i], want,
                                      NULL) == LSHMOE_OK, "cpu decode: %s",
                  lshmoe_error_thread_msg());
        GPU_CHECK(memcmp(got + o, want, seg_n[i] * b->tb) == 0,
                  "%s: segment %d decoded through the ops differs from the CPU's", what, i);
        o += seg_n[i] * b->tb;
    }
    free(got);
    free(want);
}

/* Segments whose payload spans several checksum chunks and ends in a
 * partial stripe (the device checksum's hardest case), over a shape. */
static int multi_chunk_tail;

/* Encode through the ops: the CPU's bytes and decisions. Returns the
 * number of coded (compressed or row-format) segments. */
static int check_encode(batch_t *b, lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec, uint8_t **wire,
                        const size_t *len, const lshmoe_codec_stats_t *cst, const char *what)
{
    int coded = 0;
    for (int i = 0; i < NSEG; i++)
        memset(&b->segs[i].cs, 0, sizeof b->segs[i].cs);
    lshmoe_status_t st = lshmoe_codec_dev_encode(ws, codec, b->dt, b->hidden, b->segs, NSEG,
                                                 b->dstage, b->stream);
    GPU_CHECK(st == LSHMOE_OK, "%s: device encode: %s", what, lshmoe_error_thread_msg());
    if (st != LSHMOE_OK)
        return 0;
    to_dev(b, b->hstage, b->dstage, b->stage_bytes);
    for (int i = 0; i < NSEG; i++) {
        const lshmoe_dev_seg_t *s = &b->segs[i];
        GPU_CHECK(s->len == len[i], "%s segment %d: %zu bytes, CPU %zu", what, i, s->len, len[i]);
        GPU_CHECK(s->len == len[i] && memcmp(b->hstage + s->off, wire[i], len[i]) == 0,
                  "%s segment %d: wire bytes differ from the CPU's", what, i);
        GPU_CHECK(s->cs.segments_compressed == cst[i].segments_compressed &&
                      s->cs.rows == cst[i].rows && s->cs.bytes_wire == cst[i].bytes_wire &&
                      s->cs.segments_probed_raw == cst[i].segments_probed_raw,
                  "%s segment %d: stats differ (compressed %llu/%llu rows %llu/%llu)", what, i,
                  (unsigned long long)s->cs.segments_compressed,
                  (unsigned long long)cst[i].segments_compressed,
                  (unsigned long long)s->cs.rows, (unsigned long long)cst[i].rows);
        GPU_CHECK(memcmp(s->cs.choice_segments, cst[i].choice_segments,
                         sizeof s->cs.choice_segments) == 0,
                  "%s segment %d: encoding chosen differs", what, i);
        coded += lshmoe_get_le16(wire[i] + LSHMOE_WIRE_OFF_FLAGS) != LSHMOE_WIRE_F_RAW;
        size_t payload = len[i] - LSHMOE_WIRE_HEADER_BYTES;
        multi_chunk_tail += payload > LSHMOE_WCK_CHUNK && payload % LSHMOE_WCK_STRIPE != 0;
    }
    return coded;
}

/* A damaged segment fails as CORRUPT (reason `why`) and writes nothing. */
static void check_corrupt(batch_t *b, lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec,
                          const uint8_t *seg, size_t len, size_t ntok, const char *why)
{
    lshmoe_dev_seg_t one = {.off = 0, .len = len, .ntokens = ntok, .out = b->dout};
    to_dev(b, b->dstage, seg, len);
    uint8_t *fill = malloc(ntok * b->tb + 1);
    memset(fill, 0xA5, ntok * b->tb);
    to_dev(b, b->dout, fill, ntok * b->tb);
    lshmoe_status_t st = lshmoe_codec_dev_decode(ws, codec, b->dt, b->hidden, &one, 1,
                                                 b->dstage, b->stream);
    GPU_CHECK(st == LSHMOE_ERR_CORRUPT, "damaged segment (%s): %s", why,
              lshmoe_status_name(st));
    GPU_CHECK(strstr(lshmoe_error_thread_msg(), why) != NULL, "reason: %s",
              lshmoe_error_thread_msg());
    uint8_t *after = malloc(ntok * b->tb + 1);
    to_dev(b, after, b->dout, ntok * b->tb);
    GPU_CHECK(memcmp(after, fill, ntok * b->tb) == 0, "a damaged segment wrote output");
    free(after);
    free(fill);
}

/* Damages: a payload byte (checksum); a coded row's first scale made
 * negative, and nonzero unused code bits, both resealed (the checksum
 * cannot catch what the sender computed it over). */
static void check_damage(batch_t *b, lshmoe_dev_ws_t *ws, lshmoe_codec_t *codec, int fmt,
                         const uint8_t *wire, size_t len, size_t ntok, size_t hidden)
{
    uint8_t *bad = malloc(len);
    memcpy(bad, wire, len);
    bad[LSHMOE_WIRE_HEADER_BYTES + 3] ^= 0x10;
    check_corrupt(b, ws, codec, bad, len, ntok, "checksum");
    uint16_t flags = lshmoe_get_le16(wire + LSHMOE_WIRE_OFF_FLAGS);
    lshmoe_wire_layout_t lay;
    if ((flags & (LSHMOE_WIRE_F_RESID8 | LSHMOE_WIRE_F_RESID4)) &&
        lshmoe_wire_layout(flags, lshmoe_dtype_size(b->dt), hidden, ntok,
                           lshmoe_get_le64(wire + LSHMOE_WIRE_OFF_NROWS), &lay) == 0) {
        /* token 1's residual scale made NaN, resealed */
        memcpy(bad, wire, len);
        lshmoe_qm_put_f32(bad + lay.resid_off + lay.resid_stride, NAN);
        lshmoe_put_le64(bad + LSHMOE_WIRE_OFF_CHECKSUM,
                        lshmoe_wire_segment_checksum(bad, bad + LSHMOE_WIRE_HEADER_BYTES,
                                                     len - LSHMOE_WIRE_HEADER_BYTES));
        check_corrupt(b, ws, codec, bad, len, ntok, "residual scale");
    }
    if (fmt != LSHMOE_QM_NATIVE && lshmoe_wire_fmt(flags) == fmt) {
        size_t stride = (size_t)lshmoe_qm_row_bytes(fmt, b->hidden);
        uint8_t *row1 = bad + LSHMOE_WIRE_HEADER_BYTES + stride;
        memcpy(bad, wire, len);
        /* the sign bit of row 1's first scale (fp32 or fp16); INT4E has
         * no invalid scale byte: its unused code bits instead */
        if (fmt == LSHMOE_QM_FP8 || fmt == LSHMOE_QM_INT8)
            row1[3] |= 0x80;
        else if (fmt != LSHMOE_QM_INT4E)
            row1[1] |= 0x80;
        if (fmt != LSHMOE_QM_INT4E) {
            lshmoe_put_le64(bad + LSHMOE_WIRE_OFF_CHECKSUM,
                            lshmoe_wire_segment_checksum(bad, bad + LSHMOE_WIRE_HEADER_BYTES,
                                                         len - LSHMOE_WIRE_HEADER_BYTES));
            check_corrupt(b, ws, codec, bad, len, ntok, "coded row");
        }
        size_t per = fmt == LSHMOE_QM_INT2 ? 4 : 2;
        if ((fmt == LSHMOE_QM_INT4 || fmt == LSHMOE_QM_INT4E || fmt == LSHMOE_QM_INT2) &&
            b->hidden % per != 0) {
            memcpy(bad, wire, len);
            row1[stride - 1] |= 0x80;
            lshmoe_put_le64(bad + LSHMOE_WIRE_OFF_CHECKSUM,
                            lshmoe_wire_segment_checksum(bad, bad + LSHMOE_WIRE_HEADER_BYTES,
                                                         len - LSHMOE_WIRE_HEADER_BYTES));
            check_corrupt(b, ws, codec, bad, len, ntok, "coded row");
        }
    }
    free(bad);
}

static const struct {
    int mode, fmt, resid;
} row_modes[] = {
    {LSHMOE_CODEC_LSH, LSHMOE_QM_NATIVE, 0},  {LSHMOE_CODEC_LSH, LSHMOE_QM_NATIVE, 8},
    {LSHMOE_CODEC_LSH, LSHMOE_QM_NATIVE, 4},  {LSHMOE_CODEC_NATIVE, LSHMOE_QM_NATIVE, 0},
    {LSHMOE_CODEC_FP8, LSHMOE_QM_FP8, 0},     {LSHMOE_CODEC_INT8, LSHMOE_QM_INT8, 0},
    {LSHMOE_CODEC_INT4, LSHMOE_QM_INT4, 0},   {LSHMOE_CODEC_INT4E, LSHMOE_QM_INT4E, 0},
    {LSHMOE_CODEC_INT2, LSHMOE_QM_INT2, 0},
};
/* Modes the device decodes but does not encode yet. */
static const int cl_modes[] = {LSHMOE_CODEC_LSH_FP8, LSHMOE_CODEC_LSH_INT8,
                               LSHMOE_CODEC_LSH_INT4};
/* Budgets: loose, at the low-bit formats' errors, tight; 0: guard off. */
static const double budgets[] = {0.6, 0.12, 0.05, 1e-3, 0.0};
/* LSHMOE_GPU_QUICK: the first two budgets, the sampled search only */
static int quick;

static void check_shape(const lshmoe_kn_dev_ops_t *ops, void *stream, lshmoe_dtype_t dt,
                        size_t hidden)
{
    batch_t b;
    lshmoe_dev_ws_t ws;
    uint8_t *wire[NSEG];
    size_t len[NSEG];
    lshmoe_codec_stats_t cst[NSEG];
    char what[96];
    uint64_t allocs_warm = 0;
    int coded = 0, total = 0;

    memset(&ws, 0, sizeof ws);
    ws.ops = ops;
    multi_chunk_tail = 0;
    batch_make(&b, ops, stream, dt, hidden);
    for (size_t m = 0; m < sizeof row_modes / sizeof row_modes[0]; m++)
        for (size_t g = 0; g < sizeof budgets / sizeof budgets[0]; g++)
            for (int search = 0; search < 2; search++) {
                if (search == 1 && (row_modes[m].mode == LSHMOE_CODEC_LSH || budgets[g] == 0.0))
                    continue; /* the search matters only to a measured row format */
                if (quick && (search == 1 || g > 1))
                    continue;
                lshmoe_codec_t *codec =
                    make_codec(row_modes[m].mode, budgets[g], budgets[g] > 0.0,
                               search ? LSHMOE_CODEC_SEARCH_BISECT : LSHMOE_CODEC_SEARCH_SAMPLE,
                               row_modes[m].resid);
                if (codec == NULL)
                    continue;
                snprintf(what, sizeof what, "%s hidden %zu mode %d resid %d budget %g search %d",
                         lshmoe_dtype_name(dt), hidden, row_modes[m].mode, row_modes[m].resid,
                         budgets[g], search);
                cpu_encode(&b, codec, wire, len, cst);
                /* the second call of the same codec and shape allocates
                 * no device memory */
                for (int rep = 0; rep < 2; rep++) {
                    int c = check_encode(&b, &ws, codec, wire, len, cst, what);
                    coded += rep == 0 ? c : 0;
                    check_decode(&b, &ws, codec, wire, len, what);
                    if (rep == 0)
                        allocs_warm = ws.allocs;
                }
                GPU_CHECK(ws.allocs == allocs_warm, "%s: device allocations grew on the "
                          "second call: %llu then %llu", what,
                          (unsigned long long)allocs_warm, (unsigned long long)ws.allocs);
                total += NSEG;
                if (g == 1)
                    for (int i = 0; i < NSEG; i++)
                        if (seg_n[i] > 100 && i != SEG_SPECIAL)
                            check_damage(&b, &ws, codec, row_modes[m].fmt, wire[i], len[i],
                                         seg_n[i], hidden);
                for (int i = 0; i < NSEG; i++)
                    free(wire[i]);
                lshmoe_codec_destroy(codec);
            }
    GPU_CHECK(coded > 0 && coded < total, "%s hidden %zu: %d of %d segments coded: both "
              "coded and raw segments must be exercised", lshmoe_dtype_name(dt), hidden, coded,
              total);
    GPU_CHECK(multi_chunk_tail > 0, "%s hidden %zu: no segment of several checksum chunks "
              "with a tail", lshmoe_dtype_name(dt), hidden);
    printf("%-5s hidden %4zu: row formats and lsh, %d of %d segments coded, bytes and tokens "
           "compared\n", lshmoe_dtype_name(dt), hidden, coded, total);

    /* LSH with coded centroids: decoded through the ops, not encoded yet */
    for (size_t m = 0; m < sizeof cl_modes / sizeof cl_modes[0]; m++) {
        lshmoe_codec_t *codec = make_codec(cl_modes[m], 0.6, 1, LSHMOE_CODEC_SEARCH_SAMPLE, 0);
        if (codec == NULL)
            continue;
        snprintf(what, sizeof what, "%s hidden %zu mode %d", lshmoe_dtype_name(dt), hidden,
                 cl_modes[m]);
        cpu_encode(&b, codec, wire, len, cst);
        check_decode(&b, &ws, codec, wire, len, what);
        lshmoe_status_t st = lshmoe_codec_dev_encode(&ws, codec, dt, hidden, b.segs, NSEG,
                                                     b.dstage, stream);
        GPU_CHECK(st == LSHMOE_ERR_UNSUPPORTED && strstr(lshmoe_error_thread_msg(), "lsh") &&
                      strstr(lshmoe_error_thread_msg(), "device buffers"),
                  "%s: encode gives %s: %s", what, lshmoe_status_name(st),
                  lshmoe_error_thread_msg());
        for (int i = 0; i < NSEG; i++)
            free(wire[i]);
        lshmoe_codec_destroy(codec);
    }
    lshmoe_dev_ws_release(&ws, stream);
    GPU_CHECK(ws.bytes == 0, "workspace released (%zu bytes left)", ws.bytes);
    batch_free(&b);
}

void dev_codec_check_run(const lshmoe_kn_dev_ops_t *ops, void *stream)
{
    const lshmoe_dtype_t dts[] = {LSHMOE_DTYPE_FP32, LSHMOE_DTYPE_FP16, LSHMOE_DTYPE_BF16};
    /* 1000: a partial low-bit block; 203: odd, unused code bits */
    const size_t hiddens[] = {1000, 203};
    /* LSHMOE_GPU_QUICK (the sanitizer runs, slow per launch): bf16 and
     * hidden 203 alone still run every kernel */
    const char *q = getenv("LSHMOE_GPU_QUICK");
    quick = q != NULL && *q != '\0' && *q != '0';
    for (int d = quick ? 2 : 0; d < 3; d++)
        for (int h = quick; h < 2; h++)
            check_shape(ops, stream, dts[d], hiddens[h]);
}
