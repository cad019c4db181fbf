"""Quantities for comparing runs (the paper's hyperparameter analysis). Compute only, no drawing.

Per run (from the whole-run pyramid bucket, :func:`summary_from_bucket`; :func:`run_summary` is the
plain twin over every row): iterations, final loss (the classic curve's last value), mean
line-search evaluations, loose ends per 100 iterations (trial points beyond the accepted step),
shares of overshooting / undershooting steps among classified ones, and the **median** step
efficiency (:func:`median_efficiency`: one badly overshooting step, efficiency -2.7, moves a mean
but not the median).  The line-search columns (:data:`LINE_SEARCH_COLUMNS`) exist only for runs whose
optimizer searched (CG, L-BFGS with a line search, Armijo): for SGD they are "-" (empty in CSV), and
a comparison without any searching run leaves them out.  Beside them the run's hyperparameters
(:func:`hyperparameters`: optimizer, its settings, the probe's K and what the user logged with
``rec.log_config``); the table shows those that differ between the runs, each once (``initial_lr``
or ``lr`` repeating ``config.lr`` in every run is dropped, :func:`distinct_keys`).
"""

from __future__ import annotations

import csv
import io
import math

import numpy as np

from recorder import schema, stepgeom
from recorder.pyramid import classic_values
from recorder.store import Iterations

__all__ = ["run_summary", "summary_from_bucket", "COLUMNS", "LINE_SEARCH_COLUMNS", "STAT_KEYS", "format_table",
           "to_csv", "hyperparameters", "varying", "distinct_keys", "unique_names", "median_efficiency",
           "table_columns"]

COLUMNS = ("run", "iterations", "final loss", "mean line-search evals", "loose ends / 100 it", "overshoot share",
           "undershoot share", "median efficiency")
#: columns that only a run whose optimizer searched along the line has (None in the others' rows)
LINE_SEARCH_COLUMNS = ("mean line-search evals", "loose ends / 100 it")
#: runs up to this many rows get the exact median efficiency; longer ones the median of 16-row bucket means
MEDIAN_EXACT_ROWS = 1_000_000


def summary_from_bucket(name: str, top: dict | None, windows=None) -> dict:
    """The comparison row of a run from its whole-run pyramid bucket (O(1), whatever the run's length), and
    the median efficiency from ``windows`` (:func:`median_efficiency`; NaN without them).

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
    searching = bool(searched or int(g["trials"]))
    return {"run": name, "iterations": n, "final loss": float(g["cl_last"]),
            "mean line-search evals": (float(g["ls_evals:sum"]) / searched if searched else 0.0) if searching
            else None,
            "loose ends / 100 it": (100.0 * int(g["loose_ends"]) / n if n else math.nan) if searching else None,
            "overshoot share": int(g[f"step_class:{schema.CLASS_OVERSHOOT}"]) / classified if classified else math.nan,
            "undershoot share": int(g[f"step_class:{schema.CLASS_UNDERSHOOT}"]) / classified if classified
            else math.nan,
            "median efficiency": median_efficiency(windows) if windows is not None and eff_n else math.nan}


def median_efficiency(windows) -> float:
    """The median step efficiency of a run (its finite values): exact from the rows up to
    :data:`MEDIAN_EXACT_ROWS` rows, else the median of the finest pyramid buckets' means weighted by
    their counts (16 rows each), read from the stored pyramid without decoding phi."""
    n = windows.n_rows
    if n == 0:
        return math.nan
    if n <= MEDIAN_EXACT_ROWS:
        eff = np.asarray(windows.rows(-math.inf, math.inf)["efficiency"], np.float64)
        eff = eff[np.isfinite(eff)]
        return float(np.median(eff)) if len(eff) else math.nan
    b = windows.buckets_between(0, -math.inf, math.inf)
    cnt = np.asarray(b["efficiency:count"], np.float64)
    ok = cnt > 0
    if not ok.any():
        return math.nan
    means = np.asarray(b["efficiency:sum"], np.float64)[ok] / cnt[ok]
    order = np.argsort(means)
    cum = np.cumsum(cnt[ok][order])
    return float(means[order][np.searchsorted(cum, 0.5 * cum[-1])])


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
    searching = bool(len(searched) or (n and d.trial_offsets[-1] > d.trial_offsets[0]))
    return {"run": name, "iterations": n, "final loss": float(fin[-1]) if len(fin) else math.nan,
            "mean line-search evals": (float(searched.mean()) if len(searched) else 0.0) if searching else None,
            "loose ends / 100 it": (100.0 * loose / n if n else math.nan) if searching else None,
            "overshoot share": float(np.mean(classified == schema.CLASS_OVERSHOOT)) if len(classified) else math.nan,
            "undershoot share": float(np.mean(classified == schema.CLASS_UNDERSHOOT)) if len(classified) else math.nan,
            "median efficiency": float(np.median(eff)) if len(eff) else math.nan}


#: short names of the comparison statistics (``--scatter STAT:PARAM``)
STAT_KEYS = {"final_loss": "final loss", "ls_evals": "mean line-search evals", "loose_ends": "loose ends / 100 it",
             "overshoot": "overshoot share", "undershoot": "undershoot share", "efficiency": "median efficiency",
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


def distinct_keys(params: list[dict], keys: list[str]) -> list[str]:
    """``keys`` without those that repeat another kept key in every run (``initial_lr`` or the optimizer's ``lr``
    beside the user's ``config.lr``); the user's ``config.`` names are kept first, then the given order."""
    order = sorted(keys, key=lambda k: (not k.startswith("config."), keys.index(k)))
    kept: list[str] = []
    for k in order:
        col = [p.get(k, None) for p in params]
        if not any(col == [p.get(j, None) for p in params] for j in kept):
            kept.append(k)
    return [k for k in keys if k in kept]


def varying(params: list[dict]) -> tuple[list[str], dict]:
    """(keys whose value differs between runs or is missing in some, each once (:func:`distinct_keys`),
    {key: value} the same in every run)."""
    keys = list(dict.fromkeys(k for p in params for k in p))
    same = {k: params[0][k] for k in keys if all(k in p and p[k] == params[0][k] for p in params)}
    vary = [k for k in keys if k not in same or len(params) == 1]
    return (distinct_keys(params, vary) if len(params) > 1 else vary), same


def table_columns(rows: list[dict]) -> list[str]:
    """The statistics columns of a comparison: :data:`COLUMNS` less the line-search ones no run has."""
    return [c for c in COLUMNS if c not in LINE_SEARCH_COLUMNS or any(r.get(c) is not None for r in rows)]


def unique_names(names: list[str], paths: list[str]) -> list[str]:
    """Run names, with the file name added where two runs carry the same name."""
    from pathlib import Path

    counts = {n: names.count(n) for n in names}
    out = [n if counts[n] == 1 else f"{n} ({Path(p).name})" for n, p in zip(names, paths)]
    if len(set(out)) < len(out):  # same file names in different folders
        out = [n if counts[n] == 1 else f"{n} ({p})" for n, p in zip(names, paths)]
    return out


def _fmt(v) -> str:
    if v is None:  # a column the run's optimizer does not have (line-search numbers of SGD)
        return "-"
    if isinstance(v, float):
        return "n/a" if not math.isfinite(v) else f"{v:.4g}"
    return str(v)


def format_table(rows: list[dict], params: list[dict] | None = None) -> str:
    """The comparison as text: one line per run, the statistics, then the hyperparameters that differ
    between the runs (those the same in every run on a line above the table)."""
    head = []
    cols = table_columns(rows)
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
