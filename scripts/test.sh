#!/usr/bin/env bash
# Set up (idempotent) and run the test suite offscreen: bash scripts/test.sh [pytest args]
# The same extras as CI (.ci/run), so the README's command runs every test CI runs (the notebook's included).
set -euo pipefail
cd "$(dirname "$0")/.."
export GDA_EXTRAS=${GDA_EXTRAS:-demo,test,gui,bench,notebook}
bash scripts/setup.sh
export EGL_PLATFORM=surfaceless LP_NUM_THREADS=${LP_NUM_THREADS:-2}
exec .venv/bin/python -m pytest -q "$@"
