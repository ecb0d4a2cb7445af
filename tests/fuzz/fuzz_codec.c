/* SPDX-License-Identifier: Apache-2.0 */
/* Copyright (c) 2026 the lshmoe authors */

/*
 * libFuzzer target over the public codec API (lshmoe_codec.h): any byte
 * string goes to lshmoe_codec_validate(), and one it accepts must also
 * decode with lshmoe_codec_decode_rows() into a buffer of exactly the size
 * it reported. Crashes, leaks and undefined behaviour are caught by the
 * sanitizers this is built with; a status outside the documented ones, or
 * validate and decode disagreeing, traps.
 */
#include <stdint.h>
#include <stdlib.h>

#include "lshmoe.h"
#include "lshmoe_codec.h"

/* Decoded sizes above this are refused without decoding (documented
 * INVALID_ARG), so a tiny forged header cannot exhaust the fuzzer's memory. */
#define FUZZ_MAX_DECODED ((size_t)16 << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    lshmoe_segment_info_t info = LSHMOE_SEGMENT_INFO_INITIALIZER;
    lshmoe_status_t st = lshmoe_codec_validate(data, size, FUZZ_MAX_DECODED, &info);
    if (st == LSHMOE_ERR_CORRUPT || st == LSHMOE_ERR_INVALID_ARG || st == LSHMOE_ERR_NO_MEMORY)
        return 0;
    if (st != LSHMOE_OK)
        __builtin_trap();
    if (info.segment_bytes != size || info.decoded_bytes > FUZZ_MAX_DECODED)
        __builtin_trap();
    void *out = malloc(info.decoded_bytes + 1);
    if (out == NULL)
        return 0;
    st = lshmoe_codec_decode_rows(data, size, info.dtype, (size_t)info.hidden,
                                  (size_t)info.ntokens, out, (size_t)info.decoded_bytes);
    free(out);
    if (st != LSHMOE_OK)
        __builtin_trap();
    return 0;
}
