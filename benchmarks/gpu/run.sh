#!/usr/bin/env bash
# The GPU checks and benchmarks in one script, sized for one call on the lent H200 (under 8 minutes).
#
#   device run:  command  bash benchmarks/gpu/run.sh        carry  ["benchmarks/gpu/wheels"]
#   first, here: bash benchmarks/gpu/fetch_wheels.sh        (what the GPU image lacks; ~9 MiB, ignored by git)
#   rehearsal on a CPU machine: bash benchmarks/gpu/run.sh --dry-run   (or GDA_GPU_FAKE=cpu): tiny sizes, no CUDA
#   a rerun of some stages:     bash benchmarks/gpu/run.sh --only render,scale
#
# Stages (python -m benchmarks.gpu; each a time-boxed subprocess, a failure recorded and the rest run):
# env, tests (CuPy-vs-numpy and the recorder on CUDA), amp (fp16 autocast + GradScaler with the recorder: the
# scaler's skipped steps as rows, the unscaled gradient, lines against a fresh fp32 model), probe (K in 32/128/512, batched vs sweep, three
# models), slowdown (presets on the benchmark CNN), gl (find the NVIDIA EGL set-up), render (frames at
# 1e6..1e9 samples), cockpit (economy configuration, same CNN), scale (`python -m benchmarks --only scale`
# when that suite exists).  Writes $OUT/gpu.json (merged after every stage) and $OUT/gpu-run.log.
# Exit: 0 every stage ran, 1 some stage failed (see gpu.json), 3 no CUDA device (nothing measured).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
PY=${PYTHON:-python3}
DRY=0
for a in "$@"; do [ "$a" = "--dry-run" ] && DRY=1; done
[ "${GDA_GPU_FAKE:-}" = "cpu" ] && DRY=1
OUT=${OUT:-$ROOT/benchmarks/out/gpu}
mkdir -p "$OUT"
export OUT PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
LOG=$OUT/gpu-run.log
: >"$LOG"
log() { echo "[gpu] $*" | tee -a "$LOG"; }

# 1. Fail fast without CUDA (a few seconds: one torch import).
if [ "$DRY" = 0 ]; then
  why=$("$PY" -c 'import torch, sys; ok = torch.cuda.is_available(); print("" if ok else "torch.cuda.is_available() is False"); sys.exit(0 if ok else 3)' 2>&1)
  rc=$?
  if [ $rc -ne 0 ]; then
    [ $rc -eq 3 ] || why="torch does not import: $(echo "$why" | tail -1)"
    msg="gpu run: no CUDA device ($why); nothing measured"
    echo "$msg" | tee -a "$LOG" >&2
    printf '{"status": "no-cuda", "message": "%s", "stages": {}}\n' "$(echo "$msg" | sed 's/\\/\\\\/g; s/"/\\"/g')" >"$OUT/gpu.json"
    exit 3
  fi
fi

# 2. Carried Python packages (pip never reaches a registry: --no-index, wheels from the checkout).
W=$ROOT/benchmarks/gpu/wheels
if ! "$PY" -c 'import vispy, OpenGL' 2>/dev/null; then
  if ls "$W"/site/*.whl >/dev/null 2>&1; then
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gda-site \
         "$W"/site/*.whl >>"$LOG" 2>&1; then
      export PYTHONPATH="$PYTHONPATH:/tmp/gda-site"
      log "installed $(ls "$W"/site/*.whl | xargs -n1 basename | cut -d- -f1-2 | tr '\n' ' ')into /tmp/gda-site"
    else
      log "pip could not install the carried wheels (see above); the GL stages will fail"
    fi
  else
    log "vispy/PyOpenGL missing and no wheels in $W/site: run benchmarks/gpu/fetch_wheels.sh and carry it"
  fi
fi
if ls "$W"/cockpit/*.whl >/dev/null 2>&1 && ! "$PY" -c 'import cockpit, backpack' 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gda-site-cockpit \
    "$W"/cockpit/*.whl >>"$LOG" 2>&1 && export GDA_COCKPIT_SITE=/tmp/gda-site-cockpit
fi

# 3. GL loaders (libglvnd + the X11 client libraries libGLX links), only where the image lacks them,
#    never on a dry run (they unpack into /).  libglvnd's parts go together: they share a private ABI.
have() { ldconfig -p 2>/dev/null | grep -q "^[[:space:]]*$1 "; }
unpack() { for p in "$@"; do f=$(ls "$W"/deb/"$p"_*.deb 2>/dev/null | head -1); [ -n "$f" ] && dpkg -x "$f" / && log "unpacked $(basename "$f")"; done; }
if [ "$DRY" = 0 ] && ls "$W"/deb/*.deb >/dev/null 2>&1; then
  for pair in libmd0:libmd.so.0 libbsd0:libbsd.so.0 libxau6:libXau.so.6 libxdmcp6:libXdmcp.so.6 libxcb1:libxcb.so.1 \
              libx11-6:libX11.so.6; do
    have "${pair#*:}" || unpack "${pair%%:*}"
  done
  missing=""
  for so in libGLdispatch.so.0 libEGL.so.1 libOpenGL.so.0 libGL.so.1 libGLX.so.0 libGLESv2.so.2; do
    have "$so" || missing="$missing $so"
  done
  [ -z "$missing" ] || { log "GL loaders missing:$missing"; unpack libglvnd0 libegl1 libopengl0 libgl1 libglx0 libgles2; }
  ldconfig
fi
# NVIDIA's EGL vendor library: glvnd looks in /usr/share/glvnd and /etc/glvnd only.
if ! ls /usr/share/glvnd/egl_vendor.d/*nvidia* /etc/glvnd/egl_vendor.d/*nvidia* >/dev/null 2>&1 \
   && [ -f /usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json ]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
fi
if ! have libEGL_nvidia.so.0; then
  for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -e "$d/libEGL_nvidia.so.0" ] && export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  done
fi
{
  echo "[gpu] host $(uname -m) $(uname -r); python $("$PY" -V 2>&1); dry-run $DRY"
  command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem \
    --format=csv 2>&1
  echo "[gpu] EGL/GL libraries:"; ldconfig -p 2>/dev/null | grep -E "libEGL|libGL|libOpenGL|libX11.so" | sed 's/^/  /'
  echo "[gpu] __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-} LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
} 2>&1 | tee -a "$LOG"

# 4. The stages, under one overall time budget (GDA_GPU_BUDGET_S, default 400 s).
args=()
for a in "$@"; do args+=("$a"); done
[ "$DRY" = 1 ] && [[ " ${args[*]:-} " != *" --dry-run "* ]] && args+=("--dry-run")
timeout --signal=TERM --kill-after=10 $(( ${GDA_GPU_BUDGET_S:-400} + 40 )) \
  "$PY" -m benchmarks.gpu --out "$OUT" "${args[@]}" 2>&1 | tee -a "$LOG"
rc=${PIPESTATUS[0]}
log "exit $rc (0: every stage ran; 1: some stage failed, see $OUT/gpu.json; 124: out of time)"
exit "$rc"
