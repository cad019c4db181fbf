"""One recorded row per step: the line, the step's scalars, phi on the grid, and the write.

:class:`StepMeasure` turns what the hooks captured at one ``step()`` (w_k, w_{k+1}, the gradient, the
micro-batches whose gradient made the step) into one row of the recording; :meth:`StepMeasure.skipped`
writes the row of a step the loop skipped (its gradient was discarded without ``step()``): status
``skipped``, ``taken_alpha`` 0 and ``step_norm`` 0 (the weights did not move), phi not measured.

The gradient and the line are one objective: phi is the weighted mean of the micro-batches' losses
(:func:`recorder.probe.micro_weights`); the gradient copied at the end of each backward is divided by the
common weight the losses entered the backward with (their *seeds* over phi's weights: the
``GradScaler``'s scale, n for an accumulation that sums n losses), so ``slope0`` is phi'(0) unscaled.
When the seeds are not proportional to phi's weights no division is made and an event says so.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from . import schema, sharded
from .capture import Entry, weights_key
from .linestats import line_stats
from .probe import MicroBatch, changed_in_place, micro_weights
from .runmeta import fingerprint

__all__ = ["Line", "StepInfo", "StepMeasure", "SEED_RTOL"]

#: how far the micro-batches' seeds over phi's weights may differ and still count as one common factor
SEED_RTOL = 1e-6


def _device_stats(alphas: np.ndarray, phi: torch.Tensor) -> dict | None:
    """Line statistics computed by CuPy on the GPU holding ``phi`` (shared through DLPack), else None.

    Only the handful of statistics crosses the bus; on a CPU the numpy path in ``write`` is used.
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
class Line:
    """The step as a line: w_k, w_{k+1}, d_k and its squared norm."""

    w0: torch.Tensor
    w1: torch.Tensor
    d: torch.Tensor
    dd: float

    @property
    def step_norm(self) -> float:
        return math.sqrt(self.dd)


@dataclass
class StepInfo:
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


def common_seed(entries: list[Entry], over: int = 0) -> float | None:
    """The one factor by which the step's gradient exceeds phi's: seed / weight, common to all micro-batches
    (``over`` more were back-propagated beyond ``max_micro_batches``: the gradient holds them too, so an
    equal share is 1 / (kept + over)); 1.0 when unknown (a micro-batch added by hand), None when the
    micro-batches disagree."""
    if not entries or any(e.seed is None for e in entries):
        return 1.0
    seeds = torch.stack([e.seed.to(torch.float64) for e in entries]).cpu().tolist()
    n = len(entries) + over
    ratios = [s / (1.0 / n if e.mb.weight is None else float(e.mb.weight)) for s, e in zip(seeds, entries)]
    c = ratios[0]
    if not math.isfinite(c) or c == 0 or any(abs(r - c) > SEED_RTOL * abs(c) for r in ratios):
        return None
    return c


class StepMeasure:
    """The per-step measurement of a :class:`recorder.hooks.Recorder` (it reads the recorder's probe,
    optimizer, sharding and writer)."""

    def __init__(self, rec):
        self.rec = rec
        self.strategy = None
        self.row_alphas: np.ndarray | None = None  # the adaptive probe's alphas of the current step
        self._batch_id = -1
        self._batch_fp = None

    # -- one step ----------------------------------------------------------------
    def record(self, k: int, pre: dict, entries: list[Entry], over: int, samples: int) -> None:
        rec = self.rec
        micro = [e.mb for e in entries]
        line = self.line(pre)
        pre["over"] = over
        info = self.step_info(pre, line, entries, samples)
        batches, batch = self.probe_data(micro)
        phi, status, message, stats = self.measure(k, line, batches, info.slope0)
        if over:
            rec.note(k, "micro-batches-dropped",
                     f"phi and train_loss use the first {len(micro)} of {len(micro) + over} micro-batches "
                     "(ProbeConfig.max_micro_batches)")
        self.write(k, line, info, batch, phi, status, message, stats)

    def line(self, pre: dict) -> Line:
        w0 = pre["w0"]
        w1 = self.rec.probe.flat()
        d = w1 - w0
        return Line(w0, w1, d, self.dot(d, d))

    def dot(self, a: torch.Tensor, b: torch.Tensor) -> float:
        """a . b of two flat vectors; for sharded parameters reduced over the ranks (every rank calls it)."""
        if self.rec.shard is not None:
            return self.rec.shard.dot(a, b)
        return float(torch.dot(a, b.to(a.dtype))) if a.numel() else 0.0

    def _is_line_search(self, trials: list) -> bool:
        """Several closure evaluations per step, or an optimizer known to search (LBFGS, CG)."""
        opt = self.rec.optimizer
        return bool(trials) and (len(trials) > 1 or isinstance(opt, torch.optim.LBFGS)
                                 or isinstance(getattr(opt, "last_line_search", None), dict))

    def step_info(self, pre: dict, line: Line, entries: list[Entry], samples: int) -> StepInfo:
        rec = self.rec
        info = StepInfo()
        ls = getattr(rec.optimizer, "last_line_search", None)
        ls = ls if isinstance(ls, dict) else {}
        if self._is_line_search(pre["trials"]):
            self._trial_points(pre, line, ls, info)
        else:
            self._gradient_scalars(pre, line, entries, info)
            info.train_loss = _micro_loss([e.mb for e in entries])
            if rec.distributed:  # the mean over the ranks, the objective phi is (every rank calls it)
                info.train_loss, samples = sharded.global_mean(info.train_loss, samples, bool(entries))
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
        info.micro_batches = len(entries)
        info.samples = samples
        info.lr = float(rec.optimizer.param_groups[0].get("lr", math.nan))
        info.native = float(ls["step"]) if "step" in ls else info.lr
        return info

    def _gradient_scalars(self, pre: dict, line: Line, entries: list[Entry], info: StepInfo) -> None:
        """slope0 and grad_norm of the step's gradient, in phi's units (see the module docstring)."""
        g = pre["grad"]
        if pre["trials"] and g is None:
            g = pre["trials"][0][2]
        if g is None:
            return
        if pre.get("copied"):  # the hooks' copy: scaled as the backward left it
            c = common_seed(entries, pre.get("over", 0))
            if c is None:
                self.rec.note_once(pre["k"], "gradient-weights",
                                   "the step's micro-batches entered the backward with weights not proportional "
                                   "to phi's (their mean): slope0 and grad_norm are of the gradient as back-"
                                   "propagated, not phi'(0)")
            elif c != 1.0:
                g = g / c
        info.grad_norm = math.sqrt(self.dot(g, g))
        info.slope0 = self.dot(g.to(line.d.dtype), line.d)

    def _trial_points(self, pre: dict, line: Line, ls: dict, info: StepInfo) -> None:
        """A closure optimizer's evaluations are the line search's trial points, projected onto d_k."""
        if self.rec.shard is not None:  # every rank raises here alike: no collective is left waiting
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

    def probe_data(self, micro: list[MicroBatch]) -> tuple[list[MicroBatch], int]:
        """The micro-batches phi is measured on, and the batch id (new whenever the data changes)."""
        data = self.rec.config.data
        if data is not None:
            x, y = data
            return [MicroBatch(x if isinstance(x, tuple) else (x,), {}, y)], 0
        fp = fingerprint([(m.args, m.kwargs, m.target) for m in micro]) if micro else None
        if fp != self._batch_fp:
            self._batch_fp = fp
            self._batch_id += 1
        return micro, self._batch_id

    def _refused(self, k: int, batches: list[MicroBatch]):
        """Why this step is not probed: (status, message), or None to probe it."""
        rec = self.rec
        if k % max(1, rec.config.every):
            return schema.STATUS_SKIPPED, ""
        if not batches:
            return schema.STATUS_FAILED, ("no mini-batch captured: use a torch.nn loss module, give loss_from=, call "
                                          "rec.observe(inputs, target), or give a probe set")
        if rec.loss_from is None and rec.probe.evaluate is None and any(m.target is None for m in batches):
            return schema.STATUS_FAILED, "no target captured: call rec.observe(inputs, target)"
        # data refilled in place since its forward: not probed (a distributed rank still joins the
        # probe's collectives, and its result is discarded below)
        changed = None if rec.distributed else changed_in_place(batches)
        return (schema.STATUS_FAILED, changed) if changed else None

    def measure(self, k: int, line: Line, batches: list[MicroBatch], slope0: float = math.nan):
        """Probe phi_k; returns (phi, status, message, statistics computed on the device or None)."""
        rec = self.rec
        alphas = rec.alphas
        phi = np.full(len(alphas), np.nan)
        self.row_alphas = None  # the adaptive probe's alphas of this step (None: the shared grid, or none)
        refused = self._refused(k, batches)
        if refused:
            return phi, refused[0], refused[1], None
        try:
            if rec.config.mode == "adaptive":
                (phi, self.row_alphas), stats_dev = self._measure_adaptive(line, batches, slope0), None
            else:
                phi_t, self.strategy = rec.probe.measure(line.w0, line.w1, batches=batches,
                                                         distributed=rec.distributed, as_tensor=True)
                stats_dev = _device_stats(alphas, phi_t)  # CuPy on CUDA: statistics where phi is
                phi = phi_t.cpu().numpy()
        except Exception as exc:
            if rec.strict:
                raise
            return phi, schema.STATUS_FAILED, f"{type(exc).__name__}: {exc}", None
        changed = changed_in_place(batches)  # before the probe (distributed), or by the probe's own forwards
        if changed:
            self.row_alphas = None
            return np.full(len(alphas), np.nan), schema.STATUS_FAILED, changed, None
        measured = phi if self.row_alphas is None else phi[np.isfinite(self.row_alphas)]
        if not np.all(np.isfinite(measured)):
            return phi, schema.STATUS_NONFINITE, "phi has NaN or Inf values", stats_dev
        return phi, schema.STATUS_OK, "", stats_dev

    def _measure_adaptive(self, line: Line, batches: list[MicroBatch], slope0: float):
        """The adaptive probe (:mod:`recorder.adaptive`): (phi, alphas) padded with NaN to the budget."""
        from .adaptive import measure_adaptive

        rec = self.rec
        a, p, self.strategy = measure_adaptive(rec.probe, line.w0, line.w1, batches, slope0, rec.distributed)
        k = len(rec.alphas)
        alphas, phi = np.full(k, np.nan), np.full(k, np.nan)
        alphas[:len(a)], phi[:len(p)] = a[:k], p[:k]
        return phi, alphas

    def write(self, k: int, line: Line, info: StepInfo, batch: int, phi: np.ndarray, status: int,
              message: str, stats_dev: dict | None) -> None:
        rec = self.rec
        if rec.rank != 0 or rec.writer is None:
            return
        stats = {}
        if status in (schema.STATUS_OK, schema.STATUS_NONFINITE):
            grid = rec.alphas if self.row_alphas is None else self.row_alphas[None, :]
            stats = stats_dev if stats_dev is not None else \
                {n: v[0].item() for n, v in line_stats(grid, phi[None, :], 1.0).items()}
        extra = {"alphas": self.row_alphas} if rec.writer.row_alphas else {}
        rec.writer.append(k, phi, trials=info.trials, epoch=rec.epoch, batch=batch,
                          taken_alpha=1.0 if line.dd > 0 else 0.0, native_step=info.native,
                          train_loss=info.train_loss, step_norm=line.step_norm, grad_norm=info.grad_norm,
                          lr=info.lr, wall_time=time.time(), status=status, ls_evals=info.ls_evals,
                          slope0=info.slope0, micro_batches=info.micro_batches, samples=info.samples, **stats, **extra)
        if rec.findings is not None:
            rec.findings.add(k, phi, extra.get("alphas"), epoch=rec.epoch, batch=batch, status=status,
                             taken_alpha=1.0 if line.dd > 0 else 0.0, train_loss=info.train_loss,
                             step_norm=line.step_norm, lr=info.lr, curvature=stats.get("curvature", math.nan))
        if message:
            rec.failures += status == schema.STATUS_FAILED
            rec.note(k, "probe-failed" if status == schema.STATUS_FAILED else "probe-nonfinite", message)
            rec.warn_once(f"status{status}", f"gda_gl probe at iteration {k}: {message} "
                                             "(recorded; training goes on; further ones are only recorded)")

    def discarded(self, dropped: list[Entry]) -> None:
        """Micro-batches whose gradient the loop discarded without a step: what they were decides what is
        recorded.  Back-propagated before another optimizer's step (a GAN's generator pass through the
        discriminator): dropped, an event; at weights that moved since (SAM's first pass): dropped, an
        event; otherwise a skipped step: a row of its own (status skipped, did not move), which advances
        the iteration."""
        rec = self.rec
        if not dropped:
            return
        if any(e.others < rec.capture.others for e in dropped):
            rec.note_once(rec.iteration, "gradient-discarded",
                          f"{len(dropped)} micro-batch(es) back-propagated into these parameters before another "
                          "optimizer's step were discarded (zero_grad) and are not part of any line")
        elif self._moved_since(dropped):
            rec.note_once(rec.iteration, "gradient-discarded",
                          f"{len(dropped)} micro-batch(es) back-propagated at weights changed since (not by this "
                          "optimizer's step: SAM's first pass) were discarded and are not part of any line")
        else:
            k = rec.iteration
            rec.iteration += 1
            self.skipped(k, dropped)
            rec.note_once(k, "step-skipped",
                          f"the gradient of {len(dropped)} micro-batch(es) ({sum(e.samples for e in dropped)} "
                          "samples) was discarded without step() (a loop that skips the step, GradScaler skipping "
                          "an overflow): recorded as a row with status skipped that did not move; phi not measured")

    def _moved_since(self, entries: list[Entry]) -> bool:
        now = weights_key(self.rec.params)
        return any(e.weights is not None and e.weights != now for e in entries)

    def skipped(self, k: int, entries: list[Entry]) -> None:
        """The row of a step the loop skipped: status skipped, did not move, phi not measured; train_loss
        is the discarded micro-batches' loss and samples theirs (under distributed training rank 0's loss
        and its samples times the number of ranks: no collective runs inside a backward)."""
        rec = self.rec
        if rec.rank != 0 or rec.writer is None:
            return
        micro = [e.mb for e in entries]
        _, batch = self.probe_data(micro)
        phi = np.full(len(rec.alphas), np.nan)
        extra = {"alphas": np.full(len(rec.alphas), np.nan)} if rec.writer.row_alphas else {}
        rec.writer.append(k, phi, epoch=rec.epoch, batch=batch, taken_alpha=0.0, native_step=math.nan,
                          train_loss=_micro_loss(micro), step_norm=0.0, grad_norm=math.nan,
                          lr=float(rec.optimizer.param_groups[0].get("lr", math.nan)), wall_time=time.time(),
                          status=schema.STATUS_SKIPPED, ls_evals=0, slope0=math.nan, micro_batches=len(micro),
                          samples=sum(e.samples for e in entries) * (rec.world if rec.distributed else 1), **extra)


def _micro_loss(micro: list[MicroBatch]) -> float:
    """The training loss of the step: the micro-batches' losses, weighted as phi weighs them."""
    if not micro or any(m.loss is None for m in micro):
        return math.nan
    return float(sum(w * float(m.loss) for w, m in zip(micro_weights(micro), micro)))
