"""Subprocess writer for the series crash test: iteration i with a dense series ``lr`` = i and a sparse
series ``val`` every 7 iterations, until killed.

usage: series_proc.py PATH N_ITER SLEEP_S
Prints ``committed <rows> <lr points committed>`` after each commit it observes.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np  # noqa: E402

from recorder.store import RecordingWriter  # noqa: E402

path, n, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
grid = np.linspace(0, 2, 8)
w = RecordingWriter(path, grid, {"name": "proc"}, overwrite=True, commit_interval=0.05, block_rows=64)
print("started", flush=True)
last = -1
for i in range(n):
    w.append(i, (i + grid).astype(np.float32), train_loss=float(i))
    w.series.log("dense", float(i), i)
    if i % 7 == 0:
        w.series.log("val", 1.0 / (i + 1), i)
    if w.rows_committed != last:
        last = w.rows_committed
        print(f"committed {last}", flush=True)
    time.sleep(sleep)
w.close()
print("done", flush=True)
