"""The adaptive probe in the recorder (issue 22): every stored point is the loss of a fresh model at its alpha.

The truth is the tests' own (tests/truth.py): optimizer hooks registered before the recorder's save the
state at w_k and w_{k+1} and the loop's batches; a fresh model is evaluated at each stored alpha.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import recorder
from models import MLP, digits
from recorder import schema
from recorder.adaptive import round_sizes
from recorder.linestats import line_stats
from recorder.probe import ProbeConfig
from recorder.store import Recording
from truth import Tape, truth

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def fresh_calibration(tmp_path, monkeypatch):
    monkeypatch.setenv("GDA_GL_CACHE", str(tmp_path / "cache"))


def ce(m, x, y):
    return F.cross_entropy(m(x), y)


def _train(path, opt_name, strategy, steps=4, budget=7, size=32):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9) if opt_name == "sgd" else \
        torch.optim.Adam(model.parameters(), lr=0.05)
    tape = Tape(model, opt)
    loss_fn = nn.CrossEntropyLoss()
    X, y = digits(steps * size)
    cfg = ProbeConfig(mode="adaptive", budget=budget, strategy=strategy)
    with recorder.attach(opt, model, loss_fn, path, probe=cfg, strict=True) as rec:
        for i in range(steps):
            xb, yb = X[i * size:(i + 1) * size], y[i * size:(i + 1) * size]
            opt.zero_grad()
            tape.feed(xb, yb)
            loss_fn(model(xb), yb).backward()
            opt.step()
    return tape, rec


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("strategy", ["sweep", "batched"])
def test_every_stored_point_is_a_fresh_model_loss_at_its_alpha(tmp_path, opt_name, strategy):
    tape, rec = _train(tmp_path / "a.gda", opt_name, strategy)
    assert rec.strategy == strategy
    with Recording(tmp_path / "a.gda") as r:
        assert r.row_alphas
        d = r.read()
    assert np.all(d["status"] == schema.STATUS_OK) and len(d) == 4
    for k in range(4):
        a = d.alphas_of(k)
        fin = np.isfinite(a)
        assert fin.sum() == 7 and a[0] == 0.0 and 1.0 in a[fin] and a[fin][-1] == 2.0
        assert np.all(np.isnan(d.phi[k][~fin]))
        ref = truth(MLP, tape.steps[k], a[fin], ce)
        np.testing.assert_allclose(d.phi[k][fin], ref, rtol=2e-5, atol=1e-6)
        # the stored statistics are those of the stored points
        st = line_stats(a[None, :], d.phi[k][None, :].astype(np.float64), 1.0)
        for name in ("min_alpha", "min_phi", "efficiency", "curvature"):
            np.testing.assert_allclose(d[name][k], st[name][0], rtol=1e-5, atol=1e-6, err_msg=name)
        assert d["step_class"][k] == st["step_class"][0]


def test_rounds_call_the_strategy_once_each(tmp_path, monkeypatch):
    from recorder.probe import LineProbe

    sizes = []
    real = LineProbe.batched

    def spy(self, w0, w1, batches, state=None):
        sizes.append(len(self.alphas))
        return real(self, w0, w1, batches, state)

    monkeypatch.setattr(LineProbe, "batched", spy)
    _train(tmp_path / "a.gda", "sgd", "batched", steps=2, budget=9)
    assert sizes == list(round_sizes(9)) * 2


def test_an_adaptive_file_renders(tmp_path):
    _train(tmp_path / "a.gda", "sgd", "sweep", steps=6)
    for extra in ([], ["--detail", "3"]):
        out = tmp_path / f"x{len(extra)}.png"
        res = subprocess.run([sys.executable, "-m", "gda_gl", "render", str(tmp_path / "a.gda"), "-o", str(out),
                              *extra], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        assert out.stat().st_size > 1000
