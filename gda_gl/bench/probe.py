"""Probe suite: naive loop vs in-place sweep vs batched vmap vs auto, and training slowdown per preset.

The slowdown per model and preset, with agreement against dense, is :mod:`gda_gl.bench.probe_cost`.

Models (digits-sized, batch 128): an MLP, a CNN with BatchNorm, an attention
block.  The floor is K plain forward passes of the same model on the same
batch (eval mode, no grad).  Memory is the parameter-copy memory each method
allocates (naive: one deep copy at a time; sweep: the w_k snapshot plus one
copy; batched: one copy per alpha in a chunk), computed from the sizes.  The repository adds
Cockpit's cheapest configuration to the slowdown table as a peer (``benchmarks/peers.py``).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np

NAME = "probe"

# the models and data live with the other benchmark models (re-exported: benchmarks/peers.py reads them here)
from .probe_models import _batch, _models  # noqa: E402,F401


def step_endpoints(model):
    """A synthetic step for probing: returns (params, flat w_k, flat w_{k+1}); the model is left at w_{k+1}."""
    import torch

    params = list(model.parameters())
    w0 = torch.cat([p.detach().reshape(-1) for p in params])
    with torch.no_grad():
        for p in params:
            p.add_(0.01 * torch.randn_like(p))
    w1 = torch.cat([p.detach().reshape(-1) for p in params])
    return params, w0, w1


#: a ratio to a floor below this is impossible for a sequential method: the floor was mis-measured
FLOOR_RATIO_MIN = 1.0


def spread(values) -> dict:
    """Median and spread of repeated measurements: ``median``, ``lo`` (min), ``hi`` (max), ``iqr``."""
    v = np.asarray(list(values), np.float64)
    q1, med, q3 = np.percentile(v, [25, 50, 75])
    return {"median": float(med), "lo": float(v.min()), "hi": float(v.max()), "iqr": float(q3 - q1)}


#: shortest timed sample (s): a call shorter than this is repeated, so one scheduler hiccup is averaged out
MIN_SAMPLE_S = 0.02


def interleaved(fns: dict, rounds: int, warmup: int = 1, base: str | None = None) -> dict[str, list[tuple]]:
    """(wall, CPU) seconds of every callable in ``fns``, one call of each per round, in alternation.

    With ``base`` (the floor), each other callable is timed right after its own call of ``base``, so
    every ratio is a pair measured back to back: a burst of load on a shared machine hits both halves
    of a pair alike.  The CPU time is this process's (all threads): other processes' load does not
    enter it, so it is the steadier number on a shared machine; the wall time is what a user waits.

    A call shorter than :data:`MIN_SAMPLE_S` (timed in the warm-up) is repeated within each sample,
    and the sample divided by the repeats.

    Returns
    -------
    dict of name -> list of (wall s, CPU s) per call; with ``base``, ``base`` holds one entry per pair,
    in the order of the other names, round by round (see :func:`pairs`)
    """
    repeats = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        for _ in range(max(1, warmup)):
            fn()
        per = (time.perf_counter() - t0) / max(1, warmup)
        repeats[name] = max(1, min(1000, int(math.ceil(MIN_SAMPLE_S / max(per, 1e-6)))))
    out = {name: [] for name in fns}

    def timed(name):
        n = repeats[name]
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            fns[name]()
        out[name].append(((time.perf_counter() - w0) / n, (time.process_time() - c0) / n))

    others = [n for n in fns if n != base]
    for r in range(rounds):
        for name in (others if r % 2 == 0 else others[::-1]):  # alternate the order too
            if base is not None:
                timed(base)
            timed(name)
    return out


def pairs(times: dict, base: str) -> dict[str, list[tuple]]:
    """The ``base`` timings paired with each other name's, from :func:`interleaved` with ``base``."""
    others = [n for n in times if n != base]
    rounds = len(times[others[0]]) if others else 0
    out = {n: [] for n in others}
    it = iter(times[base])
    for r in range(rounds):
        for name in (others if r % 2 == 0 else others[::-1]):
            out[name].append(next(it))
    return out


def ratio_cells(num: list[tuple], den: list[tuple], label: str = "x floor") -> dict:
    """Per-pair ratios num/den (wall and CPU) as medians with their min..max, flagged below
    :data:`FLOOR_RATIO_MIN` (impossible for a sequential method: a measurement error)."""
    num, den = np.asarray(num, np.float64), np.asarray(den, np.float64)
    w = spread(num[:, 0] / den[:, 0])
    c = spread(num[:, 1] / np.maximum(den[:, 1], 1e-9))
    cells = {label: w["median"], f"{label} range": f"{w['lo']:.2f}..{w['hi']:.2f}", f"{label} (CPU)": c["median"]}
    low = [k for k, v in ((label, w["median"]), (f"{label} (CPU)", c["median"])) if v < FLOOR_RATIO_MIN]
    if low:
        cells["flag"] = f"{' and '.join(low)} below {FLOOR_RATIO_MIN:.1f}x: measurement error"
    return cells


def probe_table(quick: bool) -> list[dict]:
    """Every probe method against its K-forward floor, measured interleaved, per model and K."""
    import torch
    from torch import nn

    torch.set_num_threads(2)
    X, y = _batch()
    loss_fn = nn.CrossEntropyLoss()
    rows = []
    ks = (8, 32) if quick else (8, 32, 128)
    for mname, cls in _models().items():
        torch.manual_seed(0)
        model = cls()
        params, w0, w1 = step_endpoints(model)
        for k in ks:
            rows += _strategy_rows(mname, model, params, w0, w1, k, X, y, loss_fn, quick)
    return rows


def _strategy_rows(mname, model, params, w0, w1, k, X, y, loss_fn, quick) -> list[dict]:
    """Rows of one (model, K): the floor (K plain forward passes) timed in the same rounds as each method."""
    import torch

    from recorder.probe import LineProbe, ProbeConfig, naive_phi

    pbytes = w0.numel() * 4
    alphas = np.linspace(0, 2, k)
    w0l = [t.clone().view_as(p) for t, p in zip(torch.split(w0, [p.numel() for p in params]), params)]
    w1l = [p.detach().clone() for p in params]

    def floor():  # what the probe cannot beat sequentially: K forward passes, eval mode, no grad
        model.eval()
        with torch.no_grad():
            for _ in range(k):
                loss_fn(model(X), y)
        model.train()

    fns = {"floor": floor,
           "naive loop": lambda: naive_phi(model, loss_fn, w0l, w1l, lambda m: list(m.parameters()), alphas,
                                           ((X,), {}), y)}
    budget = 256 << 20
    mem = {"naive loop": pbytes}
    labels = {}
    for strat in ("sweep", "batched", "auto"):
        probe = LineProbe(model, loss_fn, params, ProbeConfig(alphas=tuple(alphas), strategy=strat,
                                                               memory_budget=budget))
        probe.measure(w0, w1, ((X,), {}), y)  # warm-up / calibration, outside the timed rounds
        choice = probe.calibration.get("choice", strat) if strat == "auto" else strat
        label = f"auto ({choice})" if strat == "auto" else strat
        fns[label] = (lambda pr=probe: pr.measure(w0, w1, ((X,), {}), y))
        mem[label] = 2 * pbytes if choice == "sweep" else min(k, max(1, budget // pbytes)) * pbytes
        labels[label] = strat
    times = interleaved(fns, rounds=5 if quick else 9, base="floor")
    floors = pairs(times, "floor")
    rows = []
    for label in fns:
        if label == "floor":
            continue
        t = spread([w for w, _ in times[label]])
        rows.append({"model": mname, "params": w0.numel(), "K": k, "method": label,
                     "samples/s": k / t["median"], **ratio_cells(times[label], floors[label]),
                     "param-copy MiB": mem[label] / 2 ** 20})
    return rows


def run(quick: bool = False) -> dict:
    import os
    import tempfile

    logging.getLogger("recorder").setLevel(logging.ERROR)
    # measure the calibration itself, not a choice cached by an earlier run
    os.environ["GDA_GL_CACHE"] = tempfile.mkdtemp(prefix="gda-bench-cache-")
    from .probe_cost import cost_table

    return {"strategies": probe_table(quick), "training slowdown": cost_table(quick)}
