"""LOD suite: pyramid ingest (what the writer does at every commit) against one numpy min/max pass over
the same data (the memory-bandwidth floor), and incremental growth for a live run.

The repository adds tsdownsample's MinMax (Rust, SIMD) as a peer reference (``benchmarks/peers.py``).
"""

from __future__ import annotations

import time

import numpy as np

from .common import timeit

NAME = "lod"


def _columns(n: int, rng) -> dict:
    from recorder import stats

    cols = {}
    for s in stats.STATISTICS:
        dt = np.dtype(s.dtype)
        if s.name == "iteration":
            cols[s.name] = np.arange(n, dtype=dt)
        elif s.name in ("batch", "epoch"):
            cols[s.name] = (np.arange(n) // (20 if s.name == "batch" else 50_000)).astype(dt)
        elif s.codes:
            cols[s.name] = rng.integers(0, 3, n).astype(dt)
        elif dt.kind == "f":
            cols[s.name] = rng.random(n).astype(dt)
        else:
            cols[s.name] = rng.integers(0, 5, n).astype(dt)
    cols["taken_alpha"] = np.ones(n)
    return cols


def run(quick: bool = False) -> dict:
    from recorder import pyramid, stats

    rng = np.random.default_rng(0)
    rows = []
    sizes = ((1_000_000, 16),) if quick else ((1_000_000, 16), (1_000_000, 64), (10_000_000, 16))
    for n, k in sizes:
        phi = rng.random((n, k), dtype=np.float32)
        grid = np.linspace(0, 2, k)
        cols = _columns(n, rng)
        agg = [cols[s] for s in stats.FLOAT_AGGREGATED]

        def floor():
            phi.min(axis=1), phi.max(axis=1)
            for a in agg:
                a.min(), a.max()

        block = 65536  # rows per commit: about one second of a fast training loop

        def ingest():
            b = pyramid.PyramidBuilder(grid)
            for a in range(0, n, block):
                b.add({c: v[a:a + block] for c, v in cols.items()}, phi[a:a + block])
            return b

        t_floor = timeit(floor, repeat=3)
        t_ingest = timeit(ingest, repeat=1 if n > 2_000_000 else 3)
        row = {"rows x K": f"{n:,} x {k}", "numpy min+max floor s": t_floor, "pyramid ingest s": t_ingest,
               "ingest x floor": t_ingest / t_floor}
        # live growth: ten commits of 100 rows after n - 1000 rows
        b = pyramid.PyramidBuilder(grid)
        for a in range(0, n - 1000, block):
            e = min(n - 1000, a + block)
            b.add({c: v[a:e] for c, v in cols.items()}, phi[a:e])
        t0 = time.perf_counter()
        for s in range(n - 1000, n, 100):
            b.add({c: v[s:s + 100] for c, v in cols.items()}, phi[s:s + 100])
        row["commit of +100 rows ms"] = 1e3 * (time.perf_counter() - t0) / 10
        row["levels"] = b.levels
        rows.append(row)
        phi = cols = None  # free them before the next size (names the closures above read)
    return {"lod": rows}
