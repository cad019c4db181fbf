"""The notebook explorer's container: the frame, status, view line and details left, the controls right.

Built by :func:`gda_gl.notebook.view`; see :mod:`gda_gl.notebook` for the design.
"""

from __future__ import annotations

import logging

import ipywidgets as W

log = logging.getLogger(__name__)

__all__ = ["ExplorerView"]


class ExplorerView(W.HBox):
    """The notebook explorer: an ``ipywidgets.HBox`` of [frame, status, view line, details] and the controls.

    Parameters
    ----------
    runs : the opened runs (windows onto their recordings)
    recordings : the open recordings behind ``runs`` (closed by :meth:`close`)
    pending : followed files that do not exist yet
    state : the view state
    follow : follow the files (a :class:`~gda_gl.session.follow.Follower` polls them)
    size : the frame's size in CSS pixels
    poll_s : how often followed files are polled
    quality : JPEG quality while the view changes (None: the widget's default)
    export_dir : where key X writes
    watch : a :class:`~gda_gl.session.select.FolderWatch` (folders given: recordings appearing there are opened)

    Attributes
    ----------
    frame : :class:`~gda_gl.notebook.widget.ExplorerFrameBuffer`
    controller : :class:`~gda_gl.explorer.controller.ExplorerController`
    follower : the :class:`~gda_gl.session.follow.Follower`, or None
    controls : :class:`~gda_gl.notebook.controls.Controls`
    """

    def __init__(self, runs, recordings, pending, state, follow=False, size=(1000, 560), poll_s=0.2,
                 quality=None, export_dir=None, watch=None):
        from gda_gl.explorer.controller import ExplorerController
        from gda_gl.session.follow import Follower
        from .controls import Controls
        from .target import GLTarget, gl_call
        from .widget import ExplorerFrameBuffer

        target = gl_call(GLTarget, *size)  # first: no GL means one error line, no half-built widget
        ctrl = ExplorerController(runs, state, size=tuple(int(v) for v in size))
        follower = Follower(ctrl, recordings, pending, watch=watch) if follow or watch is not None else None
        kw = {} if quality is None else {"quality": int(quality)}
        kw["css_width"] = "100%"  # the frame fills its column; the browser reports its size, the kernel follows
        fb = ExplorerFrameBuffer(ctrl, target, follower=follower, poll_s=poll_s, export_dir=export_dir, **kw)
        controls = Controls(fb)
        left = W.VBox([fb, controls.status, controls.run_list.table, controls.view_line, controls.details],
                      layout=W.Layout(flex="1 1 auto", min_width="320px", max_width=f"{int(size[0]) + 4}px"))
        panel = controls.panel()
        panel.layout.flex, panel.layout.max_height = "0 0 auto", f"{int(size[1]) + 60}px"
        panel.add_class("gda-controls")
        # the controls always beside the frame, as tall as it (scrolling inside): a narrower page narrows the
        # frame (its width follows the column; the kernel draws at the size the browser reports)
        super().__init__([left, panel], layout=W.Layout(flex_flow="row nowrap", align_items="flex-start",
                                                         width="100%"))
        self.frame, self.controller, self.follower, self.controls = fb, ctrl, follower, controls
        self.recordings = recordings
        self.add_class("gda-explorer")
        fb.refresh_status()

    def close(self):
        """Stop following, close the recordings and the widgets."""
        if getattr(self, "frame", None) is None:  # __init__ failed (ipywidgets closes on __del__ too)
            return
        self.frame.close()
        recs = self.follower.recordings if self.follower is not None else self.recordings
        for rec in recs:
            try:
                rec.close()
            except Exception as exc:  # closing never raises into the notebook
                log.debug("close: %s", exc)
        super().close()
