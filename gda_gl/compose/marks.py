"""Epoch marks and rules of a run in a frame: where epochs start, where the mini-batch changes. Compute only.

The marks of every run share one row of labels under the x axis (drawn by the renderer where they
do not overlap; none on the epoch axis, whose ticks already are epochs).  Rules are faint vertical
lines: at mini-batch changes when they are few enough to tell apart, at epoch starts instead when
(nearly) every step is its own mini-batch (the usual SGD run: a rule at every step hatches the
plot and tells nothing).  With a few runs each run's batch-change rules take its colour; epoch rules
and the rules of many runs are neutral.
"""

from __future__ import annotations

import numpy as np

from recorder.codec import Iterations

from . import manyruns
from .frame import Frame, Rects
from .state import ViewState
from .style import RULE_COLOR
from .view import View

__all__ = ["epochs_and_rules", "rule_positions"]


def rule_positions(d: Iterations, epoch_starts: np.ndarray) -> np.ndarray:
    """Iterations where a rule is drawn: the mini-batch changes, or the epoch starts when (nearly) every step
    is its own mini-batch (a rule at every step would hatch the plot and says nothing)."""
    changes = np.nonzero(np.diff(d["batch"]) != 0)[0] + 1
    if len(changes) >= 0.9 * (len(d) - 1):
        return epoch_starts
    return d.iteration[changes].astype(np.float64)


def epochs_and_rules(frame: Frame, w, state: ViewState, view: View, width_px: int) -> None:
    """Epoch marks and rules of one run (rules when they are few enough to tell apart).

    The marks of every run share one row of labels under the axis (none on the epoch axis: its ticks are
    epochs); with a few runs each run's batch-change rules take its colour, so one run's batch changes are
    never drawn as another's; epoch rules and the rules of many runs are neutral.
    """
    x0 = view.x0
    if w.recs is not None and w.level is not None:
        ef, el = w.recs["epoch_first"], w.recs["epoch_last"]
        idx = np.nonzero(ef[1:] != el[:-1])[0] + 1
        us = w.recs["first_it"][idx].astype(np.float64)
        eps = ef[idx]
    else:
        d = w.rows
        if d is None or len(d) < 2:
            return
        e = d["epoch"]
        idx = np.nonzero(np.diff(e) != 0)[0] + 1
        us, eps = d.iteration[idx].astype(np.float64), e[idx]
        if state.show_rules:
            bu = rule_positions(d, us)
            bu = bu[(bu >= w.u0) & (bu <= w.u1)]
            if 0 < len(bu) <= width_px / 4:
                rx = _new_positions(frame, w.x(bu) - x0)
                color = RULE_COLOR if bu is us or frame.runs <= 1 or manyruns.sweep_style(frame.runs) else \
                    tuple(float(c) for c in w.color[:3]) + (0.35,)
                frame.add(Rects("rules", np.stack([rx, np.zeros_like(rx), rx, np.full_like(rx, view.y1 - view.y0)],
                                                  axis=1), color))
    sel = (us >= w.u0) & (us <= w.u1)
    if state.x_axis != "epoch":
        have = {(round(m[0] * view.px_per_x), m[1]) for m in frame.epoch_marks}  # runs sharing epochs: one label
        for x, e in zip(w.x(us[sel]) - x0, eps[sel]):
            if (round(x * view.px_per_x), int(e)) not in have:
                frame.epoch_marks.append((float(x), int(e), 0, tuple(float(c) for c in w.color)))
        frame.epoch_marks.sort(key=lambda m: m[0])


def _new_positions(frame: Frame, rx: np.ndarray) -> np.ndarray:
    """Rule positions no earlier run's rule already takes (runs sharing epoch starts draw each rule once)."""
    have = [r.rects[:, 0] for r in frame.of("rules")]
    return rx[~np.isin(rx, np.concatenate(have))] if have else rx
