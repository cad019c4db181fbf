"""Spikes of the training loss and what caused them, from per-row measures.

A step k spikes when its training loss rises above the median of the previous
:data:`~.thresholds.SPIKE_BASELINE_STEPS` steps by more than :data:`~.thresholds.SPIKE_MADS` robust
standard deviations (1.4826 x MAD) and by more than :data:`~.thresholds.SPIKE_MIN_REL` of that median.
Consecutive spiking steps are one spike, reported at its first step with its largest rise.

The cause is read from the two lines that meet at w_k (rules in :func:`cause`, thresholds in
:mod:`.thresholds`):

``batch``
    the previous line predicted a low loss at w_k (phi_{k-1}(1) near the baseline) while the step's own
    line starts high (phi_k(0) jumps): same weights, other data.
``step``
    the previous step overshot (phi_{k-1}(1) far above phi_{k-1}(0)), and its length or learning rate
    was several times the baseline's (or nothing else explains the overshoot).
``curvature``
    the previous line bends up sharply: its curvature per unit step length is many times the baseline's.
``unknown``
    none of these, or the previous step is not recorded (skipped probes, failed rows).

``evidence`` holds every number the rule read.
"""

from __future__ import annotations

import math

import numpy as np
from .thresholds import (LONG_STEP_RATIO, MAX_SPIKES, OVERSHOOT_SHARE, PREDICTED_LOW_SHARE, SHARP_CURVATURE_RATIO,
                         SPIKE_BASELINE_STEPS, SPIKE_MADS, SPIKE_MIN_REL)


_MAD_SCALE = 1.4826  # MAD -> standard deviation of a Gaussian


def loss_series(m: dict[str, np.ndarray]) -> np.ndarray:
    """The training loss per row (phi_k(0) where the training loss was not recorded)."""
    y = np.asarray(m["train_loss"], np.float64)
    return np.where(np.isfinite(y), y, m["phi0"])


def _trailing(y: np.ndarray, w: int, chunk: int = 1 << 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Median, scaled MAD and count of the finite values among the ``w`` values before each position."""
    pad = np.concatenate([np.full(w, np.nan), y])
    med, mad, cnt = (np.full(len(y), np.nan) for _ in range(3))
    for a in range(0, len(y), chunk):
        b = min(len(y), a + chunk)
        win = np.lib.stride_tricks.sliding_window_view(pad[a:b + w - 1], w)
        win = np.where(np.isfinite(win), win, np.nan)
        c = np.sum(np.isfinite(win), axis=1)
        cnt[a:b] = c
        good = c > 0
        mm = np.full(b - a, np.nan)
        dd = np.full(b - a, np.nan)
        if good.any():
            mm[good] = np.nanmedian(win[good], axis=1)
            dd[good] = _MAD_SCALE * np.nanmedian(np.abs(win[good] - mm[good, None]), axis=1)
        med[a:b], mad[a:b] = mm, dd
    return med, mad, cnt


def flag(y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which rows spike, with each row's baseline and threshold (rise must exceed it)."""
    base, spread, cnt = _trailing(y, SPIKE_BASELINE_STEPS)
    thr = np.maximum(SPIKE_MADS * spread, SPIKE_MIN_REL * np.abs(base))
    with np.errstate(invalid="ignore"):
        hit = np.isfinite(y) & (cnt >= SPIKE_BASELINE_STEPS // 2) & (y - base > thr)
    return hit, base, thr


def _ratio(v: float, ref: np.ndarray) -> float:
    ref = ref[np.isfinite(ref) & (ref > 0)]
    if not len(ref) or not math.isfinite(v):
        return math.nan
    return float(v / np.median(ref))


def _num(v) -> float | None:
    v = float(v)
    return round(v, 6) if math.isfinite(v) else None


def cause(m: dict[str, np.ndarray], i: int, base: float, thr: float) -> tuple[str, dict]:
    """The cause of a spike at row ``i`` (see the module docstring) and the numbers that decided it."""
    ev = {"loss": _num(loss_series({k: m[k][i:i + 1] for k in ("train_loss", "phi0")})[0]),
          "baseline": _num(base), "threshold": _num(thr), "phi0": _num(m["phi0"][i])}
    if i == 0 or m["iteration"][i - 1] != m["iteration"][i] - 1 or not np.isfinite(m["phit"][i - 1]):
        ev["why"] = "the previous step's line is not recorded"
        return "unknown", ev
    lo = max(0, i - SPIKE_BASELINE_STEPS)
    p0, p1 = float(m["phi0"][i - 1]), float(m["phit"][i - 1])
    ev.update(prev_phi0=_num(p0), prev_phi1=_num(p1),
              step_ratio=_num(_ratio(float(m["step_norm"][i - 1]), np.asarray(m["step_norm"][lo:i - 1], float))),
              lr_ratio=_num(_ratio(float(m["lr"][i - 1]), np.asarray(m["lr"][lo:i - 1], float))),
              curvature_ratio=_num(_ratio(float(m["curv_unit"][i - 1]), m["curv_unit"][lo:i - 1])))
    if p1 <= base + PREDICTED_LOW_SHARE * thr and float(m["phi0"][i]) - p1 > thr:
        return "batch", ev
    overshoot = p1 - p0 > OVERSHOOT_SHARE * thr
    long_step = any((ev[k] or 0.0) >= LONG_STEP_RATIO for k in ("step_ratio", "lr_ratio"))
    if overshoot and long_step:
        return "step", ev
    if (ev["curvature_ratio"] or 0.0) >= SHARP_CURVATURE_RATIO:
        return "curvature", ev
    return ("step", ev) if overshoot else ("unknown", ev)


def find_spikes(m: dict[str, np.ndarray], before: int | None = None, within: tuple[int, int] | None = None
                ) -> list[dict]:
    """Spikes of a table of per-row measures, in iteration order.

    Parameters
    ----------
    m : per-row measures (:func:`.lines.line_measures`), rows in iteration order
    before : ignore rows at or after this iteration (a divergence's onset)
    within : keep only spikes starting in ``[a, b)`` (rows outside give baseline context)
    """
    y = loss_series(m)
    hit, base, thr = flag(y)
    it = m["iteration"]
    if before is not None:
        hit &= it < before
    out = []
    idx = np.flatnonzero(hit)
    if not len(idx):
        return out
    starts = idx[np.concatenate([[True], np.diff(idx) > 1])]
    ends = idx[np.concatenate([np.diff(idx) > 1, [True]])]
    for a, b in zip(starts, ends):
        k = int(it[a])
        if within is not None and not within[0] <= k < within[1]:
            continue
        rise = float(np.max(y[a:b + 1] - base[a]))
        c, ev = cause(m, int(a), float(base[a]), float(thr[a]))
        ev["steps"] = int(it[b] - it[a] + 1)
        out.append({"kind": "spike", "iteration": k, "rise": round(rise, 6), "cause": c, "evidence": ev})
    return out


def limit(spikes: list[dict]) -> list[dict]:
    """At most :data:`~.thresholds.MAX_SPIKES` spikes (the largest rises), in iteration order."""
    if len(spikes) <= MAX_SPIKES:
        return spikes
    keep = sorted(spikes, key=lambda s: -s["rise"])[:MAX_SPIKES]
    return sorted(keep, key=lambda s: s["iteration"])
