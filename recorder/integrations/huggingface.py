"""HuggingFace ``Trainer``: ``Trainer(..., callbacks=[GdaTrainerCallback("runs/x.gda")])``.

What is measured: phi_k(alpha) is the model's own loss (``outputs.loss``, the model called with the
batch's ``labels``) at ``w_k + alpha d_k`` on the step's micro-batches, in eval mode by default.
With ``gradient_accumulation_steps`` > 1 all micro-batches of the step count: when the Trainer
passes ``num_items_in_batch`` (the loss already normalised over the whole step) their losses are
summed, otherwise averaged, which is the objective the Trainer optimises in both cases.
``slope0`` and ``grad_norm`` use the gradient before ``max_grad_norm`` clipping.  Evaluation
forwards (``eval_strategy``) run without gradients and are never taken for training data.

What the Trainer logs reaches the recording as series (:mod:`recorder.series`), no line needed:
``on_log`` forwards the training logs (``loss``, ``learning_rate``, ``grad_norm``, anything a
callback adds) and ``on_evaluate`` the evaluation metrics (``eval_loss``, ``eval_accuracy``, ...),
each at the number of optimizer steps taken (the recorder's iteration, ``state.global_step`` in a
fresh run), where the next ``train_loss`` lands.  ``epoch`` (an axis, not a metric) and the
evaluation metrics repeated in ``on_log`` are not forwarded twice; names of built-in statistics
(``grad_norm``, the final ``train_loss``) are recorded as ``hf/<name>``.  The training arguments
that shape the run (learning rate, batch sizes, accumulation, clipping, schedule, seed) go to
``run["config"]``.
"""

from __future__ import annotations

import logging

from transformers import TrainerCallback

from ..hooks import Recorder, attach
from ..probe import ProbeConfig
from ..series import framework_name

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
        self.recorder.log_config(**_settings(args))
        self.recorder.on_finding(self._finding)

    @staticmethod
    def _finding(f: dict) -> None:
        """A live finding as a warning line (the Trainer has no text call for callbacks)."""
        from ..diagnose.report import finding_line

        log.warning("gda_gl: %s", finding_line(f))

    def _forward(self, values, skip_eval: bool) -> None:
        if self.recorder is None or not values:
            return
        for name, value in values.items():
            if name == "epoch" or (skip_eval and str(name).startswith("eval_")):
                continue
            self.recorder.log(framework_name(name, "hf"), value)

    def on_log(self, args, state, control, logs=None, **kwargs):
        self._forward(logs, skip_eval=True)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        self._forward(metrics, skip_eval=False)

    def on_epoch_begin(self, args, state, control, **kwargs):
        if self.recorder is not None:
            self.recorder.set_epoch(int(state.epoch or 0))

    def on_train_end(self, args, state, control, **kwargs):
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None


_SETTINGS = ("learning_rate", "per_device_train_batch_size", "gradient_accumulation_steps", "world_size",
             "max_grad_norm", "weight_decay", "adam_beta1", "adam_beta2", "adam_epsilon", "lr_scheduler_type",
             "warmup_steps", "warmup_ratio", "num_train_epochs", "max_steps", "seed", "optim", "bf16", "fp16")


def _settings(args) -> dict:
    """The training arguments that shape the run, for ``run["config"]`` (plus the batch per optimizer step)."""
    out = {}
    for key in _SETTINGS:
        v = getattr(args, key, None)
        v = getattr(v, "value", v)  # enums (lr_scheduler_type, optim) as their text
        if isinstance(v, (int, float, str, bool)):
            out[key] = v
    try:
        out["batch_size"] = int(args.per_device_train_batch_size * args.gradient_accumulation_steps *
                                max(1, args.world_size))
    except Exception:
        pass
    return out
