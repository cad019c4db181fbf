"""Choose VisPy's application backend once, before any canvas exists.

VisPy must never auto-pick on a headless machine (with PyQt6 installed it
aborts the process).  Rule: ``egl`` (Mesa llvmpipe or the NVIDIA EGL driver,
surfaceless) when offscreen rendering is asked for, or when neither
``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set; otherwise the desktop toolkit.
``GDA_GL_BACKEND`` forces a VisPy backend name.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

_chosen: str | None = None


class BackendError(RuntimeError):
    """No usable OpenGL backend; the message says what to install."""


def has_display() -> bool:
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def use_backend(offscreen: bool = True) -> str:
    """Select and return the VisPy backend name (idempotent for the process)."""
    global _chosen
    if _chosen is not None:
        return _chosen
    name = os.environ.get("GDA_GL_BACKEND") or ("egl" if offscreen or not has_display() else "pyqt6")
    if name == "egl":
        os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    import vispy

    try:
        vispy.use(app=name)
    except Exception as exc:
        hint = ("install Mesa EGL: apt-get install -y --no-install-recommends libegl1 libegl-mesa0 "
                "libgl1-mesa-dri libgl1 libfontconfig1" if name == "egl" else f"install the gui extra ({exc})")
        raise BackendError(f"no OpenGL backend {name!r}: {hint}") from None
    _chosen = name
    log.info("VisPy backend: %s", name)
    return name
