/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * The gpu suite's checks. Plain C with no CUnit: GPU machines are often
 * bare images where only the compiler and the CUDA toolkit can be relied
 * on, and scripts/run-gpu-checks.sh must build these tests there. Each
 * failed check prints where and what; main() returns 1 if any failed,
 * 77 (meson SKIP) with a reason when no device is usable.
 */
#ifndef LSHMOE_GPU_CHECK_H
#define LSHMOE_GPU_CHECK_H

#include <stdio.h>

#define GPU_EXIT_SKIP 77

extern int gpu_failures;
extern int gpu_checks;

#define GPU_CHECK(cond, ...)                                                  \
    do {                                                                      \
        gpu_checks++;                                                         \
        if (!(cond)) {                                                        \
            gpu_failures++;                                                   \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);   \
            fprintf(stderr, __VA_ARGS__);                                     \
            fputc('\n', stderr);                                              \
        }                                                                     \
    } while (0)

/* Runs a cudaError_t-returning call; a failure is a failed check and
 * returns from the calling function. */
#define GPU_CUDA(call)                                                        \
    do {                                                                      \
        cudaError_t e_ = (call);                                              \
        GPU_CHECK(e_ == cudaSuccess, "%s", cudaGetErrorString(e_));           \
        if (e_ != cudaSuccess)                                                \
            return;                                                           \
    } while (0)

#endif /* LSHMOE_GPU_CHECK_H */
