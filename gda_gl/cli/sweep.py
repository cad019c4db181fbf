"""The sweep side of the command line: which runs (folders, ``--runs``, ``--where``), figures as PNG, SVG or
PDF from the one composition, and ``gda-gl compare`` (the table, CSV, small multiples, the scatter).

* :func:`chosen_paths`: every command's run arguments, folders expanded to the ``*.gda`` directly in
  them (:func:`gda_gl.session.select.expand_paths`), then kept by ``--runs REGEX`` / ``--where COND``;
* :func:`write_figure`: draws with the GL renderer offscreen for a PNG, or with the vector renderer
  (:mod:`gda_gl.gl.vector_render`, no GL needed) for an SVG or a PDF: the same code lays out both;
* :func:`cmd_compare`: ``gda-gl compare``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from gda_gl.session.errors import UsageError, short

__all__ = ["SELECT_ARGS", "FIGURE_KINDS", "chosen_paths", "figure_kind", "write_figure", "color_by_arg",
           "check_color_by", "cmd_compare"]

#: the figure formats a command writes, by file name ending
FIGURE_KINDS = ("png", "svg", "pdf")

#: ``--runs`` and ``--where`` of render, compare and view (argparse's (flags, keywords))
SELECT_ARGS = [
    (("--runs",), {"dest": "run_regex", "metavar": "REGEX",
                   "help": "only the runs whose name or file name matches REGEX (Python regular expression)"}),
    (("--where",), {"metavar": "COND", "help": "only the runs whose hyperparameters satisfy COND: config.lr<0.1, "
                                               "lr>=0.01, optimizer=SGD; commas join conditions (all must hold)"}),
]


def chosen_paths(args: argparse.Namespace, allow_empty: bool = False) -> list[str]:
    """``args.runs`` with each folder standing for the recordings in it, kept by ``--runs`` and ``--where``.

    Raises
    ------
    UsageError : a bad expression or condition, or no run left; RecordingError : an empty folder
    """
    from gda_gl.session.select import choose, expand_paths

    paths = expand_paths(args.runs, allow_empty=allow_empty)
    try:
        return choose(paths, getattr(args, "run_regex", None), getattr(args, "where", None))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def color_by_arg(text: str) -> str:
    """argparse type of ``--color-by``: a statistic, or a hyperparameter ``config.NAME`` (runs coloured by it)."""
    from gda_gl.compose.state import COLOR_BY_CHOICES, check_color_by as valid

    try:
        return valid("--color-by", text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text[:60]!r}: choose from {', '.join(COLOR_BY_CHOICES)}, or a "
                                         "hyperparameter config.NAME") from None


def check_color_by(runs, state) -> None:
    """Refuse, in one line, colouring by a hyperparameter no run holds a number for."""
    from gda_gl.compose.runcolor import param_key, param_scale
    from gda_gl.compose.state import is_param_name

    if is_param_name(state.color_by):
        key = param_key(state.color_by)
        try:
            param_scale(key, [r.params.get(key) for r in runs])
        except ValueError:
            have = sorted({k for r in runs for k, v in r.params.items() if isinstance(v, (int, float))})
            raise UsageError(f"--color-by {state.color_by}: no run holds a number under {key!r} (numbers: "
                             f"{', '.join(have)[:300]})") from None


def figure_kind(path: str) -> str:
    """The figure format of an output name (its ending), or UsageError."""
    kind = Path(path).suffix.lower().lstrip(".")
    if kind not in FIGURE_KINDS:
        raise UsageError(f"{short(path)}: the output must be a .png, .svg or .pdf file (got "
                         f"{repr(Path(path).suffix) if Path(path).suffix else 'no extension'})")
    return kind


def draw_offscreen(size: tuple[int, int], draw) -> np.ndarray:
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


def write_figure(path: str, size: tuple[int, int], draw, inputs=()) -> None:
    """Draw ``draw(renderer)`` into ``path``: PNG through GL offscreen, SVG or PDF through the vector renderer."""
    from .inputs import check_output, write_atomic

    kind = figure_kind(path)
    if kind == "png":
        from gda_gl.gl.render import CurveRenderer
        from gda_gl.session.files import encode_png

        data = encode_png(draw_offscreen(size, lambda: draw(CurveRenderer())))
    else:
        from gda_gl.gl.vector_render import draw_vector

        data = draw_vector(size, draw, kind)
    write_atomic(check_output(path, kind, inputs=inputs), data)


def _outputs(args: argparse.Namespace, paths: list[str]) -> list[str]:
    """The figure files asked for (--png, --svg, --pdf), each checked before any work, none the CSV."""
    from .inputs import _same_file, check_output

    out = []
    for kind in FIGURE_KINDS:
        name = getattr(args, kind, None)
        if name:
            check_output(name, kind, inputs=paths)
            if args.csv and _same_file(Path(args.csv), Path(name)):
                raise UsageError(f"{short(args.csv)}: --csv and --{kind} name the same file")
            out.append(name)
    return out


def cell_names(runs, params: list[dict]) -> list[str]:
    """Labels of the small multiples: the hyperparameters that tell the runs apart (``lr=0.001``), else names."""
    from gda_gl.compose.compare import varying

    vary, _ = varying(params) if len(params) > 1 else ([], {})
    shown = [k for k in vary if k != "probe K"][:2]
    if not shown:
        return [r.name for r in runs]
    def fmt(v) -> str:
        return f"{v:.3g}" if isinstance(v, float) else str(v)

    return [" ".join(f"{k.removeprefix('config.')}={fmt(p[k])}" for k in shown if k in p) or r.name
            for r, p in zip(runs, params)]


def cmd_compare(args: argparse.Namespace) -> int:
    """``gda-gl compare``: the table (and CSV), figures of the runs side by side or a statistic against a
    hyperparameter (PNG, SVG, PDF from the same composition)."""
    from gda_gl.compose.compare import STAT_KEYS, format_table, hyperparameters, summary_from_bucket, to_csv
    from gda_gl.session.open import load_runs

    from gda_gl.session.checks import check_axis as _check_axis

    from .inputs import check_inputs as _check_inputs, check_output, parse_size as _parse_size, \
        parse_scatter, view_state_from_args, write_atomic

    paths = chosen_paths(args)
    _check_inputs(paths)
    scatter = parse_scatter(args.scatter, STAT_KEYS) if args.scatter is not None else None  # '' is refused
    csv_out = check_output(args.csv, "csv", inputs=paths) if args.csv else None
    figures = _outputs(args, paths)
    if scatter and not figures:
        raise UsageError("--scatter draws into the figure: give --png F (or --svg, --pdf)")
    size = _parse_size(args.size) if figures else None
    state = view_state_from_args(args) if figures else None
    if state is not None and not args.ylim:
        state.y_range = None  # a saved view's y range is of one overlay; cells fit their own (or --shared-y)
    runs = load_runs(paths)
    if state is not None:
        _check_axis(runs, state)
    rows = [summary_from_bucket(r.name, r.windows.summary(), r.windows) for r in runs]
    params = [hyperparameters(r.windows.recording.run, len(r.alphas)) for r in runs]
    print(format_table(rows, params))
    if csv_out is not None:
        write_atomic(csv_out, to_csv(rows, params).encode())
        print(f"wrote {args.csv}")
    draw = _scatter_draw(scatter, rows, params, runs, size) if scatter else _runs_draw(runs, state, size, params,
                                                                                        args.shared_y)
    for name in figures:
        write_figure(name, size, draw, inputs=paths)
        print(f"wrote {name}")
    return 0


def _runs_draw(runs, state, size, params, shared_y: bool):
    from gda_gl.gl.comparefig import draw_runs

    labels = cell_names(runs, params)
    return lambda renderer: draw_runs(runs, state, size, labels, renderer, shared_y=shared_y)


def _scatter_draw(scatter, rows, params, runs, size):
    from gda_gl.gl.comparefig import draw_scatter

    stat, param = scatter

    def draw(renderer):
        try:
            draw_scatter([r[stat] for r in rows], [p.get(param) for p in params], [r.name for r in runs],
                         [r.color for r in runs], stat, param, size, renderer)
        except ValueError as exc:
            raise UsageError(f"--scatter: {exc}") from None
    return draw
