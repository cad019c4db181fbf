"""The recording format (``*.gda``): one SQLite file, schema version 1.

This module is the single place the format is documented; the writer and the
reader in :mod:`recorder.store` both take every name, dtype and code from here.

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
    per block, columnar inside: every per-iteration field is one BLOB holding a
    little-endian numpy array of ``n`` values (dtype in :data:`ITER_FIELDS`).
    ``phi`` is ``n x K`` float32, row-major.  Trial points are ragged:
    ``trial_count`` (int32, per iteration) says how many of the concatenated
    ``trial_*`` arrays belong to each iteration, in order.  Columns:
    ``id INTEGER PRIMARY KEY, first_iteration, last_iteration, n``, then one
    BLOB per field.  The newest block may be rewritten with more rows while a
    writer appends (it grows until full); rows once committed never change.

``events(id INTEGER PRIMARY KEY, iteration INTEGER, wall_time REAL, kind TEXT, message TEXT)``
    Probe failures with their message, writer notes.

Run metadata (``meta.run``)
---------------------------
``model`` (summary text), ``parameter_count``, ``optimizer`` (class name),
``hyperparameters`` (dict), ``probe`` (what data the probe uses, preset,
strategy), ``seed``, ``versions`` (library versions), ``host``,
``start_time`` (unix seconds), ``tags`` (free-form dict), and anything else a
caller adds.

Per-iteration fields
--------------------
See :data:`ITER_FIELDS`.  Alphas are in units of the update direction
``d_k = w_{k+1} - w_k``; ``taken_alpha`` is 1.0 when the step was taken along
``d_k`` and ``native_step`` is the optimizer's own step length (the learning
rate, or the line search's accepted step along its search direction).
Line statistics (``min_alpha`` ... ``cockpit_alpha``) are computed by
:mod:`recorder.linestats`.  NaN and +-Inf are stored bit-exactly.

No pickle anywhere: everything is SQL scalars, JSON and raw numpy bytes.
"""

from __future__ import annotations

import numpy as np

SCHEMA_VERSION = 1
APPLICATION_ID = 0x47444131  # "GDA1"

#: Probe status codes (``status`` column).
STATUS_OK = 0
STATUS_NONFINITE = 1
STATUS_FAILED = 2
STATUS_SKIPPED = 3
STATUS_NAMES = {STATUS_OK: "ok", STATUS_NONFINITE: "non-finite", STATUS_FAILED: "failed", STATUS_SKIPPED: "skipped"}

#: Step classes (``step_class`` column).
CLASS_UNKNOWN = 0
CLASS_UNDERSHOOT = 1
CLASS_NEAR_OPTIMAL = 2
CLASS_OVERSHOOT = 3
CLASS_NAMES = {CLASS_UNKNOWN: "unknown", CLASS_UNDERSHOOT: "undershoot", CLASS_NEAR_OPTIMAL: "near-optimal",
               CLASS_OVERSHOOT: "overshoot"}

#: (name, little-endian dtype, description) of every scalar per-iteration field.
ITER_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("iteration", "<i8", "global iteration number, strictly increasing"),
    ("epoch", "<i4", "epoch the iteration belongs to"),
    ("batch", "<i8", "mini-batch id; changes when the data the loss is measured on changes"),
    ("taken_alpha", "<f8", "accepted step in units of d_k (1.0 normally)"),
    ("native_step", "<f8", "the optimizer's own step length (lr or line-search step)"),
    ("train_loss", "<f8", "training loss the optimizer saw at w_k"),
    ("step_norm", "<f8", "||w_{k+1} - w_k||"),
    ("grad_norm", "<f8", "||grad L(w_k)|| (NaN when unknown)"),
    ("lr", "<f8", "learning rate of the first parameter group"),
    ("wall_time", "<f8", "unix time when the step finished"),
    ("status", "<i1", "probe status: 0 ok, 1 non-finite, 2 failed, 3 skipped"),
    ("ls_evals", "<i4", "loss evaluations of the optimizer's line search (0 without one)"),
    ("min_alpha", "<f8", "alpha of the grid minimum of phi"),
    ("min_phi", "<f8", "grid minimum of phi"),
    ("efficiency", "<f8", "(phi(0) - phi(taken)) / (phi(0) - min phi)"),
    ("step_class", "<i1", "0 unknown, 1 undershoot, 2 near-optimal, 3 overshoot"),
    ("curvature", "<f8", "phi'' of the least-squares parabola along d_k"),
    ("slope0", "<f8", "phi'(0) = grad . d_k where a gradient is known"),
    ("cockpit_alpha", "<f8", "step position on the parabola: -1 start, 0 valley floor, +1 opposite wall"),
)
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
STAT_FIELDS = ("efficiency", "step_class", "curvature", "slope0", "cockpit_alpha", "min_alpha", "min_phi",
               "train_loss", "step_norm", "grad_norm", "lr", "ls_evals", "status")


def block_columns() -> list[str]:
    """SQL column names of the BLOB columns of ``blocks``, in a fixed order."""
    cols = [f"f_{name}" for name, _, _ in ITER_FIELDS]
    cols.append("phi")
    cols.append("trial_count")
    cols += [f"t_{name}" for name, _, _ in TRIAL_FIELDS]
    return cols


def create_statements() -> list[str]:
    """The SQL that creates an empty schema-version-1 recording."""
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
        "CREATE TABLE events (id INTEGER PRIMARY KEY, iteration INTEGER, wall_time REAL, kind TEXT NOT NULL, "
        "message TEXT NOT NULL)",
        f"PRAGMA application_id = {APPLICATION_ID}",
        f"PRAGMA user_version = {SCHEMA_VERSION}",
    ]
