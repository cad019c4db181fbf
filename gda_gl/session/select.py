"""Which runs a command draws: folders of recordings, ``--runs REGEX`` and ``--where 'config.lr<0.1'``.

A sweep is a folder of recordings, as ``tensorboard --logdir`` takes one: :func:`expand_paths` turns
each folder argument into every ``*.gda`` directly in it (sorted by name; sub-folders are not
searched, so a folder of sweeps is not mixed up), files stay as given.  :class:`FolderWatch` tells
which recordings appeared in those folders later (the window and the notebook pick them up).

:func:`select` keeps the runs whose name matches a regular expression and whose hyperparameters
satisfy every condition of a ``--where`` text.  A condition is written in the highlight filter's
grammar (``NAME<VALUE``, ``NAME>=VALUE``, ...; :func:`gda_gl.compose.filters.split_comparison`) over the
hyperparameters of :func:`gda_gl.compose.compare.hyperparameters` (``config.NAME`` for what
``rec.log_config`` stored, ``lr``, ``optimizer``, ...), plus ``=`` and ``!=`` for texts
(``optimizer=SGD``); conditions are joined by commas (all must hold).  Nothing is evaluated: the text
is split at the operator and the value compared as a number (or as a text for ``=`` / ``!=``).

Compute and file listing only; no drawing, no recording is opened here.
"""

from __future__ import annotations

import math
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from recorder.errors import RecordingError

from gda_gl.compose.filters import split_comparison

__all__ = ["RUN_SUFFIX", "WHERE_HELP", "Condition", "expand_paths", "parse_where", "matches", "select", "choose",
           "filter_text", "FolderWatch"]

#: the file name ending of recordings a folder argument stands for
RUN_SUFFIX = ".gda"
#: operators of a --where condition: the highlight filter's comparisons, then equality (texts too)
WHERE_OPS = ("<=", ">=", "!=", "==", "<", ">", "=")
WHERE_HELP = "NAME<V, NAME>=V, NAME=TEXT, NAME!=TEXT over config.NAME, lr, optimizer, ...; commas join conditions"


def _is_dir(p: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(p).st_mode)
    except OSError:
        return False


def _folder_runs(folder: Path) -> list[str]:
    """Every ``*.gda`` file directly in ``folder`` (sorted); sidecar files (``-wal``) are not recordings."""
    try:
        names = sorted(e.name for e in os.scandir(folder) if e.name.endswith(RUN_SUFFIX) and not e.is_dir())
    except OSError as exc:
        raise RecordingError(folder, f"cannot list the folder ({exc.strerror or exc})") from None
    return [str(folder / n) for n in names]


def expand_paths(paths, allow_empty: bool = False) -> list[str]:
    """The recordings named by ``paths``: a folder stands for every ``*.gda`` directly in it, a file for itself.

    Parameters
    ----------
    paths : files and folders, in the order given (a file named twice is kept once)
    allow_empty : a folder without recordings is fine (the window and the notebook wait for runs to appear)

    Raises
    ------
    RecordingError : a folder holds no recording (unless ``allow_empty``)
    """
    out: list[str] = []
    for p in paths:
        path = Path(os.fspath(p))
        if not _is_dir(path):
            out.append(str(path))
            continue
        found = _folder_runs(path)
        if not found and not allow_empty:
            raise RecordingError(path, f"is a folder that holds no recordings (*{RUN_SUFFIX})")
        out += found
    return list(dict.fromkeys(out))


def folders_of(paths) -> list[Path]:
    """The folder arguments among ``paths``."""
    return [Path(os.fspath(p)) for p in paths if _is_dir(Path(os.fspath(p)))]


@dataclass(frozen=True)
class Condition:
    """One ``--where`` condition: ``name op value`` (value a float, or a text for ``=`` / ``!=``)."""

    name: str
    op: str
    value: float | str

    def holds(self, params: dict) -> bool:
        """Whether a run's hyperparameters satisfy the condition (a missing hyperparameter never does)."""
        if self.name not in params:
            return False
        v = params[self.name]
        if isinstance(self.value, str):
            same = str(v) == self.value
            return same if self.op in ("=", "==") else not same
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            return self.op == "!="  # a text is never equal to, less or more than a number
        return {"<": v < self.value, ">": v > self.value, "<=": v <= self.value, ">=": v >= self.value,
                "=": v == self.value, "==": v == self.value, "!=": v != self.value}[self.op]


def _condition(part: str, text: str) -> Condition:
    try:
        split = split_comparison(part, WHERE_OPS, numeric=False)
    except ValueError as exc:
        raise ValueError(f"--where {text[:80]!r}: {exc}") from None
    if split is None or not split[0]:
        raise ValueError(f"--where {text[:80]!r}: {part!r} is not a condition ({WHERE_HELP})")
    name, op, raw = split
    try:
        value: float | str = float(raw)
    except ValueError:
        if op not in ("=", "==", "!="):
            raise ValueError(f"--where {text[:80]!r}: {raw!r} is not a number") from None
        value = raw
    if isinstance(value, float) and math.isnan(value):
        raise ValueError(f"--where {text[:80]!r}: the value is NaN")
    return Condition(name, op, value)


def parse_where(text: str | None) -> list[Condition]:
    """The conditions of a ``--where`` text (empty: none).

    Raises
    ------
    ValueError : one line naming the part that is not a condition
    """
    if not text or not text.strip():
        return []
    return [_condition(part, text) for part in text.split(",") if part.strip()]


def matches(params: dict, conditions: list[Condition]) -> bool:
    """Whether a run's hyperparameters satisfy every condition."""
    return all(c.holds(params) for c in conditions)


def _name_pattern(regex: str | None):
    if not regex:
        return None
    try:
        return re.compile(regex)
    except re.error as exc:
        raise ValueError(f"--runs {regex[:80]!r}: not a regular expression ({exc})") from None


def select(names: list[str], paths: list[str], params: list[dict], regex: str | None = None,
           where: str | None = None) -> list[int]:
    """Indices of the runs kept by ``--runs REGEX`` (searched in the run's name and its file name) and
    ``--where`` (every condition over its hyperparameters).

    Raises
    ------
    ValueError : a bad expression or condition, a hyperparameter no run has, or no run left (one line each)
    """
    pattern = _name_pattern(regex)
    conds = parse_where(where)
    known = set().union(*params) if params else set()
    for c in conds:
        if c.name not in known:
            have = ", ".join(sorted(known))[:300]
            raise ValueError(f"--where: no run has the hyperparameter {c.name!r} (they have: {have})")
    keep = [i for i, (n, p, h) in enumerate(zip(names, paths, params))
            if (pattern is None or pattern.search(n) or pattern.search(Path(p).name)) and matches(h, conds)]
    if not keep and (pattern is not None or conds):
        what = " and ".join(s for s in (f"--runs {regex!r}" if regex else "", f"--where {where!r}" if conds else "")
                            if s)
        raise ValueError(f"{what}: no run of {len(names)} matches")
    return keep


class FolderWatch:
    """Recordings that appear in watched folders after they were first listed, kept by the same ``--runs`` /
    ``--where`` as the runs opened first.

    Parameters
    ----------
    folders : the folders to watch
    known : the recordings already open (their paths)
    regex, where : the selection (:func:`select`); a new file that cannot be read yet is tried again later
    """

    def __init__(self, folders, known=(), regex: str | None = None, where: str | None = None):
        self.folders = [Path(f) for f in folders]
        self._known = {os.path.realpath(p) for p in known}
        self.regex, self.where = regex, where

    def _accepted(self, path: str) -> bool | None:
        """Whether a new recording is selected; None when it cannot be read yet."""
        if not self.regex and not self.where:
            return True
        try:
            return bool(choose([path], self.regex, self.where))
        except ValueError:
            return False
        except (RecordingError, OSError):
            return None

    def poll(self) -> list[str]:
        """New selected ``*.gda`` files since the last call (a folder that cannot be listed now is skipped)."""
        new = []
        for f in self.folders:
            try:
                found = _folder_runs(f)
            except RecordingError:
                continue
            for p in found:
                key = os.path.realpath(p)
                if key in self._known:
                    continue
                ok = self._accepted(p)
                if ok is None:
                    continue
                self._known.add(key)
                if ok:
                    new.append(p)
        return new


def choose(paths: list[str], regex: str | None = None, where: str | None = None) -> list[str]:
    """The recordings among ``paths`` that :func:`select` keeps; each is opened only to read its name and
    metadata (a damaged file raises the reader's one-line RecordingError).

    Raises
    ------
    ValueError : see :func:`select`
    """
    if not regex and not where:
        return list(paths)
    from recorder.reader import Recording

    from gda_gl.compose.compare import hyperparameters

    names, params = [], []
    for p in paths:
        with Recording(p) as rec:
            names.append(rec.name)
            params.append(hyperparameters(rec.run, len(rec.alpha_grid)))
    return [paths[i] for i in select(names, paths, params, regex, where)]


def filter_text(names: list[str], paths: list[str], params: list[dict], text: str | None) -> list[bool]:
    """Which runs a filter box keeps: ``--where`` conditions when the text is made of them (every name a
    hyperparameter some run has: ``config.lr<0.1``), else a regular expression on names and file names;
    an empty text keeps every run.

    Raises
    ------
    ValueError : neither (a bad regular expression), in one line
    """
    if not text or not text.strip():
        return [True] * len(names)
    known = set().union(*params) if params else set()
    try:
        conds = parse_where(text)
    except ValueError:
        conds = []
    plain = all(c.name in known and (not isinstance(c.value, str) or re.fullmatch(r"[\w.+-]+", c.value))
                for c in conds)  # "lr=1$" is a regular expression, "optimizer=SGD" a condition
    if conds and plain:
        return [matches(p, conds) for p in params]
    pattern = _name_pattern(text.strip())
    return [bool(pattern.search(n) or pattern.search(Path(p).name)) for n, p in zip(names, paths)]
