"""Store suite: append throughput and the 1,000,000 x 64 read, against CSV, JSON lines and numpy.save.

The floor is one ``numpy.save``/``numpy.load`` of the same phi array (no
metadata, no crash safety, no live tail).  CSV and JSON lines are what users
hand-roll; they are measured on fewer rows and reported per row.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

NAME = "store"


def _gda_write_bulk(path: Path, phi: np.ndarray, chunk: int = 50_000) -> float:
    from recorder.store import RecordingWriter

    n = len(phi)
    t0 = time.perf_counter()
    with RecordingWriter(path, np.linspace(0, 2, phi.shape[1]), {"name": "bench"}, overwrite=True) as w:
        for s in range(0, n, chunk):
            e = min(n, s + chunk)
            w.append_arrays({"iteration": np.arange(s, e), "train_loss": phi[s:e, 0].astype(np.float64),
                             "taken_alpha": np.ones(e - s)}, phi[s:e])
    return time.perf_counter() - t0


def _gda_write_rows(path: Path, phi: np.ndarray) -> float:
    """Per-iteration appends, as the recorder does during training."""
    from recorder.store import RecordingWriter

    t0 = time.perf_counter()
    with RecordingWriter(path, np.linspace(0, 2, phi.shape[1]), {"name": "bench"}, overwrite=True) as w:
        for i in range(len(phi)):
            w.append(i, phi[i], train_loss=float(phi[i, 0]), taken_alpha=1.0)
    return time.perf_counter() - t0


def run(quick: bool = False) -> dict:
    from recorder.store import Recording

    rng = np.random.default_rng(0)
    n_big, k = 1_000_000, 64
    n_rows = 20_000 if quick else 100_000
    n_text = 20_000 if quick else 100_000
    tmp = Path(tempfile.mkdtemp(prefix="gda-bench-"))
    rows = []
    try:
        phi = rng.random((n_big, k), dtype=np.float32)
        # floor: one numpy array
        p = tmp / "phi.npy"
        t0 = time.perf_counter()
        np.save(p, phi)
        t_npsave = time.perf_counter() - t0
        t0 = time.perf_counter()
        np.load(p)
        t_npload = time.perf_counter() - t0
        npy_bytes = p.stat().st_size
        p.unlink()
        # gda: bulk write and full read of 1M x 64
        g = tmp / "big.gda"
        t_write = _gda_write_bulk(g, phi)
        size = g.stat().st_size
        t0 = time.perf_counter()
        with Recording(g) as rec:
            d = rec.read()
        t_read = time.perf_counter() - t0
        assert len(d) == n_big
        del d
        g.unlink()
        # gda: per-iteration appends (the recorder's path)
        t_rows = _gda_write_rows(tmp / "rows.gda", phi[:n_rows])
        # CSV and JSON lines
        sub = phi[:n_text]
        c = tmp / "phi.csv"
        t0 = time.perf_counter()
        with open(c, "w") as fh:
            for i, row in enumerate(sub):
                fh.write(f"{i}," + ",".join(repr(float(v)) for v in row) + "\n")
        t_csv_w = time.perf_counter() - t0
        t0 = time.perf_counter()
        np.loadtxt(c, delimiter=",", dtype=np.float64)
        t_csv_r = time.perf_counter() - t0
        csv_bytes = c.stat().st_size
        j = tmp / "phi.jsonl"
        t0 = time.perf_counter()
        with open(j, "w") as fh:
            for i, row in enumerate(sub):
                fh.write(json.dumps({"iteration": i, "phi": row.tolist()}) + "\n")
        t_json_w = time.perf_counter() - t0
        t0 = time.perf_counter()
        with open(j) as fh:
            np.array([json.loads(line)["phi"] for line in fh], np.float32)
        t_json_r = time.perf_counter() - t0
        json_bytes = j.stat().st_size
    finally:
        for f in tmp.iterdir():
            f.unlink()
        os.rmdir(tmp)
    s = n_big * k
    st = n_text * k
    rows = [
        {"format": "gda (SQLite blocks)", "write it/s": n_big / t_write, "append it/s (per row)": n_rows / t_rows,
         "read 1M x 64 s": t_read, "read samples/s": s / t_read, "bytes/sample": size / s,
         "read x floor": t_read / t_npload},
        {"format": "numpy.save/load (floor)", "write it/s": n_big / t_npsave, "append it/s (per row)": float("nan"),
         "read 1M x 64 s": t_npload, "read samples/s": s / t_npload, "bytes/sample": npy_bytes / s,
         "read x floor": 1.0},
        {"format": "CSV (hand-rolled)", "write it/s": n_text / t_csv_w, "append it/s (per row)": n_text / t_csv_w,
         "read 1M x 64 s": t_csv_r * n_big / n_text, "read samples/s": st / t_csv_r, "bytes/sample": csv_bytes / st,
         "read x floor": t_csv_r * n_big / n_text / t_npload},
        {"format": "JSON lines (hand-rolled)", "write it/s": n_text / t_json_w,
         "append it/s (per row)": n_text / t_json_w,
         "read 1M x 64 s": t_json_r * n_big / n_text, "read samples/s": st / t_json_r,
         "bytes/sample": json_bytes / st, "read x floor": t_json_r * n_big / n_text / t_npload},
    ]
    return {"store": rows}
