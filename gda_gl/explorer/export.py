"""Export from the explorer: the visible rows as CSV, the view as PNG (key X, File menu, ctrl+E).

The PNG goes through :func:`gda_gl.session.files.save_png` (atomic write); the CSV
holds the rows of every visible run whose step ``[k, k+1)`` reaches into that
run's iterations in view (:meth:`~gda_gl.compose.view.View.iterations_of`), read
through the run's windows (runs of any length), with the
names of code columns (step class, probe status) after the columns.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Callable

import numpy as np

from recorder.stats import CLASS_NAMES, STATUS_NAMES

from gda_gl.compose.scene import RunData
from gda_gl.compose.view import View

log = logging.getLogger(__name__)

__all__ = ["visible_rows_csv", "export_view", "export_controller_view", "CODE_NAMES"]

#: code columns written with their names too (``step_class_name``, ``status_name``), after the columns
CODE_NAMES = {"step_class": CLASS_NAMES, "status": STATUS_NAMES}


def _series_at(run: RunData, names: list[str], first: int, stop: int) -> dict[str, dict[int, float]]:
    """For each logged series, iteration -> the value logged there (the last one) in ``[first, stop)``."""
    out = {}
    rec = getattr(run.windows, "recording", None)
    for name in names:
        try:
            pts = rec.read_series(name, first, stop) if rec is not None else None
        except KeyError:
            pts = None
        out[name] = {} if pts is None else dict(zip(pts.iteration.tolist(), pts.value.tolist()))
    return out


def visible_rows_csv(runs: list[RunData], v: View, path: str | Path, series: list[str] = ()) -> int:
    """Write the rows whose steps are in the drawn x range of ``v`` (visible ``runs``) as CSV.

    ``series`` names logged series drawn in the view: each is a column holding the value logged at the
    row's iteration (empty where none was).

    Returns
    -------
    int
        the number of rows written (the header not counted)
    """
    n = 0
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        header = None
        for i, run in enumerate(runs):
            its = v.iterations_of(i)  # this run's own steps in view (per run on every axis but iteration)
            if not getattr(run, "visible", True) or len(run) == 0 or its is None:
                continue
            first, stop = its.steps()
            d = run.rows(first, stop)
            sel = np.nonzero((d.iteration >= first) & (d.iteration < stop))[0]
            cols = list(d.columns)
            named = [c for c in CODE_NAMES if c in cols]
            extra = [s for s in series if s not in cols]
            if header is None:
                header = ["run", *cols, *(f"{c}_name" for c in named), *extra]
                w.writerow(header)
            logged = _series_at(run, extra, first, stop + 1) if len(sel) else {}
            for r in sel:
                codes = [CODE_NAMES[c].get(int(d[c][r]), "") for c in named]
                k = int(d.iteration[r])
                w.writerow([run.name, *(d[c][r].item() for c in cols), *codes,
                            *(logged.get(s, {}).get(k, "") for s in extra)])
                n += 1
    return n


def export_view(render: Callable[[], np.ndarray], write_csv: Callable[[Path], int], folder: str | Path) -> str:
    """Write the view as PNG (``render()``'s image) and the visible rows as CSV into ``folder``.

    Returns
    -------
    str
        a status message naming both files, or saying why the export failed
    """
    from gda_gl.session.files import save_png

    stamp = time.strftime("%Y%m%d-%H%M%S")
    png = Path(folder) / f"gda_gl-view-{stamp}.png"
    csv_path = Path(folder) / f"gda_gl-view-{stamp}.csv"
    try:
        save_png(render(), png)
        n = write_csv(csv_path)
    except Exception as exc:
        log.warning("export failed: %s", exc)
        return f"export failed: {exc}"
    return f"exported {png.name} and {n} rows to {csv_path.name}"


def export_controller_view(ctrl, render: Callable[[], np.ndarray], redraw: Callable[[], None],
                           folder: str | Path) -> str:
    """:func:`export_view` of what a surface (the desktop canvas, the notebook widget) draws for ``ctrl``.

    The PNG is ``render()``'s image without the frame-time readout (key R), which is about this machine and
    not about the run: the readout is hidden for that one render, then restored and ``redraw()`` asks the
    surface for a frame with it.  The CSV is ``ctrl.visible_rows_csv``.  Returns the status message.
    """
    def render_without_readout() -> np.ndarray:
        readout, ctrl.show_readout = ctrl.show_readout, False
        try:
            return render()
        finally:
            ctrl.show_readout = readout
            redraw()

    return export_view(render_without_readout, ctrl.visible_rows_csv, folder)
