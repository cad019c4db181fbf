"""Axis ticks: 1-2-5 steps on linear axes, decades (with 2 and 5 when few) on log axes. Compute only."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["linear_ticks", "log_ticks", "format_tick"]


def linear_ticks(lo: float, hi: float, target: int = 6) -> np.ndarray:
    """About ``target`` round values in [lo, hi] (steps 1, 2, 5 x 10^n)."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return np.empty(0)
    raw = hi / max(1, target) - lo / max(1, target)  # (hi - lo) itself may overflow near 1e308
    if not (math.isfinite(raw) and raw > 0):
        return np.array([lo, hi], float)
    mag = 10.0 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    count = hi / step - first / step + 1e-9
    if not (math.isfinite(first) and math.isfinite(count)) or count > 1000:
        return np.array([lo, hi], float)
    n = int(math.floor(count)) + 1
    with np.errstate(over="ignore", invalid="ignore"):
        ticks = first + step * np.arange(max(0, n))
    return ticks[np.isfinite(ticks)]


def log_ticks(lo_exp: float, hi_exp: float, target: int = 6) -> np.ndarray:
    """Tick positions in log10 units for an axis spanning 10**lo_exp .. 10**hi_exp."""
    if not (math.isfinite(lo_exp) and math.isfinite(hi_exp)) or hi_exp <= lo_exp:
        return np.empty(0)
    span = hi_exp - lo_exp
    if span < 1.0:  # less than a decade: linear ticks in value space, placed in log space
        if hi_exp >= 308 or lo_exp <= -307:  # 10**x overflows (or is subnormal): decades only
            return np.array([lo_exp, hi_exp], float)
        vals = linear_ticks(10.0 ** lo_exp, 10.0 ** hi_exp, target)
        return np.log10(vals[vals > 0])
    every = max(1, int(math.ceil(span / target)))
    decades = np.arange(math.ceil(lo_exp), math.floor(hi_exp) + 1)
    decades = decades[decades % every == 0]
    if span <= 2.5:
        extra = np.concatenate([decades + math.log10(2), decades + math.log10(5), decades - 1 + math.log10(5)])
        decades = np.unique(np.concatenate([decades, extra]))
        decades = decades[(decades >= lo_exp) & (decades <= hi_exp)]
    return decades.astype(float)


def format_tick(v: float, step: float | None = None, log: bool = False) -> str:
    """Short label: integers without decimals, large/small values in engineering style."""
    if log:
        val = 10 ** v
        exp = round(v)
        if abs(v - exp) < 1e-9:
            return f"1e{exp}" if abs(exp) > 2 else f"{val:g}"
        return f"{val:.3g}"
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1e6 or a < 1e-3:
        return f"{v:.3g}"
    if step is not None and step >= 1 and float(v).is_integer():
        return f"{int(v):,}"
    decimals = 0 if step is None or step >= 1 else min(6, int(math.ceil(-math.log10(step))))
    return f"{v:.{decimals}f}"
