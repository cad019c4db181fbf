"""The pyramid path: diagnose a long run from its stored pyramid and a bounded number of rows.

* Step size: :func:`.stepsize.verdict_from_buckets` over the buckets of the finest level with at most
  :data:`~.thresholds.PYRAMID_MAX_BUCKETS` buckets (the pyramid stores sum and count of ``min_alpha``,
  so the window's factor is the median of bucket means; the output's ``source`` says so).
* Spikes: buckets whose largest training loss stands out from the previous buckets
  (:data:`~.thresholds.CANDIDATE_SPREAD`) are candidates; the rows of at most
  :data:`~.thresholds.MAX_CANDIDATE_BUCKETS` of them (with a baseline's worth of rows before) decide,
  with the rows path's rules.
* Divergence from the buckets' mean loss (onset to within one bucket); failed and skipped probes from
  the status counts; learning-rate jumps located in the rows of the buckets whose lr range shows one.
* Plateaus need each step's descent along its line, which the pyramid does not keep: not reported on
  this path (the output's findings say so).
"""

from __future__ import annotations

import numpy as np

from .. import pyramid
from ..reader import Recording
from ..window import RunWindows
from .findings import divergence, finding, lr_changes
from .lines import line_measures
from .spikes import find_spikes, limit
from .stepsize import verdict_from_buckets, window_bounds
from .thresholds import (CANDIDATE_SPREAD, LR_JUMP_REL, MAX_CANDIDATE_BUCKETS, MAX_FINDINGS_PER_KIND,
                         PYRAMID_MAX_BUCKETS, SPIKE_BASELINE_STEPS, SPIKE_MIN_REL)

_BACK = 8  # previous buckets a candidate is compared with


def _level(counts: list[int]) -> int:
    for level, c in enumerate(counts):
        if c <= PYRAMID_MAX_BUCKETS:
            return level
    return len(counts) - 1


def _mean(bk: dict, name: str) -> np.ndarray:
    c = bk[f"{name}:count"].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, bk[f"{name}:sum"] / np.where(c > 0, c, 1.0), np.nan)


def _trailing_median(v: np.ndarray, w: int) -> np.ndarray:
    pad = np.concatenate([np.full(w, np.nan), v])
    win = np.lib.stride_tricks.sliding_window_view(pad[:-1], w)
    out = np.full(len(v), np.nan)
    ok = np.isfinite(win).any(axis=1)
    out[ok] = np.nanmedian(win[ok], axis=1)
    return out


def candidates(bk: dict) -> np.ndarray:
    """Indices of the buckets that may hold a spike, largest excess first (at most MAX_CANDIDATE_BUCKETS)."""
    mean, top = _mean(bk, "train_loss"), bk["train_loss:max"].astype(np.float64)
    base = _trailing_median(mean, _BACK)
    spread = _trailing_median(top - mean, _BACK)
    with np.errstate(invalid="ignore"):
        excess = top - base
        hit = (excess > CANDIDATE_SPREAD * spread) & (excess > SPIKE_MIN_REL * np.abs(base))
    idx = np.flatnonzero(hit)
    return idx[np.argsort(-excess[idx])][:MAX_CANDIDATE_BUCKETS]


def _rows(rec: Recording, start: int, stop: int) -> dict[str, np.ndarray]:
    return line_measures(rec.read(max(0, start), stop))


def _spikes(rec: Recording, bk: dict, before: int | None) -> list[dict]:
    out = []
    for b in sorted(candidates(bk)):
        a, z = int(bk["first_it"][b]), int(bk["last_it"][b]) + 1
        if before is not None and a >= before:
            continue
        m = _rows(rec, a - SPIKE_BASELINE_STEPS - 1, z)
        out += find_spikes(m, before=before, within=(a, z))
    return limit(out)


def _lr_changes(rec: Recording, bk: dict) -> list[dict]:
    lo, hi = bk["lr:min"].astype(np.float64), bk["lr:max"].astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        inside = hi / lo - 1.0 > LR_JUMP_REL
        across = np.concatenate([[False], np.abs(lo[1:] / hi[:-1] - 1.0) > LR_JUMP_REL])
    out = []
    for b in np.flatnonzero(inside | across)[:MAX_FINDINGS_PER_KIND]:
        m = _rows(rec, int(bk["first_it"][b]) - 1, int(bk["last_it"][b]) + 1)
        out += [f for f in lr_changes(m["iteration"], m["lr"]) if f["start"] >= int(bk["first_it"][b])]
    return out[:MAX_FINDINGS_PER_KIND]


def _probe_findings(bk: dict) -> list[dict]:
    from .. import stats

    out = []
    bad = bk[f"status:{stats.STATUS_FAILED}"] + bk[f"status:{stats.STATUS_NONFINITE}"]
    for b in np.flatnonzero(bad)[:MAX_FINDINGS_PER_KIND]:
        out.append(finding("probe_failed", bk["first_it"][b], int(bk["last_it"][b]) + 1,
                             f"{int(bad[b])} probes failed or gave non-finite values in iterations "
                             f"{int(bk['first_it'][b])}..{int(bk['last_it'][b])}"))
    skipped, rows = int(bk[f"status:{stats.STATUS_SKIPPED}"].sum()), int(bk["rows"].sum())
    if skipped:
        out.append(finding("probe_skipped", bk["first_it"][0], int(bk["last_it"][-1]) + 1,
                             f"{skipped} of {rows} steps not probed (the preset probes every n-th step): "
                             "their lines say nothing"))
    return out


def diagnose_pyramid(rec: Recording) -> dict:
    """``{"step_size", "spikes", "findings"}`` of a long run, from its pyramid (see the module docstring)."""
    w = RunWindows.from_recording(rec)
    counts = w.chunks.counts()
    level = _level(counts)
    bk = w.chunks.buckets(level, 0, counts[level])
    rows = pyramid.bucket_rows(level)
    it0, it1 = int(bk["first_it"][0]), int(bk["last_it"][-1])
    epoch_starts = bk["first_it"][1:][bk["epoch_first"][1:] != bk["epoch_last"][:-1]]
    from .. import stats

    probed = max(1, int(bk["rows"].sum() - bk[f"status:{stats.STATUS_SKIPPED}"].sum()))
    bounds = window_bounds(it0, it1, epoch_starts, float(bk["rows"].sum()) / probed)
    div = divergence(bk["first_it"], _mean(bk, "train_loss"))
    if div:
        div["text"] += f" (read from {rows}-step buckets: the onset is known to within {rows} iterations)"
    found = ([div] if div else []) + _probe_findings(bk) + _lr_changes(rec, bk)
    found.append(finding("note", it0, it1 + 1, f"long run read from its pyramid ({rows}-step buckets): "
                                                  "plateaus are not looked for on this path"))
    return {"step_size": [verdict_from_buckets(bk, s, e, rec.alpha_grid, rows) for s, e in bounds],
            "spikes": _spikes(rec, bk, div["start"] if div else None),
            "findings": sorted(found, key=lambda f: (f["start"], f["kind"]))}
