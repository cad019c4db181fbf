"""The diagnosis as JSON (``--json``) and as a readable table, and the command line (``gda-gl diagnose``).

JSON: ``{"runs": [{"run": NAME, "step_size": [{"start", "stop", "verdict", "factor", "steps", "agree",
...}], "spikes": [{"iteration", "rise", "cause", "evidence", ...}], "findings": [{"kind", "start",
"stop", "text"}]}]}``: iterations, ``start`` inclusive, ``stop`` exclusive.  Step-size entries also say
``resolution`` (the factor's granularity), ``bound`` (``"lower"``: the factor is at least the value),
``source`` (rows or pyramid) and, for ``cannot_say``, ``reason``; every entry of ``step_size`` and
``spikes`` carries its ``kind`` (``"step_size"``, ``"spike"``) so one entry read alone (as
``rec.on_finding`` passes it) says what it is.  The table numbers every entry (``#N``) in the order
``gda-gl render --finding N`` counts them.
"""

from __future__ import annotations

import argparse
import json
import sys

from .engine import numbered

_VERDICT_TEXT = {"too_long": "too long", "ok": "about right", "too_short": "too short", "cannot_say": "cannot say"}


def to_json(reports: list[dict]) -> str:
    """The reports as the ``--json`` document."""
    return json.dumps({"runs": reports}, indent=1, allow_nan=False)


def _factor_text(e: dict) -> str:
    if e["factor"] is None:
        return "-"
    s = (">= " if e.get("bound") == "lower" else "") + f"{e['factor']:.3g}"
    return s + (f" (+-{e['resolution']:.2g})" if e.get("resolution") else "")


def _span(start: int, stop: int) -> str:
    return f"at {start}" if stop == start + 1 else f"{start}..{stop - 1}"


def entry_line(section: str, e: dict) -> str:
    """One entry as a line of the table (also the viewer's findings list)."""
    if section == "step_size":
        if e["verdict"] == "cannot_say":
            return f"step size {_span(e['start'], e['stop'])}: cannot say ({e.get('reason', '')})"
        agree = f", {e['agree']:.0%} of them agree" if e.get("agree") is not None else ""
        return (f"step size {_span(e['start'], e['stop'])}: {_VERDICT_TEXT[e['verdict']]}, factor "
                f"{_factor_text(e)} over {e['steps']} steps{agree}")
    if section == "spikes":
        ev = e.get("evidence") or {}
        keys = ("loss", "baseline", "prev_phi0", "prev_phi1", "phi0", "step_ratio", "lr_ratio", "curvature_ratio")
        nums = ", ".join(f"{k} {ev[k]:.4g}" for k in keys if isinstance(ev.get(k), (int, float)))
        why = f"; {ev['why']}" if ev.get("why") else ""
        return f"spike at {e['iteration']}: +{e['rise']:.4g}, cause {e['cause']} ({nums}{why})"
    return f"{e['kind']} {_span(e['start'], e['stop'])}: {e['text']}"


def finding_line(f: dict) -> str:
    """One entry read alone (as ``rec.on_finding`` passes it) as a line: its ``kind`` says its section."""
    section = {"spike": "spikes", "step_size": "step_size"}.get(f.get("kind"), "findings")
    return entry_line(section, f)


def to_table(reports: list[dict]) -> str:
    """The reports as readable text, every entry numbered."""
    out, current = [], None
    for n, r, section, e in numbered(reports):
        if r != current:
            current = r
            out.append(f"== {reports[r]['run']}")
        out.append(f"#{n:<4d} {entry_line(section, e)}")
    for rep in reports:
        if not any(rep[s] for s in ("step_size", "spikes", "findings")):
            out.append(f"== {rep['run']}: nothing found")
    return "\n".join(out)


def main(argv=None, prog: str = "gda-gl diagnose") -> int:
    """``gda-gl diagnose RUN.gda... [--json]``: exit 0, or 2 with one line per file that has nothing to say."""
    from ..errors import RecordingError
    from . import diagnose_paths

    ap = argparse.ArgumentParser(prog=prog, description="step-size verdicts, spikes and their causes, and other "
                                                        "findings of recorded runs")
    ap.add_argument("runs", nargs="+", help="recordings (*.gda), reported in the order given")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    ap.add_argument("--read", choices=("rows", "pyramid"), default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    try:
        reports, problems = diagnose_paths(args.runs, path=args.read)
    except RecordingError as exc:
        print(f"{prog.split()[0]}: error: {exc}", file=sys.stderr)
        return 2
    print(to_json(reports) if args.json else to_table(reports))
    for line in problems:
        print(f"{prog.split()[0]}: {line}", file=sys.stderr)
    return 2 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
