"""The subcommands of ``gda-gl``: each takes the parsed arguments and returns the exit status.

Inputs are checked first (:mod:`.inputs`), runs opened through :mod:`gda_gl.session`, figures composed
by :mod:`gda_gl.compose` and drawn by :mod:`gda_gl.gl` offscreen.  Heavy imports (torch, VisPy, Qt)
happen inside the subcommand that needs them.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Callable

from gda_gl.session.checks import check_axis as _check_axis
from gda_gl.session.checks import check_highlight
from gda_gl.session.checks import check_series as _check_series
from gda_gl.session.errors import UsageError, short as _short

from .diagnose import apply_finding
from .inputs import (_same_file, check_inputs as _check_inputs, check_output, parse_scatter as _parse_scatter,
                     parse_size as _parse_size, view_state_from_args, write_atomic)

log = logging.getLogger("gda_gl")

__all__ = ["cmd_info", "cmd_check", "cmd_upgrade", "cmd_render", "cmd_compare", "cmd_view", "cmd_bench"]


def cmd_info(args: argparse.Namespace) -> int:
    from recorder.reader import Recording  # not recorder.store: info never needs the writer

    from gda_gl.compose.summary import info_text

    for i, path in enumerate(args.runs):
        with Recording(path) as rec:
            if i:
                print()
            print(info_text(rec))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
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


def cmd_upgrade(args: argparse.Namespace) -> int:
    from recorder.upgrade import upgrade

    _check_inputs([args.source])
    rows = upgrade(args.source, args.target)
    print(f"wrote {args.target}: {rows:,} iterations, schema 2 with a stored pyramid ({args.source} unchanged)")
    return 0


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


def cmd_render(args: argparse.Namespace) -> int:
    import time

    t0 = time.perf_counter()
    size = _parse_size(args.size)
    _check_inputs(args.runs)
    output = check_output(args.output, "png", inputs=[*args.runs, args.state])
    state = view_state_from_args(args)
    from gda_gl.session.open import load_runs

    runs = load_runs(args.runs)
    apply_finding(state, runs, args.finding)
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


def cmd_compare(args: argparse.Namespace) -> int:
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


def cmd_view(args: argparse.Namespace) -> int:
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


def cmd_bench(args: argparse.Namespace) -> int:
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
