"""The findings of drawn runs, numbered as ``gda-gl diagnose`` numbers them, and the view that shows each.

The detection is the recorder's (:mod:`recorder.diagnose`); this module turns its reports into what
the faces need: one line per entry for a list, and for entry N the run, the iteration to select and
the x range (iterations) in which the entry is visible with some context (:func:`padded`).  Compute
only; ``gda-gl render --finding N``, the window's findings list and keys, and the notebook's list
all read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Finding", "findings_of", "padded", "PAD_SHARE", "MIN_PAD"]

#: a finding's span is shown with this share of its width on either side ...
PAD_SHARE = 0.5
#: ... and at least this many iterations (a spike's two lines and their neighbours)
MIN_PAD = 8.0


@dataclass(frozen=True)
class Finding:
    """Entry N of the runs' diagnosis.

    Attributes
    ----------
    number : N (from 1, first run first; step-size windows, spikes, other findings)
    run_index : the run it belongs to (index into the runs given)
    section : ``"step_size"``, ``"spikes"`` or ``"findings"``
    entry : the JSON entry
    line : one line of text (``#N run: ...``)
    """

    number: int
    run_index: int
    section: str
    entry: dict
    line: str

    @property
    def x_range(self) -> tuple[float, float]:
        """Iterations that show the entry with context."""
        from recorder.diagnose import span_of

        return padded(*span_of(self.section, self.entry))

    @property
    def iteration(self) -> int | None:
        """The step to select: a spike's iteration, else None."""
        it = self.entry.get("iteration")
        return None if it is None else int(it)


def padded(lo: float, hi: float) -> tuple[float, float]:
    """``[lo, hi)`` widened so that the finding and some context are visible."""
    pad = max(MIN_PAD, PAD_SHARE * (hi - lo))
    return (math.floor(lo - pad), math.ceil(hi + pad))


def findings_of(recordings, names=None) -> list[Finding]:
    """Every entry of the recordings' diagnosis, numbered (runs with nothing to say contribute none).

    Parameters
    ----------
    recordings : open :class:`recorder.reader.Recording` objects (None for a run without a file)
    names : the runs' display names (default: the recordings' names)
    """
    from recorder.diagnose import NothingToSay, diagnose, numbered
    from recorder.diagnose.report import entry_line

    reports, owners = [], []
    for i, rec in enumerate(recordings):
        if rec is None:
            continue
        try:
            reports.append(diagnose(rec))
            owners.append(i)
        except NothingToSay:
            continue
    out = []
    for n, r, section, entry in numbered(reports):
        name = names[owners[r]] if names is not None else reports[r]["run"]
        out.append(Finding(n, owners[r], section, entry, f"#{n} {name}: {entry_line(section, entry)}"))
    return out
