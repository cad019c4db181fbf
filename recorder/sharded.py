"""Probing sharded models: FSDP2 (``fully_shard``), FSDP1, tensor parallel, and their combinations.

Design
------
Nothing is gathered.  Every rank works on the flat vector of what it holds
(:func:`recorder.flat.local`: a ``DTensor``'s local shard, an FSDP1
``FlatParameter``'s shard, a replicated tensor itself):

* **phi.**  The sweep strategy writes ``w_k + alpha d_k`` into the local shards
  in place and runs the model's ordinary forward, which does the communication
  (FSDP all-gathers, tensor-parallel collectives).  FSDP2 modules are resharded
  after every write so no forward reads a stale gathered copy.  Per-alpha loss
  sums are all-reduced with the sample counts, as under DDP.  The batched
  strategy (``vmap`` over stacked parameter vectors) would need gathered
  copies: it is refused with one line; ``auto`` picks sweep and logs why.
* **Dot products** (``|d|^2``, ``g . d``, ``|g|^2``) are local dot products
  all-reduced over the ranks.  A shard held by several ranks (a replicated
  bias under tensor parallelism, every parameter of a data-parallel replica)
  would be counted once per holder, so each parameter's local sum is weighted
  by ``1 / holders`` where ``holders = world / (number of distinct shards)``:
  for a ``DTensor`` the distinct shards are the product of the mesh sizes of
  its placements other than ``Replicate`` (``Shard``, ``_StridedShard``); a
  plain tensor in a sharded model is taken to be replicated on every rank.
  The weights of an element sum to exactly one over the ranks, so the reduced
  dot products equal the unsharded ones up to summation order.
* **The gradient** is the local gradient shard as the reduce-scatter left it:
  FSDP2 calls the parameters' post-accumulate-grad hooks after it, so the
  recorder's copy is taken before ``clip_grad_norm_`` and before any change
  made before ``step()``.

What cannot be measured exactly is said, never guessed: :func:`detect` returns
a :class:`Layout` whose ``problem`` names it (a ``Partial`` placement, an FSDP1
strategy that keeps gathered parameters between forwards); the recorder then
writes failed rows carrying that message and training goes on.  What could only be
measured by changing training is refused at attach with one line (``Layout.refusal``):
FSDP1 with parameters in its root unit, which FSDP1 keeps gathered between forwards
(the root is not resharded after its forward), so an in-place write into its shards
is neither seen by the probe's forwards nor safe for the next training forward.

Every rank must run the same reductions in the same order: the recorder calls
them on every rank at every probed step (also on rank 0 when its writer failed).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import torch

from .flat import assign, offsets
from .probe import LineProbe, MicroBatch

log = logging.getLogger(__name__)

__all__ = ["BATCHED_REFUSAL", "FSDP1_ROOT_REFUSAL", "GRADIENT_NOTE",
           "Layout", "ShardedProbe", "detect", "global_mean", "sharded_probe"]

#: The one line that refuses the batched strategy on a sharded model.
BATCHED_REFUSAL = ("strategy='batched' cannot probe a sharded model (it needs every parameter gathered on each "
                   "rank); use 'sweep' or 'auto'")

#: What ``slope0`` and ``grad_norm`` are computed from under sharding (stored in the run metadata).
GRADIENT_NOTE = ("the local gradient shards as the reduce-scatter left them at the end of each backward (averaged "
                 "over the data-parallel ranks; before gradient clipping or any other change made before step()), "
                 "dot products reduced over the ranks; parameters without a gradient count as zero")

#: FSDP1's post-accumulate-grad hooks see unsharded gradients: the sharded ``p.grad`` at ``step()`` is used.
FSDP1_GRADIENT_NOTE = ("FSDP1: the local gradient shards (p.grad) when step() is called, averaged over the ranks and "
                       "after any clipping; dot products reduced over the ranks")

#: Why ``auto`` picks the sweep for sharded models (logged and stored in the run metadata).
SWEEP_REASON = ("sharded parameters: the sweep writes w_k + alpha d_k into the local shards and the model's "
                "sharded forward gathers them; the batched strategy would need full copies on every rank")


@dataclass
class Layout:
    """How the optimizer's parameters are spread over the ranks.

    Attributes
    ----------
    kind : ``"fsdp2"``, ``"tensor-parallel"``, ``"fsdp2+tensor-parallel"``, ``"fsdp1"``
    weights : per parameter, ``1 / holders`` of its local part (see the module docstring)
    offsets : where each parameter starts in the local flat vector, plus the total
    world : number of ranks
    problem : why phi or the dot products cannot be measured exactly here (None: they can); every row is then
        recorded as failed with it
    refusal : why the recorder cannot even attach (measuring would change training); attach raises it
    fsdp2_modules : FSDP2 modules to reshard after every in-place write
    grad_hooks : whether post-accumulate-grad hooks see the reduced local gradient shard (FSDP2, tensor
        parallel); False for FSDP1, whose hooks see the unsharded gradient: ``p.grad`` at ``step()`` is used
    """

    kind: str
    weights: list[float]
    offsets: list[int]
    world: int
    problem: str | None = None
    fsdp2_modules: list = field(default_factory=list)
    grad_hooks: bool = True
    refusal: str | None = None

    def __post_init__(self):
        spans: dict[float, list[tuple[int, int]]] = {}
        for w, a, b in zip(self.weights, self.offsets[:-1], self.offsets[1:]):
            if b > a:
                runs = spans.setdefault(w, [])
                if runs and runs[-1][1] == a:
                    runs[-1] = (runs[-1][0], b)
                else:
                    runs.append((a, b))
        self._spans = spans

    def describe(self, requested: str = "auto") -> dict:
        """For the run metadata; ``requested`` is the configured strategy (``"batched"`` is refused)."""
        refused = self.problem or (BATCHED_REFUSAL if requested == "batched" else None)
        return {"kind": self.kind, "world_size": self.world, "local_elements": self.offsets[-1],
                "strategy": "none" if refused else "sweep", "why": refused or SWEEP_REASON,
                "gradient": GRADIENT_NOTE if self.grad_hooks else FSDP1_GRADIENT_NOTE}

    def _local_dot(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float64, device=a.device)
        for w, runs in self._spans.items():
            part = sum(torch.dot(a[s:e], b[s:e].to(a.dtype)).to(torch.float64) for s, e in runs)
            total += w * part if w != 1.0 else part
        return total

    def dots(self, pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[float]:
        """Global dot products of local flat vectors: weighted local sums, one all-reduce for all pairs."""
        if self.problem:
            return [math.nan] * len(pairs)
        if not pairs:
            return []
        buf = torch.stack([self._local_dot(a, b) for a, b in pairs])
        return [float(v) for v in _all_reduce(buf)]

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        return self.dots([(a, b)])[0]

    def after_write(self) -> None:
        """Free FSDP2's gathered parameters so the next forward gathers the shards just written."""
        for m in self.fsdp2_modules:
            m.reshard()


def _all_reduce(buf: torch.Tensor) -> torch.Tensor:
    """Sum ``buf`` over all ranks (on CUDA when the backend is NCCL); returns it on its own device."""
    import torch.distributed as dist

    dev = buf.device
    if dist.get_backend() == "nccl" and not buf.is_cuda:
        buf = buf.cuda()
    dist.all_reduce(buf)
    return buf.to(dev)


def global_mean(value: float, samples: int, has_data: bool) -> tuple[float, int]:
    """The mean over all ranks of a per-rank loss ``value``, each rank weighted equally (the objective
    data-parallel gradients average: DDP and FSDP divide the summed gradient by the number of ranks, so
    with unequal batches per rank the line is the mean of the ranks' means, not of all samples), and the
    samples summed over the ranks.  Every rank must call it."""
    v = value if math.isfinite(value) else 0.0
    bad = 0.0 if math.isfinite(value) or not has_data else 1.0
    out = _all_reduce(torch.tensor([v, 1.0, bad, float(samples)], dtype=torch.float64))
    total = int(out[3])
    if out[2] > 0 or out[1] <= 0:
        return math.nan, total
    return float(out[0] / out[1]), total


def _dtensor_weight(p: torch.Tensor, world: int) -> tuple[float, str | None]:
    """``1 / holders`` of a DTensor's local shard, or a problem."""
    mesh, placements = p.device_mesh, p.placements
    distinct = 1
    for i, pl in enumerate(placements):
        if pl.is_partial():
            return math.nan, "a parameter has a Partial placement (pending reduction): its value is not defined"
        if not pl.is_replicate():  # Shard, and _StridedShard (FSDP2 over tensor parallel), which is no Shard
            distinct *= mesh.size(i)
    if world % distinct:
        return math.nan, f"a parameter is split into {distinct} shards on {world} ranks (not a divisor)"
    return distinct / world, None


def _fsdp1_layout(model: torch.nn.Module, params: Sequence[torch.Tensor], world: int) -> Layout | None:
    """FSDP1 (``FullyShardedDataParallel``): FULL_SHARD shards are disjoint (weight 1); other strategies refused."""
    try:
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        from torch.distributed.fsdp import ShardingStrategy
    except ImportError:  # pragma: no cover - torch without FSDP
        return None
    wrapped = [m for m in model.modules() if isinstance(m, FSDP)]
    if not wrapped:
        return None
    managed = set()  # flat parameters and, with use_orig_params=True, the original parameters (views)
    for m in wrapped:
        h = getattr(m, "_handle", None)
        if h is not None:
            fp = h.flat_param
            managed.add(id(fp))
            managed.update(id(q) for q in (getattr(fp, "_params", None) or []))
    weights = [1.0 if id(p) in managed else 1.0 / world for p in params]
    problem = None
    strategies = {m.sharding_strategy for m in wrapped}
    if strategies - {ShardingStrategy.FULL_SHARD}:
        problem = (f"FSDP1 sharding strategy {sorted(s.name for s in strategies)} is not supported by the "
                   "recorder (only FULL_SHARD frees gathered parameters after every forward)")
    return Layout("fsdp1", weights, offsets(params), world, problem, grad_hooks=False,
                  refusal=_fsdp1_root_refusal(wrapped[0], params))


#: The one line that refuses FSDP1 with parameters in the root unit (attach raises it on every rank).
FSDP1_ROOT_REFUSAL = ("FSDP1 keeps the parameters of its root unit gathered between forwards, so the probe's writes "
                      "into their shards would not be seen and the next training forward would read them: "
                      "{n} of the optimizer's parameter elements ({what}) are in the root unit.  Wrap every module "
                      "that holds parameters in its own FSDP unit (auto_wrap_policy=ModuleWrapPolicy({{...}}) "
                      "covering them, so the root holds none), or use FSDP2 (fully_shard), which the recorder "
                      "measures exactly")


def _fsdp1_root_refusal(root, params: Sequence[torch.Tensor]) -> str | None:
    """Why FSDP1's root unit makes the probe impossible without touching training, or None (an empty root)."""
    handle = getattr(root, "_handle", None)
    if handle is None:
        return None
    fp = handle.flat_param
    ids = {id(fp), *(id(q) for q in (getattr(fp, "_params", None) or []))}
    held = [p for p in params if id(p) in ids]
    n = int(getattr(fp, "_unpadded_unsharded_size", fp.shape).numel()) if held else 0
    if n == 0:
        return None
    names = [name for name in (getattr(fp, "_fqns", None) or [])][:3]
    what = ", ".join(names) + (", ..." if len(getattr(fp, "_fqns", []) or []) > 3 else "") if names else "flat"
    return FSDP1_ROOT_REFUSAL.format(n=n, what=what)


def detect(model: torch.nn.Module, params: Sequence[torch.Tensor]) -> Layout | None:
    """The sharded layout of ``params``, or None when no parameter is sharded (single process, DDP)."""
    import torch.distributed as dist

    world = dist.get_world_size()
    fsdp1 = _fsdp1_layout(model, params, world)
    if fsdp1 is not None:
        return fsdp1
    dtensors = {id(p) for p in params if callable(getattr(p, "to_local", None)) and hasattr(p, "placements")}
    if not dtensors:
        return None
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # pragma: no cover
        FSDPModule = ()
    fsdp2 = [m for m in model.modules() if isinstance(m, FSDPModule)] if FSDPModule else []
    weights, problem = [], None
    tp = False
    for p in params:
        if id(p) in dtensors:
            w, why = _dtensor_weight(p, world)
            problem = problem or why
            tp = tp or not fsdp2 or p.device_mesh.ndim > 1
        else:
            w = 1.0 / world
        weights.append(w)
    kind = ("fsdp2+tensor-parallel" if tp else "fsdp2") if fsdp2 else "tensor-parallel"
    return Layout(kind, weights, offsets(params), world, problem, fsdp2)


class ShardedProbe(LineProbe):
    """A :class:`LineProbe` for sharded parameters: sweep only, resharding after every write."""

    layout: Layout | None = None

    def _assign(self, flat: torch.Tensor) -> None:
        assign(self.params, flat)
        if self.layout is not None:
            self.layout.after_write()

    def choose(self, w0, w1, batches: Sequence[MicroBatch], state=None) -> str:
        if self.layout is not None and self.layout.problem:
            raise ValueError(self.layout.problem)
        if self.config.strategy == "batched":
            raise ValueError(BATCHED_REFUSAL)
        return "sweep"

    def batched(self, *args: Any, **kwargs: Any):
        raise ValueError(BATCHED_REFUSAL)


def sharded_probe(probe: LineProbe, layout: Layout) -> ShardedProbe:
    """A :class:`ShardedProbe` with the fields of ``probe``."""
    out = ShardedProbe(**{f.name: getattr(probe, f.name) for f in fields(probe) if f.init})
    out.layout = layout
    return out
