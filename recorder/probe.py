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
are the losses at those weights bit-for-bit.  The probe runs under
``torch.no_grad`` in eval mode by default, and leaves parameters, buffers,
gradients, train/eval flags and RNG states exactly as it found them.
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

from .kernels import stack_points

log = logging.getLogger(__name__)

__all__ = ["ProbeConfig", "PRESETS", "make_grid", "LineProbe", "naive_phi"]


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


@dataclass(frozen=True)
class ProbeConfig:
    """What to probe, how often, and how.

    Parameters
    ----------
    grid : ``"uniform"`` or ``"log"`` (ignored when ``alphas`` is given)
    k : number of alphas
    alpha_max : largest alpha (1 = the step taken)
    alphas : explicit grid
    every : probe every n-th iteration (others are stored as skipped)
    sub_batch : evaluate on the first ``sub_batch`` samples of the batch (None: all)
    data : ``None`` for the current mini-batch (the paper's setting), or a fixed
        probe set ``(inputs, target)``: then phi_k(1) = phi_{k+1}(0) and the curve is continuous
    strategy : ``"auto"``, ``"sweep"`` or ``"batched"``
    eval_mode : probe with the model in eval mode (BatchNorm statistics and dropout untouched)
    memory_budget : bytes of stacked parameters per batched chunk
    strict : raise probe errors instead of recording them
    name : preset name, for the run metadata
    """

    grid: str = "uniform"
    k: int = 17
    alpha_max: float = 2.0
    alphas: tuple[float, ...] | None = None
    every: int = 1
    sub_batch: int | None = None
    data: Any = None
    strategy: str = "auto"
    eval_mode: bool = True
    memory_budget: int = 256 << 20
    strict: bool = False
    name: str = "custom"

    def alpha_grid(self) -> np.ndarray:
        return make_grid(self.grid, self.k, self.alpha_max, self.alphas)

    def describe(self) -> dict:
        g = self.alpha_grid()
        data = "current mini-batch" if self.data is None else "fixed probe set"
        if self.sub_batch:
            data += f" (first {self.sub_batch} samples)"
        return {"preset": self.name, "k": len(g), "every": self.every, "data": data, "strategy": self.strategy,
                "eval_mode": self.eval_mode,
                "describe": f"{self.name}: {len(g)} alphas every {self.every} iteration(s) on the {data}"}

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
#:
#: A probe costs about K forward passes of the probe batch; a training step about three,
#: so the price of ``standard`` is roughly K / 3 on any model, less with ``every`` > 1.
PRESETS: dict[str, ProbeConfig] = {
    "cheap": ProbeConfig(k=5, sub_batch=32, every=16, name="cheap"),
    "standard": ProbeConfig(k=17, name="standard"),
    "dense": ProbeConfig(k=65, name="dense"),
}


def resolve_config(probe: ProbeConfig | str | None) -> ProbeConfig:
    if probe is None:
        return PRESETS["standard"]
    if isinstance(probe, str):
        try:
            return PRESETS[probe]
        except KeyError:
            raise ValueError(f"unknown probe preset {probe!r} (choose from {', '.join(PRESETS)})") from None
    return probe


# --------------------------------------------------------------------------- helpers

def _slice_batch(obj, n: int | None, batch_size: int | None):
    if n is None or batch_size is None:
        return obj
    if isinstance(obj, torch.Tensor):
        return obj[:n] if obj.dim() > 0 and obj.shape[0] == batch_size else obj
    if isinstance(obj, (list, tuple)):
        return type(obj)(_slice_batch(o, n, batch_size) for o in obj)
    if isinstance(obj, dict):
        return {k: _slice_batch(v, n, batch_size) for k, v in obj.items()}
    return obj


def batch_size_of(obj) -> int | None:
    if isinstance(obj, torch.Tensor):
        return int(obj.shape[0]) if obj.dim() > 0 else None
    if isinstance(obj, (list, tuple)):
        for o in obj:
            b = batch_size_of(o)
            if b is not None:
                return b
    if isinstance(obj, dict):
        for o in obj.values():
            b = batch_size_of(o)
            if b is not None:
                return b
    return None


@contextlib.contextmanager
def preserved_state(model: torch.nn.Module, eval_mode: bool, devices: Sequence[torch.device]):
    """Switch to eval mode (optionally) and restore train flags, buffers and RNG states afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.detach().clone()) for b in model.buffers()]
    cpu_rng = torch.get_rng_state()
    cuda_rng = {}
    for d in devices:
        if d.type == "cuda":
            cuda_rng[d] = torch.cuda.get_rng_state(d)
    try:
        if eval_mode:
            model.eval()
        yield
    finally:
        for m, flag in modes:
            m.training = flag
        with torch.no_grad():
            for b, saved in buffers:
                if not torch.equal(b, saved) or b.dtype != saved.dtype:
                    b.copy_(saved)
        torch.set_rng_state(cpu_rng)
        for d, s in cuda_rng.items():
            torch.cuda.set_rng_state(s, d)


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
    loss_fn : ``loss_fn(model_output, target) -> scalar`` (mean reduction for distributed sums)
    params : the parameters the optimizer moves (frozen ones stay where they are)
    config : :class:`ProbeConfig`
    """

    model: torch.nn.Module
    loss_fn: Callable
    params: list[torch.nn.Parameter]
    config: ProbeConfig
    _choice: dict = field(default_factory=dict)
    calibration: dict = field(default_factory=dict)

    def __post_init__(self):
        self.alphas = self.config.alpha_grid()
        self._names = self._param_names()

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
        with torch.no_grad():
            return torch.cat([p.detach().reshape(-1) for p in self.params])

    def _assign(self, flat: torch.Tensor) -> None:
        off = 0
        for p in self.params:
            n = p.numel()
            p.data.copy_(flat[off:off + n].view_as(p))
            off += n

    def _forward_loss(self, inputs, target) -> torch.Tensor:
        args, kwargs = inputs
        out = self.model(*args, **kwargs)
        return self.loss_fn(out, target).detach().reshape(())

    # -- strategies ----------------------------------------------------------
    def sweep(self, w0: torch.Tensor, w1: torch.Tensor, inputs, target) -> torch.Tensor:
        """In-place sweep; returns (K,) float64 losses; leaves the parameters at w1 bit-for-bit."""
        alphas = torch.as_tensor(self.alphas, dtype=w0.dtype, device=w0.device)
        losses = []
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
                    losses.append(self._forward_loss(inputs, target))
        finally:
            with torch.no_grad():
                self._assign(w1)
        return torch.stack(losses).to(torch.float64)

    def batched(self, w0: torch.Tensor, w1: torch.Tensor, inputs, target) -> torch.Tensor:
        """Stacked parameter sets through functional_call + vmap, chunked; returns (K,) float64."""
        from torch.func import functional_call, vmap

        k = len(self.alphas)
        per_set = w0.numel() * w0.element_size()
        chunk = int(max(1, min(k, self.config.memory_budget // max(per_set, 1))))
        alphas = torch.as_tensor(self.alphas, dtype=w0.dtype, device=w0.device)
        args, kwargs = inputs
        shapes = [p.shape for p in self.params]
        sizes = [p.numel() for p in self.params]
        names = self._names

        def loss_at(flat_params):
            pieces = torch.split(flat_params, sizes)
            pd = {n: t.view(s) for n, t, s in zip(names, pieces, shapes)}
            out = functional_call(self.model, pd, args, kwargs, strict=False)
            return self.loss_fn(out, target)

        vl = vmap(loss_at)
        out = []
        buf = torch.empty((chunk, w0.numel()), dtype=w0.dtype, device=w0.device)
        with torch.no_grad():
            for s in range(0, k, chunk):
                a = alphas[s:s + chunk]
                pts = stack_points(w0, w1, a, out=buf[:len(a)])
                out.append(vl(pts).detach().reshape(-1))
        return torch.cat(out).to(torch.float64)

    # -- choosing ------------------------------------------------------------
    def _key(self, inputs) -> str:
        dev = self.params[0].device
        shape = [tuple(t.shape) for t in inputs[0] if isinstance(t, torch.Tensor)]
        nparam = sum(p.numel() for p in self.params)
        return (f"{torch.__version__}|{dev.type}|{torch.cuda.get_device_name(dev) if dev.type == 'cuda' else ''}|"
                f"{type(self.model).__name__}|{nparam}|{len(self.alphas)}|{shape}|{self.config.eval_mode}")

    def choose(self, w0, w1, inputs, target) -> str:
        """The strategy to use now (calibrating on first use when ``strategy='auto'``)."""
        if self.config.strategy in ("sweep", "batched"):
            return self.config.strategy
        key = self._key(inputs)
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
        # so a burst of load on a shared machine does not decide the choice alone
        times = {}
        for name in ("sweep", "batched"):
            try:
                getattr(self, name)(w0, w1, inputs, target)
                times[name] = math.inf
            except Exception as exc:  # e.g. a model vmap cannot trace: that strategy is out
                log.info("probe strategy %s unavailable for %s: %s", name, type(self.model).__name__, exc)
        for _ in range(3):
            for name in list(times):
                _sync(w0.device)
                t0 = time.perf_counter()
                getattr(self, name)(w0, w1, inputs, target)
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

    def measure(self, w0: torch.Tensor, w1: torch.Tensor, inputs, target, distributed: bool = False,
                as_tensor: bool = False) -> tuple[np.ndarray, str]:
        """phi at the grid for the line from w0 to w1 on (inputs, target).

        ``inputs`` is ``(args, kwargs)`` of the model call.  The model's parameters must hold w1 on
        entry and hold it again, bit-for-bit, on return.  Returns (losses as float64 numpy, strategy),
        or the float64 tensor on the parameters' device with ``as_tensor=True``.
        """
        bs = batch_size_of(inputs[0]) or batch_size_of(inputs[1])
        if self.config.sub_batch:
            inputs = (_slice_batch(inputs[0], self.config.sub_batch, bs), _slice_batch(inputs[1], self.config.sub_batch, bs))
            target = _slice_batch(target, self.config.sub_batch, bs)
        devices = sorted({p.device for p in self.params}, key=str)
        with preserved_state(self.model, self.config.eval_mode, devices):
            strategy = self.choose(w0, w1, inputs, target)
            phi = getattr(self, strategy)(w0, w1, inputs, target)
        if distributed:
            phi = _allreduce_mean(phi, batch_size_of(target) or bs or 1)
        return (phi if as_tensor else phi.cpu().numpy()), strategy


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _allreduce_mean(phi: torch.Tensor, count: int) -> torch.Tensor:
    """Per-alpha mean over all ranks' shards: all-reduce the sums and the sample counts."""
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
