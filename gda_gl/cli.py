"""The ``gda-gl`` command line.

Every subcommand turns bad input into one line on stderr naming the file and
the problem, and exit status 2; no traceback reaches the user.  Heavy imports
(torch, VisPy) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import logging
import sys

from recorder._version import __version__
from recorder.errors import RecordingError

log = logging.getLogger("gda_gl")

EXIT_BAD_INPUT = 2


class UsageError(Exception):
    """Bad command-line input that is not about a recording file."""


def _cmd_info(args: argparse.Namespace) -> int:
    from recorder.store import Recording

    from .summary import info_text

    for i, path in enumerate(args.runs):
        with Recording(path) as rec:
            if i:
                print()
            print(info_text(rec))
    return 0


def _parse_range(text: str) -> tuple[float | None, float | None]:
    try:
        a, b = text.split(":")
        lo = float(a) if a.strip() else None
        hi = float(b) if b.strip() else None
    except ValueError:
        raise UsageError(f"--range {text!r}: expected A:B (iterations, either side may be empty)") from None
    if lo is not None and hi is not None and hi <= lo:
        raise UsageError(f"--range {text!r}: the end must be larger than the start")
    return lo, hi


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r}: expected WIDTHxHEIGHT, e.g. 1600x900") from None
    if not (64 <= w <= 16384 and 64 <= h <= 16384):
        raise UsageError(f"--size {text!r}: width and height must be within 64..16384")
    return w, h


def load_runs(paths: list[str]):
    """Open recordings and prepare them for drawing (one colour each)."""
    from recorder.errors import RecordingError
    from recorder.store import open_recordings

    from .scene import RUN_COLORS, RunData

    recs = open_recordings(paths)
    runs = []
    try:
        for i, rec in enumerate(recs):
            data = rec.read()
            if len(data) == 0:
                raise RecordingError(rec.path, f"recording holds no iterations (writer {rec.writer_state()})")
            run = RunData(data, name=rec.name, color=RUN_COLORS[i % len(RUN_COLORS)])
            run.path = rec.path
            runs.append(run)
    finally:
        for rec in recs:
            rec.close()
    return runs


def view_state_from_args(args: argparse.Namespace):
    """A ViewState from --state plus the command-line overrides."""
    from .state import ViewState

    if getattr(args, "state", None):
        try:
            st = ViewState.load(args.state)
        except OSError as exc:
            raise UsageError(f"{args.state}: cannot read the view state ({exc.strerror or exc})") from None
        except ValueError as exc:
            raise UsageError(f"{args.state}: not a view state ({exc})") from None
    else:
        st = ViewState()
    if getattr(args, "range", None):
        lo, hi = _parse_range(args.range)
        x0, x1 = st.x_range or (None, None)
        st.x_range = (lo if lo is not None else x0, hi if hi is not None else x1)
    if getattr(args, "log", False):
        st.log_y = True
    if getattr(args, "color_by", None):
        st.color_by = args.color_by
    if getattr(args, "highlight", None):
        st.highlight = args.highlight
    return st


def _cmd_render(args: argparse.Namespace) -> int:
    import time

    t0 = time.perf_counter()
    size = _parse_size(args.size)
    state = view_state_from_args(args)
    runs = load_runs(args.runs)
    if state.x_range is not None and None in state.x_range:
        spans = [r.x_span for r in runs]
        lo = state.x_range[0] if state.x_range[0] is not None else min(s[0] for s in spans)
        hi = state.x_range[1] if state.x_range[1] is not None else max(s[1] for s in spans)
        if hi <= lo:
            raise UsageError(f"--range {args.range!r} is empty for these runs ({lo:g}..{hi:g})")
        state.x_range = (lo, hi)
    if state.highlight:
        from .scene import highlight_mask

        try:
            highlight_mask(runs[0].data, state.highlight)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    from .export import Offscreen, save_png
    from .gl.backend import BackendError
    from .render import CurveRenderer, Layout

    try:
        target = Offscreen(*size)
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    try:
        with target:
            renderer = CurveRenderer()
            if args.detail is not None:
                from .detail import draw_detail

                draw_detail(renderer, runs[0], args.detail, Layout.for_size(*size, colorbar=False), log_y=state.log_y)
            else:
                renderer.draw(runs, state, Layout.for_size(*size, colorbar=state.color_by != "none"))
        image = target.read()
    finally:
        target.close()
    out = save_png(image, args.output)
    log.info("rendered %s in %.2f s", out, time.perf_counter() - t0)
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .demo import record_demo
    from .gl.backend import has_display

    runs = record_demo(args.out, sweep=args.sweep, quick=args.quick, quiet=args.quiet)
    from recorder.store import Recording

    from .summary import info_text

    for r in runs:
        with Recording(r.path) as rec:
            print(info_text(rec))
    paths = [str(r.path) for r in runs]
    if has_display() and not args.no_window:
        try:
            import PyQt6  # noqa: F401

            from .explorer.app import run_viewer
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
            (["render", paths[0], paths[1], "-o", str(out / "demo-compare.png"), "--log"])]
    if args.sweep:
        sweep = [p for p in paths if "sweep" in p] + [paths[0]]
        pngs.append(["compare", *sweep, "--png", str(out / "demo-sweep-compare.png"), "--log",
                     "--csv", str(out / "demo-sweep.csv")])
    for argv in pngs:
        rc = main(argv)
        if rc:
            return rc
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .compare import format_table, run_summary, to_csv

    runs = load_runs(args.runs)
    rows = [run_summary(r.name, r.data) for r in runs]
    print(format_table(rows))
    if args.csv:
        Path(args.csv).write_text(to_csv(rows))
        print(f"wrote {args.csv}")
    if args.png:
        from .export import Offscreen, save_png
        from .explorer.stacked import draw_stacked

        size = _parse_size(args.size)
        target = Offscreen(*size)
        try:
            with target:
                draw_stacked(runs, view_state_from_args(args), size)
            save_png(target.read(), args.png)
        finally:
            target.close()
        print(f"wrote {args.png}")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from .gl.backend import has_display

    if not has_display() and not __import__("os").environ.get("GDA_GL_BACKEND"):
        raise UsageError("no display (DISPLAY / WAYLAND_DISPLAY unset): use 'gda-gl render' for PNGs, "
                         "or run under xvfb-run")
    try:
        from .explorer.app import run_viewer
        import PyQt6  # noqa: F401
    except ImportError:
        raise UsageError("the viewer needs the gui extra: pip install 'gda-gl[gui]'") from None
    for p in args.runs:  # validate every file before a window opens
        from recorder.store import Recording

        Recording(p).close()
    if args.state:
        from .state import ViewState

        from pathlib import Path

        if Path(args.state).exists():
            try:
                ViewState.load(args.state)
            except ValueError as exc:
                raise UsageError(f"{args.state}: not a view state ({exc})") from None
    return run_viewer(args.runs, follow=args.follow, state_file=args.state, exit_after=args.exit_after,
                      screenshot=args.screenshot)


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        from benchmarks.runner import main as bench_main
    except ImportError:
        raise UsageError("the benchmarks package is not installed (run from a checkout: python -m benchmarks)") from None
    argv = (["--quick"] if args.quick else []) + (["--only", args.only] if args.only else []) + \
        (["--json", args.json] if args.json else [])
    return bench_main(argv)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gda-gl",
        description="Gradient descent analysis: record phi_k(alpha) = L(w_k + alpha d_k) during PyTorch "
                    "training and draw the enhanced training error curve.")
    p.add_argument("--version", action="version", version=f"gda-gl {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress and details")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    q = sub.add_parser("info", help="summarise recordings", description="Summarise one or more recordings.")
    q.add_argument("runs", nargs="+", metavar="RUN.gda")
    q.set_defaults(func=_cmd_info)

    from .state import COLOR_BY_CHOICES

    q = sub.add_parser("render", help="draw recordings to a PNG, no display needed",
                       description="Render the enhanced training error curve (or one line search) to a PNG.")
    q.add_argument("runs", nargs="+", metavar="RUN.gda", help="one or more recordings (overlaid)")
    q.add_argument("-o", "--output", required=True, metavar="OUT.png")
    q.add_argument("--range", metavar="A:B", help="iterations to show (default: all)")
    q.add_argument("--size", default="1600x900", metavar="WxH", help="image size in pixels (default 1600x900)")
    q.add_argument("--log", action="store_true", help="logarithmic loss axis")
    q.add_argument("--color-by", choices=COLOR_BY_CHOICES, help="colour segments by a line statistic")
    q.add_argument("--highlight", metavar="COND", help="fade iterations not matching COND "
                                                         "(overshoot, undershoot, failed, nonfinite, efficiency<0.5)")
    q.add_argument("--detail", type=int, metavar="K", help="render the line search of iteration K instead")
    q.add_argument("--state", metavar="F", help="a view state saved by 'gda-gl view' (JSON)")
    q.set_defaults(func=_cmd_render)

    q = sub.add_parser("demo", help="record demo runs on scikit-learn's digits and show them",
                       description="Train a small MLP on scikit-learn's bundled digits with SGD and with CG "
                                   "(line searches), record both, then open the viewer (display) or render PNGs.")
    q.add_argument("--out", default="runs", help="directory for the recordings and PNGs (default runs/)")
    q.add_argument("--sweep", action="store_true", help="also record SGD at three learning rates")
    q.add_argument("--quick", action="store_true", help="fewer epochs (for smoke tests)")
    q.add_argument("--quiet", action="store_true", help="no progress bars")
    q.add_argument("--no-window", action="store_true", help="render PNGs even when a display exists")
    q.set_defaults(func=_cmd_demo)

    q = sub.add_parser("view", help="open the interactive explorer (needs a display and the gui extra)",
                       description="Explore recordings: overview first, zoom and filter, details on demand. "
                                   "Press ? in the window for every control.")
    q.add_argument("runs", nargs="+", metavar="RUN.gda")
    q.add_argument("--follow", action="store_true", help="follow a run that is still being recorded")
    q.add_argument("--state", metavar="F", help="restore the view from F (JSON) and save it back on exit or S")
    q.add_argument("--exit-after", type=float, metavar="S", help=argparse.SUPPRESS)
    q.add_argument("--screenshot", metavar="PNG", help=argparse.SUPPRESS)
    q.set_defaults(func=_cmd_view)

    q = sub.add_parser("compare", help="compare runs: a table per run, optionally CSV and a PNG side by side",
                       description="Compare recordings (e.g. a learning-rate or mini-batch sweep): iterations, "
                                   "final loss, mean line-search evaluations, loose ends per 100 iterations, "
                                   "over/undershooting shares, mean step efficiency.")
    q.add_argument("runs", nargs="+", metavar="RUN.gda")
    q.add_argument("--csv", metavar="F", help="also write the table as CSV")
    q.add_argument("--png", metavar="F", help="also draw the runs stacked, sharing the x axis")
    q.add_argument("--size", default="1600x1000", metavar="WxH")
    q.add_argument("--log", action="store_true", help="logarithmic loss axis in --png")
    q.add_argument("--range", metavar="A:B", help="iterations to show in --png")
    q.set_defaults(func=_cmd_compare)

    q = sub.add_parser("bench", help="run the benchmarks (tables, JSON, benchmarks/RESULTS.md)",
                       description="Measure probe, store, level-of-detail and render speed against the "
                                   "alternatives, as ratios from one run.")
    q.add_argument("--quick", action="store_true", help="smaller sizes (under 2 minutes on 2 cores)")
    q.add_argument("--only", metavar="NAME[,NAME]", help="suites: probe, store, lod, render")
    q.add_argument("--json", metavar="F", help="write results as JSON")
    q.set_defaults(func=_cmd_bench)

    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    try:
        return int(args.func(args) or 0)
    except RecordingError as exc:
        print(f"gda-gl: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except UsageError as exc:
        print(f"gda-gl: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("gda-gl: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
