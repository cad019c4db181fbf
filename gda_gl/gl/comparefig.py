"""Draw the figures of ``gda-gl compare`` (composed by :mod:`gda_gl.compose.comparefig`) with the one renderer.

:func:`draw_runs` stacks up to :data:`~gda_gl.compose.comparefig.STACK_MAX` runs in bands (each band with
its series panels, through :meth:`~gda_gl.gl.render.CurveRenderer.draw`), more as a grid of small
multiples; :func:`draw_scatter` draws one statistic against one hyperparameter.
"""

from __future__ import annotations

from gda_gl.compose.comparefig import STACK_MAX, compose_scatter, grid_cells, grid_titles, stacked_bands
from gda_gl.compose.state import ViewState
from gda_gl.compose.view import View

from .render import CurveRenderer

__all__ = ["draw_runs", "draw_stacked", "draw_scatter"]


def draw_stacked(runs, state: ViewState, size: tuple[int, int], renderer: CurveRenderer,
                 shared_y: bool = False) -> None:
    """One full-width band per run, top to bottom, all over the same x range (each its own y, or one)."""
    for run, st, lay in stacked_bands(runs, state, size, shared_y):
        renderer.draw([run], st, lay, title=run.name)


def draw_runs(runs, state: ViewState, size: tuple[int, int], names: list[str],
              renderer: CurveRenderer | None = None, shared_y: bool = False) -> None:
    """Draw the runs stacked (few) or as a grid of small multiples (many), all over the same x range; ``names``
    label the cells; ``shared_y``: one y range for all."""
    renderer = renderer or CurveRenderer()
    if len(runs) <= STACK_MAX:
        draw_stacked(runs, state, size, renderer, shared_y)
        return
    renderer.clear_canvas(size)  # the title strips lie outside every cell
    for view, frame, lay in grid_cells(runs, state, size, names, shared_y):
        renderer.draw_frame(view, frame, lay)
    renderer.draw_texts(grid_titles(runs, state, size, shared_y), size)


def draw_scatter(stat_values: list, param_values: list, names: list[str], colors, stat: str, param: str,
                 size: tuple[int, int], renderer: CurveRenderer | None = None) -> View:
    """One point per run: ``stat`` (y) against the hyperparameter ``param`` (x), each point named.

    Raises
    ------
    ValueError : ``param`` or ``stat`` is not a number in every run
    """
    view, frame, lay = compose_scatter(stat_values, param_values, names, colors, stat, param, size)
    (renderer or CurveRenderer()).draw_frame(view, frame, lay)
    return view
