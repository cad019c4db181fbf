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

Layout: :mod:`recorder.probeconfig` (what to probe: :class:`ProbeConfig`, presets),
:mod:`recorder.batches` (the step's data: micro-batches, sub-batches), :mod:`recorder.probestate`
(precision, RNG, flags and buffers put back), this module (the line probe and its strategies); the
names of all four are importable from here.
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

from .batches import MicroBatch, _tensors, batch_size_of, changed_in_place, extract_loss, micro_weights, \
    reduce_loss, sub_batch, tensor_versions
from .flat import assign, flatten, unflatten
from .kernels import stack_points
from .probeconfig import DEFAULT_PRESET, PRESETS, ProbeConfig, make_grid, resolve_config
from .valley import TrainingForwardCheck
from .probestate import _State, _probing_now, autocast_state, precision_context, preserved_state, probing, \
    rng_state, set_rng_state

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PRESET", "PRESETS", "LineProbe", "MicroBatch", "ProbeConfig", "autocast_state", "batch_size_of",
           "changed_in_place", "extract_loss", "make_grid", "micro_weights", "naive_phi", "precision_context",
           "preserved_state", "probing", "reduce_loss", "resolve_config", "rng_state", "set_rng_state", "sub_batch",
           "tensor_versions"]


# --------------------------------------------------------------------------- the probe

def _read_cache() -> dict:
    """The calibrations saved by earlier runs (empty when none can be read)."""
    try:
        return json.loads(_cache_path().read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(saved: dict) -> None:
    """Save the calibrations atomically; a cache that cannot be written is skipped."""
    cache = _cache_path()
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(saved, indent=1))
        os.replace(tmp, cache)
    except OSError:
        pass


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
    phi0_check: TrainingForwardCheck = field(default_factory=TrainingForwardCheck)

    def __post_init__(self):
        if self.loss_fn is None and self.loss_from is None and self.evaluate is None:
            raise ValueError("the probe needs loss_fn, loss_from or evaluate")
        self.alphas = self.config.alpha_grid()
        self._names = self._param_names()
        self._device_types = sorted({p.device.type for p in self.params})
        # the fused write needs plain tensors on one device (DTensor shards go through recorder.flat.assign)
        plain = all(type(p) in (torch.nn.Parameter, torch.Tensor) and not hasattr(p, "to_local")
                    for p in self.params) and len({(p.device, p.dtype) for p in self.params}) == 1
        self._plain = list(self.params) if plain else []
        self._sizes = [p.numel() for p in self._plain]
        self._sizes_total = sum(self._sizes)
        self._view_cache: list[tuple[torch.Tensor, list[torch.Tensor]]] = []
        self._buf: torch.Tensor | None = None
        self._in_session = False

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
        """Write ``flat`` into the parameters: one fused ``torch._foreach_copy_`` from views of ``flat`` cached
        for the few vectors a step writes (w_k, w_{k+1}, the sweep's buffer); :func:`recorder.flat.assign`
        for parameters the fused copy does not take (sharded ones override this method)."""
        views = self._views(flat)
        if views is None:
            assign(self.params, flat)
            return
        with torch.no_grad():
            torch._foreach_copy_(self._plain, views)

    def _scratch(self, like: torch.Tensor) -> torch.Tensor:
        """The sweep's buffer for w_k + alpha d_k, kept across the rounds of a step (its views stay cached)."""
        buf = self._buf
        if buf is None or buf.shape != like.shape or buf.dtype != like.dtype or buf.device != like.device:
            self._buf = buf = torch.empty_like(like)
        return buf

    def _views(self, flat: torch.Tensor) -> list[torch.Tensor] | None:
        if not self._plain or flat.numel() != self._sizes_total:
            return None
        for t, views in self._view_cache:
            if t is flat:
                return views
        views = [v.view(p.shape) for v, p in zip(torch.split(flat, self._sizes), self._plain)]
        self._view_cache = [(flat, views), *self._view_cache[:2]]  # w0, w1, buffer: the last three vectors
        return views

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
        buf = self._scratch(w0)
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
            if not self._in_session:  # a session puts w1 back once, when it ends
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
        if len(self.alphas) == 1:
            return "sweep"  # one alpha: stacking it has nothing to batch
        key = self._key(batches)
        if key in self._choice:
            return self._choice[key]
        saved = _read_cache()
        if key in saved and saved[key].get("choice") in ("sweep", "batched"):
            self._choice[key] = saved[key]["choice"]
            self.calibration = saved[key]
            return self._choice[key]
        times = self._time_strategies(w0, w1, batches, state)
        choice = min(times, key=times.get)
        if not math.isfinite(times[choice]):
            choice = "sweep"
        self._choice[key] = choice
        self.calibration = {"choice": choice, **{f"{k}_s": (v if math.isfinite(v) else None) for k, v in times.items()}}
        log.info("probe calibration for %s: %s", type(self.model).__name__, self.calibration)
        saved[key] = self.calibration
        _write_cache(saved)
        return choice

    def _time_strategies(self, w0, w1, batches, state) -> dict[str, float]:
        """Best of three timings of each strategy, in alternation after a warm-up (vmap tracing, allocator), so a
        burst of load on a shared machine does not decide alone; a strategy that raises, or whose result is not
        finite where the other's is, is out (infinite time)."""
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
        return times

    def cut(self, batches: Sequence[MicroBatch]) -> list[MicroBatch]:
        """The micro-batches phi is evaluated on: ``batches`` themselves, or their first ``sub_batch`` samples."""
        if not batches:
            raise ValueError("no mini-batch to probe on")
        if not self.config.sub_batch:
            return list(batches)
        n, out = self.config.sub_batch, []
        for mb in batches:
            args, kwargs, tgt = sub_batch(mb.args, mb.kwargs, mb.target, n, self.config.batch_dim)
            out.append(replace(mb, args=tuple(args), kwargs=dict(kwargs), target=tgt))
        return out

    @contextlib.contextmanager
    def session(self, w0: torch.Tensor, w1: torch.Tensor, batches: Sequence[MicroBatch], distributed: bool = False):
        """Evaluate phi at several sets of alphas of one step with the model's state saved once.

        Yields ``evaluate(alphas) -> (phi, strategy)``: phi a float64 tensor on the parameters' device
        (all-reduced over the ranks with ``distributed``).  Train flags, buffers and RNG states are saved
        on entry and put back on exit (between calls the parameters hold w1 and the buffers are reset),
        so a probe that decides its next alphas from the last losses pays for that once per step.
        """
        batches = self.cut(batches)
        devices = sorted({p.device for p in self.params}, key=str)
        nominal = self.alphas

        def evaluate(alphas) -> tuple[torch.Tensor, str]:
            self.alphas = np.asarray(alphas, np.float64)
            strategy = self.choose(w0, w1, batches, state)
            phi = getattr(self, strategy)(w0, w1, batches, state)
            # the mean over the ranks: the objective data-parallel gradients average
            return (_allreduce_mean(phi, 1) if distributed else phi), strategy

        try:
            with _probing_now(), preserved_state(self.model, self.config.eval_mode, devices) as state:
                self._in_session = True
                try:
                    yield evaluate
                finally:
                    self._in_session = False
                    self._assign(w1)
                    state.restore_buffers()
        finally:
            self.alphas = nominal
            self._view_cache, self._buf = [], None  # no parameter-sized memory held between steps

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
        with self.session(w0, w1, batches, distributed) as evaluate:
            phi, strategy = evaluate(self.alphas)
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
