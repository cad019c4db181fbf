"""The probe: phi_k(alpha) = L(w_k + alpha d_k) at a grid of alphas, two strategies, chosen by measurement.

Strategies
----------
``sweep`` (in place)
    For each alpha write ``lerp(w_k, w_{k+1}, alpha)`` into the parameters,
    run one plain forward pass, and finally copy ``w_{k+1}`` back.  Memory: the
    ``w_k`` snapshot plus one copy of ``w_{k+1}``.  On a CPU this runs at the
    floor (K plain forward passes); it is also the only option for models too
    large for K parameter copies.
``batched``
    Synthesise the K parameter vectors at once (:func:`recorder.kernels.stack_points`,
    a CuPy kernel on CUDA) and evaluate them through ``torch.func.functional_call``
    + ``vmap``, chunked to a memory budget.  Wins where forward passes are
    launch-bound (small models on a GPU); loses on a CPU (measured 2-8x slower
    here, see benchmarks/RESULTS.md).
``auto``
    Time both on the first probe of a (device, model, K, batch shape) and keep
    the faster one; the choice is cached in memory and in
    ``$GDA_GL_CACHE/probe-calibration.json`` (default ``~/.cache/gda_gl``).

alpha = 0 and alpha = 1 use w_k and w_{k+1} exactly, so phi_k(0) and phi_k(1)
are the losses at those weights bit-for-bit.  The data is a list of
:class:`MicroBatch` (all the micro-batches of a step with gradient
accumulation: phi is their mean, or their weighted sum).  The probe runs under
``torch.no_grad`` in eval mode by default; ``ProbeConfig(eval_mode=False)``
probes in train mode and replays each micro-batch's RNG state at every alpha
(same dropout masks as the training step).  Buffers are reset before every
evaluation (a forward that updates running statistics or observers does not
leak into the next alpha), and parameters, buffers, gradients, train/eval
flags and RNG states are left exactly as the probe found them.  While a probe
runs, :func:`probing` is true in the whole process, so no recorder takes its
forward passes for training data.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .flat import assign, flatten, unflatten
from .kernels import stack_points

log = logging.getLogger(__name__)

__all__ = ["ProbeConfig", "PRESETS", "make_grid", "LineProbe", "MicroBatch", "naive_phi", "extract_loss", "probing"]


def make_grid(kind: str = "uniform", k: int = 17, alpha_max: float = 2.0,
              alphas: Sequence[float] | None = None) -> np.ndarray:
    """An increasing alpha grid.

    ``uniform``: ``linspace(0, alpha_max, k)``; ``log``: 0, then ``k - 1`` log-spaced
    values from ``alpha_max / 1000`` to ``alpha_max`` with 1.0 added when missing;
    ``alphas``: user-given values (sorted, duplicates removed).
    """
    if alphas is not None:
        g = np.unique(np.asarray(alphas, np.float64))
    elif kind == "uniform":
        g = np.linspace(0.0, alpha_max, k)
    elif kind == "log":
        g = np.concatenate([[0.0], np.geomspace(alpha_max / 1000.0, alpha_max, max(1, k - 1))])
        if alpha_max >= 1 and not np.any(g == 1.0):
            g = np.unique(np.append(g, 1.0))
    else:
        raise ValueError(f"unknown grid kind {kind!r} (uniform, log)")
    if g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError("the alpha grid must hold finite values")
    return g


def _adaptive_problems(cfg: "ProbeConfig") -> list[str]:
    """What is wrong with the ``mode``/``budget`` fields of ``cfg`` (empty when nothing)."""
    from .adaptive import MAX_BUDGET, MIN_BUDGET

    if cfg.mode not in ("grid", "adaptive"):
        return [f"mode={cfg.mode!r} (choose 'grid' or 'adaptive')"]
    if cfg.mode == "grid":
        return []
    out = []
    if isinstance(cfg.budget, bool) or not isinstance(cfg.budget, (int, np.integer)) \
            or not MIN_BUDGET <= cfg.budget <= MAX_BUDGET:
        out.append(f"budget={cfg.budget!r} (an int from {MIN_BUDGET} to {MAX_BUDGET})")
    if cfg.alphas is not None:
        out.append("alphas with mode='adaptive' (the adaptive probe places its own alphas)")
    if isinstance(cfg.alpha_max, (int, float)) and not cfg.alpha_max >= 1:
        out.append(f"alpha_max={cfg.alpha_max!r} with mode='adaptive' (>= 1: the step taken is measured)")
    return out


_STRATEGIES = ("auto", "sweep", "batched")
_PRECISIONS = ("fp32", "training")


@dataclass(frozen=True)
class ProbeConfig:
    """What to probe, how often, and how.  Every field is checked on construction (one ``ValueError``
    lists all problems).

    Parameters
    ----------
    grid : ``"uniform"`` or ``"log"`` (ignored when ``alphas`` is given)
    k : number of alphas (>= 2)
    alpha_max : largest alpha (> 0; 1 = the step taken)
    alphas : explicit grid, finite and strictly increasing
    every : probe every n-th iteration (>= 1; others are stored as skipped)
    sub_batch : evaluate on the first ``sub_batch`` samples of each mini-batch (None: all)
    batch_dim : how ``sub_batch`` finds the samples.  ``None``: dimension 0 of every tensor, refusing
        layouts it cannot tell apart (a target whose first dimension differs from the inputs', an
        input of shape ``(T, B, ...)`` with ``T == B``); an ``int``: that dimension of the tensors
        that have the batch's size there, dimension 0 of those whose only such dimension is 0 (the
        ``(B,)`` target of ``(T, B, F)`` inputs), other tensors whole (see :func:`sub_batch`); a
        callable ``f(args, kwargs, target, n) -> (args, kwargs, target)``: your own slicing
    data : ``None`` for the current mini-batch (the paper's setting), or a fixed
        probe set ``(inputs, target)``: then phi_k(1) = phi_{k+1}(0) and the curve is continuous
    strategy : ``"auto"``, ``"sweep"`` or ``"batched"``
    eval_mode : probe with the model in eval mode (the default: dropout off, BatchNorm running
        statistics).  ``False`` probes in train mode: see ``replay_rng``
    replay_rng : in train mode, start every forward of a micro-batch from the RNG state its training
        forward started from, so every alpha sees the dropout masks and noise of the step (then
        phi(0) is the training loss on that batch); needs the ``sweep`` strategy
    max_micro_batches : with gradient accumulation, phi is the loss over all micro-batches since the
        last step; at most this many are kept (the first ones; a note is recorded when some are left out)
    precision : under ``torch.autocast`` (bf16/fp16 mixed precision), ``"fp32"`` (the default) probes
        with autocast off, in the parameters' own precision (fp32 for fp32 weights), wherever
        ``step()`` is called; ``"training"`` probes each micro-batch under the autocast state its
        training forward ran in (then phi(0) is the mixed-precision training loss).  Autocast's
        weight cache is never used: it would hold the low-precision copy of w_k at every alpha.  A
        model whose own forward enters autocast (accelerate's mixed precision wraps it so) runs in
        that precision either way
    memory_budget : bytes of stacked parameters per batched chunk (> 0)
    strict : raise probe errors instead of recording them
    name : preset name, for the run metadata
    mode : ``"grid"`` (the alphas of ``grid``/``k``/``alphas`` at every step) or ``"adaptive"``: up to
        ``budget`` alphas per step in [0, ``alpha_max``], placed where the line bends (a few batched
        rounds, :mod:`recorder.adaptive`); each row stores its own alphas
    budget : alphas per step of the adaptive mode (forward passes of the probe batch per step; >= 5)
    """

    grid: str = "uniform"
    k: int = 17
    alpha_max: float = 2.0
    alphas: tuple[float, ...] | None = None
    every: int = 1
    sub_batch: int | None = None
    batch_dim: int | Callable | None = None
    data: Any = None
    strategy: str = "auto"
    eval_mode: bool = True
    replay_rng: bool = True
    max_micro_batches: int = 64
    precision: str = "fp32"
    memory_budget: int = 256 << 20
    strict: bool = False
    name: str = "custom"
    mode: str = "grid"
    budget: int = 7

    def __post_init__(self):
        problems = []
        problems += _adaptive_problems(self)

        def is_int(v):
            return isinstance(v, (int, np.integer)) and not isinstance(v, bool)

        def is_num(v):
            return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)

        if self.alphas is None:
            if self.grid not in ("uniform", "log"):
                problems.append(f"grid={self.grid!r} (choose 'uniform' or 'log')")
            if not is_int(self.k) or self.k < 2:
                problems.append(f"k={self.k!r} (an int >= 2)")
            if not is_num(self.alpha_max) or not math.isfinite(self.alpha_max) or self.alpha_max <= 0:
                problems.append(f"alpha_max={self.alpha_max!r} (a finite number > 0)")
        else:
            try:
                a = np.asarray(self.alphas, np.float64)
                ok = a.ndim == 1 and a.size >= 1 and bool(np.all(np.isfinite(a))) and bool(np.all(np.diff(a) > 0))
            except (TypeError, ValueError):
                ok = False
            if not ok:
                problems.append(f"alphas={self.alphas!r} (finite values, strictly increasing)")
        if not is_int(self.every) or self.every < 1:
            problems.append(f"every={self.every!r} (an int >= 1)")
        if self.sub_batch is not None and (not is_int(self.sub_batch) or self.sub_batch < 1):
            problems.append(f"sub_batch={self.sub_batch!r} (None or an int >= 1)")
        if not (self.batch_dim is None or callable(self.batch_dim)
                or (is_int(self.batch_dim) and self.batch_dim >= 0)):
            problems.append(f"batch_dim={self.batch_dim!r} (None, an int >= 0 or a callable)")
        if self.data is not None and not (isinstance(self.data, (tuple, list)) and len(self.data) == 2):
            problems.append("data (None or a pair (inputs, target))")
        if self.strategy not in _STRATEGIES:
            problems.append(f"strategy={self.strategy!r} (choose {', '.join(map(repr, _STRATEGIES))})")
        for flag in ("eval_mode", "replay_rng", "strict"):
            if not isinstance(getattr(self, flag), bool):
                problems.append(f"{flag}={getattr(self, flag)!r} (True or False)")
        if self.eval_mode is False and self.replay_rng is True and self.strategy == "batched":
            problems.append("strategy='batched' with eval_mode=False and replay_rng=True (replaying the "
                            "step's RNG needs 'sweep' or 'auto')")
        if self.precision not in _PRECISIONS:
            problems.append(f"precision={self.precision!r} (choose {', '.join(map(repr, _PRECISIONS))})")
        if not is_int(self.max_micro_batches) or self.max_micro_batches < 1:
            problems.append(f"max_micro_batches={self.max_micro_batches!r} (an int >= 1)")
        if not is_int(self.memory_budget) or self.memory_budget < 1:
            problems.append(f"memory_budget={self.memory_budget!r} (bytes, an int >= 1)")
        if not isinstance(self.name, str):
            problems.append(f"name={self.name!r} (a string)")
        if problems:
            raise ValueError("invalid ProbeConfig: " + "; ".join(problems))

    @property
    def replays(self) -> bool:
        """True when the probe runs in train mode replaying each micro-batch's RNG state."""
        return not self.eval_mode and self.replay_rng

    def alpha_grid(self) -> np.ndarray:
        """The shared grid: the probe's alphas, or for the adaptive mode the nominal grid its recordings
        declare (:func:`recorder.adaptive.nominal_grid`; each row stores the alphas it measured)."""
        if self.mode == "adaptive":
            from .adaptive import nominal_grid

            return nominal_grid(self.budget, self.alpha_max)
        return make_grid(self.grid, self.k, self.alpha_max, self.alphas)

    def describe(self) -> dict:
        g = self.alpha_grid()
        data = "current mini-batch" if self.data is None else "fixed probe set"
        if self.sub_batch:
            data += f" (first {self.sub_batch} samples)"
        mode = "eval" if self.eval_mode else ("train, RNG of the step replayed" if self.replay_rng
                                              else "train, fresh RNG at each alpha")
        where = (f"up to {self.budget} alphas in [0, {self.alpha_max:g}] placed per step (adaptive)"
                 if self.mode == "adaptive" else f"{len(g)} alphas")
        return {"preset": self.name, "k": len(g), "every": self.every, "data": data, "strategy": self.strategy,
                "eval_mode": self.eval_mode, "mode": mode, "max_micro_batches": self.max_micro_batches,
                "precision": self.precision, "grid_mode": self.mode,
                "describe": f"{self.name}: {where} every {self.every} iteration(s) on the {data}, "
                            f"{mode} mode"}

    def with_(self, **kw) -> "ProbeConfig":
        return replace(self, **kw)


#: Presets trading cost for detail (Cockpit-style).  Measured training time with the
#: recorder attached / without it, on the benchmark CNN (6k parameters, batch 128, SGD,
#: a 3 ms step) on the 2-core CPU, ``python -m benchmarks --quick --only probe``
#: (benchmarks/RESULTS.md; Cockpit's cheapest configuration measured 12-22x in the same runs):
#:
#: * ``cheap``: 5 alphas (0, .5, 1, 1.5, 2) on 32 samples every 16th iteration: 1.0-1.22x
#: * ``standard``: 17 alphas (step 1/8) on the whole batch, every iteration: 7-13.5x
#: * ``dense``: 65 alphas (step 1/32) on the whole batch, every iteration: 27-34.5x
#: * ``adaptive``: up to 7 alphas per step placed where the line bends (:mod:`recorder.adaptive`), whole
#:   batch, every iteration: 6.2x on the CNN, 7.0x on a small transformer LM and an MLP, measured under
#:   load (``python -m benchmarks.adaptive_bar``); against ``dense`` on the same steps the step class
#:   agrees in 100 % and the minimum is within 2/64 in 99.3-100 % (budget 5 misses that on the CNN)
#:
#: A probe costs about K forward passes of the probe batch; a training step about three,
#: so the price of ``standard`` is roughly K / 3 on any model, less with ``every`` > 1.
PRESETS: dict[str, ProbeConfig] = {
    "cheap": ProbeConfig(k=5, sub_batch=32, every=16, name="cheap"),
    "standard": ProbeConfig(k=17, name="standard"),
    "dense": ProbeConfig(k=65, name="dense"),
    "adaptive": ProbeConfig(mode="adaptive", budget=7, name="adaptive"),
}


def resolve_config(probe: ProbeConfig | str | None) -> ProbeConfig:
    if probe is None:
        return PRESETS["standard"]
    if isinstance(probe, str):
        try:
            return PRESETS[probe]
        except KeyError:
            raise ValueError(f"unknown probe preset {probe!r} (choose from {', '.join(PRESETS)})") from None
    if not isinstance(probe, ProbeConfig):
        raise ValueError(f"probe must be a preset name or a ProbeConfig, not {type(probe).__name__}")
    return probe


# --------------------------------------------------------------------------- mini-batches

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


def autocast_state(device_types: Sequence[str]) -> dict:
    """The device types among ``device_types`` with autocast enabled now, each with its autocast dtype."""
    out = {}
    for dt in device_types:
        try:
            if torch.is_autocast_enabled(dt):
                out[dt] = torch.get_autocast_dtype(dt)
        except (RuntimeError, TypeError, AttributeError):  # a device type autocast does not know
            pass
    return out


@contextlib.contextmanager
def precision_context(precision: str, recorded: dict | None, device_types: Sequence[str]):
    """The autocast state of one probe evaluation (see ``ProbeConfig.precision``).

    ``"fp32"``: autocast off; ``"training"``: the autocast state ``recorded`` at the micro-batch's
    training forward (None: the state at the probe).  Autocast's weight cache is always off: the
    probe writes the parameters in place, and a low-precision copy cached by an enclosing autocast
    region (``step()`` called inside it) would hide every new alpha behind the copy of w_k.
    """
    now = autocast_state(device_types)
    want = (now if recorded is None else recorded) if precision == "training" else {}
    if not now and not want:
        yield
        return
    with contextlib.ExitStack() as stack:
        for dt in sorted(set(now) | set(want)):
            if dt in want:
                stack.enter_context(torch.autocast(dt, dtype=want[dt], cache_enabled=False))
            else:
                stack.enter_context(torch.autocast(dt, enabled=False, cache_enabled=False))
        yield


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


def rng_state(devices: Sequence[torch.device]) -> tuple:
    """The CPU and CUDA RNG states (for the train-mode replay)."""
    return torch.get_rng_state(), {d: torch.cuda.get_rng_state(d) for d in devices if d.type == "cuda"}


def set_rng_state(state: tuple) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    for d, s in cuda.items():
        torch.cuda.set_rng_state(s, d)


class _State:
    """Saved train flags, buffers and RNG states of a model; ``restore_buffers()`` puts the buffers back."""

    def __init__(self, model: torch.nn.Module, devices: Sequence[torch.device]):
        self.modes = [(m, m.training) for m in model.modules()]
        self.buffers = [(b, b.detach().clone()) for b in model.buffers()]
        self.rng = rng_state(devices)

    def restore_buffers(self) -> None:
        with torch.no_grad():
            for b, saved in self.buffers:
                b.copy_(saved)

    def restore(self) -> None:
        for m, flag in self.modes:
            m.training = flag
        with torch.no_grad():
            for b, saved in self.buffers:
                if b.dtype != saved.dtype or not torch.equal(b, saved):
                    b.copy_(saved)
        set_rng_state(self.rng)


@contextlib.contextmanager
def preserved_state(model: torch.nn.Module, eval_mode: bool, devices: Sequence[torch.device]):
    """Switch to eval mode (optionally) and restore train flags, buffers and RNG states afterwards.

    Yields the saved state: its ``restore_buffers()`` resets buffers a forward pass changed (running
    maxima, fake-quant observers, BatchNorm statistics in train mode) so every evaluation sees the
    buffers of the training step.
    """
    state = _State(model, devices)
    try:
        if eval_mode:
            model.eval()
        yield state
    finally:
        state.restore()


#: How many probes are running in this process (any recorder): capture hooks ignore their forwards.
_PROBING = [0]


def probing() -> bool:
    """True while some recorder's probe is evaluating the model (its forwards are not training)."""
    return _PROBING[0] > 0


@contextlib.contextmanager
def _probing_now():
    _PROBING[0] += 1
    try:
        yield
    finally:
        _PROBING[0] -= 1


def _cache_path() -> Path:
    base = os.environ.get("GDA_GL_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "gda_gl")
    return Path(base) / "probe-calibration.json"


# --------------------------------------------------------------------------- the probe

@dataclass
class LineProbe:
    """Evaluates phi_k on a grid for one model and loss.

    Parameters
    ----------
    model : the module trained
    loss_fn : ``loss_fn(model_output, target) -> loss`` (a per-sample loss is averaged; mean
        reduction for distributed sums); None with ``loss_from`` or ``evaluate``
    params : the parameters the optimizer moves (frozen ones stay where they are)
    config : :class:`ProbeConfig`
    loss_from : where the loss is in the model's output when the model computes it (``"loss"`` for
        HuggingFace models called with ``labels=``): see :func:`extract_loss`
    evaluate : ``evaluate(micro_batch) -> loss`` for training steps that are not ``loss_fn(model(...))``
        (the Lightning callback's ``training_step``); only the ``sweep`` strategy can use it
    """

    model: torch.nn.Module
    loss_fn: Callable | None
    params: list[torch.nn.Parameter]
    config: ProbeConfig
    loss_from: Any = None
    evaluate: Callable | None = None
    _choice: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.loss_fn is None and self.loss_from is None and self.evaluate is None:
            raise ValueError("the probe needs loss_fn, loss_from or evaluate")
        self.alphas = self.config.alpha_grid()
        self._names = self._param_names()
        self._device_types = sorted({p.device.type for p in self.params})

    def _param_names(self) -> list[str]:
        ids = {id(p): n for n, p in self.model.named_parameters(remove_duplicate=False)}
        names = []
        for p in self.params:
            if id(p) not in ids:
                raise ValueError("the optimizer holds a parameter that is not in the model")
            names.append(ids[id(p)])
        return names

    # -- flat views ----------------------------------------------------------
    def flat(self) -> torch.Tensor:
        """Concatenated copy of the parameters (w_k or w_{k+1})."""
        return flatten(self.params)

    def _assign(self, flat: torch.Tensor) -> None:
        assign(self.params, flat)

    def _loss_of(self, out, target):
        if self.loss_from is not None:
            return reduce_loss(extract_loss(out, self.loss_from))
        return reduce_loss(self.loss_fn(out, target))

    def _forward_loss(self, mb: MicroBatch) -> torch.Tensor:
        if self.evaluate is not None:
            return reduce_loss(self.evaluate(mb)).detach()
        return self._loss_of(self.model(*mb.args, **mb.kwargs), mb.target).detach()

    # -- strategies ----------------------------------------------------------
    def sweep(self, w0: torch.Tensor, w1: torch.Tensor, batches: Sequence[MicroBatch],
              state: _State | None = None) -> torch.Tensor:
        """In-place sweep; returns (K,) float64 losses; leaves the parameters at w1 bit-for-bit.

        Before every forward pass the buffers are reset (``state``) and, in the train-mode replay,
        the micro-batch's RNG state is set, so each alpha sees what the training step saw.
        """
        alphas = torch.as_tensor(self.alphas, dtype=w0.dtype, device=w0.device)
        weights = micro_weights(batches)
        replay = self.config.replays
        phi = torch.zeros(len(self.alphas), dtype=torch.float64, device=w0.device)
        buf = torch.empty_like(w0)
        try:
            with torch.no_grad():
                for j, a in enumerate(self.alphas):
                    if a == 0.0:
                        self._assign(w0)
                    elif a == 1.0:
                        self._assign(w1)
                    else:
                        torch.lerp(w0, w1, alphas[j], out=buf)
                        self._assign(buf)
                    for mb, wt in zip(batches, weights):
                        if state is not None:
                            state.restore_buffers()
                        if replay and mb.rng is not None:
                            set_rng_state(mb.rng)
                        with precision_context(self.config.precision, mb.autocast, self._device_types):
                            loss = self._forward_loss(mb).to(torch.float64)
                        phi[j] += loss if wt == 1.0 else wt * loss
        finally:
            with torch.no_grad():
                self._assign(w1)
            if state is not None:
                state.restore_buffers()
        return phi

    def batched(self, w0: torch.Tensor, w1: torch.Tensor, batches: Sequence[MicroBatch],
                state: _State | None = None) -> torch.Tensor:
        """Stacked parameter sets through functional_call + vmap, chunked; returns (K,) float64."""
        from torch.func import functional_call, vmap

        if self.evaluate is not None:
            raise ValueError("the batched strategy needs a model and a loss, not a training-step function")
        if self.config.replays:
            raise ValueError("the train-mode RNG replay needs the sweep strategy")
        k = len(self.alphas)
        per_set = w0.numel() * w0.element_size()
        chunk = int(max(1, min(k, self.config.memory_budget // max(per_set, 1))))
        alphas = torch.as_tensor(self.alphas, dtype=w0.dtype, device=w0.device)
        names = self._names
        weights = micro_weights(batches)
        phi = torch.zeros(k, dtype=torch.float64, device=w0.device)
        buf = torch.empty((chunk, w0.numel()), dtype=w0.dtype, device=w0.device)
        for mb, wt in zip(batches, weights):
            def loss_at(flat_params, mb=mb):
                pd = dict(zip(names, unflatten(flat_params, self.params)))
                out = functional_call(self.model, pd, mb.args, mb.kwargs, strict=False)
                return self._loss_of(out, mb.target)

            vl = vmap(loss_at)
            with torch.no_grad():
                for s in range(0, k, chunk):
                    a = alphas[s:s + chunk]
                    pts = stack_points(w0, w1, a, out=buf[:len(a)])
                    if state is not None:
                        state.restore_buffers()
                    with precision_context(self.config.precision, mb.autocast, self._device_types):
                        vals = vl(pts).detach().reshape(-1).to(torch.float64)
                    phi[s:s + len(a)] += vals if wt == 1.0 else wt * vals
        if state is not None:
            state.restore_buffers()
        return phi

    # -- choosing ------------------------------------------------------------
    def _key(self, batches: Sequence[MicroBatch]) -> str:
        dev = self.params[0].device
        mb = batches[0]
        shape = [tuple(t.shape) for t in _tensors((mb.args, mb.kwargs), [])]
        nparam = sum(p.numel() for p in self.params)
        return (f"{torch.__version__}|{dev.type}|{torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''}|"
                f"{type(self.model).__name__}|{nparam}|{len(self.alphas)}|{shape}x{len(batches)}|"
                f"{self.config.eval_mode}|{self.config.precision}")

    def choose(self, w0, w1, batches: Sequence[MicroBatch], state: _State | None = None) -> str:
        """The strategy to use now (calibrating on first use when ``strategy='auto'``)."""
        if self.config.strategy in ("sweep", "batched"):
            return self.config.strategy
        if self.evaluate is not None or self.config.replays or _low_precision(self.config, batches):
            return "sweep"  # low precision: batched kernels round differently, the sweep is the training's
        key = self._key(batches)
        if key in self._choice:
            return self._choice[key]
        cache = _cache_path()
        try:
            saved = json.loads(cache.read_text())
        except (OSError, ValueError):
            saved = {}
        if key in saved and saved[key].get("choice") in ("sweep", "batched"):
            self._choice[key] = saved[key]["choice"]
            self.calibration = saved[key]
            return self._choice[key]
        # warm up both (vmap tracing, allocator), then time them in alternation and keep each one's best,
        # so a burst of load on a shared machine does not decide the choice alone; a strategy whose
        # result is not finite where the other's is (or that raises) is out
        times, results = {}, {}
        for name in ("sweep", "batched"):
            try:
                results[name] = getattr(self, name)(w0, w1, batches, state)
                times[name] = math.inf
            except Exception as exc:  # e.g. a model vmap cannot trace: that strategy is out
                log.info("probe strategy %s unavailable for %s: %s", name, type(self.model).__name__, exc)
        if len(results) == 2:
            fin = {n: bool(torch.isfinite(r).all()) for n, r in results.items()}
            if fin["sweep"] and not fin["batched"]:
                times.pop("batched")
        for _ in range(3):
            for name in list(times):
                _sync(w0.device)
                t0 = time.perf_counter()
                getattr(self, name)(w0, w1, batches, state)
                _sync(w0.device)
                times[name] = min(times[name], time.perf_counter() - t0)
        for name in ("sweep", "batched"):
            times.setdefault(name, math.inf)
        choice = min(times, key=times.get)
        if not math.isfinite(times[choice]):
            choice = "sweep"
        self._choice[key] = choice
        self.calibration = {"choice": choice, **{f"{k}_s": (v if math.isfinite(v) else None) for k, v in times.items()}}
        log.info("probe calibration for %s: %s", type(self.model).__name__, self.calibration)
        try:
            saved[key] = self.calibration
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(saved, indent=1))
            os.replace(tmp, cache)
        except OSError:
            pass
        return choice

    def measure(self, w0: torch.Tensor, w1: torch.Tensor, inputs=None, target=None, distributed: bool = False,
                as_tensor: bool = False, batches: Sequence[MicroBatch] | None = None) -> tuple[np.ndarray, str]:
        """phi at the grid for the line from w0 to w1.

        The data is ``inputs`` (``(args, kwargs)`` of the model call) with ``target``, or a list of
        :class:`MicroBatch` (``batches``): then phi is their weighted sum (the mean by default).
        The model's parameters must hold w1 on entry and hold it again, bit-for-bit, on return.
        Returns (losses as float64 numpy, strategy), or the float64 tensor on the parameters' device
        with ``as_tensor=True``.
        """
        if batches is None:
            batches = [MicroBatch(tuple(inputs[0]), dict(inputs[1]), target)]
        if not batches:
            raise ValueError("no mini-batch to probe on")
        if self.config.sub_batch:
            n = self.config.sub_batch
            cut = []
            for mb in batches:
                args, kwargs, tgt = sub_batch(mb.args, mb.kwargs, mb.target, n, self.config.batch_dim)
                cut.append(replace(mb, args=tuple(args), kwargs=dict(kwargs), target=tgt))
            batches = cut
        devices = sorted({p.device for p in self.params}, key=str)
        with _probing_now(), preserved_state(self.model, self.config.eval_mode, devices) as state:
            strategy = self.choose(w0, w1, batches, state)
            phi = getattr(self, strategy)(w0, w1, batches, state)
        if distributed:  # the mean over the ranks: the objective data-parallel gradients average
            phi = _allreduce_mean(phi, 1)
        return (phi if as_tensor else phi.cpu().numpy()), strategy


def _low_precision(config: ProbeConfig, batches: Sequence[MicroBatch]) -> bool:
    """Whether the probe evaluates in a training forward's autocast precision (``precision="training"``
    under autocast): ``auto`` then keeps the sweep, whose forwards round as the training's did (the
    vmapped batched kernels agree only to the low precision's rounding, see README "Precision")."""
    return config.precision == "training" and any(mb.autocast for mb in batches)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _allreduce_mean(phi: torch.Tensor, count: int) -> torch.Tensor:
    """Per-alpha mean over all ranks' shards, each weighted by ``count``: all-reduce the sums and the counts."""
    import torch.distributed as dist

    buf = torch.cat([phi * count, torch.tensor([float(count)], dtype=phi.dtype, device=phi.device)])
    if dist.get_backend() == "nccl" and not buf.is_cuda:
        buf = buf.cuda()
    dist.all_reduce(buf)
    return (buf[:-1] / buf[-1]).to(phi.device)


def naive_phi(model: torch.nn.Module, loss_fn: Callable, w0: Sequence[torch.Tensor], w1: Sequence[torch.Tensor],
              params_of: Callable[[torch.nn.Module], list], alphas: Sequence[float], inputs, target,
              eval_mode: bool = True) -> np.ndarray:
    """The reference loss-landscape tools use: deep copy, set weights, forward.  For tests and benchmarks.

    ``params_of(copy)`` returns the copy's parameters that correspond to ``w0``/``w1`` (lists of tensors).
    """
    import copy

    out = []
    args, kwargs = inputs
    for a in alphas:
        m = copy.deepcopy(model)
        if eval_mode:
            m.eval()
        with torch.no_grad():
            for p, a0, a1 in zip(params_of(m), w0, w1):
                p.copy_(a0 + float(a) * (a1 - a0))
            out.append(float(loss_fn(m(*args, **kwargs), target)))
    return np.asarray(out, np.float64)
