"""Constructed trainings with a known truth, recorded with the real recorder (for the diagnose tests).

One small MLP on scikit-learn's digits, SGD, batches of 64 drawn with a fixed seed; options inject
what the diagnosis must find: an outlier batch (labels shuffled, inputs scaled) at a known step, a
one-step learning-rate spike at a known step, a learning rate that makes the run diverge from a known
step.
"""

from __future__ import annotations

import torch
from torch import nn

import recorder
from models import MLP, digits

BATCH = 64


def train(path, lr: float, steps: int = 240, *, outlier_at: int | None = None, lr_spike_at: int | None = None,
          spike_factor: float = 30.0, diverge_at: int | None = None, probe="standard", seed: int = 0,
          on_finding=None):
    """Train and record ``steps`` SGD steps; returns the recording's path.

    Parameters
    ----------
    lr : the learning rate
    outlier_at : the step whose batch has shuffled labels and inputs scaled by 4
    lr_spike_at : the step taken with ``spike_factor`` x lr (one step)
    diverge_at : from this step on the learning rate is 40 x lr
    on_finding : passed to ``rec.on_finding`` when given (live detection)
    """
    torch.manual_seed(seed)
    X, y = digits()
    model = MLP()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(seed)
    rec = recorder.attach(opt, model, loss_fn, path=str(path), probe=probe, overwrite=True)
    if on_finding is not None:
        rec.on_finding(on_finding)
    with rec:
        for k in range(steps):
            idx = torch.randint(0, len(X), (BATCH,), generator=g)
            xb, yb = X[idx], y[idx]
            if k == outlier_at:
                xb, yb = xb * 4.0, yb[torch.randperm(BATCH, generator=g)]
                yb = (yb + 1 + torch.randint(0, 9, (BATCH,), generator=g)) % 10
            rate = lr * (spike_factor if k == lr_spike_at else 1.0) * (40.0 if diverge_at is not None and
                                                                     k >= diverge_at else 1.0)
            for group in opt.param_groups:
                group["lr"] = rate
            opt.zero_grad()
            loss_fn(model(xb), yb).backward()
            opt.step()
    return rec.writer.path if rec.writer is not None else path
