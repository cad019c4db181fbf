"""HuggingFace ``Trainer``: ``Trainer(..., callbacks=[GdaTrainerCallback("runs/x.gda")])``.

What is measured: phi_k(alpha) is the model's own loss (``outputs.loss``, the model called with the
batch's ``labels``) at ``w_k + alpha d_k`` on the step's micro-batches, in eval mode by default.
With ``gradient_accumulation_steps`` > 1 all micro-batches of the step count: when the Trainer
passes ``num_items_in_batch`` (the loss already normalised over the whole step) their losses are
summed, otherwise averaged, which is the objective the Trainer optimises in both cases.
``slope0`` and ``grad_norm`` use the gradient before ``max_grad_norm`` clipping.  Evaluation
forwards (``eval_strategy``) run without gradients and are never taken for training data.
"""

from __future__ import annotations

import logging

from transformers import TrainerCallback

from ..hooks import Recorder, attach
from ..probe import ProbeConfig

log = logging.getLogger(__name__)

__all__ = ["GdaTrainerCallback"]


class GdaTrainerCallback(TrainerCallback):
    """Record phi_k at every optimizer step of a ``Trainer`` run into ``path``.

    Parameters
    ----------
    path : the ``*.gda`` recording to write
    probe : a preset name or a :class:`recorder.probe.ProbeConfig`
    loss_from : where the model's output holds its loss (``"loss"``; see :func:`recorder.probe.extract_loss`)
    **kwargs : passed to :func:`recorder.attach` (``run``, ``tags``, ``seed``, ``strict``, ...)
    """

    def __init__(self, path, probe: ProbeConfig | str | None = None, loss_from="loss", **kwargs):
        self.path = path
        self.probe = probe
        self.loss_from = loss_from
        self.kwargs = kwargs
        self.recorder: Recorder | None = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if model is None or optimizer is None:
            log.warning("GdaTrainerCallback: the Trainer passed no model or optimizer; nothing is recorded")
            return
        raw = getattr(optimizer, "optimizer", optimizer)  # accelerate's AcceleratedOptimizer wraps it
        self.recorder = attach(raw, model, path=self.path, probe=self.probe, loss_from=self.loss_from,
                               seed=args.seed, **self.kwargs)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.recorder is not None:
            self.recorder.set_epoch(int(state.epoch or 0))

    def on_train_end(self, args, state, control, **kwargs):
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None
