"""The valley placement (issue 27): where it measures, its doubt criterion, and the recorder's rows against truth.

The planner is driven with known functions on the 65-point grid; the recorder's rows are checked
against the tests' own truth (tests/truth.py: a fresh model evaluated at w_k + alpha d_k on the step's
batch), and training with the recorder attached against training without it, bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import recorder
from models import CNN, MLP, digits
from recorder import schema
from recorder.linestats import line_stats
from recorder.probe import PRESETS, ProbeConfig
from recorder.store import Recording
from recorder.valley import BRACKET, CHECK_EVERY, TrainingForwardCheck, doubt, valley_points
from truth import Tape, ce, truth

torch.set_num_threads(2)
GRID = np.linspace(0.0, 2.0, 65)


@pytest.fixture(autouse=True)
def fresh_calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("GDA_GL_CACHE", str(tmp_path / "cache"))


def _plan(f, budget=10, free0=False, slope=None):
    calls = []

    def evaluate(a):
        calls.append(np.asarray(a))
        return f(np.asarray(a))

    s0 = math.nan if slope is None else slope
    a, p, used, settled = valley_points(evaluate, GRID, budget, f(np.zeros(1))[0] if free0 else math.nan, s0)
    return a, p, used, settled, calls


@pytest.mark.parametrize("m", [0.27, 0.61, 1.0, 1.13, 1.52, 1.97])
@pytest.mark.parametrize("skew", [0.0, 0.8])
@pytest.mark.parametrize("known", ["nothing", "phi0 and slope"])
def test_it_finds_the_grid_minimum_of_valleys(m, skew, known):
    def f(a):
        u = a - m
        return 1.0 + u ** 2 + skew * u ** 3 / 3 + 0.3 * u ** 4

    a, p, used, settled, _ = _plan(f, free0=known != "nothing", slope=None if known == "nothing" else
                                   float(-2 * m + skew * m ** 2 - 1.2 * m ** 3))
    dense = f(GRID)
    assert settled and used <= 10
    assert set(np.round(a * 32).astype(int)) <= set(range(65))  # grid points only
    np.testing.assert_array_equal(p, f(a))  # every value is the function at its alpha
    assert abs(a[np.argmin(p)] - GRID[np.argmin(dense)]) <= 1 / 32 + 1e-12
    assert 0.0 in a and 1.0 in a


def test_a_line_that_still_falls_at_the_end_is_settled_by_the_last_two_points():
    a, p, used, settled, _ = _plan(lambda x: 1.0 - 0.3 * x, free0=True, slope=-0.3)
    assert settled and a[-1] == 2.0 and a[-2] == 2.0 - 1 / 32 and used <= 4


def test_a_line_that_rises_from_zero_is_settled_by_the_first_two_points():
    a, p, used, settled, _ = _plan(lambda x: 1.0 + x ** 2)
    assert settled and a[0] == 0.0 and a[1] == 1 / 32 and a[np.argmin(p)] == 0.0


def test_the_budget_is_never_exceeded_and_nonfinite_losses_stop_it():
    wiggly = lambda x: np.cos(40 * x) + 0.01 * x  # noqa: E731 (many minima: the refinement never settles)
    for budget in (3, 4, 6):
        a, p, used, settled, calls = _plan(wiggly, budget=budget)
        assert used == budget == sum(len(c) for c in calls) and len(a) == budget
    a, p, used, settled, _ = _plan(lambda x: np.where(x > 0.5, np.nan, x))
    assert not settled and used == 3 and np.isnan(p).sum() >= 1


def test_doubt_criterion():
    last = 64
    # the lowest point inside, neighbours within BRACKET grid steps, vertex within half a step: settled
    assert not doubt({0: 3.0, 28: 1.1, 30: 1.0, 32: 1.1, 64: 2.0}, last)
    # the same values with a neighbour farther than BRACKET: in doubt
    assert doubt({0: 3.0, 30 - BRACKET - 1: 1.1, 30: 1.0, 32: 1.1, 64: 2.0}, last)
    # the parabola's vertex more than half a grid step from the lowest point: in doubt
    assert doubt({0: 3.0, 28: 1.3, 30: 1.0, 32: 1.01, 64: 2.0}, last)
    # at the ends: settled only when the next grid point is measured
    assert not doubt({0: 1.0, 1: 1.01, 32: 2.0}, last) and doubt({0: 1.0, 2: 1.01, 32: 2.0}, last)
    assert not doubt({0: 3.0, 32: 2.0, 63: 1.01, 64: 1.0}, last) and doubt({0: 3.0, 32: 2.0, 64: 1.0}, last)
    # the lowest point is the last measured one but not the end of the interval: in doubt
    assert doubt({0: 3.0, 32: 1.0}, last)


def test_training_forward_check():
    c = TrainingForwardCheck()
    assert c.due()
    c.compare(2.3188493, 2.3188491)  # a float32 rounding apart: the same loss
    c.steps += 1
    assert c.ok is True and not c.due()
    c.steps = CHECK_EVERY
    assert c.due()
    c.compare(2.31, 2.32)
    assert c.ok is False
    c.compare(2.0, 2.0)  # once off, off for the run
    assert c.ok is False and c.due()


def test_preset():
    cfg = PRESETS["valley"]
    assert cfg.mode == "adaptive" and cfg.placement == "valley" and cfg.k == 65 and cfg.alpha_max == 2.0
    assert len(cfg.alpha_grid()) == cfg.budget + 1
    for bad in (dict(placement="middle"), dict(mode="adaptive", placement="valley", k=64),
                dict(mode="adaptive", placement="valley", budget=2), dict(mode="adaptive", placement="valley",
                                                                          grid="log")):
        with pytest.raises(ValueError, match="invalid ProbeConfig"):
            ProbeConfig(**bad)


def _train(path, factory, steps=4, probe="valley", size=48, lr=0.3, dropout=None):
    torch.manual_seed(0)
    model = factory() if dropout is None else factory(dropout=dropout)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    tape = Tape(model, opt)
    loss_fn = nn.CrossEntropyLoss()
    X, y = digits(steps * size)
    rec = recorder.attach(opt, model, loss_fn, path, probe=probe, strict=True) if probe else None
    for i in range(steps):
        xb, yb = X[i * size:(i + 1) * size], y[i * size:(i + 1) * size]
        opt.zero_grad()
        tape.feed(xb, yb)
        loss_fn(model(xb), yb).backward()
        opt.step()
    if rec:
        rec.close()
    return tape, rec, model


@pytest.mark.parametrize("factory,kw", [(MLP, {}), (CNN, {}), (MLP, {"dropout": 0.3})],
                         ids=["mlp-phi0-from-training", "cnn-batchnorm", "mlp-dropout"])
def test_every_stored_point_is_a_fresh_model_loss_at_its_alpha(tmp_path, factory, kw):
    tape, rec, _ = _train(tmp_path / "v.gda", factory, **kw)
    with Recording(tmp_path / "v.gda") as r:
        assert r.row_alphas
        d = r.read()
    assert np.all(d["status"] == schema.STATUS_OK)
    make = (lambda: factory(**kw)) if kw else factory
    for k in range(len(d)):
        a = d.alphas_of(k)
        fin = np.isfinite(a)
        assert fin.sum() >= 3 and a[0] == 0.0 and 1.0 in a[fin]
        assert np.all(np.isin(a[fin], GRID))  # points of the dense grid
        ref = truth(make, tape.steps[k], a[fin], ce)
        np.testing.assert_allclose(d.phi[k][fin], ref, rtol=2e-5, atol=1e-6)
        st = line_stats(a[None, :], d.phi[k][None, :].astype(np.float64), 1.0)
        assert d["step_class"][k] == st["step_class"][0]
        np.testing.assert_allclose(d["min_alpha"][k], st["min_alpha"][0])
    # phi(0) from the training forward only where it is the probed line's value (checked, not assumed)
    assert rec.probe.phi0_check.ok is (factory is MLP and not kw)


def test_training_is_bit_identical_with_and_without_the_recorder(tmp_path):
    _, _, plain = _train(tmp_path / "p.gda", CNN, probe=None)
    _, _, probed = _train(tmp_path / "v.gda", CNN)
    for (n, a), b in zip(plain.state_dict().items(), probed.state_dict().values()):
        assert torch.equal(a, b), n


def test_the_slope_enters_only_with_phi0_from_the_training_forward(tmp_path, monkeypatch):
    import recorder.valley as valley

    seen = []
    real = valley.valley_points

    def spy(evaluate, grid, budget, phi0=math.nan, slope0=math.nan, **kw):
        seen.append((math.isfinite(phi0), math.isfinite(slope0)))
        return real(evaluate, grid, budget, phi0, slope0, **kw)

    monkeypatch.setattr(valley, "valley_points", spy)
    _train(tmp_path / "a.gda", MLP, steps=3)
    _train(tmp_path / "b.gda", MLP, steps=3, dropout=0.3)
    assert seen[:3] == [(False, False), (True, True), (True, True)]  # the first step checks phi(0)
    assert seen[3:] == [(False, False)] * 3  # dropout: phi(0) in eval mode is not the training loss


def test_batched_rounds_measure_each_point_with_its_grid_neighbours():
    f = lambda a: 1.0 + (a - 1.37) ** 2  # noqa: E731
    calls = []

    def evaluate(a):
        calls.append(np.asarray(a))
        return f(np.asarray(a))

    a, p, used, settled = valley_points(evaluate, GRID, 10, neighbours=True)
    assert settled and [len(c) for c in calls][:2] == [3, 3]
    np.testing.assert_array_equal(p, f(a))
    assert abs(a[np.argmin(p)] - 1.375) < 1e-12  # the grid point nearest 1.37
