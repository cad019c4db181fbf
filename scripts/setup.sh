#!/usr/bin/env bash
# Idempotent set-up for a fresh machine: Debian packages for headless GL (when
# missing), a virtual environment in .venv, the CPU build of torch, and gda-gl
# with the extras named in $GDA_EXTRAS (default: demo,test,gui).
set -euo pipefail
cd "$(dirname "$0")/.."

pkgs=(libegl1 libegl-mesa0 libgl1-mesa-dri libgl1 libfontconfig1)
# the desktop viewer (Qt) and its smoke test under a virtual X server
case ",${GDA_EXTRAS:-demo,test,gui}," in *,gui,*)
  pkgs+=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-cursor0 libxkbcommon-x11-0 libxcb-image0
         libxcb-render-util0 libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-xfixes0 libxcb-xkb1 libdbus-1-3);;
esac
# the notebook widget's browser test drives Debian's chromium (Playwright never downloads a browser here);
# installed as root only: elsewhere that one test skips and says why
case ",${GDA_EXTRAS:-demo,test,gui}," in *,notebook,*)
  if ! command -v chromium >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
      pkgs+=(chromium)
    else
      echo "setup: no chromium; the notebook browser test will skip (apt-get install -y --no-install-recommends chromium)" >&2
    fi
  fi;;
esac
need=()
for pkg in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    echo "setup: installing Debian packages for headless OpenGL / the viewer: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  elif command -v apt-get >/dev/null; then
    echo "setup: missing packages; run: sudo apt-get install -y --no-install-recommends ${need[*]}" >&2
    exit 1
  else
    echo "setup: not a Debian system; install EGL + Mesa (llvmpipe) and fontconfig with your package manager" >&2
  fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
VPY=.venv/bin/python
if ! "$VPY" -c "import torch" 2>/dev/null; then
  # GDA_TORCH picks the build. Unset (default): plain `pip install torch==2.13.0`, whatever the configured
  # indexes serve (a CPU wheel where one is provided locally, as on CI's machines; PyPI's default Linux x86_64
  # wheel is a CUDA build of several GB). cpu, cu126, cu128, ...: that build from PyTorch's own index
  # (needs download.pytorch.org). The line printed below says which build was installed.
  case "${GDA_TORCH:-}" in
    ""|pypi) "$VPY" -m pip install -q torch==2.13.0;;
    *) "$VPY" -m pip install -q torch==2.13.0 --index-url "https://download.pytorch.org/whl/${GDA_TORCH}";;
  esac
fi
echo "setup: torch $("$VPY" -c 'import torch; print(torch.__version__, "(CUDA " + torch.version.cuda + ")" if torch.version.cuda else "(CPU build)")')"
"$VPY" -m pip install -q -e ".[${GDA_EXTRAS:-demo,test,gui}]"
