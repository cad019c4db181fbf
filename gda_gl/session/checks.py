"""A view state checked against the runs it is applied to: one line (:class:`UsageError`) per problem.

Shared by the faces, so ``gda-gl render``/``compare`` and the notebook's ``view(...)`` refuse the same
states with the same words before anything is drawn: an x axis a run cannot provide, a series no run
holds (named by the option or state field that asked for it), a highlight condition that does not parse.
"""

from __future__ import annotations

from .errors import UsageError

__all__ = ["check_axis", "check_series", "check_highlight", "check_state"]


def check_axis(runs, state) -> None:
    """Refuse, in one line, an x axis a run cannot provide (no wall time, no samples per step)."""
    from gda_gl.compose.xaxis import unavailable

    for r in runs:
        why = unavailable(r, state.x_axis)
        if why:
            raise UsageError(f"--x-axis {state.x_axis}: {why}")


def check_series(runs, state) -> None:
    """Refuse series names no run holds, in one line naming those it holds."""
    from gda_gl.compose.seriesview import available

    have = available(runs)
    missing = [n for n in (state.series or ()) if n not in have]
    if missing:
        opt = "--series-log" if missing[0] in (getattr(state, "series_log", None) or ()) else "--series"
        raise UsageError(f"{opt} {missing[0]!r}: no such series (these runs hold: {', '.join(have)[:300]})")


def check_highlight(state) -> None:
    """Refuse a highlight condition that does not parse."""
    if state.highlight:
        from gda_gl.compose.scene import parse_filter

        try:
            parse_filter(state.highlight)
        except ValueError as exc:
            raise UsageError(f"--highlight: {exc}") from None


def check_state(runs, state, series: bool = True) -> None:
    """Every check above (``series=False``: not the series, for runs still being followed)."""
    check_axis(runs, state)
    if series:
        check_series(runs, state)
    check_highlight(state)
