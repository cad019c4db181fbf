"""The highlight filter of the explorer: which steps match, how many are in view, the next match.

Compute only.  :class:`Matches` caches the matching iterations per (filter,
visibility, run lengths) and, for runs too long to filter whole, per drawn x
range.  Runs of at most :data:`MATCH_ROWS` rows are filtered whole (one column
read); a longer run contributes the matches among the rows in the drawn view
when those are at most :data:`MATCH_ROWS`, else none; the frame's bucket counts
(``drawn_match``, from the composition) then give the number in view.
"""

from __future__ import annotations


import numpy as np

from gda_gl.compose.scene import RunData, highlight_mask
from gda_gl.compose.view import View

__all__ = ["HIGHLIGHTS", "MATCH_ROWS", "Matches", "summary"]

#: The highlight filters key H cycles through (None: no filter).
HIGHLIGHTS = (None, "overshoot", "undershoot", "efficiency<0.5", "failed", "nonfinite")

MATCH_ROWS = 200_000  # the highlight filter reads whole runs up to this many rows (else the drawn window)


class Matches:
    """Iterations matching a highlight filter, per visible run (sorted, unique; cached).

    Steps are a run's own: the count in view adds each run's matches inside that run's iterations in
    view (:meth:`~gda_gl.compose.view.View.iterations_of`), which differ per run on every axis but the
    iteration axis.
    """

    def __init__(self):
        self._key = None
        self._values = np.empty(0, np.int64)
        self.per_run: dict[int, np.ndarray] = {}
        self.whole = True   # whether the last result covers every visible run completely

    def invalidate(self) -> None:
        self._key = None

    def get(self, runs: list[RunData], highlight: str | None, v: View) -> np.ndarray:
        """The matching iterations of the visible ``runs``, all runs together (see the module docstring for
        long runs); :attr:`per_run` holds them by run index."""
        base = (highlight, tuple(bool(getattr(r, "visible", True)) for r in runs), tuple(len(r) for r in runs))
        vkey = (v.x0, v.x1, v.axis)
        if self._key is not None and self._key[0] == base and (self.whole or self._key[1] == vkey):
            return self._values
        per_run, whole = {}, True
        for i, run in enumerate(runs):
            if not getattr(run, "visible", True) or len(run) == 0:
                continue
            if len(run) <= MATCH_ROWS:
                d = run.data
            else:
                whole = False
                its = v.iterations_of(i)
                if its is None or run.windows.rows_in_range(*its.steps()) > MATCH_ROWS:
                    continue
                d = run.rows(*its.steps())
            m = highlight_mask(d, highlight)
            if m is not None:
                per_run[i] = np.unique(d.iteration[m])
        self.per_run = per_run
        self._values = np.unique(np.concatenate(list(per_run.values()))) if per_run else np.empty(0, np.int64)
        self._key, self.whole = (base, vkey), whole
        return self._values

    def in_view(self, v: View) -> int:
        """Matching steps inside the view: each run's matches within its own iterations in view."""
        n = 0
        for i, m in self.per_run.items():
            its = v.iterations_of(i)
            if its is not None:
                lo, hi = its.steps()
                n += int(np.searchsorted(m, hi, side="left") - np.searchsorted(m, lo, side="left"))
        return n

    def total(self) -> int:
        """Matching steps over every run (a step is a run's own: runs sharing an iteration count twice)."""
        return sum(len(m) for m in self.per_run.values())


def summary(highlight: str | None, matches: Matches, v: View, drawn_match: tuple | None) -> str:
    """``highlight X: N steps (M in view)`` for the status line, or '' without a filter (after
    :meth:`Matches.get` for this view)."""
    if not highlight:
        return ""
    if matches.whole:
        return f"highlight {highlight}: {matches.total():,} steps ({matches.in_view(v):,} in view)"
    count, exact = drawn_match if drawn_match is not None else (None, True)
    if count is None:
        return f"highlight {highlight}: {matches.in_view(v):,} in view"
    return f"highlight {highlight}: {'' if exact else 'at most '}{count:,} in view"


def next_match(m: np.ndarray, ref: float, direction: int) -> int | None:
    """The first matching iteration after (+1) or before (-1) ``ref`` (an iteration), or None."""
    if len(m) == 0:
        return None
    i = int(np.searchsorted(m, ref, side="right" if direction > 0 else "left"))
    i = i if direction > 0 else i - 1
    return int(m[i]) if 0 <= i < len(m) else None
