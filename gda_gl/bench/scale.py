"""Scale suite: recordings of 1e7 and more iterations, opened, drawn and zoomed in bounded time and memory.

Writes synthetic recordings with the public :class:`recorder.RecordingWriter` (parabola-shaped lines with
noise on a decaying loss, 16 alphas), then measures in fresh processes, from process start: ``gda-gl
info``, ``gda-gl render`` to a PNG, and the explorer's first frame followed by the animated zoom from the
whole run to one step (the explorer's controller and renderer on the offscreen target, the frames a
window would draw; the Qt window itself adds its own start-up).  Peak memory is the child's own
``VmHWM`` (``ru_maxrss`` where /proc is missing; it can carry the parent's peak from before exec).
Recordings are kept in ``$GDA_BENCH_DIR`` (default ``gda-scale`` in the temporary folder) and reused;
``$GDA_SCALE_SIZES`` (e.g. ``2e6,1e7``) replaces the default sizes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

NAME = "scale"
K = 16
CHUNK_ROWS = 1 << 16


def _synth(a: int, b: int, n: int, rng) -> tuple[dict, np.ndarray]:
    it = np.arange(a, b)
    m = b - a
    base = (0.1 + 2.0 * np.exp(-it / (n / 5.0)) + 0.03 * rng.standard_normal(m)).astype(np.float32)
    curv = (0.2 + 0.2 * rng.random(m)).astype(np.float32)
    valley = (0.4 + 0.8 * rng.random(m)).astype(np.float32)
    grid = np.linspace(0, 2, K, dtype=np.float32)
    phi = base[:, None] + curv[:, None] * ((grid[None, :] - valley[:, None]) ** 2 - valley[:, None] ** 2)
    phi += 0.002 * rng.standard_normal((m, K)).astype(np.float32)
    eff = np.clip(1 - (1 - valley) ** 2, 0, 1).astype(np.float32)
    cols = {"iteration": it, "epoch": it // max(1, n // 10), "batch": it // 20, "taken_alpha": np.ones(m),
            "native_step": np.full(m, 0.05), "train_loss": base, "lr": np.full(m, 0.05),
            "wall_time": 1.7e9 + it * 0.004, "efficiency": eff, "curvature": 2 * curv,
            "min_alpha": valley, "step_class": np.where(valley < 0.9, 3, np.where(valley > 1.1, 1, 2)),
            "step_norm": (0.01 + 0.001 * rng.random(m)).astype(np.float32)}
    return cols, phi.astype(np.float32)


def make_recording(path: Path, n: int, seed: int = 0) -> dict:
    """Write an ``n`` x 16 recording (reused when a finished one with the same size exists)."""
    from recorder.store import RecordingWriter

    marker = path.with_suffix(".json")
    if path.exists() and marker.exists():
        info = json.loads(marker.read_text())
        if info.get("n") == n and info.get("schema") == 2:
            return info
    for p in (path, marker):
        if p.exists():
            p.unlink()
    rng = np.random.default_rng(seed)
    gen = 0.0
    t0 = time.perf_counter()
    with RecordingWriter(path, np.linspace(0, 2, K), {"name": f"synthetic-{n:.0e}"}, commit_interval=3600) as w:
        for a in range(0, n, CHUNK_ROWS):
            g0 = time.perf_counter()
            cols, phi = _synth(a, min(n, a + CHUNK_ROWS), n, rng)
            gen += time.perf_counter() - g0
            w.append_arrays(cols, phi)
    total = time.perf_counter() - t0
    info = {"n": n, "schema": 2, "write_s": total - gen, "bytes": path.stat().st_size}
    marker.write_text(json.dumps(info))
    return info


_CHILD = r"""
import json, sys, time
T0 = float(sys.argv[1]); path = sys.argv[2]; what = sys.argv[3]
out = {}
if what in ("info", "render"):
    from gda_gl.cli import main
    args = ["info", path] if what == "info" else ["render", path, "-o", sys.argv[4]]
    import contextlib, io
    with contextlib.redirect_stdout(io.StringIO()):
        rc = main(args)
    out["rc"] = rc
    out["seconds"] = time.time() - T0
else:
    from gda_gl.bench.scale import explorer_frames
    out.update(explorer_frames(path, T0))
from gda_gl.bench.scale import peak_mb
out["peak_rss_mb"] = peak_mb()
print("RESULT " + json.dumps(out), flush=True)
"""


def explorer_frames(path: str, t0: float, state=None, axes: tuple[str, ...] = ()) -> dict:
    """The explorer on the offscreen target (1600x900) over one recording: the first frame from ``t0`` (process
    start), the median overview frame, the animated zoom from the whole run to one step (cold, then warm), and
    for each of ``axes`` the time from switching the x axis to its first frame."""
    from gda_gl.explorer import controller as ctl
    from gda_gl.explorer.animation import ANIMATION_S
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.compose.scene import RunData
    from gda_gl.compose.state import ViewState
    from recorder.store import Recording

    run = RunData.from_recording(Recording(path))
    target = Offscreen(1600, 900)
    with target:
        renderer = CurveRenderer()
    now = [0.0]
    c = ctl.ExplorerController([run], state or ViewState(), size=(1600, 900), clock=lambda: now[0])

    def frame():
        t = time.perf_counter()
        with target:
            renderer.draw(c.runs, c.display_state(), c.layout)
        target.read()
        return time.perf_counter() - t

    frame()
    out = {"first_frame_s": time.time() - t0, "overview_ms": 1e3 * sorted(frame() for _ in range(5))[2]}
    k = int(run.x_span[0]) + (len(run) * 2) // 3 + 17
    for label in ("cold", "warm"):
        now[0] = 0.0
        c.set_x_range(c.full_x_range(), animate=False)
        c.zoom_to_iteration(k)
        times, widths, levels = [], [], []
        for i in range(41):
            now[0] = ANIMATION_S * i / 40
            times.append(frame())
            widths.append(renderer.last_view.x1 - renderer.last_view.x0)
            levels.append(renderer.last_frame.levels.get(run.name))
        out[f"{label}_max_ms"] = 1e3 * max(times)
        out[f"{label}_median_ms"] = 1e3 * sorted(times)[len(times) // 2]
    out.update(final_width=widths[-1], frames=41, decoded_blocks=run.windows.decoded_blocks,
               levels_on_the_way=sorted({-1 if lv is None else lv for lv in levels}))
    c.set_x_range(c.full_x_range(), animate=False)
    frame()
    for axis in axes:
        t = time.perf_counter()
        c.set_x_axis(axis)
        frame()
        out[f"switch_to_{axis}_ms"] = 1e3 * (time.perf_counter() - t)
    return out


def peak_mb() -> float:
    """This process image's own peak resident memory (VmHWM; ru_maxrss can carry the parent's from before exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024



def _child(path: Path, what: str, extra: list[str] = ()) -> dict:
    env = dict(os.environ, EGL_PLATFORM=os.environ.get("EGL_PLATFORM", "surfaceless"))
    t0 = time.time()
    res = subprocess.run([sys.executable, "-c", _CHILD, repr(t0), str(path), what, *extra], capture_output=True,
                         text=True, env=env, timeout=1800)
    wall = time.time() - t0
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if res.returncode or not line:
        raise RuntimeError(f"{what} failed: {(res.stderr or res.stdout).strip().splitlines()[-1:]}")
    out = json.loads(line[-1][7:])
    out["process_s"] = wall
    return out


def _write_speed(tmp: Path, rows: int) -> dict:
    """Bulk (65,536-row arrays) and per-row appends, iterations per second."""
    from recorder.store import RecordingWriter

    rng = np.random.default_rng(1)
    cols, phi = _synth(0, rows, rows, rng)
    p = tmp / "speed.gda"
    for f in (p,):
        if f.exists():
            f.unlink()
    t0 = time.perf_counter()
    with RecordingWriter(p, np.linspace(0, 2, K), commit_interval=3600) as w:
        for a in range(0, rows, CHUNK_ROWS):
            w.append_arrays({c: v[a:a + CHUNK_ROWS] for c, v in cols.items()}, phi[a:a + CHUNK_ROWS])
    bulk = rows / (time.perf_counter() - t0)
    p.unlink()
    m = min(rows, 100_000)
    t0 = time.perf_counter()
    with RecordingWriter(p, np.linspace(0, 2, K)) as w:
        for i in range(m):
            w.append(i, phi[i], train_loss=float(cols["train_loss"][i]), batch=i // 20)
    per_row = m / (time.perf_counter() - t0)
    p.unlink()
    return {"bulk appends it/s": bulk, "per-row appends it/s": per_row}


def _decode_speed(path: Path) -> dict:
    """Decoding every block against reading the file's bytes (page cache warm: an upper bound of the disk)."""
    from recorder.store import Recording

    t0 = time.perf_counter()
    with open(path, "rb") as fh:
        while fh.read(64 << 20):
            pass
    read_s = time.perf_counter() - t0
    size = path.stat().st_size
    with Recording(path) as rec:
        ids = rec.block_ids()
        raw = 0
        t0 = time.perf_counter()
        for bid in ids:
            d = rec.read_block(bid)
            raw += d.phi.nbytes + sum(v.nbytes for v in d.columns.values())
        dec_s = time.perf_counter() - t0
    return {"file MB": size / 1e6, "decoded MB": raw / 1e6, "read file MB/s (warm cache)": size / 1e6 / read_s,
            "decode (incl. SQLite) compressed MB/s": size / 1e6 / dec_s,
            "decode output MB/s": raw / 1e6 / dec_s, "raw bytes / stored bytes": raw / size}


def run(quick: bool = False) -> dict:
    root = Path(os.environ.get("GDA_BENCH_DIR") or Path(tempfile.gettempdir()) / "gda-scale")
    root.mkdir(parents=True, exist_ok=True)
    env = os.environ.get("GDA_SCALE_SIZES")  # e.g. "2e6,1e7": the sizes to measure instead of the defaults
    sizes = [int(float(v)) for v in env.split(",")] if env else ([200_000] if quick else [10_000_000, 30_000_000])
    rows = []
    out = {}
    for n in sizes:
        path = root / f"scale-{n}.gda"
        made = make_recording(path, n)
        row = {"iterations": f"{n:,} x {K}", "samples": f"{n * K:.1e}", "bytes / iteration": made["bytes"] / n,
               "write it/s (bulk)": n / made["write_s"]}
        info = _child(path, "info")
        row["info s"], row["info peak MB"] = info["process_s"], info["peak_rss_mb"]
        png = root / f"scale-{n}.png"
        rend = _child(path, "render", [str(png)])
        row["render s"], row["render peak MB"] = rend["process_s"], rend["peak_rss_mb"]
        ex = _child(path, "explore")
        row.update({"first frame s": ex["first_frame_s"], "overview ms": ex["overview_ms"],
                    "zoom cold max ms": ex["cold_max_ms"], "zoom warm max ms": ex["warm_max_ms"],
                    "warm max / overview": ex["warm_max_ms"] / ex["overview_ms"],
                    "explorer peak MB": ex["peak_rss_mb"], "levels drawn": str(ex["levels_on_the_way"]),
                    "final width (it)": ex["final_width"]})
        rows.append(row)
    out["scale"] = rows
    big = root / f"scale-{sizes[0]}.gda"
    out["decode vs read"] = [_decode_speed(big)]
    out["writer"] = [_write_speed(root, 200_000 if quick else 1_000_000)]
    return out
