"""Benchmark of ``gda-gl diagnose`` on long recordings and of the live detector's cost inside a training.

1. **Scale.** Writes a synthetic recording of ``$GDA_DIAGNOSE_SIZE`` iterations (default 1e8) x 16 alphas with
   :func:`gda_gl.bench.scale._synth` (the scale suite's lines) plus outlier batches at two known iterations
   (the whole line and the training loss 2.0 higher), then runs ``python -m recorder.diagnose --json`` in a
   fresh process: wall time from process start and the child's peak resident memory (VmHWM), and whether
   the two spikes were found at their iterations with cause ``batch`` (the pyramid path reads only the rows
   of candidate buckets).  Target of issue 30: <= 10 s and <= 300 MB at 1e8.
2. **Live cost.** Trains the benchmark CNN of the probe suite (batch 128, SGD) for ``$GDA_DIAGNOSE_STEPS``
   steps with the ``standard`` preset (every step probed, so every row reaches the detector) and reads the
   live detector's CPU time per step (thread time, ``rec.findings.timing()``) against the time of a
   training step without the recorder.  Target: <= 2 %.

3. **Detector alone.** The live detector fed 20,000 synthetic rows as fast as it takes them: its CPU time
   per row, what a training step of any length pays (against the 3 ms SGD step of the benchmark CNN).

``python -m benchmarks.diagnose_scale`` prints one JSON object (and the load average it ran under).
The recording is kept in ``$GDA_BENCH_DIR`` (default ``gda-scale`` in the temporary folder) and reused.
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

K = 16
CHUNK = 1 << 16
SPIKE_SHARES = (0.3, 0.7)   # where the outlier batches are, as shares of the run
SPIKE_RISE = 2.0

_CHILD = r"""
import contextlib, io, json, sys, time
T0 = float(sys.argv[1])
from recorder.diagnose.report import main
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    rc = main(["--json", sys.argv[2]])
secs = time.time() - T0
from gda_gl.bench.scale import peak_mb
out = {"rc": rc, "seconds": secs, "peak_rss_mb": peak_mb(), "report": json.loads(buf.getvalue())}
print("RESULT " + json.dumps(out))
"""


def spike_iterations(n: int) -> list[int]:
    """The iterations of the injected outlier batches."""
    return [int(n * s) + 12_345 for s in SPIKE_SHARES]


def make_recording(path: Path, n: int) -> dict:
    """Write (or reuse) the ``n``-iteration recording with the outlier batches."""
    from gda_gl.bench.scale import _synth
    from recorder.store import RecordingWriter

    marker = path.with_suffix(".json")
    if path.exists() and marker.exists() and json.loads(marker.read_text()).get("n") == n:
        return json.loads(marker.read_text())
    for p in (path, marker):
        p.unlink(missing_ok=True)
    rng = np.random.default_rng(0)
    spikes = spike_iterations(n)
    t0 = time.perf_counter()
    with RecordingWriter(path, np.linspace(0, 2, K), {"name": f"diagnose-{n:.0e}"}, commit_interval=3600) as w:
        for a in range(0, n, CHUNK):
            cols, phi = _synth(a, min(n, a + CHUNK), n, rng)
            for s in spikes:
                if a <= s < a + len(phi):
                    phi[s - a] += SPIKE_RISE
                    cols["train_loss"][s - a] += SPIKE_RISE
            w.append_arrays(cols, phi)
    info = {"n": n, "write_s": time.perf_counter() - t0, "bytes": path.stat().st_size, "spikes": spikes}
    marker.write_text(json.dumps(info))
    return info


def scale(n: int) -> dict:
    """Diagnose the ``n``-iteration recording in a fresh process; what it took and what it found."""
    d = Path(os.environ.get("GDA_BENCH_DIR", Path(tempfile.gettempdir()) / "gda-scale"))
    d.mkdir(parents=True, exist_ok=True)
    info = make_recording(d / f"diagnose-{n}.gda", n)
    t0 = time.time()
    res = subprocess.run([sys.executable, "-c", _CHILD, repr(t0), str(d / f"diagnose-{n}.gda")],
                         capture_output=True, text=True, timeout=1800)
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT ")]
    if not line:
        raise RuntimeError(res.stderr[-2000:])
    out = json.loads(line[-1][7:])
    run = out.pop("report")["runs"][0]
    found = {s["iteration"]: s["cause"] for s in run["spikes"]}
    return {"iterations": n, "file_gb": info["bytes"] / 1e9, "seconds": round(out["seconds"], 2),
            "peak_rss_mb": round(out["peak_rss_mb"], 1), "windows": len(run["step_size"]),
            "verdicts": sorted({e["verdict"] for e in run["step_size"]}),
            "source": run["step_size"][0].get("source"), "injected": info["spikes"],
            "found": {str(k): v for k, v in found.items()}}


def live_cost(steps: int) -> dict:
    """The live detector's CPU time per step against a training step of the benchmark CNN."""
    import torch
    from torch import nn

    import recorder
    from gda_gl.bench.probe import _batch, _models  # the probe suite's CNN and batch

    torch.manual_seed(0)
    x, y = _batch(128)

    def train(rec_path):
        torch.manual_seed(0)
        model = _models()["CNN"]()
        opt = torch.optim.SGD(model.parameters(), lr=0.05)
        loss_fn = nn.CrossEntropyLoss()
        rec = recorder.attach(opt, model, loss_fn, path=rec_path, probe="standard", overwrite=True) if rec_path \
            else None
        t0 = time.perf_counter()
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
        wall = time.perf_counter() - t0
        timing = rec.findings.timing() if rec is not None else None
        if rec is not None:
            rec.close()
        return wall, timing

    plain, _ = train(None)
    with tempfile.TemporaryDirectory() as d:
        _, timing = train(str(Path(d) / "live.gda"))
    step_us = 1e6 * plain / steps
    return {"steps": steps, "train_step_us": round(step_us, 1), "detect_us_per_step": round(timing["per_step_us"], 2),
            "share_of_step": round(timing["per_step_us"] / step_us, 5)}


def detector_alone(rows: int) -> dict:
    """CPU time (thread time) of the live detector per row, fed synthetic 17-point lines as fast as it takes
    them (so only the row trigger runs it): the cost that a training step of any length pays."""
    from recorder.diagnose.live import LiveFindings

    grid = np.linspace(0, 2, 17)
    rng = np.random.default_rng(0)
    phi = (1 + 0.5 * (grid[None, :] - 1) ** 2 + 0.01 * rng.standard_normal((rows, 17))).astype(np.float32)
    lf = LiveFindings(None, grid)
    for k in range(rows):
        lf.add(k, phi[k], None, epoch=0, batch=k, status=0, taken_alpha=1.0, train_loss=float(phi[k, 0]),
               step_norm=0.01, lr=0.1, curvature=1.0)
    t = lf.timing()
    return {"rows": rows, "us_per_step": round(t["per_step_us"], 2)}


def main() -> None:
    n = int(float(os.environ.get("GDA_DIAGNOSE_SIZE", "1e8")))
    steps = int(float(os.environ.get("GDA_DIAGNOSE_STEPS", "1000")))
    out = {"load_before": os.getloadavg()}
    if n:
        out["scale"] = scale(n)
    out["detector_alone"] = detector_alone(20_000)
    if steps:
        out["live"] = live_cost(steps)
    out["load_after"] = os.getloadavg()
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
