"""The recording format (``*.gda``): one SQLite file, schema version 2 (version 1 still read).

This module is the single place the format is documented; the writer, the
reader and the pyramid take every name, dtype and code from here (and the
per-iteration statistics from :mod:`recorder.stats`, where each is declared
once).

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
    ``n`` values (dtype in :data:`ITER_FIELDS`).  ``phi`` is ``n x K`` float32,
    row-major.  Trial points are ragged: ``trial_count`` (int32, per
    iteration) says how many of the concatenated ``trial_*`` arrays belong to
    each iteration, in order.  Columns: ``id INTEGER PRIMARY KEY,
    first_iteration, last_iteration, n``, then one BLOB per field (names from
    :func:`block_columns`).  The newest block may be rewritten with more rows
    while a writer appends (it grows until full); rows once committed never
    change.

    * Version 2: each BLOB is a Zstandard frame (level 1) of the byte-shuffled array
      (see :mod:`recorder.colcodec`); statistics
      that need no more are float32 (:data:`ITER_FIELDS`).  Lossless: NaN
      payloads and +-Inf round-trip bit-exactly.
    * Version 1: each BLOB is the raw little-endian array, with the dtypes of
      :data:`ITER_FIELDS_V1` (all floats float64).

``lod`` (version 2 only): the level-of-detail pyramid (:mod:`recorder.pyramid`)
    ``lod(level INTEGER, chunk INTEGER, n INTEGER, first_iteration INTEGER,
    last_iteration INTEGER, data BLOB, PRIMARY KEY(level, chunk))``.  Level
    ``l`` buckets ``64 * 4**l`` consecutive rows; chunk ``c`` of a level holds
    its buckets ``[4096 c, 4096 (c + 1))``; ``data`` is a packed column set
    (:func:`recorder.colcodec.pack_columns`) of the fields in
    :data:`recorder.pyramid.BUCKET_FIELDS`, ``n`` values each.  The top level
    has one bucket: the whole-run summary.  The writer updates the newest
    chunk of every level in the same transaction as the blocks, so the
    pyramid always describes exactly the committed rows.

``events(id INTEGER PRIMARY KEY, iteration INTEGER, wall_time REAL, kind TEXT, message TEXT)``
    Probe failures with their message, writer notes.

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
See :data:`recorder.stats.STATISTICS` (name, dtype, description, how each
aggregates).  Alphas are in units of the update direction
``d_k = w_{k+1} - w_k``; ``taken_alpha`` is 1.0 when the step was taken along
``d_k`` and ``native_step`` is the optimizer's own step length (the learning
rate, or the line search's accepted step along its search direction).
Line statistics (``min_alpha`` ... ``cockpit_alpha``) are computed by
:mod:`recorder.linestats`.

No pickle anywhere: everything is SQL scalars, JSON and numpy bytes.
"""

from __future__ import annotations

import numpy as np

SCHEMA_VERSION = 2
#: versions this release reads
READABLE_VERSIONS = (1, 2)
APPLICATION_ID = 0x47444131  # "GDA1"

from .stats import (CLASS_NAMES, CLASS_NEAR_OPTIMAL, CLASS_OVERSHOOT, CLASS_UNDERSHOOT,  # noqa: E402,F401
                    CLASS_UNKNOWN, STATISTICS, STATUS_FAILED, STATUS_NAMES, STATUS_NONFINITE, STATUS_OK,
                    STATUS_SKIPPED)

#: (name, little-endian dtype, description) of every scalar per-iteration field (schema 2).
ITER_FIELDS: tuple[tuple[str, str, str], ...] = tuple((s.name, s.dtype, s.description) for s in STATISTICS)

#: the per-iteration fields of schema version 1, in their order (later fields read as their default)
V1_NAMES = ("iteration", "epoch", "batch", "taken_alpha", "native_step", "train_loss", "step_norm", "grad_norm", "lr",
            "wall_time", "status", "ls_evals", "min_alpha", "min_phi", "efficiency", "step_class", "curvature",
            "slope0", "cockpit_alpha")
_V1_FLOAT64 = {"train_loss", "step_norm", "grad_norm", "min_alpha", "min_phi", "efficiency", "curvature", "slope0",
               "cockpit_alpha"}
#: the same fields as stored by schema version 1 (every float as float64)
ITER_FIELDS_V1: tuple[tuple[str, str, str], ...] = tuple(
    (n, "<f8" if n in _V1_FLOAT64 else d, desc) for n, d, desc in ITER_FIELDS if n in V1_NAMES)
assert tuple(f[0] for f in ITER_FIELDS_V1) == V1_NAMES
ITER_DTYPES_V1: dict[str, np.dtype] = {name: np.dtype(dt) for name, dt, _ in ITER_FIELDS_V1}
ITER_DTYPES: dict[str, np.dtype] = {name: np.dtype(dt) for name, dt, _ in ITER_FIELDS}

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

#: Numeric fields a viewer may colour by or filter on.
STAT_FIELDS = tuple(s.name for s in STATISTICS if s.aggregate is not None)


def block_columns(version: int = SCHEMA_VERSION) -> list[str]:
    """SQL column names of the BLOB columns of ``blocks`` in schema ``version``, in a fixed order."""
    cols = [f"f_{name}" for name, _, _ in (ITER_FIELDS if version >= 2 else ITER_FIELDS_V1)]
    cols.append("phi")
    cols.append("trial_count")
    cols += [f"t_{name}" for name, _, _ in TRIAL_FIELDS]
    return cols


def create_statements() -> list[str]:
    """The SQL that creates an empty recording of the current schema version."""
    blob_cols = ",\n    ".join(f"{c} BLOB NOT NULL" for c in block_columns())
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
        f"PRAGMA application_id = {APPLICATION_ID}",
        f"PRAGMA user_version = {SCHEMA_VERSION}",
    ]
