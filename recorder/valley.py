"""The valley placement: phi_k measured at a few points of a fine grid, placed at the line's minimum.

What a reader of a line takes from it is the step class (undershoot, near-optimal, overshoot: from
phi(0), phi(1) and the minimum) and where the minimum lies.  This placement measures phi only at
points of the grid ``linspace(0, alpha_max, k)`` (by default the 65-point grid of ``dense``, 1/32
apart), so every stored point is a point of the dense line, bit-for-bit the loss ``dense`` measures
there; it places them where the minimum is, one point per round, and stops as soon as the minimum is
no longer in doubt:

1. **First round**: phi(1) (the step taken), phi(0) unless the training forward gave it (see below),
   and phi(alpha_max) unless the slope at 0 is known.
2. **First guess**: the parabola through phi(0), phi'(0) and phi(1) (with the slope), or through
   phi(0), phi(1), phi(alpha_max) (without): its vertex, snapped to the grid (the lower end of the
   interval when it is not convex); measured unless already measured.
3. **Refinement, until the minimum is not in doubt** (:func:`doubt`): take the lowest measured point
   and its measured neighbours; measure the vertex of the parabola through the three (snapped), or,
   when that is already measured, a point between the lowest point and a neighbour, at most
   :data:`BRACKET` grid steps from it.  With ``strategy="batched"`` (a GPU, where a round of three alphas
   costs about one forward) each round also measures the point's two grid neighbours.

**The doubt criterion** (:func:`doubt`).  The minimum is *not* in doubt when the lowest measured point
is inside the interval, has measured neighbours on both sides at most :data:`BRACKET` grid steps away,
and the parabola through the three has its vertex within :data:`VERTEX_TOL` grid steps of it; or when
the lowest point is an end of the interval (0 or alpha_max) and its measured neighbour is the next grid
point.  Otherwise it is in doubt and, while the budget lasts, one more point is measured.  When the
budget runs out first the row keeps what was measured (every value still a measured loss).

**phi(0) and the slope from the training step.**  phi(0) is the loss at w_k on the step's batch, which
the training forward already computed: when the probe evaluates the same function (no layer that
behaves differently in eval mode, or the train-mode replay; the whole batch; no autocast difference),
the training loss *is* phi(0), and the slope ``g . d_k`` from the gradient is phi'(0).  Whether that
holds is not assumed but measured (:class:`TrainingForwardCheck`): on the first probed step and every
:data:`CHECK_EVERY`-th after it phi(0) is measured too and compared with the training loss (equal to
within :data:`PHI0_RTOL`, float32 rounding of a different kernel order); one disagreement turns the
shortcut off for the rest of the run.  The slope enters the first guess only where phi(0) is taken
from the training forward and the step had one micro-batch (so ``g`` is the gradient of exactly that
loss, unscaled).  A wrong slope costs points, never a wrong value: the refinement works on measured
values only.

:func:`valley_points` is pure numpy over an ``evaluate(alphas)`` callable (tests drive it with known
functions); :func:`measure_valley` runs it through a :class:`recorder.probe.LineProbe` session.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["BRACKET", "CHECK_EVERY", "MIN_BUDGET", "PHI0_RTOL", "TrainingForwardCheck", "VERTEX_TOL", "doubt",
           "measure_valley", "valley_points"]

#: the widest gap (grid steps) between the lowest measured point and each neighbour for the minimum to be settled
BRACKET = 4
#: how far (grid steps) the vertex of the parabola through the lowest point and its neighbours may lie from it
VERTEX_TOL = 0.5
#: how closely the training loss must equal the measured phi(0) to stand for it (relative, plus 1e-7 absolute)
PHI0_RTOL = 1e-6
#: phi(0) is measured and compared with the training loss on the first probed step and every n-th after it
CHECK_EVERY = 64
#: the fewest forward passes a valley probe is given (phi(0), phi(1), phi(alpha_max) when nothing is known)
MIN_BUDGET = 3


def _vertex(x, y) -> float | None:
    """The vertex of the parabola through three points (x increasing), None when it is not convex."""
    d1 = (y[1] - y[0]) / (x[1] - x[0])
    d2 = (y[2] - y[1]) / (x[2] - x[1])
    c2 = (d2 - d1) / (x[2] - x[0])
    if not (math.isfinite(c2) and c2 > 0):
        return None
    return 0.5 * (x[0] + x[1]) - d1 / (2.0 * c2)


def doubt(known: dict[int, float], last: int) -> bool:
    """Whether the minimum of the measured points (grid index -> loss) is in doubt; ``last`` is the
    grid's last index.  See the module docstring for the criterion."""
    ks = sorted(known)
    m = min(range(len(ks)), key=lambda i: known[ks[i]])
    a = ks[m]
    if m == 0 or m == len(ks) - 1:
        nb = ks[1] if m == 0 else ks[-2] if len(ks) > 1 else None
        return not (a in (0, last) and nb is not None and abs(nb - a) == 1)
    left, right = ks[m - 1], ks[m + 1]
    v = _vertex((left, a, right), (known[left], known[a], known[right]))
    return not (v is not None and a - left <= BRACKET and right - a <= BRACKET and abs(v - a) <= VERTEX_TOL)


def _first_guess(known: dict[int, float], slope: float, i1: int, last: int) -> int:
    """Round 2: the vertex of the parabola of the first round's values (grid index)."""
    if math.isfinite(slope) and 0 in known and i1 in known:
        c = known[i1] - known[0] - slope  # phi(a) = p0 + slope a + c a^2 with a in units of alpha = 1
        v = -slope / (2.0 * c) * i1 if c > 0 else float(last)
    elif {0, i1, last} <= set(known):
        v = _vertex((0, i1, last), (known[0], known[i1], known[last]))
        if v is None:
            v = 0.0 if known[0] <= known[last] else float(last)
    else:
        return -1
    return int(min(max(round(v), 0), last)) if math.isfinite(v) else -1


def _between(known: dict[int, float], lo: int, hi: int, v: float | None) -> int:
    """A grid index strictly between ``lo`` and ``hi`` near ``v`` (else their middle), -1 when none is free."""
    if hi - lo <= 1:
        return -1
    j = (lo + hi) // 2 if v is None or not math.isfinite(v) else int(min(max(round(v), lo + 1), hi - 1))
    if j in known:
        j = (lo + hi) // 2
    return -1 if j in known else j


def _at_end(known: dict[int, float], ks: list[int], m: int, last: int) -> int:
    """The next point when the lowest measured point is the first or the last measured one."""
    a = ks[m]
    tri = ks[:3] if m == 0 else ks[-3:]
    v = _vertex(tri, [known[k] for k in tri]) if len(tri) == 3 else None
    if m == 0:  # the lowest point is alpha = 0 (or the first measured): the next grid point settles it
        return _between(known, a if a == 0 else -1, ks[1], v)
    if a == last:
        return _between(known, ks[-2], last, v)
    j = last if v is None or v >= last else int(round(max(v, a + 1)))  # the line still falls: look beyond
    return -1 if j in known else j


def _inside(known: dict[int, float], ks: list[int], m: int) -> int:
    """The next point when the lowest measured point has measured neighbours on both sides."""
    left, a, right = ks[m - 1], ks[m], ks[m + 1]
    v = _vertex((left, a, right), (known[left], known[a], known[right]))
    if v is not None and round(v) != a and round(v) not in known and left < round(v) < right:
        return int(round(v))
    side = (1 if v > a else -1) if v is not None and round(v) != a else (1 if right - a >= a - left else -1)
    gap = right - a if side > 0 else a - left
    if gap <= 1:
        side, gap = -side, (a - left if side > 0 else right - a)
        if gap <= 1:
            return -1
    return a + side * max(1, min(BRACKET, gap // 2))


def _next_point(known: dict[int, float], last: int) -> int:
    """The grid index the refinement measures next (-1: nothing left to measure)."""
    ks = sorted(known)
    m = min(range(len(ks)), key=lambda i: known[ks[i]])
    j = _at_end(known, ks, m, last) if m in (0, len(ks) - 1) else _inside(known, ks, m)
    return -1 if j < 0 or j > last or j in known else j


def valley_points(evaluate: Callable[[np.ndarray], np.ndarray], grid: np.ndarray, budget: int,
                  phi0: float = math.nan, slope0: float = math.nan,
                  neighbours: bool = False) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """Measure phi at grid points near the line's minimum; see the module docstring.

    Parameters
    ----------
    evaluate : ``evaluate(alphas) -> losses`` (float64 arrays), called once per round
    grid : the grid the points are taken from (``linspace(0, alpha_max, k)`` with 1.0 on it)
    budget : the most points ``evaluate`` is asked for in all
    phi0 : phi(0) when known without a forward pass (the training loss), else NaN
    slope0 : phi'(0) when it is the derivative of the probed line, else NaN
    neighbours : each round after the first also measures the point's two grid neighbours (for a strategy
        that evaluates a round's alphas at once, batched on a GPU: fewer, wider rounds)

    Returns
    -------
    (alphas, phi, forwards, settled) : the points sorted by alpha (every value measured, phi(0) possibly by
    the training forward), how many points ``evaluate`` measured, whether the minimum ended not in doubt
    """
    grid = np.asarray(grid, np.float64)
    last = len(grid) - 1
    i1 = int(np.argmin(np.abs(grid - 1.0)))
    known: dict[int, float] = {0: float(phi0)} if math.isfinite(phi0) else {}
    slope = float(slope0) if math.isfinite(phi0) else math.nan
    used = 0

    def measure(idx: list[int]) -> None:
        nonlocal used
        idx = [j for j in dict.fromkeys(idx) if j not in known][:max(0, budget - used)]
        if idx:
            vals = np.asarray(evaluate(grid[idx]), np.float64).reshape(-1)
            if vals.shape != (len(idx),):
                raise ValueError(f"the probe returned {vals.size} losses for {len(idx)} alphas")
            known.update(zip(idx, vals.tolist()))
            used += len(idx)

    def around(j: int) -> list[int]:
        return [j, j - 1, j + 1] if neighbours else [j]

    measure([i1, 0] + ([] if math.isfinite(slope) else [last]))
    if all(math.isfinite(v) for v in known.values()):
        g = _first_guess(known, slope, i1, last)
        if g >= 0:
            measure([k for k in around(g) if 0 <= k <= last])
        while used < budget and doubt(known, last) and all(math.isfinite(v) for v in known.values()):
            j = _next_point(known, last)
            if j < 0:
                break
            measure([k for k in around(j) if 0 <= k <= last])
    ks = sorted(known)
    settled = all(math.isfinite(known[k]) for k in ks) and not doubt(known, last)
    return grid[ks], np.asarray([known[k] for k in ks], np.float64), used, settled


@dataclass
class TrainingForwardCheck:
    """Whether the training loss stands for phi(0) in this run (see the module docstring): ``None`` until the
    first comparison, then True until one comparison fails (False from then on)."""

    ok: bool | None = None
    steps: int = 0

    def due(self) -> bool:
        """Whether this step measures phi(0) to compare (the first, every :data:`CHECK_EVERY`-th, or while off)."""
        return self.ok is not True or self.steps % CHECK_EVERY == 0

    def compare(self, training: float, measured: float) -> None:
        same = abs(training - measured) <= PHI0_RTOL * max(abs(training), abs(measured)) + 1e-7
        if self.ok is not False and not same:
            log.info("valley probe: the training loss %.9g differs from the measured phi(0) %.9g: phi(0) and the "
                     "slope are measured from now on", training, measured)
        self.ok = same if self.ok is not False else False


def _training_loss(probe, batches, distributed: bool) -> float:
    """The step's training loss when it can stand for phi(0) (the probe's own data, all losses known), else NaN."""
    cfg = probe.config
    if distributed or cfg.sub_batch or cfg.data is not None or not batches or any(m.loss is None for m in batches):
        return math.nan
    from .batches import micro_weights

    return float(sum(w * float(m.loss) for w, m in zip(micro_weights(batches), batches)))


def measure_valley(probe, w0, w1, batches, slope0: float = math.nan,
                   distributed: bool = False) -> tuple[np.ndarray, np.ndarray, str]:
    """phi_k at the valley's grid points through ``probe`` (a :class:`recorder.probe.LineProbe` whose config
    has ``placement="valley"``); the probe's :class:`TrainingForwardCheck` lives on ``probe.phi0_check``.

    Returns
    -------
    (alphas, phi, strategy) : float64 arrays sorted by alpha, and the strategy of the last round
    """
    cfg = probe.config
    grid = np.linspace(0.0, float(cfg.alpha_max), int(cfg.k))
    check = probe.phi0_check
    train = _training_loss(probe, batches, distributed)
    free = math.isfinite(train) and not check.due() and check.ok is True
    one = len(batches) == 1 and not batches[0].autocast and batches[0].weight in (None, 1.0)
    slope = float(slope0) if free and one else math.nan
    used: list[str] = []
    with probe.session(w0, w1, batches, distributed) as run:
        def evaluate(alphas):
            phi, strategy = run(np.float32(alphas).astype(np.float64))
            used.append(strategy)
            return phi.cpu().numpy()

        a, p, _, _ = valley_points(evaluate, grid, cfg.budget, train if free else math.nan, slope,
                                   neighbours=cfg.strategy == "batched")
    if math.isfinite(train) and not free and len(a) and a[0] == 0.0:
        check.compare(train, float(p[0]))
    check.steps += 1
    return a, p, (used[-1] if used else "")
