"""The writer's file lifecycle: create, validate, lock, resume, and leave a recording (:class:`WriterFile`).

Mixed into :class:`recorder.writer.RecordingWriter` (whose docstring gives the design): a new recording is
built in a temporary file beside the target and put in place atomically under an advisory lock on the
directory; appending first checks every schema object read-only, adopts the file's columns and pyramid
layout, takes the write lock (``meta.writer``) and resumes the tail block and the pyramid builder; closing
switches the file back to the rollback journal when no reader holds it.  The append buffer is
:mod:`recorder.writebuffer`, the commit loop :mod:`recorder.writer`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import socket
import sqlite3
import time
from pathlib import Path
from typing import Mapping

import numpy as np

from . import schema
from .codec import MAX_BLOCK_ROWS, BlockError, decode_block, json_safe
from .errors import RecordingBusyError, RecordingError
from .fsutil import NETWORK_FS, check_recording_file, fs_type, has_journal, sniff
from .lock import describe_writer, pid_alive, process_token, writer_alive
from .lodstore import LodError, SqlChunks
from .pyramid import BASE_ROWS, BUCKET_FIELDS, CHUNK, PyramidBuilder
from .pyramid import layout as pyramid_layout
from .errors import sql_error
from .readcheck import connect_readonly, read_meta, stored_fields_of, validate_identity

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None

log = logging.getLogger(__name__)


@contextlib.contextmanager
def _dir_lock(directory: Path):
    """Advisory exclusive lock on a directory (serialises writers installing files there); best effort."""
    fd = None
    if fcntl is not None:
        try:
            fd = os.open(directory, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError as exc:
            log.debug("%s: no directory lock (%s)", directory, exc)
            if fd is not None:
                os.close(fd)
                fd = None
    try:
        yield
    finally:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)


_TEMP_NAME = re.compile(r"^\.gda-(\d+)-[0-9a-f]{12}\.tmp(-journal)?$")


def _remove_stale_temps(directory: Path, min_age_s: float = 60.0) -> None:
    """Remove the temporary files of writers that died while creating a recording here.

    Only names this module makes (``.gda-<pid>-<12 hex>.tmp``), only when that process is gone and the
    file is older than ``min_age_s`` (so a reused pid cannot make us remove a live writer's file).
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    now = time.time()
    for e in entries:
        m = _TEMP_NAME.match(e.name)
        if not m:
            continue
        try:
            if now - e.stat(follow_symlinks=False).st_mtime < min_age_s or pid_alive(int(m.group(1))):
                continue
            os.unlink(e.path)
            log.info("removed %s, left by a writer that died while creating a recording", e.path)
        except OSError:
            pass


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class WriterFile:
    """The file-lifecycle half of :class:`recorder.writer.RecordingWriter` (a mixin: it uses the writer's
    attributes, set in its ``__init__``)."""

    def _abandon(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    # -- creating and opening ------------------------------------------------

    def _refuse_existing(self, kind: str, overwrite: bool) -> None:
        """Refuse to replace anything but a gda recording that no live writer holds (``overwrite`` given)."""
        if kind == "dir":
            raise RecordingError(self.path, "is a directory; refusing to replace it")
        if kind == "special":
            raise RecordingError(self.path, "is not a regular file (a FIFO, device or socket); refusing to replace it")
        if kind == "other":
            raise RecordingError(self.path, "exists and is not a gda recording; refusing to replace it")
        try:
            con = connect_readonly(self.path)
        except sqlite3.Error as exc:
            raise RecordingError(self.path, f"exists and cannot be checked ({exc}); refusing to replace it") from None
        try:
            try:
                app_id = con.execute("PRAGMA application_id").fetchone()[0]
            except sqlite3.Error as exc:
                raise RecordingError(self.path, f"exists and is not a readable gda recording ({exc}); "
                                                "refusing to replace it") from None
            if app_id != schema.APPLICATION_ID:
                raise RecordingError(self.path, "is an SQLite database of another application; refusing to replace it")
            if not overwrite:
                raise RecordingError(self.path, "already exists (pass overwrite=True or append=True)")
            try:  # object types first: reading a view or a table with generated columns would run stored SQL
                validate_identity(con, self.path)
            except sqlite3.Error as exc:
                raise RecordingError(self.path, f"exists and cannot be checked ({sql_error(self.path, exc).problem});"
                                                " refusing to replace it") from None
            except RecordingError as exc:
                raise RecordingError(self.path, f"exists and is not a recording gda-gl can check "
                                                f"({exc.problem}); refusing to replace it") from None
            try:
                row = con.execute("SELECT value FROM meta WHERE key='writer'").fetchone()
                info = json.loads(row[0]) if row and isinstance(row[0], str) and len(row[0]) < 65536 else None
            except (sqlite3.Error, ValueError, RecursionError):
                info = None
        finally:
            con.close()
        if info is not None and writer_alive(info):
            raise RecordingBusyError(self.path, f"is being written by another writer ({describe_writer(info)})")

    def _create(self, run: Mapping | None, kind: str, overwrite: bool, journal: str) -> None:
        if kind != "missing":
            self._refuse_existing(kind, overwrite)  # early, clear refusal; re-checked under the lock
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordingError(self.path, f"cannot be created ({exc.strerror or exc})") from None
        tmp = parent / f".gda-{os.getpid()}-{secrets.token_hex(6)}.tmp"
        try:
            self._build(tmp, run)
            with _dir_lock(parent):
                _remove_stale_temps(parent)
                kind = sniff(self.path)
                leftovers = [str(self.path) + s for s in ("-journal", "-wal", "-shm")
                             if os.path.lexists(str(self.path) + s)]
                if kind != "missing":
                    self._refuse_existing(kind, overwrite)
                elif leftovers and not overwrite:
                    raise RecordingError(self.path, f"a leftover {Path(leftovers[0]).name} exists beside it "
                                                    "(pass overwrite=True to start afresh)")
                for extra in leftovers:  # a stale journal would be applied to the new file
                    _unlink(extra)
                if kind == "missing":
                    try:
                        os.link(tmp, self.path)  # fails if someone created the name meanwhile
                    except FileExistsError:
                        kind = sniff(self.path)
                        self._refuse_existing(kind, overwrite)
                        os.replace(tmp, self.path)
                    except OSError:  # no hard links here: the directory lock serialises writers
                        os.replace(tmp, self.path)
                else:
                    os.replace(tmp, self.path)
        finally:
            _unlink(str(tmp))
            _unlink(str(tmp) + "-journal")
        self._con = self._connect(journal)

    def _build(self, tmp: Path, run: Mapping | None) -> None:
        """Write an empty recording holding our write lock to ``tmp`` (rollback journal, closed after)."""
        from ._version import __version__

        meta = {"run": dict(run or {}), "alpha_grid": schema.grid_meta(self.alpha_grid, self.row_alphas),
                "created_by": f"gda_gl {__version__}", "writer": self._writer_info("open"),
                "lod": pyramid_layout()}
        rows = [(k, json.dumps(json_safe(v), allow_nan=False, default=str)) for k, v in meta.items()]
        con = sqlite3.connect(tmp, isolation_level=None)
        try:
            con.execute("BEGIN")
            for stmt in schema.create_statements(row_alphas=self.row_alphas):
                con.execute(stmt)
            con.executemany("INSERT INTO meta(key, value) VALUES (?, ?)", rows)
            con.execute("COMMIT")
        finally:
            con.close()

    def _open_append(self, kind: str, journal: str) -> None:
        if kind in ("dir", "special", "other"):
            self._refuse_existing(kind, False)
        check_recording_file(self.path)
        meta = None
        try:
            ro = connect_readonly(self.path)  # validate before anything can write to the file
            try:
                validate_identity(ro, self.path, exact=True)
                meta = read_meta(ro, self.path)
            finally:
                ro.close()
        except sqlite3.Error as exc:
            # a hot journal left by a writer killed mid-commit cannot be read read-only: validate on the
            # read-write connection below, after SQLite's own crash recovery (a rollback runs no stored SQL)
            if not (has_journal(self.path) and "readonly" in str(exc)):
                raise
        if meta is not None and not np.array_equal(meta["alpha_grid"], self.alpha_grid):
            raise RecordingError(self.path, "cannot append: the alpha grid differs from the recording's")
        self._con = self._connect(None, validate=True)  # the journal mode changes the file: only once checked
        if meta is None:
            meta = read_meta(self._con, self.path)
            if not np.array_equal(meta["alpha_grid"], self.alpha_grid):
                raise RecordingError(self.path, "cannot append: the alpha grid differs from the recording's")
        self._adopt_layout(meta)
        self._acquire()  # checks the blocks and the pyramid before it writes anything
        self._set_journal(self._con, journal)

    def _adopt_layout(self, meta: dict) -> None:
        """Write the columns and pyramid fields the (validated) file has, not necessarily all this release knows."""
        self._fields = stored_fields_of(self._con, schema.SCHEMA_VERSION)
        self._columns = [f"f_{n}" for n, _ in self._fields] + list(schema.PHI_TRIAL_COLUMNS)
        if bool(meta.get("row_alphas")) != self.row_alphas:
            raise RecordingError(self.path, "cannot append: the recording " + (
                "stores per-row alphas (an adaptive probe's); open it with row_alphas=True" if meta.get("row_alphas")
                else "has one shared alpha grid; an adaptive probe cannot append to it"))
        if self.row_alphas:
            self._columns.append(schema.ROW_ALPHA_COLUMN)
        lod = schema.stored_lod_fields(meta.get("lod"), BUCKET_FIELDS)
        known = {n for n, _, _ in BUCKET_FIELDS}
        if lod is None or any(n not in known for n, _, _ in lod):
            raise RecordingError(self.path, "cannot append: its pyramid layout (meta.lod) is not one this gda-gl "
                                            "writes; run 'gda-gl upgrade' to make a copy to append to")
        self._lod_fields = lod
        lacking = [n for n in schema.ITER_DTYPES if n not in {f for f, _ in self._fields}]
        if lacking:
            log.info("%s: written by an earlier gda-gl without %s; the appended rows do not store it either (it "
                     "reads as its default)", self.path, ", ".join(lacking))

    # -- connection and lock -------------------------------------------------

    def _connect(self, journal: str, validate: bool = False) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise RecordingError(self.path, f"cannot be created or opened for writing ({exc})") from None
        try:
            con.execute("PRAGMA trusted_schema = OFF")
            if validate:  # the same checks again on this connection, before any write
                validate_identity(con, self.path, exact=True)
            if journal is not None:
                self._set_journal(con, journal)
        except BaseException:
            con.close()
            raise
        return con

    def _set_journal(self, con: sqlite3.Connection, journal: str) -> None:
        """WAL or the rollback journal (``journal`` as for the constructor), and the matching ``synchronous``."""
        if journal == "auto":
            fstype = fs_type(self.path)
            journal = "delete" if fstype in NETWORK_FS else "wal"
            if journal == "delete":
                log.info("%s is on %s: using the rollback journal instead of WAL", self.path, fstype)
        mode = con.execute(f"PRAGMA journal_mode={'WAL' if journal == 'wal' else 'DELETE'}").fetchone()[0]
        if journal == "wal" and mode.lower() != "wal":
            log.warning("%s: WAL not available (journal_mode=%s); using the rollback journal", self.path, mode)
            con.execute("PRAGMA journal_mode=DELETE")
        self.journal_mode = con.execute("PRAGMA journal_mode").fetchone()[0].lower()
        # NORMAL is crash-safe against process death in WAL mode; FULL for the rollback journal.
        con.execute(f"PRAGMA synchronous={'NORMAL' if self.journal_mode == 'wal' else 'FULL'}")

    def _writer_info(self, state: str) -> dict:
        pid = os.getpid()
        return {"pid": pid, "host": socket.gethostname(), "token": process_token(pid), "heartbeat": time.time(),
                "state": state}

    def _acquire(self) -> None:
        """Take the write lock, in one transaction with the checks of the tail block and the pyramid
        (:meth:`_load_tail`, :meth:`_resume_pyramid`): a file they refuse is left unchanged."""
        con = self._con
        con.execute("BEGIN IMMEDIATE")
        try:
            row = con.execute("SELECT value FROM meta WHERE key='writer'").fetchone()
            if row:
                try:
                    info = json.loads(row[0]) if isinstance(row[0], str) and len(row[0]) < 65536 else None
                except (ValueError, RecursionError):
                    info = None
                if not isinstance(info, dict):
                    raise RecordingError(self.path, "cannot append: the write-lock record is damaged")
                if writer_alive(info):
                    raise RecordingBusyError(self.path,
                                             f"is being written by another writer ({describe_writer(info)})")
            self._load_tail()
            self._resume_pyramid()
            con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('writer', ?)",
                        (json.dumps(self._writer_info("open")),))
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def _load_tail(self) -> None:
        con = self._con
        k = len(self.alpha_grid)
        total, first_it, last_it = 0, None, None
        for bid, n, first, last, nbytes in con.execute(
                "SELECT id, n, first_iteration, last_iteration, length(f_iteration) FROM blocks ORDER BY id"):
            ints = all(isinstance(v, int) for v in (bid, n, first, last))
            if not ints or n <= 0 or n > MAX_BLOCK_ROWS or nbytes is None \
                    or first > last or (last_it is not None and first <= last_it):
                raise RecordingError(self.path, f"cannot append: damaged block {bid}")
            total += n
            first_it = first if first_it is None else first_it
            last_it = last
        self.rows_committed = total
        self._last_iteration = last_it
        self._first_iteration = first_it
        row = con.execute(f"SELECT id, n, {', '.join(self._columns)} FROM blocks "
                          "ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return
        bid, n = row[0], row[1]
        try:
            cols, phi, tcount, trials = decode_block(row[2:], n, k, fields=self._fields, row_alphas=self.row_alphas)
        except BlockError as exc:
            raise RecordingError(self.path, f"cannot append: damaged block {bid}: {exc}") from None
        if n < self.block_rows:
            self._tail = (bid, cols, phi, tcount, trials)

    def _resume_pyramid(self) -> None:
        """Continue the stored pyramid: the newest chunk of every level, the rows of the partial bucket."""
        con = self._con
        total = self.rows_committed
        # the reader's validator, on this connection: a pyramid a reader would refuse is never continued
        chunks = SqlChunks(lambda sql, args=(): con.execute(sql, args).fetchall(), fields=self._lod_fields)
        try:
            chunks.refresh()
            chunks.check_blocks(None, total, self._first_iteration, self._last_iteration)
            last_chunks = [((cnt - 1) // CHUNK, chunks.chunk(level, (cnt - 1) // CHUNK))
                           for level, cnt in enumerate(chunks.counts())]
        except LodError as exc:
            raise RecordingError(self.path, f"cannot append: damaged pyramid ({exc})") from None
        rem = total % BASE_ROWS
        tail_cols = tail_phi = None
        prev_batch = None
        if total:
            k = len(self.alpha_grid)
            need = rem + 1
            parts = []
            for row in con.execute(f"SELECT id, n, {', '.join(self._columns)} FROM blocks "
                                   "ORDER BY id DESC LIMIT 2"):
                try:
                    cols, phi, tc, tr = decode_block(row[2:], row[1], k, fields=self._fields,
                                                     row_alphas=self.row_alphas)
                except BlockError as exc:
                    raise RecordingError(self.path, f"cannot append: damaged block {row[0]}: {exc}") from None
                parts.insert(0, (cols, phi, tc, tr["alpha"]))
                if sum(len(p[1]) for p in parts) >= need:
                    break
            cols = {name: np.concatenate([p[0][name] for p in parts]) for name in parts[0][0]}
            phi = np.concatenate([p[1] for p in parts])
            tc = np.concatenate([p[2] for p in parts]).astype(np.int64)
            ta = np.concatenate([p[3] for p in parts])
            m = len(phi)
            prev_batch = int(cols["batch"][m - rem - 1]) if m > rem else None
            tail_tc = tail_ta = None
            if rem:
                tail_cols = {name: v[m - rem:] for name, v in cols.items()}
                tail_phi = phi[m - rem:]
                tail_tc = tc[m - rem:]
                tail_ta = ta[int(tc[:m - rem].sum()):]
        counts_ok = (not last_chunks and total == 0) or (
            last_chunks and last_chunks[0][0] * CHUNK + len(last_chunks[0][1]["rows"]) == -(-total // BASE_ROWS))
        if not counts_ok:
            raise RecordingError(self.path, "cannot append: the stored pyramid does not match the rows")
        self._pyramid = PyramidBuilder.resume(self.alpha_grid, total, last_chunks, tail_cols, tail_phi, prev_batch,
                                              tail_tc if total else None, tail_ta if total else None)

    # -- appending -----------------------------------------------------------

    def _leave_wal(self, tries: int = 10, pause_s: float = 0.05) -> None:
        """Fold the WAL back and switch to the rollback journal, so the finished recording is one
        self-contained file (readable alone, also from read-only media).  A reader holding the file open
        prevents the switch: retried for about half a second, then the file stays in WAL mode with an empty WAL
        (readers open such a finished file immutable: :func:`recorder.reader.finished_wal_file`)."""
        for i in range(tries):
            try:
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                if self._con.execute("PRAGMA journal_mode=DELETE").fetchone()[0].lower() == "delete":
                    return
            except sqlite3.Error:
                pass
            time.sleep(pause_s)
        log.info("%s: a reader holds the file open; it stays in WAL mode (its WAL is empty)", self.path)
