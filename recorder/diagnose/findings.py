"""Findings besides step size and spikes: divergence, plateaus, failed or skipped probes, lr changes.

Each finding is ``{"kind", "start", "stop", "text"}`` (iterations, ``stop`` exclusive).  The rules and
their thresholds (:mod:`.thresholds`):

``divergence``
    from ``start`` to the end of the run the training loss (running median of
    :data:`~.thresholds.SMOOTH_STEPS`) stays above :data:`~.thresholds.DIVERGE_RATIO` times the lowest
    smoothed loss reached before, or is not finite, for at least :data:`~.thresholds.DIVERGE_MIN_STEPS`
    steps; ``start`` is moved back to the first step of that stretch whose own loss is already that high.
``plateau``
    consecutive windows whose steps descend along their own lines by less than
    :data:`~.thresholds.PLATEAU_DESCENT` of the loss (median) and by less than
    :data:`~.thresholds.PLATEAU_LOSS_CHANGE` together.
``probe_failed``
    rows whose probe failed or gave non-finite values, runs closer than :data:`~.thresholds.FAILED_GAP`.
``probe_skipped``
    steps the probe did not measure (``every=n`` presets), one finding for the run.
``lr_change``
    the learning rate moves by more than :data:`~.thresholds.LR_JUMP_REL` in one step (context).
"""

from __future__ import annotations

import math

import numpy as np

from .. import stats
from .thresholds import (DIVERGE_MIN_STEPS, DIVERGE_RATIO, FAILED_GAP, LR_JUMP_REL, MAX_FINDINGS_PER_KIND,
                         MIN_WINDOW_STEPS, PLATEAU_DESCENT, PLATEAU_LOSS_CHANGE, SMOOTH_STEPS)


def finding(kind: str, start: int, stop: int, text: str) -> dict:
    """One finding in the JSON's shape."""
    return {"kind": kind, "start": int(start), "stop": int(stop), "text": text}


def smoothed(y: np.ndarray, w: int = SMOOTH_STEPS, chunk: int = 1 << 16) -> np.ndarray:
    """Trailing running median of ``w`` values (non-finite values count as +inf)."""
    yy = np.where(np.isfinite(y), y, np.inf)
    pad = np.concatenate([np.full(w - 1, yy[0] if len(yy) else 0.0), yy])
    out = np.empty(len(y))
    for a in range(0, len(y), chunk):
        b = min(len(y), a + chunk)
        out[a:b] = np.median(np.lib.stride_tricks.sliding_window_view(pad[a:b + w - 1], w), axis=1)
    return out


def divergence(it: np.ndarray, y: np.ndarray, best_before: float = np.inf) -> dict | None:
    """The divergence finding of a run (rows in order), or None.

    ``best_before``: the lowest smoothed loss of rows before these (the live detector's memory)."""
    if len(y) < DIVERGE_MIN_STEPS + SMOOTH_STEPS:
        return None
    s = smoothed(y)
    best = np.minimum.accumulate(np.where(np.isfinite(s), s, np.inf))
    prev_best = np.minimum(np.concatenate([[np.inf], best[:-1]]), best_before)
    with np.errstate(invalid="ignore"):
        above = ~np.isfinite(s) | (s - prev_best > (DIVERGE_RATIO - 1.0) * np.abs(prev_best))
    if not above[-1]:
        return None
    j = len(above) - int(np.argmin(above[::-1])) if not above.all() else 0
    if len(above) - j < DIVERGE_MIN_STEPS or not np.isfinite(prev_best[j]):
        return None
    ref = prev_best[j]
    floor = max(0, j - SMOOTH_STEPS)
    while j > floor and (not np.isfinite(y[j - 1]) or y[j - 1] - ref > (DIVERGE_RATIO - 1.0) * abs(ref)):
        j -= 1
    last = y[-1]
    end = "non-finite" if not math.isfinite(last) else f"{last:.4g}"
    return finding("divergence", it[j], it[-1] + 1,
                   f"the loss diverges from iteration {int(it[j])}: it stays above {DIVERGE_RATIO:g} x the best "
                   f"smoothed loss before ({ref:.4g}) to the end of the run ({end})")


def _runs(idx: np.ndarray, gap: int) -> list[tuple[int, int, int]]:
    """(first, last, count) of runs of sorted values no more than ``gap`` apart."""
    if not len(idx):
        return []
    cut = np.flatnonzero(np.diff(idx) > gap)
    lo = np.concatenate([[0], cut + 1])
    hi = np.concatenate([cut, [len(idx) - 1]])
    return [(int(idx[a]), int(idx[b]), int(b - a + 1)) for a, b in zip(lo, hi)]


def probe_findings(it: np.ndarray, status: np.ndarray, first_message: str = "") -> list[dict]:
    """Failed / non-finite probe runs and the skipped-probe summary."""
    out = []
    bad = np.flatnonzero((status == stats.STATUS_FAILED) | (status == stats.STATUS_NONFINITE))
    for a, b, c in _runs(it[bad], FAILED_GAP)[:MAX_FINDINGS_PER_KIND]:
        msg = f" (first message: {first_message[:160]})" if first_message else ""
        out.append(finding("probe_failed", a, b + 1, f"{c} probes failed or gave non-finite values in "
                                                     f"iterations {a}..{b}{msg}"))
    skipped = int(np.sum(status == stats.STATUS_SKIPPED))
    if skipped:
        out.append(finding("probe_skipped", it[0], it[-1] + 1,
                           f"{skipped} of {len(status)} steps not probed (the preset probes every n-th step): "
                           "their lines say nothing"))
    return out


def lr_changes(it: np.ndarray, lr: np.ndarray) -> list[dict]:
    """Learning-rate jumps of more than LR_JUMP_REL in one step (context for the other findings)."""
    lr = np.asarray(lr, np.float64)
    if len(lr) < 2:
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = np.abs(lr[1:] / lr[:-1] - 1.0)
    ok = np.isfinite(rel) & (lr[:-1] > 0)
    idx = np.flatnonzero(ok & (rel > LR_JUMP_REL)) + 1
    out = [finding("lr_change", it[i], it[i] + 1, f"learning rate {lr[i - 1]:.4g} -> {lr[i]:.4g} at iteration "
                                                   f"{int(it[i])}") for i in idx[:MAX_FINDINGS_PER_KIND]]
    if len(idx) > MAX_FINDINGS_PER_KIND:
        out[-1]["text"] += f" ({len(idx) - MAX_FINDINGS_PER_KIND} more changes not listed)"
    return out


def _window_plateau(m: dict[str, np.ndarray], a: int, b: int) -> bool:
    ok = m["status"][a:b] == stats.STATUS_OK
    d = m["descent"][a:b][ok]
    d = d[np.isfinite(d)]
    if len(d) < MIN_WINDOW_STEPS:
        return False
    return float(np.median(d)) < PLATEAU_DESCENT and float(np.sum(d)) < PLATEAU_LOSS_CHANGE


def plateaus(m: dict[str, np.ndarray], bounds: list[tuple[int, int]]) -> list[dict]:
    """Plateau findings over the step-size windows (consecutive plateau windows joined)."""
    it = m["iteration"]
    flags = [_window_plateau(m, int(np.searchsorted(it, s)), int(np.searchsorted(it, e))) for s, e in bounds]
    out: list[dict] = []
    for (s, e), f in zip(bounds, flags):
        if not f:
            continue
        if out and out[-1]["stop"] == s:
            out[-1]["stop"] = int(e)
        else:
            out.append(finding("plateau", s, e, ""))
    for f in out[:MAX_FINDINGS_PER_KIND]:
        f["text"] = (f"plateau over iterations {f['start']}..{f['stop'] - 1}: the steps descend by less than "
                     f"{PLATEAU_DESCENT:g} of the loss along their lines (median) and remove less than "
                     f"{PLATEAU_LOSS_CHANGE:.0%} of it together per window")
    return out[:MAX_FINDINGS_PER_KIND]
