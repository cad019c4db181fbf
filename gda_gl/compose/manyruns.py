"""Many runs in one picture (a sweep of 30-100 runs): what each run contributes to a frame. Compute only.

With :data:`MANY_RUNS` or more visible runs a frame is drawn in the *sweep style*
(:func:`gda_gl.compose.scene.compose` asks :func:`sweep_style`):

* zoomed out, each run is one thin line: its training loss per pixel column (the mean of the
  bucket's ``train_loss``, the classic curve's middle where none was recorded), averaged over
  :data:`LINE_SMOOTH_PX` pixel columns centred on each (so per-batch noise does not paint a band;
  the user's smoothing, ``--smooth`` / ``M``, replaces it with TensorBoard's EMA).  No envelope:
  thirty translucent envelopes cover the plot and hide each other;
* a run's steps become arcs (phi_k over [0, step]) once a step spans at least
  :data:`ARC_PX_PER_STEP` pixels on the x axis, for every run;
* the *focused* runs (``ViewState.focus``: the run selected in the window, or named) are drawn as
  with few runs: envelope, classic curve, and arcs as soon as rows fit the pixels.

With fewer runs nothing changes: each run's envelope and classic curve zoomed out, arcs zoomed in.
"""

from __future__ import annotations


import numpy as np

__all__ = ["MANY_RUNS", "ARC_PX_PER_STEP", "LINE_SMOOTH_PX", "LINE_ALPHA", "sweep_style", "arcs_fit", "is_focused",
           "line_values", "smooth_centered", "buckets_suffice", "line_fields", "LINE_FIELDS", "row_line_recs"]

#: visible runs from which a frame is drawn in the sweep style
MANY_RUNS = 4
#: in the sweep style a run's steps are drawn as arcs once each step spans this many pixels
ARC_PX_PER_STEP = 6.0
#: the sweep style's run line is the training loss averaged over this many pixel columns (centred)
LINE_SMOOTH_PX = 12.0
#: opacity of a run's line in the sweep style (crossings of many runs stay readable)
LINE_ALPHA = 0.9


def sweep_style(visible_runs: int) -> bool:
    """Whether a frame of ``visible_runs`` runs is drawn in the sweep style."""
    return visible_runs >= MANY_RUNS


def arcs_fit(steps_in_view: float, width_px: int) -> bool:
    """Whether ``steps_in_view`` steps over ``width_px`` pixels leave :data:`ARC_PX_PER_STEP` pixels per step."""
    return steps_in_view <= 0 or width_px / steps_in_view >= ARC_PX_PER_STEP


def is_focused(state, name: str) -> bool:
    """Whether the run ``name`` is drawn in full in the sweep style (``state.focus`` names it)."""
    focus = getattr(state, "focus", None) or ()
    return name in focus


#: the bucket fields a run's line reads (its smoothed loss, where it is, its y extent, flags, epochs)
LINE_FIELDS = ("first_it", "last_it", "rows", "cl_lo", "cl_hi", "cl_last", "cl_first", "env_lo", "env_hi",
               "epoch_first", "epoch_last", "train_loss:sum", "train_loss:count")


def buckets_suffice(rows_in_view: int, width_px: int) -> bool:
    """Whether the pyramid's finest buckets (16 rows) give a run's line a point per ``LINE_SMOOTH_PX`` columns at
    least: then the line reads buckets, not rows (a hundred runs of 2,000 steps: 125 buckets each)."""
    from recorder.pyramid import BASE_ROWS

    return rows_in_view / BASE_ROWS >= width_px / LINE_SMOOTH_PX


def line_fields(recs: dict, stats: set) -> dict:
    """The fields of ``recs`` a run's line needs (:data:`LINE_FIELDS`, the probe status, the statistics
    ``stats`` that colour-by or the highlight read): fewer to merge per pixel column, per run, per frame."""
    keep = set(LINE_FIELDS)
    return {k: v for k, v in recs.items() if k in keep or k.split(":")[0] in stats}


def row_line_recs(alphas, rows) -> dict:
    """Rows as buckets of one with only what a run's line reads (:data:`LINE_FIELDS` and the probe status): the
    line's cheap twin of :func:`recorder.pyramid.row_records` (no envelope of phi over the alphas, no trials)."""
    from recorder import pyramid, stats

    classic = pyramid.classic_values(alphas, rows.phi, rows["train_loss"]).astype(np.float32)
    it = np.asarray(rows.iteration, np.int64)
    ep = np.asarray(rows["epoch"], np.int32)
    tl = np.asarray(rows["train_loss"], np.float64)
    ok = np.isfinite(tl)
    out = {"rows": np.ones(len(it), np.int32), "first_it": it, "last_it": it, "cl_lo": classic, "cl_hi": classic,
           "cl_first": classic, "cl_last": classic, "env_lo": classic, "env_hi": classic, "epoch_first": ep,
           "epoch_last": ep, "train_loss:sum": np.where(ok, tl, 0.0), "train_loss:count": ok.astype(np.int32)}
    status = np.asarray(rows["status"])
    for code, _ in stats.STAT_BY_NAME["status"].codes:
        out[f"status:{code}"] = (status == code).astype(np.int32)
    return out


def line_values(recs: dict) -> tuple[np.ndarray, np.ndarray]:
    """(value, weight) per bucket of a run's line: the bucket's mean training loss where it has one, else
    the middle of its classic curve; the weight is the bucket's row count (0 where no value is finite)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        mid = 0.5 * (np.asarray(recs["cl_lo"], np.float64) + np.asarray(recs["cl_hi"], np.float64))
        if "train_loss:count" in recs:
            cnt = np.asarray(recs["train_loss:count"], np.float64)
            mean = np.asarray(recs["train_loss:sum"], np.float64) / np.where(cnt > 0, cnt, 1.0)
            mid = np.where((cnt > 0) & np.isfinite(mean), mean, mid)
    weight = np.where(np.isfinite(mid), np.asarray(recs["rows"], np.float64), 0.0)
    return mid, weight


def smooth_centered(values: np.ndarray, weights: np.ndarray, half: int) -> np.ndarray:
    """Weighted moving average over ``2 * half + 1`` neighbours centred on each point (NaN keeps weight 0)."""
    v = np.where(weights > 0, np.nan_to_num(values), 0.0)
    if half <= 0 or len(v) < 2:
        return np.where(weights > 0, values, np.nan)
    kernel = np.ones(2 * half + 1)
    num = np.convolve(v * weights, kernel, mode="same")
    den = np.convolve(weights, kernel, mode="same")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
