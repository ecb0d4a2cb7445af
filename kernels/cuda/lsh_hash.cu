/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * Cross-polytope LSH bucket keys on the device, bit-identical to
 * kernels/cpu/lsh_hash.c (which specifies the algorithm): the same signs
 * (drawn on the device by kernels/common/lsh_math.h), the fold's additions
 * per slot in increasing element order from +0.0f, the same butterfly
 * order and scale, the same argmax ties and key packing. Built with
 * --fmad=false so nvcc contracts no multiply-add the CPU does not
 * (the sign products are exact anyway).
 *
 * One block per token: the reduced vector z and the rotated y live in
 * shared memory (2 m floats, m <= 4096); one thread per fold slot (a fold
 * slot is a sequential chain of hidden / m additions, as on the CPU), one
 * butterfly per thread per stage.
 */
#include <stdlib.h>

#include <cuda_runtime.h>

#include "kernels/common/lsh_math.h"
#include "kernels/cuda/cuda_util.h"
#include "kernels/cuda/lsh_cuda.h"

#define HASH_THREADS 128
#define MAX_M 4096
#define HUGE_BITS 0x5f800000u /* fp32 bits of 2^64 */
#define MAX_L 16

struct lshmoe_kn_cuda_hasher {
    lshmoe_kn_lsh_params_t p;
    size_t hidden;
    int m;
    int nrot;
    int bits;
    int packed;
    float *fold_sign; /* device, hidden floats (FOLD only) */
    float *rot_sign;  /* device, nrot * rounds * m floats  */
};

/* What the kernel needs, by value. */
struct hash_args {
    const float *fold_sign;
    const float *rot_sign;
    size_t hidden;
    int m, nrot, rounds, cdim, L, bits, packed, fold;
};

static __global__ void draw_signs(uint64_t seed, float *fold_sign, size_t hidden,
                                  float *rot_sign, int nrot, int rounds, int m)
{
    size_t tid = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    size_t step = (size_t)gridDim.x * blockDim.x;
    if (fold_sign != NULL)
        for (size_t i = tid; i < hidden; i += step)
            fold_sign[i] = lshmoe_kn_fold_sign(seed, i);
    size_t nrs = (size_t)nrot * (size_t)rounds * (size_t)m;
    for (size_t q = tid; q < nrs; q += step) {
        size_t j = q % (size_t)m;
        int k = (int)(q / (size_t)m % (size_t)rounds);
        int r = (int)(q / (size_t)m / (size_t)rounds);
        rot_sign[q] = lshmoe_kn_rot_sign(seed, r, k, j);
    }
}

/* z = fold (or zero-padded copy) of the token, times `scale` (1, or the
 * power of two of the overflow path, applied to x before the sign as the
 * CPU does). */
static __device__ void reduce_token(const hash_args &a, const unsigned char *row,
                                    int dtype, float scale, float *z)
{
    for (int j = threadIdx.x; j < a.m; j += blockDim.x) {
        if (a.fold) {
            float acc = 0.0f;
            for (size_t i = (size_t)j; i < a.hidden; i += (size_t)a.m) {
                float x = kn_load(row, dtype, i);
                if (scale != 1.0f)
                    x = x * scale;
                acc = acc + a.fold_sign[i] * x;
            }
            z[j] = acc;
        } else {
            float x = (size_t)j < a.hidden ? kn_load(row, dtype, (size_t)j) : 0.0f;
            z[j] = scale != 1.0f ? x * scale : x;
        }
    }
}

static __device__ int is_huge(float v)
{
    return (lshmoe_kn_f32_bits(v) & 0x7fffffffu) >= HUGE_BITS;
}

static __global__ void hash_kernel(hash_args a, const unsigned char *tokens, int dtype,
                                   size_t ntokens, uint64_t *keys)
{
    extern __shared__ float smem[];
    float *z = smem;
    float *y = smem + a.m;
    __shared__ unsigned vals[MAX_L];
    __shared__ unsigned maxbits;
    const size_t es = dtype == LSHMOE_DTYPE_FP32 ? 4 : 2;
    const int nblk = a.m / a.cdim;

    for (size_t t = blockIdx.x; t < ntokens; t += gridDim.x) {
        const unsigned char *row = tokens + t * a.hidden * es;
        reduce_token(a, row, dtype, 1.0f, z);
        int huge = 0;
        for (int j = threadIdx.x; j < a.m; j += blockDim.x)
            huge |= is_huge(z[j]);
        if (__syncthreads_or(huge)) {
            /* Rare path, as on the CPU: NaN/Inf in the token, or values so
             * large that the fold or rotation could overflow. */
            int bad = 0;
            unsigned mb = 0;
            for (size_t i = threadIdx.x; i < a.hidden; i += blockDim.x) {
                float x = kn_load(row, dtype, i);
                bad |= !isfinite(x);
                mb = max(mb, lshmoe_kn_f32_bits(x) & 0x7fffffffu);
            }
            if (threadIdx.x == 0)
                maxbits = 0;
            __syncthreads();
            atomicMax(&maxbits, mb); /* |x| orders as its bits */
            if (__syncthreads_or(bad)) {
                if (threadIdx.x == 0)
                    keys[t] = LSHMOE_KN_KEY_NONFINITE;
                __syncthreads();
                continue;
            }
            float mx = lshmoe_kn_bits_f32(maxbits);
            float f = 1.0f;
            if (mx != 0.0f) {
                int e;
                (void)frexpf(mx, &e);
                f = ldexpf(1.0f, -e);
            }
            reduce_token(a, row, dtype, f, z);
            __syncthreads();
        }
        int g0 = 0;
        for (int r = 0; r < a.nrot; r++, g0 += nblk) {
            for (int j = threadIdx.x; j < a.m; j += blockDim.x)
                y[j] = z[j];
            for (int k = 0; k < a.rounds; k++) {
                const float *d = a.rot_sign + ((size_t)r * a.rounds + k) * a.m;
                for (int j = threadIdx.x; j < a.m; j += blockDim.x)
                    y[j] = y[j] * d[j];
                __syncthreads();
                for (int h = 1; h < a.m; h *= 2) {
                    for (int p = threadIdx.x; p < a.m / 2; p += blockDim.x) {
                        int i = (p / h) * 2 * h + p % h;
                        lshmoe_kn_butterfly(&y[i], &y[i + h]);
                    }
                    __syncthreads();
                }
                const float s = lshmoe_kn_fwht_scale((size_t)a.m);
                for (int j = threadIdx.x; j < a.m; j += blockDim.x)
                    y[j] = y[j] * s;
                __syncthreads();
            }
            for (int b = threadIdx.x; b < nblk && g0 + b < a.L; b += blockDim.x)
                vals[g0 + b] = lshmoe_kn_block_value(y + (size_t)b * a.cdim, a.cdim);
            __syncthreads();
        }
        if (threadIdx.x == 0) {
            uint64_t key = lshmoe_kn_key_init(a.packed);
            for (int g = 0; g < a.L; g++)
                key = lshmoe_kn_key_add(key, a.packed, a.bits, g, vals[g]);
            keys[t] = lshmoe_kn_key_finish(key, a.packed);
        }
        __syncthreads();
    }
}

static int is_pow2(long v)
{
    return v > 0 && (v & (v - 1)) == 0;
}

extern "C" lshmoe_status_t
lshmoe_kn_cuda_hasher_create(const lshmoe_kn_lsh_params_t *params, size_t hidden,
                             void *stream, lshmoe_kn_cuda_hasher_t **hasher_p)
{
    if (params == NULL || hasher_p == NULL)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda lsh hasher: null argument");
    *hasher_p = NULL;
    /* The CPU hasher owns the validation; create and drop one. */
    lshmoe_kn_hasher_t *cpu = NULL;
    LSHMOE_CHECK(lshmoe_kn_hasher_create(params, hidden, &cpu));
    size_t m = lshmoe_kn_hasher_dim(cpu);
    lshmoe_kn_hasher_destroy(cpu);
    if (m > MAX_M || !is_pow2((long)m))
        return lshmoe_error(LSHMOE_ERR_UNSUPPORTED,
                            "cuda lsh hasher: rotated dimension %zu exceeds %d "
                            "(use the fold reduction for hidden sizes above %d)",
                            m, MAX_M, MAX_M);

    lshmoe_kn_cuda_hasher_t *h = (lshmoe_kn_cuda_hasher_t *)calloc(1, sizeof *h);
    if (h == NULL)
        return lshmoe_error(LSHMOE_ERR_NO_MEMORY, "cuda lsh hasher: out of memory");
    h->p = *params;
    h->hidden = hidden;
    h->m = (int)m;
    h->nrot = (int)(((size_t)params->num_hashes * (size_t)params->cdim + m - 1) / m);
    h->bits = lshmoe_kn_value_bits(params->cdim);
    h->packed = params->num_hashes * h->bits <= 63;
    const int fold = params->reduce == LSHMOE_REDUCE_FOLD;
    size_t nrs = (size_t)h->nrot * (size_t)params->rounds * m;
    cudaError_t e = cudaMalloc((void **)&h->rot_sign, nrs * sizeof(float));
    if (e == cudaSuccess && fold)
        e = cudaMalloc((void **)&h->fold_sign, hidden * sizeof(float));
    if (e == cudaSuccess) {
        draw_signs<<<256, 256, 0, kn_stream(stream)>>>(params->seed, h->fold_sign, hidden,
                                                       h->rot_sign, h->nrot,
                                                       params->rounds, (int)m);
        e = cudaGetLastError();
    }
    if (e == cudaSuccess)
        e = cudaStreamSynchronize(kn_stream(stream));
    if (e != cudaSuccess) {
        lshmoe_kn_cuda_hasher_destroy(h);
        return lshmoe_error(LSHMOE_ERR_CUDA, "cuda lsh hasher: %s",
                            cudaGetErrorString(e));
    }
    *hasher_p = h;
    return LSHMOE_OK;
}

extern "C" void lshmoe_kn_cuda_hasher_destroy(lshmoe_kn_cuda_hasher_t *hasher)
{
    if (hasher == NULL)
        return;
    cudaFree(hasher->fold_sign);
    cudaFree(hasher->rot_sign);
    free(hasher);
}

extern "C" lshmoe_status_t
lshmoe_kn_cuda_hash(const lshmoe_kn_cuda_hasher_t *h, const void *tokens,
                    lshmoe_dtype_t dtype, size_t ntokens, uint64_t *keys, void *stream)
{
    if (h == NULL || (ntokens > 0 && (tokens == NULL || keys == NULL)))
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG, "cuda lsh hash: null argument");
    if (dtype != LSHMOE_DTYPE_FP32 && dtype != LSHMOE_DTYPE_FP16 &&
        dtype != LSHMOE_DTYPE_BF16)
        return lshmoe_error(LSHMOE_ERR_INVALID_ARG,
                            "cuda lsh hash: dtype %d is not a float dtype", (int)dtype);
    if (ntokens == 0)
        return LSHMOE_OK;
    hash_args a;
    a.fold_sign = h->fold_sign;
    a.rot_sign = h->rot_sign;
    a.hidden = h->hidden;
    a.m = h->m;
    a.nrot = h->nrot;
    a.rounds = h->p.rounds;
    a.cdim = h->p.cdim;
    a.L = h->p.num_hashes;
    a.bits = h->bits;
    a.packed = h->packed;
    a.fold = h->p.reduce == LSHMOE_REDUCE_FOLD;
    size_t shmem = 2 * (size_t)h->m * sizeof(float);
    if (shmem > 48 * 1024)
        KN_CUDA_TRY(cudaFuncSetAttribute(hash_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize,
                                         (int)shmem));
    unsigned grid = ntokens < 65536 ? (unsigned)ntokens : 65536u;
    int threads = h->m < HASH_THREADS ? (h->m < 32 ? 32 : h->m) : HASH_THREADS;
    hash_kernel<<<grid, threads, shmem, kn_stream(stream)>>>(
        a, (const unsigned char *)tokens, (int)dtype, ntokens, keys);
    KN_CUDA_LAUNCHED("hash");
    return LSHMOE_OK;
}
