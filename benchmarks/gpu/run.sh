#!/usr/bin/env bash
# GPU checks and benchmarks in one script (fits in 8 minutes on one H200).
# Needs only the machine's preinstalled torch, CuPy and NVIDIA driver; pure-Python
# wheels it lacks (vispy, PyOpenGL) are installed from the checkout's environment
# when missing.  Results go to $OUT (or benchmarks/results/ when unset).
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-benchmarks/results}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
log() { echo "[gpu] $*" | tee -a "$OUT/gpu-run.log"; }
python -c "import vispy, OpenGL" 2>/dev/null || pip install -q 'vispy>=0.17,<0.18' PyOpenGL Pillow tqdm 2>&1 | tail -1
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu-nvidia-smi.txt"

log "1/3 CuPy vs numpy paths (point synthesis, line statistics)"
timeout 120 python -m pytest -q tests/test_linestats_kernels.py 2>&1 | tee "$OUT/gpu-cupy-tests.txt" | tail -3

log "2/3 probe on CUDA: K up to 512, batched vs sweep"
timeout 240 python -m benchmarks.gpu_probe 2>&1 | tail -20 | tee -a "$OUT/gpu-run.log"

log "3/3 EGL rendering on the NVIDIA driver (render suite, 1e5..1e8 samples)"
unset EGL_PLATFORM  # NVIDIA's EGL: default display, no Mesa surfaceless platform
timeout 240 python -m benchmarks --only render --no-results-md --json "$OUT/gpu-render.json" 2>&1 | tail -20 \
  | tee -a "$OUT/gpu-run.log"
log "done"
