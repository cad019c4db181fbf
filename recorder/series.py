"""Logged scalar series: ``rec.log``, ``rec.log_dict``, ``rec.log_config``, and the one import for the rest.

A *series* is a scalar logged at iterations (validation loss every 1,000 steps, accuracy, anything).
The per-iteration statistics ``train_loss``, ``lr`` and ``grad_norm`` are *built-in* series: the
same read API answers them from the recording's blocks and stored pyramid.

The implementation is split along its seams (this module re-exports their public names):

* :mod:`recorder.seriesfmt`: names and values, the per-series pyramid, the block and chunk codecs
  (compute only, shared by both sides);
* :mod:`recorder.serieslog`: the writer's side, :class:`SeriesLog` (buffering, staging in the
  writer's commit);
* :mod:`recorder.seriesread`: the reader's side (the catalogue of names, whole and windowed reads,
  their checks and budget, ``gda-gl check`` and ``gda-gl upgrade`` of the series);
* this module: the Recorder's side (below).

Bad input (:meth:`SeriesLog.log` raises, :func:`log_value` turns it into one warning and one event
per series and problem, and training goes on): a value that is not a number or has more than one
element, a name that is empty, longer than :data:`recorder.schema.MAX_SERIES_NAME` characters or
not printable, a step smaller than the series' previous one.  NaN and +-Inf are recorded as such.
A name that is a per-iteration field (``lr``, ``train_loss``, ...) is refused with one line
(:class:`SeriesNameClash`), never stored.  What was already reported is remembered per Recorder in
a :class:`Reported` kept beside it (a weak map: nothing is written into the Recorder).
"""

from __future__ import annotations

import logging
import re
import weakref
from typing import Mapping

from .errors import RecordingError
from .seriesfmt import (BASE, BLOCK_POINTS, BUILTIN_SERIES, CHUNK, FANOUT, FIELDS, MAX_SERIES,  # noqa: F401
                        POINT_BYTES, POINT_DTYPES, RESERVED, SeriesBuckets, SeriesNameClash, SeriesPoints,
                        SeriesPyramid, as_value, bucket_points, check_name, decode_chunk, decode_points,
                        encode_chunk, encode_points, level_counts, merge, point_records, reference_buckets,
                        validate_buckets)
from .serieslog import MAX_BUFFER_POINTS, SeriesLog  # noqa: F401
from .seriesread import (copy_series, read_series, series_names, series_summary, verify_series,  # noqa: F401
                         window, window_names)

log = logging.getLogger(__name__)

__all__ = ["BUILTIN_SERIES", "SeriesNameClash", "SeriesPoints", "SeriesBuckets", "SeriesLog", "SeriesPyramid",
           "check_name", "as_value", "reference_buckets", "series_names", "series_summary", "read_series", "window",
           "copy_series", "verify_series", "log_value", "log_values", "log_config", "framework_name", "Reported"]


def framework_name(name, framework: str):
    """The series name of a metric a framework callback forwards: ``<framework>/<name>`` when ``name`` is a
    built-in statistic's (Lightning's ``train_loss``, the HF Trainer's ``grad_norm``), else ``name``."""
    return f"{framework}/{name}" if isinstance(name, str) and name in RESERVED else name


class Reported:
    """What one Recorder already reported about its series (one warning per series and problem)."""

    def __init__(self):
        self.seen: set = set()

    def first(self, key) -> bool:
        """Whether ``key`` is reported for the first time (and remember it)."""
        if key in self.seen:
            return False
        self.seen.add(key)
        return True


_REPORTED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # Recorder -> Reported


def reported(rec) -> Reported:
    """The :class:`Reported` of Recorder ``rec`` (created at its first problem)."""
    got = _REPORTED.get(rec)
    return got if got is not None else _REPORTED.setdefault(rec, Reported())


def _warn_once(rec, key, message: str) -> None:
    if reported(rec).first(("warn", key)):
        log.warning("%s", message)


def _reject(rec, key: tuple, step, message: str) -> None:
    """One warning and one event per series and problem; later ones are dropped silently."""
    if not reported(rec).first(key):
        return
    log.warning("gda_gl recorder: %s (not recorded; training goes on)", message)
    if rec.writer is not None:
        try:
            rec.writer.add_event("series-rejected", message, iteration=step if isinstance(step, int) else None)
        except Exception:  # never break training
            pass


def log_value(rec, name, value, step=None) -> None:
    """:meth:`recorder.hooks.Recorder.log`: record ``value`` of series ``name`` at ``step`` (default: the
    current iteration, i.e. the number of optimizer steps taken, where the next ``train_loss`` lands).

    Bad input never stops training (``strict=True`` raises instead): see the module docstring.
    """
    if rec.writer is None or getattr(rec, "rank", 0) != 0:
        return
    step = rec.iteration if step is None else step
    try:
        rec.writer.series.log(name, value, step)
    except SeriesNameClash as exc:
        if rec.strict:
            raise
        if reported(rec).first(("clash", name)):
            log.warning("gda_gl recorder: %s", exc)
    except (TypeError, ValueError) as exc:
        if rec.strict:
            raise
        kind = "step" if "backwards" in str(exc) else re.sub(r"\d+", "#", str(exc))  # one per problem
        text = str(exc)
        _reject(rec, (kind, name if isinstance(name, str) else repr(type(name))), step,
                text if text.startswith("series") else f"series {str(name)[:60]!r}: {text}")
    except RecordingError as exc:
        if rec.strict:
            raise
        _warn_once(rec, "write", f"gda_gl recorder: {exc}")


def log_values(rec, values: Mapping, step=None) -> None:
    """:meth:`recorder.hooks.Recorder.log_dict`: :func:`log_value` for every item."""
    step = rec.iteration if step is None else step
    for name, value in dict(values).items():
        log_value(rec, name, value, step)


def config_items(mapping=None, keywords: Mapping | None = None) -> dict:
    """The values of ``rec.log_config(mapping, **keywords)`` as one dict: a mapping (W&B's and Lightning's
    ``{"optimizer.lr": 0.1}``: keys need not be identifiers) and/or keywords, keywords last.

    Raises
    ------
    TypeError : ``mapping`` is not a mapping
    """
    if mapping is not None and not isinstance(mapping, Mapping):
        raise TypeError(f"log_config takes a mapping (dict) and/or keywords, got {type(mapping).__name__}")
    return {**dict(mapping or {}), **dict(keywords or {})}


def log_config(rec, values: Mapping | None = None, keywords: Mapping | None = None) -> None:
    """:meth:`recorder.hooks.Recorder.log_config`: hyperparameters into ``meta.run["config"]``, from a mapping
    (keys need not be identifiers: ``{"optimizer.lr": 0.1}``) and/or keywords (:func:`config_items`)."""
    if rec.writer is None or getattr(rec, "rank", 0) != 0:
        return
    try:
        rec.writer.series.config(config_items(values, keywords))
    except (TypeError, ValueError, RecordingError) as exc:
        if rec.strict:
            raise
        _warn_once(rec, "config", f"gda_gl recorder: config not recorded ({exc})")
