"""The notebook widget's GL target: an EGL context (no window) with resizable offscreen framebuffers.

The same route as ``gda-gl render`` (:class:`gda_gl.gl.export.Offscreen`): VisPy's ``egl`` backend
chosen by :func:`gda_gl.gl.backend.use_backend` (Mesa llvmpipe on CPUs, the NVIDIA EGL driver on a
GPU machine), a hidden canvas for the context and a colour renderbuffer bound to a framebuffer
object.  The widget draws two pictures in that one context: the curve (its size follows the
browser's frame) and the details of the selected step, each in its own framebuffer, so the GL
programs of both renderers live in one context and nothing is re-created on a resize.

Threads: an EGL context is current in one thread at a time, and JupyterLab may deliver a widget's
messages on a kernel *subshell* (another thread than the one that ran the cell), so every GL call
of the notebook goes through :func:`gl_call`, which runs it on one thread (``gda-gl-render``) that
owns every context of the kernel's widgets.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, TypeVar

import numpy as np

from gda_gl.gl.export import Offscreen

log = logging.getLogger(__name__)

__all__ = ["GLTarget", "gl_call"]

T = TypeVar("T")
_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_on_gl_thread = threading.local()


def _mark() -> None:
    _on_gl_thread.yes = True


def gl_call(fn: Callable[..., T], *args, **kwargs) -> T:
    """Run ``fn`` on the kernel's one GL thread and return its result (its exception is raised here)."""
    global _executor
    if getattr(_on_gl_thread, "yes", False):
        return fn(*args, **kwargs)
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(1, thread_name_prefix="gda-gl-render", initializer=_mark)
    return _executor.submit(fn, *args, **kwargs).result()


class GLTarget(Offscreen):
    """An :class:`~gda_gl.gl.export.Offscreen` whose framebuffer can be resized, plus extra framebuffers.

    Parameters
    ----------
    width, height : initial size of the main framebuffer in pixels
    """

    def __init__(self, width: int, height: int):
        super().__init__(width, height)
        self._extra: dict[str, tuple] = {}

    def resize(self, width: int, height: int) -> bool:
        """Resize the main framebuffer; returns whether the size changed."""
        width, height = max(1, int(width)), max(1, int(height))
        if (width, height) == (self.width, self.height):
            return False
        self.canvas.set_current()
        self.color.resize((height, width))
        self.width, self.height = width, height
        return True

    def read_rgb(self) -> np.ndarray:
        """The main framebuffer as (height, width, 3) uint8 RGB, rows top-down, C-contiguous."""
        return np.ascontiguousarray(self.read()[..., :3])

    def extra(self, name: str, width: int, height: int):
        """A second framebuffer ``name`` of the given size in this context, (re)created as needed.

        Returns the :class:`vispy.gloo.FrameBuffer`; ``with`` it (after :meth:`activate_context`) to draw.
        """
        from vispy import gloo

        width, height = max(1, int(width)), max(1, int(height))
        self.canvas.set_current()
        held = self._extra.get(name)
        if held is None:
            color = gloo.RenderBuffer((height, width), "color")
            held = (color, gloo.FrameBuffer(color=color))
            self._extra[name] = held
        elif held[0].shape[:2] != (height, width):
            held[0].resize((height, width))
        return held[1]

    def activate_context(self) -> None:
        """Make this target's GL context current (several widgets may live in one kernel)."""
        self.canvas.set_current()
