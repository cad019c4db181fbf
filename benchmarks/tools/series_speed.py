"""Logged series at scale (issue 18): write time, file size and windowed reads, with and without series.

    python benchmarks/tools/series_speed.py [--iterations 10000000] [--dir /tmp/x]

Writes two recordings of ``--iterations`` iterations (K = 16, phi of the scale suite, in 50,000-row
arrays): one without series (the baseline) and one with a dense logged series ``learning_rate`` (one
point per iteration, bulk ``log_many`` with each row chunk) and a validation series ``val_loss``
every 1,000 iterations (single ``log`` calls, with a spike).  Separately times 1,000,000 single
``series.log`` calls (the cost of ``rec.log`` per point).  Then, on each file, times opening
(``Recording`` + ``RunWindows.from_recording``), the main curve's whole-run envelope, and
``RunWindows.series`` at whole-run and zoomed views (cold: first call on a fresh ``RunWindows``;
warm: median of 5 more), for the logged dense, the logged sparse and the built-in ``lr`` series.
Prints one JSON object; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

log = logging.getLogger("series_speed")


def _write(path: Path, n: int, with_series: bool) -> float:
    import numpy as np

    from recorder.store import RecordingWriter

    rng = np.random.default_rng(0)
    k, step = 16, 50_000
    grid = np.linspace(0, 2, k)
    t0 = time.perf_counter()
    with RecordingWriter(path, grid, {"name": path.stem}, overwrite=True) as w:
        for s in range(0, n, step):
            e = min(n, s + step)
            its = np.arange(s, e)
            valley = 0.4 + 0.8 * rng.random(e - s)
            phi = (1 + 0.3 * (grid[None, :] - valley[:, None]) ** 2).astype(np.float32)
            lr = 0.1 * np.cos(its / n * np.pi / 2) ** 2
            w.append_arrays({"iteration": its, "train_loss": phi[:, 0].astype(np.float64), "lr": lr,
                             "taken_alpha": np.ones(e - s)}, phi)
            if with_series:
                w.series.log_many("learning_rate", its, lr)
                for i in range(-(-s // 1000) * 1000, e, 1000):
                    w.series.log("val_loss", 50.0 if i == n // 2 else 2.0 * np.exp(-i / n), i)
    return time.perf_counter() - t0


def _single_log_rate(path: Path, m: int = 1_000_000) -> float:
    from recorder.store import RecordingWriter

    with RecordingWriter(path, [0.0, 1.0], {"name": "calls"}, overwrite=True) as w:
        t0 = time.perf_counter()
        for i in range(m):
            w.series.log("x", 0.5, i)
        dt = time.perf_counter() - t0
    return m / dt


def _timed(fn, repeat: int = 5) -> tuple[float, float, object]:
    t0 = time.perf_counter()
    out = fn()
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        warm.append(time.perf_counter() - t0)
    return cold * 1e3, statistics.median(warm) * 1e3, out


def _reads(path: Path, n: int, names: list[str], width: int = 1200) -> dict:
    from recorder.store import Recording
    from recorder.window import RunWindows

    out: dict = {}
    t0 = time.perf_counter()
    rec = Recording(path)
    w = RunWindows.from_recording(rec)
    out["open ms"] = (time.perf_counter() - t0) * 1e3
    cold, warm, _ = _timed(lambda: w.envelope(0, n, width))
    out["main envelope whole run ms (cold, warm)"] = [round(cold, 2), round(warm, 2)]
    views = {"whole run": (0, n), "1e5 iterations": (n // 2, n // 2 + 100_000),
             "1e3 iterations": (n // 2, n // 2 + 1000), "100 iterations": (n // 2, n // 2 + 100)}
    for name in names:
        for label, (x0, x1) in views.items():
            cold, warm, got = _timed(lambda: w.series(name, x0, x1, width))
            kind = "points" if got.level is None else f"level {got.level} buckets"
            out[f"{name} {label} ms (cold, warm; {len(got)} {kind})"] = [round(cold, 2), round(warm, 2)]
    rec.close()
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--iterations", type=int, default=10_000_000)
    p.add_argument("--dir", default=None)
    args = p.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    logging.basicConfig(level=logging.INFO)
    tmp = Path(args.dir or tempfile.mkdtemp(prefix="series-bench-"))
    n = args.iterations
    out: dict = {"iterations": n}
    for label, series in (("without series", False), ("with series", True)):
        path = tmp / f"{'s' if series else 'b'}.gda"
        log.info("writing %s", path)
        out[f"write s ({label})"] = round(_write(path, n, series), 1)
        out[f"file MB ({label})"] = round(path.stat().st_size / 1e6, 1)
    out["single series.log calls per s"] = round(_single_log_rate(tmp / "calls.gda"))
    out["reads without series"] = _reads(tmp / "b.gda", n, ["lr"])
    out["reads with series"] = _reads(tmp / "s.gda", n, ["learning_rate", "val_loss", "lr"])
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
