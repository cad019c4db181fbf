"""Render suite: frame times at 1e5..1e8 samples with level of detail on and off.

Frames are 1600x900 on the offscreen EGL target; a frame is ``draw`` plus
``read`` (which waits for the GPU).  "LOD off" draws every sample as one plain
GL line strip (shaders/polyline.*.glsl).  The repository adds matplotlib Agg
drawing the same samples as a peer (``benchmarks/peers.py``).
Time to first frame: ``gda-gl render`` of a 1,000,000 x 16 recording, from
process start to the PNG on disk.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import timeit

NAME = "render"
W, H = 1600, 900


def _synthetic(n_rows: int, k: int, seed: int = 0):
    from recorder import schema
    from recorder.store import Iterations

    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 2, k)
    top = (2.0 * np.exp(-np.arange(n_rows) / (n_rows / 5)) + 0.1).astype(np.float32)
    phi = top[:, None] * (1 - 0.3 * grid[None, :] + 0.12 * grid[None, :] ** 2).astype(np.float32)
    phi += 0.02 * rng.random((n_rows, k), dtype=np.float32)
    cols = {nm: np.zeros(n_rows, dt) for nm, dt in schema.ITER_DTYPES.items()}
    cols["iteration"] = np.arange(n_rows)
    cols["taken_alpha"][:] = 1.0
    cols["batch"] = np.arange(n_rows) // 20
    off = np.zeros(n_rows + 1, np.int64)
    return Iterations(grid, cols, phi, off, {nm: np.empty(0, dt) for nm, dt in schema.TRIAL_DTYPES.items()})


class _Strip:
    """Brute force: every sample in one GL line strip."""

    def __init__(self, data):
        from vispy import gloo

        from gda_gl.gl.programs import build_program

        self.prog = build_program("polyline")
        n, k = data.phi.shape
        x = (data.iteration[:, None] + data.alpha_grid[None, :]).reshape(-1).astype(np.float32)
        y = data.phi.reshape(-1)
        self.prog["a_position"] = gloo.VertexBuffer(np.stack([x, y], axis=1).astype(np.float32))
        self.prog["u_color"] = (0.1, 0.4, 0.7, 1.0)
        self.x_span = float(data.iteration[-1] + 2)
        self.y = (float(y.min()), float(y.max()))

    def draw(self):
        from vispy import gloo

        gloo.set_viewport(0, 0, W, H)
        gloo.clear(color="white")
        self.prog["u_resolution"] = (W, H)
        self.prog["u_plot_origin"] = (0.0, 0.0)
        self.prog["u_scale"] = (W / self.x_span, H / (self.y[1] - self.y[0]))
        self.prog.draw("line_strip")


def lod_off_frame(target, data):
    """Upload every sample of ``data`` as one GL line strip (no level of detail) on the offscreen ``target``;
    returns a function that draws that strip and reads the frame back, the per-frame cost without LOD."""
    with target:
        strip = _Strip(data)

    def brute():
        with target:
            strip.draw()
        target.read()

    return brute


def _first_frame(tmp: Path, env: dict | None = None, timeout: float | None = None) -> float:
    """``gda-gl render`` of a 1,000,000 x 16 recording, process start to PNG (``env``: the GL set-up to use;
    headless EGL by default)."""
    from recorder.store import RecordingWriter

    d = _synthetic(1_000_000, 16)
    p = tmp / "first.gda"
    with RecordingWriter(p, d.alpha_grid, {"name": "first-frame"}, overwrite=True) as w:
        for s in range(0, len(d), 100_000):
            w.append_arrays({k: v[s:s + 100_000] for k, v in d.columns.items()}, d.phi[s:s + 100_000])
    env = dict(os.environ, EGL_PLATFORM="surfaceless") if env is None else env
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "gda_gl", "render", str(p), "-o", str(tmp / "first.png")],
                         capture_output=True, text=True, env=env, timeout=timeout)
    t = time.perf_counter() - t0
    if res.returncode:
        raise RuntimeError((res.stderr.strip().splitlines() or ["no message"])[-1])
    return t


def run(quick: bool = False) -> dict:
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.compose.layout import Layout
    from gda_gl.compose.scene import RunData
    from gda_gl.compose.state import ViewState

    target = Offscreen(W, H)
    info = target.renderer_info()
    with target:
        renderer = CurveRenderer()
    layout = Layout.for_size(W, H, colorbar=False)
    rows = []
    sizes = [(100_000, 16), (1_000_000, 16), (10_000_000, 16), (100_000_000, 16)]
    for samples, k in sizes:
        n = samples // k
        data = _synthetic(n, k)
        t0 = time.perf_counter()
        run_ = RunData(data, name="bench")
        t_prep = time.perf_counter() - t0

        def frame(state):
            with target:
                renderer.draw([run_], state, layout)
            target.read()

        t_over = timeit(lambda: frame(ViewState()), repeat=5)
        mid = n // 2
        t_zoom = timeit(lambda: frame(ViewState(x_range=(mid, mid + 200))), repeat=5)
        row = {"samples": f"{samples:.0e}", "prepare (envelopes+pyramid) s": t_prep, "overview ms": 1e3 * t_over,
               "zoomed (200 it) ms": 1e3 * t_zoom}
        if samples <= 10_000_000:
            brute = lod_off_frame(target, data)
            row["LOD off ms"] = 1e3 * timeit(brute, repeat=3)
            del brute  # frees the strip's vertex buffer
        else:
            row["LOD off ms"] = math.nan  # 1e8 samples: 800 MB of vertices, not attempted
        rows.append(row)
        del data
    # explorer's first frame of a 1,000,000 x 64 recording once the data is read (prepare + one frame)
    data = _synthetic(1_000_000, 64)
    t0 = time.perf_counter()
    first_run = RunData(data, name="first")
    with target:
        renderer.draw([first_run], ViewState(), layout)
    target.read()
    t_first_view = time.perf_counter() - t0
    del first_run, data
    base = rows[1]["overview ms"]
    for r in rows:
        r["overview / 1e6"] = r["overview ms"] / base
    target.close()
    tmp = Path(tempfile.mkdtemp(prefix="gda-bench-"))
    try:
        first = _first_frame(tmp)
    finally:
        for f in tmp.iterdir():
            f.unlink()
        os.rmdir(tmp)
    return {"render": rows,
            "first frame": [{"what": "gda-gl render, 1,000,000 x 16 recording, process start to PNG", "seconds": first},
                            {"what": "first frame of 1,000,000 x 64 after the data is read (envelopes, pyramid, "
                                     "one 1600x900 frame)", "seconds": t_first_view}],
            "_gl_renderer": info}
