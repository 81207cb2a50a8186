#!/usr/bin/env bash
# Side-by-side speed: ONNX Runtime, PyTorch and inception on the same models, inputs and threads,
# in one run on this machine. A benchmark, not a test: nothing in CI runs it.
#
#   bench/compare.sh                       # googlenet and inception_v3, batch 1 and 16
#   MODELS=googlenet BATCHES=1,8 THREADS=1 bench/compare.sh
#   TRAIN=1 bench/compare.sh               # training steps against PyTorch too
#   ISA=avx2 TRAIN=1 bench/compare.sh      # an AVX-512 CPU run as an AVX2 one (see below)
#
# It makes a throwaway virtual environment (BENCH_VENV, default under /tmp) with onnxruntime,
# torch and torchvision (PyTorch's CPU-only index when it is reachable, else PyPI), builds the
# release binary, exports torchvision's models (random weights: speed does not depend on them)
# to ONNX and to .pth, checks that all three give the same outputs on the same input, then
# times all three and prints the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${BENCH_VENV:-/tmp/inception-bench-venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet torch torchvision --index-url https://download.pytorch.org/whl/cpu \
    || "$VENV/bin/pip" install --quiet torch torchvision
  "$VENV/bin/pip" install --quiet onnxruntime onnx numpy
fi

# ISA=avx2 on an AVX-512 CPU: inception's kernels (INCEPTION_ISA), PyTorch's own kernels
# (ATEN_CPU_CAPABILITY), oneDNN's (ONEDNN_MAX_CPU_ISA) and MKL's (MKL_ENABLE_INSTRUCTIONS) all
# keep to AVX2+FMA: the nearest this machine comes to an AVX2-only one. ONNX Runtime has no such
# switch; bench/ort_avx2.py makes a copy of it whose MLAS kernels keep to AVX2 (one byte of its
# cpuid check changed) and puts it first on PYTHONPATH. Where that fails (another ONNX Runtime
# build), ONNX Runtime keeps AVX-512 and the table says so.
if [ "${ISA:-}" = avx2 ]; then
  export INCEPTION_ISA=avx2 ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 MKL_ENABLE_INSTRUCTIONS=AVX2
  if ORT_AVX2=$("$VENV/bin/python" bench/ort_avx2.py "${TMPDIR:-/tmp}/inception-ort-avx2"); then
    export PYTHONPATH="$ORT_AVX2${PYTHONPATH:+:$PYTHONPATH}" INCEPTION_ORT_AVX2="$ORT_AVX2"
  fi
fi

cargo build --release --locked -p inception-cli
exec "$VENV/bin/python" bench/compare.py --inception target/release/inception "$@"
