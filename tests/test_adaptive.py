"""The adaptive probe's planner (issue 22): where it measures, on functions whose minimum is known."""

from __future__ import annotations

import math

import numpy as np
import pytest

from recorder.adaptive import MIN_BUDGET, adaptive_points, nominal_grid, round_sizes
from recorder.probe import PRESETS, ProbeConfig


def _run(f, budget, alpha_max=2.0, slope0=math.nan):
    calls = []

    def evaluate(a):
        calls.append(np.asarray(a).copy())
        return f(np.asarray(a, np.float64))

    a, p = adaptive_points(evaluate, budget, alpha_max, slope0)
    return a, p, calls


@pytest.mark.parametrize("budget", [5, 7, 9, 16])
def test_points_are_measured_unique_and_in_range(budget):
    def f(a):
        return 1.0 + 3.0 * (a - 0.63) ** 2

    a, p, calls = _run(f, budget, slope0=-6 * 0.63)
    assert len(a) == budget and np.all(np.diff(a) > 0)
    assert a[0] == 0.0 and 1.0 in a and a[-1] == 2.0
    np.testing.assert_array_equal(p, f(a))  # every value is the function at its alpha, nothing fitted
    assert [len(c) for c in calls] == list(round_sizes(budget))
    assert all(np.array_equal(c, c.astype(np.float32)) for c in calls)  # float32-exact alphas


@pytest.mark.parametrize("vertex", [0.05, 0.3, 0.63, 1.0, 1.37, 1.9])
@pytest.mark.parametrize("slope_known", [True, False])
def test_minimum_located_within_a_dense_spacing(vertex, slope_known):
    def f(a):
        x = a - vertex
        return 2.0 + 1.5 * x ** 2 + 0.8 * np.maximum(x, 0) ** 3

    slope = -3.0 * vertex if slope_known else math.nan
    a, p, _ = _run(f, 7, slope0=slope)
    dense = np.linspace(0, 2, 65)
    assert abs(a[np.argmin(p)] - dense[np.argmin(f(dense))]) <= 2 / 64 + 1e-9


def test_monotone_lines_reach_the_ends():
    a, p, _ = _run(lambda a: 1.0 - 0.1 * a, 7, slope0=-0.1)   # still descending at alpha_max
    assert a[np.argmin(p)] == 2.0
    a, p, _ = _run(lambda a: 1.0 + a ** 2 + a, 7, slope0=1.0)  # uphill from the start
    assert a[np.argmin(p)] == 0.0 and a[1] <= 0.5  # points were spent near 0, where it bends


def test_non_finite_losses_spread_the_remaining_points():
    def f(a):
        return np.where(a > 1.5, np.nan, (a - 0.5) ** 2)

    a, p, _ = _run(f, 8, slope0=-1.0)
    assert len(a) == 8 and np.all(np.diff(a) > 0) and np.isnan(p[-1])


def test_config_and_preset():
    cfg = PRESETS["adaptive"]
    assert cfg.mode == "adaptive" and cfg.budget >= MIN_BUDGET
    np.testing.assert_array_equal(cfg.alpha_grid(), nominal_grid(cfg.budget, cfg.alpha_max))
    for bad in (dict(mode="adaptive", budget=3), dict(mode="adaptive", alpha_max=0.5),
                dict(mode="adaptive", alphas=(0.0, 1.0)), dict(mode="other")):
        with pytest.raises(ValueError):
            ProbeConfig(**bad)
