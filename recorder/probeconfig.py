"""What a probe measures, how often and how: :class:`ProbeConfig`, its presets and their checks.

Every field of a :class:`ProbeConfig` is checked on construction against one table,
:data:`_CHECKS` (field, when the rule applies, the test, what a valid value is): a bad configuration
raises one ``ValueError`` that lists every problem.  :data:`PRESETS` are the named configurations
(``probe="standard"``); :func:`resolve_config` turns a name, ``None`` (the default) or a config into a
:class:`ProbeConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Sequence

import numpy as np

__all__ = ["DEFAULT_PRESET", "PRESETS", "ProbeConfig", "make_grid", "resolve_config"]


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


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def _increasing(v) -> bool:
    try:
        a = np.asarray(v, np.float64)
        return a.ndim == 1 and a.size >= 1 and bool(np.all(np.isfinite(a))) and bool(np.all(np.diff(a) > 0))
    except (TypeError, ValueError):
        return False


def _budget_ok(cfg) -> bool:
    from .adaptive import budget_range

    lo, hi = budget_range(cfg.placement)
    return _is_int(cfg.budget) and lo <= cfg.budget <= hi


def _budget_text(cfg) -> str:
    from .adaptive import budget_range

    return "an int from {} to {}".format(*budget_range(cfg.placement))


def _one_on_grid(cfg) -> bool:
    """The valley placement snaps to ``linspace(0, alpha_max, k)``: alpha = 1 must be one of its points."""
    if not (_is_int(cfg.k) and _is_num(cfg.alpha_max) and cfg.alpha_max >= 1):
        return True  # reported by the k / alpha_max rules
    return abs((cfg.k - 1) / cfg.alpha_max - round((cfg.k - 1) / cfg.alpha_max)) < 1e-9


def _no_alphas(cfg) -> bool:
    return cfg.alphas is None


def _adaptive(cfg) -> bool:
    return cfg.mode == "adaptive"


def _valley(cfg) -> bool:
    return cfg.mode == "adaptive" and cfg.placement == "valley"


def _always(cfg) -> bool:
    return True


_STRATEGIES = ("auto", "sweep", "batched")
_PRECISIONS = ("fp32", "training")
_MODES = ("grid", "adaptive")
_PLACEMENTS = ("bends", "valley")

#: The rules a :class:`ProbeConfig` is checked against: (field, applies(cfg), ok(cfg), what is valid).
#: Every rule that applies and fails is reported, in this order, as ``field=value (what is valid)``.
_CHECKS: tuple = (
    ("mode", _always, lambda c: c.mode in _MODES, "choose 'grid' or 'adaptive'"),
    ("placement", _always, lambda c: c.placement in _PLACEMENTS, "choose 'bends' or 'valley'"),
    ("budget", _adaptive, _budget_ok, _budget_text),
    ("alphas", _adaptive, lambda c: c.alphas is None, "with mode='adaptive' (the adaptive probe places its own "
                                                      "alphas)"),
    ("alpha_max", _adaptive, lambda c: not _is_num(c.alpha_max) or c.alpha_max >= 1,
     "with mode='adaptive' (>= 1: the step taken is measured)"),
    ("grid", _no_alphas, lambda c: c.grid in ("uniform", "log") and (c.grid == "uniform" or not _valley(c)),
     "choose 'uniform' or 'log'; 'uniform' with placement='valley'"),
    ("k", _no_alphas, lambda c: _is_int(c.k) and c.k >= 2, "an int >= 2"),
    ("alpha_max", _no_alphas, lambda c: _is_num(c.alpha_max) and math.isfinite(c.alpha_max)
     and c.alpha_max > 0, "a finite number > 0"),
    ("k", _valley, _one_on_grid, "with placement='valley': alpha = 1 must be a point of linspace(0, alpha_max, k)"),
    ("alphas", lambda c: c.alphas is not None and c.mode != "adaptive", lambda c: _increasing(c.alphas),
     "finite values, strictly increasing"),
    ("every", _always, lambda c: _is_int(c.every) and c.every >= 1, "an int >= 1"),
    ("sub_batch", _always, lambda c: c.sub_batch is None or (_is_int(c.sub_batch) and c.sub_batch >= 1),
     "None or an int >= 1"),
    ("batch_dim", _always, lambda c: c.batch_dim is None or callable(c.batch_dim)
     or (_is_int(c.batch_dim) and c.batch_dim >= 0), "None, an int >= 0 or a callable"),
    ("data", _always, lambda c: c.data is None or (isinstance(c.data, (tuple, list)) and len(c.data) == 2),
     "None or a pair (inputs, target)"),
    ("strategy", _always, lambda c: c.strategy in _STRATEGIES, "choose " + ", ".join(map(repr, _STRATEGIES))),
    ("eval_mode", _always, lambda c: isinstance(c.eval_mode, bool), "True or False"),
    ("replay_rng", _always, lambda c: isinstance(c.replay_rng, bool), "True or False"),
    ("strict", _always, lambda c: isinstance(c.strict, bool), "True or False"),
    ("strategy", lambda c: c.eval_mode is False and c.replay_rng is True, lambda c: c.strategy != "batched",
     "with eval_mode=False and replay_rng=True (replaying the step's RNG needs 'sweep' or 'auto')"),
    ("precision", _always, lambda c: c.precision in _PRECISIONS, "choose " + ", ".join(map(repr, _PRECISIONS))),
    ("max_micro_batches", _always, lambda c: _is_int(c.max_micro_batches) and c.max_micro_batches >= 1,
     "an int >= 1"),
    ("memory_budget", _always, lambda c: _is_int(c.memory_budget) and c.memory_budget >= 1, "bytes, an int >= 1"),
    ("name", _always, lambda c: isinstance(c.name, str), "a string"),
)


def _problems(cfg) -> list[str]:
    """Every rule of :data:`_CHECKS` that applies to ``cfg`` and fails, as ``field=value (what is valid)``."""
    out = []
    for name, applies, ok, valid in _CHECKS:
        try:
            bad = applies(cfg) and not ok(cfg)
        except (TypeError, ValueError):
            bad = True
        if bad:
            out.append(f"{name}={getattr(cfg, name)!r} ({valid(cfg) if callable(valid) else valid})")
    return out


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
        ``budget`` alphas per step in [0, ``alpha_max``], placed by ``placement`` (:mod:`recorder.adaptive`);
        each row stores its own alphas
    budget : the adaptive mode's forward passes of the probe batch per step, at most (``"bends"``: 5 to 64;
        ``"valley"``: 3 to 64, phi(0) taken from the training forward not counted)
    placement : where the adaptive mode measures: ``"bends"`` (anchors 0, 1, ``alpha_max``, then where the
        line bends, a few batched rounds) or ``"valley"`` (points of the grid ``linspace(0, alpha_max, k)``
        near the line's minimum, one round per point until the minimum is not in doubt:
        :mod:`recorder.valley`)
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
    placement: str = "bends"

    def __post_init__(self):
        problems = _problems(self)
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

            return nominal_grid(self.budget + (self.placement == "valley"), self.alpha_max)
        return make_grid(self.grid, self.k, self.alpha_max, self.alphas)

    def describe(self) -> dict:
        g = self.alpha_grid()
        data = "current mini-batch" if self.data is None else "fixed probe set"
        if self.sub_batch:
            data += f" (first {self.sub_batch} samples)"
        mode = "eval" if self.eval_mode else ("train, RNG of the step replayed" if self.replay_rng
                                              else "train, fresh RNG at each alpha")
        where = f"{len(g)} alphas"
        if self.mode == "adaptive":
            where = (f"up to {self.budget} alphas in [0, {self.alpha_max:g}] placed per step (adaptive)"
                     if self.placement == "bends" else
                     f"up to {self.budget} forward passes per step at points of the {self.k}-point grid on "
                     f"[0, {self.alpha_max:g}] near the line's minimum (valley)")
        return {"preset": self.name, "k": len(g), "every": self.every, "data": data, "strategy": self.strategy,
                "eval_mode": self.eval_mode, "mode": mode, "max_micro_batches": self.max_micro_batches,
                "precision": self.precision, "grid_mode": self.mode,
                "placement": self.placement if self.mode == "adaptive" else None,
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
#: * ``valley``: points of dense's 65-point grid at the line's minimum, one per round until the minimum is not in
#:   doubt (:mod:`recorder.valley`), at most 10 forward passes per step (4-6 on average), whole batch, every
#:   iteration; its agreement with ``dense`` and its cost per model: README "Presets", benchmarks/RESULTS.md
#:
#: A probe costs about K forward passes of the probe batch; a training step about three,
#: so the price of ``standard`` is roughly K / 3 on any model, less with ``every`` > 1.
PRESETS: dict[str, ProbeConfig] = {
    "cheap": ProbeConfig(k=5, sub_batch=32, every=16, name="cheap"),
    "standard": ProbeConfig(k=17, name="standard"),
    "dense": ProbeConfig(k=65, name="dense"),
    "adaptive": ProbeConfig(mode="adaptive", budget=7, name="adaptive"),
    "valley": ProbeConfig(mode="adaptive", placement="valley", k=65, budget=10, name="valley"),
}

#: the preset a recorder uses when none is given
DEFAULT_PRESET = "standard"


def resolve_config(probe: ProbeConfig | str | None) -> ProbeConfig:
    """The :class:`ProbeConfig` of a preset name, of ``None`` (:data:`DEFAULT_PRESET`) or ``probe`` itself."""
    if probe is None:
        return PRESETS[DEFAULT_PRESET]
    if isinstance(probe, str):
        try:
            return PRESETS[probe]
        except KeyError:
            raise ValueError(f"unknown probe preset {probe!r} (choose from {', '.join(PRESETS)})") from None
    if not isinstance(probe, ProbeConfig):
        raise ValueError(f"probe must be a preset name or a ProbeConfig, not {type(probe).__name__}")
    return probe
