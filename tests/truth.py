"""The tests' own truth for recorder checks: a tape of every optimizer step and a fresh-model evaluation.

:class:`Tape` registers optimizer step hooks (before the recorder's, so they run first) that save the
model's state dict at w_k (buffers included) and w_{k+1}; the loop (or a framework callback) feeds
it the batches.  :func:`truth` evaluates a *fresh* model built from that state at
w_k + alpha (w_{k+1} - w_k); :func:`true_gradient` differentiates it in a separate autograd pass.
"""

from __future__ import annotations

import numpy as np
import torch


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
