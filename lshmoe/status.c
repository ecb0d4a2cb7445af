/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

#include "lshmoe.h"

/* Status names and strings are in common/status.c (the bottom layer). */

int lshmoe_get_version(void)
{
    return LSHMOE_VERSION_CODE;
}

const char *lshmoe_version_string(void)
{
    return LSHMOE_VERSION_STRING;
}

size_t lshmoe_dtype_size(lshmoe_dtype_t dtype)
{
    switch (dtype) {
    case LSHMOE_DTYPE_FP32:  return 4;
    case LSHMOE_DTYPE_FP16:  return 2;
    case LSHMOE_DTYPE_BF16:  return 2;
    case LSHMOE_DTYPE_BYTES: return 1;
    case LSHMOE_DTYPE_INT8:  return 1;
    case LSHMOE_DTYPE_INT32: return 4;
    case LSHMOE_DTYPE_INT64: return 8;
    case LSHMOE_DTYPE_UINT8: return 1;
    case LSHMOE_DTYPE_COUNT: break;
    }
    return 0;
}

const char *lshmoe_dtype_name(lshmoe_dtype_t dtype)
{
    static const char *const names[LSHMOE_DTYPE_COUNT] = {
        "fp32", "fp16", "bf16", "bytes", "int8", "int32", "int64", "uint8"};
    return (unsigned)dtype < LSHMOE_DTYPE_COUNT ? names[dtype] : "invalid";
}
