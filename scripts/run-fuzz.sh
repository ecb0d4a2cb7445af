#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the codec fuzz target for a bounded time (meson test fuzz_codec):
#   run-fuzz.sh FUZZER SEEDGEN WORKDIR SECONDS
# SEEDGEN writes real encoded segments into a fresh corpus, then libFuzzer
# mutates them for SECONDS seconds. Exits with the fuzzer's status: non-zero
# when it found a crash, a leak, undefined behaviour or a timeout (the
# reproducer is left in WORKDIR).
set -euo pipefail
fuzzer=$(realpath "$1") seedgen=$(realpath "$2") work=$3 seconds=$4
rm -rf "$work"
mkdir -p "$work/corpus"
"$seedgen" "$work/corpus"
cd "$work"
exec "$fuzzer" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 corpus
