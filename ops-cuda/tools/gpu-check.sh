#!/usr/bin/env bash
# One prepared check for a lent GPU machine (H100/H200; NVIDIA driver present; no nvcc needed;
# no network). Prints nvidia-smi, builds ops-cuda with --features cuda (release), runs the
# parity tests for real (OPS_CUDA_REQUIRE_GPU=1: a missing device fails instead of skipping)
# with --test-threads=1, then the SGEMM 2048 and convolution timings. Everything is logged under
# $OUT (or target/gpu-check when OUT is unset); the exit status is non-zero if any step failed.
# Then the autograd GPU parity tests (every op forward and backward, CPU vs GPU), the child-CNN
# GPU tests (models/tests/cuda_child_cnn.rs), the child-RNN GPU tests
# (models/tests/cuda_child_rnn.rs), the controller GPU tests
# (nao/tests/cuda_controller.rs) and the child-CNN train/eval step bench on the GPU
# next to the CPU (criterion, short settings; GPU_CHECK_SKIP_BENCH=1 skips it), and last
# `nao --device cuda cifar --preset smoke` and `nao --device cuda ptb --preset smoke`.
#
# Without cargo on the machine, point OPS_CUDA_PREBUILT at a folder holding binaries built
# elsewhere (any --features cuda build: the driver is loaded at run time, never linked):
#   parity   (target/release/deps/parity-*, from cargo test --release --features cuda --no-run)
#   sgemm_bench (target/release/examples/sgemm_bench)
#   cuda_parity, cuda_child_cnn, cuda_child_rnn, cuda_controller (target/release/deps/*, from cargo test
#       --release --no-run -p autograd -p models -p nao --features nao/cuda), child_cnn (the bench binary, from
#       cargo bench -p nao-benches --features cuda --bench child_cnn --no-run)
# Usage: bash ops-cuda/tools/gpu-check.sh [SGEMM_SIZE]
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
out="${OUT:-$root/target/gpu-check}"
mkdir -p "$out"
size="${1:-2048}"
status=0
log() { echo "== $*" | tee -a "$out/summary.txt"; }
step() { # step NAME CMD...: run, log to $out/NAME.log, remember failures, keep going
    local name="$1"; shift
    log "$name: $*"
    local t0=$SECONDS rc=0
    "$@" >"$out/$name.log" 2>&1 || rc=$?
    tail -n 40 "$out/$name.log"
    log "$name: exit $rc after $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=1
}

: >"$out/summary.txt"
step nvidia-smi nvidia-smi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv >>"$out/summary.txt" 2>&1 || true

if [ -n "${OPS_CUDA_PREBUILT:-}" ]; then
    parity="$(ls "$OPS_CUDA_PREBUILT"/parity* | head -n 1)"
    bench="$OPS_CUDA_PREBUILT/sgemm_bench"
    ag_parity="$(ls "$OPS_CUDA_PREBUILT"/cuda_parity* 2>/dev/null | head -n 1 || true)"
    child="$(ls "$OPS_CUDA_PREBUILT"/cuda_child_cnn* 2>/dev/null | head -n 1 || true)"
    child_rnn="$(ls "$OPS_CUDA_PREBUILT"/cuda_child_rnn* 2>/dev/null | head -n 1 || true)"
    ctrl="$(ls "$OPS_CUDA_PREBUILT"/cuda_controller* 2>/dev/null | head -n 1 || true)"
    cnn_bench="$(ls "$OPS_CUDA_PREBUILT"/child_cnn* 2>/dev/null | head -n 1 || true)"
    chmod +x "$parity" "$bench" ${ag_parity:+"$ag_parity"} ${child:+"$child"} ${child_rnn:+"$child_rnn"} ${ctrl:+"$ctrl"} ${cnn_bench:+"$cnn_bench"}
    log "using prebuilt binaries from $OPS_CUDA_PREBUILT"
elif command -v cargo >/dev/null; then
    cd "$root"
    step build cargo build --offline --release -p ops-cuda --features cuda --tests --examples
    parity="$(ls -t target/release/deps/parity-* | grep -v '\.d$' | head -n 1)"
    bench="target/release/examples/sgemm_bench"
    step build-autograd cargo test --offline --release -p autograd -p models -p nao \
        --features nao/cuda --test cuda_parity --test cuda_child_cnn --test cuda_child_rnn --test cuda_controller --no-run
    ag_parity="$(ls -t target/release/deps/cuda_parity-* | grep -v '\.d$' | head -n 1 || true)"
    child="$(ls -t target/release/deps/cuda_child_cnn-* | grep -v '\.d$' | head -n 1 || true)"
    child_rnn="$(ls -t target/release/deps/cuda_child_rnn-* | grep -v '\.d$' | head -n 1 || true)"
    ctrl="$(ls -t target/release/deps/cuda_controller-* | grep -v '\.d$' | head -n 1 || true)"
    if [ "${GPU_CHECK_SKIP_BENCH:-0}" != 1 ]; then
        step build-bench cargo bench --offline -p nao-benches --features cuda --bench child_cnn --no-run
        cnn_bench="$(ls -t target/release/deps/child_cnn-* | grep -v '\.d$' | head -n 1 || true)"
    fi
else
    log "no cargo and no OPS_CUDA_PREBUILT: cannot build"
    exit 1
fi

export OPS_CUDA_REQUIRE_GPU=1
step parity "$parity" --test-threads=1 --nocapture
grep -E "^test |test result" "$out/parity.log" >>"$out/summary.txt" || true
step bench "$bench" "$size" 20
grep -E "GFLOP|conv|device" "$out/bench.log" >>"$out/summary.txt" || true
if [ -n "${ag_parity:-}" ]; then
    step autograd-parity "$ag_parity" --test-threads=1 --nocapture
    grep -E "^test |test result" "$out/autograd-parity.log" >>"$out/summary.txt" || true
else
    log "autograd-parity: no binary"; status=1
fi
if [ -n "${child:-}" ]; then
    step child-cnn "$child" --test-threads=1 --nocapture
    grep -E "^test |test result" "$out/child-cnn.log" >>"$out/summary.txt" || true
else
    log "child-cnn: no binary"; status=1
fi
if [ -n "${child_rnn:-}" ]; then
    step child-rnn "$child_rnn" --test-threads=1 --nocapture
    grep -E "^test |test result" "$out/child-rnn.log" >>"$out/summary.txt" || true
else
    log "child-rnn: no binary"; status=1
fi
if [ -n "${ctrl:-}" ]; then
    step controller "$ctrl" --test-threads=1 --nocapture
    grep -E "^test |test result" "$out/controller.log" >>"$out/summary.txt" || true
else
    log "controller: no binary"; status=1
fi
if [ -n "${cnn_bench:-}" ] && [ "${GPU_CHECK_SKIP_BENCH:-0}" != 1 ]; then
    # CPU and GPU train/eval steps of the workload-C child CNN (batch 64), short settings.
    step child-cnn-bench "$cnn_bench" --bench child_cnn_N2F16 --warm-up-time 1 --measurement-time 5
    grep -E "child_cnn|time:" "$out/child-cnn-bench.log" >>"$out/summary.txt" || true
fi
# The smoke presets end to end on the GPU (the nao binary is built by the test build above,
# or taken from OPS_CUDA_PREBUILT/nao). They read NAO_DATA_DIR (default: the shared data next
# to the checkout) and never download; without the data they are skipped, saying so.
nao_bin="${OPS_CUDA_PREBUILT:+$OPS_CUDA_PREBUILT/nao}"
nao_bin="${nao_bin:-$root/target/release/nao}"
data="${NAO_DATA_DIR:-}"
for d in "$root/shared/data" "$root/../shared/data"; do
    if [ -z "$data" ] && [ -f "$d/cifar-10-binary.tar.gz" ]; then data="$d"; fi
done
if [ ! -x "$nao_bin" ]; then
    log "nao smoke runs: no nao binary at $nao_bin"; status=1
elif [ -z "$data" ]; then
    log "nao smoke runs: skipped: no data (set NAO_DATA_DIR to a folder with cifar-10-binary.tar.gz and ptb/)"
else
    # A writable copy: nao extracts the CIFAR archive next to it.
    work_data="$out/data"
    mkdir -p "$work_data/ptb"
    ln -sf "$(cd "$data" && pwd)/cifar-10-binary.tar.gz" "$work_data/"
    cp "$data"/ptb/ptb.*.txt "$work_data/ptb/" 2>/dev/null || true
    export NAO_DATA_DIR="$work_data"
    step nao-cifar-smoke "$nao_bin" --device cuda cifar --preset smoke --offline --out "$out/cifar-smoke"
    grep -E "test|wrote" "$out/nao-cifar-smoke.log" | tail -n 5 >>"$out/summary.txt" || true
    step nao-ptb-smoke "$nao_bin" --device cuda ptb --preset smoke --offline --out "$out/ptb-smoke"
    grep -E "ppl|wrote" "$out/nao-ptb-smoke.log" | tail -n 5 >>"$out/summary.txt" || true
fi
log "overall: $([ $status -eq 0 ] && echo PASS || echo FAIL)"
exit $status
