"""Packing parameters into one flat vector and back: the only place this is written.

The probe, the hooks and :class:`recorder.optim.CG` all work on flat float
vectors ``w`` (the concatenation of the parameters, in the order given) and
``g`` (the same for gradients).  Missing gradients (``p.grad is None``: a
parameter the step's loss does not depend on, after
``zero_grad(set_to_none=True)``) are zeros, which is what they are: phi'(0)
stays defined.

Sharded parameters (``DTensor``: FSDP2 ``fully_shard``, tensor parallel) are
flattened through their *local* shard (:func:`local`): the flat vector of a
rank is the concatenation of what that rank holds, and writing it back goes
into the local shards in place.  :mod:`recorder.sharded` reduces dot products
of such vectors over the ranks.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import torch

__all__ = ["flatten", "flat_grad", "assign", "unflatten", "numel", "offsets", "local"]


def local(t: torch.Tensor) -> torch.Tensor:
    """The part of ``t`` this process holds: a ``DTensor``'s local shard, any other tensor itself."""
    to_local = getattr(t, "to_local", None)
    return to_local() if callable(to_local) else t


def numel(params: Iterable[torch.Tensor]) -> int:
    """Total number of elements of ``params``."""
    return sum(p.numel() for p in params)


def offsets(params: Sequence[torch.Tensor]) -> list[int]:
    """Where each parameter starts in the flat vector, plus the total: ``flat[o[i]:o[i + 1]]`` is ``params[i]``."""
    out = [0]
    for p in params:
        out.append(out[-1] + local(p).numel())
    return out


def flatten(tensors: Iterable[torch.Tensor]) -> torch.Tensor:
    """A detached concatenated copy of ``tensors`` (a new 1-D tensor)."""
    with torch.no_grad():
        parts = [local(t).detach().reshape(-1) for t in tensors]
        return torch.cat(parts) if parts else torch.zeros(0)


def flat_grad(params: Sequence[torch.Tensor]) -> torch.Tensor:
    """The parameters' gradients as one flat copy; a missing gradient counts as zeros."""
    with torch.no_grad():
        parts = [(local(p.grad).detach() if p.grad is not None else torch.zeros_like(local(p))).reshape(-1)
                 for p in params]
        return torch.cat(parts) if parts else torch.zeros(0)


def assign(params: Sequence[torch.Tensor], flat: torch.Tensor) -> None:
    """Copy ``flat`` into ``params`` in place (no autograd); the inverse of :func:`flatten`."""
    off = 0
    with torch.no_grad():
        for p in params:
            p = local(p)
            n = p.numel()
            p.copy_(flat[off:off + n].view_as(p))
            off += n
    if off != flat.numel():
        raise ValueError(f"flat vector has {flat.numel()} values for parameters holding {off}")


def unflatten(flat: torch.Tensor, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Views of ``flat`` (its last dimension split) shaped like ``params``; leading dimensions are kept."""
    shapes = [local(p).shape for p in params]
    sizes = [s.numel() for s in shapes]
    lead = flat.shape[:-1]
    return [t.view(*lead, *s) for t, s in zip(torch.split(flat, sizes, dim=-1), shapes)]
