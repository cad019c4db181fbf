"""Colouring whole runs by a hyperparameter (``--color-by config.lr``), with its colour bar. Compute only.

``--color-by`` names either a line statistic (each step or bucket coloured by its value, see
:mod:`gda_gl.compose.style`) or a hyperparameter, ``config.NAME`` or another key of
:func:`gda_gl.compose.compare.hyperparameters` (``lr``, ``momentum``): then each run gets one colour from
its value, and a colour bar in the hyperparameter's units explains it.  A positive parameter
spanning more than :data:`LOG_DECADES` decades is placed on a log scale (a learning-rate sweep
0.001 .. 1 gets as much colour per decade), else linearly.  Runs without the parameter are grey.

The colormap is viridis cut before its light yellow end (:data:`CMAP_TOP`): a thin line of the
highest value still shows on white.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .state import is_param_name as is_param
from .ticks import format_ticks, linear_ticks, log_ticks

__all__ = ["LOG_DECADES", "CMAP", "ParamScale", "is_param", "param_scale", "param_colors", "numeric_values"]

#: a positive hyperparameter spanning more decades than this is coloured (and scattered) on a log10 scale
LOG_DECADES = 1.5
#: the colormap of hyperparameter colours, and the top of it that is used (viridis' last 12 % is too light)
CMAP, CMAP_TOP = "viridis", 0.88
#: colour of a run that lacks the hyperparameter
MISSING_RGBA = (0.6, 0.6, 0.6, 1.0)


def param_key(name: str) -> str:
    """The hyperparameter key of a ``--color-by`` name (``param:lr`` -> ``lr``; ``config.K`` stays)."""
    return name[len("param:"):] if name.startswith("param:") else name


def numeric_values(values: list) -> np.ndarray:
    """Values as floats; NaN where a run lacks the value or it is not a number (booleans, texts)."""
    out = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else math.nan for v in values]
    return np.asarray(out, np.float64)


@dataclass(frozen=True)
class ParamScale:
    """How hyperparameter values map to 0..1 along the colour bar."""

    name: str
    lo: float
    hi: float
    log: bool

    def fraction(self, values) -> np.ndarray:
        """0..1 of each value along the bar (NaN for missing values)."""
        v = np.asarray(values, np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.log:
                v = np.log10(np.where(v > 0, v, np.nan))
                lo, hi = math.log10(self.lo), math.log10(self.hi)
            else:
                lo, hi = self.lo, self.hi
            if hi <= lo:
                return np.where(np.isfinite(v), 0.5, np.nan)
            return np.clip((v - lo) / (hi - lo), 0.0, 1.0)

    def labels(self, target: int = 5) -> list[tuple[float, str]]:
        """(fraction along the bar, label in the parameter's units: 0.001, 0.01, ...) for the colour bar."""
        if self.hi <= self.lo:
            return [(0.5, format_ticks([self.lo])[0])]
        if self.log:
            lo, hi = math.log10(self.lo), math.log10(self.hi)
            ticks = log_ticks(lo, hi, target)
            return [(float((t - lo) / (hi - lo)), s) for t, s in zip(ticks, format_ticks(ticks, log=True))]
        ticks = linear_ticks(self.lo, self.hi, target)
        return [(float((t - self.lo) / (self.hi - self.lo)), s) for t, s in zip(ticks, format_ticks(ticks))]

    @property
    def title(self) -> str:
        return f"{self.name} (log)" if self.log else self.name


def param_scale(name: str, values: list) -> ParamScale:
    """The scale of a hyperparameter over the runs: log past :data:`LOG_DECADES` decades of positive values.

    Raises
    ------
    ValueError : no run holds a number under ``name``
    """
    v = numeric_values(values)
    fin = v[np.isfinite(v)]
    if not len(fin):
        raise ValueError(f"--color-by {name}: no run holds a number under {name!r}")
    lo, hi = float(fin.min()), float(fin.max())
    log = bool(lo > 0 and math.log10(hi / lo) > LOG_DECADES)
    return ParamScale(name, lo, hi, log)


def colormap_rgba(t: np.ndarray) -> np.ndarray:
    """RGBA of fractions 0..1 along the hyperparameter colormap (grey for NaN)."""
    from vispy.color import get_colormap

    t = np.asarray(t, np.float64)
    out = get_colormap(CMAP).map((np.nan_to_num(t, nan=0.0) * CMAP_TOP)[:, None]).astype(np.float32)
    out[~np.isfinite(t)] = MISSING_RGBA
    return out


def param_colors(values: list, scale: ParamScale) -> np.ndarray:
    """One RGBA per run from its hyperparameter value (grey where it lacks one)."""
    return colormap_rgba(scale.fraction(numeric_values(values)))
