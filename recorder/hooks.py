"""Attach the probe to an unchanged training loop through the optimizer's step hooks.

``rec = recorder.attach(optimizer, model, loss_fn, path="runs/x.gda")`` is all a
training loop needs.  What happens at every ``optimizer.step()``:

1. pre-hook: snapshot ``w_k`` (flat copy), the gradient norm and the gradient
   (for the slope at 0), and wrap a closure (LBFGS, CG) so every loss
   evaluation of a line search is captured as a trial point;
2. the optimizer steps;
3. post-hook: ``d_k = w_{k+1} - w_k``, probe phi_k on the grid (the captured
   mini-batch, or a fixed probe set), compute line statistics, append one row.

The current mini-batch is captured by forward pre-hooks on the model (inputs)
and on the loss module (target); for a plain-function loss call
``rec.observe(inputs, target)`` before ``step()``.  The recorder never breaks
training: every failure inside the hooks is recorded with its message, a
warning is logged once, parameters are restored, and training goes on
(``strict=True`` raises instead).
"""

from __future__ import annotations

import hashlib
import logging
import math
import platform
import socket
import time
from typing import Any, Callable

import numpy as np
import torch

from . import schema
from ._version import __version__
from .errors import RecordingError
from .linestats import line_stats
from .probe import LineProbe, ProbeConfig, resolve_config
from .store import RecordingWriter

log = logging.getLogger(__name__)

__all__ = ["Recorder", "attach"]


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
            h.update(o.detach().reshape(-1)[:256].cpu().numpy().tobytes())
        elif isinstance(o, (list, tuple)):
            for x in o:
                feed(x)
        elif isinstance(o, dict):
            for k in sorted(o):
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


class Recorder:
    """Records phi_k for every step of ``optimizer``; see :func:`attach`."""

    def __init__(self, optimizer: torch.optim.Optimizer, model: torch.nn.Module, loss_fn: Callable,
                 path, probe: ProbeConfig | str | None = None, *, run: dict | None = None,
                 tags: dict | None = None, seed: int | None = None, strict: bool | None = None,
                 overwrite: bool = True, commit_interval: float = 1.0, distributed: bool | None = None):
        self.optimizer = optimizer
        self.model = model
        self.loss_fn = loss_fn
        self.config = resolve_config(probe)
        self.strict = self.config.strict if strict is None else bool(strict)
        self.params = [p for g in optimizer.param_groups for p in g["params"]]
        self.probe = LineProbe(model, loss_fn, self.params, self.config)
        self.alphas = self.probe.alphas
        self.iteration = 0
        self.epoch = 0
        self._batch_id = -1
        self._batch_fp = None
        self._inputs = None
        self._target = None
        self._last_loss_t: torch.Tensor | None = None
        self._probing = False
        self._pre: dict | None = None
        self._warned: set[str] = set()
        self.failures = 0
        self.writer: RecordingWriter | None = None
        self.rank = 0
        if distributed is None:
            distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        self.distributed = bool(distributed)
        if self.distributed:
            self.rank = torch.distributed.get_rank()
        self._handles = []

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
            "world_size": torch.distributed.get_world_size() if self.distributed else 1,
        }
        meta.update({k: v for k, v in (run or {}).items() if k != "name"})
        if self.rank == 0:
            try:
                self.writer = RecordingWriter(path, self.alphas, meta, overwrite=overwrite,
                                              commit_interval=commit_interval)
            except Exception as exc:  # unwritable path, bad metadata: report, keep training
                if self.strict:
                    raise
                self._warn_once("writer", f"gda_gl recorder disabled: {exc}")
                self.writer = None
        self._install()

    # -- hooks ---------------------------------------------------------------
    def _install(self) -> None:
        self._handles.append(self.optimizer.register_step_pre_hook(self._before_step))
        self._handles.append(self.optimizer.register_step_post_hook(self._after_step))
        self._handles.append(self.model.register_forward_pre_hook(self._capture_inputs, with_kwargs=True))
        if isinstance(self.loss_fn, torch.nn.Module):
            self._handles.append(self.loss_fn.register_forward_pre_hook(self._capture_target))
            self._handles.append(self.loss_fn.register_forward_hook(self._capture_loss))

    def _capture_inputs(self, module, args, kwargs):
        if not self._probing:
            self._inputs = (args, kwargs)
        return None

    def _capture_target(self, module, args):
        if not self._probing and len(args) >= 2:
            self._target = args[1]
        return None

    def _capture_loss(self, module, args, output):
        if not self._probing and isinstance(output, torch.Tensor) and output.numel() == 1:
            self._last_loss_t = output.detach()
        return None

    def observe(self, inputs, target, loss: torch.Tensor | float | None = None) -> None:
        """Tell the recorder the current mini-batch (needed for plain-function losses).

        ``inputs`` is the model's positional input (a tensor or a tuple of tensors).
        """
        args = inputs if isinstance(inputs, tuple) else (inputs,)
        self._inputs = (args, {})
        self._target = target
        if loss is not None:
            self._last_loss_t = torch.as_tensor(loss).detach()

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _warn_once(self, key: str, msg: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning("%s", msg)

    def _before_step(self, optimizer, args, kwargs):
        self._pre = None
        if self.writer is None and self.rank == 0:
            return None
        try:
            pre: dict[str, Any] = {"w0": self.probe.flat(), "trials": [], "t0": time.time()}
            grads = [p.grad for p in self.params]
            if all(g is not None for g in grads) and grads:
                g = torch.cat([g.detach().reshape(-1) for g in grads])
                pre["grad"] = g
            pre["loss"] = self._last_loss_t
            self._last_loss_t = None
            closure = kwargs.get("closure") if "closure" in kwargs else (args[1] if len(args) > 1 else None)
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
            loss = closure()
            try:
                if not self._probing:
                    w = self.probe.flat()
                    grads = [p.grad for p in self.params]
                    g = torch.cat([x.detach().reshape(-1) for x in grads]) if all(x is not None for x in grads) else None
                    pre["trials"].append((w, float(loss.detach() if isinstance(loss, torch.Tensor) else loss), g))
            except Exception as exc:
                self._fail(f"capturing a line-search evaluation: {exc}")
            return loss

        return wrapped

    def _after_step(self, optimizer, args, kwargs) -> None:
        pre, self._pre = self._pre, None
        k = self.iteration
        self.iteration += 1
        if pre is None or (self.writer is None and self.rank == 0):
            return
        try:
            self._record(k, pre)
        except Exception as exc:
            if self.strict:
                raise
            self._fail(f"iteration {k}: {type(exc).__name__}: {exc}")

    # -- one iteration -------------------------------------------------------
    def _record(self, k: int, pre: dict) -> None:
        w0 = pre["w0"]
        w1 = self.probe.flat()
        d = w1 - w0
        dd = float(torch.dot(d, d)) if d.numel() else 0.0
        step_norm = math.sqrt(dd)
        ls = getattr(self.optimizer, "last_line_search", None)
        ls = ls if isinstance(ls, dict) else {}
        trials = None
        if pre["trials"]:
            # a closure optimizer: its evaluations are the line search's trial points, projected onto d
            # no move (a failed line search): measure along the farthest trial instead (alpha 1 there)
            ref, rr = d, dd
            if dd == 0:
                far = max(pre["trials"], key=lambda t: float(torch.dot(t[0] - w0, t[0] - w0)))[0] - w0
                ref, rr = far, float(torch.dot(far, far))
            ta, tl, ts = [], [], []
            for w, loss, gt in pre["trials"]:
                ta.append(float(torch.dot(w - w0, ref)) / rr if rr > 0 else math.nan)
                ts.append(float(torch.dot(gt, ref)) if gt is not None and rr > 0 else math.nan)
                tl.append(loss)
            trials = {"alpha": ta, "loss": tl, "slope": ts}
            at0 = [i for i, (w, _, _) in enumerate(pre["trials"]) if torch.equal(w, w0)]
            train_loss = tl[at0[0]] if at0 else math.nan
            slope0 = ts[at0[0]] if at0 else math.nan
            g0 = pre["trials"][at0[0]][2] if at0 else None
            grad_norm = float(torch.linalg.vector_norm(g0)) if g0 is not None else math.nan
            steps = ls.get("trial_steps")
            if steps is not None and len(steps) == len(ta):
                # the optimizer's own step lengths are exact: alpha = t / t_accepted (units of d_k)
                acc = float(ls.get("step", 0.0))
                trials["alpha"] = [t / acc for t in steps] if acc > 0 else list(steps)
                if "trial_slopes" in ls and acc > 0:
                    trials["slope"] = [sl * acc for sl in ls["trial_slopes"]]
        else:
            g = pre.get("grad")
            grad_norm = float(torch.linalg.vector_norm(g)) if g is not None else math.nan
            slope0 = float(torch.dot(g, d)) if g is not None else math.nan
            train_loss = float(pre["loss"]) if pre.get("loss") is not None else math.nan
        # an optimizer that knows its line search (recorder.optim.CG) says what it started from
        if "f0" in ls:
            train_loss = float(ls["f0"])
        if "d0" in ls and "step" in ls and dd > 0:
            slope0 = float(ls["d0"]) * float(ls["step"])
        if "grad_norm" in ls:
            grad_norm = float(ls["grad_norm"])
        ls_evals = int(ls["evals"]) if "evals" in ls else len(pre["trials"])
        lr = float(self.optimizer.param_groups[0].get("lr", math.nan))
        native = float(ls["step"]) if "step" in ls else lr

        # which data
        if self.config.data is not None:
            data = self.config.data
            inputs = ((data[0],) if not isinstance(data[0], tuple) else data[0], {})
            target = data[1]
            batch = 0
        else:
            inputs, target = self._inputs, self._target
            fp = _fingerprint((inputs, target)) if inputs is not None else None
            if fp != self._batch_fp:
                self._batch_fp = fp
                self._batch_id += 1
            batch = self._batch_id

        status, message = schema.STATUS_OK, ""
        phi = np.full(len(self.alphas), np.nan)
        stats_dev = None
        if k % max(1, self.config.every):
            status = schema.STATUS_SKIPPED
        elif inputs is None or target is None:
            status, message = schema.STATUS_FAILED, ("no mini-batch captured: use a torch.nn loss module, "
                                                     "call rec.observe(inputs, target), or give a probe set")
        else:
            self._probing = True
            try:
                phi_t, strategy = self.probe.measure(w0, w1, inputs, target, distributed=self.distributed,
                                                     as_tensor=True)
                stats_dev = _device_stats(self.alphas, phi_t)  # CuPy on CUDA: statistics where phi is
                phi = phi_t.cpu().numpy()
                self.strategy = strategy
            except Exception as exc:
                if self.strict:
                    raise
                status, message = schema.STATUS_FAILED, f"{type(exc).__name__}: {exc}"
            finally:
                self._probing = False
            if status == schema.STATUS_OK and not np.all(np.isfinite(phi)):
                status, message = schema.STATUS_NONFINITE, "phi has NaN or Inf values"

        if self.rank != 0 or self.writer is None:
            return
        stats = {}
        if status in (schema.STATUS_OK, schema.STATUS_NONFINITE):
            if stats_dev is not None:
                stats = stats_dev
            else:
                stats = {n: v[0].item() for n, v in line_stats(self.alphas, phi[None, :], 1.0).items()}
        self.writer.append(k, phi, trials=trials, epoch=self.epoch, batch=batch, taken_alpha=1.0 if dd > 0 else 0.0,
                           native_step=native, train_loss=train_loss, step_norm=step_norm, grad_norm=grad_norm,
                           lr=lr, wall_time=time.time(), status=status, ls_evals=ls_evals, slope0=slope0, **stats)
        if message:
            self.failures += status == schema.STATUS_FAILED
            self.writer.add_event("probe-failed" if status == schema.STATUS_FAILED else "probe-nonfinite",
                                  message, iteration=k)
            self._warn_once(f"status{status}", f"gda_gl probe at iteration {k}: {message} "
                                               "(recorded; training goes on; further ones are only recorded)")

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


def attach(optimizer: torch.optim.Optimizer, model: torch.nn.Module, loss_fn: Callable, path,
           probe: ProbeConfig | str | None = None, **kwargs) -> Recorder:
    """Record phi_k at every step of ``optimizer`` into ``path``.

    Parameters
    ----------
    optimizer : any ``torch.optim.Optimizer`` (SGD, Adam, LBFGS, :class:`recorder.optim.CG`, ...)
    model : the module being trained (its forward input is captured as the mini-batch)
    loss_fn : ``loss_fn(output, target)``; an ``nn.Module`` loss is hooked to capture the target
    path : the ``*.gda`` recording to write (replaced if it exists)
    probe : a preset name (``"cheap"``, ``"standard"``, ``"dense"``) or a :class:`ProbeConfig`
    **kwargs : ``run`` (extra metadata), ``tags``, ``seed``, ``strict``, ``commit_interval``, ``distributed``

    Returns
    -------
    Recorder : use as a context manager or call ``close()``; ``set_epoch(e)`` labels epochs
    """
    return Recorder(optimizer, model, loss_fn, path, probe, **kwargs)
