"""Run the suites, print tables, write JSON and refresh benchmarks/RESULTS.md."""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import sys
import time
from pathlib import Path

from .common import machine, table

SUITES = ("probe", "store", "lod", "render", "scale")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"

NOTES = {
    "probe": "Probe strategies (batch 128; the floor is K plain forward passes; 'auto' is what the recorder picks "
             "after its one-time calibration) and the training slowdown per preset (benchmark CNN, batch 128, SGD).",
    "store": "Recording store: bulk and per-iteration appends, reading 1,000,000 iterations x 64 samples into numpy, "
             "against hand-rolled CSV / JSON lines (measured on 20k-100k rows, scaled per row) and one "
             "numpy.save/load (the floor).",
    "lod": "Level of detail: envelope + pyramid build against one numpy min/max pass, and live extension.",
    "scale": "Very long runs (issue 9): synthetic recordings written with the public RecordingWriter, then, each in a "
             "fresh process from process start: `gda-gl info`, `gda-gl render` to a PNG, and the explorer's first "
             "frame and the animated zoom from the whole run to one step (41 frames, controller + renderer on the "
             "offscreen target; cold = empty caches, warm = the same path again). Peak memory is the process's "
             "ru_maxrss; GL is Mesa llvmpipe (EGL surfaceless). Targets: info <= 0.3 s, render <= 2 s, <= 400 MB at 1e7; first frame <= 1.5 s, warm zoom "
             "frames <= 1.5x the overview frame, cold <= 150 ms, <= 600 MB at 3e7.",
    "render": "Frames at 1600x900 on the offscreen target (draw + read back): overview and a 200-iteration zoom, "
              "level of detail on, off (one plain GL line strip of every sample), and matplotlib Agg "
              "(defaults, path simplification on) drawing the same samples.",
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes; under 2 minutes on 2 cores")
    p.add_argument("--only", help=f"comma-separated suites ({', '.join(SUITES)})")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--no-results-md", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    names = SUITES if not args.only else tuple(s.strip() for s in args.only.split(","))
    unknown = set(names) - set(SUITES)
    if unknown:
        print(f"gda-gl bench: error: unknown suite(s) {', '.join(sorted(unknown))} (choose from "
              f"{', '.join(SUITES)})", file=sys.stderr)
        return 2
    out = {"date": dt.datetime.now().isoformat(timespec="seconds"), "quick": args.quick, "suites": {}}
    gl = None
    t_all = time.perf_counter()
    for name in names:
        t0 = time.perf_counter()
        mod = importlib.import_module(f"benchmarks.{name}")
        res = mod.run(quick=args.quick)
        gl = res.pop("_gl_renderer", gl)
        out["suites"][name] = {"seconds": time.perf_counter() - t0, "tables": res}
        print(f"\n== {name} ({time.perf_counter() - t0:.1f} s)")
        for title, rows in res.items():
            print(f"-- {title}")
            print(table(rows))
    out["machine"] = machine(gl)
    out["seconds"] = time.perf_counter() - t_all
    import os

    env = f"GDA_SCALE_SIZES={os.environ['GDA_SCALE_SIZES']} " if os.environ.get("GDA_SCALE_SIZES") else ""
    cmd = env + "python -m benchmarks" + (" --quick" if args.quick else "") + (f" --only {args.only}" if args.only else "")
    out["command"] = cmd
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    if not args.no_results_md:
        write_results_md(out)
    print(f"\nall suites: {out['seconds']:.1f} s")
    return 0


def write_results_md(out: dict) -> None:
    """Refresh the measured sections of RESULTS.md, keeping suites not rerun this time."""
    old = {}
    if RESULTS.exists():
        text = RESULTS.read_text()
        for part in text.split("\n## ")[1:]:
            head, _, body = part.partition("\n")
            old[head.strip()] = body
    m = out["machine"]
    lines = ["# Benchmark results", "",
             "Measured, never invented: each section says the command and machine that produced it. Ratios come "
             "from one run; absolute times drift on shared machines.", ""]
    sections = dict(old)
    for name, res in out["suites"].items():
        body = [f"Command: `{out['command']}` ({out['date']}, {res['seconds']:.0f} s). "
                f"Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}, vispy {m.get('vispy')}, "
                f"numpy {m.get('numpy')}, GL: {m.get('gl_renderer', 'n/a')}.", "", NOTES.get(name, ""), ""]
        for title, rows in res["tables"].items():
            body += [f"### {title}", "", table(rows)]
        sections[name] = "\n".join(body) + "\n"
    for name in list(SUITES) + sorted(set(sections) - set(SUITES)):
        if name in sections:
            lines += [f"## {name}", sections[name].strip("\n"), ""]
    RESULTS.write_text("\n".join(lines).rstrip("\n") + "\n")
