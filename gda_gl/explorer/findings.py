"""The findings of the shown runs in the explorer: a numbered list, and a flight to each (keys J / K).

:class:`FindingsNav` belongs to one controller.  It computes the runs' findings
(:func:`gda_gl.compose.findings.findings_of`, the numbering of ``gda-gl diagnose``) on first use and
again when the runs have grown (at most every :data:`REFRESH_S` seconds for live runs), and
:meth:`FindingsNav.show` flies the view to a finding: the iteration axis, the finding's span with
context, its spike's step selected.  No toolkit: the Qt panel and the notebook list call it.
"""

from __future__ import annotations

import time

__all__ = ["FindingsNav", "REFRESH_S"]

#: a live run's findings are computed again at most this often
REFRESH_S = 5.0


class FindingsNav:
    """Findings of the controller's runs and the flight to each (see the module docstring)."""

    def __init__(self, ctrl):
        self.ctrl = ctrl
        self.current: int | None = None  # number of the finding shown last
        self._found: list | None = None
        self._key = None
        self._t = 0.0

    def _runs_key(self) -> tuple:
        return tuple((id(r), len(r)) for r in self.ctrl.runs)

    def all(self) -> list:
        """The findings (:class:`gda_gl.compose.findings.Finding`), in ``diagnose``'s order."""
        from gda_gl.compose.findings import findings_of

        key = self._runs_key()
        stale = self._found is None or (key != self._key and time.monotonic() - self._t >= REFRESH_S)
        if stale:
            runs = self.ctrl.runs
            self._found = findings_of([getattr(r.windows, "recording", None) for r in runs], [r.name for r in runs])
            self._key, self._t = key, time.monotonic()
        return self._found

    def show(self, number: int) -> str:
        """Fly to finding ``number``; returns the status line (its text)."""
        found = self.all()
        if not 1 <= number <= len(found):
            return f"no finding {number} ({len(found)} found)"
        f = found[number - 1]
        c = self.ctrl
        if c.state.x_axis != "iteration":
            c.set_x_axis("iteration")
        c.select(f.run_index, f.iteration)
        c.set_x_range(f.x_range)
        self.current = number
        return f.line

    def jump(self, direction: int) -> str:
        """The next (+1) or previous (-1) finding after the one shown last."""
        found = self.all()
        if not found:
            return "no findings (gda-gl diagnose found nothing to say)"
        if self.current is None:
            n = 1 if direction > 0 else len(found)
        else:
            n = self.current + direction
        if not 1 <= n <= len(found):
            return "no further finding" if direction > 0 else "no earlier finding"
        return self.show(n)
