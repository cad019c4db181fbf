"""The adaptive probe: phi_k measured at a few step sizes placed where the line bends.

A uniform grid spends most of its forward passes where phi is nearly straight.  The adaptive probe
evaluates phi in at most four batched rounds (each round one call of the probe's strategy, so the
``batched`` strategy evaluates a round's alphas at once), ``budget`` alphas in all:

1. **Anchors**: alpha = 0, 1 (w_k and w_{k+1} exactly) and ``alpha_max``.
2. **Valley**: a model of phi from the anchors and the slope at 0 (``slope0 = g . d_k`` from the
   gradient the recorder already has; a cubic through phi(0), phi'(0), phi(1), phi(alpha_max), or the
   parabola through the three anchors when the slope is unknown or not a descent) gives the valley
   a*; the round evaluates a* and the point bracketing it beyond (2 alphas).
3. **Refinement** (1 alpha, then the rest in a fourth round): the vertex of the parabola through
   the lowest measured point and its neighbours (where the *measured* points put the minimum), then
   the midpoints of the intervals where the measured points bend most (largest linear-interpolation
   error estimate, ``width**2 * |phi''| / 8``).

Every stored point is a measured loss at the alpha stored beside it; the models only choose where to
measure.  Alphas are rounded to float32 (the precision the parameters are interpolated in) before they
are evaluated, so the stored alpha is the evaluated one.  A non-finite loss or model falls back to
filling the widest gaps.  :func:`plan_round` is pure numpy (tests drive it with known functions).
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Sequence

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["MAX_BUDGET", "MIN_BUDGET", "adaptive_points", "budget_range", "measure_adaptive", "nominal_grid",
           "plan_round",
           "round_sizes"]

#: the fewest alphas an adaptive probe evaluates (anchors 0, 1, alpha_max, the valley, one refinement)
MIN_BUDGET = 5
#: the most alphas an adaptive probe evaluates per step
MAX_BUDGET = 64


def budget_range(placement: str = "bends") -> tuple[int, int]:
    """The budgets a placement accepts: ``"bends"`` (this module) from :data:`MIN_BUDGET`, ``"valley"``
    (:mod:`recorder.valley`) from its own minimum, both up to :data:`MAX_BUDGET`."""
    from .valley import MIN_BUDGET as VALLEY_MIN

    return (VALLEY_MIN if placement == "valley" else MIN_BUDGET), MAX_BUDGET


def nominal_grid(budget: int, alpha_max: float) -> np.ndarray:
    """The shared grid an adaptive recording declares (``meta.alpha_grid``): ``linspace(0, alpha_max, budget)``.

    Only its length (the per-row width K) and end points mean anything; each row's own alphas are stored
    beside its losses (:attr:`recorder.codec.Iterations.row_alphas`).
    """
    return np.linspace(0.0, float(alpha_max), int(budget))


def round_sizes(budget: int) -> tuple[int, ...]:
    """How many alphas each round evaluates, summing to ``budget``: 3 anchors, 2 for the valley, 1 at
    the measured vertex, the rest (vertex again, then the bends) in a last round."""
    rest = int(budget) - 3
    return (3,) + tuple(n for n in (min(2, rest), min(1, max(0, rest - 2)), max(0, rest - 3)) if n > 0)


def _f32(a) -> float:
    return float(np.float32(a))


def _pick(candidates: Sequence[float], have: np.ndarray, n: int, lo: float, hi: float, tol: float) -> list[float]:
    """The first ``n`` candidates inside [lo, hi] that are at least ``tol`` from every point already
    measured or picked, topped up with midpoints of the widest gaps."""
    chosen: list[float] = []

    def free(a: float) -> bool:
        pts = np.concatenate([have, np.asarray(chosen, np.float64)])
        return math.isfinite(a) and lo <= a <= hi and (len(pts) == 0 or float(np.min(np.abs(pts - a))) >= tol)

    for c in candidates:
        if len(chosen) == n:
            break
        a = _f32(min(max(float(c), lo), hi)) if math.isfinite(float(c)) else math.nan
        if free(a):
            chosen.append(a)
    while len(chosen) < n:
        pts = np.unique(np.concatenate([have, np.asarray(chosen, np.float64), [lo, hi]]))
        gaps = np.diff(pts)
        j = int(np.argmax(gaps))
        if gaps[j] < 2 * tol:
            break
        chosen.append(_f32(0.5 * (pts[j] + pts[j + 1])))
    return chosen


def _model_valley(a: np.ndarray, p: np.ndarray, slope0: float, alpha_max: float) -> float:
    """Where a model of the anchors puts phi's minimum in [0, alpha_max] (NaN when no model fits).

    With a descent slope (finite, < 0): the cubic through phi(0), phi'(0), phi(1), phi(alpha_max);
    otherwise the parabola through the three anchors.  The minimum is the lowest of the model's
    stationary points and the interval's ends.
    """
    if len(a) < 3 or not np.all(np.isfinite(p)):
        return math.nan
    p0, p1, pm = float(p[0]), float(p[1]), float(p[-1])
    m = float(alpha_max)
    if math.isfinite(slope0) and slope0 < 0 and m > 1:
        # c2 + c3 = p1 - p0 - s ; c2 m^2 + c3 m^3 = pm - p0 - s m
        r1, r2 = p1 - p0 - slope0, pm - p0 - slope0 * m
        c3 = (r2 - r1 * m * m) / (m ** 3 - m * m)
        c2 = r1 - c3
        coef = (c3, c2, slope0, p0)
    else:
        coef = tuple(np.polyfit(a[:3], p[:3], 2)) if len(np.unique(a[:3])) == 3 else ()
        if not coef:
            return math.nan
    roots = np.roots(np.polyder(np.asarray(coef)))
    cand = [0.0, m] + [float(r.real) for r in roots if abs(r.imag) < 1e-12 and 0 < r.real < m]
    vals = np.polyval(np.asarray(coef), cand)
    return float(cand[int(np.argmin(vals))]) if np.all(np.isfinite(vals)) else math.nan


def _valley_candidates(a: np.ndarray, p: np.ndarray, slope0: float, alpha_max: float) -> list[float]:
    """Round 2: the model's valley and points bracketing it (nearer side first)."""
    v = _model_valley(a, p, slope0, alpha_max)
    if not math.isfinite(v):
        return []
    h = max(0.125 * alpha_max / 2.0, 0.25 * v)
    return [v, v + h, v - h, v + 2 * h, v - 2 * h]


def _local_vertex(a: np.ndarray, p: np.ndarray) -> list[float]:
    """Round 3 first: the vertex of the parabola through the lowest measured point and its neighbours,
    then points a little to either side of it; at an end of the interval, points towards that end."""
    fin = np.isfinite(p)
    if fin.sum() < 2:
        return []
    a, p = a[fin], p[fin]
    j = int(np.argmin(p))
    if j == 0:
        return [0.5 * a[1], 0.25 * a[1]]
    if j == len(a) - 1:
        return [0.5 * (a[-2] + a[-1]), a[-1] - 0.25 * (a[-1] - a[-2])]
    x = a[j - 1:j + 2]
    y = p[j - 1:j + 2]
    c2, c1, _ = np.polyfit(x, y, 2)
    v = -c1 / (2 * c2) if c2 > 0 else a[j]
    v = min(max(v, 0.5 * (x[0] + x[1])), 0.5 * (x[1] + x[2]))
    d = 0.25 * min(x[1] - x[0], x[2] - x[1])
    return [v, v + d, v - d] if abs(v - a[j]) > d else [v, a[j] + d, a[j] - d]


def _bend_candidates(a: np.ndarray, p: np.ndarray) -> list[float]:
    """Midpoints of the intervals between measured points, largest interpolation error estimate first.

    The estimate for interval i is ``width**2 * |phi''| / 8`` with phi'' the largest second divided
    difference of the triples that contain the interval (the error bound of linear interpolation).
    """
    fin = np.isfinite(p)
    a, p = a[fin], p[fin]
    if len(a) < 3:
        return [0.5 * (x + y) for x, y in zip(a[:-1], a[1:])]
    slopes = np.diff(p) / np.diff(a)
    dd = np.abs(np.diff(slopes) / (a[2:] - a[:-2]) * 2.0)  # |phi''| of each triple
    curv = np.zeros(len(a) - 1)
    curv[:-1] = dd
    curv[1:] = np.maximum(curv[1:], dd)
    score = np.diff(a) ** 2 * curv / 8.0
    order = np.argsort(-score, kind="stable")
    return [0.5 * (a[i] + a[i + 1]) for i in order]


def plan_round(r: int, a: np.ndarray, p: np.ndarray, slope0: float, alpha_max: float, n: int) -> list[float]:
    """The alphas of round ``r`` given what was measured so far.

    Parameters
    ----------
    r : round index (0 anchors, 1 valley, then refinement)
    a, p : measured alphas (sorted) and losses
    slope0 : phi'(0) from the gradient (NaN when unknown)
    alpha_max : the end of the interval
    n : how many alphas this round evaluates

    Returns
    -------
    list of float32-representable alphas, none already measured (fewer than ``n`` only when the
    interval is exhausted)
    """
    m = float(alpha_max)
    if r == 0:
        return [0.0, 1.0, _f32(m)][:n] if m > 1 else [0.0, _f32(m)][:n]
    tol = m / 512.0
    if not np.all(np.isfinite(p)):
        cands: list[float] = []  # a non-finite loss: no model; spread the points
    elif r == 1:
        cands = _valley_candidates(a, p, slope0, m)
    else:
        cands = _local_vertex(a, p) + _bend_candidates(a, p)
    return _pick(cands, np.asarray(a, np.float64), n, 0.0, m, tol)


def adaptive_points(evaluate: Callable[[np.ndarray], np.ndarray], budget: int, alpha_max: float,
                    slope0: float = math.nan) -> tuple[np.ndarray, np.ndarray]:
    """Run the rounds of :func:`round_sizes`: ``evaluate(alphas) -> losses`` once per round.

    Returns
    -------
    (alphas, phi) : float64 arrays sorted by alpha, at most ``budget`` long (every value measured)
    """
    a = np.empty(0, np.float64)
    p = np.empty(0, np.float64)
    for r, n in enumerate(round_sizes(budget)):
        if n <= 0:
            continue
        new = np.asarray(plan_round(r, a, p, slope0, alpha_max, n), np.float64)
        if len(new) == 0:
            continue
        vals = np.asarray(evaluate(new), np.float64).reshape(-1)
        if vals.shape != new.shape:
            raise ValueError(f"the probe returned {vals.size} losses for {new.size} alphas")
        a = np.concatenate([a, new])
        p = np.concatenate([p, vals])
        order = np.argsort(a, kind="stable")
        a, p = a[order], p[order]
    return a, p


def measure_adaptive(probe, w0, w1, batches, slope0: float = math.nan,
                     distributed: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """phi_k at adaptively placed alphas through ``probe`` (a :class:`recorder.probe.LineProbe`).

    All rounds run in one :meth:`recorder.probe.LineProbe.session` (the model's state saved and put back
    once per step), each round one call of the probe's strategy, so its data handling, state restoration
    and the distributed mean apply unchanged; on every rank the rounds choose the same alphas (they
    depend only on the all-reduced losses and the reduced slope).  ``placement="valley"`` configurations
    go to :func:`recorder.valley.measure_valley`.

    Returns
    -------
    (alphas, phi, strategy) : float64 arrays sorted by alpha (at most ``config.budget`` long) and the
    strategy of the last round
    """
    cfg = probe.config
    if cfg.placement == "valley":
        from .valley import measure_valley

        return measure_valley(probe, w0, w1, batches, slope0, distributed)
    used: list[str] = []
    with probe.session(w0, w1, batches, distributed) as run:
        def evaluate(alphas: np.ndarray) -> np.ndarray:
            phi, strategy = run(alphas)
            used.append(strategy)
            return phi.cpu().numpy()

        a, p = adaptive_points(evaluate, cfg.budget, cfg.alpha_max, float(slope0))
    return a, p, (used[-1] if used else "")
