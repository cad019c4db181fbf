"""The geometry of one step: the rules every drawing, statistic and readout applies to a row.

A recorded step k has an alpha grid (in units of d_k = w_{k+1} - w_k), phi_k at each grid alpha,
an accepted alpha ``taken_alpha`` and its line search's trial points.  Four rules turn that into
what is drawn and counted, and they live here only:

* **the accepted alpha** (:func:`accepted_alpha`): ``taken_alpha`` where it is finite and > 0;
  otherwise 1.0.  A step that did not move (hooks write ``taken_alpha = 0`` when d_k = 0), a
  negative or NaN value would put the arc nowhere; the fallback draws it over [k, k + 1] like a
  normal step and counts its trial points against alpha = 1.  Stored pyramids (schema 2) were
  written with this same rule, so counts read from them agree with counts computed from rows.
* **beyond the step** (:func:`beyond`): alpha > accepted * (1 + :data:`BEYOND_RTOL`); the tolerance
  keeps the grid point *at* the accepted step (1.0 == 1.0 after float32 round trips) on the arc.
  A NaN alpha is never beyond.  :func:`within` is its complement for finite alphas.
* **a loose end** is a trial point beyond the step (:func:`loose_counts`, :func:`loose_mask`).
* **the arc's place on x** (:func:`arc_x`): x = k + alpha / accepted, so the accepted step ends at
  k + 1; :func:`step_extent` is how far right of k a step reaches (grid and trial points).

Every consumer (the pyramid's buckets and their plain twin, the composition, picking, owner lines,
the details view, ``compare`` and ``info``) calls these; nothing else spells the tolerance or the
fallback.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BEYOND_RTOL", "FALLBACK_ALPHA", "accepted_alpha", "beyond", "within", "arc_x", "loose_mask",
           "loose_counts", "grid_columns_within", "step_extent"]

#: relative tolerance of "beyond the step": alpha > accepted * (1 + BEYOND_RTOL)
BEYOND_RTOL = 1e-9
#: the accepted alpha of a row whose ``taken_alpha`` is not finite or not > 0
FALLBACK_ALPHA = 1.0


def accepted_alpha(taken) -> np.ndarray:
    """The accepted alpha per row: ``taken`` where finite and > 0, else :data:`FALLBACK_ALPHA`.

    Parameters
    ----------
    taken : scalar or array of stored ``taken_alpha`` values

    Returns
    -------
    float64 array of the same shape (a 0-d array for a scalar; ``float()`` it for one row)
    """
    t = np.asarray(taken, np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(np.isfinite(t) & (t > 0), t, FALLBACK_ALPHA)


def beyond(alpha, accepted) -> np.ndarray:
    """True where ``alpha`` lies beyond the accepted step (NaN alphas never do).

    ``accepted`` must already be an accepted alpha (:func:`accepted_alpha`), broadcastable to ``alpha``.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(alpha, np.float64) > np.asarray(accepted, np.float64) * (1.0 + BEYOND_RTOL)


def within(alpha, accepted) -> np.ndarray:
    """True where ``alpha`` lies on the step's arc (alpha <= accepted within the tolerance)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(alpha, np.float64) <= np.asarray(accepted, np.float64) * (1.0 + BEYOND_RTOL)


def arc_x(iteration, alpha, accepted) -> np.ndarray:
    """x position of alpha on step ``iteration``'s arc: k + alpha / accepted (broadcasting)."""
    return np.asarray(iteration, np.float64) + np.asarray(alpha, np.float64) / np.asarray(accepted, np.float64)


def loose_mask(trial_alpha, trial_rows, accepted_per_row) -> np.ndarray:
    """Per trial point: is it a loose end (beyond its row's accepted step)?

    Parameters
    ----------
    trial_alpha : (m,) trial alphas; trial_rows : (m,) the row of each trial point
    accepted_per_row : (n,) accepted alphas (:func:`accepted_alpha`)
    """
    acc = np.asarray(accepted_per_row, np.float64)
    return beyond(trial_alpha, acc[np.asarray(trial_rows, np.int64)])


def loose_counts(taken, tcount, trial_alpha) -> np.ndarray:
    """Loose ends per row (int32): trial points beyond the row's accepted step.

    Parameters
    ----------
    taken : (n,) stored ``taken_alpha`` values (the fallback is applied here)
    tcount : (n,) trial points per row, or None; trial_alpha : their concatenated alphas, or None
    """
    n = len(taken)
    if tcount is None or trial_alpha is None or len(trial_alpha) == 0:
        return np.zeros(n, np.int32)
    rows = np.repeat(np.arange(n), np.asarray(tcount, np.int64))
    loose = loose_mask(trial_alpha, rows, accepted_alpha(taken))
    return np.bincount(rows[loose], minlength=n).astype(np.int32)


def grid_columns_within(alphas, accepted: float) -> int:
    """How many leading grid alphas lie on the arc of a step with accepted alpha ``accepted`` (>= 1)."""
    a = np.asarray(alphas, np.float64)
    return max(1, int(np.searchsorted(a, float(accepted) * (1.0 + BEYOND_RTOL), side="right")))


def step_extent(alphas, accepted, trial_alpha=None) -> np.ndarray:
    """How far right of x = k a step reaches: max(grid alphas, finite trial alphas) / accepted.

    Parameters
    ----------
    alphas : (K,) grid; accepted : scalar or (n,) accepted alphas
    trial_alpha : optional trial alphas of the same step (scalar ``accepted`` only)
    """
    a = np.asarray(alphas, np.float64)
    reach = float(a.max()) if len(a) else FALLBACK_ALPHA
    if trial_alpha is not None:
        ta = np.asarray(trial_alpha, np.float64)
        ta = ta[np.isfinite(ta)]
        if len(ta):
            reach = max(reach, float(ta.max()))
    return reach / np.asarray(accepted, np.float64)
