"""Frame times of the explorer canvas (renderer plus overlays, what the R readout shows), offscreen.

usage: python docs/explorer/frame_times.py [RUN.gda ...]

Draws the explorer's canvas (the same ``on_draw`` as the window, with ``glFinish``) at three zoom
levels: the whole run, 40 steps, one step; on the given recordings and on a synthetic
1,000,000-iteration run written to a temporary file.  Prints median and 90th percentile in ms.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("EGL_PLATFORM", "surfaceless")

import numpy as np  # noqa: E402


def synthetic(path: Path, n: int = 1_000_000, k: int = 16) -> Path:
    from recorder.store import RecordingWriter

    grid = np.linspace(0.0, 2.0, k)
    with RecordingWriter(path, grid, {"name": "synthetic-1e6"}, overwrite=True) as w:
        for a in range(0, n, 100_000):
            it = np.arange(a, min(n, a + 100_000))
            top = 2.0 * 0.999995 ** it
            phi = top[:, None] + (-0.01 - 1.0) * grid[None, :] + grid[None, :] ** 2
            phi += 0.3 * ((it // 20) % 2)[:, None]
            w.append_arrays({"iteration": it, "batch": it // 20, "epoch": it // 100_000, "taken_alpha":
                             np.ones(len(it)), "train_loss": phi[:, 0]}, phi.astype(np.float32))
    return path


def measure(paths: list[str], frames: int = 15) -> list[tuple[str, str, float, float]]:
    from gda_gl.gl.backend import use_backend

    use_backend(offscreen=True)
    from recorder.store import Recording

    from gda_gl.explorer.canvas import ExplorerCanvas
    from gda_gl.explorer.controller import ExplorerController
    from gda_gl.scene import RUN_COLORS, RunData

    recs = [Recording(p) for p in paths]
    runs = [RunData.from_recording(r, color=RUN_COLORS[i]) for i, r in enumerate(recs)]
    c = ExplorerController(runs, size=(1200, 700))
    c.show_readout = True
    cv = ExplorerCanvas(c, show=False)
    out = []
    span = runs[0].x_span
    mid = int(span[0] + 0.4 * (span[1] - span[0]))
    for level, rng in (("whole run", None), ("40 steps", (mid, mid + 40)), ("one step", (mid - 0.15, mid + 2.15))):
        if rng is None:
            c.home()
        else:
            c.set_x_range(rng, animate=False)
        cv.render()  # warm-up (text rasterised, caches filled)
        cv.frame_ms.clear()
        for _ in range(frames):
            cv.mouse = (600 + np.random.uniform(-50, 50), 350)  # hover readout computed every frame
            cv.render()
        ms = np.asarray(cv.frame_ms)
        out.append((" + ".join(r.name for r in runs), level, float(np.median(ms)), float(np.percentile(ms, 90))))
    cv.close()
    for r in recs:
        r.close()
    return out


def main(argv: list[str]) -> None:
    rows = []
    if argv:
        rows += measure(argv)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.time()
        p = synthetic(Path(d) / "synthetic-1e6.gda")
        print(f"wrote 1e6 iterations in {time.time() - t0:.1f} s", file=sys.stderr)
        rows += measure([str(p)])
    print("| runs | view | median ms | p90 ms |")
    print("|---|---|---:|---:|")
    for name, level, med, p90 in rows:
        print(f"| {name} | {level} | {med:.1f} | {p90:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
