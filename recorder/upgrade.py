"""``gda-gl upgrade OLD.gda NEW.gda``: a schema-2 copy of a recording, the source left untouched.

Schema-1 files (gda_gl 0.1) have no stored pyramid: every open indexes them in
memory with one streaming pass.  Upgrading writes a new file through the normal
writer, block by block (memory bounded by one block), so the copy gets
compressed blocks and the stored pyramid; events and run metadata are copied.
The source is opened read-only and never modified; the target must not exist.
"""

from __future__ import annotations

import os

import numpy as np

from .errors import RecordingError
from .reader import Recording
from .writer import RecordingWriter

__all__ = ["upgrade"]


def upgrade(src: str | os.PathLike, dst: str | os.PathLike) -> int:
    """Copy ``src`` into a new schema-2 recording at ``dst``; returns the rows copied.

    Raises
    ------
    RecordingError
        ``src`` is not a readable recording, or ``dst`` exists or cannot be written.
    """
    if os.path.lexists(dst):
        raise RecordingError(dst, "already exists (upgrade writes a new file and never replaces one)")
    with Recording(src) as rec:
        try:
            if os.path.samefile(os.path.dirname(os.path.abspath(dst)) or ".", rec.path.parent) and \
                    os.path.basename(dst) == rec.path.name:
                raise RecordingError(dst, "is the source recording")
        except OSError:
            pass
        index = rec.block_ids()
        rows = 0
        with RecordingWriter(dst, rec.alpha_grid, rec.run, commit_interval=3600.0) as w:
            for bid in index:
                d = rec.read_block(bid)
                w.append_arrays(d.columns, d.phi, np.diff(d.trial_offsets), d.trials)
                rows += len(d)
                w.flush()
            for it, wt, kind, msg in rec.events():
                w.add_event(kind, msg, it)
    return rows
