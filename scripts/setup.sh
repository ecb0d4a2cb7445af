#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what lshmoe needs on Debian 12 (only the missing packages; needs
# root or sudo when something is missing), then configures and builds
# ./build. Sourced by run-demo.sh and run-tests.sh; safe to run again.
set -euo pipefail

LSHMOE_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LSHMOE_BUILD="${LSHMOE_BUILD:-$LSHMOE_ROOT/build}"

# meson/ninja/compilers, CUnit for the tests, Open MPI for the MPI transport
# and the mpirun sweeps, numpy for the data scripts and matplotlib for the
# sweep's plots (Debian's python3, /usr/bin/python3); mpi4py for the
# preload suite's Python program, torch and mpi4py for the Python binding's
# test suite (it skips without them).
LSHMOE_PACKAGES=(meson ninja-build pkg-config gcc g++ libcunit1-dev
                 openmpi-bin libopenmpi-dev python3 python3-numpy
                 python3-matplotlib python3-torch python3-mpi4py)
# clang and its runtime libraries for the codec fuzz target: on Debian 12,
# -fsanitize=fuzzer needs libclang-rt-14-dev next to clang (clang 14).
LSHMOE_PACKAGES+=(clang libclang-rt-14-dev)

lshmoe_install_missing() {
    local missing=()
    for p in "${LSHMOE_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "lshmoe: installing ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            sudo="sudo"
        else
            echo "lshmoe: need root or sudo to install: ${missing[*]}" >&2
            return 1
        fi
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

# lshmoe_build DIR [meson options...]: configure once, then build.
lshmoe_build() {
    local dir="$1"; shift
    mkdir -p "$dir"
    if [ ! -f "$dir/build.ninja" ]; then
        meson setup "$dir" "$LSHMOE_ROOT" "$@" >"$dir/lshmoe-setup.log" 2>&1 || {
            cat "$dir/lshmoe-setup.log" >&2; return 1; }
        # meson's summary says which optional components were found and why not
        sed -n '/^lshmoe /,$p' "$dir/lshmoe-setup.log" >&2
    fi
    ninja -C "$dir" >"$dir/lshmoe-ninja.log" 2>&1 || {
        tail -n 60 "$dir/lshmoe-ninja.log" >&2; return 1; }
}

# Open MPI refuses to run as root without these; the oversubscribe flag lets
# a 2-core machine run 4 ranks.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    lshmoe_install_missing
    lshmoe_build "$LSHMOE_BUILD"
    echo "lshmoe: built in $LSHMOE_BUILD" >&2
fi
