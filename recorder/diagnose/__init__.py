"""What the measured lines say about a run: step-size verdicts, spikes and their causes, other findings.

Recorder-side (numpy only; imports nothing from ``gda_gl``), so the same code runs in ``gda-gl
diagnose``, in the viewer's findings list and live inside training (:mod:`.live`).

* :mod:`.thresholds`: every threshold, named once, with the reason for its value.
* :mod:`.lines`: what each step's line says (its lowest measured point, flat / noisy, phi(0), phi(taken)).
* :mod:`.stepsize`: windows and their verdicts; :mod:`.spikes`: spikes and causes;
  :mod:`.findings`: divergence, plateaus, failed/skipped probes, learning-rate changes.
* :mod:`.engine`: one recording -> its report (rows for runs up to a few million steps, the pyramid
  beyond, :mod:`.scale`); :mod:`.report`: the JSON and the readable table; :mod:`.live`: the
  detector that runs after each committed block of a training.

The report of a run is ``{"run": NAME, "step_size": [...], "spikes": [...], "findings": [...]}``
(see :func:`diagnose_paths`).
"""

from __future__ import annotations

from .engine import NothingToSay, diagnose, numbered, span_of

__all__ = ["NothingToSay", "diagnose", "diagnose_paths", "numbered", "span_of"]


def diagnose_paths(paths, path: str | None = None) -> tuple[list[dict], list[str]]:
    """Reports of several recordings, in the order given, and one line per run with nothing to say.

    Parameters
    ----------
    paths : recording files
    path : force ``"rows"`` or ``"pyramid"`` reading (default: by length)

    Returns
    -------
    (reports, problems) : the reports of the runs that had something to say; ``"FILE: why"`` lines

    Raises
    ------
    recorder.errors.RecordingError
        a file is missing, damaged or not a recording (one line)
    """
    from ..reader import Recording

    reports, problems = [], []
    for p in paths:
        with Recording(p) as rec:
            try:
                reports.append(diagnose(rec, path=path))
            except NothingToSay as exc:
                problems.append(f"{p}: nothing to say: {exc}")
    return reports, problems
