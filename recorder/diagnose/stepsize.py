"""Step-size verdicts per window: too long, about right, too short, or "cannot say".

Windows are the run's epochs when they are finer than 1 % of the run, else 1 % of the run (at least
:data:`~.thresholds.MIN_WINDOW_ITERATIONS` iterations either way; :func:`window_bounds`).

From rows (:func:`verdict_from_rows`, every run up to :data:`~.thresholds.ROW_PATH_MAX_ROWS` rows):
``factor`` is the median over the window's readable steps of their own factor (the alpha of the line's
lowest measured point over the accepted alpha); the verdict compares it with
:data:`~.thresholds.TOO_LONG_FACTOR` and :data:`~.thresholds.TOO_SHORT_FACTOR`; ``agree`` is the share
of those steps whose own factor gives the same verdict; ``resolution`` the median gap between a step's
lowest point and its measured neighbours (3 points read coarser than 17); ``bound`` is ``"lower"`` when
the median line falls to the end of its probed interval (the factor is then at least the value given).

From the pyramid (:func:`verdict_from_buckets`, longer runs): the median over the window's buckets of
their mean ``min_alpha`` (the pyramid keeps sum and count, not a median: the output says so in
``source``), ``agree`` from the stored step classes (undershoot, near-optimal, overshoot).
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from .thresholds import (BOUND_SHARE, MIN_WINDOW_ITERATIONS, MIN_WINDOW_STEPS, TOO_LONG_FACTOR, TOO_SHORT_FACTOR,
                         UNCLEAR_SHARE, WINDOWS_PER_RUN)

VERDICTS = ("too_long", "ok", "too_short", "cannot_say")
#: step class that agrees with each verdict (the pyramid path's ``agree``)
_CLASS_OF = {"too_long": stats.CLASS_OVERSHOOT, "ok": stats.CLASS_NEAR_OPTIMAL, "too_short": stats.CLASS_UNDERSHOOT}


def window_length(first: int, last: int, probe_every: float = 1.0) -> int:
    """Iterations per window when windows are 1 % of the run: at least MIN_WINDOW_ITERATIONS, and long
    enough to hold MIN_WINDOW_STEPS probed steps when only every ``probe_every``-th step is probed."""
    span = last - first + 1
    return max(MIN_WINDOW_ITERATIONS, int(math.ceil(MIN_WINDOW_STEPS * probe_every)), -(-span // WINDOWS_PER_RUN))


def window_bounds(first: int, last: int, epoch_starts: np.ndarray | None = None, probe_every: float = 1.0
                  ) -> list[tuple[int, int]]:
    """``(start, stop)`` iterations of the windows covering ``first..last`` (stop exclusive).

    Parameters
    ----------
    first, last : the run's first and last iteration
    epoch_starts : the first iteration of every epoch after the first (None or empty: one epoch)
    probe_every : steps per probed step (the run's rows over its probed rows)
    """
    length = window_length(first, last, probe_every)
    stop = last + 1
    starts = [] if epoch_starts is None else sorted(int(s) for s in epoch_starts if first < s <= last)
    if starts and (stop - first) / (len(starts) + 1) < length:
        edges = [first]
        for s in starts + [stop]:
            if s - edges[-1] >= max(MIN_WINDOW_ITERATIONS, length // 2) or s == stop:
                edges.append(s)
        if len(edges) > 2 and edges[-1] - edges[-2] < max(MIN_WINDOW_ITERATIONS, length // 2):
            del edges[-2]  # a short last epoch joins the one before
        return list(zip(edges[:-1], edges[1:]))
    edges = list(range(first, stop, length)) + [stop]
    if len(edges) > 2 and edges[-1] - edges[-2] < length // 2:
        del edges[-2]
    return list(zip(edges[:-1], edges[1:]))


def classify_factor(f) -> np.ndarray:
    """Verdict index (0 too_long, 1 ok, 2 too_short) of each factor."""
    f = np.asarray(f, np.float64)
    return np.where(f <= TOO_LONG_FACTOR, 0, np.where(f >= TOO_SHORT_FACTOR, 2, 1))


def _entry(start, stop, verdict, factor, steps, agree, resolution, bound, source, reason="") -> dict:
    out = {"kind": "step_size", "start": int(start), "stop": int(stop), "verdict": verdict,
           "factor": None if factor is None or not math.isfinite(factor) else round(float(factor), 4),
           "steps": int(steps), "agree": None if agree is None else round(float(agree), 4),
           "resolution": None if resolution is None or not math.isfinite(resolution) else round(float(resolution), 4),
           "bound": bound, "source": source}
    if reason:
        out["reason"] = reason
    return out


def verdict_from_rows(m: dict[str, np.ndarray], start: int, stop: int) -> dict:
    """The verdict of the window ``[start, stop)`` from per-row measures (:func:`.lines.line_measures`)."""
    it = m["iteration"]
    a, b = np.searchsorted(it, start), np.searchsorted(it, stop)
    readable = m["readable"][a:b]
    unclear = int(m["unclear"][a:b].sum())
    n_read = int(readable.sum())
    src = "rows: median over the window's steps"
    if n_read < MIN_WINDOW_STEPS or unclear > UNCLEAR_SHARE * (n_read + unclear):
        why = (f"{unclear} of {n_read + unclear} lines flat or noisy" if unclear else
               f"{n_read} readable lines (fewer than {MIN_WINDOW_STEPS})")
        return _entry(start, stop, "cannot_say", None, n_read, None, None, None, src, why)
    f = m["factor"][a:b][readable]
    factor = float(np.median(f))
    idx = int(classify_factor(factor))
    agree = float(np.mean(classify_factor(f) == idx))
    bound = "lower" if np.mean(m["at_end"][a:b][readable]) >= BOUND_SHARE else None
    res = float(np.median(m["resolution"][a:b][readable]))
    return _entry(start, stop, VERDICTS[idx], factor, n_read, agree, res, bound, src)


def grid_gap(grid: np.ndarray, x: float) -> float:
    """The wider gap between ``x``'s nearest grid point and its neighbours (the grid's resolution there)."""
    g = np.unique(np.asarray(grid, np.float64)[np.isfinite(grid)])
    if len(g) < 2 or not math.isfinite(x):
        return math.nan
    j = int(np.argmin(np.abs(g - x)))
    return float(max(g[j] - g[j - 1] if j > 0 else 0.0, g[j + 1] - g[j] if j + 1 < len(g) else 0.0))


def verdict_from_buckets(bk: dict[str, np.ndarray], start: int, stop: int, grid: np.ndarray, rows: int) -> dict:
    """The verdict of ``[start, stop)`` from pyramid buckets of ``rows`` rows (those starting in the window)."""
    sel = (bk["first_it"] >= start) & (bk["first_it"] < stop)
    cnt = bk["min_alpha:count"][sel].astype(np.float64)
    src = f"pyramid: median over {rows}-step buckets of their mean min_alpha (accepted alpha taken as 1)"
    steps = int(cnt.sum())
    if steps < MIN_WINDOW_STEPS:
        return _entry(start, stop, "cannot_say", None, steps, None, None, None, src,
                      f"{steps} lines with a minimum (fewer than {MIN_WINDOW_STEPS})")
    means = bk["min_alpha:sum"][sel][cnt > 0] / cnt[cnt > 0]
    factor = float(np.median(means))
    idx = int(classify_factor(factor))
    classes = {c: float(bk[f"step_class:{c}"][sel].sum()) for c in stats.CLASS_NAMES}
    known = sum(v for c, v in classes.items() if c != stats.CLASS_UNKNOWN)
    agree = classes[_CLASS_OF[VERDICTS[idx]]] / known if known else None
    gap = grid_gap(grid, factor)
    top = float(np.nanmax(grid))
    bound = "lower" if factor >= top - gap / 2 else None
    return _entry(start, stop, VERDICTS[idx], factor, steps, agree, gap, bound, src)
