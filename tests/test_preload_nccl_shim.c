/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The NCCL shim end to end on a machine without a GPU: this program calls
 * NCCL the way PyTorch's all_to_all_single does, linked against a libnccl
 * stand-in (fake_nccl.c) that logs what reaches it, and runs with
 * liblshmoe-preload.so in LD_PRELOAD (meson sets it). Checks that the
 * preload really sits in between (sends inside a group reach NCCL only at
 * ncclGroupEnd), replays everything in order inside the real group, keeps
 * nesting, and forwards everything else untouched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nccl.h>

#include "fake_nccl.h"
#include "testutil.h"

ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);

static fake_comm_t comm4 = {4, 1}, comm2 = {2, 0};
static float buf[1024];

static int preloaded(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p != NULL && strstr(p, "liblshmoe-preload") != NULL;
}

static void expect(int i, const char *what, int peer, const void *comm)
{
    CU_ASSERT_TRUE_FATAL(i < fake_nlog);
    CU_ASSERT_STRING_EQUAL(fake_log[i].what, what);
    if (peer >= 0)
        CU_ASSERT_EQUAL(fake_log[i].peer, peer);
    if (comm != NULL)
        CU_ASSERT_PTR_EQUAL(fake_log[i].comm, comm);
}

static void a2a(fake_comm_t *c)
{
    for (int p = 0; p < c->size; p++) {
        CU_ASSERT_EQUAL(ncclSend(buf, 64, ncclFloat32, p, (ncclComm_t)(void *)c, NULL),
                        ncclSuccess);
        CU_ASSERT_EQUAL(ncclRecv(buf, 64, ncclFloat32, p, (ncclComm_t)(void *)c, NULL),
                        ncclSuccess);
    }
}

static void test_nccl_shim_group_is_deferred_and_replayed_in_order(void)
{
    fake_nlog = 0;
    CU_ASSERT_EQUAL(ncclGroupStart(), ncclSuccess);
    CU_ASSERT_EQUAL(fake_nlog, 1);             /* the real group opens at once */
    a2a(&comm4);
    CU_ASSERT_EQUAL(fake_nlog, 1);             /* recorded, not yet issued */
    CU_ASSERT_EQUAL(ncclGroupEnd(), ncclSuccess);
    CU_ASSERT_EQUAL_FATAL(fake_nlog, 1 + 8 + 1);
    expect(0, "start", -1, NULL);
    for (int p = 0; p < 4; p++) {
        expect(1 + 2 * p, "send", p, &comm4);
        expect(2 + 2 * p, "recv", p, &comm4);
    }
    expect(9, "end", -1, NULL);
}

static void test_nccl_shim_nested_two_comms_and_lone_ops(void)
{
    fake_nlog = 0;
    ncclGroupStart();
    a2a(&comm2);
    ncclGroupStart();                          /* nested, as libraries do */
    ncclSend(buf, 3, ncclInt32, 0, (ncclComm_t)(void *)&comm4, NULL);
    ncclAlltoAll(buf, buf, 8, ncclFloat32, (ncclComm_t)(void *)&comm4, NULL);
    ncclGroupEnd();
    CU_ASSERT_EQUAL(fake_nlog, 3);             /* start, start, inner end: no op yet */
    a2a(&comm4);
    ncclGroupEnd();
    const char *order[] = {"start", "start", "end", "send", "recv", "send", "recv", "send",
                           "alltoall"};
    for (int i = 0; i < 9; i++)
        expect(i, order[i], -1, NULL);
    CU_ASSERT_EQUAL(fake_nlog, 2 + 1 + 4 + 2 + 8 + 1);
    expect(fake_nlog - 1, "end", -1, NULL);

    /* A simulated group: replayed the same way, then the real simulation. */
    fake_nlog = 0;
    ncclGroupStart();
    a2a(&comm2);
    CU_ASSERT_EQUAL(fake_nlog, 1);
    CU_ASSERT_EQUAL(ncclGroupSimulateEnd(NULL), ncclSuccess);
    CU_ASSERT_EQUAL(fake_nlog, 1 + 4 + 1);
    expect(1, "send", 0, &comm2);
    expect(4, "recv", 1, &comm2);
    expect(5, "simend", -1, NULL);

    /* Outside a group: issued at once, untouched. */
    fake_nlog = 0;
    ncclSend(buf, 5, ncclFloat32, 1, (ncclComm_t)(void *)&comm2, NULL);
    ncclAlltoAll(buf, buf, 16, ncclFloat32, (ncclComm_t)(void *)&comm4, NULL);
    ncclCommDestroy((ncclComm_t)(void *)&comm2);
    ncclCommAbort((ncclComm_t)(void *)&comm4);
    CU_ASSERT_EQUAL(fake_nlog, 4);
    expect(0, "send", 1, &comm2);
    expect(1, "alltoall", -1, &comm4);
    CU_ASSERT_EQUAL(fake_log[1].count, 16);
    expect(2, "destroy", -1, &comm2);
    expect(3, "abort", -1, &comm4);
}

static const lt_test_t tests[] = {
    {"test_nccl_shim_group_is_deferred_and_replayed_in_order",
     test_nccl_shim_group_is_deferred_and_replayed_in_order},
    {"test_nccl_shim_nested_two_comms_and_lone_ops",
     test_nccl_shim_nested_two_comms_and_lone_ops},
};

int main(void)
{
    if (!preloaded()) {
        printf("SKIP: run with liblshmoe-preload.so in LD_PRELOAD (meson test does)\n");
        return LT_EXIT_SKIP;
    }
    return lt_run_suite("preload_nccl_shim", tests, sizeof tests / sizeof tests[0]);
}
