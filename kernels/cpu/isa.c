/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Which instruction-set level the CPU kernels use (LSHMOE_CPU_ISA). The
 * level is chosen once, from the CPU's features, the first time a kernel
 * asks (or when a context is created, which also validates the variable);
 * the scalar kernels stay the reference and serve every other CPU. The
 * SIMD kernels exist only when the build found an x86-64 compiler that
 * takes the per-file flags (LSHMOE_HAVE_X86_SIMD).
 */
#include <stdatomic.h>

#include "kernels/kernels.h"
#include "lshmoe/common/error.h"
#include "lshmoe/common/param.h"
#include "lshmoe_build_config.h"

/* -1: not chosen yet. Relaxed is enough: every thread that races on the
 * first choice computes the same value. */
static atomic_int active = -1;

static const char *const names[] = {"scalar", "avx2", "avx512"};

const char *lshmoe_kn_isa_name(lshmoe_kn_isa_t isa)
{
    return (unsigned)isa < sizeof names / sizeof names[0] ? names[isa] : "unknown";
}

int lshmoe_kn_isa_supported(lshmoe_kn_isa_t isa)
{
    switch (isa) {
    case LSHMOE_KN_ISA_SCALAR:
        return 1;
#if LSHMOE_HAVE_X86_SIMD
    case LSHMOE_KN_ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case LSHMOE_KN_ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
    default:
        return 0;
    }
}

static lshmoe_kn_isa_t best(void)
{
    for (int i = LSHMOE_KN_ISA_COUNT - 1; i > 0; i--)
        if (lshmoe_kn_isa_supported((lshmoe_kn_isa_t)i))
            return (lshmoe_kn_isa_t)i;
    return LSHMOE_KN_ISA_SCALAR;
}

/* LSHMOE_CPU_ISA: auto|scalar|avx2|avx512 (choice index 0 = auto). */
static lshmoe_status_t resolve(lshmoe_kn_isa_t *isa_p)
{
    int choice;
    *isa_p = best();
    LSHMOE_CHECK(lshmoe_param_choice("CPU_ISA", &choice));
    if (choice == 0)
        return LSHMOE_OK;
    lshmoe_kn_isa_t want = (lshmoe_kn_isa_t)(choice - 1);
    if (!lshmoe_kn_isa_supported(want))
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                            "LSHMOE_CPU_ISA=%s: this CPU or this build lacks it (best: %s)",
                            lshmoe_kn_isa_name(want), lshmoe_kn_isa_name(*isa_p));
    *isa_p = want;
    return LSHMOE_OK;
}

lshmoe_status_t lshmoe_kn_isa_init(void)
{
    lshmoe_kn_isa_t isa;
    LSHMOE_CHECK(resolve(&isa));
    atomic_store_explicit(&active, (int)isa, memory_order_relaxed);
    return LSHMOE_OK;
}

lshmoe_kn_isa_t lshmoe_kn_isa(void)
{
    int v = atomic_load_explicit(&active, memory_order_relaxed);
    if (v < 0) {
        /* A kernel called before any context (tests, benchmarks): a bad
         * LSHMOE_CPU_ISA falls back to the best level here; context
         * creation reports it. */
        lshmoe_kn_isa_t isa;
        if (resolve(&isa) != LSHMOE_OK)
            isa = best();
        v = (int)isa;
        atomic_store_explicit(&active, v, memory_order_relaxed);
    }
    return (lshmoe_kn_isa_t)v;
}

lshmoe_status_t lshmoe_kn_isa_force(lshmoe_kn_isa_t isa)
{
    if (!lshmoe_kn_isa_supported(isa))
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED, "CPU ISA level %s is not available here",
                            lshmoe_kn_isa_name(isa));
    atomic_store_explicit(&active, (int)isa, memory_order_relaxed);
    return LSHMOE_OK;
}
