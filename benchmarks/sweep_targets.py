"""Issue 29's targets on a sweep: a folder of 100 runs x 2,000 steps (llvmpipe, 1200x700).

``python -m benchmarks.sweep_targets [--runs 100] [--steps 2000] [--out benchmarks/results/sweep-cpu.json]``

Measured, each in a fresh process started by this script (so import and start-up costs count):

* first frame: from the process start to the first frame of the explorer's controller and renderer on
  the offscreen target (what the window draws; Qt's own start-up not included), the folder opened as
  ``gda-gl view FOLDER`` opens it; the process's peak resident memory (VmHWM) then;
* zoom frames: the animated zoom from the whole sweep to 60 steps (41 frames of the flight, each drawn
  and read back), median and largest;
* compare PNG: ``gda-gl compare FOLDER --png F`` of the 100 runs (the table and the grid of small
  multiples, 1600x1000), wall time of the process (and its CPU time, children included).

Beside each wall time the CPU time the process used: on a loaded machine (the 2 cores shared by
several jobs) the wall time mostly measures the wait for a core; the CPU time is what the work costs.

Targets (issue 29): first frame <= 1.5 s and <= 600 MB, zoom frames <= 50 ms median, compare PNG <= 5 s.
The load average of the machine is written beside the numbers (the 2 cores are shared).
"""

from __future__ import annotations

import argparse
import resource
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGETS = {"first_frame_s": 1.5, "first_frame_peak_mb": 600.0, "zoom_median_ms": 50.0, "compare_png_s": 5.0}
SIZE = (1200, 700)

_CHILD = r"""
import json, sys, time
T0 = float(sys.argv[1]); folder = sys.argv[2]
from benchmarks.sweep_targets import explorer_frames
from gda_gl.bench.scale import peak_mb
out = explorer_frames(folder, T0)
out["first_frame_peak_mb"] = peak_mb()
print("RESULT " + json.dumps(out), flush=True)
"""


def explorer_frames(folder: str, t0: float) -> dict:
    """First frame (seconds since ``t0``) and the zoom's frame times of the explorer over a folder of runs."""
    from gda_gl.compose.state import ViewState
    from gda_gl.explorer.animation import ANIMATION_S
    from gda_gl.explorer.controller import ExplorerController
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.session.open import load_runs
    from gda_gl.session.select import expand_paths

    runs = load_runs(expand_paths([folder]))
    target = Offscreen(*SIZE)
    with target:
        renderer = CurveRenderer()
    now = [0.0]
    c = ExplorerController(runs, ViewState(), size=SIZE, clock=lambda: now[0])

    cpu = []

    def frame() -> float:
        t, tc = time.perf_counter(), time.process_time()
        with target:
            renderer.draw(c.runs, c.display_state(), c.layout)
        target.read()
        cpu.append(time.process_time() - tc)
        return time.perf_counter() - t

    frame()
    out = {"first_frame_s": time.time() - t0, "first_frame_cpu_s": time.process_time(), "runs": len(runs),
           "overview_ms": 1e3 * sorted(frame() for _ in range(5))[2]}
    cpu.clear()
    now[0] = 0.0
    c.set_x_range(c.full_x_range(), animate=False)
    c.set_x_range((1204.0, 1264.0))  # the flight's target: 60 steps (about 17 px each: every run's arcs)
    times = []
    for i in range(41):
        now[0] = ANIMATION_S * i / 40
        times.append(frame())
    out.update(zoom_median_ms=1e3 * sorted(times)[len(times) // 2], zoom_max_ms=1e3 * max(times),
               zoom_median_cpu_ms=1e3 * sorted(cpu)[len(cpu) // 2],
               final_mode=renderer.last_frame.mode, final_width=renderer.last_view.x1 - renderer.last_view.x0)
    return out


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def run(folder: Path, runs: int, steps: int) -> dict:
    """Write the sweep (reused when present) and measure the targets."""
    from gda_gl.bench.sweep import write_sweep

    if len(list(folder.glob("*.gda"))) != runs:
        folder.mkdir(parents=True, exist_ok=True)
        for p in folder.glob("*.gda"):
            p.unlink()
        write_sweep(folder, runs=runs, steps=steps)
    env = dict(os.environ, EGL_PLATFORM=os.environ.get("EGL_PLATFORM", "surfaceless"))
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[1]), env.get("PYTHONPATH", "")])
    out = {"runs": runs, "steps": steps, "size": list(SIZE), "load_before": _load()}
    t0 = time.time()
    res = subprocess.run([sys.executable, "-c", _CHILD, repr(t0), str(folder)], capture_output=True, text=True,
                         env=env, timeout=900)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode or not line:
        raise RuntimeError(f"explorer child failed: {res.stderr.strip()[-2000:]}")
    out.update(json.loads(line[-1][7:]))
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["_child_cpu"] = ru.ru_utime + ru.ru_stime
    png = folder.parent / "sweep-compare.png"
    t0 = time.time()
    res = subprocess.run([sys.executable, "-m", "gda_gl", "compare", str(folder), "--png", str(png), "--size",
                          "1600x1000"], capture_output=True, text=True, env=env, timeout=900)
    out["compare_png_s"] = time.time() - t0
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["compare_png_cpu_s"] = ru.ru_utime + ru.ru_stime - out.pop("_child_cpu", 0.0)
    if res.returncode:
        raise RuntimeError(f"compare failed: {res.stderr.strip()[-2000:]}")
    out["load_after"] = _load()
    out["met"] = {k: out[k] <= v for k, v in TARGETS.items()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--dir", default=str(Path(tempfile.gettempdir()) / "gda-sweep-bench"))
    ap.add_argument("--out", help="write the results as JSON here")
    args = ap.parse_args(argv)
    out = run(Path(args.dir) / f"sweep-{args.runs}x{args.steps}", args.runs, args.steps)
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
