#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# One command for a machine with an NVIDIA GPU: build with CUDA (and NCCL
# when found), run the gpu test suite, compute-sanitizer (memcheck and
# racecheck) on the kernel tests, the device benchmarks, and print a
# summary. Needs nvcc, a C compiler, meson and ninja; CUnit and MPI are
# optional (the gpu suite does not use them). Designed to finish within 8
# minutes on one H100/H200. Usage: bash scripts/run-gpu-checks.sh [BUILD_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
summary=()
fail=0
note() { summary+=("$1"); echo "== $1"; }
step() { # name, command...: runs it, records PASS/FAIL
    local name=$1; shift
    echo "== $name: $*"
    if "$@"; then note "PASS $name"; else note "FAIL $name (exit $?)"; fail=1; fi
}

cuda=${CUDA_HOME:-/usr/local/cuda}
export PATH="$cuda/bin:$PATH"
nvidia-smi -L 2>&1 | head -4
nvcc --version | tail -2
# Images with only gcc: meson looks for cc first.
command -v cc >/dev/null || { command -v gcc >/dev/null && export CC=gcc; }
for tool in meson ninja "${CC:-cc}" nvcc; do
    command -v "$tool" >/dev/null || { echo "run-gpu-checks: $tool is missing"; exit 2; }
done

# NCCL outside the toolkit (e.g. the nvidia-nccl wheel of a PyTorch image):
# expose its header and an unversioned library name to the build.
if [ ! -e "$cuda/include/nccl.h" ]; then
    for py in python3 /usr/bin/python3; do
        d=$($py -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])' 2>/dev/null) && break
    done
    if [ -n "${d:-}" ] && [ -e "$d/include/nccl.h" ]; then
        mkdir -p /tmp/lshmoe-nccl/lib
        ln -sf "$d"/lib/libnccl.so* /tmp/lshmoe-nccl/lib/
        [ -e /tmp/lshmoe-nccl/lib/libnccl.so ] ||
            ln -sf "$(ls "$d"/lib/libnccl.so.* | head -1)" /tmp/lshmoe-nccl/lib/libnccl.so
        export CPATH="$d/include${CPATH:+:$CPATH}"
        export LIBRARY_PATH="/tmp/lshmoe-nccl/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"
        export LD_LIBRARY_PATH="/tmp/lshmoe-nccl/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        echo "NCCL from $d"
    else
        echo "NCCL: no nccl.h found; the NCCL transport will not be built"
    fi
fi

arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d .)
arch=${arch:-90}
t0=$(date +%s)
rm -rf "$build"
step "configure (sm_$arch)" meson setup "$build" -Dgpu_archs="$arch" -Dmpi=disabled \
    -Dbuildtype=release
step build ninja -C "$build" -j"${LSHMOE_JOBS:-$(nproc)}"
note "build took $(( $(date +%s) - t0 )) s"
grep -E "NCCL|CUDA" "$build/meson-logs/meson-log.txt" | grep -i "found" | tail -3

step "gpu suite" meson test -C "$build" --suite gpu --print-errorlogs
# each test's own count of checks, in the summary
for t in cuda_kernels cuda_quant device_codec cuda_checksum nccl_one_rank moe_device device_timeout; do
    [ -x "$build/tests/gpu/test_$t" ] || continue
    # bounded: a test that hangs here must not eat the machine's time
    r=$(timeout 120 "$build/tests/gpu/test_$t" 2>/dev/null | grep -E "checks,|SKIP" | tail -1)
    note "  test_$t: ${r:-no result}"
done

if command -v compute-sanitizer >/dev/null; then
    step "compute-sanitizer memcheck" env LSHMOE_GPU_QUICK=1 timeout 240 \
        compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/gpu/test_cuda_kernels"
    step "compute-sanitizer racecheck" env LSHMOE_GPU_QUICK=1 timeout 240 \
        compute-sanitizer --tool racecheck --error-exitcode 9 "$build/tests/gpu/test_cuda_kernels"
    step "compute-sanitizer memcheck (device codec)" env LSHMOE_GPU_QUICK=1 timeout 240 \
        compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/gpu/test_device_codec"
    step "compute-sanitizer racecheck (device codec)" env LSHMOE_GPU_QUICK=1 timeout 240 \
        compute-sanitizer --tool racecheck --error-exitcode 9 "$build/tests/gpu/test_device_codec"
    step "compute-sanitizer memcheck (quantizers)" timeout 240 \
        compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/gpu/test_cuda_quant"
    step "compute-sanitizer memcheck (checksum)" env LSHMOE_GPU_QUICK=1 timeout 240 \
        compute-sanitizer --tool memcheck --error-exitcode 9 "$build/tests/gpu/test_cuda_checksum"
    step "compute-sanitizer racecheck (checksum)" env LSHMOE_GPU_QUICK=1 timeout 240 \
        compute-sanitizer --tool racecheck --error-exitcode 9 "$build/tests/gpu/test_cuda_checksum"
    # API errors not reported here: NCCL's own communicator set-up probes
    # kernels it has no image for (cudaErrorNoKernelImageForDevice inside
    # libnccl); memory errors in every kernel still fail the step.
    if [ -x "$build/tests/gpu/test_moe_device" ]; then
        step "compute-sanitizer memcheck (MoE mode on device)" timeout 240 \
            compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 9 \
            "$build/tests/gpu/test_moe_device"
    fi
    if [ -x "$build/tests/gpu/test_nccl_one_rank" ]; then
        step "compute-sanitizer memcheck (nccl one rank, fixed row codec)" timeout 240 \
            compute-sanitizer --tool memcheck --report-api-errors no --error-exitcode 9 \
            "$build/tests/gpu/test_nccl_one_rank"
    fi
else
    note "SKIP compute-sanitizer: not installed"
fi

bench() { # name, command...: runs a benchmark, keeps its RESULT lines
    echo "== $1"; shift
    # bounded (a hang must not use up the machine); a failure is reported
    timeout 180 "$@" 2>&1 | tee /tmp/lshmoe-bench.out ||
        { note "FAIL benchmark $* (exit ${PIPESTATUS[0]})"; fail=1; }
    grep -E "^RESULT|encode\+decode|d2d copy|wire enc\+dec|checksum" /tmp/lshmoe-bench.out |
        while read -r l; do note "  $l"; done
}
bench "codec bf16 4096x4096 L6 (target: encode+decode < 130 us)" \
    "$build/benchmarks/codec_perf" --device cuda --tokens 4096 --hidden 4096 --dtype bf16 --hashes 6
bench "codec fp32 4096x4096 L6" \
    "$build/benchmarks/codec_perf" --device cuda --tokens 4096 --hidden 4096 --dtype fp32 --hashes 6
bench "codec bf16 4096x4096 gaussian" \
    "$build/benchmarks/codec_perf" --device cuda --tokens 4096 --hidden 4096 --dtype bf16 --data gaussian
echo "== alltoall_perf --transport nccl"
if [ -e "$build/benchmarks/alltoall_perf" ]; then
    timeout 180 "$build/benchmarks/alltoall_perf" --transport nccl -b 1048576 -e 67108864 -f 4 ||
        { note "FAIL alltoall_perf --transport nccl"; fail=1; }
fi

echo
echo "===== summary ====="
printf '%s\n' "${summary[@]}"
if ! nvidia-smi -L >/dev/null 2>&1; then
    # Without a GPU every device test and benchmark skips: say so, never
    # "passed".
    echo "total $(( $(date +%s) - t0 )) s; NO GPU: built only, nothing ran on a device"
    exit 77
fi
echo "total $(( $(date +%s) - t0 )) s; $([ $fail = 0 ] && echo ALL PASSED || echo SOME FAILED)"
exit $fail
