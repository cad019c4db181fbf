"""Attach the probe to an unchanged training loop through the optimizer's step hooks.

``rec = recorder.attach(optimizer, model, loss_fn, path="runs/x.gda")`` is all a
training loop needs.  What is captured, and when:

* **The step's data.**  A forward pass of the model with gradients enabled opens
  a micro-batch (its positional and keyword arguments); the loss module's call
  adds the target and the loss (or ``loss_from`` takes the loss out of the
  model's output, for models that compute their own loss).  The micro-batch
  counts only when ``backward`` reaches that loss: a validation forward (under
  ``no_grad``, or never back-propagated) is never mistaken for training data,
  and neither are other recorders' probe forwards.  All micro-batches since
  the last step are kept (gradient accumulation; up to
  ``ProbeConfig.max_micro_batches``).  ``rec.observe(inputs, target, **kwargs)``
  adds a micro-batch by hand (plain-function losses).
* **The gradient.**  A post-accumulate-grad hook on every parameter copies its
  gradient at the end of each ``backward``, so the recorded gradient is the one
  back-propagated since the last step, before any clipping or other change the
  loop makes before ``step()``; a parameter without a gradient counts as zero.
* **The step.**  pre-hook: snapshot ``w_k``, wrap a closure (LBFGS, CG) so every
  loss evaluation of a line search is a trial point; the optimizer steps;
  post-hook: ``d_k = w_{k+1} - w_k``, probe phi_k on the grid over the step's
  micro-batches (their mean), compute line statistics, append one row.

The recorder never breaks training: every failure inside the hooks is recorded
with its message, a warning is logged once, parameters are restored, and
training goes on (``strict=True`` raises instead).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import platform
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from . import schema
from ._version import __version__
from .errors import RecordingError
from . import sharded
from .flat import flat_grad, local, offsets
from .diagnose.live import LiveFindings
from .linestats import line_stats
from .probe import LineProbe, MicroBatch, ProbeConfig, extract_loss, micro_weights, probing, reduce_loss, \
    resolve_config, rng_state
from .probe import autocast_state, batch_size_of, changed_in_place, tensor_versions
from .store import RecordingWriter

log = logging.getLogger(__name__)

__all__ = ["Recorder", "attach"]

#: What ``slope0`` and ``grad_norm`` are computed from (also stored in the run metadata).
GRADIENT_NOTE = ("the gradient back-propagated since the previous step, as the backward calls left it "
                 "(summed over micro-batches, before gradient clipping or any other change made before "
                 "step()); parameters without a gradient count as zero")


def _versions() -> dict:
    import sys

    out = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
           "gda_gl": __version__}
    try:
        import cupy

        out["cupy"] = cupy.__version__
    except Exception:
        pass
    return out


def _hyperparameters(opt: torch.optim.Optimizer) -> dict:
    out = {}
    for k, v in opt.param_groups[0].items():
        if k == "params":
            continue
        if isinstance(v, (int, float, str, bool)) or v is None:
            out[k] = v
        elif isinstance(v, tuple) and all(isinstance(x, (int, float)) for x in v):
            out[k] = list(v)
    if len(opt.param_groups) > 1:
        out["param_groups"] = len(opt.param_groups)
    return out


def _fingerprint(obj) -> str:
    """Cheap identity of a mini-batch: shapes plus the first values of each tensor."""
    h = hashlib.blake2b(digest_size=8)

    def feed(o):
        if isinstance(o, torch.Tensor):
            h.update(str((tuple(o.shape), o.dtype)).encode())
            head = o.detach().reshape(-1)[:256].cpu()
            h.update((head.float() if head.dtype == torch.bfloat16 else head).numpy().tobytes())  # numpy has no bf16
        elif isinstance(o, (list, tuple)):
            for x in o:
                feed(x)
        elif isinstance(o, dict):
            for k in sorted(o, key=str):
                feed(o[k])

    feed(obj)
    return h.hexdigest()


def _device_stats(alphas: np.ndarray, phi: torch.Tensor) -> dict | None:
    """Line statistics computed by CuPy on the GPU holding ``phi`` (shared through DLPack), else None.

    Only the handful of statistics crosses the bus; on a CPU the numpy path in ``_record`` is used.
    """
    if not phi.is_cuda:
        return None
    from .kernels import cupy_available

    if not cupy_available():
        return None
    import cupy as cp

    with cp.cuda.Device(phi.device.index or 0):
        out = line_stats(cp.asarray(alphas), cp.from_dlpack(phi.contiguous())[None, :], 1.0)
        return {n: v[0].item() for n, v in out.items()}


@dataclass
class _Line:
    """The step as a line: w_k, w_{k+1}, d_k and its squared norm."""

    w0: torch.Tensor
    w1: torch.Tensor
    d: torch.Tensor
    dd: float

    @property
    def step_norm(self) -> float:
        return math.sqrt(self.dd)


@dataclass
class _StepInfo:
    """Per-iteration scalars other than phi and its statistics."""

    train_loss: float = math.nan
    slope0: float = math.nan
    grad_norm: float = math.nan
    ls_evals: int = 0
    lr: float = math.nan
    native: float = math.nan
    trials: dict | None = None
    micro_batches: int = 0
    samples: int = 0


def _unused_path(path) -> Path:
    """``path``, or the first of ``stem-2.gda``, ``stem-3.gda``, ... that does not exist (nothing is replaced)."""
    p = Path(path)
    if not os.path.lexists(p) and not os.path.lexists(str(p) + "-wal"):
        return p
    for i in range(2, 100_000):
        q = p.with_name(f"{p.stem}-{i}{p.suffix}")
        if not os.path.lexists(q) and not os.path.lexists(str(q) + "-wal"):
            return q
    return p  # the writer then refuses with one line


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
        self.optimizer = optimizer
        self.model = model
        self.loss_fn = loss_fn
        self.loss_from = loss_from
        self.config = resolve_config(probe)
        self.strict = self.config.strict if strict is None else bool(strict)
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.probe = LineProbe(model, loss_fn, self.params, self.config, loss_from=loss_from, evaluate=evaluate)
        self.alphas = self.probe.alphas
        self.iteration = 0
        self.epoch = 0
        self.strategy = None
        self._row_alphas: np.ndarray | None = None  # the adaptive probe's alphas of the current step
        self._batch_id = -1
        self._batch_fp = None
        self._pending: MicroBatch | None = None  # the latest grad-enabled model forward
        self._micro: list[MicroBatch] = []  # micro-batches back-propagated since the last step
        self._micro_dropped = 0
        self._micro_samples = 0  # samples of the micro-batches since the last step (all of them, kept or not)
        self._step_samples = 0   # those of the step being recorded
        self._gbuf: torch.Tensor | None = None  # gradient copied at the end of each backward
        self._grad_seen = False
        self._offsets = offsets(self.params)
        self._pre: dict | None = None
        self._warned: set[str] = set()
        self.failures = 0
        self.writer: RecordingWriter | None = None
        self.rank = 0
        if distributed is None:
            distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.distributed = bool(distributed)
        self.shard: sharded.Layout | None = None  # set for sharded parameters (FSDP, tensor parallel)
        if self.distributed:
            self.rank = torch.distributed.get_rank()
            self._attach_sharded()
        self._handles = []
        self._devices = sorted({p.device for p in self.params}, key=str)
        #: the devices of the model's parameters (integrations snapshot their RNG states)
        self.devices = self._devices

        nparam = sum(p.numel() for p in model.parameters())
        meta = {
            "name": (run or {}).get("name") or str(path).rsplit("/", 1)[-1].removesuffix(".gda"),
            "model": repr(model)[:20000],
            "model_name": type(model).__name__,
            "parameter_count": int(nparam),
            "trainable_parameters": int(sum(p.numel() for p in self.params if p.requires_grad)),
            "optimizer": type(optimizer).__name__,
            "hyperparameters": _hyperparameters(optimizer),
            "probe": self.config.describe(),
            "seed": seed,
            "versions": _versions(),
            "host": socket.gethostname(),
            "platform": platform.platform(),
            "device": str(self.params[0].device) if self.params else "cpu",
            "start_time": time.time(),
            "tags": dict(tags or {}),
            "alpha_units": "d_k = w_{k+1} - w_k (alpha = 1 is the step taken)",
            "gradient": GRADIENT_NOTE if not self.distributed else self.shard.describe()["gradient"] if self.shard else
            "p.grad when step() is called (after the all-reduce; after any clipping)",
            "loss": ("the weighted sum over the step's micro-batches (their mean unless the loss is already "
                     "normalised over the step); a per-sample loss is averaged"),
            "world_size": torch.distributed.get_world_size() if self.distributed else 1,
        }
        if self.shard is not None:
            meta["sharding"] = self.shard.describe(self.config.strategy)
        meta.update({k: v for k, v in (run or {}).items() if k != "name"})
        if self.rank == 0:
            try:
                if not overwrite:
                    fresh = _unused_path(path)
                    if str(fresh) != str(path):
                        self._warn_once("path", f"gda_gl recorder: {path} exists; recording to {fresh} instead "
                                                f"(attach(..., overwrite=True) replaces a finished recording)")
                    path = fresh
                self.writer = RecordingWriter(path, self.alphas, meta, overwrite=overwrite,
                                              commit_interval=commit_interval,
                                              row_alphas=self.config.mode == "adaptive")
            except Exception as exc:  # unwritable path, bad metadata: report, keep training
                if self.strict:
                    raise
                self._warn_once("writer", f"gda_gl recorder disabled: {exc}")
                self.writer = None
        #: live diagnosis on the writing rank (:mod:`recorder.diagnose.live`; ``on_finding``), else None
        self.findings = LiveFindings(self.writer, self.alphas) if self.writer is not None else None
        self._install(capture)

    def on_finding(self, fn: Callable[[dict], Any]) -> None:
        """Call ``fn(finding)`` in the training thread for every finding of the live diagnosis (the dict of a
        ``gda-gl diagnose --json`` entry); a no-op on ranks that do not write."""
        if self.findings is not None:
            self.findings.callbacks.append(fn)

    # -- hooks ---------------------------------------------------------------
    def _install(self, capture: bool) -> None:
        self._handles.append(self.optimizer.register_step_pre_hook(self._before_step))
        self._handles.append(self.optimizer.register_step_post_hook(self._after_step))
        for i, p in enumerate(self.params):
            if p.requires_grad and hasattr(p, "register_post_accumulate_grad_hook") and \
                    (self.shard is None or self.shard.grad_hooks):
                self._handles.append(p.register_post_accumulate_grad_hook(self._grad_hook(i)))
        if not capture:
            return
        self._handles.append(self.model.register_forward_pre_hook(self._capture_inputs, with_kwargs=True))
        if self.loss_from is not None:
            self._handles.append(self.model.register_forward_hook(self._capture_model_loss))
        if isinstance(self.loss_fn, torch.nn.Module):
            self._handles.append(self.loss_fn.register_forward_pre_hook(self._capture_target))
            self._handles.append(self.loss_fn.register_forward_hook(self._capture_loss))

    def _grad_hook(self, i: int):
        def hook(p):
            if probing() or not self._active:
                return
            try:
                if self._gbuf is None:
                    self._gbuf = torch.zeros(self._offsets[-1], dtype=p.dtype, device=p.device)
                if p.grad is not None:
                    self._gbuf[self._offsets[i]:self._offsets[i + 1]].copy_(local(p.grad).detach().reshape(-1))
                self._grad_seen = True
            except Exception as exc:  # never break training
                self._fail(f"capturing the gradient: {type(exc).__name__}: {exc}")
        return hook

    def _attach_sharded(self) -> None:
        """Sharded parameters (FSDP, tensor parallel): a probe on the local shards, dots reduced over ranks."""
        try:
            self.shard = sharded.detect(self.model, self.params)
        except Exception as exc:  # never break training: fall back to the DDP path, say so
            self._warn_once("sharded", f"gda_gl recorder: could not read the model's sharding: {exc}")
            return
        if self.shard is None:
            return
        self._offsets = self.shard.offsets
        self.probe = sharded.sharded_probe(self.probe, self.shard)
        if self.rank != 0:
            return
        if self.shard.problem:  # every probe records it as a failed row; 'batched' is refused the same way
            self._warn_once("sharded", f"gda_gl recorder: {self.shard.kind}: {self.shard.problem}; every probe is "
                                       "recorded as failed")
        elif self.config.strategy != "batched":
            log.info("gda_gl recorder: %s model, probe strategy sweep: %s", self.shard.kind, sharded.SWEEP_REASON)

    def _training_forward(self) -> bool:
        return torch.is_grad_enabled() and not probing() and self._active

    def _capture_inputs(self, module, args, kwargs):
        if self._training_forward():
            try:
                rng = rng_state(self._devices) if self.config.replays else None
                self._pending = MicroBatch(tuple(args), dict(kwargs), rng=rng, versions=tensor_versions((args, kwargs)),
                                           autocast=autocast_state([d.type for d in self._devices]))
            except Exception as exc:  # never break training
                self._fail(f"capturing the model's inputs: {type(exc).__name__}: {exc}")
        return None

    def _capture_target(self, module, args):
        if self._training_forward() and self._pending is not None and len(args) >= 2:
            self._pending.target = args[1]
            try:
                self._pending.versions = (self._pending.versions or []) + tensor_versions(args[1])
            except Exception as exc:  # never break training
                self._fail(f"capturing the target: {type(exc).__name__}: {exc}")
        return None

    def _capture_loss(self, module, args, output):
        if self._training_forward() and self._pending is not None:
            self._watch(output, self._pending)
        return None

    def _capture_model_loss(self, module, args, output):
        if self._training_forward() and self._pending is not None:
            try:
                loss = extract_loss(output, self.loss_from)
            except Exception as exc:
                self._fail(f"loss_from={self.loss_from!r} found no loss in the model's output: "
                           f"{type(exc).__name__}: {exc}")
                return None
            self._watch(loss, self._pending)
        return None

    def _watch(self, loss, mb: MicroBatch) -> None:
        """Count ``mb`` as training data once backward reaches ``loss``."""
        if not isinstance(loss, torch.Tensor) or not loss.requires_grad:
            return
        try:
            mb.loss = reduce_loss(loss.detach())
            if mb.kwargs.get("num_items_in_batch") is not None:
                mb.weight = 1.0  # HuggingFace: the loss is already normalised over the whole step
            loss.register_hook(lambda grad: self._commit(mb))
        except Exception as exc:  # never break training
            self._fail(f"watching the loss: {type(exc).__name__}: {exc}")

    @property
    def _active(self) -> bool:
        """Whether steps are measured here: with a writer, or on every rank of a distributed run (rank 0
        without a writer still takes part in the probe's collectives, or the other ranks would wait)."""
        return self.writer is not None or self.distributed

    def _commit(self, mb: MicroBatch) -> None:
        if probing() or not self._active or any(m is mb for m in self._micro):
            return
        self._micro_samples += self._samples_of(mb)  # also those left out of phi: the step trained on them
        if len(self._micro) >= self.config.max_micro_batches:
            self._micro_dropped += 1
            return
        self._micro.append(mb)

    def _samples_of(self, mb: MicroBatch) -> int:
        """The batch size of a micro-batch: dimension 0 of its target, else ``batch_dim`` of its first input."""
        if isinstance(mb.target, torch.Tensor) and mb.target.dim() > 0:
            return int(mb.target.shape[0])
        dim = self.config.batch_dim if isinstance(self.config.batch_dim, int) else 0
        for t in [*mb.args, *mb.kwargs.values()]:
            if isinstance(t, torch.Tensor) and t.dim() > dim:
                return int(t.shape[dim])
        return batch_size_of((mb.args, mb.kwargs)) or 0

    def add_micro_batch(self, mb: MicroBatch) -> None:
        """Count ``mb`` as part of the current step's data (integrations call this)."""
        self._commit(mb)

    def observe(self, inputs, target=None, loss: torch.Tensor | float | None = None, **kwargs) -> None:
        """Add a micro-batch by hand (needed for plain-function losses); call it for every micro-batch.

        ``inputs`` is the model's positional input (a tensor or a tuple of tensors), ``kwargs`` its
        keyword arguments, ``target`` the loss function's second argument, ``loss`` the training loss.
        """
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        mb = MicroBatch(args, dict(kwargs), target, versions=tensor_versions((args, kwargs, target)),
                        autocast=autocast_state([d.type for d in self._devices]))
        if loss is not None:
            mb.loss = reduce_loss(torch.as_tensor(loss).detach())
        self._commit(mb)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", msg)

    def _reset_gradient(self) -> None:
        if self._gbuf is not None:
            self._gbuf.zero_()
        self._grad_seen = False

    def _before_step(self, optimizer, args, kwargs):
        self._pre = None
        if self.writer is None and self.rank == 0 and not self.distributed:  # other ranks wait in collectives
            return None
        try:
            pre: dict[str, Any] = {"w0": self.probe.flat(), "trials": [], "t0": time.time(), "grad": None}
            closure = kwargs.get("closure") if "closure" in kwargs else (args[1] if len(args) > 1 else None)
            if closure is None and ((self.distributed and not (self.shard and self.shard.grad_hooks))
                                    or not self._grad_seen):
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
            first = not pre["trials"]
            start = len(self._micro)
            if not first:  # a line search re-evaluates: only this evaluation's data and gradient count
                self._reset_gradient()
            loss = closure()
            try:
                if not probing():
                    if not first:
                        self._micro = self._micro[start:]
                    g = self._gradient_now()
                    lv = float(reduce_loss(loss.detach())) if isinstance(loss, torch.Tensor) else float(loss)
                    pre["trials"].append((self.probe.flat(), lv, g))
            except Exception as exc:
                self._fail(f"capturing a line-search evaluation: {exc}")
            return loss

        return wrapped

    def _gradient_now(self) -> torch.Tensor:
        """The gradient of the latest backward(s): the hooks' copy, else p.grad (missing as zero)."""
        if self._grad_seen and self._gbuf is not None and (not self.distributed or self.shard is not None):
            return self._gbuf.clone()
        return flat_grad(self.params)

    def _after_step(self, optimizer, args, kwargs) -> None:
        pre, self._pre = self._pre, None
        k = self.iteration
        self.iteration += 1
        micro, dropped = self._micro, self._micro_dropped
        self._step_samples, self._micro_samples = self._micro_samples, 0
        grad = None
        if pre is not None and not pre["trials"]:
            grad = pre.get("grad_now") if "grad_now" in pre else self._gradient_now()
        self._micro, self._micro_dropped, self._pending = [], 0, None
        self._reset_gradient()
        if pre is None or (self.writer is None and self.rank == 0 and not self.distributed):
            return
        pre["grad"] = grad
        try:
            self._record(k, pre, micro, dropped)
        except Exception as exc:
            if self.strict:
                raise
            self._fail(f"iteration {k}: {type(exc).__name__}: {exc}")

    # -- one iteration -------------------------------------------------------
    def _record(self, k: int, pre: dict, micro: list[MicroBatch], dropped: int) -> None:
        line = self._line(pre)
        info = self._step_info(pre, line, micro)
        batches, batch = self._probe_data(micro)
        phi, status, message, stats = self._measure(k, line, batches, info.slope0)
        if dropped:
            self._note(k, "micro-batches-dropped",
                       f"phi and train_loss use the first {len(micro)} of {len(micro) + dropped} micro-batches "
                       "(ProbeConfig.max_micro_batches)")
        self._write(k, line, info, batch, phi, status, message, stats)

    def _line(self, pre: dict) -> _Line:
        w0 = pre["w0"]
        w1 = self.probe.flat()
        d = w1 - w0
        return _Line(w0, w1, d, self._dot(d, d))

    def _dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """a . b of two flat vectors; for sharded parameters reduced over the ranks (every rank calls it)."""
        if self.shard is not None:
            return self.shard.dot(a, b)
        return float(torch.dot(a, b.to(a.dtype))) if a.numel() else 0.0

    def _is_line_search(self, trials: list) -> bool:
        """Several closure evaluations per step, or an optimizer known to search (LBFGS, CG)."""
        return bool(trials) and (len(trials) > 1 or isinstance(self.optimizer, torch.optim.LBFGS)
                                 or isinstance(getattr(self.optimizer, "last_line_search", None), dict))

    def _step_info(self, pre: dict, line: _Line, micro: list[MicroBatch]) -> _StepInfo:
        info = _StepInfo()
        ls = getattr(self.optimizer, "last_line_search", None)
        ls = ls if isinstance(ls, dict) else {}
        if self._is_line_search(pre["trials"]):
            self._trial_points(pre, line, ls, info)
        else:
            g = pre["grad"]
            if pre["trials"] and g is None:
                g = pre["trials"][0][2]
            if g is not None:
                info.grad_norm = math.sqrt(self._dot(g, g))
                info.slope0 = self._dot(g.to(line.d.dtype), line.d)
            info.train_loss = self._micro_loss(micro)
            if self.distributed:  # the mean over all ranks' data, weighted as phi is
                info.train_loss = sharded.global_mean(info.train_loss, micro)
            if math.isnan(info.train_loss) and pre["trials"]:
                info.train_loss = pre["trials"][0][1]
        # an optimizer that knows its line search (recorder.optim.CG) says what it started from
        if "f0" in ls:
            info.train_loss = float(ls["f0"])
        if "d0" in ls and "step" in ls and line.dd > 0:
            info.slope0 = float(ls["d0"]) * float(ls["step"])
        if "grad_norm" in ls:
            info.grad_norm = float(ls["grad_norm"])
        info.ls_evals = int(ls["evals"]) if "evals" in ls else (len(pre["trials"]) if info.trials else 0)
        info.micro_batches = len(micro)
        info.samples = self._step_samples * (torch.distributed.get_world_size() if self.distributed else 1)
        info.lr = float(self.optimizer.param_groups[0].get("lr", math.nan))
        info.native = float(ls["step"]) if "step" in ls else info.lr
        return info

    @staticmethod
    def _micro_loss(micro: list[MicroBatch]) -> float:
        """The training loss of the step: the micro-batches' losses, weighted as phi weighs them."""
        if not micro or any(m.loss is None for m in micro):
            return math.nan
        return float(sum(w * float(m.loss) for w, m in zip(micro_weights(micro), micro)))

    def _trial_points(self, pre: dict, line: _Line, ls: dict, info: _StepInfo) -> None:
        """A closure optimizer's evaluations are the line search's trial points, projected onto d_k."""
        if self.shard is not None:  # every rank raises here alike: no collective is left waiting
            raise ValueError("line-search trial points on sharded parameters are not supported (their projections "
                             "would be local to each rank)")
        w0, d, dd = line.w0, line.d, line.dd
        ref, rr = d, dd
        if dd == 0:  # no move (a failed line search): measure along the farthest trial (alpha 1 there)
            far = max(pre["trials"], key=lambda t: float(torch.dot(t[0] - w0, t[0] - w0)))[0] - w0
            ref, rr = far, float(torch.dot(far, far))
        ta, tl, ts = [], [], []
        for w, loss, gt in pre["trials"]:
            ta.append(float(torch.dot(w - w0, ref)) / rr if rr > 0 else math.nan)
            ts.append(float(torch.dot(gt.to(ref.dtype), ref)) if gt is not None and rr > 0 else math.nan)
            tl.append(loss)
        trials = {"alpha": ta, "loss": tl, "slope": ts}
        at0 = [i for i, (w, _, _) in enumerate(pre["trials"]) if torch.equal(w, w0)]
        if at0:
            info.train_loss = tl[at0[0]]
            g0 = pre["trials"][at0[0]][2]
            info.grad_norm = float(torch.linalg.vector_norm(g0)) if g0 is not None else math.nan
            info.slope0 = float(torch.dot(g0.to(d.dtype), d)) if g0 is not None else math.nan
        steps = ls.get("trial_steps")
        if steps is not None and len(steps) == len(ta):
            # the optimizer's own step lengths are exact: alpha = t / t_accepted (units of d_k)
            acc = float(ls.get("step", 0.0))
            trials["alpha"] = [t / acc for t in steps] if acc > 0 else list(steps)
            if "trial_slopes" in ls and acc > 0:
                trials["slope"] = [sl * acc for sl in ls["trial_slopes"]]
        info.trials = trials

    def _probe_data(self, micro: list[MicroBatch]) -> tuple[list[MicroBatch], int]:
        """The micro-batches phi is measured on, and the batch id (new whenever the data changes)."""
        if self.config.data is not None:
            x, y = self.config.data
            return [MicroBatch(x if isinstance(x, tuple) else (x,), {}, y)], 0
        fp = _fingerprint([(m.args, m.kwargs, m.target) for m in micro]) if micro else None
        if fp != self._batch_fp:
            self._batch_fp = fp
            self._batch_id += 1
        return micro, self._batch_id

    def _measure(self, k: int, line: _Line, batches: list[MicroBatch], slope0: float = math.nan):
        """Probe phi_k; returns (phi, status, message, statistics computed on the device or None)."""
        phi = np.full(len(self.alphas), np.nan)
        self._row_alphas = None  # the adaptive probe's alphas of this step (None: the shared grid, or none)
        if k % max(1, self.config.every):
            return phi, schema.STATUS_SKIPPED, "", None
        if not batches:
            why = ("no mini-batch captured: use a torch.nn loss module, give loss_from=, call rec.observe(inputs, "
                   "target), or give a probe set")
            return phi, schema.STATUS_FAILED, why, None
        if self.loss_from is None and self.probe.evaluate is None and any(m.target is None for m in batches):
            return phi, schema.STATUS_FAILED, "no target captured: call rec.observe(inputs, target)", None
        # data refilled in place since its forward: not probed (a distributed rank still joins the
        # probe's collectives, and its result is discarded below)
        changed = None if self.distributed else changed_in_place(batches)
        if changed:
            return phi, schema.STATUS_FAILED, changed, None
        try:
            if self.config.mode == "adaptive":
                (phi, self._row_alphas), stats_dev = self._measure_adaptive(line, batches, slope0), None
            else:
                phi_t, self.strategy = self.probe.measure(line.w0, line.w1, batches=batches,
                                                          distributed=self.distributed, as_tensor=True)
                stats_dev = _device_stats(self.alphas, phi_t)  # CuPy on CUDA: statistics where phi is
                phi = phi_t.cpu().numpy()
        except Exception as exc:
            if self.strict:
                raise
            return phi, schema.STATUS_FAILED, f"{type(exc).__name__}: {exc}", None
        changed = changed_in_place(batches)  # before the probe (distributed), or by the probe's own forwards
        if changed:
            self._row_alphas = None
            return np.full(len(self.alphas), np.nan), schema.STATUS_FAILED, changed, None
        measured = phi if self._row_alphas is None else phi[np.isfinite(self._row_alphas)]
        if not np.all(np.isfinite(measured)):
            return phi, schema.STATUS_NONFINITE, "phi has NaN or Inf values", stats_dev
        return phi, schema.STATUS_OK, "", stats_dev

    def _measure_adaptive(self, line: _Line, batches: list[MicroBatch], slope0: float):
        """The adaptive probe (:mod:`recorder.adaptive`): (phi, alphas) padded with NaN to the budget."""
        from .adaptive import measure_adaptive

        a, p, self.strategy = measure_adaptive(self.probe, line.w0, line.w1, batches, slope0, self.distributed)
        k = len(self.alphas)
        alphas, phi = np.full(k, np.nan), np.full(k, np.nan)
        alphas[:len(a)], phi[:len(p)] = a[:k], p[:k]
        return phi, alphas

    def _write(self, k: int, line: _Line, info: _StepInfo, batch: int, phi: np.ndarray, status: int,
               message: str, stats_dev: dict | None) -> None:
        if self.rank != 0 or self.writer is None:
            return
        stats = {}
        if status in (schema.STATUS_OK, schema.STATUS_NONFINITE):
            grid = self.alphas if self._row_alphas is None else self._row_alphas[None, :]
            stats = stats_dev if stats_dev is not None else \
                {n: v[0].item() for n, v in line_stats(grid, phi[None, :], 1.0).items()}
        extra = {}
        if self.writer.row_alphas:
            extra["alphas"] = self._row_alphas
        extra["micro_batches"] = info.micro_batches
        extra["samples"] = info.samples
        self.writer.append(k, phi, trials=info.trials, epoch=self.epoch, batch=batch,
                           taken_alpha=1.0 if line.dd > 0 else 0.0, native_step=info.native,
                           train_loss=info.train_loss, step_norm=line.step_norm, grad_norm=info.grad_norm,
                           lr=info.lr, wall_time=time.time(), status=status, ls_evals=info.ls_evals,
                           slope0=info.slope0, **stats, **extra)
        if self.findings is not None:
            self.findings.add(k, phi, extra.get("alphas"), epoch=self.epoch, batch=batch, status=status,
                              taken_alpha=1.0 if line.dd > 0 else 0.0, train_loss=info.train_loss,
                              step_norm=line.step_norm, lr=info.lr, curvature=stats.get("curvature", math.nan))
        if message:
            self.failures += status == schema.STATUS_FAILED
            self._note(k, "probe-failed" if status == schema.STATUS_FAILED else "probe-nonfinite", message)
            self._warn_once(f"status{status}", f"gda_gl probe at iteration {k}: {message} "
                                               "(recorded; training goes on; further ones are only recorded)")

    def _note(self, k: int, kind: str, message: str) -> None:
        if self.writer is not None:
            self.writer.add_event(kind, message, iteration=k)

    def _fail(self, message: str) -> None:
        self.failures += 1
        if self.strict:
            raise RuntimeError(message)
        self._warn_once("internal", f"gda_gl recorder: {message} (training goes on)")
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

    def log_config(self, **values) -> None:
        """Record hyperparameters (batch size, K, anything) in the run metadata, ``run["config"]`` (named
        ``log_config`` because ``config`` is the recorder's :class:`recorder.probe.ProbeConfig`)."""
        from . import series

        series.log_config(self, values)

    # -- lifecycle -----------------------------------------------------------
    def flush(self) -> None:
        if self.writer is not None:
            try:
                self.writer.flush()
            except RecordingError as exc:
                if self.strict:
                    raise
                self._warn_once("write", f"gda_gl recorder: {exc}")

    def close(self) -> None:
        """Remove the hooks and close the recording (commits what is pending)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()
        if self.findings is not None:
            self.findings.finish()
        if self.writer is not None:
            try:
                self.writer.close()
            except RecordingError as exc:
                if self.strict:
                    raise
                self._warn_once("write", f"gda_gl recorder: {exc}")
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
    """
    return Recorder(optimizer, model, loss_fn, path, probe, **kwargs)
