"""The recording format (``*.gda``): one SQLite file, schema version 2 (version 1 still read).

This module is the single place the format is documented; the writer, the
reader and the pyramid take every stored name and dtype from here.  What each
statistic *means* (description, aggregation, colour map) is declared once in
:mod:`recorder.stats`, but the registry is not the file format: the columns
and the pyramid layout each schema version stores are frozen below as literal
tuples (:data:`FIELDS_V1`, :data:`FIELDS_V2`, :data:`OPTIONAL_V2`,
:data:`LOD_FIELDS_V2`), so files written by earlier releases keep opening
with the same numbers however the registry grows.

New statistics (the rule)
-------------------------
A statistic added to :data:`recorder.stats.STATISTICS` after schema 2 was
released is an *optional column*; no version bump, no ``upgrade`` needed:

* **Writing.**  A new file stores ``f_<name>`` after the frozen schema-2
  columns (registry order, the registry's dtype) and, when the statistic
  aggregates, its bucket fields after :data:`LOD_FIELDS_V2` in ``meta.lod``.
  Once released, the statistic is pinned in :data:`OPTIONAL_V2` (name, stored
  dtype, default); a test checks that the registry and the pin agree.
* **Reading.**  A reader reads the columns the file has.  The frozen columns
  of the file's version must be there (else "damaged recording").  A known
  statistic the file lacks reads as its *default*: NaN for a float, 0 for an
  integer (both mean "not recorded"), and its pyramid fields as those of a
  run whose every row holds the default.  Columns and pyramid fields this
  release does not know (written by a newer one) are ignored.
* **Appending.**  The writer appends with the file's own columns: statistics
  the file lacks are not stored for the new rows (they read as the default),
  and a file holding columns this release does not know is refused for
  appending in one line (its newer writer would have filled them).
* Changing a frozen dtype, or removing or renaming a stored field, is a new
  schema version with a ``gda-gl upgrade`` path; never edit a frozen tuple.

Adding a statistic therefore touches :mod:`recorder.stats` (its entry),
the code that computes it (:mod:`recorder.linestats` or the recorder), and
this module's :data:`OPTIONAL_V2` pin when it is released.

File identity
-------------
``PRAGMA application_id`` is :data:`APPLICATION_ID` (``0x47444131``, "GDA1");
``PRAGMA user_version`` is the schema version (:data:`SCHEMA_VERSION`).  A
reader refuses files with another application id, and versions newer than the
one it knows.

Tables
------
``meta(key TEXT PRIMARY KEY, value TEXT)``
    JSON values.  Keys: ``run`` (run metadata, below), ``alpha_grid`` (list of
    float, the probe's alphas in units of the step, alpha = 1 is the step
    taken), ``created_by`` (gda_gl version), ``writer`` (who holds the write
    lock: pid, host, process start token, heartbeat, state ``open``/``closed``).

``blocks``
    Iterations in blocks of up to ``block_rows`` rows (a few thousand), one row
    per block, columnar inside: every per-iteration field is one BLOB holding
    ``n`` values (stored dtype in :data:`FIELDS_V2`).  ``phi`` is ``n x K`` float32,
    row-major.  Trial points are ragged: ``trial_count`` (int32, per
    iteration) says how many of the concatenated ``trial_*`` arrays belong to
    each iteration, in order.  Columns: ``id INTEGER PRIMARY KEY,
    first_iteration, last_iteration, n``, then one BLOB per field (names from
    :func:`block_columns`: the frozen fields of the version, the optional
    statistics the writer knew, then :data:`PHI_TRIAL_COLUMNS`).  The
    newest block may be rewritten with more rows
    while a writer appends (it grows until full); rows once committed never
    change.

    * Version 2 (gda_gl 0.2 and later): each BLOB is a Zstandard frame (level 1) of the byte-shuffled array
      (see :mod:`recorder.colcodec`); statistics
      that need no more are float32 (:data:`FIELDS_V2`).  Lossless: NaN
      payloads and +-Inf round-trip bit-exactly.
    * Version 1: each BLOB is the raw little-endian array, with the dtypes of
      :data:`FIELDS_V1` (all floats float64).

``lod`` (version 2 only): the level-of-detail pyramid (:mod:`recorder.pyramid`)
    ``lod(level INTEGER, chunk INTEGER, n INTEGER, first_iteration INTEGER,
    last_iteration INTEGER, data BLOB, PRIMARY KEY(level, chunk))``.  Level
    ``l`` buckets ``64 * 4**l`` consecutive rows; chunk ``c`` of a level holds
    its buckets ``[4096 c, 4096 (c + 1))``; ``data`` is a packed column set
    (:func:`recorder.colcodec.pack_columns`) of the fields listed in
    ``meta.lod`` (:data:`LOD_FIELDS_V2`, then those of optional statistics),
    ``n`` values each.  The top level
    has one bucket: the whole-run summary.  The writer updates the newest
    chunk of every level in the same transaction as the blocks, so the
    pyramid always describes exactly the committed rows.

``events(id INTEGER PRIMARY KEY, iteration INTEGER, wall_time REAL, kind TEXT, message TEXT)``
    Probe failures with their message, writer notes.

``series``, ``series_blocks``, ``series_lod`` (optional tables, gda_gl 0.3): logged scalars
    What ``rec.log(name, value, step)`` records (:mod:`recorder.series`): validation loss, accuracy,
    any scalar, at an iteration, sparse or dense, with its wall time.

    * ``series(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)``: one row per series; a name is
      1..:data:`MAX_SERIES_NAME` printable characters and never a per-iteration field's name
      (:data:`FIELDS_V2`, :data:`OPTIONAL_V2`: those are built-in series, read from ``blocks``/``lod``).
    * ``series_blocks(id INTEGER PRIMARY KEY, series INTEGER, first_iteration, last_iteration, n, data
      BLOB)``: the points of one series in blocks of up to :data:`SERIES_BLOCK_POINTS`, ``data`` a
      packed column set (:func:`recorder.colcodec.pack_columns`) of :data:`SERIES_POINT_FIELDS`, ``n``
      values each; iterations never decrease within a series (equal ones are allowed: several values
      logged at one step); values are float64, NaN and +-Inf stored as such.  Like ``blocks``, the
      newest block of a series grows (is rewritten) until full.  Index ``series_blocks_by_series``
      ``(series, id, first_iteration, last_iteration, n)`` covers the block headers, so a reader lists a
      series' blocks without touching their data (48 ms cold for 2,442 blocks without it, 1e7 points).
    * ``series_lod(series, level, chunk, n, first_iteration, last_iteration, data BLOB,
      PRIMARY KEY(series, level, chunk))``: each series' level-of-detail pyramid, the geometry of
      ``lod`` (:data:`LOD_BASE_ROWS` points per level-0 bucket, :data:`LOD_FANOUT` per parent,
      :data:`LOD_CHUNK` buckets per chunk) over the series' *points* (not iterations), bucket fields
      :data:`SERIES_LOD_FIELDS` (min, max, sum of the finite values and their count, first and last
      value as recorded, first and last iteration).  The level counts follow from the point count.

    All three are written in the same transaction as the blocks, so a live reader sees a series
    exactly as far as it was committed and ``kill -9`` loses at most the uncommitted tail.

    Why columnar blocks and not one row per point: measured at 1e7 dense points (one commit per
    100,000 points, WAL), a ``(name, iteration, wall_time, value)`` WITHOUT ROWID table took 32 s to
    write and 310 MB, a 1 % range read 97 ms; 4096-point packed blocks took 0.8 s, 55 MB and 3.3 ms.

    Compatibility (the rule for optional tables): a new file is created with the three tables
    (empty until something is logged); a reader of this release treats a file without them (every
    earlier file) as one with no logged series, and appending to such a file creates them in the first
    commit that writes a series.  The previous release (0.2, which knows none of these tables) reads a
    file with series exactly as before: its reader refuses views, triggers and virtual tables but
    ignores plain tables and indexes it does not require, so the series are simply not shown.  It
    cannot *append* to such a file (its writer requires every table to be one it declares), as it
    already cannot append to any file of this release (``f_micro_batches``); the refusal is one line.

Per-row alpha grids (optional column ``alpha``, gda_gl 0.3): the adaptive probe
    A recording of ``ProbeConfig(mode="adaptive")`` (:mod:`recorder.adaptive`) measures each step at
    its own alphas.  Its ``blocks`` table has one more BLOB column after :data:`PHI_TRIAL_COLUMNS`,
    :data:`ROW_ALPHA_COLUMN` (``alpha``): ``n x K`` float64 (:data:`ROW_ALPHA_DTYPE`), row-major, the
    same layout as ``phi``: ``phi[i, j]`` is the loss at ``alpha[i, j]``.  Each row holds its measured
    alphas finite and strictly increasing, then NaN up to K (a step that used fewer points, or was not
    probed: all NaN), and ``phi`` is NaN wherever ``alpha`` is.  K is the probe's budget.

    * ``meta.alpha_grid`` of such a file is the object ``{"nominal": [...], "per_row": "alpha"}``
      (:func:`grid_meta`): ``nominal`` is the budget's nominal grid ``linspace(0, alpha_max, K)`` (its
      length is K, its ends the interval every row lies in; no row need hold its other values).  A
      list there means a shared grid.  The previous release (0.2) expects a list, so it refuses such a
      file ("alpha grid must be a list of numbers") instead of drawing every row at the nominal grid.
    * A reader of this release reads the column when the file has it
      (:attr:`recorder.codec.Iterations.row_alphas`, :meth:`recorder.codec.Iterations.alphas_of_rows`);
      a file without it (every earlier file, and any grid probe's) reads ``meta.alpha_grid`` for every
      row.  A file whose column and ``meta.alpha_grid`` disagree is damaged.
    * The writer stores the column when created with ``row_alphas=True``; appending keeps the file's
      choice (a shared-grid file never gets the column, nor loses it).

Version 1 files (written by gda_gl 0.1) are opened read-only and indexed in
memory when opened (a streaming pass over their blocks); they are never
modified.  ``gda-gl upgrade OLD.gda NEW.gda`` writes a version-2 copy with a
stored pyramid.

Run metadata (``meta.run``)
---------------------------
``model`` (summary text), ``parameter_count``, ``optimizer`` (class name),
``hyperparameters`` (dict), ``probe`` (what data the probe uses, preset,
strategy), ``seed``, ``versions`` (library versions), ``host``,
``start_time`` (unix seconds), ``tags`` (free-form dict), and anything else a
caller adds.

Per-iteration fields
--------------------
Stored: :data:`FIELDS_V1`, :data:`FIELDS_V2` + :data:`OPTIONAL_V2`.  Their
meaning: :data:`recorder.stats.STATISTICS` (name, in-memory dtype,
description, how each aggregates).  Alphas are in units of the update direction
``d_k = w_{k+1} - w_k``; ``taken_alpha`` is 1.0 when the step was taken along
``d_k`` and ``native_step`` is the optimizer's own step length (the learning
rate, or the line search's accepted step along its search direction).
Line statistics (``min_alpha`` ... ``cockpit_alpha``) are computed by
:mod:`recorder.linestats`.

No pickle anywhere: everything is SQL scalars, JSON and numpy bytes.
"""

from __future__ import annotations

import math

import numpy as np

from . import stats as _stats
from .stats import (CLASS_NAMES, CLASS_NEAR_OPTIMAL, CLASS_OVERSHOOT, CLASS_UNDERSHOOT,  # noqa: F401
                    CLASS_UNKNOWN, STATUS_FAILED, STATUS_NAMES, STATUS_NONFINITE, STATUS_OK, STATUS_SKIPPED)

SCHEMA_VERSION = 2
#: versions this release reads
READABLE_VERSIONS = (1, 2)
APPLICATION_ID = 0x47444131  # "GDA1"

# --------------------------------------------------------------------------- frozen: never edit
# These tuples are the bytes of files people have.  A new statistic is an optional column (module docstring).

#: (name, stored dtype) of the per-iteration fields of schema version 1, in column order.
FIELDS_V1: tuple[tuple[str, str], ...] = (
    ("iteration", "<i8"), ("epoch", "<i4"), ("batch", "<i8"), ("taken_alpha", "<f8"), ("native_step", "<f8"),
    ("train_loss", "<f8"), ("step_norm", "<f8"), ("grad_norm", "<f8"), ("lr", "<f8"), ("wall_time", "<f8"),
    ("status", "<i1"), ("ls_evals", "<i4"), ("min_alpha", "<f8"), ("min_phi", "<f8"), ("efficiency", "<f8"),
    ("step_class", "<i1"), ("curvature", "<f8"), ("slope0", "<f8"), ("cockpit_alpha", "<f8"),
)
#: (name, stored dtype) of the per-iteration fields every schema-2 file stores, in column order.
FIELDS_V2: tuple[tuple[str, str], ...] = (
    ("iteration", "<i8"), ("epoch", "<i4"), ("batch", "<i8"), ("taken_alpha", "<f8"), ("native_step", "<f8"),
    ("train_loss", "<f4"), ("step_norm", "<f4"), ("grad_norm", "<f4"), ("lr", "<f8"), ("wall_time", "<f8"),
    ("status", "<i1"), ("ls_evals", "<i4"), ("min_alpha", "<f4"), ("min_phi", "<f4"), ("efficiency", "<f4"),
    ("step_class", "<i1"), ("curvature", "<f4"), ("slope0", "<f4"), ("cockpit_alpha", "<f4"),
)
#: Optional statistic columns of schema 2, released in this order: (name, stored dtype, default when absent).
OPTIONAL_V2: tuple[tuple[str, str, float | int], ...] = (
    ("micro_batches", "<i4", 0),  # gda_gl 0.3; earlier schema-2 files lack it
    ("samples", "<i8", 0),  # gda_gl 0.4 (the samples x axis); earlier files lack it
)
#: The pyramid's geometry in schema 2 (``meta.lod``): rows per level-0 bucket, buckets per parent, per chunk.
LOD_BASE_ROWS, LOD_FANOUT, LOD_CHUNK = 16, 4, 4096
#: (name, stored dtype, reduction) of the bucket fields every stored schema-2 pyramid holds, in storage order.
LOD_FIELDS_V2: tuple[tuple[str, str, str], ...] = (
    ("rows", "<i4", "sum"), ("first_it", "<i8", "first"), ("last_it", "<i8", "last"),
    ("env_lo", "<f4", "min"), ("env_hi", "<f4", "max"), ("cl_lo", "<f4", "min"), ("cl_hi", "<f4", "max"),
    ("cl_first", "<f4", "first"), ("cl_last", "<f4", "last"), ("epoch_first", "<i4", "first"),
    ("epoch_last", "<i4", "last"), ("batch_changes", "<i4", "sum"), ("searched", "<i4", "sum"),
    ("trials", "<i4", "sum"), ("loose_ends", "<i4", "sum"),
    *((f"{_s}:{_a}", "<i4" if _a == "count" else "<f8", "sum" if _a in ("sum", "count") else _a)
      for _s in ("train_loss", "step_norm", "grad_norm", "lr", "wall_time", "ls_evals", "min_alpha", "min_phi",
                 "efficiency", "curvature", "slope0", "cockpit_alpha")
      for _a in ("min", "max", "sum", "count")),
    ("status:0", "<i4", "sum"), ("status:1", "<i4", "sum"), ("status:2", "<i4", "sum"), ("status:3", "<i4", "sum"),
    ("step_class:0", "<i4", "sum"), ("step_class:1", "<i4", "sum"), ("step_class:2", "<i4", "sum"),
    ("step_class:3", "<i4", "sum"),
)
#: Logged series (optional tables, gda_gl 0.3; module docstring): (name, stored dtype) of a block's columns.
SERIES_POINT_FIELDS: tuple[tuple[str, str], ...] = (("iteration", "<i8"), ("wall_time", "<f8"), ("value", "<f8"))
#: (name, stored dtype, reduction) of a series' bucket fields, in storage order.
SERIES_LOD_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("rows", "<i4", "sum"), ("finite", "<i4", "sum"), ("first_it", "<i8", "first"), ("last_it", "<i8", "last"),
    ("min", "<f8", "min"), ("max", "<f8", "max"), ("sum", "<f8", "sum"), ("first", "<f8", "first"),
    ("last", "<f8", "last"),
)
#: points per full series block; longest series name (characters)
SERIES_BLOCK_POINTS, MAX_SERIES_NAME = 4096, 200
#: the dtypes and reductions a stored pyramid field may declare
LOD_DTYPES = ("<i4", "<i8", "<f4", "<f8")
LOD_OPS = ("sum", "min", "max", "first", "last")

PHI_DTYPE = np.dtype("<f4")

#: Ragged line-search trial points, concatenated over the iterations of a block.
TRIAL_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("alpha", "<f8", "trial step in units of d_k"),
    ("loss", "<f8", "loss at the trial point"),
    ("slope", "<f8", "phi'(alpha) at the trial point, NaN when unknown"),
    ("order", "<i4", "evaluation order within the line search, from 0"),
)
TRIAL_DTYPES: dict[str, np.dtype] = {name: np.dtype(dt) for name, dt, _ in TRIAL_FIELDS}
TRIAL_COUNT_DTYPE = np.dtype("<i4")
#: the BLOB columns after the per-iteration fields, in every version
PHI_TRIAL_COLUMNS: tuple[str, ...] = ("phi", "trial_count") + tuple(f"t_{name}" for name, _, _ in TRIAL_FIELDS)
#: the optional per-row alpha column of ``blocks`` (adaptive probes), after :data:`PHI_TRIAL_COLUMNS`
ROW_ALPHA_COLUMN = "alpha"
ROW_ALPHA_DTYPE = np.dtype("<f8")

# --------------------------------------------------------------------------- derived from the registry
# What this release holds in memory (and writes to new files), from recorder.stats.

#: (name, little-endian dtype, description) of every per-iteration field this release knows, in memory.
ITER_FIELDS: tuple[tuple[str, str, str], ...] = tuple((s.name, s.dtype, s.description) for s in _stats.STATISTICS)
ITER_DTYPES: dict[str, np.dtype] = {name: np.dtype(dt) for name, dt, _ in ITER_FIELDS}
_DESCRIPTION = {name: desc for name, _, desc in ITER_FIELDS}
#: the per-iteration field names of schema version 1, in their order (later fields read as their default)
V1_NAMES = tuple(n for n, _ in FIELDS_V1)
#: (name, stored dtype, description) of the fields of schema version 1
ITER_FIELDS_V1: tuple[tuple[str, str, str], ...] = tuple((n, d, _DESCRIPTION.get(n, "")) for n, d in FIELDS_V1)
ITER_DTYPES_V1: dict[str, np.dtype] = {name: np.dtype(dt) for name, dt in FIELDS_V1}
#: Numeric fields a viewer may colour by or filter on.
STAT_FIELDS = tuple(s.name for s in _stats.STATISTICS if s.aggregate is not None)
_CORE_V2 = frozenset(n for n, _ in FIELDS_V2)


def _default_of(dtype: np.dtype) -> float | int:
    return math.nan if np.dtype(dtype).kind == "f" else 0


def optional_fields() -> tuple[tuple[str, np.dtype, float | int], ...]:
    """(name, stored dtype, default) of the optional schema-2 statistics this release knows, in column order.

    The pinned ones (:data:`OPTIONAL_V2`) first, with their pinned dtype and default; then any statistic of
    the registry that is in neither :data:`FIELDS_V2` nor the pin (not yet released), with the registry's
    dtype and the default of its kind.
    """
    known = {s.name: s for s in _stats.STATISTICS}
    out = [(n, np.dtype(d), dflt) for n, d, dflt in OPTIONAL_V2 if n in known]
    pinned = {n for n, _, _ in OPTIONAL_V2}
    out += [(s.name, np.dtype(s.dtype), _default_of(s.dtype)) for s in _stats.STATISTICS
            if s.name not in _CORE_V2 and s.name not in pinned]
    return tuple(out)


def field_default(name: str) -> float | int:
    """The value a field reads as in a file that does not store it (NaN for floats, 0 for integers)."""
    for n, _, dflt in optional_fields():
        if n == name:
            return dflt
    return _default_of(ITER_DTYPES.get(name, np.dtype("<f8")))


def stored_fields(version: int = SCHEMA_VERSION, optional=None) -> tuple[tuple[str, np.dtype], ...]:
    """(name, stored dtype) of the per-iteration BLOB columns of a file, in column order.

    Parameters
    ----------
    version : the file's schema version
    optional : names of the optional statistics the file stores (schema 2; default: every one this release
        knows, what it writes to a new file); names this release does not know are left out
    """
    if version < 2:
        return tuple((n, np.dtype(d)) for n, d in FIELDS_V1)
    opt = optional_fields()
    if optional is not None:
        have = set(optional)
        opt = tuple(o for o in opt if o[0] in have)
    return tuple((n, np.dtype(d)) for n, d in FIELDS_V2) + tuple((n, d) for n, d, _ in opt)


def block_columns(version: int = SCHEMA_VERSION, optional=None, row_alphas: bool = False) -> list[str]:
    """SQL column names of the BLOB columns of ``blocks`` (arguments as for :func:`stored_fields`), in order;
    ``row_alphas``: with the per-row alpha column (:data:`ROW_ALPHA_COLUMN`) last."""
    cols = [f"f_{name}" for name, _ in stored_fields(version, optional)] + list(PHI_TRIAL_COLUMNS)
    return cols + [ROW_ALPHA_COLUMN] if row_alphas and version >= 2 else cols


def has_row_alphas(columns) -> bool:
    """Whether a file's ``blocks`` column names include the per-row alpha column."""
    return ROW_ALPHA_COLUMN in {str(c) for c in columns}


def grid_meta(alpha_grid, row_alphas: bool):
    """The ``meta.alpha_grid`` value of a new file: the grid as a list, or for per-row alphas the object
    ``{"nominal": [...], "per_row": "alpha"}`` (see "Per-row alpha grids" above)."""
    grid = [float(a) for a in alpha_grid]
    return {"nominal": grid, "per_row": ROW_ALPHA_COLUMN} if row_alphas else grid


def parse_grid_meta(value) -> tuple[object, bool]:
    """(the grid's values, whether rows store their own alphas) of a stored ``meta.alpha_grid`` value.

    Raises
    ------
    ValueError
        an object that is not ``{"nominal": [...], "per_row": "alpha"}``.
    """
    if not isinstance(value, dict):
        return value, False
    if set(value) != {"nominal", "per_row"} or value.get("per_row") != ROW_ALPHA_COLUMN:
        raise ValueError("alpha grid object must be {'nominal': [...], 'per_row': 'alpha'}")
    return value["nominal"], True


def required_block_columns(version: int) -> tuple[str, ...]:
    """The BLOB columns every file of ``version`` has (the frozen ones; optional statistics may be absent)."""
    return tuple(block_columns(version, optional=()))


def optional_in(columns) -> tuple[str, ...]:
    """The optional statistics this release knows among a file's ``blocks`` column names, in column order."""
    have = set(columns)
    return tuple(n for n, _, _ in optional_fields() if f"f_{n}" in have)


def unknown_in(columns) -> tuple[str, ...]:
    """The ``f_*`` columns of a schema-2 file this release does not know (written by a newer one)."""
    known = set(block_columns(2))
    return tuple(c for c in columns if str(c).startswith("f_") and c not in known)


def lod_layout(bucket_fields) -> dict:
    """``meta.lod`` for a pyramid of ``bucket_fields`` ((name, dtype, reduction), frozen ones first)."""
    return {"base_rows": LOD_BASE_ROWS, "fanout": LOD_FANOUT, "chunk": LOD_CHUNK,
            "fields": [[n, np.dtype(d).str, op] for n, d, op in bucket_fields]}


def stored_lod_fields(meta_lod, bucket_fields) -> tuple[tuple[str, np.dtype, str], ...] | None:
    """The bucket fields a stored pyramid holds, in storage order, or None when this release cannot use it.

    Usable: the schema-2 geometry, :data:`LOD_FIELDS_V2` first and unchanged, then any well-formed extra
    fields; an extra field this release knows (``bucket_fields``) must have its dtype and reduction.
    Fields it does not know are returned too (the decoder skips them).
    """
    if not isinstance(meta_lod, dict) or (meta_lod.get("base_rows"), meta_lod.get("fanout"),
                                          meta_lod.get("chunk")) != (LOD_BASE_ROWS, LOD_FANOUT, LOD_CHUNK):
        return None
    fields = meta_lod.get("fields")
    if not isinstance(fields, list) or not len(LOD_FIELDS_V2) <= len(fields) <= 4096:
        return None
    out = []
    for f in fields:
        if not (isinstance(f, list) and len(f) == 3 and all(isinstance(x, str) for x in f)
                and f[1] in LOD_DTYPES and f[2] in LOD_OPS):
            return None
        out.append((f[0], f[1], f[2]))
    if tuple(out[:len(LOD_FIELDS_V2)]) != LOD_FIELDS_V2 or len({f[0] for f in out}) != len(out):
        return None
    known = {n: (np.dtype(d).str, op) for n, d, op in bucket_fields}
    if any(n in known and known[n] != (d, op) for n, d, op in out):
        return None
    return tuple((n, np.dtype(d), op) for n, d, op in out)


def create_statements(optional=None, row_alphas: bool = False) -> list[str]:
    """The SQL that creates an empty recording of the current schema version (``optional`` as for
    :func:`stored_fields`: the columns an existing file would have, to compare it with; ``row_alphas``:
    with the per-row alpha column)."""
    blob_cols = ",\n    ".join(f"{c} BLOB NOT NULL" for c in block_columns(SCHEMA_VERSION, optional, row_alphas))
    return [
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        f"""CREATE TABLE blocks (
    id INTEGER PRIMARY KEY,
    first_iteration INTEGER NOT NULL,
    last_iteration INTEGER NOT NULL,
    n INTEGER NOT NULL,
    {blob_cols}
)""",
        "CREATE TABLE lod (level INTEGER NOT NULL, chunk INTEGER NOT NULL, n INTEGER NOT NULL, "
        "first_iteration INTEGER NOT NULL, last_iteration INTEGER NOT NULL, data BLOB NOT NULL, "
        "PRIMARY KEY (level, chunk)) WITHOUT ROWID",
        "CREATE TABLE events (id INTEGER PRIMARY KEY, iteration INTEGER, wall_time REAL, kind TEXT NOT NULL, "
        "message TEXT NOT NULL)",
        *series_statements(),
        f"PRAGMA application_id = {APPLICATION_ID}",
        f"PRAGMA user_version = {SCHEMA_VERSION}",
    ]


def series_statements() -> list[str]:
    """The SQL that creates the optional logged-series tables (module docstring; part of
    :func:`create_statements`, and run alone when a series is first logged into an earlier file)."""
    return [
        "CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE)",
        "CREATE TABLE series_blocks (id INTEGER PRIMARY KEY, series INTEGER NOT NULL, "
        "first_iteration INTEGER NOT NULL, last_iteration INTEGER NOT NULL, n INTEGER NOT NULL, data BLOB NOT NULL)",
        "CREATE INDEX series_blocks_by_series ON series_blocks (series, id, first_iteration, last_iteration, n)",
        "CREATE TABLE series_lod (series INTEGER NOT NULL, level INTEGER NOT NULL, chunk INTEGER NOT NULL, "
        "n INTEGER NOT NULL, first_iteration INTEGER NOT NULL, last_iteration INTEGER NOT NULL, "
        "data BLOB NOT NULL, PRIMARY KEY (series, level, chunk))",
    ]
