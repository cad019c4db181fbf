"""Recorder: probe correctness against a naive reference, state restoration, optimizers, failures."""

from __future__ import annotations

import copy
import logging
import math

import numpy as np
import pytest
import torch
from torch import nn

import recorder
from models import CNN, MLP, Attention, digits
from recorder import schema
from recorder.optim import CG
from recorder.probe import LineProbe, ProbeConfig, naive_phi
from recorder.store import Recording

torch.set_num_threads(2)


def _one_step(model, opt_cls=torch.optim.SGD, n=64, **opt_kw):
    X, y = digits(n)
    loss_fn = nn.CrossEntropyLoss()
    opt = opt_cls(model.parameters(), **(opt_kw or {"lr": 0.5}))
    params = [p for g in opt.param_groups for p in g["params"]]
    w0 = [p.detach().clone() for p in params]
    opt.zero_grad()
    loss_fn(model(X), y).backward()
    opt.step()
    w1 = [p.detach().clone() for p in params]
    return X, y, loss_fn, opt, params, w0, w1


@pytest.mark.parametrize("model_cls", [MLP, CNN, Attention])
@pytest.mark.parametrize("strategy", ["sweep", "batched"])
def test_probe_matches_naive_reference_and_exact_endpoints(model_cls, strategy):
    torch.manual_seed(0)
    model = model_cls()
    X, y, loss_fn, opt, params, w0, w1 = _one_step(model)
    cfg = ProbeConfig(k=9, strategy=strategy, memory_budget=3 * sum(p.numel() * 4 for p in params))
    probe = LineProbe(model, loss_fn, params, cfg)
    phi, used = probe.measure(torch.cat([w.reshape(-1) for w in w0]), probe.flat(), ((X,), {}), y)
    assert used == strategy
    index = {id(p): i for i, p in enumerate(model.parameters())}
    order = [index[id(p)] for p in params]
    ref = naive_phi(model, loss_fn, w0, w1, lambda m: [list(m.parameters())[i] for i in order], probe.alphas,
                    ((X,), {}), y)
    np.testing.assert_allclose(phi, ref, rtol=1e-5, atol=0)
    # phi(0) / phi(1) are the losses at w_k / w_{k+1} exactly (eval mode, same batch)
    m0 = copy.deepcopy(model).eval()
    with torch.no_grad():
        for p, w in zip([list(m0.parameters())[i] for i in order], w0):
            p.copy_(w)
        loss0 = loss_fn(m0(X), y).item()
        model.eval()
        loss1 = loss_fn(model(X), y).item()
        model.train()
    j0, j1 = list(probe.alphas).index(0.0), list(probe.alphas).index(1.0)
    if strategy == "sweep":
        assert phi[j0] == np.float64(np.float32(loss0)) and phi[j1] == np.float64(np.float32(loss1))
    else:  # vmap may batch the reduction differently: same weights, float32 rounding only
        np.testing.assert_allclose([phi[j0], phi[j1]], [loss0, loss1], rtol=2e-6)


def test_probe_leaves_model_bit_for_bit_unchanged():
    torch.manual_seed(1)
    model = CNN()
    X, y, loss_fn, opt, params, w0, w1 = _one_step(model)
    model.train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    grads = [p.grad.clone() for p in model.parameters()]
    flags = [m.training for m in model.modules()]
    rng = torch.get_rng_state()
    for strategy in ("sweep", "batched"):
        probe = LineProbe(model, loss_fn, params, ProbeConfig(k=5, strategy=strategy))
        probe.measure(torch.cat([w.reshape(-1) for w in w0]), probe.flat(), ((X,), {}), y)
        for k, v in model.state_dict().items():
            assert torch.equal(v, state[k]), k
        assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads))
        assert [m.training for m in model.modules()] == flags
        assert torch.equal(torch.get_rng_state(), rng)
    # probing in train mode still restores BatchNorm statistics
    probe = LineProbe(model, loss_fn, params, ProbeConfig(k=5, strategy="sweep", eval_mode=False))
    probe.measure(torch.cat([w.reshape(-1) for w in w0]), probe.flat(), ((X,), {}), y)
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k


def _closure_step(model, opt, loss_fn, x, y):
    """One ``opt.step(closure)`` on (x, y), the way line-search optimizers (L-BFGS, CG) are driven."""
    def closure():
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        return loss
    opt.step(closure)


def _train(model, opt, loss_fn, steps, rec=None, closure_opt=False, batch=64):
    X, y = digits(batch * 4)
    for s in range(steps):
        xb, yb = X[(s % 4) * batch:(s % 4 + 1) * batch], y[(s % 4) * batch:(s % 4 + 1) * batch]
        if closure_opt:
            _closure_step(model, opt, loss_fn, xb, yb)
        else:
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()


OPTIMIZERS = [
    ("sgd", torch.optim.SGD, {"lr": 0.2}),
    ("sgd-momentum", torch.optim.SGD, {"lr": 0.1, "momentum": 0.9}),
    ("adam", torch.optim.Adam, {"lr": 1e-2}),
    ("adamw", torch.optim.AdamW, {"lr": 1e-2, "weight_decay": 0.1}),
    ("rmsprop", torch.optim.RMSprop, {"lr": 1e-3}),
    ("adagrad", torch.optim.Adagrad, {"lr": 0.1}),
    ("lbfgs", torch.optim.LBFGS, {"lr": 1, "max_iter": 1, "line_search_fn": "strong_wolfe"}),
]


@pytest.mark.parametrize("name,opt_cls,kw", OPTIMIZERS, ids=[o[0] for o in OPTIMIZERS])
def test_every_optimizer_records_exact_lines_and_training_is_unchanged(tmp_path, name, opt_cls, kw):
    closure = name == "lbfgs"
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(3)
    plain = MLP(dropout=0.2)  # dropout in train mode: the probe must not disturb the RNG stream
    traced = copy.deepcopy(plain)
    torch.manual_seed(7)
    _train(plain, opt_cls(plain.parameters(), **kw), loss_fn, 6, closure_opt=closure)

    opt = opt_cls(traced.parameters(), **kw)
    snaps = []
    rec = recorder.attach(opt, traced, loss_fn, tmp_path / f"{name}.gda", probe=ProbeConfig(k=9), strict=True)
    opt.register_step_pre_hook(lambda o, a, k: snaps.append([[p.detach().clone() for p in traced.parameters()]]))
    opt.register_step_post_hook(lambda o, a, k: snaps[-1].append([p.detach().clone() for p in traced.parameters()]))
    torch.manual_seed(7)
    _train(traced, opt, loss_fn, 6, rec=rec, closure_opt=closure)
    rec.close()
    # training with the recorder attached is bit-for-bit the training without it
    for p, q in zip(plain.parameters(), traced.parameters()):
        assert torch.equal(p, q)
    data = Recording(tmp_path / f"{name}.gda").read()
    assert len(data) == 6 and np.all(data["status"] == schema.STATUS_OK)
    X, y = digits(64 * 4)
    for k in (0, 3, 5):
        xb, yb = X[(k % 4) * 64:(k % 4 + 1) * 64], y[(k % 4) * 64:(k % 4 + 1) * 64]
        ref = naive_phi(traced, loss_fn, snaps[k][0], snaps[k][1], lambda m: list(m.parameters()),
                        data.alpha_grid, ((xb,), {}), yb)
        np.testing.assert_allclose(data.phi[k], ref, rtol=1e-5)
    np.testing.assert_array_equal(data["batch"], np.arange(6))  # a new batch id whenever the data changes
    assert np.all(np.isfinite(data["efficiency"]) | (data["step_class"] == schema.CLASS_UNKNOWN))
    assert np.all(np.isfinite(data["curvature"]))
    if closure:
        assert data.trial_offsets[-1] >= 6  # the closure's evaluations are trial points
        tr = data.trials_of(0)
        assert tr["alpha"][0] == 0.0 and tr["loss"][0] == pytest.approx(data["train_loss"][0])
    else:
        assert np.all(np.isfinite(data["slope0"])) and np.all(data["grad_norm"] > 0)


def test_frozen_parameters_and_param_groups(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    model.net[0].bias.requires_grad_(False)
    opt = torch.optim.SGD([{"params": [model.net[0].weight], "lr": 0.1},
                           {"params": list(model.net[3].parameters()), "lr": 0.3}])
    loss_fn = nn.CrossEntropyLoss()
    snaps = []
    with recorder.attach(opt, model, loss_fn, tmp_path / "groups.gda", probe=ProbeConfig(k=5), strict=True):
        opt.register_step_pre_hook(lambda o, a, k: snaps.append([p.detach().clone() for p in model.parameters()]))
        _train(model, opt, loss_fn, 3)
    data = Recording(tmp_path / "groups.gda").read()
    X, y = digits(64)
    after = [p.detach().clone() for p in model.parameters()]
    ref = naive_phi(model, loss_fn, snaps[0], snaps[1], lambda m: list(m.parameters()), data.alpha_grid,
                    ((X,), {}), y)
    np.testing.assert_allclose(data.phi[0], ref, rtol=1e-5)
    assert torch.equal(after[1], snaps[0][1])  # the frozen bias never moved


def test_fixed_probe_set_makes_the_curve_continuous(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    X, y = digits(200)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    cfg = ProbeConfig(k=9, data=(X[:100], y[:100]))
    with recorder.attach(opt, model, loss_fn, tmp_path / "fixed.gda", probe=cfg):
        _train(model, opt, loss_fn, 8, batch=25)
    d = Recording(tmp_path / "fixed.gda").read()
    j1 = list(d.alpha_grid).index(1.0)
    np.testing.assert_array_equal(d.phi[:-1, j1], d.phi[1:, 0])  # phi_k(1) == phi_{k+1}(0), bit-exact
    assert np.all(d["batch"] == 0)


def test_every_nth_iteration_and_presets(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    with recorder.attach(opt, model, loss_fn, tmp_path / "cheap.gda", probe="cheap"):
        _train(model, opt, loss_fn, 33)
    d = Recording(tmp_path / "cheap.gda").read()
    assert list(d["status"]) == [0] + [3] * 15 + [0] + [3] * 15 + [0]
    assert np.all(np.isnan(d.phi[1])) and np.all(np.isfinite(d.phi[0]))
    np.testing.assert_array_equal(d.alpha_grid, [0, 0.5, 1, 1.5, 2])
    with pytest.raises(ValueError, match="unknown probe preset"):
        recorder.attach(opt, model, loss_fn, tmp_path / "x.gda", probe="nope")


class Fragile(nn.Module):
    """Raises in eval mode (the probe's mode); gives Inf beyond alpha 1.5 when asked to."""

    def __init__(self, mode):
        super().__init__()
        self.lin = nn.Linear(64, 10)
        self.mode = mode

    def forward(self, x):
        out = self.lin(x)
        if not self.training and self.mode == "raise":
            raise RuntimeError("shape mismatch in probe")
        if not self.training and self.mode == "inf":
            return out * torch.inf
        return out


@pytest.mark.parametrize("mode,status", [("raise", schema.STATUS_FAILED), ("inf", schema.STATUS_NONFINITE)])
def test_probe_failures_are_recorded_and_training_goes_on(tmp_path, caplog, mode, status):
    torch.manual_seed(0)
    model = Fragile(mode)
    twin = copy.deepcopy(model)
    loss_fn = nn.CrossEntropyLoss()
    _train(twin, torch.optim.SGD(twin.parameters(), lr=0.1), loss_fn, 4)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with caplog.at_level(logging.WARNING):
        with recorder.attach(opt, model, loss_fn, tmp_path / "f.gda", probe=ProbeConfig(k=5, strategy="sweep")):
            _train(model, opt, loss_fn, 4)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))
    assert len([r for r in caplog.records if "gda_gl probe" in r.message]) == 1  # warned once
    with Recording(tmp_path / "f.gda") as rec:
        d = rec.read()
        assert list(d["status"]) == [status] * 4
        ev = [e for e in rec.events() if e[2].startswith("probe-")]  # (the live diagnosis adds its own)
        assert len(ev) == 4 and (mode != "raise" or "shape mismatch in probe" in ev[0][3])
    m2 = Fragile("raise")
    opt2 = torch.optim.SGD(m2.parameters(), lr=0.1)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        with recorder.attach(opt2, m2, loss_fn, tmp_path / "g.gda", strict=True,
                             probe=ProbeConfig(k=3, strategy="sweep")):
            _train(m2, opt2, loss_fn, 1)


def test_unwritable_path_is_reported_once_and_training_goes_on(tmp_path, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    with caplog.at_level(logging.WARNING):
        rec = recorder.attach(opt, model, loss_fn, blocker / "sub" / "r.gda")
        _train(model, opt, loss_fn, 3)
        rec.close()
    msgs = [r.message for r in caplog.records if "recorder disabled" in r.message]
    assert len(msgs) == 1 and "r.gda" in msgs[0]


def test_plain_function_loss_uses_observe(tmp_path):
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    X, y = digits(64)
    with recorder.attach(opt, model, nn.functional.cross_entropy, tmp_path / "fn.gda", probe=ProbeConfig(k=3)) as rec:
        for step in range(2):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(X), y)
            loss.backward()
            if step == 1:
                rec.observe(X, y, loss)
            opt.step()
    d = Recording(tmp_path / "fn.gda").read()
    assert list(d["status"]) == [schema.STATUS_FAILED, schema.STATUS_OK]
    assert math.isnan(d["train_loss"][0]) and d["train_loss"][1] > 0


def test_cg_line_search_meets_wolfe_conditions_and_records_trials(tmp_path):
    torch.manual_seed(0)
    model = MLP()
    X, y = digits(128)
    loss_fn = nn.CrossEntropyLoss()
    opt = CG(model.parameters())
    with recorder.attach(opt, model, loss_fn, tmp_path / "cg.gda", probe=ProbeConfig(k=9)):
        for k in range(10):
            _closure_step(model, opt, loss_fn, X, y)
            ls = opt.last_line_search
            if ls["success"]:
                # strong Wolfe-Powell at the accepted step (rho = 0.05, sigma = 0.1)
                f_acc, d_acc = ls["trial_losses"][-1], ls["trial_slopes"][-1]
                assert f_acc <= ls["f0"] + 0.05 * ls["step"] * ls["d0"] + 1e-6
                assert abs(d_acc) <= -0.1 * ls["d0"] + 1e-9
    d = Recording(tmp_path / "cg.gda").read()
    assert d["train_loss"][-1] < 0.5 * d["train_loss"][0]
    assert np.all(d["ls_evals"] >= 1) and np.all(d["ls_evals"] <= 20)
    # the accepted trial sits at alpha = 1 with the loss the probe measured there
    j1 = list(d.alpha_grid).index(1.0)
    for r in range(len(d)):
        tr = d.trials_of(r)
        last = np.argmax(tr["order"])
        assert tr["alpha"][last] == pytest.approx(1.0)
        assert tr["loss"][last] == pytest.approx(d.phi[r, j1], rel=1e-5)
    assert sum(int(np.sum(d.trials_of(r)["alpha"] > 1.0 + 1e-9)) for r in range(len(d))) >= 1  # loose ends


def test_write_failures_are_reported_once_and_training_goes_on(tmp_path, caplog, monkeypatch):
    import sqlite3

    from recorder.store import RecordingWriter

    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    rec = recorder.attach(opt, model, loss_fn, tmp_path / "full.gda", probe=ProbeConfig(k=3), commit_interval=0.05)

    def disk_full(self, pending, events):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(RecordingWriter, "_write", disk_full)
    with caplog.at_level(logging.WARNING):
        _train(model, opt, loss_fn, 3)
        import time as _t

        _t.sleep(0.3)  # the commit thread tries (and fails) several times
        rec.flush()
        _train(model, opt, loss_fn, 2)
        monkeypatch.undo()  # space again: nothing appended meanwhile is lost
        rec.close()
    errors = [r for r in caplog.records if "disk is full" in r.getMessage()]
    assert 1 <= len(errors) <= 2  # the commit thread's line and the recorder's, not one per try
    d = Recording(tmp_path / "full.gda").read()
    np.testing.assert_array_equal(d.iteration, np.arange(5))
