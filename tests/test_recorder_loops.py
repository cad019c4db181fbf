"""The recorder on the training loops people write (issue 11, items 2-12).

Every number is checked against an independent truth: the test's own optimizer hooks (registered
before the recorder's, so they run first) save the model's state dict at w_k (buffers included),
w_{k+1}, and the batches the loop itself fed; a fresh model built from that state is evaluated at
w_k + alpha (w_{k+1} - w_k).  Nothing is taken from the recorder except what is being checked.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import recorder
from models import MLP, digits
from recorder import schema
from recorder.probe import ProbeConfig
from recorder.store import Recording
from truth import assert_phi_is_true, batches, ce, taped, true_gradient, truth

torch.set_num_threads(2)
pytestmark = pytest.mark.usefixtures("fresh_calibration")  # the failures depend on calibrating afresh


# --------------------------------------------------------------------------- item 2: buffers

class RunningMax(nn.Module):
    """An observer buffer (running maximum and running mean of the activations, as fake-quant observers
    keep) that every forward, eval mode too, updates in place; the output depends on it."""

    def __init__(self):
        super().__init__()
        self.lin1 = nn.Linear(64, 32)
        self.lin2 = nn.Linear(32, 10)
        self.register_buffer("peak", torch.ones(()))
        self.register_buffer("center", torch.zeros(32))

    def forward(self, x):
        h = self.lin1(x)
        with torch.no_grad():
            self.peak.copy_(torch.maximum(self.peak, h.abs().max()))
            self.center.mul_(0.5).add_(0.5 * h.mean(0))
        return self.lin2((h - self.center) * 4.0 / self.peak)


@pytest.mark.parametrize("strategy", ["auto", "sweep"])
def test_buffers_changed_by_forward_are_reset_before_every_alpha(tmp_path, strategy):
    model, opt, tape = taped(RunningMax, lr=2.0)
    loss_fn = nn.CrossEntropyLoss()
    cfg = ProbeConfig(k=9, alpha_max=4.0, strategy=strategy)
    with recorder.attach(opt, model, loss_fn, tmp_path / "buf.gda", probe=cfg, strict=True):
        for x, y in batches(3):
            opt.zero_grad()
            tape.feed(x, y)
            loss_fn(model(x), y).backward()
            opt.step()
    d = Recording(tmp_path / "buf.gda").read()
    assert np.all(d["status"] == schema.STATUS_OK)
    for k in range(3):
        ref = truth(RunningMax, tape.steps[k], d.alpha_grid, ce)
        np.testing.assert_allclose(d.phi[k], ref, rtol=2e-5)


# --------------------------------------------------------------------------- item 3: sub_batch layouts

class SeqFirst(nn.Module):
    """A GRU over sequence-first input (T, B, F); per-step logits (T, B, C) or last-step logits (B, C)."""

    def __init__(self, per_step=True):
        super().__init__()
        self.rnn = nn.GRU(8, 16)
        self.head = nn.Linear(16, 5)
        self.per_step = per_step

    def forward(self, x):
        h, _ = self.rnn(x)
        return self.head(h) if self.per_step else self.head(h[-1])


class SeqCE(nn.Module):
    def forward(self, out, y):
        return F.cross_entropy(out.flatten(0, -2), y.flatten())


def _seq_data(T, B, per_step, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(T, B, 8, generator=g)
    y = torch.randint(0, 5, (T, B) if per_step else (B,), generator=g)
    return x, y


def _train_seq(tmp_path, name, cfg, T, B, per_step, steps=2):
    model, opt, tape = taped(lambda: SeqFirst(per_step), lr=0.5)
    loss_fn = SeqCE()
    with recorder.attach(opt, model, loss_fn, tmp_path / f"{name}.gda", probe=cfg):
        for s in range(steps):
            x, y = _seq_data(T, B, per_step, seed=s)
            opt.zero_grad()
            tape.feed(x, y)
            loss_fn(model(x), y).backward()
            opt.step()
    with Recording(tmp_path / f"{name}.gda") as r:
        return r.read(), r.events(), tape


def test_sub_batch_slices_the_dimension_the_user_names(tmp_path):
    n = 3
    d, _, tape = _train_seq(tmp_path, "dim1", ProbeConfig(k=5, sub_batch=n, batch_dim=1), T=6, B=10, per_step=True)
    assert np.all(d["status"] == schema.STATUS_OK)
    for k in range(2):
        ref = truth(lambda: SeqFirst(True), tape.steps[k], d.alpha_grid,
                    lambda m, x, y: SeqCE()(m(x[:, :n]), y[:, :n]))
        np.testing.assert_allclose(d.phi[k], ref, rtol=1e-5)

    def first_samples(args, kwargs, target, m):  # inputs (T, B, F), target (B,)
        return (args[0][:, :m],), kwargs, target[:m]

    d, _, tape = _train_seq(tmp_path, "fn", ProbeConfig(k=5, sub_batch=n, batch_dim=first_samples), T=6, B=10,
                            per_step=False)
    assert np.all(d["status"] == schema.STATUS_OK)
    ref = truth(lambda: SeqFirst(False), tape.steps[1], d.alpha_grid,
                lambda m, x, y: SeqCE()(m(x[:, :n]), y[:n]))
    np.testing.assert_allclose(d.phi[1], ref, rtol=1e-5)


@pytest.mark.parametrize("T", [10, 6])
def test_sub_batch_refuses_layouts_it_cannot_tell(tmp_path, T):
    # sequence-first input, batch-first target: T == B is ambiguous, T != B disagrees with the target
    d, events, _ = _train_seq(tmp_path, f"amb{T}", ProbeConfig(k=3, sub_batch=4), T=T, B=10, per_step=False)
    assert np.all(d["status"] == schema.STATUS_FAILED)
    msgs = [e[3] for e in events if e[2] == "probe-failed"]
    assert len(msgs) == 2 and all("ValueError" in m and "batch_dim" in m for m in msgs)


# --------------------------------------------------------------------------- items 4, 5, 11: gradients

def test_gradient_clipping_records_the_true_gradient(tmp_path):
    model, opt, tape = taped(MLP, lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    with recorder.attach(opt, model, loss_fn, tmp_path / "clip.gda", probe=ProbeConfig(k=5), strict=True):
        for x, y in batches(3):
            opt.zero_grad()
            tape.feed(x, y)
            loss_fn(model(x), y).backward()
            norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.02)
            assert norm > 0.2  # the clipping really changes the gradient 10x or more
            opt.step()
    d = Recording(tmp_path / "clip.gda").read()
    for k, step in enumerate(tape.steps):
        g = true_gradient(MLP, step, ce)
        w0 = {n: v for n, v in step["state"].items()}
        slope = sum(float(torch.dot(g[n].reshape(-1), (step["w1"][n] - w0[n]).reshape(-1))) for n in g)
        gnorm = math.sqrt(sum(float(g[n].pow(2).sum()) for n in g))
        assert d["slope0"][k] == pytest.approx(slope, rel=1e-4)
        assert d["grad_norm"][k] == pytest.approx(gnorm, rel=1e-5)
        # the slope agrees with the measured line: a finite difference of the independent truth
        fd = truth(MLP, step, [-0.05, 0.05], ce, train=True)
        assert d["slope0"][k] == pytest.approx((fd[1] - fd[0]) / 0.1, rel=1e-2)


@pytest.mark.parametrize("limit", [64, 2])
def test_gradient_accumulation_measures_the_line_over_all_micro_batches(tmp_path, limit):
    model, opt, tape = taped(MLP, lr=0.05, optimizer=torch.optim.Adam)
    loss_fn = nn.CrossEntropyLoss()
    accum = 3
    data = batches(3 * accum, size=16)
    with recorder.attach(opt, model, loss_fn, tmp_path / "acc.gda", strict=True,
                         probe=ProbeConfig(k=7, max_micro_batches=limit)):
        for s in range(3):
            opt.zero_grad()
            for x, y in data[s * accum:(s + 1) * accum]:
                loss = loss_fn(model(x), y)
                tape.feed(x, y, loss=loss.item())
                (loss / accum).backward()
            opt.step()
    with Recording(tmp_path / "acc.gda") as r:
        d, events = r.read(), r.events("micro-batches-dropped")
    assert np.all(d["status"] == schema.STATUS_OK)
    for k, step in enumerate(tape.steps):
        kept = dict(step, micro=step["micro"][:limit])
        np.testing.assert_allclose(d.phi[k], truth(MLP, kept, d.alpha_grid, ce), rtol=1e-5)
        assert d["train_loss"][k] == pytest.approx(np.mean([m[2] for m in kept["micro"]]), rel=1e-6)
        g = true_gradient(MLP, step, ce)  # the gradient is always the whole step's
        slope = sum(float(torch.dot(g[n].reshape(-1), (step["w1"][n] - step["state"][n]).reshape(-1))) for n in g)
        assert d["slope0"][k] == pytest.approx(slope, rel=1e-4)
    assert len(events) == (3 if limit == 2 else 0)
    assert np.all(np.diff(d["batch"]) == 1)
    assert np.all(d["micro_batches"] == min(accum, limit))  # the micro-batches phi and train_loss are over


class Branchy(nn.Module):
    """Two heads; only one is used in a step (``use`` chooses), so the other has no gradient."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(64, 16)
        self.a = nn.Linear(16, 10)
        self.b = nn.Linear(16, 10)
        self.use = "a"

    def forward(self, x):
        return getattr(self, self.use)(torch.tanh(self.body(x)))


def test_parameters_without_gradient_count_as_zero(tmp_path):
    model, opt, tape = taped(Branchy, lr=0.3, momentum=0.5)
    loss_fn = nn.CrossEntropyLoss()
    with recorder.attach(opt, model, loss_fn, tmp_path / "branch.gda", probe=ProbeConfig(k=5), strict=True):
        for s, (x, y) in enumerate(batches(4)):
            model.use = "ab"[s % 2]
            opt.zero_grad(set_to_none=True)
            tape.feed(x, y, loss=model.use)
            loss_fn(model(x), y).backward()
            opt.step()
    d = Recording(tmp_path / "branch.gda").read()
    assert np.all(np.isfinite(d["slope0"])) and np.all(np.isfinite(d["grad_norm"]))
    for k, step in enumerate(tape.steps):
        use = step["micro"][0][2]

        def build(use=use):
            m = Branchy()
            m.use = use
            return m

        g = true_gradient(build, step, ce)
        slope = sum(float(torch.dot(g[n].reshape(-1), (step["w1"][n] - step["state"][n]).reshape(-1))) for n in g)
        assert d["slope0"][k] == pytest.approx(slope, rel=1e-4)
        assert d["grad_norm"][k] == pytest.approx(math.sqrt(sum(float(v.pow(2).sum()) for v in g.values())),
                                                  rel=1e-5)
        np.testing.assert_allclose(d.phi[k], truth(build, step, d.alpha_grid, ce), rtol=1e-5)


# --------------------------------------------------------------------------- item 6: reduction='none'

@pytest.mark.parametrize("strategy", ["auto", "sweep", "batched"])
def test_per_sample_loss_then_mean(tmp_path, strategy):
    model, opt, tape = taped(MLP, lr=0.5)
    loss_fn = nn.CrossEntropyLoss(reduction="none")
    with recorder.attach(opt, model, loss_fn, tmp_path / "none.gda", probe=ProbeConfig(k=5, strategy=strategy)):
        for x, y in batches(3):
            opt.zero_grad()
            loss = loss_fn(model(x), y).mean()
            tape.feed(x, y, loss=float(loss))
            loss.backward()
            opt.step()
    d = Recording(tmp_path / "none.gda").read()
    assert len(d) == 3 and np.all(d["status"] == schema.STATUS_OK)
    assert_phi_is_true(d, tape, MLP, ce, train_loss=True)


# --------------------------------------------------------------------------- item 7: models with their own loss

class OwnLoss(nn.Module):
    """HuggingFace style: ``model(x, labels=y, temperature=t)`` returns an object with ``.loss``."""

    def __init__(self):
        super().__init__()
        self.net = MLP()

    def forward(self, x, labels=None, temperature=1.0):
        logits = self.net(x) / temperature
        loss = F.cross_entropy(logits, labels) if labels is not None else None
        return SimpleNamespace(loss=loss, logits=logits)


def test_loss_from_a_model_that_computes_its_own_loss(tmp_path):
    model, opt, tape = taped(OwnLoss, lr=0.5)
    with recorder.attach(opt, model, path=tmp_path / "own.gda", loss_from="loss", probe=ProbeConfig(k=5),
                         strict=True):
        for x, y in batches(3):
            opt.zero_grad()
            out = model(x, labels=y, temperature=2.0)
            tape.feed(x, y, loss=float(out.loss))
            out.loss.backward()
            opt.step()
    d = Recording(tmp_path / "own.gda").read()
    own = lambda m, x, y: m(x, labels=y, temperature=2.0).loss  # noqa: E731
    assert_phi_is_true(d, tape, OwnLoss, own, train_loss=True)


def test_a_wrong_loss_from_is_recorded_and_training_goes_on(tmp_path, caplog):
    torch.manual_seed(0)
    model = OwnLoss()
    twin = OwnLoss()
    twin.load_state_dict(model.state_dict())

    def loop(m, opt):
        for x, y in batches(2):
            opt.zero_grad()
            m(x, labels=y).loss.backward()
            opt.step()

    loop(twin, torch.optim.SGD(twin.parameters(), lr=0.5))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with recorder.attach(opt, model, path=tmp_path / "wrong.gda", loss_from="no_such_field", probe=ProbeConfig(k=3)):
        loop(model, opt)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))
    with Recording(tmp_path / "wrong.gda") as r:
        assert list(r.read()["status"]) == [schema.STATUS_FAILED] * 2
        assert any("no_such_field" in e[3] for e in r.events("recorder-error"))


def test_observe_keeps_keyword_arguments(tmp_path):
    model, opt, tape = taped(OwnLoss, lr=0.5)
    logits_ce = lambda out, y: F.cross_entropy(out.logits, y)  # noqa: E731  a plain function
    with recorder.attach(opt, model, logits_ce, tmp_path / "kw.gda", probe=ProbeConfig(k=5), strict=True) as rec:
        for x, y in batches(2):
            opt.zero_grad()
            loss = logits_ce(model(x, temperature=3.0), y)
            rec.observe(x, y, loss, temperature=3.0)
            tape.feed(x, y)
            loss.backward()
            opt.step()
    d = Recording(tmp_path / "kw.gda").read()
    kw = lambda m, x, y: F.cross_entropy(m(x, temperature=3.0).logits, y)  # noqa: E731
    assert_phi_is_true(d, tape, OwnLoss, kw)


# --------------------------------------------------------------------------- item 8: validation forwards

def test_validation_forwards_between_backward_and_step_are_not_the_batch(tmp_path):
    model, opt, tape = taped(MLP, lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    Xv, yv = digits(300)
    Xv, yv = Xv[-100:], yv[-100:]
    with recorder.attach(opt, model, loss_fn, tmp_path / "val.gda", probe=ProbeConfig(k=5), strict=True):
        for x, y in batches(3):
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            tape.feed(x, y, loss=float(loss))
            loss.backward()
            with torch.no_grad():  # the usual validation forward
                loss_fn(model(Xv), yv)
            model.eval()  # and a careless one: grad enabled, never back-propagated
            loss_fn(model(Xv[:50]), yv[:50])
            model.train()
            opt.step()
    d = Recording(tmp_path / "val.gda").read()
    assert_phi_is_true(d, tape, MLP, ce, train_loss=True)


# --------------------------------------------------------------------------- item 9: two recorders

def test_two_recorders_do_not_see_each_others_probes(tmp_path):
    model, opt, tape = taped(MLP, lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    Xp, yp = digits(200)
    Xp, yp = Xp[-40:], yp[-40:]
    a = recorder.attach(opt, model, loss_fn, tmp_path / "a.gda", strict=True,
                        probe=ProbeConfig(k=5, data=(Xp, yp)))  # probes a fixed set, first
    b = recorder.attach(opt, model, loss_fn, tmp_path / "b.gda", strict=True, probe=ProbeConfig(k=5, sub_batch=8))
    for x, y in batches(3):
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        tape.feed(x, y, loss=float(loss))
        loss.backward()
        opt.step()
    a.close()
    b.close()
    da, db = Recording(tmp_path / "a.gda").read(), Recording(tmp_path / "b.gda").read()
    for k, step in enumerate(tape.steps):
        np.testing.assert_allclose(db.phi[k], truth(MLP, step, db.alpha_grid, lambda m, x, y: ce(m, x[:8], y[:8])),
                                   rtol=1e-5)
        fixed = dict(step, micro=[((Xp, yp), None, None)])
        np.testing.assert_allclose(da.phi[k], truth(MLP, fixed, da.alpha_grid, ce), rtol=1e-5)
        assert db["train_loss"][k] == pytest.approx(step["micro"][0][2], rel=1e-6)
    np.testing.assert_array_equal(db["batch"], np.arange(3))


# --------------------------------------------------------------------------- item 10: ProbeConfig

def test_probe_config_refuses_nonsense_with_one_message(tmp_path):
    with pytest.raises(ValueError) as err:
        ProbeConfig(every=0, sub_batch=-5, strategy="fast", alphas=(2.0, 1.0, 0.0), memory_budget=0,
                    max_micro_batches=0, batch_dim=-1, eval_mode="no")
    msg = str(err.value)
    for name in ("every=0", "sub_batch=-5", "strategy='fast'", "alphas=", "memory_budget=0", "max_micro_batches=0",
                 "batch_dim=-1", "eval_mode='no'"):
        assert name in msg, name
    for bad in (dict(k=0), dict(k=1.5), dict(alpha_max=-1.0), dict(alpha_max=float("nan")), dict(grid="cubic"),
                dict(alphas=(0.0, 0.0, 1.0)), dict(alphas=(0.0, float("inf"))), dict(data=(1, 2, 3)),
                dict(strict=1), dict(eval_mode=False, replay_rng=True, strategy="batched")):
        with pytest.raises(ValueError, match="invalid ProbeConfig"):
            ProbeConfig(**bad)
    ProbeConfig(alphas=(-0.5, 0.0, 1.0, 3.0), sub_batch=4, batch_dim=1, every=3)  # sensible ones pass
    with pytest.raises(ValueError, match="ProbeConfig"):
        recorder.attach(torch.optim.SGD(MLP().parameters(), lr=0.1), MLP(), nn.CrossEntropyLoss(),
                        tmp_path / "x.gda", probe={"k": 5})
    assert not (tmp_path / "x.gda").exists()


# --------------------------------------------------------------------------- item 12: train-mode replay

def test_train_mode_probe_replays_the_steps_rng(tmp_path):
    model, opt, tape = taped(lambda: MLP(dropout=0.3), lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    cfg = ProbeConfig(k=9, eval_mode=False)  # replay_rng=True is the default
    with recorder.attach(opt, model, loss_fn, tmp_path / "train.gda", probe=cfg, strict=True):
        for s, (x, y) in enumerate(batches(4)):
            opt.zero_grad()
            state = torch.get_rng_state()
            loss = loss_fn(model(x), y)
            tape.feed(x, y, rng=state, loss=loss.item())
            loss.backward()
            opt.step()
    d = Recording(tmp_path / "train.gda").read()
    j0 = list(d.alpha_grid).index(0.0)
    for k, step in enumerate(tape.steps):
        # phi(0) is the training loss on the batch, bit for bit (same weights, same dropout masks)
        assert d.phi[k, j0] == np.float32(step["micro"][0][2]) == np.float32(d["train_loss"][k])
        np.testing.assert_allclose(d.phi[k], truth(lambda: MLP(dropout=0.3), step, d.alpha_grid, ce, train=True),
                                   rtol=1e-5)
    assert "train" in Recording(tmp_path / "train.gda").run["probe"]["mode"]


def test_eval_mode_is_the_default_and_said_in_the_metadata(tmp_path):
    model = MLP(dropout=0.3)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    with recorder.attach(opt, model, nn.CrossEntropyLoss(), tmp_path / "e.gda", probe=ProbeConfig(k=3)):
        pass
    probe = Recording(tmp_path / "e.gda").run["probe"]
    assert probe["eval_mode"] is True and probe["mode"] == "eval"


# --------------------------------------------------------------------------- training stays bit-identical

def _busy_loop(model, opt, loss_fn, data, accum=2):
    """Accumulation, clipping, dropout, a validation forward, an unused head: everything at once."""
    for s in range(len(data) // accum):
        opt.zero_grad(set_to_none=True)
        model.use = "ab"[s % 2]
        for x, y in data[s * accum:(s + 1) * accum]:
            (loss_fn(model(x), y) / accum).backward()
        with torch.no_grad():
            loss_fn(model(data[0][0]), data[0][1])
        nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()


class DropBranchy(Branchy):
    def __init__(self):
        super().__init__()
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        return getattr(self, self.use)(self.drop(torch.tanh(self.body(x))))


@pytest.mark.parametrize("cfg", [ProbeConfig(k=5), ProbeConfig(k=5, eval_mode=False, sub_batch=8)],
                         ids=["eval", "train-replay"])
def test_training_with_the_recorder_is_bit_identical(tmp_path, cfg):
    data = batches(8, size=16)
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    plain = DropBranchy()
    traced = DropBranchy()
    traced.load_state_dict(plain.state_dict())
    opt_p = torch.optim.Adam(plain.parameters(), lr=0.01)
    torch.manual_seed(1)
    _busy_loop(plain, opt_p, loss_fn, data)
    opt_t = torch.optim.Adam(traced.parameters(), lr=0.01)
    with recorder.attach(opt_t, traced, loss_fn, tmp_path / "bit.gda", probe=cfg, strict=True):
        torch.manual_seed(1)
        _busy_loop(traced, opt_t, loss_fn, data)
    for p, q in zip(plain.parameters(), traced.parameters()):
        assert torch.equal(p, q)
    d = Recording(tmp_path / "bit.gda").read()
    assert len(d) == 4 and np.all(d["status"] == schema.STATUS_OK)
