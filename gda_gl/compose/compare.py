"""Quantities for comparing runs (the paper's hyperparameter analysis). Compute only, no drawing.

Per run (from the whole-run pyramid bucket, :func:`summary_from_bucket`; :func:`run_summary` is the
plain twin over every row): iterations, final loss (the classic curve's last value), mean
line-search evaluations, loose ends per 100 iterations (trial points beyond the accepted step),
shares of overshooting / undershooting steps among classified ones, mean step efficiency.  Beside
them the run's hyperparameters (:func:`hyperparameters`: optimizer, its settings, the probe's K and
what the user logged with ``rec.config``); the table shows those that differ between the runs.
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from recorder import schema, stepgeom
from recorder.pyramid import classic_values
from recorder.store import Iterations

__all__ = ["run_summary", "summary_from_bucket", "COLUMNS", "STAT_KEYS", "format_table", "to_csv", "hyperparameters",
           "varying", "unique_names"]

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


#: short names of the comparison statistics (``--scatter STAT:PARAM``)
STAT_KEYS = {"final_loss": "final loss", "ls_evals": "mean line-search evals", "loose_ends": "loose ends / 100 it",
             "overshoot": "overshoot share", "undershoot": "undershoot share", "efficiency": "mean efficiency",
             "iterations": "iterations"}
#: optimizer settings that are switches of the implementation, not hyperparameters
_NOT_HYPER = {"foreach", "fused", "differentiable", "capturable", "maximize", "params"}


def _clean(text: str, limit: int) -> str:
    """Text from a file, shortened, every non-printable character (terminal escapes) shown as '?'."""
    return "".join(ch if ch.isprintable() else "?" for ch in str(text)[:limit])


def _scalar(v):
    """A metadata value as a table cell: numbers and short texts; None for anything else."""
    if isinstance(v, bool) or v is None:
        return None if v is None else str(v)
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        return _clean(v, 60)
    if isinstance(v, (list, tuple)) and 0 < len(v) <= 4 and all(isinstance(x, (int, float)) for x in v):
        return ",".join(f"{x:g}" for x in v)
    return None


def hyperparameters(run_meta: dict, alphas: int | None = None) -> dict:
    """The hyperparameters of a run as flat cells: optimizer, its settings, the probe's K (alphas), and
    everything the user logged with ``rec.config(...)`` (``config.NAME``)."""
    out = {"optimizer": _scalar(run_meta.get("optimizer"))}
    hyper = run_meta.get("hyperparameters")
    for k, v in (hyper.items() if isinstance(hyper, dict) else ()):
        if k not in _NOT_HYPER and _scalar(v) is not None:
            out[_clean(k, 40)] = _scalar(v)
    if alphas is not None:
        out["probe K"] = alphas
    config = run_meta.get("config")
    for k, v in (config.items() if isinstance(config, dict) else ()):
        if _scalar(v) is not None:
            out[f"config.{_clean(k, 40)}"] = _scalar(v)
    return {k: v for k, v in out.items() if v is not None}


def varying(params: list[dict]) -> tuple[list[str], dict]:
    """(keys whose value differs between runs or is missing in some, {key: value} the same in every run)."""
    keys = list(dict.fromkeys(k for p in params for k in p))
    same = {k: params[0][k] for k in keys if all(k in p and p[k] == params[0][k] for p in params)}
    return [k for k in keys if k not in same or len(params) == 1], same


def unique_names(names: list[str], paths: list[str]) -> list[str]:
    """Run names, with the file name added where two runs carry the same name."""
    from pathlib import Path

    counts = {n: names.count(n) for n in names}
    out = [n if counts[n] == 1 else f"{n} ({Path(p).name})" for n, p in zip(names, paths)]
    if len(set(out)) < len(out):  # same file names in different folders
        out = [n if counts[n] == 1 else f"{n} ({p})" for n, p in zip(names, paths)]
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def format_table(rows: list[dict], params: list[dict] | None = None) -> str:
    """The comparison as text: one line per run, the statistics, then the hyperparameters that differ
    between the runs (those the same in every run on a line above the table)."""
    head = []
    cols = list(COLUMNS)
    if params:
        vary, same = varying(params)
        rows = [dict(r, **{k: p.get(k, "") for k in vary}) for r, p in zip(rows, params)]
        cols += vary
        if same and len(params) > 1:
            head.append("same in every run: " + " ".join(f"{k}={_fmt(v)}" for k, v in same.items()))
    cells = [[_fmt(r.get(c, "")) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = head + ["  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cols, widths)))]
    for row in cells:
        lines.append("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _cell(v):
    """Text cells that a spreadsheet would run as a formula (names come from the files) get a leading quote."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v


def to_csv(rows: list[dict], params: list[dict] | None = None) -> str:
    """The comparison as CSV: the statistics, then every hyperparameter of any run (empty where a run lacks it)."""
    keys = list(dict.fromkeys(k for p in params for k in p)) if params else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(COLUMNS) + keys)
    w.writeheader()
    for i, r in enumerate(rows):
        cells = dict(r, **({k: params[i].get(k, "") for k in keys} if params else {}))
        w.writerow({k: (repr(v) if isinstance(v, float) else _cell(v)) for k, v in cells.items()})
    return buf.getvalue()
