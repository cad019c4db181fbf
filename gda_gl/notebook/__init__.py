"""The explorer in a notebook: render on the machine where the recordings (and the GPU) are.

``from gda_gl.notebook import view``; ``view("runs/a.gda", "runs/b.gda", follow=True)`` returns an
:class:`ExplorerView`, an ``ipywidgets.HBox``: on the left the frame (an
:class:`~gda_gl.notebook.widget.ExplorerFrameBuffer`, a jupyter_rfb remote frame buffer), the
status line, the drawn view in words and the details of the selected step; on the right the
controls of the desktop window's side panel.  Its attributes ``frame``, ``controller``,
``follower`` and ``controls`` give the parts.

Design: nothing new is drawn or decided here.  The controller, the input table, picking, the live
follower, the export and the drawing of a frame (:mod:`gda_gl.explorer.frame_draw`) are the desktop
explorer's; this package only supplies a GL target without a window (EGL, offscreen framebuffers:
:mod:`.target`), the mapping of the browser's events (:mod:`.events`) and ipywidgets instead of Qt
(:mod:`.controls`).  The browser only shows images; rendering stays where the data are.

Bad input (a missing, damaged or not-a-recording file, no OpenGL on the server, a missing extra)
makes :func:`view` return an :class:`ErrorLine`: the cell shows ``gda-gl: error: ...`` in one line,
as the CLI would, never a traceback.

While a cell of the same kernel runs (training in the notebook's own kernel), the kernel cannot
send frames: train in another process (the usual case on a GPU machine; the example notebook does
this) or in a background thread of the kernel.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

from gda_gl.session.errors import error_line

log = logging.getLogger(__name__)

__all__ = ["view", "ExplorerView", "ErrorLine", "error_line"]


class ErrorLine:
    """One line of error shown as a cell's output (``gda-gl: error: ...``), never a traceback."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text

    def _repr_html_(self) -> str:
        return f'<pre class="gda-error" style="color:#b00;margin:0">{html.escape(self.text)}</pre>'


def _open(paths, follow: bool):
    """Open the recordings (with ``follow``, missing files are waited for); returns (runs, recordings, pending)."""
    from recorder.store import Recording

    from gda_gl.compose.style import run_color
    from gda_gl.session.open import closing_on_error, run_of

    recs, pending, runs = [], [], []
    with closing_on_error(recs):
        for p in paths:
            if follow and not Path(p).exists():
                pending.append(str(p))
                continue
            recs.append(Recording(p))
            runs.append(run_of(recs[-1], run_color(len(runs)), empty_ok=follow))
    return runs, recs, pending


def _state(state, follow: bool):
    from gda_gl.compose.state import ViewState

    if state is None:
        st = ViewState()
    elif isinstance(state, ViewState):
        st = state
    else:
        from gda_gl.session.files import load_state

        st = load_state(str(state))  # refuses a bad file in one line (UsageError), as gda-gl does
    if follow:
        st.follow = True
    return st


def _chosen(paths, runs: str | None, where: str | None, follow: bool):
    """(recordings to open, a FolderWatch of the folders among ``paths`` or None): folders stand for their
    ``*.gda``, kept by ``runs`` (a regular expression) and ``where`` (as ``gda-gl view --runs --where``)."""
    from gda_gl.session.errors import UsageError
    from gda_gl.session.select import FolderWatch, choose, expand_paths, folders_of

    folders = folders_of(paths)
    try:
        chosen = choose(expand_paths(paths, allow_empty=follow), runs, where)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return chosen, (FolderWatch(folders, chosen, runs, where) if folders else None)


def view(*paths, follow: bool = False, state=None, size: tuple[int, int] = (1000, 560), poll_s: float = 0.2,
         quality: int | None = None, export_dir: str | None = None, runs: str | None = None,
         where: str | None = None):
    """Explore recordings in a notebook; returns an :class:`ExplorerView` (or an :class:`ErrorLine`).

    Parameters
    ----------
    *paths : recordings (``.gda``) or folders of them (every ``*.gda`` directly in one, and those that appear
        there later), overlaid in one plot
    runs, where : keep only the runs whose name or file matches the regular expression ``runs`` and whose
        hyperparameters satisfy ``where`` (``"config.lr<0.1"``), as ``gda-gl view --runs --where``
    follow : follow files being written by another process (missing files are waited for)
    state : a :class:`~gda_gl.compose.state.ViewState` or the path of a saved one (``gda-gl view --state``)
    size : the frame's size in CSS pixels (the browser may resize it; the frame follows)
    poll_s : how often followed files are polled
    quality : JPEG quality of frames while the view changes (default
        :data:`~gda_gl.notebook.widget.QUALITY`; 100 sends PNG only)
    export_dir : where key X writes PNG and CSV (default: the kernel's current folder)
    """
    if not paths:
        return ErrorLine("gda-gl: error: no recording given: view('runs/a.gda', ...)")
    recs = []
    try:
        from .app import ExplorerView

        from gda_gl.session.checks import check_state

        chosen, watch = _chosen([str(p) for p in paths], runs, where, follow)
        opened, recs, pending = _open(chosen, follow)
        st = _state(state, follow)
        check_state(opened, st, series=not follow)  # what gda-gl refuses, refused here before the widget exists
        return ExplorerView(opened, recs, pending, st, follow=follow, size=size,
                            poll_s=poll_s, quality=quality, export_dir=export_dir, watch=watch)
    except Exception as exc:
        for r in recs:
            try:
                r.close()
            except Exception:  # closing never hides the error being reported
                pass
        line = error_line(exc, paths)
        log.info("%s", line, exc_info=True)
        return ErrorLine(line)


def __getattr__(name):
    if name == "ExplorerView":  # imported on use: importing gda_gl.notebook needs no ipywidgets
        from .app import ExplorerView

        return ExplorerView
    raise AttributeError(name)
