"""``gda-gl diagnose RUN.gda... [--json]`` and ``gda-gl render --finding N``.

The detection is the recorder's (:mod:`recorder.diagnose`), the numbering and the view of a finding
:mod:`gda_gl.compose.findings`'; this module is the command line around them.
"""

from __future__ import annotations

import argparse

from gda_gl.session.errors import UsageError


def command(arg) -> tuple:
    """The ``diagnose`` entry of the CLI's command table (``arg`` builds one argument)."""
    return ("diagnose", "step-size verdicts, spikes and their causes, and other findings",
            "Read what the measured lines say: per window of the run whether the steps were too long, about "
            "right or too short (with how many steps agree), each spike of the training loss with its cause "
            "(batch, step, curvature, unknown) and the numbers that decided, divergence, plateaus, failed or "
            "skipped probes and learning-rate changes. Every entry is numbered: gda-gl render --finding N shows it.",
            cmd_diagnose, [arg("runs", nargs="+", metavar="RUN.gda"),
                           arg("--json", action="store_true", help="print JSON instead of the table")])


def cmd_diagnose(args: argparse.Namespace) -> int:
    """Print the reports; exit 2 with one line per run that has nothing to say."""
    import sys

    from recorder.diagnose import diagnose_paths
    from recorder.diagnose.report import to_json, to_table

    reports, problems = diagnose_paths(args.runs)
    print(to_json(reports) if args.json else to_table(reports))
    for line in problems:
        print(f"gda-gl: {line}", file=sys.stderr)
    return 2 if problems else 0


def apply_finding(state, runs, n: int | None) -> None:
    """Point ``state`` at finding ``n`` of ``runs`` (the iteration axis: a finding's span is in iterations);
    nothing when ``n`` is None.

    Raises
    ------
    UsageError
        ``n`` is not the number of a finding
    """
    if n is None:
        return
    from gda_gl.compose.findings import findings_of

    found = findings_of([r.windows.recording for r in runs])
    if not 1 <= n <= len(found):
        raise UsageError(f"--finding {n}: these runs have {len(found)} findings (gda-gl diagnose numbers them "
                         "from 1)")
    f = found[n - 1]
    state.x_axis, state.x_range, state.selected = "iteration", f.x_range, f.iteration
