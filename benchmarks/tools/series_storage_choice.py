"""Storage choice for logged series (issue 18): one row per point against packed 4096-point blocks.

    python benchmarks/tools/series_storage_choice.py [N_POINTS]   (default 10,000,000)

Rows: ``(name, iteration, wall_time, value)`` WITHOUT ROWID, one commit per 100,000 points (WAL).
Blocks: ``recorder.colcodec.pack_columns`` of 4096 (iteration, wall_time, value), indexed by (series, first).
Prints write time, file size and the time of a 1 % range read for each.  Not asserted.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

log = logging.getLogger("series_storage_choice")
_DT = [np.dtype("<i8"), np.dtype("<f8"), np.dtype("<f8")]


def _rows(con, it, wt, v) -> None:
    con.execute("CREATE TABLE series(name INTEGER, iteration INTEGER, wall_time REAL, value REAL, "
                "PRIMARY KEY(name, iteration)) WITHOUT ROWID")
    for a in range(0, len(it), 100_000):
        b = a + 100_000
        con.execute("BEGIN")
        con.executemany("INSERT INTO series VALUES (1, ?, ?, ?)",
                        zip(it[a:b].tolist(), wt[a:b].tolist(), v[a:b].tolist()))
        con.execute("COMMIT")


def _blocks(con, it, wt, v) -> None:
    from recorder.colcodec import pack_columns

    con.execute("CREATE TABLE sb(id INTEGER PRIMARY KEY, series INTEGER, first INTEGER, last INTEGER, n INTEGER, "
                "data BLOB)")
    con.execute("CREATE INDEX sbi ON sb(series, first)")
    con.execute("BEGIN")
    for a in range(0, len(it), 4096):
        b = min(len(it), a + 4096)
        con.execute("INSERT INTO sb(series, first, last, n, data) VALUES (1, ?, ?, ?, ?)",
                    (int(it[a]), int(it[b - 1]), b - a, pack_columns([it[a:b], wt[a:b], v[a:b]])))
    con.execute("COMMIT")


def _range(con, kind: str, x0: int, x1: int) -> int:
    if kind == "rows":
        return len(con.execute("SELECT iteration, value FROM series WHERE name = 1 AND iteration >= ? AND "
                               "iteration < ?", (x0, x1)).fetchall())
    from recorder.colcodec import unpack_columns

    got = 0
    for n, data in con.execute("SELECT n, data FROM sb WHERE series = 1 AND first < ? AND first >= ? ORDER BY first",
                               (x1, x0 - 4096)):
        c = unpack_columns(data, n, _DT)
        got += int(((c[0] >= x0) & (c[0] < x1)).sum())
    return got


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    tmp = tempfile.mkdtemp()
    it = np.arange(n, dtype=np.int64)
    wt = 1.7e9 + it * 0.01
    v = 1e-3 * (1 + np.cos(it / 1e5))
    for kind, write in (("rows", _rows), ("blocks", _blocks)):
        p = os.path.join(tmp, f"{kind}.db")
        con = sqlite3.connect(p, isolation_level=None)
        con.execute("PRAGMA journal_mode=WAL")
        t0 = time.perf_counter()
        write(con, it, wt, v)
        tw = time.perf_counter() - t0
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        t0 = time.perf_counter()
        got = _range(con, kind, n // 2, n // 2 + n // 100)
        tr = time.perf_counter() - t0
        log.info("%s: %d points, write %.2f s, %.1f MB, 1 %% range read (%d points) %.1f ms", kind, n, tw,
                 os.path.getsize(p) / 1e6, got, tr * 1e3)
        con.close()


if __name__ == "__main__":
    main()
