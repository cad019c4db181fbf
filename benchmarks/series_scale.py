"""Issue 18's targets at 1e7 iterations: series cost nothing per frame, and the x axis switches fast.

usage::

    EGL_PLATFORM=surfaceless .venv/bin/python benchmarks/series_scale.py [--iterations 10000000] [--dir /tmp/s18]

Writes (or reuses) the scale benchmark's synthetic 1e7 x 16 recording (gda_gl.bench.scale), and a copy
with a validation-loss series logged every 1,000 iterations (the learning rate is the built-in dense
series).  Then, each in a fresh process on the offscreen target (1600x900, Mesa llvmpipe): the first
frame from process start, the median overview frame, the largest frame of the animated zoom from the
whole run to one step (cold, then warm), the peak memory; without series, and with the validation
curve over the phi curve plus an lr panel.  Last, the x-axis switch in the explorer, cold: after the
first frame, the time from ``set_x_axis`` to the new frame drawn, for epoch and forward passes.
Prints a markdown table; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

_CHILD = r"""
import json, sys
from gda_gl.bench.scale import explorer_frames, peak_mb
from gda_gl.compose.state import ViewState
t0, path, series = float(sys.argv[1]), sys.argv[2], sys.argv[3].split(",") if sys.argv[3] else []
out = explorer_frames(path, t0, ViewState(series=tuple(series) if series else None), ("epoch", "forward_passes"))
out["peak_mb"] = peak_mb()
print("RESULT " + json.dumps(out))
"""


def _child(path: Path, series: str) -> dict:
    env = dict(os.environ, EGL_PLATFORM=os.environ.get("EGL_PLATFORM", "surfaceless"))
    res = subprocess.run([sys.executable, "-c", _CHILD, repr(time.time()), str(path), series], capture_output=True,
                         text=True, env=env, timeout=1800)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode or not line:
        raise RuntimeError((res.stderr or res.stdout).strip().splitlines()[-3:])
    return json.loads(line[-1][7:])


def _with_validation(plain: Path, path: Path, n: int) -> None:
    """A copy of ``plain`` with ``val_loss`` logged every 1,000 iterations."""
    import numpy as np

    from recorder.store import RecordingWriter

    if path.exists():
        return
    tmp = path.with_suffix(".part")
    shutil.copyfile(plain, tmp)
    w = RecordingWriter(tmp, np.linspace(0, 2, 16), append=True)  # the scale recording's grid
    for i in range(0, n, 1000):
        w.series.log("val_loss", float(2.0 * np.exp(-i / (0.3 * n)) + 0.25), i)
    w.close()
    tmp.rename(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=10_000_000)
    ap.add_argument("--dir", default="/tmp/gda-series-scale")
    args = ap.parse_args()
    from gda_gl.bench.scale import make_recording

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    plain = d / f"plain-{args.iterations}.gda"
    make_recording(plain, args.iterations)
    withval = d / f"series-{args.iterations}.gda"
    _with_validation(plain, withval, args.iterations)
    rows = [("without series", _child(plain, "")), ("validation + lr panel", _child(withval, "val_loss,lr"))]
    keys = list(rows[0][1])
    print(f"| {args.iterations:,} x 16 | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, r in rows:
        print(f"| {name} | " + " | ".join(f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]) for k in keys) + " |")


if __name__ == "__main__":
    main()
