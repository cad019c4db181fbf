"""Subprocess writer for store tests: appends iteration i with phi = i + grid until killed or done.

usage: writer_proc.py PATH N_ITER SLEEP_S [--hold S]
Prints ``committed <rows>`` after each commit it observes and ``done`` at the end.
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
import numpy as np  # noqa: E402

from recorder.store import RecordingWriter  # noqa: E402

path, n, sleep = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
hold = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--hold" else 0.0
grid = np.linspace(0, 2, 8)
w = RecordingWriter(path, grid, {"name": "proc"}, overwrite=True, commit_interval=0.2, block_rows=64)
print("started", flush=True)
last = -1
for i in range(n):
    w.append(i, (i + grid).astype(np.float32), train_loss=float(i),
             trials={"alpha": np.arange(i % 4) * 0.5, "loss": np.full(i % 4, float(i))})
    if w.rows_committed != last:
        last = w.rows_committed
        print(f"committed {last}", flush=True)
    time.sleep(sleep)
time.sleep(hold)
w.close()
print("done", flush=True)
