/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Test-only: the device ops table (kernels.h lshmoe_kn_dev_ops_t) emulated
 * in host memory with the CPU kernels and the shared math headers, so that
 * the device codec's orchestration (lshmoe/codec_device*.c: which kernels
 * it queues, on what, in which order, and the decisions it makes from
 * what it reads back) runs in CI without a GPU. The "stream" is ignored,
 * every method runs at once, copy is memcpy and sync does nothing. What
 * it cannot test: the CUDA kernels themselves (tests/gpu/ does that on a
 * GPU), and ordering bugs that only an asynchronous stream shows.
 */
#ifndef LSHMOE_TEST_DEV_OPS_HOST_H
#define LSHMOE_TEST_DEV_OPS_HOST_H

#include "kernels/kernels.h"

extern const lshmoe_kn_dev_ops_t dev_ops_host;

/* Allocations made and not yet freed through dev_ops_host.alloc. */
long dev_ops_host_live(void);

#endif /* LSHMOE_TEST_DEV_OPS_HOST_H */
