"""PyTorch Lightning: ``Trainer(callbacks=[GdaCallback("runs/x.gda")])`` records every optimizer step.

What is measured: phi_k(alpha) is the value of ``training_step(batch, batch_idx)`` (its loss) at
``w_k + alpha d_k`` on the step's batches (all of them with ``accumulate_grad_batches`` > 1: their
mean, as Lightning optimises it), in eval mode by default; ``slope0`` and ``grad_norm`` use the
gradient before Lightning's ``gradient_clip_val`` clipping.  During the probe ``self.log`` and
``self.log_dict`` are silenced, so the probe's evaluations never reach your metrics.  With
``ProbeConfig(precision="training")`` they run in Lightning's precision context (the autocast of
``precision="bf16-mixed"``), otherwise in fp32.

Automatic optimisation with one optimizer only (the first one is recorded otherwise); the probe
uses the ``sweep`` strategy (a ``training_step`` is not a function ``vmap`` can batch).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Any

import lightning.pytorch as pl

from ..hooks import Recorder
from ..probe import MicroBatch, ProbeConfig, resolve_config, rng_state

log = logging.getLogger(__name__)

__all__ = ["GdaCallback"]


def _step_loss(output) -> Any:
    if isinstance(output, dict) or hasattr(output, "keys"):
        return output["loss"]
    return output


class GdaCallback(pl.Callback):
    """Record phi_k at every optimizer step of a Lightning fit into ``path``.

    Parameters
    ----------
    path : the ``*.gda`` recording to write
    probe : a preset name or a :class:`recorder.probe.ProbeConfig` (``strategy`` is set to ``sweep``)
    **kwargs : passed to :class:`recorder.hooks.Recorder` (``run``, ``tags``, ``seed``, ``strict``, ...)
    """

    def __init__(self, path, probe: ProbeConfig | str | None = None, **kwargs):
        super().__init__()
        self.path = path
        self.config = resolve_config(probe).with_(strategy="sweep")
        self.kwargs = kwargs
        self.recorder: Recorder | None = None
        self._batch: tuple | None = None
        self._rng = None
        self._module = None
        self._trainer = None

    # -- the probe's view of a training step -----------------------------------
    def _evaluate(self, mb: MicroBatch):
        module = self._module
        module.log = lambda *a, **k: None  # the probe's evaluations are not metrics
        module.log_dict = lambda *a, **k: None
        try:
            with self._precision():
                return _step_loss(module.training_step(*mb.args, **mb.kwargs))
        finally:
            del module.log, module.log_dict

    def _precision(self):
        """Lightning's own precision context (the autocast of ``"bf16-mixed"``, ``"16-mixed"``) with
        ``ProbeConfig(precision="training")``, so the probe's ``training_step`` runs as the training's
        did; none otherwise (the probe's default fp32)."""
        if self.config.precision == "training" and self._trainer is not None:
            return self._trainer.precision_plugin.train_step_context()
        return contextlib.nullcontext()

    def _call_args(self, module, batch, batch_idx) -> tuple:
        try:
            params = inspect.signature(module.training_step).parameters.values()
        except (TypeError, ValueError):
            return batch, batch_idx
        positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        if any(p.kind == p.VAR_POSITIONAL for p in params) or len(positional) >= 2:
            return batch, batch_idx
        return (batch,)

    # -- Lightning hooks ----------------------------------------------------------
    def on_fit_start(self, trainer: "pl.Trainer", pl_module: "pl.LightningModule") -> None:
        if not pl_module.automatic_optimization:
            log.warning("GdaCallback: manual optimisation is not supported; nothing is recorded")
            return
        if len(trainer.optimizers) != 1:
            log.warning("GdaCallback: %d optimizers; recording the first one", len(trainer.optimizers))
        self._module = pl_module
        self._trainer = trainer
        self.recorder = Recorder(trainer.optimizers[0], pl_module, None, self.path, self.config, capture=False,
                                 evaluate=self._evaluate, **self.kwargs)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.recorder is not None:
            self.recorder.set_epoch(trainer.current_epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.recorder is not None:
            self._batch = self._call_args(pl_module, batch, batch_idx)
            self._rng = rng_state(self.recorder._devices) if self.config.replays else None

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if self.recorder is None or self._batch is None:
            return
        # Lightning divides the loss by accumulate_grad_batches before backward; the micro-batch's own
        # loss is that times the divisor, and phi averages the micro-batches the same way
        value = loss.detach() * trainer.accumulate_grad_batches
        self.recorder.add_micro_batch(MicroBatch(self._batch, {}, None, loss=value, rng=self._rng))

    def _close(self) -> None:
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def on_fit_end(self, trainer, pl_module) -> None:
        self._close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close()
