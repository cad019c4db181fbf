"""Quantities for comparing runs (the paper's hyperparameter analysis). Compute only, no drawing.

Per run: iterations, final loss, mean line-search evaluations, loose ends per
100 iterations (trial points beyond the accepted step), shares of
overshooting / undershooting steps among classified ones, mean step efficiency.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from recorder import schema
from recorder.store import Iterations

__all__ = ["run_summary", "COLUMNS", "format_table", "to_csv"]

COLUMNS = ("run", "iterations", "final loss", "mean line-search evals", "loose ends / 100 it", "overshoot share",
           "undershoot share", "mean efficiency")


def run_summary(name: str, d: Iterations) -> dict:
    n = len(d)
    loss = d["train_loss"]
    fin = loss[np.isfinite(loss)]
    if len(fin) == 0 and n:
        p0 = d.phi[:, 0].astype(np.float64)
        fin = p0[np.isfinite(p0)]
    counts = np.diff(d.trial_offsets)
    rows = np.repeat(np.arange(n), counts)
    taken = d["taken_alpha"][rows] if n else np.empty(0)
    loose = int(np.sum(d.trials["alpha"] > taken * (1 + 1e-9))) if len(rows) else 0
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


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS))
    w.writeheader()
    for r in rows:
        w.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in r.items()})
    return buf.getvalue()
