"""``python -m benchmarks``: the packaged suites (:mod:`gda_gl.bench`) with the repository's peer
comparisons (:mod:`benchmarks.peers`), writing JSON and refreshing ``benchmarks/RESULTS.md``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from gda_gl.bench import SUITES
from gda_gl.bench.runner import NOTES, command_line, parse_only, run_suites, write_json, write_markdown

from . import peers

__all__ = ["RESULTS", "SUITES", "main"]

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def main(argv: list[str] | None = None) -> int:
    """Run the suites named by ``--only`` (all by default); returns the exit status."""
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="smaller sizes; under 2 minutes on 2 cores")
    p.add_argument("--only", help=f"comma-separated suites ({', '.join(SUITES)})")
    p.add_argument("--json", help="write the results as JSON to this file")
    p.add_argument("--no-results-md", action="store_true", help="do not rewrite benchmarks/RESULTS.md")
    args = p.parse_args(argv)
    names, unknown = parse_only(args.only)
    if unknown:
        print(f"python -m benchmarks: error: unknown suite(s) {', '.join(sorted(unknown))} (choose from "
              f"{', '.join(SUITES)})", file=sys.stderr)
        return 2
    out = run_suites(names, quick=args.quick, extend=peers.extend,
                     command=command_line("python -m benchmarks", args.quick, args.only))
    if args.json:
        write_json(out, args.json)
    if not args.no_results_md:
        write_markdown(out, RESULTS, notes=peers.notes(NOTES))
    print(f"\nall suites: {out['seconds']:.1f} s")
    return 0
