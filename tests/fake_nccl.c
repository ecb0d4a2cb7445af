/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * A stand-in for libnccl with the real nccl.h signatures: it performs
 * nothing and logs every call, so test_preload_nccl_shim can check what the
 * preload forwarded, when, and in which order, on a machine without a GPU.
 * Communicators are `fake_comm_t *` with a size and a rank.
 */
#include <string.h>

#include <nccl.h>

#include "fake_nccl.h"

ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);

fake_call_t fake_log[FAKE_LOG_MAX];
int fake_nlog;

static ncclResult_t log_call(const char *what, int peer, size_t count, const void *comm)
{
    if (fake_nlog < FAKE_LOG_MAX) {
        fake_call_t *c = &fake_log[fake_nlog++];
        strncpy(c->what, what, sizeof c->what - 1);
        c->peer = peer;
        c->count = count;
        c->comm = comm;
    }
    return ncclSuccess;
}

ncclResult_t ncclGroupStart(void) { return log_call("start", -1, 0, NULL); }
ncclResult_t ncclGroupEnd(void) { return log_call("end", -1, 0, NULL); }

ncclResult_t ncclGroupSimulateEnd(ncclSimInfo_t *simInfo)
{
    (void)simInfo;
    return log_call("simend", -1, 0, NULL);
}

ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream)
{
    (void)sendbuff, (void)datatype, (void)stream;
    return log_call("send", peer, count, comm);
}

ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream)
{
    (void)recvbuff, (void)datatype, (void)stream;
    return log_call("recv", peer, count, comm);
}

ncclResult_t ncclAlltoAll(const void *sendbuff, void *recvbuff, size_t count,
                          ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream)
{
    (void)sendbuff, (void)recvbuff, (void)datatype, (void)stream;
    return log_call("alltoall", -1, count, comm);
}

ncclResult_t ncclCommCount(const ncclComm_t comm, int *count)
{
    *count = ((const fake_comm_t *)(const void *)comm)->size;
    return ncclSuccess;
}

ncclResult_t ncclCommUserRank(const ncclComm_t comm, int *rank)
{
    *rank = ((const fake_comm_t *)(const void *)comm)->rank;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) { return log_call("destroy", -1, 0, comm); }
ncclResult_t ncclCommAbort(ncclComm_t comm) { return log_call("abort", -1, 0, comm); }
