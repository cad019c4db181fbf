#!/usr/bin/env bash
# Set up (idempotent) and run the demo: record two training runs on scikit-learn's
# digits, then open the viewer (with a display) or render PNGs (without one).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EGL_PLATFORM=${EGL_PLATFORM:-surfaceless}
exec .venv/bin/gda-gl demo "$@"
