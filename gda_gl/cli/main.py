"""The ``gda-gl`` command line.

Every subcommand turns bad input into one line on stderr naming the file and
the problem, and exit status 2; no traceback reaches the user.  Heavy imports
(torch, VisPy) happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import stat
import sys
import warnings
from pathlib import Path
from typing import Callable

from recorder._version import __version__

from gda_gl.session.checks import check_axis as _check_axis
from gda_gl.session.checks import check_highlight
from gda_gl.session.checks import check_series as _check_series
from gda_gl.session.errors import EXIT_BAD_INPUT, UsageError, error_line, expected, short as _short

log = logging.getLogger("gda_gl")

class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: ``gda-gl CMD: error: ...`` and exit status 2, no usage block."""

    def error(self, message: str):  # noqa: D401 - argparse API
        msg = " ".join(str(message).split())
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {msg} (see '{self.prog} -h')\n")


#: Largest image ``render`` and ``compare --png`` draw (pixels): memory grows with it.
MAX_PIXELS = 1 << 24

#: Iteration numbers are int64; a range end beyond this is certainly a typo.
_MAX_ITERATION = float(2 ** 62)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        try:
            return os.path.realpath(a) == os.path.realpath(b)
        except (OSError, ValueError):
            return False


def _looks_like(path: Path, kind: str) -> bool:
    """Whether an existing file is one gda-gl writes as ``kind`` (so replacing it loses nothing of anyone's)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    if kind == "png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "json":
        return head.lstrip().startswith(b"{") or head == b""
    from gda_gl.compose.compare import COLUMNS

    return head.startswith(",".join(COLUMNS).encode()) or head == b""


def check_output(text: str, kind: str, inputs=()) -> Path:
    """Validate an output path before any work is done.

    The name must end in ``.png`` / ``.csv``; an existing file may be replaced
    only if it is a regular file of that kind (a PNG, or a CSV table written by
    ``gda-gl compare``) and not one of the command's inputs; the nearest existing
    parent must be a writable directory (missing directories are created when
    writing).

    Raises
    ------
    UsageError
        one line naming the path and the problem.
    """
    p = Path(text)
    name = _short(text)
    want = "." + kind
    if p.suffix.lower() != want:
        got = f"'{p.suffix}'" if p.suffix else "no extension"
        raise UsageError(f"{name}: the output must be a {want} file (got {got})")
    for inp in inputs:
        if inp and _same_file(p, Path(inp)):
            raise UsageError(f"{name}: is an input of this command; refusing to write over it")
    try:
        st = os.stat(p)
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        raise UsageError(f"{name}: a parent is not a directory") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot be written ({exc.strerror or exc})") from None
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise UsageError(f"{name}: is a directory")
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{name}: is not a regular file (a FIFO, device or socket); refusing to write to it")
        if not _looks_like(p, kind):
            raise UsageError(f"{name}: exists and is not a {kind.upper()} written by gda-gl; refusing to "
                             "overwrite it")
    parent = p.parent if str(p.parent) else Path(".")
    try:
        while not parent.exists():
            parent = parent.parent
    except OSError as exc:
        raise UsageError(f"{name}: cannot be written ({exc.strerror or exc})") from None
    if not parent.is_dir():
        raise UsageError(f"{name}: {_short(parent)} is not a directory")
    try:
        ro = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        ro = False
    if ro or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{name}: cannot be written (no write permission in {_short(parent)})")
    return p


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (no half-written outputs)."""
    from gda_gl.session.files import write_file_atomic

    try:
        write_file_atomic(path, data)
    except OSError as exc:
        raise UsageError(f"{_short(path)}: cannot be written ({exc.strerror or exc})") from None


def _check_inputs(paths) -> None:
    """Refuse inputs that are not regular files before anything opens them (FIFOs would block)."""
    from recorder.fsutil import check_recording_file

    for p in paths:
        check_recording_file(p)


def _cmd_info(args: argparse.Namespace) -> int:
    from recorder.reader import Recording  # not recorder.store: info never needs the writer

    from gda_gl.compose.summary import info_text

    for i, path in enumerate(args.runs):
        with Recording(path) as rec:
            if i:
                print()
            print(info_text(rec))
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from recorder.check import check_recording

    _check_inputs(args.runs)
    for path in args.runs:
        bar = _progress_bar(path)
        try:
            print(check_recording(path, progress=bar.update if bar is not None else None).line())
        finally:
            if bar is not None:
                bar.close()  # cleared: the one result or error line stays alone
    return 0


def _progress_bar(path):
    """A progress bar (tqdm) on stderr while ``check`` reads ``path``, counting rows; only on a terminal (logs and
    pipes stay clean), else None."""
    if not sys.stderr.isatty():
        return None
    from tqdm import tqdm

    from recorder.store import Recording

    with Recording(path) as rec:
        total = rec.n_iterations()
    return tqdm(total=total, desc=_short(str(path)), unit="it", unit_scale=True, leave=False, file=sys.stderr,
                dynamic_ncols=True)


def _cmd_upgrade(args: argparse.Namespace) -> int:
    from recorder.upgrade import upgrade

    _check_inputs([args.source])
    rows = upgrade(args.source, args.target)
    print(f"wrote {args.target}: {rows:,} iterations, schema 2 with a stored pyramid ({args.source} unchanged)")
    return 0


def _parse_range(text: str) -> tuple[float | None, float | None]:
    try:
        a, b = text.split(":")
        lo = float(a) if a.strip() else None
        hi = float(b) if b.strip() else None
    except ValueError:
        raise UsageError(f"--range {text[:80]!r}: expected A:B (iterations, either side may be empty)") from None
    for v in (lo, hi):
        if v is not None and not (math.isfinite(v) and abs(v) <= _MAX_ITERATION):
            raise UsageError(f"--range {text[:80]!r}: iterations must be finite numbers within +-2**62")
    if lo is not None and hi is not None and hi <= lo:
        raise UsageError(f"--range {text!r}: the end must be larger than the start")
    return lo, hi


def _parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text[:80]!r}: expected WIDTHxHEIGHT, e.g. 1600x900") from None
    if not (64 <= w <= 16384 and 64 <= h <= 16384):
        raise UsageError(f"--size {text!r}: width and height must be within 64..16384")
    if w * h > MAX_PIXELS:
        raise UsageError(f"--size {text!r}: {w * h / 1e6:.0f} megapixels; at most {MAX_PIXELS / 1e6:.1f} "
                         "(e.g. 4096x4096)")
    return w, h


def view_state_from_args(args: argparse.Namespace):
    """A ViewState from --state plus the command-line overrides."""
    from gda_gl.compose.state import ViewState

    if getattr(args, "state", None):
        from gda_gl.session.files import load_state

        st = load_state(args.state)
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
    if getattr(args, "normalize", False):
        st.normalize = True
    if getattr(args, "x_axis", None):
        if st.x_axis != args.x_axis and not getattr(args, "range", None):
            st.x_range = None  # a saved range is in the saved axis's units
        st.x_axis = args.x_axis
    if getattr(args, "series", None):
        st.series = tuple(args.series)
    if getattr(args, "series_log", None):
        st.series_log = tuple(args.series_log)
        st.series = tuple(dict.fromkeys((st.series or ()) + st.series_log))
    if getattr(args, "smooth", None) is not None:
        try:
            v = float(args.smooth)
        except ValueError:
            v = math.nan
        if not 0.0 <= v < 1.0:
            raise UsageError(f"--smooth {args.smooth!r}: expected a number in [0, 1)")
        st.smoothing = v
    return st


def _draw_offscreen(size: tuple[int, int], draw: Callable[[], None]):
    """Run ``draw`` in an offscreen GL context of ``size`` and return the image (no GL: one-line UsageError)."""
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.backend import BackendError

    try:
        target = Offscreen(*size)
    except BackendError as exc:
        raise UsageError(str(exc)) from None
    try:
        with target:
            draw()
        return target.read()
    finally:
        target.close()


def _cmd_render(args: argparse.Namespace) -> int:
    import time

    t0 = time.perf_counter()
    size = _parse_size(args.size)
    _check_inputs(args.runs)
    output = check_output(args.output, "png", inputs=[*args.runs, args.state])
    state = view_state_from_args(args)
    from gda_gl.session.open import load_runs

    runs = load_runs(args.runs)
    _check_axis(runs, state)
    if state.x_range is not None and None in state.x_range:
        from gda_gl.compose.scene import runs_x_span

        span = runs_x_span(runs, state.x_axis)
        lo = state.x_range[0] if state.x_range[0] is not None else span[0]
        hi = state.x_range[1] if state.x_range[1] is not None else span[1]
        if hi <= lo:
            raise UsageError(f"--range {args.range!r} is empty for these runs ({lo:g}..{hi:g})")
        state.x_range = (lo, hi)
    _check_series(runs, state)
    check_highlight(state)
    from gda_gl.session.files import encode_png
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.compose.layout import Layout, figure_layout

    def draw():
        renderer = CurveRenderer()
        if args.detail is not None:
            from gda_gl.gl.detail import draw_detail

            draw_detail(renderer, runs[0], args.detail, Layout.for_size(*size, colorbar=False), log_y=state.log_y)
        else:
            renderer.draw(runs, state, figure_layout(*size, runs, state))

    image = _draw_offscreen(size, draw)
    check_output(args.output, "png", inputs=[*args.runs, args.state])  # again: drawing took a while
    write_atomic(output, encode_png(image))
    out = output
    log.info("rendered %s in %.2f s", out, time.perf_counter() - t0)
    print(f"wrote {out} ({size[0]}x{size[1]})")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
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


def _parse_scatter(text: str, stat_keys: dict) -> tuple[str, str]:
    """``STAT:PARAM`` -> (the comparison column, the hyperparameter name)."""
    stat, sep, param = text.partition(":")
    stat = stat_keys.get(stat.strip(), stat.strip())
    if not sep or not param.strip() or stat not in stat_keys.values():
        raise UsageError(f"--scatter {text!r}: expected STAT:PARAM with STAT one of {', '.join(stat_keys)}")
    return stat, param.strip()


def _cmd_compare(args: argparse.Namespace) -> int:

    from gda_gl.compose.compare import STAT_KEYS, format_table, hyperparameters, summary_from_bucket, to_csv

    _check_inputs(args.runs)
    scatter = _parse_scatter(args.scatter, STAT_KEYS) if args.scatter is not None else None  # '' is refused
    if scatter and not args.png:
        raise UsageError("--scatter draws into the --png file: give --png F")
    csv_out = check_output(args.csv, "csv", inputs=args.runs) if args.csv else None
    png_out = check_output(args.png, "png", inputs=args.runs) if args.png else None
    if csv_out is not None and png_out is not None and _same_file(csv_out, png_out):
        raise UsageError(f"{_short(args.csv)}: --csv and --png name the same file")
    size = _parse_size(args.size) if args.png else None
    state = view_state_from_args(args) if args.png else None
    from gda_gl.session.open import load_runs

    runs = load_runs(args.runs)
    if state is not None:
        _check_axis(runs, state)
    rows = [summary_from_bucket(r.name, r.windows.summary()) for r in runs]
    params = [hyperparameters(r.windows.recording.run, len(r.alphas)) for r in runs]
    print(format_table(rows, params))
    if csv_out is not None:
        write_atomic(csv_out, to_csv(rows, params).encode())
        print(f"wrote {args.csv}")
    if png_out is not None:
        from gda_gl.gl.comparefig import draw_runs, draw_scatter
        from gda_gl.session.files import encode_png

        def draw():
            if not scatter:
                draw_runs(runs, state, size, [r.name for r in runs])
                return
            stat, param = scatter
            try:
                draw_scatter([r[stat] for r in rows], [p.get(param) for p in params], [r.name for r in runs],
                             [r.color for r in runs], stat, param, size)
            except ValueError as exc:
                raise UsageError(f"--scatter: {exc}") from None

        image = _draw_offscreen(size, draw)
        check_output(args.png, "png", inputs=args.runs)
        write_atomic(png_out, encode_png(image))
        print(f"wrote {args.png}")
    return 0


def _cmd_view(args: argparse.Namespace) -> int:
    from gda_gl.gl.backend import has_display

    if not has_display() and not __import__("os").environ.get("GDA_GL_BACKEND"):
        raise UsageError("no display (DISPLAY / WAYLAND_DISPLAY unset): use 'gda-gl render' for PNGs, "
                         "or run under xvfb-run")
    try:
        from gda_gl.explorer.app import run_viewer
        import PyQt6  # noqa: F401
    except ImportError:
        raise UsageError("the viewer needs the gui extra: pip install 'gda-gl[gui]'") from None
    for p in args.runs:  # validate every file before a window opens
        from pathlib import Path

        from recorder.store import Recording

        if args.follow and not Path(p).exists():
            log.info("%s does not exist yet: the window waits for it (--follow)", p)
            continue
        Recording(p).close()
    if args.state:
        if Path(args.state).exists():
            from gda_gl.session.files import load_state

            load_state(args.state)
    return run_viewer(args.runs, follow=args.follow, state_file=args.state, exit_after=args.exit_after,
                      screenshot=args.screenshot, fps=args.fps)


def _cmd_bench(args: argparse.Namespace) -> int:
    from gda_gl.bench import SUITES
    from gda_gl.bench.runner import bench, missing_needs, parse_only

    suites, unknown = parse_only(args.only)
    if unknown:
        raise UsageError(f"--only: unknown suite(s) {', '.join(unknown)} (choose from {', '.join(SUITES)})")
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {_short(args.out)}: exists and is not a folder")
    missing = missing_needs(suites)
    if missing:
        print(f"gda-gl bench: skipped {', '.join(f'{s} (needs {m})' for s, m in missing.items())}: "
              f"pip install 'gda-gl[bench]' to run {'them' if len(missing) > 1 else 'it'}", file=sys.stderr)
    runnable = [s for s in suites if s not in missing]
    if not runnable:
        return 0
    if args.json:
        check_output(args.json, "json")
    bench(runnable, quick=args.quick, out_dir=out_dir, json_path=args.json,
          only=",".join(runnable) if args.only else None)
    return 0


def _a(*flags, **kw) -> tuple[tuple, dict]:
    """One argument of a subcommand (``add_argument``'s parameters)."""
    return flags, kw


_RUNS = _a("runs", nargs="+", metavar="RUN.gda")


def _commands() -> list[tuple[str, str, str, Callable, list]]:
    """Every subcommand: (name, one-line help, description, function, its arguments)."""
    from gda_gl.compose.state import COLOR_BY_CHOICES, X_AXES

    range_help = "iterations to show (default: all; in the --x-axis's units)"
    figure = [_a("--log", action="store_true", help="logarithmic loss axis"),
              _a("--x-axis", choices=X_AXES, help="x axis: iteration (default), epoch (fractional), samples seen, "
                                                  "wall_time (s), forward_passes (line searches included)"),
              _a("--normalize", action="store_true", help="each run's loss over its own first loss (runs of "
                                                           "different scales on one axis)")]
    return [
        ("info", "summarise recordings", "Summarise one or more recordings.", _cmd_info, [_RUNS]),
        ("check", "verify recordings: every block and every pyramid bucket",
         "Verify recordings completely: decode every block, rebuild the level-of-detail pyramid from the rows and "
         "compare every stored bucket with it, read every event. One line per file; exit status 2 at the first "
         "problem.", _cmd_check, [_RUNS]),
        ("upgrade", "write a schema-2 copy of an older recording",
         "Write a schema-2 copy of a recording (compressed blocks, stored level-of-detail pyramid). The source is "
         "never modified; the target must not exist.", _cmd_upgrade,
         [_a("source", metavar="OLD.gda"), _a("target", metavar="NEW.gda")]),
        ("render", "draw recordings to a PNG, no display needed",
         "Render the enhanced training error curve (or one line search) to a PNG.", _cmd_render,
         [_a("runs", nargs="+", metavar="RUN.gda", help="one or more recordings (overlaid)"),
          _a("-o", "--output", required=True, metavar="OUT.png"), _a("--range", metavar="A:B", help=range_help),
          _a("--size", default="1600x900", metavar="WxH", help="image size in pixels (default 1600x900)"), *figure,
          _a("--color-by", choices=COLOR_BY_CHOICES, help="colour segments by a line statistic"),
          _a("--highlight", metavar="COND", help="fade iterations not matching COND (overshoot, undershoot, failed, "
                                                 "nonfinite, efficiency<0.5)"),
          _a("--smooth", metavar="S", help="also draw the classic curve smoothed with an EMA of weight S "
                                           "(0 <= S < 1, TensorBoard's smoothing), e.g. 0.9"),
          _a("--series", nargs="+", metavar="NAME", help="logged series to draw: names with 'loss' on the curve's "
                                                         "axes, the others in panels below it"),
          _a("--series-log", nargs="+", metavar="NAME", help="series panels with a log y axis"),
          _a("--detail", type=int, metavar="K", help="render the line search of iteration K instead"),
          _a("--state", metavar="F", help="a view state saved by 'gda-gl view' (JSON)")]),
        ("demo", "record demo runs on scikit-learn's digits and show them",
         "Train a small MLP on scikit-learn's bundled digits with SGD and with CG (line searches), record both, then "
         "open the viewer (display) or render PNGs.", _cmd_demo,
         [_a("--out", default="runs", help="directory for the recordings and PNGs (default runs/)"),
          _a("--sweep", action="store_true", help="also record SGD at three learning rates"),
          _a("--quick", action="store_true", help="fewer epochs (for smoke tests)"),
          _a("--quiet", action="store_true", help="no progress bars"),
          _a("--no-window", action="store_true", help="render PNGs even when a display exists")]),
        ("view", "open the interactive explorer (needs a display and the gui extra)",
         "Explore recordings: overview first, zoom and filter, details on demand. Press ? in the window for every "
         "control.", _cmd_view,
         [_RUNS, _a("--follow", action="store_true", help="follow a run that is still being recorded (a file that "
                                                          "does not exist yet is waited for)"),
          _a("--fps", action="store_true", help="show the frame-time readout (key R toggles it)"),
          _a("--state", metavar="F", help="restore the view from F (JSON) and save it back on exit or S"),
          _a("--exit-after", type=float, metavar="S", help=argparse.SUPPRESS),
          _a("--screenshot", metavar="PNG", help=argparse.SUPPRESS)]),
        ("compare", "compare runs: a table per run, optionally CSV and a PNG side by side",
         "Compare recordings (e.g. a learning-rate or mini-batch sweep): iterations, final loss, mean line-search "
         "evaluations, loose ends per 100 iterations, over/undershooting shares, mean step efficiency, and the "
         "hyperparameters that differ.", _cmd_compare,
         [_RUNS, _a("--csv", metavar="F", help="also write the table as CSV"),
          _a("--png", metavar="F", help="also draw the runs sharing the x axis (stacked, or a grid of small "
                                        "multiples for more than 6 runs)"),
          _a("--scatter", metavar="STAT:PARAM", help="draw into --png one statistic against one hyperparameter, "
                                                     "e.g. overshoot:lr or loose_ends:config.K"),
          _a("--size", default="1600x1000", metavar="WxH"), *figure, _a("--range", metavar="A:B", help=range_help)]),
        ("bench", "benchmark this machine (tables, JSON and Markdown in --out)",
         "Measure probe, store, level-of-detail, render and scale speed on this machine, as ratios against floors "
         "measured in the same run. Writes gda-gl-bench.json and gda-gl-bench.md into --out.", _cmd_bench,
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
