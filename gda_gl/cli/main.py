"""The ``gda-gl`` command line: the parser (one subcommand per entry of :func:`_commands`) and the exit.

Every subcommand turns bad input into one line on stderr naming the file and the problem, and exit
status 2 (:func:`gda_gl.session.errors.error_line`); no traceback reaches the user.  The subcommands
live in :mod:`.commands`, the checks of their inputs in :mod:`.inputs`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import warnings
from typing import Callable

from recorder._version import __version__

from gda_gl.session.errors import EXIT_BAD_INPUT, error_line, expected

from gda_gl.session.errors import UsageError, short as _short

from .diagnose import command as diagnose_command
from .commands import cmd_bench, cmd_check, cmd_compare, cmd_info, cmd_render, cmd_upgrade, cmd_view

log = logging.getLogger("gda_gl")


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``gda-gl CMD: error: ...`` and exit status 2, no usage block."""

    def error(self, message: str):  # noqa: D401 - argparse API
        msg = " ".join(str(message).split())
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {msg} (see '{self.prog} -h')\n")


def cmd_demo(args: argparse.Namespace) -> int:
    """``gda-gl demo``: record the demo runs, then open the window or render the PNGs (through :func:`main`)."""
    from pathlib import Path

    from .demo import record_demo
    from gda_gl.gl.backend import has_display

    out_dir = Path(args.out)
    try:
        if out_dir.exists() and not out_dir.is_dir():
            raise UsageError(f"--out {_short(args.out)}: exists and is not a directory")
    except OSError as exc:
        raise UsageError(f"--out {_short(args.out)}: cannot be used ({exc.strerror or exc})") from None
    runs = record_demo(args.out, sweep=args.sweep, quick=args.quick, quiet=args.quiet)
    from recorder.store import Recording

    from gda_gl.compose.summary import info_text

    for r in runs:
        with Recording(r.path) as rec:
            print(info_text(rec))
    paths = [str(r.path) for r in runs]
    if has_display() and not args.no_window:
        try:
            import PyQt6  # noqa: F401

            from gda_gl.explorer.app import run_viewer
        except ImportError:
            log.warning("no viewer (install the gui extra); rendering PNGs instead")
            run_viewer = None
        if run_viewer is not None:
            return run_viewer(paths)
    out = Path(args.out)
    pngs = [(["render", paths[1], "-o", str(out / "demo-cg-overview.png"), "--log"]),
            (["render", paths[1], "-o", str(out / "demo-cg-zoom.png"), "--log", "--range", "15:45",
              "--color-by", "efficiency"]),
            (["render", paths[1], "-o", str(out / "demo-cg-detail.png"), "--detail", "21"]),
            (["render", paths[0], "-o", str(out / "demo-sgd-zoom.png"), "--range", "100:130",
              "--color-by", "step_class"]),
            (["render", paths[0], "-o", str(out / "demo-sgd-series.png"), "--log", "--x-axis", "epoch", "--series",
              "val_loss", "val_accuracy", "lr"]),
            (["render", paths[0], paths[1], "-o", str(out / "demo-compare.png"), "--log", "--x-axis", "epoch"])]
    if args.sweep:
        sweep = [p for p in paths if "sweep" in p] + [paths[0]]
        pngs.append(["compare", *sweep, "--png", str(out / "demo-sweep-compare.png"), "--log",
                     "--csv", str(out / "demo-sweep.csv")])
    for argv in pngs:
        rc = main(argv)
        if rc:
            return rc
    return 0


def _a(*flags, **kw) -> tuple[tuple, dict]:
    """One argument of a subcommand (``add_argument``'s parameters)."""
    return flags, kw


_RUNS = _a("runs", nargs="+", metavar="RUN.gda")


def _commands() -> list[tuple[str, str, str, Callable, list]]:
    """Every subcommand: (name, one-line help, description, function, its arguments)."""
    from gda_gl.compose.state import X_AXES

    from .sweep import SELECT_ARGS, color_by_arg

    range_help = "iterations to show (default: all; in the --x-axis's units)"
    figure = [_a("--log", action="store_true", help="logarithmic loss axis"),
              _a("--x-axis", choices=X_AXES, help="x axis: iteration (default), epoch (fractional), samples seen, "
                                                  "wall_time (s), forward_passes (line searches included)"),
              _a("--normalize", action="store_true", help="each run's loss over its own first loss (runs of "
                                                           "different scales on one axis)"),
              _a("--ylim", metavar="A:B", help="the loss axis from A to B (default: fitted to what is drawn)"),
              *SELECT_ARGS]
    runs_arg = _a("runs", nargs="+", metavar="RUN", help="recordings (RUN.gda) or folders of them (every *.gda "
                                                         "directly in a folder)")
    return [
        ("info", "summarise recordings", "Summarise one or more recordings.", cmd_info, [runs_arg, *SELECT_ARGS]),
        ("check", "verify recordings: every block and every pyramid bucket",
         "Verify recordings completely: decode every block, rebuild the level-of-detail pyramid from the rows and "
         "compare every stored bucket with it, read every event. One line per file; exit status 2 at the first "
         "problem.", cmd_check, [_RUNS]),
        ("upgrade", "write a schema-2 copy of an older recording",
         "Write a schema-2 copy of a recording (compressed blocks, stored level-of-detail pyramid). The source is "
         "never modified; the target must not exist.", cmd_upgrade,
         [_a("source", metavar="OLD.gda"), _a("target", metavar="NEW.gda")]),
        ("render", "draw recordings to a PNG (or SVG, PDF), no display needed",
         "Render the enhanced training error curve (or one line search) to a PNG, SVG or PDF.", cmd_render,
         [runs_arg, _a("-o", "--output", required=True, metavar="OUT.png", help="OUT.png, OUT.svg or OUT.pdf"),
          _a("--range", metavar="A:B", help=range_help),
          _a("--size", default="1600x900", metavar="WxH", help="image size in pixels (default 1600x900)"), *figure,
          _a("--color-by", type=color_by_arg, metavar="NAME", help="colour steps by a line statistic (efficiency, "
                                                                   "step_class, ...) or runs by a hyperparameter "
                                                                   "(config.lr: a colour bar, log past 1.5 decades)"),
          _a("--highlight", metavar="COND", help="fade iterations not matching COND (overshoot, undershoot, failed, "
                                                 "nonfinite, efficiency<0.5)"),
          _a("--smooth", metavar="S", help="also draw the classic curve smoothed with an EMA of weight S "
                                           "(0 <= S < 1, TensorBoard's smoothing), e.g. 0.9"),
          _a("--series", nargs="+", metavar="NAME", help="logged series to draw: names with 'loss' on the curve's "
                                                         "axes, the others in panels below it"),
          _a("--series-log", nargs="+", metavar="NAME", help="series panels with a log y axis"),
          _a("--detail", type=int, metavar="K", help="render the line search of iteration K instead"),
          _a("--finding", type=int, metavar="N", help="show finding N of 'gda-gl diagnose' (its numbering)"),
          _a("--state", metavar="F", help="a view state saved by 'gda-gl view' (JSON)")]),
        ("demo", "record demo runs on scikit-learn's digits and show them",
         "Train a small MLP on scikit-learn's bundled digits with SGD and with CG (line searches), record both, then "
         "open the viewer (display) or render PNGs.", cmd_demo,
         [_a("--out", default="runs", help="directory for the recordings and PNGs (default runs/)"),
          _a("--sweep", action="store_true", help="also record SGD at three learning rates"),
          _a("--quick", action="store_true", help="fewer epochs (for smoke tests)"),
          _a("--quiet", action="store_true", help="no progress bars"),
          _a("--no-window", action="store_true", help="render PNGs even when a display exists")]),
        ("view", "open the interactive explorer (needs a display and the gui extra)",
         "Explore recordings: overview first, zoom and filter, details on demand. Press ? in the window for every "
         "control.", cmd_view,
         [runs_arg, *SELECT_ARGS,
          _a("--follow", action="store_true", help="follow a run that is still being recorded (a file that does not "
                                                   "exist yet is waited for)"),
          _a("--fps", action="store_true", help="show the frame-time readout (key R toggles it)"),
          _a("--state", metavar="F", help="restore the view from F (JSON) and save it back on exit or S"),
          _a("--exit-after", type=float, metavar="S", help=argparse.SUPPRESS),
          _a("--screenshot", metavar="PNG", help=argparse.SUPPRESS)]),
        ("compare", "compare runs: a table per run, optionally CSV and a PNG side by side",
         "Compare recordings (e.g. a learning-rate or mini-batch sweep): iterations, final loss, mean line-search "
         "evaluations, loose ends per 100 iterations, over/undershooting shares, median step efficiency, and the "
         "hyperparameters that differ.", cmd_compare,
         [runs_arg, _a("--csv", metavar="F", help="also write the table as CSV"),
          _a("--png", metavar="F", help="also draw the runs sharing the x axis (stacked, or a grid of small "
                                        "multiples for more than 6 runs)"),
          _a("--svg", metavar="F", help="the same figure as SVG"), _a("--pdf", metavar="F", help="... and as PDF"),
          _a("--shared-y", action="store_true", help="one y range for every run's cell (default: each its own)"),
          _a("--scatter", metavar="STAT:PARAM", help="draw into the figure one statistic against one hyperparameter, "
                                                     "e.g. overshoot:lr or loose_ends:config.K"),
          _a("--size", default="1600x1000", metavar="WxH"), *figure, _a("--range", metavar="A:B", help=range_help)]),
        diagnose_command(_a),
        ("bench", "benchmark this machine (tables, JSON and Markdown in --out)",
         "Measure probe, store, level-of-detail, render and scale speed on this machine, as ratios against floors "
         "measured in the same run. Writes gda-gl-bench.json and gda-gl-bench.md into --out.", cmd_bench,
         [_a("--quick", action="store_true", help="smaller sizes (under 2 minutes on 2 cores)"),
          _a("--only", metavar="NAME[,NAME]", help="suites: probe, store, lod, render, scale"),
          _a("--out", default=".", metavar="DIR", help="folder for the results (default: the current folder)"),
          _a("--json", metavar="F", help="write the JSON here instead of DIR/gda-gl-bench.json")]),
    ]


def build_parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per entry of :func:`_commands`."""
    p = _Parser(
        prog="gda-gl",
        description="Gradient descent analysis: record phi_k(alpha) = L(w_k + alpha d_k) during PyTorch "
                    "training and draw the enhanced training error curve.")
    p.add_argument("--version", action="version", version=f"gda-gl {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_, description, func, arguments in _commands():
        q = sub.add_parser(name, help=help_, description=description)
        for flags, kw in arguments:
            q.add_argument(*flags, **kw)
        q.set_defaults(func=func)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a one-line usage error (status 2)
        return exc.code if isinstance(exc.code, int) else EXIT_BAD_INPUT
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        with warnings.catch_warnings():
            if not args.verbose:  # numpy's overflow/invalid-value notes on extreme values are not for the user
                warnings.simplefilter("ignore", RuntimeWarning)
            return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("gda-gl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:
        line = error_line(exc, getattr(args, "runs", None) or [])
        if expected(exc):
            print(line, file=sys.stderr)
            return EXIT_BAD_INPUT
        # a bug: one line, the traceback only with -v
        if args.verbose:
            log.error("traceback of the unexpected error", exc_info=True)
        print(f"{line} (run with -v for details)", file=sys.stderr)
        return 1
