"""What each preset costs per model: training time with the recorder over training time without it.

For every model of :mod:`gda_gl.bench.probe_models` and every preset of :data:`TIMED` (the named
presets, and ``valley`` with ``every=4`` and with ``sub_batch=32``), in ``reps`` rounds with the
presets in alternating order, a run with the preset is timed right after a plain run of its own (the
same seeded training, ``steps`` steps after 3 warm-up steps; attaching and closing the recorder are
outside the timed part).  Reported per model and preset:

* ``x training``: the median over the rounds of (time with the preset) / (time of its plain run), with
  the min..max over the rounds, in wall time and in this process's CPU time;
* ``fwd/step``: the probe's forward passes of the batch per training step (the alphas it evaluates times the
  micro-batches, counted at its session whatever the strategy: a batched call of K alphas counts K);
* ``probe / fwd floor``: the time inside the probe per step (its :meth:`recorder.probe.LineProbe.session`)
  over the forwards it makes (``fwd/step`` times one eval-mode forward of the batch with its loss, timed in
  the same rounds): 1.0 is a probe that costs its forward passes and nothing else; ``probe beyond fwd`` is
  the share of the probe's time that is not forwards (the bar: at most 10 %);
  ``recorder / fwd floor``: the same for all the recorder adds per step (the probe, the gradient and
  weight copies of the hooks, the line statistics, the write);
* ``class`` / ``min 2/64``: agreement with ``dense`` on the same steps (a short run at the model's second
  learning rate, :mod:`gda_gl.bench.probe_agree`; the full bar is ``python -m benchmarks.adaptive_bar``);
* ``load``: the 1-minute load average before..after the model's rounds.  Above :data:`BUSY_LOAD` (2 cores
  shared) the machine was busy and the timing cells say so instead of holding a figure, unless
  ``GDA_GL_BENCH_BUSY_OK=1`` asks for the figures anyway (then marked as taken under load).
"""

from __future__ import annotations

import contextlib
import math
import os
import time

import numpy as np

from .probe_agree import agreement, record_together, train_steps
from .probe_models import SETUPS, setup as make_setup

__all__ = ["BUSY_LOAD", "TIMED", "cost_table"]

#: the presets timed, by label (a preset name, or the valley preset with one field changed)
TIMED = ("cheap", "standard", "adaptive", "valley", "valley every=4", "valley sub_batch=32")
#: a 1-minute load average above this (on the 2-core machine the figures are taken on) marks the machine busy
BUSY_LOAD = 1.5


def config_of(label: str):
    """The :class:`recorder.probe.ProbeConfig` of a label of :data:`TIMED`."""
    from recorder.probe import PRESETS

    name, _, change = label.partition(" ")
    if not change:
        return PRESETS[name]
    field, _, value = change.partition("=")
    return PRESETS[name].with_(**{field: int(value)}, name=label.replace(" ", "-"))


@contextlib.contextmanager
def _probe_clock():
    """Wall seconds spent inside :meth:`recorder.probe.LineProbe.session` (every preset's probe runs in one)
    while the context is open, in ``acc[0]`` (the probe's own time, without the recorder's other work), and
    the forward passes of the batch it asked for, in ``acc[1]``."""
    from recorder.probe import LineProbe

    acc = [0.0, 0]
    real = LineProbe.session

    @contextlib.contextmanager
    def timed(self, w0, w1, batches, *args, **kwargs):
        t0 = time.perf_counter()
        try:
            with real(self, w0, w1, batches, *args, **kwargs) as evaluate:
                def counted(alphas):
                    acc[1] += len(alphas) * len(batches)  # forward passes of the probe batch (any strategy)
                    return evaluate(alphas)

                yield counted
        finally:
            acc[0] += time.perf_counter() - t0

    LineProbe.session = timed
    try:
        yield acc
    finally:
        LineProbe.session = real


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan


class _Runs:
    """Timed training runs of one model: :meth:`train` (preset or None) and :meth:`forward`."""

    def __init__(self, name: str, steps: int):
        import torch

        self.s = make_setup(name)
        self.steps = steps
        self.x, self.y = self.s.batch_at(0, 0)
        torch.manual_seed(0)
        self.model = self.s.factory()
        self.opt = self.s.make_opt(self.model.parameters(), self.s.lrs[0])

    def train(self, cfg) -> tuple[float, float, float, float]:
        """(wall s, CPU s, probe forwards, wall s inside the probe) per step of a fresh seeded run with ``cfg``
        attached (None: plain)."""
        import tempfile

        import torch

        import recorder
        torch.manual_seed(0)
        model = self.s.factory()
        opt = self.s.make_opt(model.parameters(), self.s.lrs[0])
        rec = recorder.attach(opt, model, self.s.loss_fn, os.path.join(tempfile.mkdtemp(), "c.gda"),
                              probe=cfg) if cfg is not None else None
        train_steps(self.s, model, opt, 3, 0, start=10_000)  # warm-up (and 'auto' calibration), not timed
        with _probe_clock() as inside:
            w0, c0 = time.perf_counter(), time.process_time()
            train_steps(self.s, model, opt, self.steps, 0)
            out = ((time.perf_counter() - w0) / self.steps, (time.process_time() - c0) / self.steps,
                   inside[1] / self.steps, inside[0] / self.steps)
        if rec is not None:
            rec.close()
        return out

    def forward(self, n: int = 10) -> tuple[float, float]:
        """(wall s, CPU s) of one eval-mode forward of the batch, mean of ``n``."""
        import torch

        self.model.eval()
        w0, c0 = time.perf_counter(), time.process_time()
        with torch.no_grad():
            for _ in range(n):
                self.s.loss_fn(self.model(self.x), self.y)
        self.model.train()
        return (time.perf_counter() - w0) / n, (time.process_time() - c0) / n


def _med(v) -> float:
    return float(np.median(np.asarray(v, np.float64)))


def _timing_cells(label: str, pairs: list, fwd: list, busy: bool, load: str) -> dict:
    """The timing columns of one preset from its (plain, preset) pairs and the forward timings."""
    if busy and os.environ.get("GDA_GL_BENCH_BUSY_OK") != "1":
        return {"x training": f"busy (load {load})", "flag": "not measured: the machine was busy"}
    wall = [p[0] / b[0] for b, p in pairs]
    cpu = [p[1] / b[1] for b, p in pairs]
    n_fwd = _med([p[2] for _, p in pairs])
    extra = _med([p[0] - b[0] for b, p in pairs])
    t_fwd = _med([w for w, _ in fwd])
    floor = extra / (n_fwd * t_fwd) if n_fwd > 0 else math.nan
    probe = _med([p[3] for _, p in pairs]) / (n_fwd * t_fwd) if n_fwd > 0 else math.nan
    cells = {"fwd/step": n_fwd, "s/step": _med([p[0] for _, p in pairs]), "x training": _med(wall),
             "range": f"{min(wall):.2f}..{max(wall):.2f}", "x training (CPU)": _med(cpu),
             "probe / fwd floor": probe, "recorder / fwd floor": floor,
             "probe beyond fwd": f"{max(0.0, 1 - 1 / probe):.0%}" if probe > 0 and math.isfinite(probe) else "-"}
    if busy:
        cells["flag"] = f"taken under load {load}"
    return cells


def _agreement_cells(name: str, labels, steps: int) -> dict[str, dict]:
    """class / min agreement with dense of every preset of ``labels`` on a short run (second learning rate)."""
    import tempfile

    s = make_setup(name)
    paths = record_together(s, s.lrs[min(1, len(s.lrs) - 1)], 0, steps, ["dense", *[config_of(x) for x in labels]],
                            tempfile.mkdtemp(prefix="gda-agree-"))
    out = {}
    for label, path in zip(labels, paths[1:]):
        a = agreement(paths[0], path)
        n = max(a["steps"], 1)
        out[label] = {"class": a["class agrees"] / n, "min 2/64": a["min within 2/64"] / n,
                      "agree steps": a["steps"]}
    return out


def cost_table(quick: bool, models=SETUPS, labels=TIMED) -> list[dict]:
    """One row per model and preset; see the module docstring."""
    import torch

    torch.set_num_threads(2)
    steps, reps = (15, 3) if quick else (40, 5)
    rows = []
    for name in models:
        runs = _Runs(name, steps)
        before = _load()
        pairs: dict[str, list] = {lb: [] for lb in labels}
        fwd = []
        for r in range(reps):
            for lb in (labels if r % 2 == 0 else labels[::-1]):
                plain = runs.train(None)
                pairs[lb].append((plain, runs.train(config_of(lb))))
            fwd.append(runs.forward())
        after = _load()
        busy = max(before, after) > BUSY_LOAD
        load = f"{before:.1f}..{after:.1f}"
        agree = _agreement_cells(name, [lb for lb in labels if not lb.startswith("cheap")], 10 if quick else 25)
        base = _med([b[0] for lb in labels for b, _ in pairs[lb]])
        rows.append({"model": name, "preset": "(no recorder)", "s/step": base, "x training": 1.0, "load": load})
        for lb in labels:
            rows.append({"model": name, "preset": lb, **_timing_cells(lb, pairs[lb], fwd, busy, load),
                         **agree.get(lb, {}), "load": load})
    return rows
