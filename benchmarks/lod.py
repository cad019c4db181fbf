"""LOD suite: envelope pyramid build against one numpy min/max pass (the memory-bandwidth floor),
and incremental extension for a live run."""

from __future__ import annotations

import time

import numpy as np

from .common import timeit

NAME = "lod"


def run(quick: bool = False) -> dict:
    from gda_gl.lod import EnvelopePyramid, row_envelope

    rng = np.random.default_rng(0)
    rows = []
    for n, k in ((1_000_000, 16), (1_000_000, 64)):
        phi = rng.random((n, k), dtype=np.float32)
        grid = np.linspace(0, 2, k)
        taken = np.ones(n)
        it = np.arange(n)
        t_floor = timeit(lambda: (phi.min(axis=1), phi.max(axis=1)), repeat=3)
        t_env = timeit(lambda: row_envelope(grid, phi, taken), repeat=3)
        lo, hi = row_envelope(grid, phi, taken)
        t_pyr = timeit(lambda: EnvelopePyramid(it, lo, hi, phi[:, 0]), repeat=3)
        pyr = EnvelopePyramid(it[:-1000], lo[:-1000], hi[:-1000], phi[:-1000, 0])
        t0 = time.perf_counter()
        for s in range(n - 1000, n, 100):  # ten live updates of 100 iterations
            pyr.extend(it[s:s + 100], lo[s:s + 100], hi[s:s + 100], phi[s:s + 100, 0])
        t_ext = (time.perf_counter() - t0) / 10
        full = EnvelopePyramid(it, lo, hi, phi[:, 0])
        assert all(np.array_equal(a, b, equal_nan=True) for la, lb in zip(pyr.levels, full.levels)
                   for a, b in zip(la, lb))
        rows.append({"rows x K": f"{n:,} x {k}", "numpy min+max (floor) s": t_floor, "row envelope s": t_env,
                     "pyramid levels s": t_pyr, "build x floor": (t_env + t_pyr) / t_floor,
                     "extend +100 rows ms": 1e3 * t_ext, "levels": len(full.levels)})
    return {"lod": rows}
