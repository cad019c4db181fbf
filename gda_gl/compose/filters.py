"""The highlight filter: parsing a condition and matching it against rows or pyramid buckets. Compute only."""

from __future__ import annotations

import math

import numpy as np

from recorder import schema, stats
from recorder.codec import Iterations

__all__ = ["FILTER_HELP", "parse_filter", "split_comparison", "highlight_mask", "highlight_buckets"]


_CLASS_FILTERS = {"overshoot": schema.CLASS_OVERSHOOT, "undershoot": schema.CLASS_UNDERSHOOT,
                  "near-optimal": schema.CLASS_NEAR_OPTIMAL}
_OPS = ("<=", ">=", "<", ">")
FILTER_HELP = "overshoot, undershoot, near-optimal, failed, nonfinite, STAT<VALUE, STAT>VALUE"


def split_comparison(cond: str, ops: tuple[str, ...] = _OPS, numeric: bool = True):
    """``NAME<op>VALUE`` (spaces ignored) -> (name, op, value), or None without an operator of ``ops``.

    The one grammar of conditions: the highlight filter and ``--where`` (:mod:`gda_gl.session.select`) both split
    here; nothing is evaluated.  ``ops`` is tried in order (longer operators first); ``numeric``: the
    value as a float (ValueError naming a value that is not a number, or NaN), else the text.
    """
    c = cond.replace(" ", "")
    for op in ops:
        if op in c:
            name, val = c.split(op, 1)
            if not numeric:
                return name, op, val
            try:
                v = float(val)
            except ValueError:
                raise ValueError(f"filter {cond!r}: {val!r} is not a number") from None
            if math.isnan(v):
                raise ValueError(f"filter {cond!r}: the value is NaN")
            return name, op, v
    return None


def parse_filter(cond: str):
    c = cond.replace(" ", "")
    if c in _CLASS_FILTERS:
        return ("class", _CLASS_FILTERS[c])
    if c == "failed":
        return ("status", schema.STATUS_FAILED)
    if c in ("nonfinite", "non-finite"):
        return ("status", schema.STATUS_NONFINITE)
    split = split_comparison(cond)
    if split is not None:
        if split[0] not in stats.STAT_BY_NAME:
            raise ValueError(f"unknown statistic {split[0]!r} in filter {cond!r}")
        return ("cmp", split)
    raise ValueError(f"unknown filter {cond!r} ({FILTER_HELP})")


def highlight_mask(data: Iterations, cond: str | None) -> np.ndarray | None:
    """Rows matching a filter condition (others are faded), or None for no filter."""
    if not cond:
        return None
    kind, arg = parse_filter(cond)
    if kind == "class":
        return data["step_class"] == arg
    if kind == "status":
        if arg == schema.STATUS_NONFINITE:
            return (data["status"] == schema.STATUS_NONFINITE) | ~np.all(np.isfinite(data.phi), axis=1) & \
                (data["status"] != schema.STATUS_SKIPPED)
        return data["status"] == arg
    name, op, v = arg
    x = data[name].astype(np.float64)
    return {"<": x < v, ">": x > v, "<=": x <= v, ">=": x >= v}[op]


#: identity columns whose bucket extremes the pyramid keeps under other names
_SPAN_FIELDS = {"epoch": ("epoch_first", "epoch_last"), "iteration": ("first_it", "last_it")}


def highlight_buckets(recs: dict, cond: str | None) -> tuple[np.ndarray | None, int | None, bool]:
    """Buckets that contain a matching row, the number of matching rows, and whether that number is exact.

    Code filters (step class, probe status) count exactly; threshold filters only know from a bucket's
    min and max whether some row may match, so their count is the rows of such buckets (an upper bound).
    """
    if not cond:
        return None, None, True
    kind, arg = parse_filter(cond)
    if kind in ("class", "status"):
        col = recs[f"{'step_class' if kind == 'class' else 'status'}:{arg}"].astype(np.int64)
        return col > 0, int(col.sum()), True
    name, op, v = arg
    if f"{name}:min" in recs:
        lo, hi = recs[f"{name}:min"], recs[f"{name}:max"]
    elif name in _SPAN_FIELDS:
        lo, hi = (recs[f].astype(np.float64) for f in _SPAN_FIELDS[name])
    else:  # not aggregated (batch ids, ...): every bucket may match
        m = np.ones(len(recs["rows"]), bool)
        return m, int(recs["rows"].sum()), bool(np.all(recs["rows"] == 1))
    with np.errstate(invalid="ignore"):
        m = {"<": lo < v, ">": hi > v, "<=": lo <= v, ">=": hi >= v}[op]
    exact = bool(np.all((recs["rows"] == 1) | ~m))
    return m, int(recs["rows"][m].sum()), exact
