"""recorder: the training side of gda_gl.

Measures the line function phi_k(alpha) = L(w_k + alpha d_k) at every optimizer
step of an unchanged PyTorch training loop and appends it to a crash-safe
recording (:mod:`recorder.store`, format in :mod:`recorder.schema`).

This package never imports ``gda_gl``, VisPy or OpenGL.  Importing it is cheap:
torch is imported only when a torch-facing name (``attach``, ``Probe``, ...) is
first used, so the viewer can read recordings through :mod:`recorder.store`
without torch.
"""

from __future__ import annotations

import importlib

from ._version import __version__
from .errors import RecordingBusyError, RecordingError

_LAZY = {
    "attach": "recorder.hooks",
    "Recorder": "recorder.hooks",
    "ProbeConfig": "recorder.probe",
    "PRESETS": "recorder.probe",
    "MicroBatch": "recorder.probe",
    "Recording": "recorder.store",
    "RecordingWriter": "recorder.store",
    "open_recordings": "recorder.store",
}

__all__ = ["__version__", "RecordingError", "RecordingBusyError", *_LAZY]


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'recorder' has no attribute {name!r}")
    return getattr(importlib.import_module(mod), name)
