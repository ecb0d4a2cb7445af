/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The device codec (lshmoe/codec_device*.c) against the CPU codec, through
 * any device ops table: the CUDA one (tests/gpu/test_device_codec.c, on a
 * GPU) or the host emulation (tests/test_device_orchestration.c, in CI).
 * For fp32, fp16 and bf16, two hidden sizes, the lsh codec and every row
 * format without clustering, several quality budgets: a batch of segments
 * (clustered with NaN/Inf, zero and huge tokens; clean clustered; small;
 * under min_tokens; empty; structureless) encoded through the ops gives
 * the CPU encoder's wire bytes and decisions; CPU wire bytes (also of LSH
 * with coded centroids) decode through the ops into the CPU decoder's
 * tokens; a damaged checksum, a damaged coded row and nonzero unused code
 * bits are LSHMOE_ERR_CORRUPT with nothing written; modes not on the
 * device are LSHMOE_ERR_UNSUPPORTED by name; after the first call of a
 * shape, no more device allocations. Plain C with the gpu suite's check
 * macros (tests/gpu/gpu_check.h), so a bare GPU image builds it.
 */
#ifndef LSHMOE_TEST_DEV_CODEC_CHECK_H
#define LSHMOE_TEST_DEV_CODEC_CHECK_H

#include "kernels/kernels.h"

/* Runs every check; failures are counted in gpu_failures. With
 * LSHMOE_GPU_QUICK set (not 0): bf16, hidden 203, two budgets, the sampled
 * search only (for compute-sanitizer, which slows every launch). */
void dev_codec_check_run(const lshmoe_kn_dev_ops_t *ops, void *stream);

#endif /* LSHMOE_TEST_DEV_CODEC_CHECK_H */
