"""Reading a recording's blocks: the validated block index, decoding with a memory budget (:class:`BlockReads`).

Mixed into :class:`recorder.reader.Recording` (a mixin: it uses the recording's connection, lock and
layout, set when it opens).  :meth:`BlockReads._index` checks every block header against the bytes the
file holds (``length()`` and ``typeof()``, answered from the record header); :meth:`BlockReads.read` and
``read_new`` refuse, before decoding, what the declared rows would take beyond the read budget, and count
each block's trial points as it decodes (:data:`recorder.codec.READ_BUDGET_BYTES`).
"""

from __future__ import annotations

import sqlite3

import numpy as np

from . import schema
from .codec import (MAX_BLOCK_ROWS, READ_BUDGET_BYTES, TRIAL_BYTES, BlockError, Iterations, decode_block,
                    declared_trials)
from .errors import RecordingError
from .readcheck import guarded as _guarded

#: bytes of one row's per-iteration fields and trial offset in memory
_ROW_BYTES = sum(np.dtype(d).itemsize for d in schema.ITER_DTYPES.values()) + 8


class BlockReads:
    """The block-reading half of :class:`recorder.reader.Recording`."""

    def _index(self, where: str = "", args=(), con: sqlite3.Connection | None = None
               ) -> list[tuple[int, int, int, int]]:
        """Validated ``(id, n, first_iteration, last_iteration)`` of the blocks matching ``where``, by id.

        The stored row count is checked against the byte length of the
        iteration column (``length()`` reads the record header, not the BLOB),
        so every later allocation is bounded by bytes the file holds.
        """
        # typeof() of every BLOB column, like length(), is answered from the record header
        kinds = " || ',' || ".join(f"typeof({c})" for c in self._columns)
        sql = ("SELECT id, n, first_iteration, last_iteration, length(f_iteration), typeof(f_iteration), "
               f"{kinds} FROM blocks{where} ORDER BY id")
        if con is None:
            rows = self.query(sql, args)
        else:
            rows = con.execute(sql, args).fetchall()
        out = []
        prev_last = None
        item = schema.ITER_DTYPES["iteration"].itemsize
        names = self._columns
        all_blobs = ",".join("blob" for _ in names)
        for bid, n, first, last, nbytes, typ, kinds in rows:
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in (bid, n, first, last)):
                raise RecordingError(self.path, f"damaged block {bid}: id, n, first_iteration and last_iteration "
                                                "must be integers")
            if kinds != all_blobs:
                bad = next((c, k) for c, k in zip(names, str(kinds).split(",")) if k != "blob")
                raise RecordingError(self.path, f"damaged block {bid}: column {bad[0]} is {bad[1]}, expected a BLOB")
            if n <= 0 or (self.version < 2 and n * item != nbytes) or (self.version >= 2 and n > MAX_BLOCK_ROWS):
                raise RecordingError(self.path, f"damaged block {bid}: row count n = {n} does not match its "
                                                f"{nbytes}-byte iteration column")
            if first > last or (prev_last is not None and first <= prev_last):
                raise RecordingError(self.path, f"damaged block {bid}: iterations {first}..{last} out of order")
            prev_last = last
            out.append((bid, n, first, last))
        return out

    @_guarded
    def n_iterations(self) -> int:
        """Number of committed iterations."""
        return sum(r[1] for r in self._index())

    @_guarded
    def iteration_span(self) -> tuple[int, int] | None:
        idx = self._index()
        return None if not idx else (idx[0][2], idx[-1][3])

    def _assemble(self, index: list, con: sqlite3.Connection, skip_first: int = 0,
                  budget: tuple[int, int] | None = None) -> Iterations:
        """Decode the blocks of ``index`` (inside the caller's read transaction) into one table; ``budget``:
        (bytes allowed, bytes the rows take), checked again with each block's trial points as it is decoded
        (memory stays within the budget plus one block)."""
        k = len(self.alpha_grid)
        if not index:
            out = Iterations.empty(self.alpha_grid)
            out.row_alphas = np.empty((0, k), schema.ROW_ALPHA_DTYPE) if self.row_alphas else None
            return out
        total = sum(r[1] for r in index) - skip_first
        cols = {n: np.empty(total, dt) for n, dt in schema.ITER_DTYPES.items()}
        phi = np.empty((total, k), schema.PHI_DTYPE)
        ra = np.empty((total, k), schema.ROW_ALPHA_DTYPE) if self.row_alphas else None
        tcounts = np.empty(total, np.int64)
        tparts: dict[str, list] = {n: [] for n in schema.TRIAL_DTYPES}
        pos = n_trials = 0
        lo, hi = index[0][0], index[-1][0]
        cur = con.execute(f"SELECT id, n, {', '.join(self._columns)} FROM blocks "
                          "WHERE id >= ? AND id <= ? "
                          "ORDER BY id", (lo, hi))
        expected = iter(index)
        for j, r in enumerate(cur):
            bid, n, first, last = next(expected, (None, None, None, None))
            if r[0] != bid or r[1] != n:
                raise RecordingError(self.path, f"damaged block {r[0]}: changed while being read")
            try:
                bcols, bphi, tc, btr = decode_block(r[2:], n, k, self.version, self.stored_fields, self.row_alphas,
                                                    self._interval)
            except BlockError as exc:
                raise RecordingError(self.path, f"damaged block {bid}: {exc}") from None
            its = bcols["iteration"]
            if its[0] != first or its[-1] != last:
                raise RecordingError(self.path, f"damaged block {bid}: first/last_iteration {first}..{last} "
                                                f"disagree with its iterations {its[0]}..{its[-1]}")
            s = skip_first if j == 0 else 0
            m = n - s
            if budget is not None:
                n_trials += len(btr["alpha"])
                if budget[1] + n_trials * TRIAL_BYTES > budget[0]:
                    self._over_budget(total, n_trials, budget[1] + n_trials * TRIAL_BYTES, budget[0])
            for name in schema.ITER_DTYPES:
                cols[name][pos:pos + m] = bcols[name][s:]
            phi[pos:pos + m] = bphi[s:]
            if ra is not None:
                ra[pos:pos + m] = bcols[schema.ROW_ALPHA_COLUMN][s:]
            t0 = int(tc[:s].sum())
            tcounts[pos:pos + m] = tc[s:]
            for name in schema.TRIAL_DTYPES:
                tparts[name].append(btr[name][t0:])
            pos += m
        if pos != total:
            raise RecordingError(self.path, "damaged recording: blocks changed while being read")
        off = np.zeros(total + 1, np.int64)
        np.cumsum(tcounts, out=off[1:])
        trials = {n: (np.concatenate(v) if v else np.empty(0, schema.TRIAL_DTYPES[n])) for n, v in tparts.items()}
        return Iterations(self.alpha_grid, cols, phi, off, trials, ra)

    def _budget(self, index: list, max_bytes: int | None) -> tuple[int, int]:
        """(budget, bytes the rows of ``index`` need); refuses when the rows alone pass the budget (default
        :data:`READ_BUDGET_BYTES`), counted from the row counts the blocks declare, before decoding.  Trial
        points are counted as each block is decoded (:meth:`_assemble`)."""
        budget = READ_BUDGET_BYTES if max_bytes is None else int(max_bytes)
        rows = sum(r[1] for r in index)
        k = len(self.alpha_grid)
        need = rows * (4 * k + 8 * k * bool(getattr(self, "row_alphas", False)) + _ROW_BYTES)
        if need > budget:
            self._over_budget(rows, 0, need, budget)
        return budget, need

    def _over_budget(self, rows: int, trials: int, need: int, budget: int):
        k = len(self.alpha_grid)
        raise RecordingError(self.path, f"reading {rows:,} iterations x {k} alphas"
                                        f"{f' and {trials:,} trial points' if trials else ''} at once needs "
                                        f"{'more than ' if trials else 'about '}{need / 2 ** 20:,.0f} MiB, more "
                                        f"than the read budget of {budget / 2 ** 20:,.0f} MiB (read(start, stop) "
                                        "reads a range; recorder.window.RunWindows reads windows)")

    @_guarded
    def declared_bytes(self, stop_above: int | None = None) -> tuple[int, int, int]:
        """(rows, decoded bytes, trial points) the whole file's blocks declare: the rows from the block headers,
        the trial points from each block's ``trial_count`` column decoded alone (a pass over the file: for the
        in-memory index of a file without a stored pyramid); counting stops once the bytes pass ``stop_above``."""
        def work(con):
            index = self._index(con=con)
            rows = sum(r[1] for r in index)
            k = len(self.alpha_grid)
            need = rows * (4 * k + 8 * k * bool(self.row_alphas) + _ROW_BYTES)
            trials = 0
            if stop_above is not None and need > stop_above:
                return rows, need, trials
            for bid, n, tc in con.execute("SELECT id, n, trial_count FROM blocks ORDER BY id"):
                try:
                    trials += declared_trials(tc, n, self.version)
                except BlockError as exc:
                    raise RecordingError(self.path, f"damaged block {bid}: {exc}") from None
                if stop_above is not None and need + trials * TRIAL_BYTES > stop_above:
                    break
            return rows, need + trials * TRIAL_BYTES, trials

        return self._read_tx(work)

    @_guarded
    def read(self, start: int | None = None, stop: int | None = None, *, max_bytes: int | None = None) -> Iterations:
        """Committed iterations with ``start <= iteration < stop`` (all by default) as numpy columns.

        Refused (:class:`RecordingError`) when the blocks holding them declare more rows than fit in
        ``max_bytes`` (default :data:`READ_BUDGET_BYTES`, 1 GiB), before anything is decoded.
        """
        cond, args = [], []
        if start is not None:
            cond.append("last_iteration >= ?")
            args.append(int(start))
        if stop is not None:
            cond.append("first_iteration < ?")
            args.append(int(stop))
        where = (" WHERE " + " AND ".join(cond)) if cond else ""

        def work(con):
            index = self._index(where, args, con=con)
            return index, self._assemble(index, con, budget=self._budget(index, max_bytes))

        index, data = self._read_tx(work)
        if index and start is None and stop is None:
            self._cursor = (index[-1][0], index[-1][1])
        if start is not None or stop is not None:
            it = data.iteration
            a = 0 if start is None else int(np.searchsorted(it, start))
            b = len(it) if stop is None else int(np.searchsorted(it, stop))
            data = data.slice_rows(a, b)
        return data

    @_guarded
    def read_new(self) -> Iterations:
        """Iterations committed since the previous ``read()``/``read_new()`` (the live tail)."""
        bid, seen = self._cursor

        def work(con):
            index = self._index(" WHERE id >= ?", (bid,), con=con)
            skip = seen if index and index[0][0] == bid else 0
            if index and skip > index[0][1]:
                raise RecordingError(self.path, f"damaged block {bid}: it lost rows already read")
            return index, self._assemble(index, con, skip_first=skip, budget=self._budget(index, None))

        index, data = self._read_tx(work)
        if index:
            self._cursor = (index[-1][0], index[-1][1])
        return data

    @_guarded
    def read_block(self, block_id: int) -> Iterations:
        """The rows of one block (validated); what windowed readers decode through their cache."""
        def work(con):
            index = self._index(" WHERE id = ?", (int(block_id),), con=con)
            return self._assemble(index, con)

        return self._read_tx(work)
