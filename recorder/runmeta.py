"""The run metadata a recording starts with, and opening its writer without ever breaking training.

:func:`run_metadata` describes the run (model, optimizer, probe, versions, what the gradient and the
loss are); :func:`open_writer` opens the recording on rank 0 (a fresh name instead of replacing a
finished recording unless ``overwrite``).  :func:`fingerprint` is the cheap identity of a mini-batch
the recorder numbers batches with.
"""

from __future__ import annotations

import hashlib
import os
import platform
import socket
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ._version import __version__

__all__ = ["GRADIENT_NOTE", "LOSS_NOTE", "run_metadata", "open_writer", "unused_path", "fingerprint"]

#: What ``slope0`` and ``grad_norm`` are computed from (also stored in the run metadata).
GRADIENT_NOTE = ("the gradient back-propagated since the previous step, as the backward calls left it (summed over "
                 "the step's micro-batches, before gradient clipping or any other change made before step()), "
                 "divided by the weight its losses entered the backward with when that weight is common to them "
                 "(the GradScaler's scale, the accumulation's 1/n against phi's mean): the gradient of phi at "
                 "alpha = 0; parameters without a gradient count as zero")

#: What ``train_loss`` is (stored in the run metadata).
LOSS_NOTE = ("the weighted sum over the step's micro-batches (their mean unless the loss is already normalised over "
             "the step), only those whose gradient made the step; a per-sample loss is averaged; distributed: the "
             "mean over the ranks of each rank's loss (the objective data-parallel gradients average)")

#: Under DDP and FSDP1 the gradient is read from p.grad when step() is called.
STEP_GRADIENT_NOTE = "p.grad when step() is called (after the all-reduce, GradScaler's unscale_ and any clipping)"


def _versions() -> dict:
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


def run_metadata(rec, path, run: dict | None, tags: dict | None, seed) -> dict:
    """The ``run`` metadata of recorder ``rec`` (a :class:`recorder.hooks.Recorder` being set up)."""
    model, optimizer = rec.model, rec.optimizer
    if not rec.distributed:
        gradient = GRADIENT_NOTE
    else:
        gradient = rec.shard.describe()["gradient"] if rec.shard else STEP_GRADIENT_NOTE
    meta = {
        "name": (run or {}).get("name") or str(path).rsplit("/", 1)[-1].removesuffix(".gda"),
        "model": repr(model)[:20000],
        "model_name": type(model).__name__,
        "parameter_count": int(sum(p.numel() for p in model.parameters())),
        "trainable_parameters": int(sum(p.numel() for p in rec.params if p.requires_grad)),
        "optimizer": type(optimizer).__name__,
        "hyperparameters": _hyperparameters(optimizer),
        "probe": rec.config.describe(),
        "seed": seed,
        "versions": _versions(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": str(rec.params[0].device) if rec.params else "cpu",
        "start_time": time.time(),
        "tags": dict(tags or {}),
        "alpha_units": "d_k = w_{k+1} - w_k (alpha = 1 is the step taken)",
        "gradient": gradient,
        "loss": LOSS_NOTE,
        "world_size": torch.distributed.get_world_size() if rec.distributed else 1,
    }
    if rec.shard is not None:
        meta["sharding"] = rec.shard.describe(rec.config.strategy)
    meta.update({k: v for k, v in (run or {}).items() if k != "name"})
    return meta


def unused_path(path) -> Path:
    """``path``, or the first of ``stem-2.gda``, ``stem-3.gda``, ... that does not exist (nothing is replaced)."""
    p = Path(path)
    if not os.path.lexists(p) and not os.path.lexists(str(p) + "-wal"):
        return p
    for i in range(2, 100_000):
        q = p.with_name(f"{p.stem}-{i}{p.suffix}")
        if not os.path.lexists(q) and not os.path.lexists(str(q) + "-wal"):
            return q
    return p  # the writer then refuses with one line


def fingerprint(obj) -> str:
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


def open_writer(rec, path, run: dict | None, tags: dict | None, seed, overwrite: bool, commit_interval: float):
    """The recording's writer for recorder ``rec`` (rank 0), or None when it cannot be opened: the problem is
    warned about once and training goes on (``strict`` raises).  Without ``overwrite`` an existing recording
    is never replaced: the first free ``stem-N.gda`` is written instead (:func:`unused_path`)."""
    from .store import RecordingWriter

    try:
        meta = run_metadata(rec, path, run, tags, seed)
        if not overwrite:
            fresh = unused_path(path)
            if str(fresh) != str(path):
                rec.warn_once("path", f"gda_gl recorder: {path} exists; recording to {fresh} instead "
                                      f"(attach(..., overwrite=True) replaces a finished recording)")
            path = fresh
        return RecordingWriter(path, rec.alphas, meta, overwrite=overwrite, commit_interval=commit_interval,
                               row_alphas=rec.config.mode == "adaptive")
    except Exception as exc:  # unwritable path, bad metadata: report, keep training
        if rec.strict:
            raise
        rec.warn_once("writer", f"gda_gl recorder disabled: {exc}")
        return None
