"""Quantities for comparing runs (the paper's hyperparameter analysis). Compute only, no drawing.

Per run (from the whole-run pyramid bucket, :func:`summary_from_bucket`; :func:`run_summary` is
the plain twin over every row): iterations, final loss (the classic curve's last value), mean line-search evaluations, loose ends per
100 iterations (trial points beyond the accepted step), shares of
overshooting / undershooting steps among classified ones, mean step efficiency.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from recorder import schema, stepgeom
from recorder.pyramid import classic_values
from recorder.store import Iterations

__all__ = ["run_summary", "summary_from_bucket", "COLUMNS", "format_table", "to_csv"]

COLUMNS = ("run", "iterations", "final loss", "mean line-search evals", "loose ends / 100 it", "overshoot share",
           "undershoot share", "mean efficiency")


def summary_from_bucket(name: str, top: dict | None) -> dict:
    """The comparison row of a run from its whole-run pyramid bucket (O(1), whatever the run's length).

    :func:`run_summary` is the plain twin computed from every row; both define the final loss as the
    classic curve's last value (phi_k(0) of the last iteration, or its training loss where not probed).
    """
    if top is None:
        return {"run": name, "iterations": 0, **{c: math.nan for c in COLUMNS[2:]}}
    g = {k: v[0] for k, v in top.items()}
    n = int(g["rows"])
    searched = int(g["searched"])
    classified = n - int(g[f"step_class:{schema.CLASS_UNKNOWN}"])
    eff_n = int(g["efficiency:count"])
    return {"run": name, "iterations": n, "final loss": float(g["cl_last"]),
            "mean line-search evals": float(g["ls_evals:sum"]) / searched if searched else 0.0,
            "loose ends / 100 it": 100.0 * int(g["loose_ends"]) / n if n else math.nan,
            "overshoot share": int(g[f"step_class:{schema.CLASS_OVERSHOOT}"]) / classified if classified else math.nan,
            "undershoot share": int(g[f"step_class:{schema.CLASS_UNDERSHOOT}"]) / classified if classified
            else math.nan,
            "mean efficiency": float(g["efficiency:sum"]) / eff_n if eff_n else math.nan}


def run_summary(name: str, d: Iterations) -> dict:
    """The comparison row of a run computed from every row (the plain twin of :func:`summary_from_bucket`)."""
    n = len(d)
    classic = classic_values(d.alpha_grid, d.phi, d["train_loss"]) if n else np.empty(0)
    fin = classic[-1:]
    loose = int(stepgeom.loose_counts(d["taken_alpha"], np.diff(d.trial_offsets), d.trials["alpha"]).sum()) if n else 0
    ls = d["ls_evals"]
    searched = ls[ls > 0]
    cls = d["step_class"]
    classified = cls[cls != schema.CLASS_UNKNOWN]
    eff = d["efficiency"][np.isfinite(d["efficiency"])]
    return {"run": name, "iterations": n, "final loss": float(fin[-1]) if len(fin) else math.nan,
            "mean line-search evals": float(searched.mean()) if len(searched) else 0.0,
            "loose ends / 100 it": 100.0 * loose / n if n else math.nan,
            "overshoot share": float(np.mean(classified == schema.CLASS_OVERSHOOT)) if len(classified) else math.nan,
            "undershoot share": float(np.mean(classified == schema.CLASS_UNDERSHOOT)) if len(classified) else math.nan,
            "mean efficiency": float(eff.mean()) if len(eff) else math.nan}


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def format_table(rows: list[dict]) -> str:
    cells = [[_fmt(r[c]) for c in COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(COLUMNS)]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(COLUMNS, widths)))]
    for row in cells:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _cell(v):
    """Text cells that a spreadsheet would run as a formula (names come from the files) get a leading quote."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else _cell(v)) for k, v in r.items()})
    return buf.getvalue()
