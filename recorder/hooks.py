"""Attach the probe to an unchanged training loop through the optimizer's step hooks.

``rec = recorder.attach(optimizer, model, loss_fn, path="runs/x.gda")`` is all a
training loop needs.  What is captured, and when:

* **The step's data** (:mod:`recorder.capture`).  A forward pass of the model with gradients
  enabled opens a micro-batch; the loss module's call adds the target and the loss (or
  ``loss_from`` takes the loss out of the model's output).  The micro-batch counts only when
  ``backward`` reaches that loss *and* that backward reaches the optimizer's parameters: a
  validation forward, another model's pass and other recorders' probe forwards are never taken
  for training data.  All micro-batches since the last step are kept (gradient accumulation; up
  to ``ProbeConfig.max_micro_batches``); ``rec.observe(inputs, target, **kwargs)`` adds one by hand.
* **The gradient.**  A post-accumulate-grad hook on every parameter copies its gradient at the
  end of each ``backward``, so the recorded gradient is the one back-propagated since the last
  step, before any clipping or other change the loop makes before ``step()``.
* **Discarded gradients.**  When the loop discards the gradient without a step (``zero_grad``
  after a skipped ``step()``, ``GradScaler`` skipping an overflow, another optimizer's pass, SAM's
  first pass), the micro-batches behind it leave the next step's line; a skipped step is recorded
  as a row of its own (:meth:`Recorder._discarded`).
* **The step.**  pre-hook: snapshot ``w_k``, wrap a closure (LBFGS, CG) so every loss evaluation of
  a line search is a trial point; the optimizer steps; post-hook: ``d_k = w_{k+1} - w_k``, probe
  phi_k over the step's micro-batches and append one row (:mod:`recorder.linerec`).

The recorder never breaks training: every failure inside the hooks is recorded with its message, a
warning is logged once, parameters are restored, and training goes on (``strict=True`` raises
instead).  What cannot be measured exactly and would need the recorder to touch training (FSDP1
with parameters in its root unit) is refused at attach with one line.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Callable

import torch

from . import sharded
from .capture import BatchCapture, Entry, GradientCopy, weights_key
from .diagnose.live import LiveFindings
from .errors import RecordingError
from .flat import flat_grad, offsets
from .linerec import StepMeasure
from .probe import LineProbe, MicroBatch, ProbeConfig, reduce_loss, resolve_config, probing
from .runmeta import GRADIENT_NOTE, open_writer
from .store import RecordingWriter

log = logging.getLogger(__name__)

__all__ = ["Recorder", "attach", "GRADIENT_NOTE", "EVENTS_PER_KIND"]

#: events of one kind written per run about discarded gradients; later ones are counted, and the count is
#: written at close
EVENTS_PER_KIND = 100


class Recorder:
    """Records phi_k for every step of ``optimizer``; see :func:`attach`."""

    def __init__(self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, loss_fn: Callable | None = None,
                 path=None, probe: ProbeConfig | str | None = None, *, loss_from: Any = None,
                 run: dict | None = None, tags: dict | None = None, seed: int | None = None,
                 strict: bool | None = None, overwrite: bool = False, commit_interval: float = 1.0,
                 distributed: bool | None = None, capture: bool = True,
                 evaluate: Callable[[MicroBatch], Any] | None = None):
        if path is None:
            raise ValueError("attach needs path=, the *.gda recording to write")
        if loss_fn is None and loss_from is None and evaluate is None:
            raise ValueError("attach needs loss_fn (loss_fn(output, target)) or loss_from (where the model's "
                             "output holds its loss, e.g. loss_from='loss' for HuggingFace models)")
        self.optimizer, self.model, self.loss_fn, self.loss_from = optimizer, model, loss_fn, loss_from
        self.config = resolve_config(probe)
        self.strict = self.config.strict if strict is None else bool(strict)
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.probe = LineProbe(model, loss_fn, self.params, self.config, loss_from=loss_from, evaluate=evaluate)
        self.alphas = self.probe.alphas
        self.iteration = self.epoch = self.failures = self.rank = 0
        self.writer: RecordingWriter | None = None
        self._pre: dict | None = None
        self._warned: set[str] = set()
        self._counts: dict[str, int] = {}
        self._handles: list = []
        self._finding_hooks: list[Callable] = []
        self.distributed = bool(torch.distributed.is_available() and torch.distributed.is_initialized()
                                if distributed is None else distributed)
        self.shard: sharded.Layout | None = None  # set for sharded parameters (FSDP, tensor parallel)
        self._offsets = offsets(self.params)
        self.world = torch.distributed.get_world_size() if self.distributed else 1
        if self.distributed:
            self.rank = torch.distributed.get_rank()
            self._attach_sharded()
        #: the devices of the model's parameters (integrations snapshot their RNG states)
        self.devices = sorted({p.device for p in self.params}, key=str)
        self.steps = StepMeasure(self)
        self.capture = BatchCapture(self.params, self.config, self.devices, loss_from=loss_from, fail=self._fail,
                                    active=lambda: self._active, plain=self.shard is None)
        check = ("arrival" if self.shard.grad_hooks else None) if self.shard is not None else \
            "identity" if self.distributed else "full"
        self.grad = GradientCopy(self.params, self._offsets, check=check, on_discard=self._discarded,
                                 on_accumulate=self.capture.accumulated_in, fail=self._fail)
        if self.rank == 0:
            self.writer = open_writer(self, path, run, tags, seed, overwrite, commit_interval)
        #: live diagnosis on the writing rank (:mod:`recorder.diagnose.live`), else None
        self.findings = None if self.writer is None else LiveFindings(self.writer, self.alphas, self.emit_finding)
        self._install(capture)

    @property
    def strategy(self):
        """The probe strategy of the latest step (``sweep`` or ``batched``)."""
        return self.steps.strategy

    # -- hooks ---------------------------------------------------------------
    def _install(self, capture: bool) -> None:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handles.append(self.optimizer.register_step_pre_hook(self._before_step))
        self._handles.append(self.optimizer.register_step_post_hook(self._after_step))
        self._handles.append(register_optimizer_step_post_hook(self._any_step))
        for i, p in enumerate(self.params):
            if p.requires_grad and hasattr(p, "register_post_accumulate_grad_hook") and \
                    (self.shard is None or self.shard.grad_hooks):
                pre, post = self.grad.hooks(i, lambda: self._active)
                if self.shard is None:
                    self._handles.append(p.register_hook(pre))
                self._handles.append(p.register_post_accumulate_grad_hook(post))
        if not capture:
            return
        c = self.capture
        self._handles.append(self.model.register_forward_pre_hook(c.on_inputs, with_kwargs=True))
        if self.loss_from is not None:
            self._handles.append(self.model.register_forward_hook(c.on_model_loss))
        if isinstance(self.loss_fn, torch.nn.Module):
            self._handles.append(self.loss_fn.register_forward_pre_hook(c.on_target))
            self._handles.append(self.loss_fn.register_forward_hook(c.on_loss))

    def _attach_sharded(self) -> None:
        """Sharded parameters (FSDP, tensor parallel): a probe on the local shards, dots reduced over ranks."""
        try:
            self.shard = sharded.detect(self.model, self.params)
        except Exception as exc:  # never break training: fall back to the DDP path, say so
            self.warn_once("sharded", f"gda_gl recorder: could not read the model's sharding: {exc}")
            return
        if self.shard is None:
            return
        if self.shard.refusal:  # every rank refuses alike, before any hook is installed
            raise ValueError(f"gda_gl recorder: {self.shard.refusal}")
        self._offsets = self.shard.offsets
        self.probe = sharded.sharded_probe(self.probe, self.shard)
        if self.rank != 0:
            return
        if self.shard.problem:  # every probe records it as a failed row; 'batched' is refused the same way
            self.warn_once("sharded", f"gda_gl recorder: {self.shard.kind}: {self.shard.problem}; every probe is "
                                      "recorded as failed")
        elif self.config.strategy != "batched":
            log.info("gda_gl recorder: %s model, probe strategy sweep: %s", self.shard.kind, sharded.SWEEP_REASON)

    @property
    def _active(self) -> bool:
        """Whether steps are measured here: with a writer, or on every rank of a distributed run (rank 0
        without a writer still takes part in the probe's collectives, or the other ranks would wait)."""
        return self.writer is not None or self.distributed

    def _any_step(self, optimizer, args, kwargs) -> None:
        """Every optimizer's step (torch's global hook): another optimizer's counts for :meth:`_discarded`."""
        if optimizer is not self.optimizer and not probing():
            self.capture.others += 1

    def add_micro_batch(self, mb: MicroBatch, loss: torch.Tensor | None = None, factor: float = 1.0) -> None:
        """Count ``mb`` as part of the current step's data (integrations call this before backward).

        With ``loss`` (the tensor about to be back-propagated, ``factor`` = d loss / d ``mb.loss``) it counts
        when the backward reaches ``loss``, and its gradient's scale (a GradScaler's) is known."""
        if isinstance(loss, torch.Tensor) and loss.requires_grad:
            try:
                self.capture.watch(loss, mb, factor)
                return
            except Exception as exc:  # never break training: count it now instead
                self._fail(f"watching the loss: {type(exc).__name__}: {exc}")
        self.capture.commit(mb)

    def observe(self, inputs, target=None, loss: torch.Tensor | float | None = None, **kwargs) -> None:
        """Add a micro-batch by hand (needed for plain-function losses); call it for every micro-batch,
        before its ``backward()`` (so a skipped step's batch is told from the next one's).

        ``inputs`` is the model's positional input (a tensor or a tuple of tensors), ``kwargs`` its
        keyword arguments, ``target`` the loss function's second argument, ``loss`` the training loss.
        """
        self.capture.add(inputs, target, loss, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", msg)

    # -- discarded gradients -------------------------------------------------------
    def _discarded(self, task) -> None:
        """The loop discarded the gradient of earlier backward passes (called inside the next backward, or
        at close): :meth:`recorder.linerec.StepMeasure.discarded` says what they were."""
        try:
            self.steps.discarded(self.capture.discard_before(task))
        except Exception as exc:  # never break training
            self._fail(f"dropping a discarded gradient: {type(exc).__name__}: {exc}")

    # -- the step ------------------------------------------------------------------
    def _before_step(self, optimizer, args, kwargs):
        self._pre = None
        if self.writer is None and self.rank == 0 and not self.distributed:  # other ranks wait in collectives
            return None
        try:
            pre: dict[str, Any] = {"w0": self.probe.flat(), "trials": [], "t0": time.time(), "grad": None,
                                   "weights": weights_key(self.params) if self.shard is None else None}
            closure = kwargs.get("closure") if "closure" in kwargs else (args[1] if len(args) > 1 else None)
            if closure is None and ((self.distributed and not (self.shard and self.shard.grad_hooks))
                                    or not self.grad.seen):
                # DDP averages into p.grad after the hooks ran; gradients set by hand bypass them
                pre["grad_now"] = flat_grad(self.params)
            self._pre = pre
            if closure is not None:
                wrapped = self._wrap_closure(closure, pre)
                if "closure" in kwargs:
                    kwargs = dict(kwargs, closure=wrapped)
                else:
                    args = (args[0], wrapped, *args[2:])
                return args, kwargs
        except Exception as exc:  # never break training
            self._pre = None
            self._fail(f"before step: {type(exc).__name__}: {exc}")
        return None

    def _wrap_closure(self, closure, pre):
        def wrapped():
            if pre["trials"]:  # a line search re-evaluates: only this evaluation's data and gradient count
                self.grad.reset()
                self.capture.clear()
            loss = closure()
            try:
                if not probing():
                    g = self.grad.buf.clone() if self._hook_gradient() else flat_grad(self.params)
                    lv = float(reduce_loss(loss.detach())) if isinstance(loss, torch.Tensor) else float(loss)
                    pre["trials"].append((self.probe.flat(), lv, g))
            except Exception as exc:
                self._fail(f"capturing a line-search evaluation: {exc}")
            return loss

        return wrapped

    def _hook_gradient(self) -> bool:
        """Whether the hooks' copy is the gradient (else p.grad is read: DDP, FSDP1, gradients set by hand)."""
        return self.grad.seen and self.grad.buf is not None and (not self.distributed or self.shard is not None)

    def _after_step(self, optimizer, args, kwargs) -> None:
        pre, self._pre = self._pre, None
        k = self.iteration
        self.iteration += 1
        entries, over, samples = self.capture.take()
        grad = None
        if pre is not None and not pre["trials"]:
            if "grad_now" in pre:
                grad = pre["grad_now"]
            elif self._hook_gradient():
                grad, pre["copied"] = self.grad.buf.clone(), True
            else:
                grad = flat_grad(self.params)
        self.grad.reset()
        if pre is None or (self.writer is None and self.rank == 0 and not self.distributed):
            return
        pre["grad"], pre["k"] = grad, k
        if not pre["trials"] and self._ran_elsewhere(pre, entries):
            self.note_once(k, "gradient-elsewhere",
                           "the step's forward passes ran at weights other than w_k (the parameters changed "
                           "between the forward and step(): SAM's perturbed point): train_loss, slope0 and "
                           "grad_norm are of that point, phi(0) is the loss at w_k")
        try:
            self.steps.record(k, pre, entries, over, samples)
        except Exception as exc:
            if self.strict:
                raise
            self._fail(f"iteration {k}: {type(exc).__name__}: {exc}")

    @staticmethod
    def _ran_elsewhere(pre: dict, entries: list[Entry]) -> bool:
        w = pre.get("weights")
        return bool(w) and any(e.weights is not None and e.weights != w for e in entries)

    # -- events ----------------------------------------------------------------------
    def note(self, k: int | None, kind: str, message: str) -> None:
        if self.writer is not None:
            self.writer.add_event(kind, message, iteration=k)

    def note_once(self, k: int | None, kind: str, message: str) -> None:
        """An event of ``kind``, written for the first :data:`EVENTS_PER_KIND` occurrences (then counted; the
        count is written at close) and logged once."""
        n = self._counts[kind] = self._counts.get(kind, 0) + 1
        if n <= EVENTS_PER_KIND:
            self.note(k, kind, message)
        self.warn_once(f"event:{kind}", f"gda_gl recorder at iteration {k}: {message} (recorded as event "
                                        f"'{kind}'; further ones are only recorded)")

    def on_finding(self, callback: Callable) -> Callable:
        """Register ``callback(finding)`` for live findings (:mod:`recorder`'s detection calls
        :meth:`emit_finding`); returns ``callback`` so it can be used as a decorator."""
        self._finding_hooks.append(callback)
        return callback

    def emit_finding(self, finding) -> None:
        """Hand ``finding`` to every :meth:`on_finding` callback; a failing callback never breaks training."""
        for cb in list(self._finding_hooks):
            try:
                cb(finding)
            except Exception as exc:
                self._fail(f"an on_finding callback: {type(exc).__name__}: {exc}")

    def _fail(self, message: str) -> None:
        self.failures += 1
        if self.strict:
            raise RuntimeError(message)
        self.warn_once("internal", f"gda_gl recorder: {message} (training goes on)")
        if self.writer is not None:
            try:
                self.writer.add_event("recorder-error", message, iteration=self.iteration)
            except Exception:
                pass

    # -- scalar series (recorder.series) ---------------------------------------
    def log(self, name: str, value, step: int | None = None) -> None:
        """Record a scalar (validation loss, accuracy, ...) of series ``name`` at iteration ``step``
        (default: the current one, the number of optimizer steps taken).  NaN and +-Inf are kept; bad input
        gives one warning and an event and training goes on (:func:`recorder.series.log_value`)."""
        from . import series

        series.log_value(self, name, value, step)

    def log_dict(self, values: dict, step: int | None = None) -> None:
        """:meth:`log` for every ``name: value`` of ``values``, all at ``step``."""
        from . import series

        series.log_values(self, values, step)

    def log_config(self, values=None, /, **keywords) -> None:
        """Record hyperparameters (batch size, K, anything) in the run metadata, ``run["config"]``: a mapping
        (W&B's and Lightning's ``{"optimizer.lr": 0.1}``) and/or keywords (named ``log_config`` because
        ``config`` is the recorder's :class:`recorder.probe.ProbeConfig`)."""
        from . import series

        series.log_config(self, values, keywords)

    # -- lifecycle -----------------------------------------------------------
    def flush(self) -> None:
        if self.writer is not None:
            try:
                self.writer.flush()
            except RecordingError as exc:
                if self.strict:
                    raise
                self.warn_once("write", f"gda_gl recorder: {exc}")

    def _finish(self) -> None:
        """At close: a last batch back-propagated and never stepped is a skipped step; counts of events
        written only in part."""
        left = [e for e in self.capture.entries if e.task in self.capture.accumulated]
        if left and self.grad.seen:
            self._discarded(object())  # no backward runs now: everything committed so far is earlier
        for kind, n in self._counts.items():
            if n > EVENTS_PER_KIND:
                self.note(None, kind, f"{n} events of this kind in all (the first {EVENTS_PER_KIND} are recorded)")

    def close(self) -> None:
        """Remove the hooks and close the recording (commits what is pending)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        try:
            self._finish()
        except Exception as exc:  # never break training
            self._fail(f"closing: {type(exc).__name__}: {exc}")
        if self.findings is not None:
            self.findings.finish()
        if self.writer is not None:
            try:
                self.writer.close()
            except RecordingError as exc:
                if self.strict:
                    raise
                self.warn_once("write", f"gda_gl recorder: {exc}")
            self.path = self.writer.path
            self.writer = None

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def attach(optimizer: torch.optim.Optimizer, model: torch.nn.Module, loss_fn: Callable | None = None, path=None,
           probe: ProbeConfig | str | None = None, **kwargs) -> Recorder:
    """Record phi_k at every step of ``optimizer`` into ``path``.

    Parameters
    ----------
    optimizer : any ``torch.optim.Optimizer`` (SGD, Adam, LBFGS, :class:`recorder.optim.CG`, ...)
    model : the module being trained (its grad-enabled forward calls are the mini-batches)
    loss_fn : ``loss_fn(output, target)``; an ``nn.Module`` loss is hooked to capture the target and
        the training loss (a per-sample loss, ``reduction='none'`` then ``.mean()``, is averaged);
        None when the model computes its own loss (give ``loss_from``)
    path : the ``*.gda`` recording to write
    probe : a preset name (``"cheap"``, ``"standard"``, ``"dense"``, ``"adaptive"``: up to 7 alphas per
        step placed where the line bends, each row storing its own) or a :class:`ProbeConfig`
    **kwargs : ``loss_from`` (where the model's output holds its loss: ``"loss"`` for HuggingFace
        models called with ``labels=``, an index, or a callable), ``run`` (extra metadata), ``tags``,
        ``seed``, ``strict``, ``overwrite``, ``commit_interval``, ``distributed``

    Returns
    -------
    Recorder : use as a context manager or call ``close()``; ``set_epoch(e)`` labels epochs

    Raises
    ------
    ValueError : bad arguments, or a set-up the recorder cannot measure without changing training
        (FSDP1 with parameters in its root unit), in one line that says what to do
    """
    return Recorder(optimizer, model, loss_fn, path, probe, **kwargs)
