"""What a step trained on: its micro-batches and its gradient, captured from an unchanged training loop.

:class:`BatchCapture` keeps the micro-batches since the last step, :class:`GradientCopy` the gradient
back-propagated since then.  The rule both follow: **a micro-batch belongs to step k only if its
gradient made step k.**

* A model forward with gradients enabled opens a micro-batch (``pending``); the loss module's call
  adds its target and loss; the micro-batch is *committed* when ``backward`` reaches the loss (a
  hook on the loss tensor, which also sees the gradient the loss enters the backward with: its
  *seed*, 1 for a plain ``loss.backward()``, the scale under an AMP ``GradScaler``, 1/n for
  ``(loss / n).backward()``).  Every commit is tagged with the autograd graph task (the
  ``backward`` call) it came from.
* A commit whose backward never reaches the optimizer's parameters (a pass that trains another
  model) is not the step's data: only tasks that accumulated a gradient into a parameter count.
* **Discarded gradients.**  A pre-accumulate hook on each parameter checks, before every
  accumulation, that ``p.grad`` still holds what the previous backward left (the same tensor, same
  version counter).  When it does not, the loop discarded the gradient (``zero_grad``, a skipped
  ``step()``: a guard on a non-finite loss, ``GradScaler`` skipping an overflowing step, another
  optimizer's pass through these parameters, SAM's first pass): the micro-batches of earlier
  backward passes are dropped and handed to the recorder, which says what they were
  (:meth:`recorder.hooks.Recorder._discarded`).  Under DDP, which writes the averaged gradient into
  ``p.grad`` after the hooks ran, only a missing or replaced tensor counts (``zero_grad()``'s default
  ``set_to_none=True``).  Sharded parameters (FSDP2, tensor parallel) are checked when their gradient
  arrives (FSDP2 sets it after its reduce-scatter, outside autograd's accumulation): a ``p.grad`` that is
  not the tensor the previous backward left was discarded in between.  FSDP1 is not checked (its hooks
  see unsharded gradients; the recorder reads ``p.grad`` at ``step()``).
* **Where the forward ran.**  Each micro-batch keeps a key of the parameters at its forward (data
  pointer and version counter of each): a forward at other weights than the step's w_k (SAM's
  perturbed point) is told apart from one at w_k without copying anything.

Nothing here changes training: the hooks only read and copy.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable

import torch

from .flat import local
from .probe import MicroBatch, autocast_state, batch_size_of, extract_loss, reduce_loss, rng_state, \
    tensor_versions

__all__ = ["Entry", "BatchCapture", "GradientCopy", "graph_task", "weights_key"]


def graph_task() -> int | None:
    """The autograd graph task (one ``backward`` call) running now, None outside a backward."""
    try:
        t = torch._C._current_graph_task_id()  # noqa: SLF001 (autograd's id of the running backward)
    except (AttributeError, RuntimeError):  # pragma: no cover - a torch without it: every backward is one
        return 0
    return None if t < 0 else int(t)


def weights_key(params) -> tuple:
    """Where the parameters are now, without reading their values: each one's data pointer and version
    counter (an optimizer step, an in-place write or a ``p.data = ...`` swap changes it)."""
    try:
        return tuple((p.data_ptr(), p._version) for p in params)  # noqa: SLF001 (torch's version counter)
    except (RuntimeError, AttributeError):
        return ()


@dataclass
class Entry:
    """A committed micro-batch and what is known about how it entered the gradient."""

    mb: MicroBatch
    task: int | None          #: the backward that committed it (None: added by hand)
    order: int                #: commit order since the recorder started
    seed: torch.Tensor | None = None  #: the gradient the loss entered the backward with (summed)
    weights: tuple | None = None      #: :func:`weights_key` at its forward (None: not known)
    others: int = 0           #: other optimizers' steps counted when it was committed
    samples: int = 0


class BatchCapture:
    """The micro-batches since the last step (see the module docstring).

    Parameters
    ----------
    params : the optimizer's parameters
    config : the :class:`recorder.probe.ProbeConfig` (``max_micro_batches``, ``batch_dim``, ``replays``)
    devices : the parameters' devices (RNG states, autocast state)
    loss_from : where the model's output holds its loss (None: a loss module gives it)
    fail : ``fail(message)`` reports a problem without breaking training
    active : ``active()`` says whether steps are measured at all
    plain : plain parameter tensors (not sharded): forwards keep a :func:`weights_key`, and only micro-batches
        whose backward accumulated into a parameter count.  Sharded parameters receive their gradient
        outside autograd's accumulation (FSDP2 after its reduce-scatter, only on synchronising backward
        passes), so there every committed micro-batch counts
    """

    def __init__(self, params, config, devices, *, loss_from=None, fail: Callable[[str], None],
                 active: Callable[[], bool], plain: bool = True):
        self.params, self.config, self.devices = params, config, devices
        self.loss_from, self._fail, self._active, self._plain = loss_from, fail, active, plain
        self.pending: MicroBatch | None = None
        self.entries: list[Entry] = []
        self.over_limit = 0       # micro-batches beyond max_micro_batches (counted, not kept)
        self.over_samples = 0
        self.accumulated: dict[int | None, int] = {}  # task -> commits seen when it accumulated
        self.others = 0           # other optimizers' steps seen (set by the recorder)
        self._order = 0
        self._pending_key: tuple | None = None

    # -- forward and loss hooks -------------------------------------------------
    def training_forward(self) -> bool:
        from .probe import probing

        return torch.is_grad_enabled() and not probing() and self._active()

    def on_inputs(self, module, args, kwargs):
        """Model forward pre-hook: open a micro-batch."""
        if self.training_forward():
            try:
                rng = rng_state(self.devices) if self.config.replays else None
                self.pending = MicroBatch(tuple(args), dict(kwargs), rng=rng,
                                          versions=tensor_versions((args, kwargs)),
                                          autocast=autocast_state([d.type for d in self.devices]))
                self._pending_key = weights_key(self.params) if self._plain else None
            except Exception as exc:  # never break training
                self._fail(f"capturing the model's inputs: {type(exc).__name__}: {exc}")
        return None

    def on_target(self, module, args):
        """Loss module pre-hook: the target is the loss's second argument."""
        if self.training_forward() and self.pending is not None and len(args) >= 2:
            self.pending.target = args[1]
            try:
                self.pending.versions = (self.pending.versions or []) + tensor_versions(args[1])
            except Exception as exc:  # never break training
                self._fail(f"capturing the target: {type(exc).__name__}: {exc}")
        return None

    def on_loss(self, module, args, output):
        """Loss module forward hook: watch the loss."""
        if self.training_forward() and self.pending is not None:
            self._watch(output, self.pending)
        return None

    def on_model_loss(self, module, args, output):
        """Model forward hook (``loss_from``): the loss is in the model's output."""
        if self.training_forward() and self.pending is not None:
            try:
                loss = extract_loss(output, self.loss_from)
            except Exception as exc:
                self._fail(f"loss_from={self.loss_from!r} found no loss in the model's output: "
                           f"{type(exc).__name__}: {exc}")
                return None
            self._watch(loss, self.pending)
        return None

    def _watch(self, loss, mb: MicroBatch) -> None:
        """Commit ``mb`` once backward reaches ``loss``."""
        if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            return
        try:
            mb.loss = reduce_loss(loss.detach())
            if mb.kwargs.get("num_items_in_batch") is not None:
                mb.weight = 1.0  # HuggingFace: the loss is already normalised over the whole step
            self.watch(loss, mb, weights=self._pending_key)
        except Exception as exc:  # never break training
            self._fail(f"watching the loss: {type(exc).__name__}: {exc}")

    def watch(self, tensor: torch.Tensor, mb: MicroBatch, factor: float = 1.0, weights: tuple | None = None) -> None:
        """Commit ``mb`` when backward reaches ``tensor``, its seed the gradient arriving there times ``factor``
        (``factor``: d tensor / d mb's loss, e.g. 1/n for a loss divided by n before backward)."""
        key = weights if weights is not None or not self._plain else weights_key(self.params)
        tensor.register_hook(lambda grad: self.commit(mb, seed=grad * factor if factor != 1.0 else grad,
                                                      weights=key))

    # -- committing and dropping ------------------------------------------------
    def commit(self, mb: MicroBatch, seed: torch.Tensor | None = None, weights: tuple | None = None) -> None:
        """Count ``mb`` as the step's data (from a loss hook, :meth:`add` or the integrations)."""
        from .probe import probing

        if probing() or not self._active() or any(e.mb is mb for e in self.entries):
            return
        task = graph_task() if seed is not None else None
        samples = self.samples_of(mb)
        if len(self.entries) >= self.config.max_micro_batches:
            self.over_limit += 1
            self.over_samples += samples
            return
        s = seed.detach().sum() if isinstance(seed, torch.Tensor) else None
        self._order += 1
        self.entries.append(Entry(mb, task, self._order, s, weights, self.others, samples))

    def add(self, inputs, target=None, loss=None, **kwargs) -> None:
        """``rec.observe``: a micro-batch given by hand."""
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        mb = MicroBatch(args, dict(kwargs), target, versions=tensor_versions((args, kwargs, target)),
                        autocast=autocast_state([d.type for d in self.devices]))
        if loss is not None:
            mb.loss = reduce_loss(torch.as_tensor(loss).detach())
        self.commit(mb)

    def accumulated_in(self, task: int | None) -> None:
        """A parameter received gradient in backward ``task`` (from :class:`GradientCopy`)."""
        self.accumulated[task] = self._order

    def discard_before(self, task: int | None) -> list[Entry]:
        """The loop discarded the gradient: drop what earlier backward passes committed; returns it."""
        earlier = [o for t, o in self.accumulated.items() if t != task]
        mark = max(earlier) if earlier else 0
        keep = [e for e in self.entries if e.task == task or (e.task is None and e.order > mark)]
        dropped = [e for e in self.entries if not any(e is k for k in keep)]
        self.entries = keep
        self.accumulated = {t: o for t, o in self.accumulated.items() if t == task}
        self.over_limit = self.over_samples = 0
        return dropped

    def take(self) -> tuple[list[Entry], int, int]:
        """At ``step()``: the entries whose gradient made the step, those over the limit, and their samples;
        the capture starts empty for the next step."""
        kept = [e for e in self.entries if e.task is None or e.task in self.accumulated or not self._plain]
        out = (kept, self.over_limit, sum(e.samples for e in kept) + self.over_samples)
        self.clear()
        return out

    def clear(self) -> None:
        self.entries, self.accumulated, self.pending = [], {}, None
        self.over_limit = self.over_samples = 0

    def samples_of(self, mb: MicroBatch) -> int:
        """The batch size of a micro-batch: dimension 0 of its target, else ``batch_dim`` of its first input."""
        if isinstance(mb.target, torch.Tensor) and mb.target.dim() > 0:
            return int(mb.target.shape[0])
        dim = self.config.batch_dim if isinstance(self.config.batch_dim, int) else 0
        for t in [*mb.args, *mb.kwargs.values()]:
            if isinstance(t, torch.Tensor) and t.dim() > dim:
                return int(t.shape[dim])
        return batch_size_of((mb.args, mb.kwargs)) or 0


class GradientCopy:
    """The gradient back-propagated since the last step, copied at the end of every backward.

    Parameters
    ----------
    params, offsets : the optimizer's parameters and where each starts in the flat vector
    check : ``"full"`` (tensor identity and version counter, before each accumulation), ``"identity"``
        (DDP: only a missing or replaced ``p.grad``, before each accumulation), ``"arrival"`` (FSDP2, tensor
        parallel: a replaced ``p.grad`` when the gradient arrives) or None (no check)
    on_discard : ``on_discard(task)`` is called once per backward that finds the gradient discarded
    fail : ``fail(message)`` reports a problem without breaking training
    """

    def __init__(self, params, offsets, *, check: str | None, on_discard: Callable, on_accumulate: Callable,
                 fail: Callable[[str], None]):
        self.params, self.offsets, self.check = params, offsets, check
        self._on_discard, self._on_accumulate, self._fail = on_discard, on_accumulate, fail
        self.buf: torch.Tensor | None = None
        self.seen = False  # a backward reached the parameters since the last reset
        self._left: list = [None] * len(params)   # (grad tensor, version) each backward left
        self._task_of: list = [None] * len(params)  # the backward each parameter last accumulated in
        self._discard_task = -2

    def hooks(self, i: int, active: Callable[[], bool]):
        """(pre-accumulate hook, post-accumulate hook) of parameter ``i``."""
        from .probe import probing

        def pre(grad):
            if self.check in ("full", "identity") and not probing() and active():
                try:
                    self._check(i)
                except Exception as exc:  # never break training
                    self._fail(f"checking the gradient: {type(exc).__name__}: {exc}")
            return None

        def post(p):
            if probing() or not active():
                return
            try:
                if self.check == "arrival":
                    self._check(i, arrived=True)
                self._copy(i, p)
            except Exception as exc:  # never break training
                self._fail(f"capturing the gradient: {type(exc).__name__}: {exc}")

        return pre, post

    def _check(self, i: int, arrived: bool = False) -> None:
        left = self._left[i]
        if left is None:
            return
        ref, version = left
        now = self.params[i].grad
        if arrived:  # the new gradient is in p.grad already: is it still the tensor the last backward left?
            moved = now is not None and now is not ref()
        else:
            moved = now is None or now is not ref() or (self.check == "full" and now._version != version)  # noqa: SLF001
        if moved:
            self._discarded()

    def _discarded(self) -> None:
        task = graph_task()
        if task != self._discard_task:  # once per backward: the parameters not yet accumulated in it restart
            self._discard_task = task
            self._restart(task)
            self._on_discard(task)

    def _restart(self, task) -> None:
        for j in range(len(self.params)):
            if self._task_of[j] != task:
                self._left[j] = None
                if self.buf is not None:
                    self.buf[self.offsets[j]:self.offsets[j + 1]].zero_()

    def _copy(self, i: int, p) -> None:
        if self.buf is None:
            self.buf = torch.zeros(self.offsets[-1], dtype=p.dtype, device=local(p).device)
        if p.grad is not None:
            self.buf[self.offsets[i]:self.offsets[i + 1]].copy_(local(p.grad).detach().reshape(-1))
            # a weak reference: the discarded gradient is not kept alive
            self._left[i] = (weakref.ref(p.grad), p.grad._version)  # noqa: SLF001 (torch's version counter)
        task = graph_task()
        self._task_of[i] = task
        self.seen = True
        self._on_accumulate(task)

    def reset(self) -> None:
        """Forget the gradient (after a step, before a line search's re-evaluation)."""
        if self.buf is not None:
            self.buf.zero_()
        self.seen = False
        self._left = [None] * len(self.params)
        self._task_of = [None] * len(self.params)
        self._discard_task = -2
