"""Writer throughput of the checkout this file runs from, or of another checkout (``--root``).

    python benchmarks/tools/writer_speed.py [--root /path/to/other/checkout]

Bulk appends (1,000,000 x 16 in 50,000-row arrays) and per-iteration appends (100,000 rows), the
shapes of ``gda_gl/bench/store.py``, with the phi of the scale suite (parabolas with noise). Run it on
two checkouts in the same machine state to compare releases.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--root", default=str(Path(__file__).resolve().parents[2]))
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    sys.path.insert(0, args.root)
    import numpy as np
    from recorder.store import RecordingWriter

    rng = np.random.default_rng(0)
    n, k = 1_000_000, 16
    grid = np.linspace(0, 2, k)
    valley = 0.4 + 0.8 * rng.random(n)
    phi = (1 + 0.3 * ((grid[None, :] - valley[:, None]) ** 2) + 0.002 * rng.standard_normal((n, k))).astype(np.float32)
    out = {"root": args.root, "bulk it/s": [], "per-row it/s": []}
    tmp = Path(tempfile.mkdtemp())
    for r in range(args.repeat):
        path = tmp / f"b{r}.gda"
        t0 = time.perf_counter()
        with RecordingWriter(path, grid, {"name": "bench"}) as w:
            for s in range(0, n, 50_000):
                e = min(n, s + 50_000)
                w.append_arrays({"iteration": np.arange(s, e), "train_loss": phi[s:e, 0].astype(np.float64),
                                 "taken_alpha": np.ones(e - s)}, phi[s:e])
        out["bulk it/s"].append(n / (time.perf_counter() - t0))
        path = tmp / f"r{r}.gda"
        m = 100_000
        t0 = time.perf_counter()
        with RecordingWriter(path, grid, {"name": "bench"}) as w:
            for i in range(m):
                w.append(i, phi[i], train_loss=float(phi[i, 0]), taken_alpha=1.0)
        out["per-row it/s"].append(m / (time.perf_counter() - t0))
        out.setdefault("bytes/iteration", path.stat().st_size / m)
    out["bulk it/s"] = max(out["bulk it/s"])
    out["per-row it/s"] = max(out["per-row it/s"])
    print(json.dumps(out))


if __name__ == "__main__":
    main()
