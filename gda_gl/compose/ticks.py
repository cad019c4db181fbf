"""Axis ticks: 1-2-5 steps on linear axes, decades (with 2 and 5 when few) on log axes. Compute only.

Labels are exact and readable at any scale: the step of an axis is taken as the 1-2-5 value the
ticks were placed with (so float noise such as 7,646,519.8000000007 never shows), a label has as
many decimals as the step needs, and large values with small steps stay plain ("1,000,000,000.0002",
"0.0500002") instead of a long mantissa with a shared exponent.  :func:`format_position` writes a
readout with the digits one pixel resolves; :func:`colorbar_labels` labels a colour bar, also over a
constant statistic (one label, its value).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["linear_ticks", "log_ticks", "format_tick", "format_ticks", "format_position", "colorbar_labels"]

#: float64 holds about this many significant decimal digits exactly
_DIGITS = 15


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


def _decimals(step: float) -> int:
    """Fewest decimals that show multiples of ``step`` exactly (0.25 -> 2, 0.5 -> 1, 5 -> 0)."""
    for d in range(0, 13):
        if abs(round(step, d) - step) <= 1e-9 * abs(step):
            return d
    return 12


def _sci(v: float, exp: int, decimals: int = 0) -> str:
    """``v`` as mantissa x 10**exp written like 1.5e-5 (no '+', no zero padding)."""
    m = v / 10.0 ** exp
    txt = f"{m:.{decimals}f}"
    return "0" if float(txt) == 0 else f"{txt}e{exp}"


def _sig(val: float, digits: int = 3) -> str:
    """A positive value with at most ``digits`` significant digits, plain or ``1.5e-5`` style, no trailing zeros."""
    if val <= 0 or not math.isfinite(val):
        return f"{val:g}"
    exp = math.floor(math.log10(val))
    if -3 <= exp <= 4:
        d = max(0, digits - 1 - exp)
        txt = f"{round(val, d):,.{d}f}"
        return txt.rstrip("0").rstrip(".") if "." in txt else txt
    m = f"{val / 10.0 ** exp:.{digits - 1}f}".rstrip("0").rstrip(".")
    return f"{m}e{exp}"


def _nice(step: float) -> float:
    """The 1-2-5 step ticks were placed with, from a difference of two tick values (float noise removed)."""
    return float(f"{step:.2g}")


def _plain_sig(v: float, digits: int = 6) -> str:
    """``v`` with at most ``digits`` significant digits but every digit of its integer part, grouped."""
    if v == 0 or not math.isfinite(v):
        return "0" if v == 0 else f"{v:g}"
    a = abs(v)
    if not 1e-3 <= a < 1e15:
        return ("-" if v < 0 else "") + _sig(a, digits)
    d = max(0, digits - 1 - math.floor(math.log10(a)))
    txt = f"{v:,.{d}f}"
    txt = txt.rstrip("0").rstrip(".") if "." in txt else txt
    return "0" if txt in ("-0", "") else txt


def format_tick(v: float, step: float | None = None, log: bool = False, scale: float | None = None) -> str:
    """One tick label; labels of one axis are consistent when they share ``step``.

    Linear axes: as many decimals as the step needs (0.25 -> "0.50"), thousands separators
    ("800,000" beside "1,000,000", never "1e+06"), and a shared power of ten only for steps
    beyond 1e12, or below 1e-4 on an axis whose values (``scale``, the largest magnitude; ``v``
    itself when not given) stay below 1000 steps ("14e-5"); "1,000,000,000.0002" stays plain.
    Log axes (``v`` in log10 units): decades as plain
    numbers from 0.001 to 10,000, else "1e-5"; other values with three significant digits.
    Prefer :func:`format_ticks` for a whole axis.
    """
    if not math.isfinite(v):
        return ""
    if log:
        exp = round(v)
        if abs(v - exp) < 1e-9:
            return _sig(10.0 ** exp) if -3 <= exp <= 4 else f"1e{exp}"
        return _sig(10.0 ** v)
    if step is None or not (math.isfinite(step) and step > 0):
        if float(v).is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return _sig(abs(v)) if v > 0 else "-" + _sig(abs(v))
    if abs(v) < step * 1e-9:
        return "0"
    scale = abs(v) if scale is None else scale
    if step >= 1e12 or (step < 1e-4 and scale < 1000 * step):
        exp = math.floor(math.log10(step))
        return _sci(v, exp, _decimals(step / 10.0 ** exp))
    return f"{v:,.{_decimals(step)}f}"


def format_ticks(values, log: bool = False) -> list[str]:
    """Labels for all ticks of one axis, in one style.

    Linear: the step is the ticks' spacing (see :func:`format_tick`).  Log (values in log10
    units): all plain or all ``1eN`` for decades; ticks placed linearly inside less than a
    decade are formatted as a linear axis of their values.
    """
    vals = [float(v) for v in values]
    if not vals:
        return []
    if not log:
        diffs = [b - a for a, b in zip(vals, vals[1:]) if b - a > 0]
        step = _nice(min(diffs)) if diffs else None
        scale = max(abs(v) for v in vals if math.isfinite(v)) if any(math.isfinite(v) for v in vals) else 0.0
        return [format_tick(v, step, scale=scale) for v in vals]
    exps = [round(v) for v in vals]
    if all(abs(v - e) < 1e-9 for v, e in zip(vals, exps)):
        plain = all(-3 <= e <= 4 for e in exps)
        return [_sig(10.0 ** e) if plain else f"1e{e}" for e in exps]
    lin = [10.0 ** v for v in vals]
    if len(lin) >= 2 and lin[-1] / lin[0] < 10.0:
        diffs = [b - a for a, b in zip(lin, lin[1:]) if b - a > 0]
        step = float(f"{min(diffs):.2g}")
        if step >= 1e-4:
            return [f"{x:,.{_decimals(step)}f}" for x in lin]
    plain = all(1e-3 <= x < 1e5 for x in lin)
    out = []
    for x in lin:
        if plain:
            out.append(_sig(x))
        else:
            exp = math.floor(math.log10(x))
            m = f"{x / 10.0 ** exp:.2f}".rstrip("0").rstrip(".")
            out.append(f"{m}e{exp}")
    return out


def format_position(x: float, resolution: float) -> str:
    """A readout of position ``x`` with the decimals that ``resolution`` (data units per pixel) resolves.

    Every digit of the integer part, grouped ("749,548"), never an exponent for |x| < 1e15; at most
    as many decimals as float64 holds exactly next to that integer part; trailing zeros dropped.
    """
    if not math.isfinite(x):
        return str(x)
    if abs(x) >= 1e15:
        return f"{x:.6g}"
    res = resolution if math.isfinite(resolution) and resolution > 0 else 1e-4
    decimals = max(0, math.ceil(-math.log10(res) - 1e-9))
    int_digits = len(str(int(abs(x)))) if abs(x) >= 1 else 0
    decimals = min(decimals, max(0, _DIGITS + 1 - int_digits), 12)
    txt = f"{x:,.{decimals}f}"
    txt = txt.rstrip("0").rstrip(".") if "." in txt else txt
    return "0" if txt in ("-0", "") else txt


def colorbar_labels(lo: float, hi: float, target: int = 5) -> list[tuple[float, str]]:
    """(fraction 0..1 along the bar, label) for a colour bar over the value range ``lo``..``hi``.

    A constant statistic, or one constant up to float32 noise (relative spread below 4e-6, SGD's lr
    0.05 stored as 0.050000000745), gets one label in the middle: its value ("0.05").  Other ranges
    get the labels of :func:`linear_ticks` / :func:`format_ticks`.
    """
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return []
    lo, hi = min(lo, hi), max(lo, hi)
    if hi - lo <= 4e-6 * max(abs(lo), abs(hi)):
        return [(0.5, _plain_sig(0.5 * (lo + hi), 6))]
    ticks = linear_ticks(lo, hi, target)
    return [(float((v - lo) / (hi - lo)), label) for v, label in zip(ticks, format_ticks(ticks))]
