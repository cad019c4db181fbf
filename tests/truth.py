"""The tests' own truth for recorder checks: a tape of every optimizer step and a fresh-model evaluation.

:class:`Tape` registers optimizer step hooks (before the recorder's, so they run first) that save the
model's state dict at w_k (buffers included) and w_{k+1}; the loop (or a framework callback) feeds
it the batches.  :func:`truth` evaluates a *fresh* model built from that state at
w_k + alpha (w_{k+1} - w_k); :func:`true_gradient` differentiates it in a separate autograd pass.

The loop tests share the rest: :func:`taped` (a seeded model, its optimizer and a tape on them),
:func:`batches` of digits and :func:`assert_phi_is_true` (every recorded line against :func:`truth`).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from models import digits


class Tape:
    """The test's own record of every step: state at w_k, w_{k+1}, and the micro-batches fed."""

    def __init__(self, model, opt):
        self.model = model
        self.steps: list[dict] = []
        self.micro: list[tuple] = []
        opt.register_step_pre_hook(self._pre)
        opt.register_step_post_hook(self._post)

    def feed(self, *batch, rng=None, loss=None):
        self.micro.append((batch, rng, loss))

    def _pre(self, opt, args, kwargs):
        state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        self.steps.append({"state": state, "micro": self.micro})
        self.micro = []

    def _post(self, opt, args, kwargs):
        self.steps[-1]["w1"] = {n: p.detach().clone() for n, p in self.model.named_parameters()}


def truth(factory, step, alphas, loss_of, train=False):
    """phi(alpha) on a fresh model: the mean over the step's micro-batches of loss_of(model, *batch)."""
    rng = torch.get_rng_state()
    out = []
    for a in alphas:
        m = factory()
        m.load_state_dict(step["state"])
        m.train(train)
        with torch.no_grad():
            for n, p in m.named_parameters():
                p.copy_(p + float(a) * (step["w1"][n] - p))
            vals = []
            for batch, state, _ in step["micro"]:
                if state is not None:
                    torch.set_rng_state(state)
                vals.append(float(loss_of(m, *batch)))
        out.append(sum(vals) / len(vals))
    torch.set_rng_state(rng)
    return np.asarray(out)


def true_gradient(factory, step, loss_of):
    """The gradient at w_k of the step's loss (mean over its micro-batches), by a separate autograd pass."""
    m = factory()
    m.load_state_dict(step["state"])
    m.train()
    n = len(step["micro"])
    loss = sum(loss_of(m, *batch) for batch, _, _ in step["micro"]) / n
    names = [name for name, p in m.named_parameters()]
    grads = torch.autograd.grad(loss, [p for p in m.parameters()], allow_unused=True)
    g = {nm: (gr if gr is not None else torch.zeros_like(p)) for nm, gr, p in zip(names, grads, m.parameters())}
    return g


def ce(m, x, y):
    """Cross-entropy of the model's output: the loss the truth evaluates for ``nn.CrossEntropyLoss`` loops."""
    return F.cross_entropy(m(x), y)


def batches(n_steps, size=32):
    """``n_steps`` consecutive batches of ``size`` digits, as (x, y) pairs."""
    X, y = digits(n_steps * size)
    return [(X[i * size:(i + 1) * size], y[i * size:(i + 1) * size]) for i in range(n_steps)]


def taped(factory, lr=0.5, optimizer=torch.optim.SGD, **opt_kw):
    """``torch.manual_seed(0)``, then a model from ``factory``, its optimizer and a :class:`Tape` on both."""
    torch.manual_seed(0)
    model = factory()
    opt = optimizer(model.parameters(), lr=lr, **opt_kw)
    return model, opt, Tape(model, opt)


def assert_phi_is_true(d, tape, factory, loss_of=ce, rtol=1e-5, train_loss=False):
    """Every recorded line equals :func:`truth` on the taped step; with ``train_loss`` the recorded
    train loss is the one the loop fed the tape (to 1e-6)."""
    assert len(tape.steps) == len(d)
    for k, step in enumerate(tape.steps):
        np.testing.assert_allclose(d.phi[k], truth(factory, step, d.alpha_grid, loss_of), rtol=rtol)
        if train_loss:
            assert d["train_loss"][k] == pytest.approx(step["micro"][0][2], rel=1e-6)
