"""Lines that stay exact when the loop discards a gradient without a step (issue 26, items 1 and 4).

A loop that skips ``step()`` for some batches, AMP's ``GradScaler`` skipping overflowing steps, two
optimizers taking turns (a GAN, the recorder on the discriminator) and SAM's two passes per step.
Every line is checked against the independent truth of :mod:`truth`: the test's own optimizer hooks save
w_k and w_{k+1} of every step that happened, the loop feeds the tape copies of the batches whose gradient
made that step, and a fresh model evaluates L(w_k + alpha (w_{k+1} - w_k)) and, by a separate autograd
pass, the gradient at w_k.  Training with the recorder is bit-identical to training without it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

import recorder
from models import MLP
from recorder import schema
from recorder.probe import ProbeConfig
from recorder.store import Recording
from truth import Tape, batches, ce, true_gradient, truth

torch.set_num_threads(2)
pytestmark = pytest.mark.usefixtures("fresh_calibration")

CFG = ProbeConfig(k=5, alpha_max=2.0, strategy="sweep")
LOSS = nn.CrossEntropyLoss()  # the loss module the recorder hooks and the loops call


def _slope(step, factory=MLP, loss_of=ce) -> tuple[float, float]:
    """(phi'(0), |grad|) of the taped step by a separate autograd pass on a fresh model."""
    g = true_gradient(factory, step, loss_of)
    dot = sum(float(torch.dot(g[n].reshape(-1), (step["w1"][n] - step["state"][n]).reshape(-1))) for n in g)
    return dot, float(torch.sqrt(sum((v.double() ** 2).sum() for v in g.values())))


def _assert_steps_true(d, tape, taken_rows, factory=MLP, loss_of=ce, rtol=1e-5, grad_rtol=1e-4):
    """Rows ``taken_rows`` are the taped steps, in order; each line, its train loss and gradient are true."""
    assert len(taken_rows) == len(tape.steps)
    for row, step in zip(taken_rows, tape.steps):
        assert d["status"][row] == schema.STATUS_OK
        np.testing.assert_allclose(d.phi[row], truth(factory, step, d.alpha_grid, loss_of), rtol=rtol)
        assert d["train_loss"][row] == pytest.approx(np.mean([m[2] for m in step["micro"]]), rel=1e-6)
        slope, norm = _slope(step, factory, loss_of)
        assert d["slope0"][row] == pytest.approx(slope, rel=grad_rtol)
        assert d["grad_norm"][row] == pytest.approx(norm, rel=grad_rtol)


def _assert_skipped_rows(d, rows, losses):
    """The rows of skipped steps: status skipped, no move, phi not measured, the discarded batch's loss."""
    for row, loss in zip(rows, losses):
        assert d["status"][row] == schema.STATUS_SKIPPED
        assert d["taken_alpha"][row] == 0.0 and d["step_norm"][row] == 0.0
        assert np.all(np.isnan(d.phi[row])) and np.isnan(d["slope0"][row])
        assert d["train_loss"][row] == pytest.approx(loss, rel=1e-6)
        assert d["samples"][row] == 32 and d["micro_batches"][row] == 1


def _same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


# --------------------------------------------------------------------------- a loop that skips step()

def _guarded_loop(model, opt, data, skip, tape=None, set_to_none=True):
    """SGD; the batches in ``skip`` are back-propagated but their step is skipped (a guard on the loss)."""
    loss_fn = LOSS
    skipped_losses = []
    for i, (x, y) in enumerate(data):
        opt.zero_grad(set_to_none=set_to_none)
        loss = loss_fn(model(x), y)
        loss.backward()
        if i in skip:  # e.g. `if not torch.isfinite(loss) or loss > limit: continue`
            skipped_losses.append(loss.item())
            continue
        if tape is not None:
            tape.feed(x.clone(), y.clone(), loss=loss.item())
        opt.step()
    return skipped_losses


@pytest.mark.parametrize("set_to_none", [True, False])
def test_a_loop_that_skips_step_records_a_skipped_row_and_true_lines(tmp_path, set_to_none):
    data, skip = batches(7), {1, 2, 5}
    torch.manual_seed(0)
    plain = MLP()
    model = MLP()
    model.load_state_dict(plain.state_dict())
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    tape = Tape(model, opt)
    with recorder.attach(opt, model, LOSS, tmp_path / "skip.gda", probe=CFG, strict=True):
        lost = _guarded_loop(model, opt, data, skip, tape, set_to_none)
    _guarded_loop(plain, torch.optim.SGD(plain.parameters(), lr=0.5, momentum=0.9), data, skip, None, set_to_none)
    assert _same(plain, model)  # bit-identical training
    with Recording(tmp_path / "skip.gda") as r:
        d, events = r.read(), r.events("step-skipped")
    assert len(d) == len(data)  # one row per batch: a skipped step advances the iteration
    _assert_steps_true(d, tape, [i for i in range(len(data)) if i not in skip])
    _assert_skipped_rows(d, sorted(skip), lost)
    assert [e[0] for e in events] == sorted(skip)


def test_a_skipped_last_batch_is_recorded_at_close(tmp_path):
    data = batches(3)
    model, opt, tape = _taped_copy()
    with recorder.attach(opt, model, LOSS, tmp_path / "last.gda", probe=CFG, strict=True):
        lost = _guarded_loop(model, opt, data, {2}, tape)
    d = Recording(tmp_path / "last.gda").read()
    assert len(d) == 3
    _assert_steps_true(d, tape, [0, 1])
    _assert_skipped_rows(d, [2], lost)


def _taped_copy(lr=0.5):
    torch.manual_seed(0)
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return model, opt, Tape(model, opt)


# --------------------------------------------------------------------------- AMP GradScaler

def _scaler_loop(model, opt, data, inject=(), autocast=False, tape=None):
    """The AMP recipe with torch.amp.GradScaler on the CPU; ``inject``: batches whose gradient gets an Inf
    (the scaler then skips their step, as it does at every fp16 overflow)."""
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 12)
    loss_fn = LOSS
    skipped = []
    for i, (x, y) in enumerate(data):
        opt.zero_grad()
        with torch.autocast("cpu", dtype=torch.float16, enabled=autocast):
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        if i in inject:
            with torch.no_grad():
                model.net[0].weight.grad[0, 0] = float("inf")
        n = len(tape.steps) if tape is not None else None
        scaler.step(opt)
        scaler.update()
        if tape is not None:
            if len(tape.steps) > n:  # the step happened: its batch is the one fed to the tape's last step
                tape.steps[-1]["micro"] = [((x.clone(), y.clone()), None, loss.item())]
            else:
                skipped.append((i, loss.item()))
    return skipped


def test_grad_scaler_skipped_steps_and_unscaled_gradient(tmp_path):
    """fp32 with a GradScaler, Infs injected into three gradients: those steps are skipped (rows of their
    own), every other line is its own batch's, and slope0 and grad_norm are the unscaled gradient's."""
    data, inject = batches(7), {0, 3, 4}
    torch.manual_seed(0)
    plain = MLP()
    model, opt, tape = _taped_copy()
    model.load_state_dict(plain.state_dict())
    with recorder.attach(opt, model, LOSS, tmp_path / "amp.gda", probe=CFG, strict=True):
        skipped = _scaler_loop(model, opt, data, inject, tape=tape)
    _scaler_loop(plain, torch.optim.SGD(plain.parameters(), lr=0.5), data, inject)
    assert _same(plain, model)
    assert [i for i, _ in skipped] == sorted(inject)
    d = Recording(tmp_path / "amp.gda").read()
    assert len(d) == len(data)
    _assert_steps_true(d, tape, [i for i in range(len(data)) if i not in inject])
    _assert_skipped_rows(d, sorted(inject), [v for _, v in skipped])


def test_grad_scaler_fp16_autocast_calibration_skips(tmp_path):
    """fp16 autocast on the CPU: the scaler starts too high and skips its first steps by itself; the lines of
    the steps taken are their own batch's (fp32 probe), the gradient unscaled (to fp16 rounding)."""
    data = batches(6)
    model, opt, tape = _taped_copy()
    with recorder.attach(opt, model, LOSS, tmp_path / "fp16.gda", probe=CFG, strict=True):
        scaler = torch.amp.GradScaler("cpu", init_scale=2.0 ** 24)
        loss_fn = LOSS
        skipped = []
        for i, (x, y) in enumerate(data):
            opt.zero_grad()
            with torch.autocast("cpu", dtype=torch.float16):
                loss = loss_fn(model(x), y)
            scaler.scale(loss).backward()
            n = len(tape.steps)
            scaler.step(opt)
            scaler.update()
            if len(tape.steps) > n:
                tape.steps[-1]["micro"] = [((x.clone(), y.clone()), None, loss.item())]
            else:
                skipped.append(i)
    assert skipped and len(skipped) < len(data)  # the calibration really skipped some steps
    d = Recording(tmp_path / "fp16.gda").read()
    assert len(d) == len(data)
    taken = [i for i in range(len(data)) if i not in skipped]
    assert list(np.flatnonzero(d["status"] == schema.STATUS_SKIPPED)) == skipped
    for row, step in zip(taken, tape.steps):
        np.testing.assert_allclose(d.phi[row], truth(MLP, step, d.alpha_grid, ce), rtol=1e-5)
        slope, norm = _slope(step)
        assert d["slope0"][row] == pytest.approx(slope, rel=2e-2)  # fp16 backward against the fp32 truth
        assert d["grad_norm"][row] == pytest.approx(norm, rel=2e-2)


# --------------------------------------------------------------------------- two optimizers (a GAN)

class Gen(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 8))

    def forward(self, z):
        return self.net(z)


class Disc(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x):
        return self.net(x).squeeze(1)


def _gan(record_to=None, steps=4):
    """Alternating GAN steps; the recorder (if any) on the discriminator. Returns (D, G, tape)."""
    torch.manual_seed(0)
    G, D = Gen(), Disc()
    optG, optD = torch.optim.Adam(G.parameters(), lr=0.01), torch.optim.SGD(D.parameters(), lr=0.2)
    bce = nn.BCEWithLogitsLoss()
    tape = Tape(D, optD)
    rec = recorder.attach(optD, D, bce, record_to, probe=CFG, strict=True) if record_to else None
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        real = torch.randn(32, 8, generator=g) * 0.5 + 1.0
        z = torch.randn(32, 4, generator=g)
        ones, zeros = torch.ones(32), torch.zeros(32)
        fake = G(z)
        optD.zero_grad()
        fd = fake.detach()
        l_real, l_fake = bce(D(real), ones), bce(D(fd), zeros)
        tape.feed(real.clone(), ones, loss=l_real.item())
        tape.feed(fd.clone(), zeros, loss=l_fake.item())
        (l_real + l_fake).backward()
        optD.step()
        optG.zero_grad()  # the generator's pass runs through D: D's parameters get a gradient optD discards
        bce(D(fake), ones).backward()
        optG.step()
    if rec is not None:
        rec.close()
    return D, G, tape


def bce_of(m, x, y):
    return F.binary_cross_entropy_with_logits(m(x), y)


def test_gan_the_discriminators_lines_hold_only_its_own_batches(tmp_path):
    D, G, tape = _gan(tmp_path / "gan.gda")
    D0, G0, _ = _gan()
    assert _same(D, D0) and _same(G, G0)
    with Recording(tmp_path / "gan.gda") as r:
        d, events = r.read(), r.events("gradient-discarded")
    assert len(d) == len(tape.steps) == 4
    for row, step in enumerate(tape.steps):
        assert d["micro_batches"][row] == 2
        np.testing.assert_allclose(d.phi[row], truth(Disc, step, d.alpha_grid, bce_of), rtol=1e-5)
        assert d["train_loss"][row] == pytest.approx(np.mean([m[2] for m in step["micro"]]), rel=1e-6)
        # phi is the mean of the two losses, the loop back-propagates their sum: slope0 is phi'(0)
        slope, norm = _slope(step, Disc, bce_of)
        assert d["slope0"][row] == pytest.approx(slope, rel=1e-4)
        assert d["grad_norm"][row] == pytest.approx(norm, rel=1e-4)
    # the generator's pass of every step, the last one found at close
    assert len(events) == 4 and all("another optimizer's step" in e[3] for e in events)


# --------------------------------------------------------------------------- SAM: two passes per step

class SAM:
    """Sharpness-aware minimisation in its usual two-pass form (first_step, second_step) around SGD."""

    def __init__(self, params, rho=0.5, lr=0.5):
        self.params = list(params)
        self.base = torch.optim.SGD(self.params, lr=lr)
        self.rho, self.e = rho, []

    @torch.no_grad()
    def first_step(self):
        norm = torch.sqrt(sum((p.grad ** 2).sum() for p in self.params))
        self.e = [self.rho * p.grad / norm for p in self.params]
        for p, e in zip(self.params, self.e):
            p.add_(e)
        self.base.zero_grad()

    @torch.no_grad()
    def second_step(self):
        for p, e in zip(self.params, self.e):
            p.sub_(e)
        self.base.step()
        self.base.zero_grad()


def _sam(record_to=None, steps=3):
    torch.manual_seed(0)
    model = MLP()
    sam = SAM(model.parameters())
    tape = Tape(model, sam.base)
    loss_fn = nn.CrossEntropyLoss()
    rec = recorder.attach(sam.base, model, loss_fn, record_to, probe=CFG, strict=True) if record_to else None
    perturbed = []
    for x, y in batches(steps):
        loss_fn(model(x), y).backward()
        sam.first_step()
        second = loss_fn(model(x), y)
        perturbed.append(second.item())
        tape.feed(x.clone(), y.clone(), loss=second.item())
        second.backward()
        sam.second_step()
    if rec is not None:
        rec.close()
    return model, tape, perturbed


def test_sam_train_loss_is_the_perturbed_pass_and_the_step_is_marked(tmp_path):
    model, tape, perturbed = _sam(tmp_path / "sam.gda")
    plain, _, _ = _sam()
    assert _same(model, plain)
    with Recording(tmp_path / "sam.gda") as r:
        d, elsewhere = r.read(), r.events("gradient-elsewhere")
    assert len(d) == 3 and np.all(d["status"] == schema.STATUS_OK) and np.all(d["micro_batches"] == 1)
    for row, step in enumerate(tape.steps):
        np.testing.assert_allclose(d.phi[row], truth(MLP, step, d.alpha_grid, ce), rtol=1e-5)
        # train_loss: the pass whose gradient made the step (SAM's perturbed point), not a mix of both
        assert d["train_loss"][row] == pytest.approx(perturbed[row], rel=1e-6)
        assert d["train_loss"][row] != pytest.approx(d.phi[row, 0], rel=1e-4)  # phi(0): the loss at w_k
    assert [e[0] for e in elsewhere] == [0, 1, 2]


def test_a_backward_that_misses_the_recorded_parameters_is_not_the_steps_data(tmp_path):
    """A forward of the recorded model whose loss is back-propagated into another model only (its output
    detached first, as a GAN's discriminator step does with the generator's output): never the step's data."""
    model, opt, tape = _taped_copy()
    head = nn.Linear(10, 10)
    head_opt = torch.optim.SGD(head.parameters(), lr=0.1)
    with recorder.attach(opt, model, LOSS, tmp_path / "miss.gda", probe=CFG, strict=True):
        for x, y in batches(3):
            head_opt.zero_grad()
            LOSS(head(model(x).detach()), y).backward()  # reaches only the head's parameters
            head_opt.step()
            opt.zero_grad()
            loss = LOSS(model(x), y)
            tape.feed(x.clone(), y.clone(), loss=loss.item())
            loss.backward()
            opt.step()
    d = Recording(tmp_path / "miss.gda").read()
    assert np.all(d["micro_batches"] == 1)
    _assert_steps_true(d, tape, [0, 1, 2])
