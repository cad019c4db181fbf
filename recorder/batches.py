"""The step's data as the probe sees it: micro-batches, their weights, sub-batches, in-place changes.

A training step's gradient comes from one or more forward/backward passes (gradient accumulation);
each is a :class:`MicroBatch` holding the model call's arguments, the loss's target, the training
loss seen on it, its weight in the step's loss and what the train-mode replay and the precision
setting need (RNG and autocast state at its forward).  phi is the weighted sum of the micro-batches'
losses (:func:`micro_weights`).  :func:`sub_batch` cuts the first ``n`` samples of a micro-batch,
refusing layouts whose sample dimension it cannot tell; :func:`changed_in_place` tells whether the
loop wrote into the captured tensors after their forward (then phi would not be the step's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

__all__ = ["MicroBatch", "batch_size_of", "changed_in_place", "extract_loss", "micro_weights", "reduce_loss",
           "sub_batch", "tensor_versions"]


@dataclass
class MicroBatch:
    """One forward/backward the step's gradient came from.

    ``args``/``kwargs`` are the model call, ``target`` the loss's second argument (None when the
    model computes its own loss), ``loss`` the training loss seen on it (mean-reduced),
    ``weight`` its share of the step's loss (None: an equal share, i.e. the mean over the step's
    micro-batches; a number: that weight, e.g. 1.0 for losses already normalised over the whole
    step), ``rng`` the RNG states its forward started from (for the train-mode replay),
    ``autocast`` the autocast state its forward ran in (:func:`autocast_state`; None: not known),
    ``versions`` its tensors' version counters when they were captured (:func:`tensor_versions`).
    """

    args: tuple
    kwargs: dict
    target: Any = None
    loss: float | None = None
    weight: float | None = None
    rng: tuple | None = None
    autocast: dict | None = None
    versions: list | None = None



def tensor_versions(obj) -> list:
    """(tensor, version counter, checksum) for every tensor in ``obj``: :func:`changed_in_place` tells
    later whether the loop wrote into one of them (the counter grows with every in-place change).

    A view shares its counter with its base (a slot of a prefetch ring buffer, a slice of a dataset
    tensor), so a write elsewhere in the base moves it too; views carry a position-weighted checksum
    (left on the device, read only when the counter moved) that tells such writes from a refill.
    """
    out = []
    for t in _tensors(obj, []):
        try:
            # torch's version counter and view base: the documented way to see in-place writes
            out.append((t, t._version, _checksum(t) if t._base is not None else None))  # noqa: SLF001
        except (RuntimeError, AttributeError):  # inference-mode tensors keep no version counter
            pass
    return out


def _checksum(t: torch.Tensor) -> torch.Tensor:
    """The sum and a position-weighted sum of ``t``'s values (float64, on ``t``'s device)."""
    f = t.detach().reshape(-1).to(torch.float64)
    w = torch.arange(1, f.numel() + 1, dtype=torch.float64, device=f.device)
    return torch.stack([f.sum(), torch.dot(f, w)])


def changed_in_place(batches: Sequence[MicroBatch]) -> str | None:
    """Why the step's data is no longer what its training forward read (a tensor changed in place since
    it was captured), or None when every tracked tensor is unchanged."""
    for i, mb in enumerate(batches):
        for t, v, check in mb.versions or ():
            try:
                now = t._version  # noqa: SLF001 (torch's version counter)
            except (RuntimeError, AttributeError):
                continue
            if now == v:
                continue
            # a view's counter is its base's: a write elsewhere in the base leaves the view's checksum as it was
            if check is None or not torch.allclose(_checksum(t), check, rtol=0.0, atol=0.0, equal_nan=True):
                return (f"the step's data changed in place after its training forward read it (micro-batch {i}, "
                        f"a tensor of shape {tuple(t.shape)}: version counter {v} -> {now}): the loop refills "
                        "its input buffers before step(), or the model writes into its inputs; phi on that "
                        "data would not be the step's, so none is recorded.  Pass copies to the model "
                        "(x.clone()) or refill after step()")
    return None


def micro_weights(batches: Sequence[MicroBatch]) -> list[float]:
    """The weights phi sums the micro-batches' losses with (equal shares unless a weight is given)."""
    n = len(batches)
    return [1.0 / n if b.weight is None else float(b.weight) for b in batches] if n else []


def reduce_loss(loss) -> torch.Tensor:
    """A scalar loss: a per-sample loss (``reduction='none'``) is averaged, as ``.mean()`` does."""
    if not isinstance(loss, torch.Tensor):
        loss = torch.as_tensor(loss)
    return loss.reshape(()) if loss.numel() == 1 else loss.mean()


def extract_loss(output, loss_from):
    """The loss inside a model's output: ``loss_from`` is an attribute or key name (``"loss"`` for
    HuggingFace outputs), an index into a tuple, or a callable ``f(output) -> loss``."""
    if callable(loss_from):
        return loss_from(output)
    if isinstance(loss_from, str):
        if isinstance(output, dict) or hasattr(output, "keys"):
            try:
                return output[loss_from]
            except (KeyError, TypeError):
                pass
        return getattr(output, loss_from)
    return output[loss_from]


def _tensors(obj, out: list) -> list:
    if isinstance(obj, torch.Tensor):
        out.append(obj)
    elif isinstance(obj, (list, tuple)):
        for o in obj:
            _tensors(o, out)
    elif isinstance(obj, dict):
        for o in obj.values():
            _tensors(o, out)
    return out


def _map(obj, fn):
    if isinstance(obj, torch.Tensor):
        return fn(obj)
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):
        return type(obj)(*(_map(o, fn) for o in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map(o, fn) for o in obj)
    if isinstance(obj, dict):
        return type(obj)((k, _map(v, fn)) for k, v in obj.items())
    return obj


_LAYOUT_HINT = ("say which dimension holds the samples with ProbeConfig(batch_dim=...), or pass a callable "
                "batch_dim=f(args, kwargs, target, n) -> (args, kwargs, target)")


def sub_batch(args, kwargs, target, n: int, batch_dim=None):
    """The first ``n`` samples of a mini-batch; see :class:`ProbeConfig` (``sub_batch``, ``batch_dim``).

    ``batch_dim=None``: dimension 0 of every tensor that has the inputs' size there.  An int ``d``: the
    number of samples B is dimension ``d`` of the input of most dimensions that has it; a tensor is cut along ``d``
    when its dimension ``d`` is B, along 0 when only its dimension 0 is B (the ``(B,)`` target of
    ``(T, B, F)`` inputs), and kept whole when no dimension is B (a ``(T, T)`` mask).  A batch of at most ``n`` samples
    is kept whole, but only once the layout is clear: a layout it cannot tell never passes as
    "nothing to cut".

    Raises
    ------
    ValueError
        When the sample dimension cannot be told: with ``None``, a target whose dimension 0 differs
        from the inputs' or an input ``(T, B, ...)`` with ``T == B``; with an int, a tensor whose
        samples could as well be steps (a leading dimension of the input equals B) or lie along
        another dimension.
    """
    if callable(batch_dim):
        return batch_dim(args, kwargs, target, n)
    inputs = [t for t in _tensors((args, kwargs), []) if t.dim() > 0]
    targets = [t for t in _tensors(target, []) if t.dim() > 0]
    if not inputs and not targets:
        return args, kwargs, target
    if batch_dim is None:
        B = _samples_along_dim0(inputs, targets, n)
        if B <= n:
            return args, kwargs, target

        def cut(t):
            return t[:n] if t.dim() > 0 and t.shape[0] == B else t
    else:
        where = _samples_along(inputs, targets, int(batch_dim), n)
        if where is None:
            return args, kwargs, target

        def cut(t):
            dim = where(t) if t.dim() > 0 else None
            return t if dim is None else t.narrow(dim, 0, n)

    return _map(args, cut), _map(kwargs, cut), _map(target, cut)


def _samples_along_dim0(inputs: list, targets: list, n: int) -> int:
    """The number of samples with ``batch_dim=None`` (dimension 0 of the first input), checking the layout."""
    B = int((inputs or targets)[0].shape[0])
    for t in targets:
        if t.shape[0] != B and max(B, int(t.shape[0])) > n:
            raise ValueError(f"sub_batch: the inputs have {B} rows but the target has shape {tuple(t.shape)}; "
                             f"the samples are not along dimension 0 everywhere: {_LAYOUT_HINT}")
    for t in inputs:
        if t.dim() >= 3 and t.shape[0] == B and t.shape[1] == B and B > n:
            raise ValueError(f"sub_batch: an input of shape {tuple(t.shape)} is ambiguous (batch-first or "
                             f"sequence-first with as many steps as samples?): {_LAYOUT_HINT}")
    return B


def _samples_along(inputs: list, targets: list, d: int, n: int):
    """For ``batch_dim=d``: a function tensor -> the dimension to cut (None: keep whole), or None when
    the batch has at most ``n`` samples; raises ``ValueError`` for a layout it cannot tell."""
    shapes = [tuple(t.shape) for t in inputs + targets]
    having = [t for t in inputs if t.dim() > d] or [t for t in targets if t.dim() > d]
    if not having:
        raise ValueError(f"sub_batch: batch_dim={d}, but no tensor has that dimension (shapes {shapes}); "
                         "pass a callable batch_dim")
    main = max(having, key=lambda t: t.dim())  # the data (x of shape (T, B, F)), not a (T, T) mask
    B = int(main.shape[d])
    if B <= n:
        return None
    leading = {int(s) for s in main.shape[:d]}

    def where(t) -> int | None:
        if t.dim() > d and t.shape[d] == B:
            return d
        if t.shape[0] == B and B not in leading and B not in t.shape[1:]:
            return 0
        if B in t.shape:
            raise ValueError(f"sub_batch: batch_dim={d} with {B} samples: a tensor of shape {tuple(t.shape)} "
                             f"could hold them along another dimension, or be per step (shapes {shapes}); "
                             "pass a callable batch_dim")
        return None

    for t in inputs + targets:
        where(t)  # refuse before cutting anything
    return where


def batch_size_of(obj) -> int | None:
    ts = [t for t in _tensors(obj, []) if t.dim() > 0]
    return int(ts[0].shape[0]) if ts else None

