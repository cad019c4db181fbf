"""Live diagnosis inside a training: the detector that runs after each block of rows, on rank 0.

:class:`LiveDetector` keeps only what the rules need: the per-row measures of the last few dozen rows
(the spike baseline, the smoothing of the divergence rule), the current step-size window, the lowest
smoothed loss so far and what it already reported, so its memory does not grow with the run.  Its
findings are the same dicts as ``gda-gl diagnose --json``'s entries (``kind`` says which: ``spike``,
``step_size``, ``divergence``, ``plateau``, ``lr_change``, ``probe_failed``, ``probe_skipped``).  Live
windows are fixed (:data:`~.thresholds.LIVE_WINDOW_ITERATIONS`; the last, partial one is judged at the
end), and a step-size entry is reported when a window's verdict differs from the previous verdict
(``cannot_say`` windows are not reported live).  A spike is reported when first seen: its ``rise`` and
``evidence["steps"]`` count the steps seen then (the offline report may find it longer); a divergence
once the loss has stayed up for :data:`~.thresholds.LIVE_DIVERGE_MIN_STEPS` steps.

:class:`LiveFindings` is what the :class:`recorder.hooks.Recorder` holds: it feeds the detector from the
recorder's rows, writes each finding into the recording as an event of kind ``"finding"`` (its message
the finding's JSON; older readers show it as an event, ``upgrade`` copies it) and calls the functions
given to ``rec.on_finding`` in the training thread (through the recorder's ``emit_finding``).  It counts
its own CPU time (``timing()``); an error in it is reported once and switches it off, training goes on.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from .. import schema
from ..codec import Iterations
from .findings import divergence, lr_changes, plateaus, probe_findings, smoothed
from .lines import concat, line_measures
from .spikes import find_spikes, loss_series
from .stepsize import verdict_from_rows
from .thresholds import (LIVE_DIVERGE_MIN_STEPS, LIVE_EVERY_ROWS, LIVE_EVERY_S, LIVE_WINDOW_ITERATIONS, SMOOTH_STEPS,
                         SPIKE_BASELINE_STEPS)

log = logging.getLogger(__name__)

#: rows of context kept between runs of the detector
CONTEXT_ROWS = max(SPIKE_BASELINE_STEPS + 2, 2 * SMOOTH_STEPS + LIVE_DIVERGE_MIN_STEPS)
_COLS = ("epoch", "batch", "taken_alpha", "train_loss", "step_norm", "lr", "status", "curvature")


class LiveDetector:
    """Findings of a run as its rows arrive (see the module docstring).

    Parameters
    ----------
    alpha_grid : the probe's alphas (K,)
    window : iterations per step-size window
    """

    def __init__(self, alpha_grid, window: int = LIVE_WINDOW_ITERATIONS):
        self.grid = np.asarray(alpha_grid, np.float64)
        self.window = int(window)
        self._rows: list[tuple] = []
        self._tail: dict | None = None
        self._win: list[dict] = []
        self._win_start: int | None = None
        self._best = np.inf
        self._diverged: int | None = None
        self._verdict: str | None = None
        self._plateau = False
        self._skipped_said = False

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, iteration: int, phi, alphas=None, **cols) -> None:
        """Buffer one row (``cols``: the columns of :data:`_COLS`; missing ones read as NaN / 0)."""
        self._rows.append((int(iteration), np.asarray(phi, np.float32), alphas, cols))

    def _block(self) -> Iterations:
        rows, self._rows = self._rows, []
        k = len(self.grid)
        cols = {"iteration": np.array([r[0] for r in rows], np.int64)}
        for name in _COLS:  # as stored, so live numbers equal those read back from the file
            cols[name] = np.array([r[3].get(name, np.nan if name not in ("epoch", "batch", "status") else 0)
                                   for r in rows]).astype(schema.ITER_DTYPES[name])
        phi = np.stack([r[1][:k] for r in rows])
        ra = None
        if any(r[2] is not None for r in rows):
            ra = np.stack([np.asarray(r[2], np.float64) if r[2] is not None else self.grid for r in rows])
        return Iterations(self.grid, cols, phi, np.zeros(len(rows) + 1, np.int64), {}, ra)

    def detect(self) -> list[dict]:
        """Run the rules over the rows buffered since the last call; returns the new findings."""
        if not self._rows:
            return []
        new = line_measures(self._block())
        m = concat([self._tail, new] if self._tail is not None else [new])
        first_new = int(new["iteration"][0])
        y = loss_series(m)
        out = self._divergence(m, y) + self._spikes(m, first_new)
        out += [f for f in lr_changes(m["iteration"], m["lr"]) if f["start"] >= first_new]
        out += self._probes(new) + self._windows(new)
        self._remember(m, y)
        return out

    def close(self) -> list[dict]:
        """:meth:`detect`, then the verdict of the last, partial window (the run ended)."""
        out = self.detect()
        if self._win:
            m = concat(self._win)
            self._win = []
            out += self._window_findings(m, self._win_start, int(m["iteration"][-1]) + 1)
        return out

    def _divergence(self, m: dict, y: np.ndarray) -> list[dict]:
        if self._diverged is not None:
            return []
        d = divergence(m["iteration"], y, self._best)
        if d is None or int(m["iteration"][-1]) + 1 - d["start"] < LIVE_DIVERGE_MIN_STEPS:
            return []
        self._diverged = d["start"]
        return [d]

    def _spikes(self, m: dict, first_new: int) -> list[dict]:
        return [s for s in find_spikes(m, before=self._diverged) if s["iteration"] >= first_new]

    def _probes(self, new: dict) -> list[dict]:
        out = [f for f in probe_findings(new["iteration"], new["status"])
               if f["kind"] != "probe_skipped" or not self._skipped_said]
        self._skipped_said |= any(f["kind"] == "probe_skipped" for f in out)
        return out

    def _windows(self, new: dict) -> list[dict]:
        if self._win_start is None:
            self._win_start = int(new["iteration"][0])
        self._win.append(new)
        out = []
        while self._win and int(self._win[-1]["iteration"][-1]) >= self._win_start + self.window:
            m = concat(self._win)
            a, b = self._win_start, self._win_start + self.window
            out += self._window_findings(m, a, b)
            rest = m["iteration"] >= b
            self._win = [{k: v[rest] for k, v in m.items()}] if rest.any() else []
            self._win_start = b
        return out

    def _window_findings(self, m: dict, a: int, b: int) -> list[dict]:
        out = []
        v = verdict_from_rows(m, a, b)
        if v["verdict"] != "cannot_say":  # "cannot say" is no news; a verdict is, when it changes
            if v["verdict"] != self._verdict:
                out.append(v)
            self._verdict = v["verdict"]
        plateau = bool(plateaus(m, [(a, b)]))
        if plateau and not self._plateau:
            out += plateaus(m, [(a, b)])
        self._plateau = plateau
        return out

    def _remember(self, m: dict, y: np.ndarray) -> None:
        s = smoothed(y)
        leave = max(0, len(y) - CONTEXT_ROWS)
        if leave:
            fin = s[:leave][np.isfinite(s[:leave])]
            if len(fin):
                self._best = min(self._best, float(fin.min()))
        self._tail = {k: v[leave:] for k, v in m.items()}


class LiveFindings:
    """The recorder's side of live diagnosis (see the module docstring).

    Parameters
    ----------
    writer : the recording's writer (findings become events), or None
    alpha_grid : the probe's alphas
    emit : called with each finding (the recorder's ``emit_finding``, which calls the ``on_finding`` callbacks)
    """

    def __init__(self, writer, alpha_grid, emit=None):
        self.writer = writer
        self.detector = LiveDetector(alpha_grid)
        self.emit = emit
        self.found: list[dict] = []
        self.cpu_s = 0.0
        self.rows = 0
        self._last = time.monotonic()
        self._off = False

    def add(self, iteration: int, phi, alphas=None, **cols) -> None:
        """One recorded row; runs the detector after LIVE_EVERY_ROWS rows or LIVE_EVERY_S seconds."""
        if self._off:
            return
        t0 = time.thread_time()
        try:
            self.detector.add(iteration, phi, alphas, **cols)
            self.rows += 1
            now = time.monotonic()
            if len(self.detector) >= LIVE_EVERY_ROWS or now - self._last >= LIVE_EVERY_S:
                self._last = now
                self._emit(self.detector.detect())
        except Exception as exc:  # the diagnosis must never stop a training
            self._off = True
            log.warning("gda_gl live diagnosis switched off: %s: %s (training goes on)", type(exc).__name__, exc)
        finally:
            self.cpu_s += time.thread_time() - t0

    def finish(self) -> None:
        """Run the detector over the last rows and record its CPU time (at the recorder's close; once)."""
        if self._off:
            return
        self._off = True
        t0 = time.thread_time()
        try:
            self._emit(self.detector.close())
        except Exception as exc:
            log.warning("gda_gl live diagnosis failed at the end: %s: %s", type(exc).__name__, exc)
        self.cpu_s += time.thread_time() - t0
        if self.writer is not None and self.rows:
            t = self.timing()
            self.writer.add_event("diagnose-timing", f"live diagnosis: {t['per_step_us']:.1f} us CPU per step "
                                                     f"({t['cpu_s']:.3f} s over {t['rows']} steps)")

    def timing(self) -> dict:
        """``{"cpu_s", "rows", "per_step_us"}``: the detector's CPU time (thread time) so far."""
        return {"cpu_s": self.cpu_s, "rows": self.rows, "per_step_us": 1e6 * self.cpu_s / max(1, self.rows)}

    def _emit(self, found: list[dict]) -> None:
        for f in found:
            self.found.append(f)
            if self.writer is not None:
                self.writer.add_event("finding", json.dumps(f, allow_nan=False),
                                      iteration=f.get("iteration", f.get("start")))
            if self.emit is not None:
                self.emit(f)
