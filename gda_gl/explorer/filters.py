"""The highlight filter of the explorer: which steps match, how many are in view, the next match.

Compute only.  :class:`Matches` caches the matching iterations per (filter,
visibility, run lengths) and, for runs too long to filter whole, per drawn x
range.  Runs of at most :data:`MATCH_ROWS` rows are filtered whole (one column
read); a longer run contributes the matches among the rows in the drawn view
when those are at most :data:`MATCH_ROWS`, else none; the frame's bucket counts
(``drawn_match``, from the composition) then give the number in view.
"""

from __future__ import annotations

import math

import numpy as np

from gda_gl.compose.scene import RunData, highlight_mask
from gda_gl.compose.view import View

__all__ = ["HIGHLIGHTS", "MATCH_ROWS", "Matches", "summary"]

#: The highlight filters key H cycles through (None: no filter).
HIGHLIGHTS = (None, "overshoot", "undershoot", "efficiency<0.5", "failed", "nonfinite")

MATCH_ROWS = 200_000  # the highlight filter reads whole runs up to this many rows (else the drawn window)


class Matches:
    """Iterations matching a highlight filter over the visible runs (sorted, unique; cached)."""

    def __init__(self):
        self._key = None
        self._values = np.empty(0, np.int64)
        self.whole = True   # whether the last result covers every visible run completely

    def invalidate(self) -> None:
        self._key = None

    def get(self, runs: list[RunData], highlight: str | None, v: View) -> np.ndarray:
        """The matching iterations of the visible ``runs`` (see the module docstring for long runs)."""
        base = (highlight, tuple(bool(getattr(r, "visible", True)) for r in runs), tuple(len(r) for r in runs))
        vkey = (v.x0, v.x1)
        if self._key is not None and self._key[0] == base and (self.whole or self._key[1] == vkey):
            return self._values
        parts, whole = [], True
        for run in runs:
            if not getattr(run, "visible", True) or len(run) == 0:
                continue
            if len(run) <= MATCH_ROWS:
                d = run.data
            else:
                whole = False
                if run.windows.rows_in_range(math.floor(v.x0), v.x1) > MATCH_ROWS:
                    continue
                d = run.rows(math.floor(v.x0), v.x1)
            m = highlight_mask(d, highlight)
            if m is not None:
                parts.append(d.iteration[m])
        self._values = np.unique(np.concatenate(parts)) if parts else np.empty(0, np.int64)
        self._key, self.whole = (base, vkey), whole
        return self._values


def summary(highlight: str | None, m: np.ndarray, whole: bool, v: View, drawn_match: tuple | None) -> str:
    """``highlight X: N steps (M in view)`` for the status line, or '' without a filter."""
    if not highlight:
        return ""
    lo = int(np.searchsorted(m, math.floor(v.x0), side="left"))
    hi = int(np.searchsorted(m, math.ceil(v.x1), side="left"))
    if whole:
        return f"highlight {highlight}: {len(m):,} steps ({max(0, hi - lo):,} in view)"
    count, exact = drawn_match if drawn_match is not None else (None, True)
    if count is None:
        return f"highlight {highlight}: {max(0, hi - lo):,} in view"
    return f"highlight {highlight}: {'' if exact else 'at most '}{count:,} in view"


def next_match(m: np.ndarray, ref: float, direction: int) -> int | None:
    """The first matching iteration after (+1) or before (-1) ``ref``, or None."""
    if len(m) == 0:
        return None
    i = int(np.searchsorted(m, ref, side="right" if direction > 0 else "left"))
    i = i if direction > 0 else i - 1
    return int(m[i]) if 0 <= i < len(m) else None
