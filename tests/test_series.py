"""Logged scalar series (issue 18): storage, pyramid, windows, crash safety, compatibility, bad input.

Truth is independent of the code under test where it can be: the values the test logged, a
brute-force reduction of them (:func:`recorder.series.reference_buckets`, one bucket at a time, no
merging tree), raw SQLite, a killed subprocess, and the previous release's own reader run from a
``git archive`` of its commit.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from recorder import series as S
from recorder.errors import RecordingError
from recorder.store import Recording, RecordingWriter
from recorder.window import RunWindows

GRID = np.linspace(0.0, 2.0, 8)
PREVIOUS_RELEASE = "db22684"


def _stored_levels(path: Path, name: str) -> list[dict[str, np.ndarray]]:
    """Every level of a series' stored pyramid, read with raw SQLite (chunks concatenated in order)."""
    con = sqlite3.connect(path)
    try:
        sid = con.execute("SELECT id FROM series WHERE name = ?", (name,)).fetchone()[0]
        levels = []
        for level in range(40):
            rows = con.execute("SELECT chunk, n, data FROM series_lod WHERE series = ? AND level = ? ORDER BY chunk",
                               (sid, level)).fetchall()
            if not rows:
                break
            assert [r[0] for r in rows] == list(range(len(rows)))
            parts = [S.decode_chunk(data, n, level, "test") for _, n, data in rows]
            levels.append({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
        return levels
    finally:
        con.close()


def _assert_buckets_equal(got, want) -> None:
    for name, _, op in S.FIELDS:
        if op == "sum" and got[name].dtype.kind == "f":
            np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-300, err_msg=name)
        else:
            np.testing.assert_array_equal(got[name], want[name], err_msg=name)


def _assert_pyramid_is_brute_force(levels, it, value) -> None:
    counts = S.level_counts(len(it))
    assert [len(lv["rows"]) for lv in levels] == counts
    for level, recs in enumerate(levels):
        _assert_buckets_equal(recs, S.reference_buckets(np.asarray(it), np.asarray(value), level))


def _values(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    v = rng.standard_normal(n) * 10.0 ** rng.integers(-3, 3, n)
    for bad in (np.nan, np.inf, -np.inf):
        v[rng.integers(0, n, max(1, n // 50))] = bad
    return v


# --------------------------------------------------------------------------- the pyramid

@pytest.mark.parametrize("n, batch", [(1, 1), (15, 4), (16, 16), (17, 5), (1000, 999), (70_000, 4_999)])
def test_stored_pyramid_equals_brute_force_at_every_level(tmp_path, n, batch):
    p = tmp_path / "s.gda"
    it = np.sort(np.random.default_rng(1).integers(0, 3 * n, n))  # equal steps allowed, never backwards
    v = _values(n)
    w = RecordingWriter(p, GRID, {"name": "s"}, commit_interval=3600)
    for a in range(0, n, batch):  # one commit per batch: the newest block and chunks grow in place
        for i in range(a, min(n, a + batch)):
            w.series.log("val", v[i], int(it[i]))
        w.flush()
    w.close()
    _assert_pyramid_is_brute_force(_stored_levels(p, "val"), it, v)
    with Recording(p) as rec:
        pts = rec.read_series("val")
    np.testing.assert_array_equal(pts.iteration, it)
    assert pts.value.tobytes() == v.tobytes()  # NaN and +-Inf as logged, bit for bit


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, 3), st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                                                      st.integers(-5, 5))), min_size=1, max_size=400),
       st.lists(st.integers(1, 97), min_size=1, max_size=8))
def test_pyramid_builder_equals_brute_force_hypothesis(points, cuts):
    it = np.cumsum([d for d, _ in points]).astype(np.int64)
    v = np.array([float(x) for _, x in points])
    pyr = S.SeriesPyramid()
    stored: dict = {}
    a, c = 0, 0
    while a < len(v):
        b = min(len(v), a + cuts[c % len(cuts)])
        c += 1
        if c % 3 == 0:  # resume from what a file would hold, as an appending writer does
            counts = pyr.counts()
            last = [(ci, stored[(lv, ci)]) for lv, cnt in enumerate(counts) for ci in [(cnt - 1) // S.CHUNK]]
            rem = pyr.n_points % S.BASE
            pyr = S.SeriesPyramid.resume(pyr.n_points, last, it[a - rem:a] if rem else None,
                                         v[a - rem:a] if rem else None)
        for level, ci, recs in pyr.add(it[a:b], v[a:b]):
            stored[(level, ci)] = recs
        a = b
    levels = [stored[(lv, 0)] for lv in range(len(pyr.counts()))]  # fewer than 4096 buckets: one chunk each
    _assert_pyramid_is_brute_force(levels, it, v)


# --------------------------------------------------------------------------- windows

def _dense_file(p: Path, n: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    w = RecordingWriter(p, GRID, {"name": "d"}, commit_interval=3600)
    its = np.arange(n)
    w.append_arrays({"iteration": its, "lr": 0.1 * np.cos(its / 5000.0) ** 2, "train_loss": 2.0 / (1 + its),
                     "grad_norm": np.full(n, 3.0)}, np.zeros((n, len(GRID)), np.float32))
    val = np.exp(-its[::1000] / 50_000.0)
    val[min(77, len(val) - 1)] = 50.0  # one spike
    for i, x in zip(its[::1000], val):
        w.series.log("val_loss", x, int(i))
    dense = np.sin(its / 300.0)
    dense[min(123_457, n - 1)] = 9.0
    for i in range(n):
        w.series.log("dense", dense[i], i)
    w.close()
    return val, dense


def test_windows_are_bounded_by_pixels_and_keep_extremes(tmp_path):
    p = tmp_path / "d.gda"
    val, dense = _dense_file(p)
    with Recording(p) as rec:
        assert rec.series_names() == ["train_loss", "lr", "grad_norm", "val_loss", "dense"]
        assert rec.series_names(builtin=False) == ["val_loss", "dense"]
        w = RunWindows.from_recording(rec)
        assert w.series_names() == rec.series_names()
        for width in (50, 300, 2000):
            whole = w.series("dense", 0, 200_000, width)
            assert whole.level is not None and width <= len(whole) <= 4 * width + 2 * S.BLOCK_POINTS // 16
            assert whole.max.max() == 9.0 and whole.rows.sum() == 200_000
            v = w.series("val_loss", 0, 200_000, width)  # 200 points: drawn one by one
            assert v.level is None and v.value.max() == 50.0 and v.iteration[77] == 77_000
            lr = w.series("lr", 0, 200_000, width)
            assert lr.level is not None and lr.rows.sum() == 200_000
            assert lr.max.max() == pytest.approx(0.1) and np.all(np.isnan(lr.last))
        zoom = w.series("dense", 123_000, 124_000, 500)
        assert zoom.level is None and len(zoom) == 1000 and zoom.value.max() == 9.0
        np.testing.assert_array_equal(zoom.iteration, np.arange(123_000, 124_000))
        mid = w.series("dense", 100_000, 150_000, 200)  # a bucketed zoom covers exactly the window's points
        assert mid.level is not None and mid.first_it[0] <= 100_000 and mid.last_it[-1] >= 149_999
        assert mid.max.max() == 9.0
        lr_rows = w.series("lr", 10, 20, 100)
        np.testing.assert_array_equal(lr_rows.iteration, np.arange(10, 20))
        np.testing.assert_allclose(lr_rows.value, 0.1 * np.cos(np.arange(10, 20) / 5000.0) ** 2)
        with pytest.raises(KeyError):
            w.series("nope", 0, 10, 10)
        assert rec.read_series("val_loss", 5000, 9000).iteration.tolist() == [5000, 6000, 7000, 8000]


def test_live_reader_sees_exactly_the_committed_points(tmp_path):
    p = tmp_path / "live.gda"
    w = RecordingWriter(p, GRID, {"name": "live"}, commit_interval=3600)
    for i in range(100):
        w.series.log("val", float(i), i)
    w.flush()
    rec = Recording(p)
    win = RunWindows.from_recording(rec)
    assert len(win.series("val", 0, 1e9, 1000)) == 100
    for i in range(100, 5000):
        w.series.log("val", float(i), i)
    assert len(win.series("val", 0, 1e9, 1000)) == 100  # buffered, not committed: not seen
    w.flush()
    got = win.series("val", 0, 1e9, 100)
    assert got.level is not None and got.rows.sum() == 5000 and got.max.max() == 4999.0
    assert len(win.series("val", 0, 1e9, 1000)) == 5000
    w.close()
    rec.close()


# --------------------------------------------------------------------------- crash safety

def test_kill_9_loses_at_most_the_uncommitted_tail(tmp_path):
    p = tmp_path / "crash.gda"
    helper = Path(__file__).parent / "helpers" / "series_proc.py"
    proc = subprocess.Popen([sys.executable, str(helper), str(p), "100000", "0.0002"], stdout=subprocess.PIPE,
                            text=True)
    committed = 0
    try:
        deadline = time.time() + 60
        while time.time() < deadline and committed < 3000:
            line = proc.stdout.readline()
            if line.startswith("committed"):
                committed = int(line.split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert committed >= 3000
    with Recording(p) as rec:
        rows = rec.n_iterations()
        dense, val = rec.read_series("dense"), rec.read_series("val")
    m = len(dense)
    assert rows >= committed and m >= committed - 1 and m <= rows  # a prefix, committed with its rows
    np.testing.assert_array_equal(dense.iteration, np.arange(m))
    np.testing.assert_array_equal(dense.value, np.arange(m, dtype=float))
    np.testing.assert_array_equal(val.iteration, np.arange(0, 7 * len(val), 7))
    _assert_pyramid_is_brute_force(_stored_levels(p, "dense"), dense.iteration, dense.value)
    # the writer died: appending continues the series and its pyramid
    w = RecordingWriter(p, GRID, append=True)
    w.series.log("dense", -1.0, m + 10)
    w.close()
    with Recording(p) as rec:
        d2 = rec.read_series("dense")
    assert len(d2) == m + 1 and d2.value[-1] == -1.0
    _assert_pyramid_is_brute_force(_stored_levels(p, "dense"), d2.iteration, d2.value)


class _FailOn:
    def __init__(self, con, prefix):
        self._con, self.prefix, self.left = con, prefix, 1

    def _check(self, sql):
        if sql.lstrip().upper().startswith(self.prefix) and self.left:
            self.left -= 1
            raise sqlite3.OperationalError("database or disk is full")

    def execute(self, sql, *args):
        self._check(sql)
        return self._con.execute(sql, *args)

    def executemany(self, sql, *args):
        self._check(sql)
        return self._con.executemany(sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


@pytest.mark.parametrize("fail_on", ["INSERT OR REPLACE INTO SERIES_LOD", "UPDATE SERIES_BLOCKS", "COMMIT"])
def test_a_failed_commit_keeps_every_point(tmp_path, fail_on):
    p = tmp_path / "f.gda"
    w = RecordingWriter(p, GRID, {"name": "f"}, commit_interval=3600)
    for i in range(5000):
        w.series.log("val", float(i), i)
    w.flush()
    for i in range(5000, 6000):
        w.series.log("val", float(i), i)
    real = w._con
    w._con = _FailOn(real, fail_on)
    with pytest.raises(RecordingError, match="disk is full"):
        w.flush()
    w._con = real
    w.series.log("val", 6000.0, 6000)
    w.close()
    with Recording(p) as rec:
        pts = rec.read_series("val")
    np.testing.assert_array_equal(pts.value, np.arange(6001, dtype=float))
    _assert_pyramid_is_brute_force(_stored_levels(p, "val"), pts.iteration, pts.value)


# --------------------------------------------------------------------------- compatibility

@pytest.fixture(scope="module")
def previous_release(tmp_path_factory):
    """The previous release's ``recorder`` package, from ``git archive`` of its commit."""
    where = tmp_path_factory.mktemp("oldrel")
    try:
        data = subprocess.run(["git", "-C", str(ROOT), "archive", PREVIOUS_RELEASE, "recorder"], check=True,
                              capture_output=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"the previous release ({PREVIOUS_RELEASE}) is not in this checkout's history")
    subprocess.run(["tar", "-x", "-C", str(where)], input=data, check=True)
    return where


def _old(where: Path, code: str, *args) -> str:
    env = dict(os.environ, PYTHONPATH=str(where))
    r = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True, env=env,
                       cwd=str(where), timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


_OLD_READ = """
import sys, recorder.reader as r
assert r.__file__.startswith(sys.path[1]) or 'oldrel' in r.__file__, r.__file__
rec = r.Recording(sys.argv[1])
d = rec.read()
print(len(d), float(d['lr'][5]), rec.run.get('name'))
"""


def test_previous_release_reads_a_file_with_series(tmp_path, previous_release):
    p = tmp_path / "new.gda"
    _dense_file(p, n=5000)
    with RecordingWriter(p, GRID, append=True) as w:
        w.series.config({"batch_size": 64})
    out = _old(previous_release, _OLD_READ, p).split()
    assert out == ["5000", str(float(0.1 * np.cos(5 / 5000.0) ** 2)), "d"]


_OLD_WRITE = """
import sys, numpy as np
from recorder.writer import RecordingWriter
w = RecordingWriter(sys.argv[1], np.linspace(0.0, 2.0, 8), {"name": "old"})
w.append_arrays({"iteration": np.arange(300), "lr": np.full(300, 0.5)}, np.zeros((300, 8), np.float32))
w.close()
"""


def test_a_file_without_series_tables_opens_and_appends(tmp_path, previous_release):
    p = tmp_path / "old.gda"
    _old(previous_release, _OLD_WRITE, p)
    con = sqlite3.connect(p)
    assert not con.execute("SELECT name FROM sqlite_master WHERE name LIKE 'series%'").fetchall()
    con.close()
    with Recording(p) as rec:
        assert rec.series_names() == list(S.BUILTIN_SERIES) and rec.series_names(builtin=False) == []
        w = RunWindows.from_recording(rec)
        assert w.series_names() == list(S.BUILTIN_SERIES)
        assert np.all(w.series("lr", 0, 300, 10).max == 0.5)
        with pytest.raises(KeyError):
            rec.read_series("val")
    with RecordingWriter(p, GRID, append=True) as w:
        w.append(300, np.zeros(8))
        w.series.log("val", 0.25, 300)
    with Recording(p) as rec:
        assert rec.series_names(builtin=False) == ["val"] and rec.read_series("val").value.tolist() == [0.25]
    _old(previous_release, _OLD_READ, p)  # and the previous release still reads it


def test_stored_series_objects_are_exactly_the_declared_ones(tmp_path):
    p = tmp_path / "a.gda"
    with RecordingWriter(p, GRID, {"name": "a"}) as w:
        w.series.log("val", 1.0, 0)
    with RecordingWriter(p, GRID, append=True) as w:  # the writer's exact schema check accepts the file
        w.series.log("val", 2.0, 1)
    con = sqlite3.connect(p)
    con.execute("DROP INDEX series_blocks_by_series")
    con.execute("CREATE INDEX series_blocks_by_series ON series_blocks (series, n)")
    con.commit()
    con.close()
    with pytest.raises(RecordingError, match="series_blocks_by_series"):
        RecordingWriter(p, GRID, append=True)


def test_damaged_series_data_is_one_line(tmp_path):
    p = tmp_path / "bad.gda"
    with RecordingWriter(p, GRID, {"name": "b"}) as w:
        for i in range(100):
            w.series.log("val", float(i), i)
    con = sqlite3.connect(p)
    con.execute("UPDATE series_blocks SET data = x'00112233'")
    con.execute("UPDATE series_lod SET n = 99999")
    con.commit()
    con.close()
    with Recording(p) as rec:
        with pytest.raises(RecordingError, match="damaged series"):
            rec.read_series("val")
        w = RunWindows.from_recording(rec)
        with pytest.raises(RecordingError, match="damaged series"):
            w.series("val", 0, 100, 1)


# --------------------------------------------------------------------------- bad input

def test_writer_refuses_bad_input_per_call():
    for bad in ("", " ", "x" * 201, "a\x1b[2J", 5, None):
        with pytest.raises(ValueError):
            S.check_name(bad)
    assert S.check_name("x" * 200) == "x" * 200
    with pytest.raises(S.SeriesNameClash, match="built-in"):
        S.check_name("lr")
    for bad in ("1.5", None, [1.0], np.ones(2), object()):
        with pytest.raises(TypeError):
            S.as_value(bad)
    assert S.as_value(np.float32(2.5)) == 2.5 and S.as_value(np.array([3])) == 3.0 and S.as_value(True) == 1.0
    assert math.isnan(S.as_value(float("nan"))) and S.as_value(-math.inf) == -math.inf


def test_recorder_log_bad_input_warns_once_records_an_event_and_training_goes_on(tmp_path, caplog):
    import torch

    from recorder import attach

    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.MSELoss()
    caplog.set_level(logging.WARNING, logger="recorder")
    rec = attach(opt, model, loss_fn, path=tmp_path / "r.gda", probe="cheap")
    rec.log_config(batch_size=4, k=3, note=object())
    rec.log_config({"optimizer.lr": 0.1, "trainer/max_epochs": 3}, k=5)  # W&B / Lightning style: a dict
    rec.log_config(["not", "a", "mapping"])                              # one warning, training goes on
    x, y = torch.randn(4, 3), torch.randn(4, 1)
    for step in range(6):
        loss_fn(model(x), y).backward()
        opt.step()
        opt.zero_grad()
        rec.log("val_loss", torch.tensor(1.0 / (step + 1)))          # a one-element tensor, at the current step
        rec.log_dict({"acc": step / 10, "inf": math.inf, "nan": float("nan")})
        for _ in range(2):                                          # each problem: one warning, one event
            rec.log("val_loss", "high")
            rec.log("val_loss", torch.ones(3))
            rec.log("", 1.0)
            rec.log("y" * 300, 1.0)
            rec.log("acc", 0.0, step=0)                              # backwards: acc is at step + 1
            rec.log("lr", 0.5)                                       # a built-in: refused in one line
    rec.close()
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("recorder")]
    assert sum("built-in" in m for m in warnings) == 1 and all("\n" not in m for m in warnings)
    assert sum("goes backwards" in m for m in warnings) == 1
    assert sum("must be a number" in m for m in warnings) == 1 and sum("elements" in m for m in warnings) == 1
    assert sum("empty" in m for m in warnings) == 1 and sum("characters" in m for m in warnings) == 1
    assert sum("config not recorded" in m and "mapping" in m for m in warnings) == 1
    with Recording(rec.path) as r:
        assert len(r.read()) == 6
        events = r.events("series-rejected")
        assert len(events) == 5
        assert r.series_names(builtin=False) == ["val_loss", "acc", "inf", "nan"]
        v = r.read_series("val_loss")
        np.testing.assert_array_equal(v.iteration, np.arange(1, 7))  # logged after step k: iteration k + 1
        np.testing.assert_allclose(v.value, 1.0 / np.arange(1, 7), rtol=1e-6)
        assert np.all(np.isposinf(r.read_series("inf").value)) and np.all(np.isnan(r.read_series("nan").value))
        assert r.read_series("acc").iteration.tolist() == [1, 2, 3, 4, 5, 6]
        cfg = r.run["config"]
        assert cfg["batch_size"] == 4 and cfg["k"] == 5 and isinstance(cfg["note"], str)
        assert cfg["optimizer.lr"] == 0.1 and cfg["trainer/max_epochs"] == 3


def test_strict_recorder_raises_on_bad_series_input(tmp_path):
    import torch

    from recorder import attach

    model = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with attach(opt, model, torch.nn.MSELoss(), path=tmp_path / "s.gda", probe="cheap", strict=True) as rec:
        with pytest.raises(S.SeriesNameClash):
            rec.log("train_loss", 1.0)
        with pytest.raises(TypeError):
            rec.log("val", "x")


def test_log_many_and_single_points_keep_their_order(tmp_path):
    p = tmp_path / "m.gda"
    v = _values(30_000, seed=3)
    its = np.arange(30_000) // 2  # two points per step
    with RecordingWriter(p, GRID, {"name": "m"}, commit_interval=3600) as w:
        w.series.log_many("x", its[:10_000], v[:10_000])
        for i in range(10_000, 10_100):
            w.series.log("x", v[i], int(its[i]))
        w.series.log_many("x", its[10_100:20_000], v[10_100:20_000], wall_time=5.0)
        w.flush()
        w.series.log("x", v[20_000], int(its[20_000]))
        w.series.log_many("x", its[20_001:], v[20_001:])
        with pytest.raises(ValueError, match="backwards"):
            w.series.log_many("x", [0, 1], [1.0, 2.0])
        with pytest.raises(TypeError):
            w.series.log_many("x", [20_000.5], [1.0])
    with Recording(p) as rec:
        pts = rec.read_series("x")
    np.testing.assert_array_equal(pts.iteration, its)
    assert pts.value.tobytes() == v.tobytes() and np.all(pts.wall_time[10_100:20_000] == 5.0)
    _assert_pyramid_is_brute_force(_stored_levels(p, "x"), its, v)


def test_info_lists_series_and_config(tmp_path):
    from gda_gl.compose.summary import info_text

    p = tmp_path / "i.gda"
    with RecordingWriter(p, GRID, {"name": "i"}) as w:
        w.append_arrays({"iteration": np.arange(50)}, np.zeros((50, len(GRID)), np.float32))
        w.series.log_many("val_loss", np.arange(0, 50, 10), np.ones(5))
        w.series.config({"batch_size": 32, "lr": 0.25})
    with Recording(p) as rec:
        text = info_text(rec)
    assert "series        val_loss (5 points, 0..40)" in text
    assert "config        batch_size=32 lr=0.25" in text


def test_copy_series_keeps_every_point_and_wall_time(tmp_path):
    src, dst = tmp_path / "src.gda", tmp_path / "dst.gda"
    v = _values(9000, seed=5)
    with RecordingWriter(src, GRID, {"name": "src"}) as w:
        w.series.log_many("a", np.arange(9000), v, wall_time=np.arange(9000) * 0.5)
        w.series.log("b", 1.0, 3)
    with Recording(src) as rec, RecordingWriter(dst, GRID, {"name": "dst"}) as w:
        assert S.copy_series(rec, w) == 9001
    with Recording(dst) as rec:
        a = rec.read_series("a")
        assert a.value.tobytes() == v.tobytes() and np.all(a.wall_time == np.arange(9000) * 0.5)
        assert rec.series_names(builtin=False) == ["a", "b"]
    _assert_pyramid_is_brute_force(_stored_levels(dst, "a"), np.arange(9000), v)


def test_upgrade_copies_every_logged_series(tmp_path):
    """gda-gl upgrade of a recording with series keeps every point (it copied blocks and events only)."""
    from recorder.upgrade import upgrade

    src, dst = tmp_path / "s.gda", tmp_path / "copy.gda"
    val, dense = _dense_file(src, n=30_000)
    upgrade(src, dst)
    with Recording(src) as a, Recording(dst) as b:
        assert b.series_names(builtin=False) == a.series_names(builtin=False) == ["val_loss", "dense"]
        for name in ("val_loss", "dense"):
            pa, pb = a.read_series(name), b.read_series(name)
            np.testing.assert_array_equal(pb.iteration, pa.iteration)
            np.testing.assert_array_equal(pb.value, pa.value)
            np.testing.assert_array_equal(pb.wall_time, pa.wall_time)
