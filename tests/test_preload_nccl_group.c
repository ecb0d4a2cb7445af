/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/* The NCCL group recorder and all-to-all recogniser on recorded call
 * sequences, against a fake backend: no NCCL and no GPU involved. */
#include <string.h>

#include "bindings/preload/nccl_group.h"
#include "testutil.h"

#define FP32 7
#define INT32 2
#define MAXLOG 256

/* Two fake communicators of 4 and 2 ranks; this rank is 1 in both. */
static char comm_a, comm_b, stream_x, stream_y;

typedef struct fake {
    pl_nccl_op_t log[MAXLOG];   /* replayed ops, in order */
    size_t       nlog;
    int          passes[PL_REASON_COUNT];
    int          take;          /* codec_try takes the exchange over */
    int          fail_at;       /* replay index that returns 3, or -1 */
    size_t       last_bytes;
} fake_t;

static int fake_issue(void *arg, const pl_nccl_op_t *op)
{
    fake_t *f = arg;
    CU_ASSERT_FATAL(f->nlog < MAXLOG);
    f->log[f->nlog] = *op;
    return (int)f->nlog++ == f->fail_at ? 3 : 0;
}

static int fake_nranks(void *arg, void *comm)
{
    (void)arg;
    return comm == &comm_a ? 4 : comm == &comm_b ? 2 : -1;
}

static int fake_rank(void *arg, void *comm)
{
    (void)arg;
    (void)comm;
    return 1;
}

static pl_reason_t fake_codec(void *arg, const pl_nccl_a2a_t *a, const pl_nccl_op_t *ops)
{
    fake_t *f = arg;
    (void)ops;
    f->last_bytes = a->bytes;
    return f->take ? PL_REASON_NONE : PL_REASON_NO_CODEC;
}

static void fake_count(void *arg, const pl_nccl_a2a_t *a, pl_reason_t why)
{
    fake_t *f = arg;
    (void)a;
    f->passes[why]++;
}

static pl_nccl_backend_t backend(fake_t *f)
{
    memset(f, 0, sizeof *f);
    f->fail_at = -1;
    return (pl_nccl_backend_t){fake_issue, fake_issue, fake_issue, fake_nranks, fake_rank,
                               fake_codec, fake_count, f};
}

static pl_nccl_op_t op(pl_nccl_kind_t kind, void *comm, int peer, size_t count, int dtype,
                       void *stream)
{
    static float buf[1];
    return (pl_nccl_op_t){kind, comm, stream, buf, buf, count, dtype, peer};
}

/* all_to_all_single's sequence on comm for peers [p0, p1): send to p,
 * receive from p. */
static void record_peers(pl_nccl_group_t *g, void *comm, int p0, int p1, int dtype)
{
    for (int p = p0; p < p1; p++) {
        pl_nccl_op_t s = op(PL_NCCL_SEND, comm, p, 100 + (size_t)p, dtype, &stream_x);
        pl_nccl_op_t r = op(PL_NCCL_RECV, comm, p, 200 + (size_t)p, dtype, &stream_x);
        pl_nccl_group_record(g, &s);
        pl_nccl_group_record(g, &r);
    }
}

static void record_a2a(pl_nccl_group_t *g, void *comm, int n, int dtype)
{
    record_peers(g, comm, 0, n, dtype);
}

/* The replay log equals the recorded sequence, op for op. */
static void assert_replayed_in_order(const fake_t *f, const pl_nccl_op_t *rec, size_t n)
{
    CU_ASSERT_EQUAL_FATAL(f->nlog, n);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(memcmp(&f->log[i], &rec[i], sizeof rec[i]), 0);
}

static void test_nccl_group_pytorch_pattern_recognised_and_replayed(void)
{
    fake_t f;
    pl_nccl_backend_t be = backend(&f);
    pl_nccl_group_t g = {0};
    int flushed;
    CU_ASSERT_TRUE(pl_nccl_group_start(&g));
    record_a2a(&g, &comm_a, 4, FP32);
    pl_nccl_op_t rec[8];
    memcpy(rec, g.ops, sizeof rec);
    CU_ASSERT_EQUAL(pl_nccl_group_end(&g, &be, &flushed), 0);
    CU_ASSERT_TRUE(flushed);
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 1);
    /* Rank 1 sends 100, 102 and 103 floats to the others. */
    CU_ASSERT_EQUAL(f.last_bytes, (100 + 102 + 103) * 4);
    assert_replayed_in_order(&f, rec, 8);
    CU_ASSERT_EQUAL(g.n, 0);
    pl_nccl_group_free(&g);
}

static void test_nccl_group_extra_send_on_same_comm_is_not_alltoall(void)
{
    fake_t f;
    pl_nccl_backend_t be = backend(&f);
    pl_nccl_group_t g = {0};
    int flushed;
    pl_nccl_group_start(&g);
    record_a2a(&g, &comm_a, 2, FP32);
    pl_nccl_op_t extra = op(PL_NCCL_SEND, &comm_a, 2, 7, FP32, &stream_x);
    pl_nccl_group_record(&g, &extra);
    record_a2a(&g, &comm_a, 4, FP32);  /* now peers 0, 1 appear twice */
    size_t n = g.n;
    pl_nccl_op_t rec[16];
    memcpy(rec, g.ops, n * sizeof rec[0]);
    CU_ASSERT_EQUAL(pl_nccl_group_end(&g, &be, &flushed), 0);
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 0);
    assert_replayed_in_order(&f, rec, n);
    pl_nccl_group_free(&g);
}

static void test_nccl_group_interleaved_other_comm_and_two_comms(void)
{
    fake_t f;
    pl_nccl_backend_t be = backend(&f);
    pl_nccl_group_t g = {0};
    int flushed;
    pl_nccl_group_start(&g);
    /* comm A's all-to-all with one lone send on comm B in the middle. */
    record_a2a(&g, &comm_a, 2, FP32);
    pl_nccl_op_t lone = op(PL_NCCL_SEND, &comm_b, 0, 5, FP32, &stream_x);
    pl_nccl_group_record(&g, &lone);
    record_peers(&g, &comm_a, 2, 4, FP32);
    size_t n = g.n;
    pl_nccl_op_t rec[16];
    memcpy(rec, g.ops, n * sizeof rec[0]);
    pl_nccl_group_end(&g, &be, &flushed);
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 1);  /* A yes, B no */
    assert_replayed_in_order(&f, rec, n);

    /* Two complete all-to-alls on two communicators in one group. */
    be = backend(&f);
    pl_nccl_group_start(&g);
    record_a2a(&g, &comm_a, 4, FP32);
    record_a2a(&g, &comm_b, 2, FP32);
    n = g.n;
    memcpy(rec, g.ops, n * sizeof rec[0]);
    pl_nccl_group_end(&g, &be, &flushed);
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 2);
    assert_replayed_in_order(&f, rec, n);
    pl_nccl_group_free(&g);
}

static void test_nccl_group_nested_flushes_at_outermost_end(void)
{
    fake_t f;
    pl_nccl_backend_t be = backend(&f);
    pl_nccl_group_t g = {0};
    int flushed;
    CU_ASSERT_TRUE(pl_nccl_group_start(&g));
    CU_ASSERT_FALSE(pl_nccl_group_start(&g));
    record_a2a(&g, &comm_a, 2, FP32);
    CU_ASSERT_EQUAL(pl_nccl_group_end(&g, &be, &flushed), 0);
    CU_ASSERT_FALSE(flushed);
    CU_ASSERT_EQUAL(f.nlog, 0);
    record_peers(&g, &comm_a, 2, 4, FP32);
    pl_nccl_group_end(&g, &be, &flushed);
    CU_ASSERT_TRUE(flushed);
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 1);
    CU_ASSERT_EQUAL(f.nlog, 8);
    CU_ASSERT_EQUAL(pl_nccl_group_end(&g, &be, &flushed), -1);  /* unbalanced */
    pl_nccl_group_free(&g);
}

static void test_nccl_group_mismatches_are_not_alltoall(void)
{
    fake_t f;
    pl_nccl_backend_t be = backend(&f);
    pl_nccl_group_t g = {0};
    int flushed;
    /* Mixed dtypes, mixed streams, a missing receive, a bad peer. */
    for (int variant = 0; variant < 4; variant++) {
        pl_nccl_group_start(&g);
        record_a2a(&g, &comm_a, 4, FP32);
        if (variant == 0)
            g.ops[3].dtype = INT32;
        if (variant == 1)
            g.ops[5].stream = &stream_y;
        if (variant == 2)
            g.n--;
        if (variant == 3)
            g.ops[0].peer = 9;
        pl_nccl_group_end(&g, &be, &flushed);
    }
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 0);
    CU_ASSERT_EQUAL(f.nlog, 8 + 8 + 7 + 8);
    /* An integer all-to-all is recognised; the codec decides, not us. */
    pl_nccl_group_start(&g);
    record_a2a(&g, &comm_b, 2, INT32);
    pl_nccl_group_end(&g, &be, &flushed);
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 1);
    pl_nccl_group_free(&g);
}

static void test_nccl_group_codec_takeover_and_errors(void)
{
    fake_t f;
    pl_nccl_backend_t be = backend(&f);
    pl_nccl_group_t g = {0};
    int flushed;
    /* A codec that takes the all-to-all: only the lone op is replayed. */
    f.take = 1;
    pl_nccl_group_start(&g);
    pl_nccl_op_t lone = op(PL_NCCL_RECV, &comm_b, 1, 5, FP32, &stream_x);
    pl_nccl_group_record(&g, &lone);
    record_a2a(&g, &comm_a, 4, FP32);
    pl_nccl_group_end(&g, &be, &flushed);
    CU_ASSERT_EQUAL(f.nlog, 1);
    CU_ASSERT_EQUAL(f.log[0].comm, (void *)&comm_b);
    /* An ncclAlltoAll in a group is one all-to-all on its own; a failing
     * replayed op reports its error at the end, after all are issued. */
    be = backend(&f);
    f.fail_at = 1;
    pl_nccl_group_start(&g);
    pl_nccl_op_t a2a = op(PL_NCCL_ALLTOALL, &comm_a, -1, 64, FP32, &stream_x);
    pl_nccl_group_record(&g, &a2a);
    record_a2a(&g, &comm_b, 2, FP32);
    CU_ASSERT_EQUAL(pl_nccl_group_end(&g, &be, &flushed), 3);
    CU_ASSERT_EQUAL(f.nlog, 5);
    CU_ASSERT_EQUAL(f.passes[PL_REASON_NO_CODEC], 2);
    CU_ASSERT_EQUAL(f.last_bytes, 100 * 4);  /* comm B's, offered last */
    pl_nccl_group_free(&g);
    CU_ASSERT_EQUAL(pl_nccl_dtype_size(9), 2);
    CU_ASSERT_EQUAL(pl_nccl_dtype_size(12), 0);
    CU_ASSERT_TRUE(pl_nccl_dtype_is_codec_float(9));
    CU_ASSERT_FALSE(pl_nccl_dtype_is_codec_float(8));
}

static const lt_test_t tests[] = {
    {"test_nccl_group_pytorch_pattern_recognised_and_replayed",
     test_nccl_group_pytorch_pattern_recognised_and_replayed},
    {"test_nccl_group_extra_send_on_same_comm_is_not_alltoall",
     test_nccl_group_extra_send_on_same_comm_is_not_alltoall},
    {"test_nccl_group_interleaved_other_comm_and_two_comms",
     test_nccl_group_interleaved_other_comm_and_two_comms},
    {"test_nccl_group_nested_flushes_at_outermost_end",
     test_nccl_group_nested_flushes_at_outermost_end},
    {"test_nccl_group_mismatches_are_not_alltoall", test_nccl_group_mismatches_are_not_alltoall},
    {"test_nccl_group_codec_takeover_and_errors", test_nccl_group_codec_takeover_and_errors},
};

LT_MAIN("preload_nccl_group", tests)
