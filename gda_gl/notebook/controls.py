"""ipywidgets beside the frame: the controls of the desktop window's side panel, the status, the details.

:class:`Controls` mirrors :class:`gda_gl.explorer.panel.ControlPanel` (same toggles, same labels
naming the keys): run list (visibility), x axis, colour-by, the display toggles, y auto-fit, smoothing,
highlight filter with previous/next match, iteration and epoch ranges, whole run, help, export, and the
runs' findings (``gda-gl diagnose``; picking one flies the view to it).
Every control edits the one :class:`~gda_gl.compose.state.ViewState` through the controller, and
:meth:`Controls.sync` sets the controls from the state with a guard so it never feeds back.

Below the frame: the status line (key messages, hover readout, highlight matches, live state), a
line naming the drawn view (x range, whole run or zoomed, selected step), and the details of the
selected step: its line search drawn by :func:`gda_gl.gl.detail.draw_detail` (a PNG in an
``ipywidgets.Image``, redrawn only when the selection or the y scale changes) and its numbers.
Elements carry CSS classes (``gda-status``, ``gda-view``, ``gda-details``) for tests and styling.
"""

from __future__ import annotations

import html
import logging
import math
import time

import ipywidgets as W

from gda_gl.explorer.panel import TOGGLES, format_details

log = logging.getLogger(__name__)

__all__ = ["Controls", "STATUS_EVERY_S"]

STATUS_EVERY_S = 0.25  # the status and view lines while the view flies (they follow its last frame)


class Controls:
    """The ipywidgets wired to one :class:`~gda_gl.notebook.widget.ExplorerFrameBuffer`.

    Parameters
    ----------
    fb : the frame buffer widget (its controller, status and details renderer)
    detail_height : height of the details picture in pixels (its width is the frame's)
    """

    def __init__(self, fb, detail_height: int = 260):
        from gda_gl.explorer.filters import HIGHLIGHTS
        from gda_gl.explorer.inputmap import SMOOTHING_STEPS
        from gda_gl.compose.state import COLOR_BY_CHOICES

        self.fb, self.ctrl = fb, fb.ctrl
        self.detail_height = detail_height
        self._syncing = False
        self._details_key = None
        self._status_t = 0.0
        lay = W.Layout(width="270px")
        wide = {"description_width": "95px"}
        from .runlist import RunList

        self.run_list = RunList(self.ctrl, self._guard)
        self.runs = self.run_list.rows
        self.color = W.Dropdown(options=COLOR_BY_CHOICES, description="colour (C)", layout=lay, style=wide)
        from gda_gl.compose.xaxis import AXES, AXIS_TITLES

        self.x_axis = W.Dropdown(options=[(AXIS_TITLES[a], a) for a in AXES], description="x axis (U)", layout=lay,
                                 style=wide)
        self.checks = {name: W.Checkbox(description=label, indent=False) for name, label in TOGGLES}
        self.autofit = W.Checkbox(description="y auto-fit (A)", indent=False)
        self.smoothing = W.FloatSlider(min=0.0, max=max(SMOOTHING_STEPS), step=0.001, readout_format=".3f",
                                       continuous_update=False, description="smooth (M)", layout=lay, style=wide)
        self.highlight = W.Combobox(options=[h or "none" for h in HIGHLIGHTS], placeholder="none",
                                    description="highlight (H)", ensure_option=False, continuous_update=False,
                                    layout=lay, style=wide)
        self.prev_b, self.next_b = W.Button(description="< prev (P)"), W.Button(description="next (N) >")
        self.it_lo, self.it_hi = W.IntText(layout=W.Layout(width="95px")), W.IntText(layout=W.Layout(width="95px"))
        self.y_lo, self.y_hi = W.FloatText(layout=W.Layout(width="95px")), W.FloatText(layout=W.Layout(width="95px"))
        self.y_apply = W.Button(description="set")
        self.ep_lo, self.ep_hi = W.IntText(layout=W.Layout(width="95px")), W.IntText(layout=W.Layout(width="95px"))
        self.it_apply, self.ep_apply = W.Button(description="show"), W.Button(description="show")
        self.home_b, self.help_b = W.Button(description="whole run (Home)"), W.Button(description="help (?)")
        self.export_b = W.Button(description="export PNG + CSV (X)")
        self.findings = W.Select(options=[], rows=6, layout=W.Layout(width="270px")).add_class("gda-findings")
        self.status = W.HTML().add_class("gda-status")
        self.view_line = W.HTML().add_class("gda-view")
        self.details_image = W.Image(format="png", layout=W.Layout(display="none"))
        self.details_numbers = W.HTML("<i>click a step (or press D over it) to see its line search here</i>")
        self.details = W.VBox([self.details_image, self.details_numbers]).add_class("gda-details")
        self.fill_runs()
        self.fill_findings()
        self._connect()
        self.sync()
        fb.on_status(self.show_status)
        self.ctrl.state.observe(self.sync)
        self.ctrl.on_grow(self.fill_runs)
        self.ctrl.on_grow(self.fill_findings)
        self.ctrl.on_select(self.show_details)

    def panel(self) -> W.VBox:
        """The controls in one column (right of the frame)."""
        def row(*ws):
            return W.HBox(list(ws))

        return W.VBox([W.HTML("<b>runs</b>"), self.run_list.box, self.x_axis, self.color, *self.checks.values(),
                       self.autofit, self.smoothing, self.highlight, row(self.prev_b, self.next_b),
                       W.HTML("iterations"), row(self.it_lo, self.it_hi, self.it_apply),
                       W.HTML("epochs"), row(self.ep_lo, self.ep_hi, self.ep_apply),
                       W.HTML("loss axis (typed; y auto-fit: back)"), row(self.y_lo, self.y_hi, self.y_apply),
                       row(self.home_b, self.help_b), self.export_b,
                       W.HTML("<b>findings</b> (J / K; pick one to fly to it)"), self.findings],
                      layout=W.Layout(width="290px", overflow="auto"))

    # -- wiring ----------------------------------------------------------------------------------
    def _connect(self) -> None:
        c, st = self.ctrl, self.ctrl.state

        def on(widget, fn):
            widget.observe(lambda ch: None if self._syncing else self._guard(fn, ch["new"]), names="value")

        on(self.color, lambda v: st.update(color_by=v))
        on(self.x_axis, c.set_x_axis)  # an axis a run cannot provide: ValueError -> one status line
        for name, cb in self.checks.items():
            if name == "follow":
                on(cb, lambda v: self._say(c.key("f")) if v else st.update(follow=False))
            else:
                on(cb, lambda v, n=name: st.update(**{n: v, **({"y_range": None} if n == "log_y" else {})}))
        on(self.autofit, lambda v: c.toggle_autofit() if v != (st.y_range is None) else None)
        on(self.smoothing, lambda v: st.update(smoothing=float(v)))
        on(self.highlight, self._set_highlight)
        self._click(self.prev_b, lambda: self._say(c.key("p")))
        self._click(self.next_b, lambda: self._say(c.key("n")))
        self._click(self.it_apply, lambda: c.set_iteration_range(self.it_lo.value, self.it_hi.value + 1))
        self._click(self.ep_apply, lambda: c.set_epoch_range(self.ep_lo.value, self.ep_hi.value))
        self._click(self.y_apply, lambda: self.set_y_limits(self.y_lo.value, self.y_hi.value))
        self._click(self.home_b, c.home)
        self._click(self.help_b, lambda: self._say(c.key("?")))
        self._click(self.export_b, lambda: self._say(self.fb.export()))
        on(self.findings, lambda n: self._say(c.findings.show(n)) if n else None)

    def fill_findings(self) -> None:
        """The runs' findings (``gda-gl diagnose``'s numbering) as the list's options."""
        self._syncing = True
        try:
            self.findings.options = [(f.line[:160], f.number) for f in self.ctrl.findings.all()]
            self.findings.value = None
        finally:
            self._syncing = False

    def set_y_limits(self, lo: float, hi: float) -> None:
        """The loss axis from ``lo`` to ``hi`` (typed y limits; ValueError: not increasing, or not positive on a
        log axis)."""
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo) or (self.ctrl.state.log_y and lo <= 0):
            raise ValueError(f"loss axis {lo:g}..{hi:g}: two increasing numbers (positive on a log axis)")
        self.ctrl.state.update(y_range=(float(lo), float(hi)))

    def _set_highlight(self, text: str) -> None:
        """A highlight filter from the box; an unknown one is refused (ValueError -> one status line)."""
        from gda_gl.compose.scene import parse_filter

        text = (text or "").strip()
        if text not in ("", "none"):
            parse_filter(text)
        self.ctrl.state.update(highlight=None if text in ("", "none") else text)

    def _click(self, button, fn) -> None:
        button.on_click(lambda b: self._guard(fn))

    def _guard(self, fn, *args) -> None:
        """Run a control's action; a bad value (an unknown filter) is one status line, never a traceback."""
        try:
            with self.fb.lock:  # controls may act on a subshell's thread while the follower polls
                fn(*args)
        except (ValueError, TypeError) as exc:
            self._say(str(exc))

    def _say(self, msg) -> None:
        if msg:
            self.fb.say(msg)

    # -- the controls follow the state -------------------------------------------------------------
    def sync(self, st=None, changed=None) -> None:
        """Set every control from the state (guarded: never feeds back)."""
        s = self.ctrl.state
        self._syncing = True
        try:
            self.color.value = s.color_by
            self.highlight.value = s.highlight or "none"
            for name, cb in self.checks.items():
                cb.value = bool(getattr(s, name))
            self.autofit.value = s.y_range is None
            self.smoothing.value = s.smoothing  # any EMA weight in [0, 1): a continuous control
            if s.color_by not in self.color.options:
                self.color.options = tuple(self.color.options) + (s.color_by,)
            self.x_axis.value = s.x_axis
            shown = self.ctrl.iterations_shown()  # the x range in iterations, whatever the x axis
            if shown is not None:
                self.it_lo.value = int(math.floor(shown[0]))
                self.it_hi.value = int(math.ceil(shown[1])) - 1
            if s.epoch_range is not None:
                self.ep_lo.value, self.ep_hi.value = (int(v) for v in s.epoch_range)
        finally:
            self._syncing = False
        self.show_details()

    def fill_runs(self) -> None:
        """The run list (:class:`.runlist.RunList`) and the colour-by choices: the statistics, then the numeric
        hyperparameters of the runs (``config.lr``: runs coloured by it)."""
        from gda_gl.compose.state import COLOR_BY_CHOICES

        self.run_list.fill()
        params = sorted({k for r in self.ctrl.runs for k, v in r.params.items() if k.startswith("config.")
                         and isinstance(v, (int, float)) and not isinstance(v, bool)})
        options = tuple(COLOR_BY_CHOICES) + tuple(params)
        if options != tuple(self.color.options):
            self._syncing = True
            try:
                self.color.options = options
                self.color.value = self.ctrl.state.color_by if self.ctrl.state.color_by in options else "none"
            finally:
                self._syncing = False

    # -- status and details ---------------------------------------------------------------------------
    def show_status(self) -> None:
        """The status and view lines; during a flight at most every :data:`STATUS_EVERY_S` (the last frame always)."""
        now = time.monotonic()
        if self.ctrl.animating and now - self._status_t < STATUS_EVERY_S:
            return  # each update is a message and a relayout in the browser, competing with the frames
        self._status_t = now
        self.status.value = f"<code>{html.escape(self.fb.status) or '&nbsp;'}</code>"
        self.run_list.show_table(self.ctrl.hover_info)
        self.view_line.value = f"<small>{html.escape(self.fb.view_text())}</small>"

    def show_details(self) -> None:
        """Redraw the details picture and numbers when the selection (run, step) or the y scale changed."""
        from gda_gl.session.files import encode_png

        c = self.ctrl
        run = c.selected_run_data()
        key = (run.name if run is not None else None, c.state.selected, c.state.log_y, self.fb.ctrl.size[0])
        if key == self._details_key:
            return
        self._details_key = key
        try:
            image, numbers = self.fb.render_details(max(300, c.size[0]), self.detail_height)
        except Exception as exc:  # iteration not in this run, a damaged row: one line
            image, numbers = None, None
            self.details_numbers.value = html.escape(f"details: {exc}")
            log.info("details failed", exc_info=True)
            return
        if image is None:
            self.details_image.layout.display = "none"
            self.details_numbers.value = "<i>click a step (or press D over it) to see its line search here</i>"
            return
        self.details_image.value = encode_png(image)
        self.details_image.layout.display = ""
        self.details_numbers.value = (f"<b>details of step {numbers.get('iteration')} of "
                                      f"{html.escape(str(numbers.get('run')))}</b>"
                                      f'<div style="columns: 3; font-size: 90%">{format_details(c.details())}</div>')
