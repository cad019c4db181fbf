"""Hostile recordings, issue 28: the series tables as hardened as the blocks; forged iteration pyramids at open.

Every forgery is built here with raw ``sqlite3`` from a good recording written by the writer (no binary
files in the repository), and every case failed before the change it names (checked against 9bf9a3f):
``check`` said "ok" on damaged series, ``upgrade`` lost, renamed or merged series and said "wrote",
reading 10,000 series was quadratic, ``info``/``render`` drew numbers that are not in the data.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_hostile_v2 import GRID, _every_level, _one_line, _run, _sha, _sql, forge_chunk, write_good

from conftest import ROOT
from recorder import schema
from recorder import series as S
from recorder.errors import RecordingError
from recorder.store import Recording, RecordingWriter
from recorder.upgrade import upgrade
from recorder.window import RunWindows

VAL_POINTS, ACC_POINTS = 5000, 120


def write_series_file(p: Path) -> Path:
    """40 iterations; series ``val_loss`` (5,000 points, two blocks, a three-level pyramid), ``acc`` (120
    points) and ``empty`` (a series row without points, made with raw SQL as an importer could)."""
    with RecordingWriter(p, GRID, {"name": p.stem}, commit_interval=60) as w:
        for i in range(40):
            w.append(i, GRID.astype(np.float32), train_loss=1.0 + i)
        steps = np.arange(VAL_POINTS)
        w.series.log_many("val_loss", steps, 2.0 + np.sin(steps / 50.0), wall_time=1.7e9 + steps)
        w.series.log_many("acc", np.arange(ACC_POINTS) * 3, np.linspace(0.1, 0.9, ACC_POINTS))
    return _sql(p, lambda c: c.execute("INSERT INTO series(name) VALUES ('empty')"))


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    return write_series_file(tmp_path_factory.mktemp("series") / "good.gda")


def _copy(good: Path, where: Path, name: str) -> Path:
    p = where / f"{name}.gda"
    shutil.copyfile(good, p)
    return p


def _sid(con, name: str) -> int:
    return con.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0]


def _forge_series_levels(levels, change):
    """Decode every chunk of ``val_loss`` at ``levels`` (None: every level), let ``change(recs, level)`` alter
    the buckets, store them back consistently encoded."""
    def mutate(con):
        sid = _sid(con, "val_loss")
        rows = con.execute("SELECT level, chunk, n, data FROM series_lod WHERE series = ?", (sid,)).fetchall()
        for level, chunk, n, data in rows:
            if levels is not None and level not in levels:
                continue
            recs = {k: np.array(v) for k, v in S.decode_chunk(data, n, level, "forge").items()}
            change(recs, level)
            con.execute("UPDATE series_lod SET data = ? WHERE series = ? AND level = ? AND chunk = ?",
                        (S.encode_chunk(recs), sid, level, chunk))
    return mutate


def _all_ones(recs, _level):
    for k in ("min", "max", "first", "last"):
        recs[k][:] = 1.0
    recs["sum"][:] = recs["finite"]


def _spike_50(recs, _level):
    recs["max"][3] = 50.0


def _flat_50(recs, _level):
    for k in ("min", "max", "first", "last"):
        recs[k][:] = 50.0
    recs["sum"][:] = 50.0 * recs["finite"]


def _steps_backwards(con):
    sid = _sid(con, "val_loss")
    bid, n, data = con.execute("SELECT id, n, data FROM series_blocks WHERE series = ? ORDER BY id DESC LIMIT 1",
                               (sid,)).fetchone()
    it, wall, val = S.decode_points(data, n, "forge")
    it = np.array(it)
    it[[0, -1]] = it[[-1, 0]]  # the header still says first..last: only the points go backwards
    con.execute("UPDATE series_blocks SET data = ? WHERE id = ?", (S.encode_points(it[::1], wall, val), bid))


#: damaged series ``check`` must find (it never read the series tables): (mutation, words of the message)
CHECK_CASES = {
    "steps-backwards": (_steps_backwards, "go backwards"),
    "pyramid-all-ones": (_forge_series_levels(None, _all_ones), "val_loss"),
    "pyramid-flat-50": (_forge_series_levels(None, _flat_50), "val_loss"),
    "level1-spike": (_forge_series_levels({1}, _spike_50), "val_loss"),
    "orphan-block": (lambda c: c.execute("INSERT INTO series_blocks(series, first_iteration, last_iteration, n, "
                                         "data) SELECT 999, first_iteration, last_iteration, n, data FROM "
                                         "series_blocks LIMIT 1"), "belong to no series"),
    "extra-chunk": (lambda c: c.execute("INSERT INTO series_lod SELECT series, 7, chunk, n, first_iteration, "
                                        "last_iteration, data FROM series_lod WHERE level = 0 LIMIT 1"),
                    "not accounted for"),
}


# --------------------------------------------------------------------------- item 1: check reads the series

@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_check_reads_every_series_block_and_bucket(name, good, tmp_path, capsys):
    p = _sql(_copy(good, tmp_path, name), CHECK_CASES[name][0])
    before = _sha(p)
    rc, out, err = _run(["check", str(p)], capsys)
    assert rc == 2, out
    _one_line(err, p, CHECK_CASES[name][1])
    assert _sha(p) == before


def test_check_of_a_good_file_counts_its_series(good, capsys):
    rc, out, err = _run(["check", str(good)], capsys)
    assert rc == 0 and err == "", err
    assert f"3 series of {VAL_POINTS + ACC_POINTS:,} points decode" in out, out


@pytest.mark.parametrize("name", ["pyramid-all-ones", "pyramid-flat-50", "level1-spike"])
def test_a_forged_series_pyramid_is_never_drawn(name, good, tmp_path):
    """A window of any width (points, level 0, 1 and 4) refuses the series instead of drawing it; a forged
    level 1 is refused by what reads level 1 or 0 (the points and the levels above it are true)."""
    p = _sql(_copy(good, tmp_path, name), CHECK_CASES[name][0])
    for width in (1000, 200, 50, 1):
        with Recording(p) as rec:
            w = RunWindows.from_recording(rec)
            if name == "level1-spike" and width in (1000, 1):
                assert w.series("val_loss", 0, VAL_POINTS, width).value.max() < 3.0 if width == 1000 else \
                    w.series("val_loss", 0, VAL_POINTS, width).max.max() < 3.0
                continue
            with pytest.raises(RecordingError, match="val_loss"):
                w.series("val_loss", 0, VAL_POINTS, width)
    with Recording(good) as rec:  # the good file draws at every width
        w = RunWindows.from_recording(rec)
        got = [w.series("val_loss", 0, VAL_POINTS, width) for width in (1000, 200, 50, 1)]
        assert [g.level for g in got] == [None, 0, 1, 4]
        assert got[-1].max.max() == pytest.approx(3.0, abs=1e-3) and got[-1].min.min() == pytest.approx(1.0, abs=1e-3)


# --------------------------------------------------------------------------- item 2: upgrade copies exactly

def _rename(*names):
    def mutate(con):
        for sid, name in zip((_sid(con, "val_loss"), _sid(con, "acc")), names):
            con.execute("UPDATE series SET name = ? WHERE id = ?", (name, sid))
    return mutate


def _no_unique_two_val_loss(con):
    con.execute("ALTER TABLE series RENAME TO series_old")
    con.execute("CREATE TABLE series (id INTEGER PRIMARY KEY, name TEXT NOT NULL)")
    con.execute("INSERT INTO series SELECT id, name FROM series_old")
    con.execute("DROP TABLE series_old")
    con.execute("UPDATE series SET name = 'val_loss' WHERE name = 'acc'")


UPGRADE_REFUSED = {
    "no-series-lod": (lambda c: c.execute("DROP TABLE series_lod"), "series_lod missing"),
    "control-char-twins": (_rename("val\x1bloss", "val\x07loss"), "control characters"),
    "two-val-loss-without-unique": (_no_unique_two_val_loss, "appears twice"),
    "newline-name": (_rename("val\nloss"), "control characters"),
    "nul-name": (_rename("val\x00loss"), "control characters"),
    "bidi-override-name": (_rename("val\u202eloss"), "control characters"),
    "builtin-name": (_rename("train_loss"), "built-in"),
}


@pytest.mark.parametrize("name", sorted(UPGRADE_REFUSED))
def test_upgrade_refuses_series_it_cannot_copy_exactly(name, good, tmp_path, capsys):
    """Before: exit 0 and "wrote", with series lost, merged or renamed with '?'."""
    p = _sql(_copy(good, tmp_path, name), UPGRADE_REFUSED[name][0])
    dst = tmp_path / "copy.gda"
    rc, out, err = _run(["upgrade", str(p), str(dst)], capsys)
    assert rc == 2, (out, err)
    _one_line(err, p, UPGRADE_REFUSED[name][1])
    assert not dst.exists() and sorted(os.listdir(tmp_path)) == [p.name]
    rc, out, err = _run(["info", str(p)], capsys)  # what upgrade refuses, the reader reports
    assert rc == 2
    _one_line(err, p, UPGRADE_REFUSED[name][1])


def _all_points(p: Path) -> dict:
    with Recording(p) as rec:
        return {n: rec.read_series(n) for n in rec.series_names(builtin=False)}


def test_upgrade_copies_every_series_exactly(good, tmp_path):
    """Before: a series without points was dropped (and the verification did not notice)."""
    dst = tmp_path / "copy.gda"
    upgrade(good, dst)
    a, b = _all_points(good), _all_points(dst)
    assert list(a) == list(b) == ["val_loss", "acc", "empty"]
    for name in a:
        for f in ("iteration", "value", "wall_time"):
            assert np.array_equal(getattr(a[name], f), getattr(b[name], f)), (name, f)
    assert len(b["empty"]) == 0 and len(b["val_loss"]) == VAL_POINTS


# --------------------------------------------------------------------------- item 3: linear in the series

def _many_series(p: Path, n: int) -> Path:
    """A valid file with ``n`` series of one point each: the writer writes the first, raw SQL repeats its
    rows under new names (each series' block and pyramid are those of one point)."""
    with RecordingWriter(p, GRID, {"name": p.stem}) as w:
        w.append(0, GRID.astype(np.float32))
        w.series.log("s00000", 1.0, 0)

    def mutate(con):
        con.executemany("INSERT INTO series(id, name) VALUES (?, ?)", ((i + 1, f"s{i:05d}") for i in range(1, n)))
        con.execute("INSERT INTO series_blocks(series, first_iteration, last_iteration, n, data) SELECT s.id, "
                    "b.first_iteration, b.last_iteration, b.n, b.data FROM series s, series_blocks b WHERE s.id > 1")
        con.execute("INSERT INTO series_lod SELECT s.id, l.level, l.chunk, l.n, l.first_iteration, "
                    "l.last_iteration, l.data FROM series s, series_lod l WHERE s.id > 1")
    return _sql(p, mutate)


def _upgrade_and_read_all(p: Path, dst: Path) -> float:
    t = time.perf_counter()
    upgrade(p, dst)
    with Recording(dst) as rec:
        names = rec.series_names(builtin=False)
        total = sum(len(rec.read_series(name)) for name in names)
    assert total == len(names)
    return time.perf_counter() - t


def test_upgrade_and_reading_are_linear_in_the_number_of_series(tmp_path):
    """Before: 10,000 series of one point took 130 s to upgrade and over 60 s to read, growing with the
    square of the count (every commit staged every series; every read listed every name).  A complexity
    check, not a speed one: ten times the series must take far less than a hundred times as long."""
    small = _upgrade_and_read_all(_many_series(tmp_path / "s.gda", 1000), tmp_path / "s2.gda")
    big = _upgrade_and_read_all(_many_series(tmp_path / "b.gda", 10000), tmp_path / "b2.gda")
    assert big < 30 * max(small, 0.05), (small, big)
    with Recording(tmp_path / "b2.gda") as rec:
        assert rec.read_series("s09999").value.tolist() == [1.0] and len(rec.series_names()) == 10003


# --------------------------------------------------------------------------- item 4: series bombs

def test_a_series_declaring_more_points_than_the_budget_is_refused_before_decoding(tmp_path):
    """A small file whose series blocks declare 45 million points (1 GiB decoded; before: decoded whole)."""
    p = tmp_path / "bomb.gda"
    RecordingWriter(p, GRID, {"name": "bomb"}).close()
    con = sqlite3.connect(p, isolation_level=None)
    con.execute("BEGIN")
    sid = con.execute("INSERT INTO series(name) VALUES ('val_loss')").lastrowid
    zero = np.zeros(S.BLOCK_POINTS)
    blocks = (1 << 30) // (S.BLOCK_POINTS * S.POINT_BYTES) + 1
    for b in range(blocks):
        it = np.arange(b * S.BLOCK_POINTS, (b + 1) * S.BLOCK_POINTS)
        con.execute("INSERT INTO series_blocks(series, first_iteration, last_iteration, n, data) VALUES "
                    "(?, ?, ?, ?, ?)", (sid, int(it[0]), int(it[-1]), S.BLOCK_POINTS, S.encode_points(it, zero, zero)))
    con.execute("COMMIT")
    con.close()
    assert p.stat().st_size < 8 << 20
    t = time.perf_counter()
    with Recording(p) as rec:
        with pytest.raises(RecordingError, match="read budget"):
            rec.read_series("val_loss")
        assert len(rec.read_series("val_loss", 0, 5000)) == 5000  # a range within the budget is read
    assert time.perf_counter() - t < 60


# --------------------------------------------------------------------------- item 5: forged iteration pyramids

def _nan_levels(recs):
    for k in ("env_lo", "env_hi", "cl_lo", "cl_hi", "cl_first", "cl_last"):
        recs[k][:] = np.nan
    recs["train_loss:min"][:] = np.nan
    recs["train_loss:max"][:] = np.nan


def _inf_levels(recs):
    recs["train_loss:min"][:] = -np.inf
    recs["train_loss:max"][:] = np.inf


def _copied_pyramid(tmp: Path):
    other = write_good(tmp / "other-run.gda")
    with RecordingWriter(tmp / "other.gda", GRID, {"name": "other"}, block_rows=64) as w:
        for i in range(600):
            w.append(i, (3.0 + GRID * 0.2 - i * 1e-3).astype(np.float32), epoch=i // 100, train_loss=3.0 - i * 1e-3,
                     wall_time=1.7e9 + i)
    other.unlink()

    def mutate(con):
        con.execute("DELETE FROM lod")
        con.execute("ATTACH DATABASE ? AS o", (str(tmp / "other.gda"),))
        con.execute("INSERT INTO lod SELECT * FROM o.lod")
    return mutate


def _schema1_claims_2(con):
    """Blocks stored raw as schema 1 wrote them, in a file that says schema 2 and keeps its stored pyramid."""
    from recorder.codec import decode_block

    cols_v2 = schema.block_columns()
    for row in con.execute(f"SELECT id, n, {', '.join(cols_v2)} FROM blocks").fetchall():
        cols, phi, tc, tr = decode_block(row[2:], row[1], len(GRID))
        raw = [np.asarray(cols[n], d).tobytes() for n, d in schema.FIELDS_V1]
        raw += [np.asarray(phi).tobytes(), np.asarray(tc).tobytes()] + [np.asarray(tr[n]).tobytes()
                                                                         for n in schema.TRIAL_DTYPES]
        names = [f"f_{n}" for n, _ in schema.FIELDS_V1] + list(schema.PHI_TRIAL_COLUMNS)
        con.execute(f"UPDATE blocks SET {', '.join(f'{c} = ?' for c in names)} WHERE id = ?", (*raw, row[0]))


OPEN_CASES = {
    "every-level-nan": lambda tmp: _every_level(_nan_levels),
    "every-level-inf": lambda tmp: _every_level(_inf_levels),
    "copied-pyramid": _copied_pyramid,
    "schema1-claims-2": lambda tmp: _schema1_claims_2,
}


@pytest.mark.parametrize("name", sorted(OPEN_CASES))
def test_forged_iteration_pyramid_is_refused_at_open(name, tmp_path, capsys):
    """Before: info, render and compare showed numbers that are not in the data (only check refused)."""
    p = write_good(tmp_path / f"{name}.gda")
    _sql(p, OPEN_CASES[name](tmp_path))
    before = _sha(p)
    for argv in (["info", str(p)], ["compare", str(p)], ["render", str(p), "-o", str(tmp_path / "o.png")],
                 ["check", str(p)]):
        rc, out, err = _run(argv, capsys)
        assert rc == 2, (argv, out, err)
        _one_line(err, p, "damaged")
    assert not (tmp_path / "o.png").exists() and _sha(p) == before


def test_a_level_that_contradicts_the_one_above_is_never_drawn(tmp_path):
    """A level-1 spike (every level above it true): before, a zoom at level 1 drew the spike."""
    p = write_good(tmp_path / "spike.gda", n=6000, events=0)

    def spike(recs):
        recs["env_hi"][5] = 50.0
    _sql(p, forge_chunk(lambda _c: 1, spike))
    with Recording(p) as rec:
        w = RunWindows.from_recording(rec)
        for level in (1, 0):
            with pytest.raises(RecordingError, match="against level"):
                w.envelope(0, 6000, 10, level=level)
    with Recording(write_good(tmp_path / "good.gda", n=6000, events=0)) as rec:
        w = RunWindows.from_recording(rec)
        assert float(np.nanmax(w.envelope(0, 6000, 10, level=1).recs["env_hi"])) < 20.0


# --------------------------------------------------------------------------- item 6: the old corpus

def test_compressed_trials_bomb_without_a_layout_is_refused_quickly(tmp_path, capsys):
    """640 rows whose trial counts declare 2.6 million trial points (73 MB decoded) in a small file without
    ``meta.lod``: before, every open decoded them all (35 s and 3.95 GB at the corpus' size)."""
    from recorder.codec import encode_block
    from recorder.colcodec import compress_array

    p = write_good(tmp_path / "trials.gda", n=64, events=0)
    rows, per_row = 64, 4096
    zero = {name: np.zeros(rows, dt) for name, dt in schema.ITER_DTYPES.items()}
    tc = np.full(rows, per_row, np.int32)
    tr = {name: np.zeros(rows * per_row, dt) for name, dt in schema.TRIAL_DTYPES.items()}

    def mutate(con):
        con.execute("DELETE FROM meta WHERE key = 'lod'")
        con.execute("DELETE FROM blocks")
        cols = ", ".join(schema.block_columns())
        for b in range(10):
            it = np.arange(b * rows, (b + 1) * rows, dtype=np.int64)
            blobs = encode_block({**zero, "iteration": it}, np.zeros((rows, len(GRID)), np.float32), tc, tr)
            con.execute(f"INSERT INTO blocks(first_iteration, last_iteration, n, {cols}) VALUES "
                        f"({', '.join('?' * (len(blobs) + 3))})", (int(it[0]), int(it[-1]), rows,
                                                                   compress_array(it), *blobs[1:]))
    _sql(p, mutate)
    assert p.stat().st_size < 2 << 20
    rc, out, err = _run(["info", str(p)], capsys)
    assert rc == 2, out
    _one_line(err, p, "trial points")
    with Recording(p) as rec:
        with pytest.raises(RecordingError, match="read budget"):
            rec.read(max_bytes=32 << 20)


def _bad_utf8_in(table: str):
    def mutate(con):
        con.execute("PRAGMA writable_schema = ON")
        sql = con.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
        con.execute("UPDATE sqlite_master SET sql = CAST(? AS TEXT) WHERE name = ?",
                    (sql.encode() + b"\xff", table))
    return mutate


@pytest.mark.parametrize("table", ["series_lod", "series_blocks_by_series"])
def test_malformed_utf8_in_the_series_schema_is_one_line(table, good, tmp_path, capsys):
    """Before: ``unexpected UnicodeDecodeError`` from info, check, render and upgrade."""
    p = _copy(good, tmp_path, table)
    con = sqlite3.connect(p, isolation_level=None)
    _bad_utf8_in(table)(con)
    con.close()
    for argv in (["info", str(p)], ["check", str(p)], ["upgrade", str(p), str(tmp_path / "copy.gda")]):
        rc, out, err = _run(argv, capsys)
        assert rc == 2 and "unexpected" not in err, (argv, err)
        _one_line(err, p, "not valid UTF-8")


# --------------------------------------------------------------------------- odd paths

def test_a_path_that_is_not_utf8_is_named_in_one_line(good, tmp_path):
    """Before: ``unexpected UnicodeEncodeError``, the file not named."""
    bad = os.fsencode(tmp_path) + b"/run-\xff.gda"
    shutil.copyfile(good, bad)
    for argv in (["info"], ["check"], ["render", "-o", os.fsencode(tmp_path / "missing" / "o.png")]):
        proc = subprocess.run([sys.executable, "-m", "gda_gl", argv[0], bad, *argv[1:]], capture_output=True,
                              cwd=str(ROOT), env=dict(os.environ, EGL_PLATFORM="surfaceless"), timeout=120)
        err = proc.stderr.decode("utf-8", "replace")
        assert "Unicode" not in err and "Traceback" not in err, (argv, err)
        if proc.returncode:
            assert len(err.strip().splitlines()) == 1 and "run-\\xff.gda" in err, (argv, err)
    broken = os.fsencode(tmp_path) + b"/broken-\xfe.gda"
    Path(os.fsdecode(broken)).write_bytes(b"not a recording")
    proc = subprocess.run([sys.executable, "-m", "gda_gl", "info", broken], capture_output=True, cwd=str(ROOT))
    err = proc.stderr.decode("utf-8", "replace")
    assert proc.returncode == 2 and "broken-\\xfe.gda" in err and len(err.strip().splitlines()) == 1, err


# --------------------------------------------------------------------------- upgrade after kill -9

def test_upgrade_removes_what_a_killed_upgrade_left_and_names_the_target(good, tmp_path, capsys):
    """Before: kill -9 left a randomly named ``.tmp`` and its ``-journal`` beside the target for ever (16 of
    40 tries), and errors named the temporary file.  The temporary name is now fixed per target."""
    from recorder.upgrade import temporary_name

    dst = tmp_path / "copy.gda"
    tmp = temporary_name(dst)
    tmp.write_bytes(b"half a copy")
    Path(f"{tmp}-journal").write_bytes(b"its journal")
    rc, out, err = _run(["upgrade", str(good), str(dst)], capsys)
    assert rc == 0 and "wrote" in out, err
    assert sorted(os.listdir(tmp_path)) == ["copy.gda"]
    assert _all_points(dst)["val_loss"].value.tolist() == _all_points(good)["val_loss"].value.tolist()


def test_upgrade_killed_mid_copy_leaves_nothing_the_next_one_keeps(tmp_path, capsys):
    """A real kill -9 while the copy is written, then the same upgrade again: one target, nothing beside it."""
    src = write_good(tmp_path / "src.gda", n=20_000, events=0)
    dst = tmp_path / "out" / "copy.gda"
    dst.parent.mkdir()
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); from recorder.upgrade import upgrade; "
            f"upgrade({str(src)!r}, {str(dst)!r})")
    proc = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 60
    from recorder.upgrade import temporary_name
    while not temporary_name(dst).exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    rc, out, err = _run(["upgrade", str(src), str(dst)], capsys)
    assert rc == 0, err
    assert os.listdir(dst.parent) == ["copy.gda"]
    with Recording(dst) as rec:
        assert rec.n_iterations() == 20_000


# --------------------------------------------------------------------------- odd metadata

@pytest.mark.parametrize("grid", ['["0", "1", "2"]', '[0, "1.5", 2]', '[false, true]'])
def test_alpha_grid_values_given_as_text_are_refused(grid, tmp_path, capsys):
    """Before: ``meta.alpha_grid = ["0", "1", "2"]`` read as the numbers 0, 1, 2."""
    p = write_good(tmp_path / "grid.gda", n=20, events=0)
    _sql(p, lambda c: c.execute("UPDATE meta SET value = ? WHERE key = 'alpha_grid'", (grid,)))
    rc, out, err = _run(["info", str(p)], capsys)
    assert rc == 2
    _one_line(err, p, "alpha grid must be a list of numbers")
    with pytest.raises(ValueError, match="numbers"):
        RecordingWriter(tmp_path / "new.gda", ["0", "1"])


def test_per_row_alphas_outside_the_nominal_interval_are_refused(tmp_path):
    """The format says every row lies in the nominal interval; a row reaching 5.0 in a 0..2 file was read."""
    from recorder.codec import decode_block, encode_block

    p = tmp_path / "adaptive.gda"
    a = np.array([0.0, 1.0, np.float32(2.0), np.nan, np.nan, np.nan, np.nan, np.nan])
    with RecordingWriter(p, GRID, {"name": "a"}, row_alphas=True) as w:
        for i in range(5):
            w.append(i, np.where(np.isnan(a), np.nan, 1.0).astype(np.float32), alphas=a)
    with Recording(p) as rec:
        assert np.nanmax(rec.read().row_alphas) == 2.0  # the end anchor itself is inside
    with pytest.raises(ValueError, match="nominal interval"), \
            RecordingWriter(p, GRID, append=True, row_alphas=True) as w:
        w.append(10, np.ones(8, np.float32), alphas=np.linspace(0.0, 5.0, 8))

    def forge(con):
        names = schema.block_columns(row_alphas=True)
        row = con.execute(f"SELECT id, n, {', '.join(names)} FROM blocks").fetchone()
        cols, phi, tc, tr = decode_block(row[2:], row[1], len(GRID), row_alphas=True)
        ra = np.array(cols["alpha"])
        ra[2, 2] = 5.0
        blobs = encode_block({**cols, "alpha": ra}, phi, tc, tr)
        con.execute(f"UPDATE blocks SET {', '.join(f'{c} = ?' for c in names)} WHERE id = ?", (*blobs, row[0]))
    _sql(p, forge)
    with Recording(p) as rec, pytest.raises(RecordingError, match="nominal interval"):
        rec.read()


# --------------------------------------------------------------------------- odd command-line input

def test_render_of_a_run_with_series_into_a_very_low_image(good, tmp_path, capsys):
    """Before: ``render RUN --size 200x64`` on a run with series: unexpected IndexError (empty legend)."""
    out = tmp_path / "low.png"
    rc, _, err = _run(["render", str(good), "-o", str(out), "--size", "200x64", "--series", "val_loss"], capsys)
    if rc and "display" in err.lower():
        pytest.skip("no GL here")
    assert rc == 0 and out.exists(), err


def test_odd_series_and_scatter_options_are_named_in_one_line(good, tmp_path, capsys):
    """Before: ``--series-log nope`` was reported as ``--series``; ``compare --scatter ''`` was ignored."""
    rc, _, err = _run(["render", str(good), "-o", str(tmp_path / "o.png"), "--series-log", "nope"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "--series-log 'nope': no such series" in err, err
    rc, out, err = _run(["compare", str(good), "--scatter", "", "--png", str(tmp_path / "c.png")], capsys)
    assert rc == 2 and err.count("\n") == 1 and "--scatter ''" in err and out == "", (out, err)


@pytest.mark.parametrize("field, value, words", [
    ("x_axis", "samples", "--x-axis samples"),
    ("highlight", "efficiency <<< 2", "--highlight"),
    ("series", ["nope"], "--series 'nope'"),
])
def test_notebook_refuses_a_view_state_the_cli_refuses(field, value, words, good, tmp_path):
    """Before: the widget was built, then "unexpected ValueError" and a stray ``RFBOutputContext()`` line were
    printed (axis, highlight), or the state was accepted (series)."""
    pytest.importorskip("ipywidgets")
    from gda_gl.compose.state import ViewState
    from gda_gl.notebook import ErrorLine, view

    st = ViewState()
    setattr(st, field, tuple(value) if isinstance(value, list) else value)
    got = view(str(good), state=st)
    assert isinstance(got, ErrorLine), type(got)
    assert repr(got).count("\n") == 0 and words in repr(got) and "unexpected" not in repr(got), repr(got)


def test_the_version_names_the_newest_format_release():
    """Before: ``gda-gl --version`` printed 0.1.0 while the format notes spoke of 0.2, 0.3 and 0.4 files."""
    from recorder._version import FORMAT_RELEASES, __version__

    assert __version__.rsplit(".", 1)[0] == FORMAT_RELEASES[-1][0]
    text = Path(schema.__file__).read_text() + (ROOT / "README.md").read_text()
    for release, _ in FORMAT_RELEASES:
        assert f"gda_gl {release}" in text or f"gda-gl {release}" in text, release


def test_check_reports_progress_in_rows_and_batches_blocks(tmp_path):
    """``gda-gl check`` shows a progress bar (rows verified); decoding several blocks at once finds the same
    forged bucket as one block at a time."""
    import recorder.check as C

    p = write_good(tmp_path / "big.gda", n=3000, events=0)
    seen = []
    assert C.check_recording(p, progress=seen.append).rows == 3000 and sum(seen) == 3000
    _sql(p, forge_chunk(lambda _c: 0, lambda r: r["train_loss:sum"].__setitem__(150, 7.0)))
    for batch in (1, 1 << 16):
        C._BATCH_ROWS, old = batch, C._BATCH_ROWS
        try:
            with pytest.raises(RecordingError, match="train_loss:sum"):
                C.check_recording(p)
        finally:
            C._BATCH_ROWS = old


def test_details_numbers_use_separators_and_are_all_listed(tmp_path):
    """Before: the details column wrote 7654321 without the separators the axes use, and cut its list
    ("... 2 more") at the window's details size."""
    from gda_gl.compose.detail import compose_detail
    from gda_gl.compose.layout import Layout
    from gda_gl.compose.rundata import RunData

    p = tmp_path / "big-it.gda"
    with RecordingWriter(p, GRID, {"name": "big"}) as w:
        for i in range(7_654_320, 7_654_324):
            w.append(i, (1.0 + 0.1 * (GRID - 0.8) ** 2).astype(np.float32), train_loss=1.0, taken_alpha=1.0)
    with Recording(p) as rec:
        run = RunData(rec.read(), name="big")
    for size in ((700, 400), (900, 560)):  # the details PNG and the window's details panel
        _, frame, nums, _ = compose_detail(run, 7_654_321, Layout(*size))
        texts = [t[0] for t in frame.texts]
        assert "7,654,321" in texts and "7654321" not in texts, texts
        assert not any("more" in t for t in texts), (size, texts)
        assert all(k in texts for k in nums), (size, [k for k in nums if k not in texts])
