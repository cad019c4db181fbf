#!/usr/bin/env bash
# Fetch, on a machine with network, what the GPU machine's image lacks, into benchmarks/gpu/wheels/
# (ignored by git; carried to the GPU machine by the device tool's `carry`):
#   wheels/site/     vispy + its missing needs, PyOpenGL: installed by run.sh into /tmp/gda-site
#   wheels/cockpit/  cockpit-for-pytorch + backpack-for-pytorch + their missing needs, setuptools<81
#                    (cockpit imports pkg_resources): installed into /tmp/gda-site-cockpit, used by the
#                    Cockpit stage only so that the old setuptools never shadows the image's
#   wheels/deb/      libglvnd's loaders (libEGL, libOpenGL, libGL, libGLX, libGLESv2, libGLdispatch) and
#                    the X11 client libraries libGLX links: unpacked into / by run.sh only where missing
# The GPU image (/work/.library/device/KINDS.md): x86-64, Python 3.12, torch 2.11+cu130, cupy-cuda13x
# 14.2, numpy, pillow, tqdm, kiwisolver, packaging, scikit-learn, matplotlib, pandas, scipy, seaborn,
# einops, torchvision, pytest; no vispy/PyOpenGL/freetype-py/hsluv, no registry access.
# Usage: bash benchmarks/gpu/fetch_wheels.sh   (about 8 MB; re-running replaces the folder)
set -euo pipefail
cd "$(dirname "$0")/../.."
DEST=benchmarks/gpu/wheels
PY=${PYTHON:-}
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
rm -rf "$DEST"
mkdir -p "$DEST/site" "$DEST/cockpit" "$DEST/deb"

# The device's interpreter is CPython 3.12 on manylinux x86-64 (pip matches each N of manylinux_2_N exactly).
PLAT=(--only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
      --platform manylinux2014_x86_64 --platform manylinux_2_12_x86_64 --platform manylinux2010_x86_64
      --platform manylinux_2_5_x86_64 --platform manylinux1_x86_64)
dl() { local d=$1; shift; "$PY" -m pip download -q --no-deps "${PLAT[@]}" -d "$d" "$@" 2>&1 | grep -v "is ignored" || true; }

# vispy's needs: freetype-py, hsluv, kiwisolver, numpy, packaging (the last three are in the image).
dl "$DEST/site" 'vispy==0.17.0' 'PyOpenGL==3.1.10' 'freetype-py==2.5.1' 'hsluv==5.0.5'
# cockpit: json-tricks, matplotlib, numpy, pandas, scipy, seaborn, torch, backpack-for-pytorch;
# backpack: torch, torchvision, einops, unfoldNd (unfoldNd: torch, numpy, packaging).
dl "$DEST/cockpit" 'cockpit-for-pytorch==1.0.2' 'backpack-for-pytorch==1.7.1' 'json-tricks==3.17.3' \
  'unfoldNd==0.2.3' 'setuptools==80.10.2'

# Debian amd64 packages (the device README's recipe; works from any host architecture).
LISTS=$(mktemp -d)
mkdir -p "$LISTS/partial"
o=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 "-oDir::State::Lists=$LISTS")
apt-get "${o[@]}" update -qq 2>&1 | grep -v "unsandboxed" || true
(cd "$DEST/deb" && apt-get "${o[@]}" download -qq libglvnd0 libegl1 libopengl0 libgl1 libglx0 libgles2 \
  libx11-6 libxcb1 libxau6 libxdmcp6 libbsd0 libmd0 2>&1 | grep -v "unsandboxed" || true)
rm -rf "$LISTS"

n_site=$(ls "$DEST"/site/*.whl | wc -l); n_ck=$(ls "$DEST"/cockpit/*.whl | wc -l); n_deb=$(ls "$DEST"/deb/*.deb | wc -l)
[ "$n_site" -eq 4 ] && [ "$n_ck" -eq 5 ] && [ "$n_deb" -eq 12 ] || {
  echo "fetch_wheels: expected 4 + 5 wheels and 12 debs, got $n_site + $n_ck and $n_deb" >&2; exit 1; }

# The device tool sends the working tree (tracked + untracked-not-ignored files) plus the carried
# paths, 64 MiB in all.
carry=$(du -sb "$DEST" | cut -f1)
tree=$(git ls-files -co --exclude-standard -z | xargs -0 -r du -cb 2>/dev/null | tail -1 | cut -f1)
total=$((carry + tree))
printf 'fetch_wheels: %s (%.1f MiB) + working tree (%.1f MiB) = %.1f MiB of the 64 MiB limit\n' \
  "$DEST" "$(echo "$carry/1048576" | bc -l)" "$(echo "$tree/1048576" | bc -l)" "$(echo "$total/1048576" | bc -l)"
[ "$total" -lt $((64 * 1048576)) ] || { echo "fetch_wheels: over the 64 MiB limit" >&2; exit 1; }
