"""Brute-force twin of the level-of-detail path (tests and benchmarks compare against it).

The pyramid itself lives in :mod:`recorder.pyramid` (built by the writer, stored in the
recording, or built in memory for schema-1 files and in-memory runs); the composition step
(:func:`gda_gl.compose.scene.compose`) reads it through :class:`recorder.window.RunWindows`.  Here:
:func:`envelope_reference`, the per-pixel-column min/max computed from every row, with no
pyramid at all.
"""

from __future__ import annotations

import warnings

import numpy as np

from recorder.pyramid import row_envelope  # noqa: F401  (re-exported: the per-row envelope)

__all__ = ["envelope_reference", "row_envelope"]


def envelope_reference(iterations: np.ndarray, env_lo: np.ndarray, env_hi: np.ndarray, x0: float, x1: float,
                       columns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Brute-force twin: per pixel column, min/max of every row whose span [it, it+1) touches it."""
    edges = np.linspace(x0, x1, columns + 1)
    lo = np.full(columns, np.nan, np.float32)
    hi = np.full(columns, np.nan, np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for c in range(columns):
            sel = (iterations + 1 > edges[c]) & (iterations < edges[c + 1])
            if sel.any():
                lo[c] = np.nanmin(env_lo[sel])
                hi[c] = np.nanmax(env_hi[sel])
    return edges, lo, hi
