#!/usr/bin/env bash
# Set up (idempotent) and run the test suite offscreen: bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export EGL_PLATFORM=surfaceless LP_NUM_THREADS=${LP_NUM_THREADS:-2}
exec .venv/bin/python -m pytest -q "$@"
