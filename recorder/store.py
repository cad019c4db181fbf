"""Crash-safe recording store: the public face of the recording modules.

The store is split by responsibility; this module re-exports the public names
so ``from recorder.store import ...`` keeps working:

* :mod:`recorder.codec`  -- block encode/decode (one validating decoder) and :class:`Iterations`
* :mod:`recorder.writer` -- :class:`RecordingWriter`, the append-only writer
* :mod:`recorder.reader` -- :class:`Recording` and :func:`open_recordings`, read-only access
* :mod:`recorder.lock`   -- writer liveness (``meta.writer``)
* :mod:`recorder.fsutil` -- file-system sniffing and the pre-check before SQLite opens a file
"""

from __future__ import annotations

from .codec import Iterations
from .fsutil import check_recording_file
from .lock import writer_alive
from .reader import Recording, open_recordings
from .writer import RecordingWriter

__all__ = ["Iterations", "Recording", "RecordingWriter", "open_recordings", "check_recording_file", "writer_alive"]
