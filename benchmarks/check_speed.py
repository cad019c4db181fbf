"""``gda-gl check`` throughput: file megabytes verified per second, process start to exit (issue 28).

usage::

    .venv/bin/python benchmarks/check_speed.py [--iterations 2000000] [--dir /tmp/gda-check-speed]

Writes (or reuses) the scale benchmark's synthetic recording (gda_gl.bench.scale.make_recording, K = 16,
about 72 bytes per iteration), then runs ``check`` on it in fresh processes: as shipped (blocks decoded in
batches of 65,536 rows, the next batch in a second thread while the pyramid is rebuilt with the writer's own
PyramidBuilder), and one block at a time (``_BATCH_ROWS = 1``: the previous behaviour's granularity).  Prints
a markdown table with the load average it ran under; nothing is asserted (target: >= 100 MB/s on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

_CHILD = r"""
import sys, time
import recorder.check as C
C._BATCH_ROWS = int(sys.argv[2])
t = time.perf_counter()
res = C.check_recording(sys.argv[1])
print("RESULT", time.perf_counter() - t, res.rows)
"""


def _run(path: Path, batch: int) -> tuple[float, float]:
    """(seconds from process start to exit, seconds inside check_recording)."""
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(batch)], capture_output=True, text=True,
                         timeout=3600)
    wall = time.perf_counter() - t
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("RESULT")]
    if res.returncode or not line:
        raise RuntimeError(res.stderr.strip().splitlines()[-3:])
    return wall, float(line[-1].split()[1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iterations", type=int, default=2_000_000)
    ap.add_argument("--dir", default="/tmp/gda-check-speed")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from gda_gl.bench.scale import make_recording

    d = Path(args.dir)
    d.mkdir(parents=True, exist_ok=True)
    path = d / f"scale-{args.iterations}.gda"
    make_recording(path, args.iterations)
    mb = path.stat().st_size / 1e6
    print(f"| check of {args.iterations:,} x 16 ({mb:,.0f} MB) | process start to exit | MB/s | in check_recording |")
    print("|---|---|---|---|")
    for label, batch in (("batched, decoded ahead (shipped)", 1 << 16), ("one block at a time", 1)):
        runs = [_run(path, batch) for _ in range(args.repeat)]
        wall, inner = min(r[0] for r in runs), min(r[1] for r in runs)
        print(f"| {label} | {wall:.2f} s | {mb / wall:.0f} | {inner:.2f} s ({mb / inner:.0f} MB/s) |")
    print(f"\nload average {os.getloadavg()[0]:.2f} (2-core machine, best of {args.repeat})")


if __name__ == "__main__":
    main()
