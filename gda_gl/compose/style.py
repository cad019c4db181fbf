"""How the viewer colours things: run colours, glyph colours, and the colour of a statistic's value. Compute only.

Statistics declare their colormap and range in :mod:`recorder.stats`; this module turns values into RGBA
(vispy's colormaps, no GL), for the curve (:mod:`gda_gl.compose.scene`), the colour bar and the details view.
"""

from __future__ import annotations

import numpy as np

from recorder import schema, stats

__all__ = ["RUN_COLORS", "CLASS_COLORS", "LOOSE_COLOR", "NONFINITE_COLOR", "TRIAL_COLOR", "NAN_COLOR", "RULE_COLOR",
           "FADE", "run_color", "stat_color_range", "stat_colors", "bucket_stat"]

RUN_COLORS = np.array([
    [0.12, 0.47, 0.71, 1.0], [0.84, 0.15, 0.16, 1.0], [0.17, 0.63, 0.17, 1.0], [0.58, 0.40, 0.74, 1.0],
    [1.00, 0.50, 0.05, 1.0], [0.55, 0.34, 0.29, 1.0], [0.89, 0.47, 0.76, 1.0], [0.09, 0.75, 0.81, 1.0],
], np.float32)
CLASS_COLORS = {schema.CLASS_UNKNOWN: (0.55, 0.55, 0.55, 1.0), schema.CLASS_UNDERSHOOT: (0.19, 0.39, 0.80, 1.0),
                schema.CLASS_NEAR_OPTIMAL: (0.10, 0.62, 0.25, 1.0), schema.CLASS_OVERSHOOT: (0.85, 0.20, 0.15, 1.0)}
LOOSE_COLOR = (0.95, 0.55, 0.10, 1.0)
NONFINITE_COLOR = (0.85, 0.05, 0.05, 1.0)
TRIAL_COLOR = (0.15, 0.15, 0.15, 0.9)
NAN_COLOR = (0.6, 0.6, 0.6, 1.0)
RULE_COLOR = (0.55, 0.55, 0.70, 0.35)
#: alpha multiplier of rows/buckets that do not match the highlight filter
FADE = 0.15


def run_color(i: int) -> np.ndarray:
    """The colour of the i-th run: the eight of :data:`RUN_COLORS`, then hues spread by the golden angle
    at alternating lightness, so that a sweep of 100 runs never repeats a colour."""
    if i < len(RUN_COLORS):
        return RUN_COLORS[i].copy()
    import colorsys

    hue = (0.61803398875 * (i - len(RUN_COLORS)) + 0.07) % 1.0
    light = (0.38, 0.52, 0.30)[i % 3]
    return np.array(colorsys.hls_to_rgb(hue, light, 0.75) + (1.0,), np.float32)


def stat_color_range(name: str, values: list[np.ndarray]) -> tuple[float, float]:
    """Colour range of a statistic: its declared range, else the 2nd..98th percentile of ``values``."""
    st = stats.STAT_BY_NAME[name]
    if st.color_range is not None:
        return st.color_range
    v = np.concatenate([np.asarray(a, np.float64).ravel() for a in values]) if values else np.empty(0)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return (0.0, 1.0)
    lo, hi = np.percentile(v, [2, 98])
    if not hi > lo:  # a constant: a relative sliver, so the colour bar can tell (ticks.colorbar_labels)
        hi = lo + abs(lo) * 1e-6 if lo else 1.0
    return float(lo), float(hi)


def stat_colors(values: np.ndarray, name: str, rng: tuple[float, float]) -> np.ndarray:
    """RGBA per value: class colours for code statistics, the declared colormap otherwise (grey for NaN)."""
    v = np.asarray(values, np.float64)
    st = stats.STAT_BY_NAME[name]
    if st.colormap == "classes":
        out = np.empty((len(v), 4), np.float32)
        out[:] = NAN_COLOR
        for code, c in CLASS_COLORS.items():
            out[v == code] = c
        return out
    from vispy.color import get_colormap

    t = np.clip((v - rng[0]) / (rng[1] - rng[0]), 0.0, 1.0)
    out = get_colormap(st.colormap or "viridis").map(np.nan_to_num(t, nan=0.0)[:, None]).astype(np.float32)
    out[~np.isfinite(v)] = NAN_COLOR
    return out


def bucket_stat(recs: dict, name: str) -> np.ndarray:
    """Per-bucket value of a statistic for colouring: the mean of its finite values, the most frequent code."""
    st = stats.STAT_BY_NAME[name]
    if st.aggregate == "codes":
        counts = np.stack([recs[f"{name}:{c}"] for c, _ in st.codes], axis=1)
        codes = np.array([c for c, _ in st.codes], np.float64)
        return np.where(counts.sum(axis=1) > 0, codes[np.argmax(counts, axis=1)], np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        cnt = recs[f"{name}:count"].astype(np.float64)
        return np.where(cnt > 0, recs[f"{name}:sum"] / np.where(cnt > 0, cnt, 1.0), np.nan)
