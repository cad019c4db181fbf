"""Run the suites, print a table per suite, write the results as JSON and Markdown (``gda-gl bench``).

The repository's ``python -m benchmarks`` runs the same suites through :func:`run_suites`, adding its
peer comparisons with the ``extend`` hook and writing ``benchmarks/RESULTS.md`` with
:func:`write_markdown`.  Nothing here writes next to the installed package: results go to the folder
the caller names.
"""

from __future__ import annotations

import datetime as dt
import importlib
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

from . import SUITES
from .common import machine, table

#: what each suite measures, the paragraph above its tables in the Markdown report
NOTES = {
    "probe": "Probe strategies (batch 128; the floor is K plain forward passes; 'auto' is what the recorder picks "
             "after its one-time calibration) and, per model, the training slowdown of each preset with its "
             "forwards per step, its time over those forwards and its agreement with dense "
             "(gda_gl/bench/probe_cost.py says how each column is measured).",
    "store": "Recording store: bulk and per-iteration appends, reading 1,000,000 iterations x 64 samples into numpy, "
             "against hand-rolled CSV / JSON lines (measured on 20k-100k rows, scaled per row) and one "
             "numpy.save/load (the floor).",
    "lod": "Level of detail: envelope + pyramid build against one numpy min/max pass, and live extension.",
    "scale": "Very long runs (issue 9): synthetic recordings written with the public RecordingWriter, then, each in a "
             "fresh process from process start: `gda-gl info`, `gda-gl render` to a PNG, and the explorer's first "
             "frame and the animated zoom from the whole run to one step (41 frames, controller + renderer on the "
             "offscreen target; cold = empty caches, warm = the same path again). Peak memory is the process's "
             "own peak resident set (VmHWM); GL is Mesa llvmpipe (EGL surfaceless). Targets: info <= 0.3 s, "
             "render <= 2 s, <= 400 MB at 1e7; first frame <= 1.5 s, warm zoom "
             "frames <= 1.5x the overview frame, cold <= 150 ms, <= 600 MB at 3e7.",
    "render": "Frames at 1600x900 on the offscreen target (draw + read back): overview and a 200-iteration zoom, "
              "level of detail on and off (one plain GL line strip of every sample).",
}

#: the optional module a suite needs for the figures the README quotes (installed by the ``bench`` extra)
NEEDS = {"probe": "sklearn"}

#: file names written into the output folder by :func:`bench`
JSON_NAME, MARKDOWN_NAME = "gda-gl-bench.json", "gda-gl-bench.md"

#: ``extend(suite, tables, quick)`` may add rows or columns to a suite's tables before they are printed
Extend = Callable[[str, dict, bool], None]


def parse_only(only: str | None) -> tuple[list[str], list[str]]:
    """The suites named by ``--only`` (all when empty) and the names that are not suites.

    Parameters
    ----------
    only : str or None
        comma-separated suite names.

    Returns
    -------
    (list of str, list of str)
        the suites to run, in the order given, and the unknown names.
    """
    names = list(SUITES) if not only else [s.strip() for s in only.split(",") if s.strip()]
    return [s for s in names if s in SUITES], [s for s in names if s not in SUITES]


def missing_needs(names: Iterable[str]) -> dict[str, str]:
    """The suites among ``names`` whose optional module is not importable, with that module's name."""
    out = {}
    for suite in names:
        mod = NEEDS.get(suite)
        if mod is None:
            continue
        if mod in sys.modules:
            absent = sys.modules[mod] is None
        else:
            try:
                absent = importlib.util.find_spec(mod) is None
            except (ImportError, ValueError):
                absent = True
        if absent:
            out[suite] = mod
    return out


def command_line(prog: str, quick: bool, only: str | None) -> str:
    """The command that reproduces a run, with the ``GDA_SCALE_SIZES`` it ran under."""
    sizes = os.environ.get("GDA_SCALE_SIZES")
    env = f"GDA_SCALE_SIZES={sizes} " if sizes else ""
    return env + prog + (" --quick" if quick else "") + (f" --only {only}" if only else "")


def print_suite(name: str, tables: dict, seconds: float) -> None:
    """Print one suite's tables (the command's result output)."""
    print(f"\n== {name} ({seconds:.1f} s)")
    for title, rows in tables.items():
        print(f"-- {title}")
        print(table(rows))


def run_suites(names: Iterable[str], quick: bool = False, extend: Extend | None = None,
               command: str = "gda-gl bench") -> dict:
    """Run the named suites in turn, printing each one's tables as it finishes.

    Parameters
    ----------
    names : iterable of str
        suites from :data:`gda_gl.bench.SUITES`.
    quick : bool
        smaller sizes (under 2 minutes on 2 cores for all suites).
    extend : callable, optional
        ``extend(name, tables, quick)``, called on each suite's tables before they are printed.
    command : str
        the command line recorded in the results.

    Returns
    -------
    dict
        ``date``, ``quick``, ``suites`` (name -> ``seconds``, ``tables``), ``machine``, ``seconds``, ``command``.
    """
    out = {"date": dt.datetime.now().isoformat(timespec="seconds"), "quick": quick, "suites": {}}
    gl = None
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        tables = importlib.import_module(f"gda_gl.bench.{name}").run(quick=quick)
        gl = tables.pop("_gl_renderer", gl)
        if extend is not None:
            extend(name, tables, quick)
        out["suites"][name] = {"seconds": time.perf_counter() - t0, "tables": tables}
        print_suite(name, tables, time.perf_counter() - t0)
    out["machine"] = machine(gl)
    out["seconds"] = time.perf_counter() - t_all
    out["command"] = command
    return out


def write_json(out: dict, path: str | os.PathLike) -> Path:
    """Write the results of :func:`run_suites` as JSON, creating missing folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    return path


def _sections(path: Path) -> dict[str, str]:
    """The ``## name`` sections of an earlier report at ``path`` (empty when there is none)."""
    if not path.exists():
        return {}
    old = {}
    for part in path.read_text().split("\n## ")[1:]:
        head, _, body = part.partition("\n")
        old[head.strip()] = body
    return old


def write_markdown(out: dict, path: str | os.PathLike, notes: dict[str, str] | None = None) -> Path:
    """Write or refresh a Markdown report: one section per suite, keeping sections of suites not rerun.

    Parameters
    ----------
    out : dict
        results of :func:`run_suites`.
    path : path-like
        the report; an existing one keeps the sections of suites this run did not measure.
    notes : dict, optional
        suite -> the paragraph above its tables (default :data:`NOTES`).

    Returns
    -------
    Path
        ``path``.
    """
    path, notes = Path(path), NOTES if notes is None else notes
    m = out["machine"]
    sections = _sections(path)
    for name, res in out["suites"].items():
        body = [f"Command: `{out['command']}` ({out['date']}, {res['seconds']:.0f} s). "
                f"Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}, vispy {m.get('vispy')}, "
                f"numpy {m.get('numpy')}, GL: {m.get('gl_renderer', 'n/a')}.", "", notes.get(name, ""), ""]
        for title, rows in res["tables"].items():
            body += [f"### {title}", "", table(rows)]
        sections[name] = "\n".join(body) + "\n"
    lines = ["# Benchmark results", "",
             "Measured, never invented: each section says the command and machine that produced it. Ratios come "
             "from one run; absolute times drift on shared machines.", ""]
    for name in list(SUITES) + sorted(set(sections) - set(SUITES)):
        if name in sections:
            lines += [f"## {name}", sections[name].strip("\n"), ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines).rstrip("\n") + "\n")
    return path


def bench(names: Iterable[str], quick: bool = False, out_dir: str | os.PathLike = ".",
          json_path: str | os.PathLike | None = None, only: str | None = None) -> dict:
    """``gda-gl bench``: run the suites, then write ``gda-gl-bench.json`` and ``gda-gl-bench.md`` into ``out_dir``.

    Parameters
    ----------
    names : iterable of str
        the suites to run.
    quick : bool
        smaller sizes.
    out_dir : path-like
        the folder for the results (created when missing); default the current folder.
    json_path : path-like, optional
        write the JSON here instead of ``out_dir/gda-gl-bench.json``.
    only : str, optional
        the ``--only`` text, recorded in the command line of the results.

    Returns
    -------
    dict
        the results, with ``files``: the paths written.
    """
    out = run_suites(names, quick=quick, command=command_line("gda-gl bench", quick, only))
    out_dir = Path(out_dir)
    files = [write_json(out, json_path or out_dir / JSON_NAME), write_markdown(out, out_dir / MARKDOWN_NAME)]
    print(f"\nall suites: {out['seconds']:.1f} s")
    print("results: " + ", ".join(str(f) for f in files))
    out["files"] = [str(f) for f in files]
    return out
