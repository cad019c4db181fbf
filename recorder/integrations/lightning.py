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

What the LightningModule logs reaches the recording as series (:mod:`recorder.series`), no line
needed: ``self.log``/``self.log_dict`` calls are seen as they are made (the probe's are not).  A
per-step value logged in ``training_step`` is recorded at the iteration of the step its batch feeds
(the recorder's iteration when the batch starts, ``trainer.global_step`` then in a fresh fit); an
epoch-aggregated value (``on_epoch=True``: validation metrics by default) is read from
``trainer.callback_metrics`` when its loop ends (``on_validation_end``, ``on_train_epoch_end``) and
recorded at the number of optimizer steps taken, where the next ``train_loss`` lands.  Sanity-check
validation is not recorded.  A name that is a built-in per-iteration statistic (``train_loss``,
``lr``, ...) is recorded as ``lightning/<name>``.  The module's ``hparams`` and the trainer's
settings (accumulation, clipping, precision, batch size) go to ``run["config"]``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Any

import lightning.pytorch as pl
import torch

from ..hooks import Recorder
from ..probe import MicroBatch, ProbeConfig, resolve_config, rng_state
from ..series import framework_name

log = log_ = logging.getLogger(__name__)

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
        self._step_values: list[tuple[str, Any]] = []   # per-step values logged during the current batch
        self._epoch_names: dict[str, set] = {"train": set(), "validate": set()}  # on_epoch names per loop
        self._batch_iteration = 0

    # -- the probe's view of a training step -----------------------------------
    def _evaluate(self, mb: MicroBatch):
        module = self._module
        saved = {k: module.__dict__[k] for k in ("log", "log_dict") if k in module.__dict__}
        module.log = lambda *a, **k: None  # the probe's evaluations are not metrics
        module.log_dict = lambda *a, **k: None
        try:
            with self._precision():
                return _step_loss(module.training_step(*mb.args, **mb.kwargs))
        finally:
            del module.log, module.log_dict
            module.__dict__.update(saved)  # our own metric capture (_watch_log), when installed

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
        self._watch_log(pl_module)
        self.recorder.log_config(**_settings(trainer, pl_module))
        self.recorder.on_finding(self._finding)

    def _finding(self, f: dict) -> None:
        """A live finding as text: a warning line, and ``add_text`` on loggers whose experiment has it."""
        from ..diagnose.report import finding_line

        text = finding_line(f)
        log.warning("gda_gl: %s", text)
        trainer = self._trainer
        for logger in getattr(trainer, "loggers", None) or ():
            add_text = getattr(getattr(logger, "experiment", None), "add_text", None)
            if callable(add_text):  # TensorBoard's SummaryWriter
                add_text("gda_gl/findings", text, global_step=trainer.global_step)

    # -- forwarding what the module logs ------------------------------------------------
    def _watch_log(self, module) -> None:
        """See every ``self.log`` call of the module (``log_dict`` calls it per item) before Lightning does.

        The one place the recorder writes into another object's ``__dict__``, on purpose: Lightning has no
        hook that sees what a module logs per step, so an instance attribute ``log`` wraps the module's own
        method (the class is untouched) and :meth:`_close` removes it again at the end of the fit."""
        original = module.log

        def log(name, value, *args, **kwargs):
            try:
                self._seen(name, value, kwargs)
            except Exception as exc:  # never break training
                log_.debug("GdaCallback: could not forward %r: %s", name, exc)
            return original(name, value, *args, **kwargs)

        module.log = log

    def _seen(self, name, value, kwargs) -> None:
        trainer = self._trainer
        if self.recorder is None or trainer is None or trainer.sanity_checking:
            return
        loop = "train" if trainer.training else "validate" if trainer.validating else None
        if loop is None:
            return
        on_step = kwargs.get("on_step")
        on_epoch = kwargs.get("on_epoch")
        if (on_step is None and loop == "train") or on_step:
            self._step_values.append((name, value))
        if (on_epoch is None and loop == "validate") or on_epoch:
            self._epoch_names[loop].add(name)

    def _forward_epoch(self, trainer, loop: str) -> None:
        names, self._epoch_names[loop] = self._epoch_names[loop], set()
        if self.recorder is None or trainer.sanity_checking:
            return
        metrics = trainer.callback_metrics
        for name in sorted(names):
            value = metrics.get(name, metrics.get(f"{name}_epoch"))
            if value is not None:
                self.recorder.log(framework_name(name, "lightning"), value)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        values, self._step_values = self._step_values, []
        if self.recorder is None:
            return
        for name, value in values:
            if not isinstance(value, (int, float, torch.Tensor)):  # a torchmetrics Metric: its computed value
                value = trainer.callback_metrics.get(name, trainer.callback_metrics.get(f"{name}_step"))
            if value is not None:
                self.recorder.log(framework_name(name, "lightning"), value, step=self._batch_iteration)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self._forward_epoch(trainer, "train")

    def on_validation_end(self, trainer, pl_module) -> None:
        self._forward_epoch(trainer, "validate")

    def on_train_start(self, trainer, pl_module) -> None:
        loader = trainer.train_dataloader  # set up by now
        size = getattr(loader, "batch_size", None)
        if self.recorder is not None and isinstance(size, int):
            self.recorder.log_config(batch_size=size)

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        if self.recorder is not None:
            self.recorder.set_epoch(trainer.current_epoch)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if self.recorder is not None:
            self._batch = self._call_args(pl_module, batch, batch_idx)
            self._batch_iteration = self.recorder.iteration  # the step this batch feeds
            self._rng = rng_state(self.recorder.devices) if self.config.replays else None

    def on_before_backward(self, trainer, pl_module, loss) -> None:
        if self.recorder is None or self._batch is None:
            return
        # Lightning divides the loss by accumulate_grad_batches before backward; the micro-batch's own
        # loss is that times the divisor, and phi averages the micro-batches the same way
        value = loss.detach() * trainer.accumulate_grad_batches
        # counted when the backward reaches it (a GradScaler's scale then known: slope0 unscaled)
        self.recorder.add_micro_batch(MicroBatch(self._batch, {}, None, loss=value, rng=self._rng), loss,
                                      1.0 / trainer.accumulate_grad_batches)

    def _close(self) -> None:
        if self._module is not None:
            self._module.__dict__.pop("log", None)  # the module's own log again
        if self.recorder is not None:
            self.recorder.close()
            self.recorder = None

    def on_fit_end(self, trainer, pl_module) -> None:
        self._close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self._close()


def _settings(trainer, module) -> dict:
    """The run's hyperparameters for ``run["config"]``: the module's ``hparams`` and the trainer's settings."""
    out = {}
    try:
        out.update({str(k): v for k, v in dict(getattr(module, "hparams", {}) or {}).items()})
    except Exception:
        pass
    for key in ("accumulate_grad_batches", "gradient_clip_val", "max_epochs", "max_steps", "precision",
                "world_size"):
        v = getattr(trainer, key, None)
        if isinstance(v, (int, float, str, bool)):
            out[key] = v
    return {k: v for k, v in out.items() if v is not None}
