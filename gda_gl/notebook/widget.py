"""The remote frame buffer of the notebook explorer: renders on the kernel's machine, streams images.

:class:`ExplorerFrameBuffer` is a :class:`jupyter_rfb.RemoteFrameBuffer`.  The browser shows an
``<img>`` and sends input events back; the kernel draws with the explorer's own code:

- drawing: :func:`gda_gl.explorer.frame_draw.draw_controller_frame` (the same function the desktop
  canvas draws with: :class:`~gda_gl.gl.render.CurveRenderer` plus :class:`~gda_gl.gl.overlays.Overlays`)
  into a :class:`~gda_gl.notebook.target.GLTarget` (EGL, offscreen framebuffer), read back as RGB;
- input: :class:`~gda_gl.notebook.events.RfbInput` (the one input table of
  :mod:`gda_gl.explorer.inputmap`);
- frames only on change: the controller's redraw requests and state changes call
  :meth:`RemoteFrameBuffer.request_draw`; nothing else does (a resize too, by jupyter_rfb).  An
  animation asks for the next frame after each one until it has landed.  jupyter_rfb sends a frame
  only when the browser has confirmed the previous ones (``max_buffered_frames``), so a slow link
  drops intermediate frames instead of queueing them;
- live follow: a :class:`~gda_gl.session.follow.Follower` polled from a tornado
  ``PeriodicCallback`` on the kernel's event loop; it stops once every followed run has finished.

The encoding is jupyter_rfb's: JPEG at :data:`QUALITY` while the view changes, then the same frame
again as a lossless PNG 0.3 s after the last change (see ``benchmarks/notebook_encoding.py`` for the
measurement behind the choice).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from pathlib import Path
from typing import Callable

import numpy as np
from jupyter_rfb import RemoteFrameBuffer

from gda_gl.explorer import picking
from gda_gl.explorer.export import export_controller_view
from gda_gl.explorer.frame_draw import draw_controller_frame
from gda_gl.session.files import save_state
from .events import RfbInput
from .target import gl_call

log = logging.getLogger(__name__)

__all__ = ["ExplorerFrameBuffer", "QUALITY"]

#: JPEG quality of frames sent while the view changes (the resting frame follows as PNG)
QUALITY = 85


class ExplorerFrameBuffer(RemoteFrameBuffer):
    """The explorer's curve as a jupyter_rfb widget.

    Parameters
    ----------
    ctrl : the explorer's controller
    target : the GL target (:class:`~gda_gl.notebook.target.GLTarget`) to draw into
    follower : the live sources to poll (a :class:`~gda_gl.session.follow.Follower`), if any
    poll_s : how often the live sources are polled
    export_dir : where key X writes the PNG and CSV (default: the kernel's current folder)
    state_file : where key S saves the view state (default: ``NAME.view.json`` beside the first run)
    """

    def __init__(self, ctrl, target, follower=None, poll_s: float = 0.2, export_dir: str | None = None,
                 state_file: str | None = None, **kw):
        w, h = ctrl.size
        kw.setdefault("css_width", f"{w}px")
        kw.setdefault("css_height", f"{h}px")
        kw.setdefault("quality", QUALITY)
        super().__init__(**kw)
        self.ctrl, self.target, self.follower = ctrl, target, follower
        self.poll_s, self.export_dir, self.state_file = poll_s, export_dir, state_file
        self.renderer = self.overlays = self.detail_renderer = None
        self.message = ""
        self.status = ""
        self.frames = 0
        self.draw_requests = 0
        self.frame_ms: deque[float] = deque(maxlen=60)
        self._status_fns: list[Callable[[], None]] = []
        self._poll_cb = None
        self._title_key = None
        # events may arrive on a kernel subshell's thread while the follower polls on the main one
        self.lock = threading.RLock()
        self.input = RfbInput(ctrl, self.request_redraw, self.say,
                              {"export": self.export, "save_state": self.save_state})
        ctrl.state.observe(lambda st, changed: self.request_redraw())
        ctrl.on_redraw(self.request_redraw)
        if follower is not None and follower.active:
            self.start_follow()

    # -- frames --------------------------------------------------------------------------------
    def request_redraw(self) -> None:
        """Something changed: ask jupyter_rfb for a frame (sent once the browser is ready for it)."""
        self.draw_requests += 1
        self.request_draw()

    def render(self) -> np.ndarray:
        """Draw the controller's view now; returns (height, width, 3) uint8 RGB (rows top-down)."""
        t0 = time.perf_counter()
        c = self.ctrl
        with self.lock:
            image = gl_call(self._draw)
            self.frames += 1
            self.frame_ms.append(1000.0 * (time.perf_counter() - t0))
            if self.input.mouse is not None:
                c.hover(*self.input.mouse)  # the view moved under a resting cursor
            self.refresh_status()
        if c.animating:
            self.request_redraw()
        return image

    def _draw(self) -> np.ndarray:
        """The GL part of :meth:`render` (on the GL thread)."""
        from gda_gl.gl.overlays import Overlays
        from gda_gl.gl.render import CurveRenderer

        c, t = self.ctrl, self.target
        t.resize(*c.size)
        with t:
            if self.renderer is None:
                self.renderer, self.overlays = CurveRenderer(), Overlays()
            title = self.follower.title() if self.follower is not None else None
            draw_controller_frame(c, self.renderer, self.overlays, title=title, box=self.input.box,
                                  frame_ms=self.frame_ms)
        return t.read_rgb()

    def get_frame(self):
        """jupyter_rfb's draw: the new frame, or None (and one status line) when drawing failed."""
        try:
            return self.render()
        except Exception as exc:  # a damaged file met while drawing, a lost GL context: say so, keep the widget
            self.say(f"cannot draw: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
            log.info("draw failed", exc_info=True)
            return None

    def handle_event(self, event: dict) -> None:
        """Input from the browser, through the explorer's input table (:class:`.events.RfbInput`)."""
        try:
            with self.lock:
                self.input.handle(event)
        except Exception as exc:  # one line in the status, never a traceback in the cell
            self.say(f"{event.get('type')}: {type(exc).__name__}: {' '.join(str(exc).split())[:200]}")
            log.info("event failed", exc_info=True)

    # -- details of the selected step -------------------------------------------------------------
    def render_details(self, width: int, height: int) -> tuple[np.ndarray | None, dict | None]:
        """The selected step's line search (:func:`gda_gl.gl.detail.draw_detail`) as RGB, with its numbers.

        Returns (None, None) when no step is selected or the selected run does not hold it.
        """
        from gda_gl.gl.detail import draw_detail
        from gda_gl.gl.render import CurveRenderer
        from gda_gl.compose.layout import Layout

        c = self.ctrl
        run, k = c.selected_run_data(), c.state.selected
        if run is None or k is None:
            return None, None

        def draw():
            fbo = self.target.extra("details", width, height)
            with fbo:
                if self.detail_renderer is None:
                    self.detail_renderer = CurveRenderer()
                lay = Layout(int(width), int(height), left=56, right=18, bottom=44, top=26)
                numbers = draw_detail(self.detail_renderer, run, int(k), lay, log_y=c.state.log_y)
                image = np.asarray(fbo.read(mode="color", alpha=False))
            return np.ascontiguousarray(image[..., :3]), dict(numbers or {}, run=run.name)

        with self.lock:
            return gl_call(draw)

    # -- status line -----------------------------------------------------------------------------
    def on_status(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` after the status line (or the view readout) may have changed."""
        self._status_fns.append(fn)

    def say(self, message: str) -> None:
        """Show ``message`` in the status line until the next message (or the cursor moves on)."""
        self.message = message or ""
        self.refresh_status()

    def refresh_status(self) -> None:
        """Recompute the status line: message, hover readout, highlight matches, live state."""
        c = self.ctrl
        parts = [self.message] if self.message else []
        if self.input.mouse is not None:
            parts.append(picking.hover_text(c.hover_info))
        parts.append(c.match_summary())
        if self.follower is not None and self.follower.title():
            parts.append(self.follower.title())
        self.status = "  |  ".join(p for p in parts if p)
        for fn in list(self._status_fns):
            fn()

    def view_text(self) -> str:
        """The drawn view in words: x range, whole run or not, steps, selected step."""
        c = self.ctrl
        v = c.view()
        f0, f1 = c.full_x_range()
        n = sum(len(r) for r in c.runs)
        whole = "whole run" if c.shows_whole() else "zoomed"
        sel = c.state.selected
        return (f"view x {picking.format_x(v.x0)} .. {picking.format_x(v.x1)} ({whole}; runs span "
                f"{picking.format_x(f0)} .. {picking.format_x(f1)}, {n:,} steps; {c.drawn_mode or '-'}; "
                f"selected {'-' if sel is None else sel})")

    # -- commands (keys X and S) -------------------------------------------------------------------
    def export(self) -> str:
        """Write the view as PNG and the visible rows as CSV (key X); returns the status message."""
        folder = Path(self.export_dir or Path.cwd())
        return export_controller_view(self.ctrl, self.render, self.request_redraw, folder)

    def save_state(self) -> str:
        """Save the view state (key S) to ``state_file`` or beside the first run; returns the message."""
        path = self.state_file
        if path is None and self.ctrl.runs and getattr(self.ctrl.runs[0], "path", None):
            p = Path(self.ctrl.runs[0].path)
            path = str(p.with_name(p.stem + ".view.json"))
        path = path or str(Path.cwd() / "gda_gl.view.json")
        try:
            saved = save_state(self.ctrl.state, path)
        except OSError as exc:
            return f"cannot save the view state to {path}: {exc}"
        self.state_file = str(saved)
        return f"view saved to {saved}"

    # -- live follow ---------------------------------------------------------------------------------
    def start_follow(self) -> bool:
        """Poll the live sources every ``poll_s`` on the kernel's event loop; False without a running loop."""
        import asyncio

        from tornado.ioloop import PeriodicCallback

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            log.info("no running event loop: call poll() to read new iterations")
            return False
        if self._poll_cb is None:
            self._poll_cb = PeriodicCallback(self.poll, self.poll_s * 1000.0)
        self._poll_cb.start()
        return True

    def stop_follow(self) -> None:
        if self._poll_cb is not None:
            self._poll_cb.stop()

    def poll(self) -> int:
        """Read the rows committed since the last poll (the controller redraws when there are any)."""
        f = self.follower
        if f is None:
            return 0
        try:
            with self.lock:
                n = f.poll()
        except Exception as exc:  # a vanished or damaged file: say so, keep the widget
            self.say(f"cannot read new iterations: {' '.join(str(exc).split())[:200]}")
            self.stop_follow()
            return 0
        title = f.title() or ""
        key = re.sub(r"\d+", "#", title)  # 'no new data for 3 s' -> 4 s is not a new frame
        if key != self._title_key:
            self._title_key = key
            self.request_redraw()
        elif not n:
            self.refresh_status()
        if f.watch is None and not f.pending and f.live_status and \
                not any(s.startswith("live") for s in f.live_status.values()):
            # every run finished: read once more (rows committed between this poll's read and its status
            # check), then stop: an idle widget costs nothing
            n += self._final_poll()
            self.stop_follow()
        return n

    def _final_poll(self) -> int:
        try:
            with self.lock:
                return self.follower.poll()
        except Exception as exc:
            self.say(f"cannot read new iterations: {' '.join(str(exc).split())[:200]}")
            return 0

    def close(self, *args, **kwargs) -> None:
        """Stop following, close the widget and its GL context."""
        self.stop_follow()
        super().close(*args, **kwargs)
        target, self.target = self.target, None
        if target is not None:
            try:
                gl_call(target.close)
            except Exception as exc:  # closing never raises into the notebook
                log.debug("close: %s", exc)
