"""Diagnose one recording: read what decides, run the rules, return the run's report.

Two ways to read a run, chosen by its length:

* **rows** (at most :data:`~.thresholds.ROW_PATH_MAX_ROWS` rows): every block is decoded once, in
  order, into the per-row measures of :mod:`.lines` (the phi values themselves are dropped block by
  block); every rule then reads exact per-step numbers.
* **pyramid** (longer runs, :mod:`.scale`): the stored level-of-detail pyramid at the finest level with
  at most :data:`~.thresholds.PYRAMID_MAX_BUCKETS` buckets, plus the rows of the few buckets that hold a
  spike candidate or a learning-rate jump.  Memory and time are bounded by those, not by the run.

A run with nothing to say (no rows, fewer than :data:`MIN_RUN_STEPS` steps, no probed step, no finite
line) raises :class:`NothingToSay` with the one line that says why.
"""

from __future__ import annotations

import numpy as np

from .. import stats
from ..reader import Recording
from .findings import divergence, lr_changes, plateaus, probe_findings
from .lines import concat, line_measures
from .spikes import find_spikes, limit, loss_series
from .stepsize import verdict_from_rows, window_bounds
from .thresholds import MIN_WINDOW_STEPS, ROW_PATH_MAX_ROWS

#: fewer steps than this and a run has nothing to say (one window's worth of lines)
MIN_RUN_STEPS = MIN_WINDOW_STEPS


class NothingToSay(ValueError):
    """A run the diagnosis cannot read anything from; ``str()`` is the one line saying why."""


def check_rows(m: dict[str, np.ndarray]) -> None:
    """Raise :class:`NothingToSay` for a run without enough to read."""
    n = len(m["iteration"])
    if n == 0:
        raise NothingToSay("no steps recorded")
    if n < MIN_RUN_STEPS:
        raise NothingToSay(f"only {n} steps recorded (a verdict needs at least {MIN_RUN_STEPS})")
    probed = m["status"] != stats.STATUS_SKIPPED
    if not probed.any():
        raise NothingToSay("no step was probed (every row is marked skipped)")
    failed = (m["status"] == stats.STATUS_FAILED)
    if failed[probed].all():
        raise NothingToSay("every probe failed: no line was measured")
    if not (np.isfinite(m["phi0"]).any() or np.isfinite(m["factor"]).any()):
        raise NothingToSay("no line has a finite value (all NaN or infinite)")


def _epoch_starts(it: np.ndarray, epoch: np.ndarray) -> np.ndarray:
    return it[1:][np.diff(epoch) != 0]


def from_measures(m: dict[str, np.ndarray], failed_message: str = "") -> dict:
    """The report of a run from its per-row measures (rows path; also the live detector's)."""
    check_rows(m)
    it = m["iteration"]
    probed = max(1, int(np.sum(m["status"] != stats.STATUS_SKIPPED)))
    bounds = window_bounds(int(it[0]), int(it[-1]), _epoch_starts(it, m["epoch"]), len(it) / probed)
    y = loss_series(m)
    div = divergence(it, y)
    calm = [b for b in bounds if div is None or b[1] <= div["start"]]  # no plateau in a blow-up
    found = ([div] if div else []) + plateaus(m, calm) + probe_findings(it, m["status"], failed_message) \
        + lr_changes(it, m["lr"])
    return {"step_size": [verdict_from_rows(m, s, e) for s, e in bounds],
            "spikes": limit(find_spikes(m, before=div["start"] if div else None)),
            "findings": sorted(found, key=lambda f: (f["start"], f["kind"]))}


def read_measures(rec: Recording) -> dict[str, np.ndarray]:
    """Per-row measures of every row, decoded block by block (the rows path)."""
    return concat([line_measures(rec.read_block(b)) for b in rec.block_ids()])


def _failed_message(rec: Recording) -> str:
    ev = rec.events("probe-failed", limit=1) or rec.events("probe-nonfinite", limit=1)
    return ev[0][3] if ev else ""


def diagnose(rec: Recording, *, path: str | None = None) -> dict:
    """The report of one open recording: ``{"run", "step_size", "spikes", "findings"}``.

    Parameters
    ----------
    rec : an open recording
    path : force ``"rows"`` or ``"pyramid"`` (default: by the run's length)

    Raises
    ------
    NothingToSay
        the run has nothing to read (the message says why)
    """
    n = rec.n_iterations()
    if n == 0:
        raise NothingToSay("no steps recorded")
    use_pyramid = path == "pyramid" or (path is None and n > ROW_PATH_MAX_ROWS and rec.has_stored_pyramid())
    if use_pyramid:
        from . import scale

        body = scale.diagnose_pyramid(rec)
    else:
        body = from_measures(read_measures(rec), _failed_message(rec))
    return {"run": rec.name, **body}


def numbered(reports: list[dict]) -> list[tuple[int, int, str, dict]]:
    """Every entry of the reports in the order ``diagnose`` lists them: ``(N, run index, section, entry)``.

    ``N`` counts from 1, first run first; within a run: step-size windows, spikes, findings.
    """
    out = []
    for r, rep in enumerate(reports):
        for section in ("step_size", "spikes", "findings"):
            for entry in rep.get(section, ()):
                out.append((len(out) + 1, r, section, entry))
    return out


def span_of(section: str, entry: dict) -> tuple[int, int]:
    """The iterations ``[start, stop)`` an entry is about (a spike: its step and the one before)."""
    if section == "spikes":
        k = int(entry["iteration"])
        return k - 1, k + int((entry.get("evidence") or {}).get("steps", 1))
    return int(entry["start"]), int(entry["stop"])
