"""The interaction state: one object that the canvas, the panels and headless rendering share.

A view is reproducible: :meth:`ViewState.to_json` / :meth:`ViewState.from_json`
save and restore it (``gda-gl view --state F``, ``gda-gl render --state F``).
Observers subscribe with :meth:`ViewState.observe` and are called after every
change.  Ranges are in iterations (x) and loss (y, data units even in log
scale); ``None`` means "fit to the data".
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, fields
from typing import Callable

from recorder import stats as _stats

__all__ = ["ViewState", "COLOR_BY_CHOICES"]

#: Bounds of stored ranges: iterations are int64 (and a float64 x axis keeps them apart up to 2**53);
#: losses are finite float64 with room for padding.
_X_BOUND = float(2 ** 62)
_Y_BOUND = 1e300


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a number a view state may hold")


def _number(key: str, v, *, integer: bool, bound: float):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{key} must hold numbers")
    if not (math.isfinite(v) and abs(v) <= bound):
        raise ValueError(f"{key} holds {v!r}, outside +-{bound:g}")
    if integer:
        if not float(v).is_integer():
            raise ValueError(f"{key} must hold integers")
        return int(v)
    return float(v)


def _range(key: str, v, *, integer: bool, bound: float) -> tuple:
    if not (isinstance(v, list) and len(v) == 2):
        raise ValueError(f"{key} must be a list of two numbers")
    lo, hi = (_number(key, x, integer=integer, bound=bound) for x in v)
    if hi < lo or (not integer and hi == lo):
        raise ValueError(f"{key} must be increasing (got {lo:g}, {hi:g})")
    return lo, hi

def _names(key: str, v) -> tuple[str, ...]:
    """A list of series names (short texts, at most 64 of them)."""
    if not (isinstance(v, list) and len(v) <= 64 and all(isinstance(n, str) and 0 < len(n) <= 200 for n in v)):
        raise ValueError(f"{key} must be a list of at most 64 series names")
    return tuple(v)


def _boolean(key: str, v) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{key} must be true or false")
    return v


def _one_of(choices, what: str):
    def check(key: str, v):
        if v not in choices:
            raise ValueError(f"{key}: {what} {str(v)[:40]!r} (choose from {', '.join(choices)})")
        return v
    return check


def _short_text(key: str, v) -> str:
    if not (isinstance(v, str) and len(v) <= 200):
        raise ValueError(f"{key} must be a short text")
    return v


def is_param_name(v) -> bool:
    """Whether a colour-by name is a hyperparameter (``config.NAME``, ``param:NAME``): runs coloured by its value."""
    return isinstance(v, str) and 0 < len(v) <= 200 and (v.startswith("config.") or v.startswith("param:"))


def check_color_by(key: str, v):
    """A statistic of :data:`COLOR_BY_CHOICES`, or a hyperparameter name (:func:`is_param_name`)."""
    if v in COLOR_BY_CHOICES or is_param_name(v):
        return v
    raise ValueError(f"{key}: unknown statistic {str(v)[:40]!r} (choose from {', '.join(COLOR_BY_CHOICES)}, "
                     "or a hyperparameter config.NAME)")


def _smoothing(key: str, v) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
        raise ValueError(f"{key} must be a number in [0, 1)")
    return float(v)


#: the x axes a view may use (gda_gl.compose.xaxis.AXES)
X_AXES = ("iteration", "epoch", "samples", "wall_time", "forward_passes")


#: "none" and the statistics declared colourable in :data:`recorder.stats.COLOR_BY`
COLOR_BY_CHOICES = ("none",) + _stats.COLOR_BY


def _validators() -> dict:
    """Field -> check(key, value) -> the value to keep (raising ValueError with one line)."""
    out = {k: (lambda key, v: _range(key, v, integer=key in ("iteration_range", "epoch_range"),
                                     bound=_Y_BOUND if key == "y_range" else _X_BOUND))
           for k in ("x_range", "y_range", "iteration_range", "epoch_range")}
    out.update({k: _boolean for k in ("log_y", "show_loose", "show_trials", "show_rules", "show_envelope", "follow",
                                      "normalize")})
    out.update(color_by=check_color_by, highlight=_short_text, focus=_names,
               smoothing=_smoothing, selected=lambda key, v: _number(key, v, integer=True, bound=_X_BOUND),
               selected_run=_short_text,
               series=_names, series_log=_names, x_axis=_one_of(X_AXES, "unknown x axis"))
    return out


#: how from_json checks each field (None is kept as "not set" except for these)
_VALIDATORS = _validators()
_NOT_NONE = {"log_y", "show_loose", "show_trials", "show_rules", "show_envelope", "follow", "normalize", "color_by",
             "focus", "smoothing", "series_log", "x_axis"}


@dataclass
class ViewState:
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    log_y: bool = False
    color_by: str = "none"
    show_loose: bool = True
    show_trials: bool = True
    show_rules: bool = True
    show_envelope: bool = True
    iteration_range: tuple[int, int] | None = None
    epoch_range: tuple[int, int] | None = None
    highlight: str | None = None          # condition: overshoot, undershoot, failed, nonfinite, "efficiency<0.5"
    selected: int | None = None           # iteration whose details are shown
    selected_run: str | None = None       # the run (its name) that step belongs to: one iteration, several runs
    follow: bool = False
    smoothing: float = 0.0                # EMA weight of the classic curve's smoothed line (0: none, < 1)
    series: tuple[str, ...] | None = None  # series drawn (None: every logged loss-like series, on the curve's axes)
    series_log: tuple[str, ...] = ()      # panels drawn with a log y axis
    x_axis: str = "iteration"             # iteration, epoch, samples, wall_time, forward_passes (gda_gl.compose.xaxis)
    normalize: bool = False               # each run's loss over its own first loss (runs of different scales)
    focus: tuple[str, ...] = ()           # runs drawn in full (envelope, arcs) among many (gda_gl.manyruns)
    _observers: list = field(default_factory=list, repr=False, compare=False)

    def observe(self, fn: Callable[["ViewState", set], None]) -> None:
        self._observers.append(fn)

    def update(self, **changes) -> None:
        """Change fields and notify observers with the set of changed names."""
        changed = set()
        for k, v in changes.items():
            if k.startswith("_") or k not in {f.name for f in fields(self)}:
                raise AttributeError(f"ViewState has no field {k!r}")
            if k == "color_by":
                check_color_by("color_by", v)
            if getattr(self, k) != v:
                setattr(self, k, v)
                changed.add(k)
        if changed:
            for fn in list(self._observers):
                fn(self, changed)

    def to_json(self) -> str:
        """The public fields as JSON (never the observers: they hold widgets and locks, and are not state)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ViewState":
        """Parse and validate a saved state.

        Raises
        ------
        ValueError
            not a JSON object, unknown fields, NaN/Infinity, ranges that are not two finite
            increasing numbers within bounds, fields of the wrong type.
        """
        from recorder.codec import json_depth_ok

        if len(text) > (1 << 20) or not json_depth_ok(text, 8):
            raise ValueError("too large or too deeply nested")
        d = json.loads(text, parse_constant=_reject_constant)
        if not isinstance(d, dict):
            raise ValueError("a view state is a JSON object")
        known = {f.name for f in fields(cls) if not f.name.startswith("_")}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown view state fields: {', '.join(sorted(unknown)[:5])}")
        for k, v in list(d.items()):
            if v is not None or k in _NOT_NONE:
                d[k] = _VALIDATORS[k](k, v)
        st = cls(**d)
        if st.log_y and st.y_range is not None and st.y_range[0] <= 0:
            raise ValueError("y_range must be positive on a log axis")
        return st
