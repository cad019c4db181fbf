"""Fast paths against their plain twins: line statistics and parameter-point synthesis (CPU; CuPy where CUDA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from recorder import schema
from recorder.kernels import cupy_available, stack_points, stack_points_reference
from recorder.linestats import line_stats, line_stats_reference


def _phis(n=300, seed=0):
    rng = np.random.default_rng(seed)
    grid = np.linspace(0, 2, 17)
    vertex = rng.uniform(-0.5, 3, n)
    curv = rng.uniform(-0.5, 3, n)
    phi = 1 + curv[:, None] * (grid[None] - vertex[:, None]) ** 2 + 0.01 * rng.normal(size=(n, 17))
    phi[5, 3] = np.nan
    phi[6, :] = np.nan
    phi[7, 0] = np.inf
    phi[8, 8] = np.nan  # phi(taken) unknown
    phi[9, 2:] = np.nan  # too few points for a parabola
    return grid, phi.astype(np.float32)


def test_vectorised_stats_equal_the_plain_loop():
    grid, phi = _phis()
    taken = np.where(np.arange(len(phi)) % 3 == 0, 1.0, 0.7)  # 0.7 is between grid points
    fast = line_stats(grid, phi, taken)
    ref = line_stats_reference(grid, phi, taken)
    for name in ref:
        np.testing.assert_allclose(fast[name], ref[name], rtol=1e-7, atol=1e-9, equal_nan=True, err_msg=name)
    assert fast["step_class"].dtype == np.int8


def test_stats_on_known_parabolas():
    grid = np.linspace(0, 2, 17)
    for vertex, cls, cockpit in [(0.5, schema.CLASS_OVERSHOOT, 1.0), (2.0, schema.CLASS_UNDERSHOOT, -0.5),
                                 (1.0, schema.CLASS_NEAR_OPTIMAL, 0.0)]:
        phi = 3.0 + 2.0 * (grid - vertex) ** 2
        s = line_stats(grid, phi[None])
        assert s["min_alpha"][0] == vertex and s["min_phi"][0] == pytest.approx(3.0)
        assert s["curvature"][0] == pytest.approx(4.0)
        assert s["step_class"][0] == cls
        assert s["cockpit_alpha"][0] == pytest.approx(cockpit)
    # overshoot to the opposite wall: phi(1) == phi(0), efficiency 0, cockpit +1
    s = line_stats(grid, (3.0 + (grid - 0.5) ** 2)[None])
    assert s["efficiency"][0] == pytest.approx(0.0) and s["cockpit_alpha"][0] == pytest.approx(1.0)


def test_stack_points_cpu_matches_numpy_twin_and_endpoints_exact():
    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(10_000, generator=g)
    w1 = w0 + 1e-3 * torch.randn(10_000, generator=g)
    a = torch.tensor([0.0, 0.125, 0.5, 0.75, 1.0, 1.5, 2.0, -0.25])
    out = stack_points(w0, w1, a, use_cupy=False)
    ref = stack_points_reference(w0.numpy(), w1.numpy(), a.numpy())
    np.testing.assert_allclose(out.numpy(), ref, rtol=0, atol=4 * np.finfo(np.float32).eps * 4)
    assert torch.equal(out[0], w0) and torch.equal(out[4], w1)


@pytest.mark.skipif(not (torch.cuda.is_available() and cupy_available()), reason="needs CUDA and CuPy")
def test_cupy_paths_match_cpu():  # pragma: no cover - runs on GPU machines only
    import cupy as cp

    g = torch.Generator().manual_seed(0)
    w0 = torch.randn(100_000, generator=g)
    w1 = w0 + 1e-3 * torch.randn(100_000, generator=g)
    a = torch.linspace(0, 2, 33)
    gpu = stack_points(w0.cuda(), w1.cuda(), a.cuda(), use_cupy=True).cpu().numpy()
    ref = stack_points_reference(w0.numpy(), w1.numpy(), a.numpy())
    np.testing.assert_allclose(gpu, ref, rtol=0, atol=1e-6)
    assert np.array_equal(gpu[0], w0.numpy()) and np.array_equal(gpu[16], w1.numpy())
    grid, phi = _phis()
    fast = line_stats(cp.asarray(grid), cp.asarray(phi))
    ref = line_stats_reference(grid, phi)
    for name in ref:
        np.testing.assert_allclose(cp.asnumpy(fast[name]), ref[name], rtol=1e-7, atol=1e-9, equal_nan=True)
