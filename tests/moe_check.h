/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * CUnit checks of one rank's MoE pass (moe_pass.h results), shared by the
 * self-transport tests (which loop over ranks in the main thread) and the
 * MPI test (each process checks its own rank). Main thread only.
 */
#ifndef LSHMOE_TESTS_MOE_CHECK_H
#define LSHMOE_TESTS_MOE_CHECK_H

#include "moe_pass.h"

/* The pass finished and out (and with bwd dgates and dx) equal the dense
 * reference byte for byte; pre/post: which hook ran (moe_ref_forward). */
void moe_check_reference(const moe_prob_t *p, const moe_experts_t *ex, const moe_inputs_t *in,
                         const moe_rank_res_t *x, int rank, int pre, int post, int bwd);

/* lshmoe_moe_local_experts: the experts the placement gives the rank. */
void moe_check_local_experts(const moe_prob_t *p, const moe_rank_res_t *x, int rank);

/*
 * Layout counts, statistics and batches of one rank against the routing;
 * slots_e: routed slots per expert over all ranks (moe_expert_slots_all).
 * plain: compress = 0 (every group one token, nothing compressed); else
 * clustered data with compression (groups of several tokens formed).
 */
void moe_check_counts(const moe_prob_t *p, const moe_inputs_t *in, const moe_rank_res_t *x,
                      int rank, const size_t *slots_e, int plain);

#endif /* LSHMOE_TESTS_MOE_CHECK_H */
