"""Every per-iteration statistic, declared once.

A :class:`Statistic` says what a number is (name, stored dtype, description),
how it aggregates over a bucket of iterations in the level-of-detail pyramid
(``"float"``: min, max, sum and count of finite values; ``"codes"``: a count
per code), how a viewer colours it, labels it and formats it.  The pyramid
(:mod:`recorder.pyramid`), the highlight filter and colour-by, the details table
(:func:`gda_gl.compose.detail.detail_numbers`), the hover readout, ``info``
(:mod:`gda_gl.compose.summary`) and ``compare`` all read this table, so a new
statistic shows in each of them unchanged.  The file format does not: what each
schema version stores is frozen in :mod:`recorder.schema`, and a statistic
added here is stored as an optional column that older files simply lack
(they read it as its default; see "New statistics" there).  Adding a
statistic means one entry here, its computation in :mod:`recorder.linestats`
(or the recorder), and its pin in :data:`recorder.schema.OPTIONAL_V2` when it
is released (``tests/test_format.py`` says so if it is missing).

Plain data only (no numpy colormaps, no GL): the viewer turns ``colormap``
and ``color_range`` into colours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Statistic", "STATISTICS", "STAT_BY_NAME", "COLOR_BY", "FLOAT_AGGREGATED", "CODE_AGGREGATED",
           "STATUS_NAMES", "CLASS_NAMES", "format_value"]

#: Probe status codes (``status`` column).
STATUS_OK, STATUS_NONFINITE, STATUS_FAILED, STATUS_SKIPPED = 0, 1, 2, 3
STATUS_NAMES = {STATUS_OK: "ok", STATUS_NONFINITE: "non-finite", STATUS_FAILED: "failed", STATUS_SKIPPED: "skipped"}

#: Step classes (``step_class`` column).
CLASS_UNKNOWN, CLASS_UNDERSHOOT, CLASS_NEAR_OPTIMAL, CLASS_OVERSHOOT = 0, 1, 2, 3
CLASS_NAMES = {CLASS_UNKNOWN: "unknown", CLASS_UNDERSHOOT: "undershoot", CLASS_NEAR_OPTIMAL: "near-optimal",
               CLASS_OVERSHOOT: "overshoot"}


@dataclass(frozen=True)
class Statistic:
    """One per-iteration number.

    Attributes
    ----------
    name : column name in the recording
    dtype : little-endian numpy dtype string as stored (schema 2)
    description : one line, shown in ``info``, tooltips and the schema docs
    label : short human label (axis titles, legends)
    aggregate : ``"float"`` (min/max/sum/count of finite values per bucket), ``"codes"`` (count per code
        in ``codes``) or ``None`` (not aggregated: identity columns)
    codes : code -> name for ``"codes"`` statistics
    colormap : ``"viridis"``-style continuous map, ``"classes"`` for codes, ``None``: not colourable
    color_range : fixed colour range, or ``None`` for the 2nd..98th percentile of what is visible
    fmt : Python format spec for readouts
    """

    name: str
    dtype: str
    description: str
    label: str = ""
    aggregate: str | None = "float"
    codes: tuple[tuple[int, str], ...] = ()
    colormap: str | None = None
    color_range: tuple[float, float] | None = None
    fmt: str = ".4g"

    @property
    def title(self) -> str:
        return self.label or self.name.replace("_", " ")


_CLASS_CODES = tuple(sorted(CLASS_NAMES.items()))
_STATUS_CODES = tuple(sorted(STATUS_NAMES.items()))

#: Every scalar per-iteration field of a recording, in storage order.
STATISTICS: tuple[Statistic, ...] = (
    Statistic("iteration", "<i8", "global iteration number, strictly increasing", "iteration", None, fmt="d"),
    Statistic("epoch", "<i4", "epoch the iteration belongs to", "epoch", None, fmt="d"),
    Statistic("batch", "<i8", "mini-batch id; changes when the step's data (all its micro-batches) changes",
              "batch", None, fmt="d"),
    Statistic("taken_alpha", "<f8", "accepted step in units of d_k (1.0 normally)", "accepted alpha", None),
    Statistic("native_step", "<f8", "the optimizer's own step length (lr or line-search step)", "native step",
              None),
    Statistic("train_loss", "<f4", "training loss at w_k (train mode): the mean of the losses of the "
              "micro-batches back-propagated since the previous step (their sum when each is normalised over the "
              "step, e.g. HF num_items_in_batch)", "training loss", colormap="viridis"),
    Statistic("step_norm", "<f4", "||w_{k+1} - w_k||", "step norm", colormap="viridis"),
    Statistic("grad_norm", "<f4", "||g||, g = the gradient back-propagated since the previous step (summed over "
              "its backward calls), copied at the end of each backward: before gradient clipping or any other change "
              "made before step(); parameters without a gradient count as zero; under DDP p.grad at step() (after "
              "the all-reduce and any clipping); NaN when unknown",
              "gradient norm", colormap="viridis"),
    Statistic("lr", "<f8", "learning rate of the first parameter group", "learning rate", colormap="viridis"),
    Statistic("wall_time", "<f8", "unix time when the step finished", "wall time", fmt=".3f"),
    Statistic("status", "<i1", "probe status: 0 ok, 1 non-finite, 2 failed, 3 skipped", "probe status", "codes",
              _STATUS_CODES, fmt="d"),
    Statistic("ls_evals", "<i4", "loss evaluations of the optimizer's line search (0 without one)",
              "line-search evaluations", colormap="viridis", fmt="d"),
    Statistic("min_alpha", "<f4", "alpha of the grid minimum of phi", "alpha of min phi", colormap="viridis"),
    Statistic("min_phi", "<f4", "grid minimum of phi", "min phi", colormap="viridis"),
    Statistic("efficiency", "<f4", "(phi(0) - phi(taken)) / (phi(0) - min phi)", "step efficiency",
              colormap="viridis", color_range=(0.0, 1.0), fmt=".3f"),
    Statistic("step_class", "<i1", "0 unknown, 1 undershoot, 2 near-optimal, 3 overshoot", "step class", "codes",
              _CLASS_CODES, colormap="classes", fmt="d"),
    Statistic("curvature", "<f4", "phi'' of the least-squares parabola along d_k", "curvature phi''",
              colormap="viridis"),
    Statistic("slope0", "<f4", "phi'(0) = g . d_k, g as for grad_norm (a line-search optimizer's own phi'(0) when it "
              "reports one)", "slope phi'(0)",
              colormap="viridis"),
    Statistic("cockpit_alpha", "<f4", "step position on the parabola: -1 start, 0 valley floor, +1 opposite wall",
              "Cockpit alpha", colormap="viridis", color_range=(-1.0, 1.0), fmt=".3f"),
    Statistic("micro_batches", "<i4", "micro-batches train_loss (and phi, unless a fixed probe set is used) are "
              "over: those back-propagated since the previous step, at most ProbeConfig.max_micro_batches",
              "micro-batches", None, fmt="d"),
    Statistic("samples", "<i8", "samples the step trained on: the batch sizes (dimension 0 of the target, else of "
              "the first input; ProbeConfig.batch_dim for the inputs) of every micro-batch back-propagated since the "
              "previous step, times the number of ranks under distributed training; 0 when not recorded",
              "samples", fmt="d"),
)

STAT_BY_NAME: dict[str, Statistic] = {s.name: s for s in STATISTICS}
#: statistics aggregated as min/max/sum/count in the pyramid
FLOAT_AGGREGATED: tuple[str, ...] = tuple(s.name for s in STATISTICS if s.aggregate == "float")
#: statistics aggregated as counts per code
CODE_AGGREGATED: tuple[str, ...] = tuple(s.name for s in STATISTICS if s.aggregate == "codes")
#: statistics a viewer may colour by, in menu order
COLOR_BY: tuple[str, ...] = ("efficiency", "step_class", "curvature", "cockpit_alpha", "slope0", "ls_evals",
                             "grad_norm", "step_norm", "lr", "train_loss", "min_alpha")
assert all(STAT_BY_NAME[n].colormap for n in COLOR_BY)


def format_value(name: str, value) -> str:
    """Format a statistic's value for readouts (``nan`` and codes handled)."""
    st = STAT_BY_NAME.get(name)
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "nan"
    if st is not None and st.codes:
        return dict(st.codes).get(int(v), str(int(v)))
    if st is not None and st.fmt == "d":
        return str(int(v))
    return format(v, st.fmt if st is not None else ".4g")
