"""Time the reads that go through the recorder's two byte-budget LRU caches (blocks in recorder.window, pyramid
chunks in recorder.lodstore).

Usage::

    python benchmarks/tools/time_read_caches.py [FILE.gda]   # writes FILE (default /tmp/gda-cache-timing.gda) once

Prints, for the run's windows read again and again (cache hits) and for windows that slide along the run
(misses and evictions), the median time per call over several repeats.  Run it under two checkouts with
PYTHONPATH to compare them; nothing is asserted.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recorder.store import Recording, RecordingWriter  # noqa: E402
from recorder.window import RunWindows  # noqa: E402

log = logging.getLogger("time_read_caches")
N, K = 600_000, 32


def make(path: Path) -> None:
    """A recording of N rows (about 100 MB decoded: the block cache is 96 MB), written once."""
    if path.exists():
        return
    rng = np.random.default_rng(0)
    with RecordingWriter(path, np.linspace(0, 2, K), commit_interval=3600) as w:
        for a in range(0, N, 50_000):
            b = min(N, a + 50_000)
            w.append_arrays({"iteration": np.arange(a, b), "train_loss": rng.random(b - a),
                             "taken_alpha": np.ones(b - a), "efficiency": rng.random(b - a)},
                            rng.random((b - a, K)).astype(np.float32))


def timed(fn, repeats: int = 7) -> float:
    """Median seconds of ``fn()`` over ``repeats`` calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    path = Path(argv[0]) if argv else Path("/tmp/gda-cache-timing.gda")
    make(path)
    with Recording(path) as rec:
        win = RunWindows.from_recording(rec)

        def hot_rows():  # the same 20 windows of 2,000 rows: block cache hits
            for x in range(0, 40_000, 2_000):
                win.rows(x, x + 2_000)

        def sliding_rows():  # 60 windows of 10,000 rows over the whole run: misses and evictions
            for x in range(0, N, 10_000):
                win.rows(x, x + 10_000)

        def zooms():  # envelopes at 1600 px from the whole run down to 20,000 rows: chunk cache hits
            for span in (N, N // 4, N // 16, 20_000):
                win.envelope(N / 2 - span / 2, N / 2 + span / 2, 1600)

        for name, fn in (("rows, 20 windows (hits)", hot_rows), ("rows, 60 windows (sliding)", sliding_rows),
                         ("envelope, 4 zoom levels", zooms)):
            log.info("%-30s %8.2f ms", name, timed(fn) * 1e3)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
