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

from gda_gl.session.checks import check_axis as _check_axis
from gda_gl.session.checks import check_highlight
from gda_gl.session.checks import check_series as _check_series
from gda_gl.session.errors import UsageError, short as _short

from .diagnose import apply_finding
from .inputs import (check_inputs as _check_inputs, check_output, parse_size as _parse_size, view_state_from_args)

log = logging.getLogger("gda_gl")

__all__ = ["cmd_info", "cmd_check", "cmd_upgrade", "cmd_render", "cmd_compare", "cmd_view", "cmd_bench"]


def cmd_info(args: argparse.Namespace) -> int:
    from recorder.reader import Recording  # not recorder.store: info never needs the writer

    from gda_gl.compose.summary import info_text

    from .sweep import chosen_paths

    for i, path in enumerate(chosen_paths(args)):
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


def cmd_render(args: argparse.Namespace) -> int:
    import time

    from .sweep import check_color_by, chosen_paths, figure_kind, write_figure

    t0 = time.perf_counter()
    size = _parse_size(args.size)
    paths = chosen_paths(args)
    _check_inputs(paths)
    check_output(args.output, figure_kind(args.output), inputs=[*paths, args.state])
    state = view_state_from_args(args)
    from gda_gl.session.open import load_runs

    runs = load_runs(paths)
    apply_finding(state, runs, args.finding)
    _check_axis(runs, state)
    check_color_by(runs, state)
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
    from gda_gl.compose.layout import Layout, figure_layout

    def draw(renderer):
        if args.detail is not None:
            from gda_gl.gl.detail import draw_detail

            draw_detail(renderer, runs[0], args.detail, Layout.for_size(*size, colorbar=False), log_y=state.log_y)
        else:
            renderer.draw(runs, state, figure_layout(*size, runs, state))

    write_figure(args.output, size, draw, inputs=[*paths, args.state])  # checked again: drawing took a while
    log.info("rendered %s in %.2f s", args.output, time.perf_counter() - t0)
    print(f"wrote {args.output} ({size[0]}x{size[1]})")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """``gda-gl compare``: see :func:`gda_gl.cli.sweep.cmd_compare`."""
    from .sweep import cmd_compare as compare

    return compare(args)


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
    from .sweep import chosen_paths

    paths = chosen_paths(args, allow_empty=bool(args.follow))
    for p in paths:  # validate every file before a window opens
        from recorder.store import Recording

        if args.follow and not Path(p).exists():
            log.info("%s does not exist yet: the window waits for it (--follow)", p)
            continue
        Recording(p).close()
    if args.state:
        if Path(args.state).exists():
            from gda_gl.session.files import load_state

            load_state(args.state)
    from gda_gl.session.select import FolderWatch, folders_of

    folders = folders_of(args.runs)  # the window opens the recordings that appear in them later
    watch = FolderWatch(folders, paths, args.run_regex, args.where) if folders else None
    return run_viewer(paths, follow=args.follow, state_file=args.state, exit_after=args.exit_after,
                      screenshot=args.screenshot, fps=args.fps, watch=watch)


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
