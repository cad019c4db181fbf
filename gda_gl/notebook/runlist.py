"""The notebook's run list, made for sweeps: a filter box, one row per run (colour, visibility, solo), and
the hover table of the runs under the cursor.

* the filter box takes a regular expression on run names (``lr=0\\.0``) or ``--where`` conditions
  (``config.lr<0.1, optimizer=SGD``): the runs it leaves out are hidden
  (:func:`gda_gl.session.select.filter_text`, the one grammar of the command line);
* ``solo`` shows that run alone; pressed again, every run;
* the hover table (:func:`gda_gl.explorer.runtable.table_text`) lists every run drawn at the cursor's x,
  sorted by its loss there, the hovered run marked: the readout of a sweep.

Elements carry CSS classes (``gda-run-filter``, ``gda-runs``, ``gda-hover``) for tests and styling.
"""

from __future__ import annotations

import html

import ipywidgets as W

__all__ = ["RunList"]


def _rgb(color) -> str:
    return "#%02x%02x%02x" % tuple(int(255 * float(v)) for v in color[:3])


class RunList:
    """The run rows, the filter box and the hover table of one controller.

    Parameters
    ----------
    ctrl : the explorer's controller (its runs and ``set_run_visible``)
    guard : runs an action, turning a bad value into one status line (:meth:`Controls._guard`)
    """

    def __init__(self, ctrl, guard):
        self.ctrl, self.guard = ctrl, guard
        from gda_gl.explorer.runtable import FILTER_PLACEHOLDER

        self.filter = W.Text(placeholder=FILTER_PLACEHOLDER, continuous_update=False,
                             layout=W.Layout(width="270px")).add_class("gda-run-filter")
        self.rows = W.VBox(layout=W.Layout(max_height="240px", overflow="auto", flex="0 0 auto")).add_class("gda-runs")
        self.table = W.HTML().add_class("gda-hover")
        self.box = W.VBox([self.filter, self.rows], layout=W.Layout(flex="0 0 auto"))  # never shrunk by the panel
        self.filter.observe(lambda ch: self.guard(self.apply_filter, ch["new"]), names="value")
        self._names: list[str] = []

    def fill(self) -> None:
        """One row per run: its colour, a visibility box named with its step count, a solo button."""
        names = [f"{run.name} ({len(run):,} steps)" for run in self.ctrl.runs]
        if names == self._names:
            return
        self._names = names
        rows = []
        for i, (run, name) in enumerate(zip(self.ctrl.runs, names)):
            cb = W.Checkbox(value=bool(getattr(run, "visible", True)), indent=False, description=name,
                            layout=W.Layout(width="200px"))
            cb.observe(lambda ch, i=i: self.guard(self.ctrl.set_run_visible, i, ch["new"]), names="value")
            solo = W.Button(description="solo", layout=W.Layout(width="46px", padding="0"),
                            tooltip="show this run alone (again: every run)")
            solo.on_click(lambda b, i=i: self.guard(self.solo, i))
            swatch = W.HTML(f'<span style="color:{_rgb(run.color)}">&#9632;</span>', layout=W.Layout(width="14px"))
            rows.append(W.HBox([swatch, cb, solo]))
        self.rows.children = rows

    def sync(self) -> None:
        """The visibility boxes from the runs (a filter or solo changed several at once)."""
        for run, row in zip(self.ctrl.runs, self.rows.children):
            row.children[1].value = bool(getattr(run, "visible", True))

    def _set_visible(self, keep: list[bool]) -> None:
        for i, (run, k) in enumerate(zip(self.ctrl.runs, keep)):
            if bool(getattr(run, "visible", True)) != k:
                self.ctrl.set_run_visible(i, k)
        self.sync()

    def apply_filter(self, text: str) -> None:
        """Show the runs the filter box keeps, hide the others (ValueError: a bad expression)."""
        from gda_gl.explorer.runtable import filter_visibility

        self._set_visible(filter_visibility(self.ctrl.runs, text))

    def solo(self, i: int) -> None:
        """Show run ``i`` alone; if it already is, show every run."""
        from gda_gl.explorer.runtable import solo_visibility

        self._set_visible(solo_visibility(self.ctrl.runs, i))

    def show_table(self, info: dict | None) -> None:
        """The hover table of a readout (:func:`gda_gl.explorer.picking.hover_info`'s ``table``)."""
        from gda_gl.explorer.runtable import table_text

        rows = (info or {}).get("table") or []
        text = table_text(rows, (info or {}).get("run_index")) if len(rows) > 1 else ""
        value = f"<pre style='margin:0;font-size:85%'>{html.escape(text)}</pre>" if text else ""
        if value != self.table.value:
            self.table.value = value
