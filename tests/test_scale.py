"""Very long runs: the stored pyramid, windowed reading, schema-1 files, live growth, memory, damage.

Independent truths: :func:`recorder.pyramid.reference_buckets` (one bucket at a time from every row,
no merge tree), ``Recording.read`` (every row), schema-1 files built here with raw ``sqlite3`` and raw
numpy bytes (not with the project's writer), and pixels of a fresh open.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recorder import pyramid, schema
from recorder.lodstore import decode_chunk, encode_chunk
from recorder.store import Recording, RecordingWriter
from recorder.window import RunWindows

ROOT = Path(__file__).resolve().parents[1]


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _columns(n: int, rng, start: int = 0) -> dict:
    it = start + np.cumsum(rng.integers(1, 4, n))
    cols = {"iteration": it, "batch": it // 7, "epoch": it // 500, "train_loss": rng.normal(1, 0.2, n),
            "taken_alpha": np.where(rng.random(n) < 0.7, 1.0, rng.random(n) * 2),
            "status": rng.integers(0, 4, n), "step_class": rng.integers(0, 4, n), "ls_evals": rng.integers(0, 5, n),
            "efficiency": rng.random(n), "curvature": rng.normal(size=n), "wall_time": 1.7e9 + it * 0.01}
    for name in ("train_loss", "efficiency", "curvature"):
        v = cols[name]
        v[rng.random(n) < 0.05] = np.nan
        v[rng.random(n) < 0.02] = np.inf
    return cols


def _phi(n: int, k: int, rng) -> np.ndarray:
    phi = rng.normal(1, 0.3, (n, k)).astype(np.float32)
    phi[rng.random((n, k)) < 0.05] = np.nan
    phi[rng.random((n, k)) < 0.01] = -np.inf
    return phi


def _trials(n: int, rng):
    tc = rng.integers(0, 4, n)
    m = int(tc.sum())
    return tc, {"alpha": rng.random(m) * 3, "loss": rng.random(m), "slope": np.full(m, np.nan),
                "order": np.zeros(m, np.int32)}


def _assert_buckets_equal(got: dict, ref: dict, where: str) -> None:
    for name in ref:
        a, b = got[name], ref[name]
        if name.endswith(":sum"):
            np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9, err_msg=f"{where} {name}")
        else:
            assert np.array_equal(a, b, equal_nan=True), f"{where} {name}: {a[:6]} != {b[:6]}"


# --------------------------------------------------------------------------- stored pyramid == reference

@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 2500), k=st.integers(1, 5), seed=st.integers(0, 2 ** 31),
       commits=st.lists(st.integers(1, 900), min_size=1, max_size=6))
def test_stored_pyramid_and_windows_equal_a_full_computation(tmp_path_factory, n, k, seed, commits):
    rng = np.random.default_rng(seed)
    path = tmp_path_factory.mktemp("p") / "r.gda"
    grid = np.sort(np.concatenate([[0.0], rng.random(k - 1) * 2])) if k > 1 else np.array([0.0])
    cols, phi = _columns(n, rng), _phi(n, k, rng)
    tc, tr = _trials(n, rng)
    off = np.concatenate([[0], np.cumsum(tc)])
    with RecordingWriter(path, grid, block_rows=int(rng.integers(64, 700)), commit_interval=3600) as w:
        a, i = 0, 0
        while a < n:
            b = min(n, a + commits[i % len(commits)])
            w.append_arrays({c: v[a:b] for c, v in cols.items()}, phi[a:b], tc[a:b],
                            {t: v[off[a]:off[b]] for t, v in tr.items()})
            w.flush()
            a, i = b, i + 1
    with Recording(path) as rec:
        assert rec.version == 2 and rec.has_stored_pyramid()
        d = rec.read()
        win = RunWindows.from_recording(rec)
        counts = win.chunks.counts()
        assert counts[0] == -(-n // pyramid.BASE_ROWS) and counts[-1] == 1
        for level, count in enumerate(counts):
            ref = pyramid.reference_buckets(grid, d.columns, d.phi, level, np.diff(d.trial_offsets),
                                            d.trials["alpha"])
            _assert_buckets_equal(win.chunks.buckets(level, 0, count), ref, f"level {level}")
        # windows: rows and buckets of random ranges against the full read
        it = d.iteration
        for _ in range(5):
            x0, x1 = sorted(rng.uniform(it[0] - 5, it[-1] + 5, 2))
            rows = win.rows(x0, x1)
            sel = (it >= np.ceil(x0)) & (it < np.ceil(x1))
            np.testing.assert_array_equal(rows.iteration, it[sel])
            assert rows.phi.tobytes() == d.phi[sel].tobytes()
            level = int(rng.integers(0, len(counts)))
            got = win.buckets_between(level, x0, x1)
            ref = pyramid.reference_buckets(grid, d.columns, d.phi, level, np.diff(d.trial_offsets),
                                            d.trials["alpha"])
            keep = (ref["last_it"] + 1 > x0) & (ref["first_it"] < x1)
            _assert_buckets_equal(got, {kk: v[keep] for kk, v in ref.items()}, f"window level {level}")


def test_append_to_an_existing_recording_continues_its_pyramid(tmp_path):
    rng = np.random.default_rng(3)
    grid = np.linspace(0, 2, 6)
    n = 5000
    cols, phi = _columns(n, rng), _phi(n, 6, rng)
    path = tmp_path / "a.gda"
    for a, b in ((0, 1234), (1234, 1300), (1300, 5000)):  # three writers, each appending to the last
        with RecordingWriter(path, grid, append=a > 0, block_rows=512) as w:
            w.append_arrays({c: v[a:b] for c, v in cols.items()}, phi[a:b])
    with Recording(path) as rec:
        d = rec.read()
        win = RunWindows.from_recording(rec)
        for level, count in enumerate(win.chunks.counts()):
            _assert_buckets_equal(win.chunks.buckets(level, 0, count),
                                  pyramid.reference_buckets(grid, d.columns, d.phi, level), f"level {level}")


# --------------------------------------------------------------------------- pixels

def _render_png(args, tmp: Path, name: str) -> np.ndarray:
    from PIL import Image

    out = tmp / name
    env = dict(os.environ, EGL_PLATFORM="surfaceless")
    res = subprocess.run([sys.executable, "-m", "gda_gl", "render", *map(str, args), "-o", str(out),
                          "--size", "800x400"], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    return np.asarray(Image.open(out).convert("RGB")).astype(np.int16)


@pytest.mark.gl
def test_one_spike_in_a_long_recording_shows_in_the_whole_run_overview(tmp_path):
    rng = np.random.default_rng(11)
    n, k = 400_000, 8
    grid = np.linspace(0, 2, k)
    base = 1.0 + 0.3 * np.exp(-np.arange(n) / 1e5)
    phi = (base[:, None] + 0.01 * rng.random((n, k))).astype(np.float32)
    spike = int(rng.integers(1000, n - 1000))
    phi[spike, 2] += 5.0  # one sample of one step, inside its drawn part
    path = tmp_path / "long.gda"
    with RecordingWriter(path, grid, commit_interval=3600) as w:
        for a in range(0, n, 65536):
            b = min(n, a + 65536)
            w.append_arrays({"iteration": np.arange(a, b), "train_loss": base[a:b], "taken_alpha": np.ones(b - a)},
                            phi[a:b])
    img = _render_png([path], tmp_path, "o.png")
    # find the plot box: columns of the image where the spike's colour reaches far above the curve
    blue = (img[:, :, 2] - img[:, :, 0]) > 25  # the run's colour (solid or light): not grey, black or white
    rows_with_ink = np.nonzero(blue.any(axis=1))[0]
    top = rows_with_ink.min()
    cols_at_top = np.nonzero(blue[top:top + 3].any(axis=0))[0]
    assert len(cols_at_top) and cols_at_top.max() - cols_at_top.min() <= 3, "the spike is one column wide"
    ink_cols = np.nonzero(blue.any(axis=0))[0]
    frac = (cols_at_top.mean() - ink_cols.min()) / (ink_cols.max() - ink_cols.min())
    assert abs(frac - spike / n) < 0.01, (frac, spike / n)
    # the curve itself sits far below the spike's top
    assert np.median(np.nonzero(blue[:, ink_cols.min() + 5])[0]) - top > 100


def _write_v1(path: Path, grid, cols: dict, phi: np.ndarray, tc, tr, block_rows: int = 300) -> None:
    """A schema-1 recording as gda_gl 0.1 wrote it, built with raw sqlite3 and numpy bytes only."""
    n = len(phi)
    blob_names = [f"f_{f}" for f, _, _ in schema.ITER_FIELDS_V1] + ["phi", "trial_count"] + \
        [f"t_{f}" for f, _, _ in schema.TRIAL_FIELDS]
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=DELETE")
    con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    con.execute("CREATE TABLE blocks (\n    id INTEGER PRIMARY KEY,\n    first_iteration INTEGER NOT NULL,\n"
                "    last_iteration INTEGER NOT NULL,\n    n INTEGER NOT NULL,\n    " +
                ",\n    ".join(f"{c} BLOB NOT NULL" for c in blob_names) + "\n)")
    con.execute("CREATE TABLE events (id INTEGER PRIMARY KEY, iteration INTEGER, wall_time REAL, kind TEXT NOT NULL, "
                "message TEXT NOT NULL)")
    con.execute("PRAGMA application_id = 1195655473")
    con.execute("PRAGMA user_version = 1")
    con.executemany("INSERT INTO meta VALUES (?, ?)", [("run", json.dumps({"name": "old"})),
                                                       ("alpha_grid", json.dumps(list(map(float, grid)))),
                                                       ("created_by", json.dumps("gda_gl 0.1.0"))])
    off = np.concatenate([[0], np.cumsum(tc)])
    for a in range(0, n, block_rows):
        b = min(n, a + block_rows)
        blobs = []
        for f, dt, _ in schema.ITER_FIELDS_V1:
            v = cols.get(f)
            v = np.full(b - a, np.nan if np.dtype(dt).kind == "f" else 0) if v is None else v[a:b]
            blobs.append(np.asarray(v, dt).tobytes())
        blobs += [np.asarray(phi[a:b], "<f4").tobytes(), np.asarray(tc[a:b], "<i4").tobytes()]
        blobs += [np.asarray(tr[f][off[a]:off[b]], dt).tobytes() for f, dt, _ in schema.TRIAL_FIELDS]
        con.execute(f"INSERT INTO blocks (first_iteration, last_iteration, n, {', '.join(blob_names)}) VALUES "
                    f"({', '.join('?' * (len(blob_names) + 3))})",
                    (int(cols["iteration"][a]), int(cols["iteration"][b - 1]), b - a, *blobs))
    con.commit()
    con.close()


@pytest.mark.gl
def test_schema1_recording_opens_renders_like_its_upgrade_and_is_never_modified(tmp_path):
    rng = np.random.default_rng(5)
    n, k = 3000, 9
    grid = np.linspace(0, 2, k)
    cols = _columns(n, rng)
    cols["train_loss"] = np.abs(cols["train_loss"])
    phi = np.abs(_phi(n, k, rng))
    tc, tr = _trials(n, rng)
    old = tmp_path / "old.gda"
    _write_v1(old, grid, cols, phi, tc, tr)
    before = _sha(old)
    with Recording(old) as rec:
        assert rec.version == 1 and not rec.has_stored_pyramid()
        d = rec.read()
        np.testing.assert_array_equal(d.iteration, cols["iteration"])
        assert d.phi.tobytes() == phi.tobytes()
        win = RunWindows.from_recording(rec)  # indexed in memory
        for level, count in enumerate(win.chunks.counts()):
            _assert_buckets_equal(win.chunks.buckets(level, 0, count),
                                  pyramid.reference_buckets(grid, d.columns, d.phi, level, np.diff(d.trial_offsets),
                                                            d.trials["alpha"]), f"v1 level {level}")
    new = tmp_path / "new.gda"
    res = subprocess.run([sys.executable, "-m", "gda_gl", "upgrade", str(old), str(new)], capture_output=True,
                         text=True)
    assert res.returncode == 0, res.stderr
    with Recording(new) as rec:
        assert rec.version == 2
        d2 = rec.read()
        assert d2.phi.tobytes() == d.phi.tobytes() and np.array_equal(d2.trials["alpha"], d.trials["alpha"])
    for args in ([], ["--range", "1000:1060"], ["--color-by", "efficiency"]):
        a = _render_png([old, *args], tmp_path, "a.png")
        b = _render_png([new, *args], tmp_path, "b.png")
        assert np.array_equal(a, b), f"schema 1 and 2 draw different pixels for {args}"
    info = subprocess.run([sys.executable, "-m", "gda_gl", "info", str(old)], capture_output=True, text=True)
    assert info.returncode == 0 and "schema 1" in info.stdout and f"{n:,}" in info.stdout, info.stderr
    # never modified, no journal left behind; upgrade refuses to replace anything
    assert _sha(old) == before
    assert not any(Path(str(old) + s).exists() for s in ("-wal", "-shm", "-journal"))
    res = subprocess.run([sys.executable, "-m", "gda_gl", "upgrade", str(old), str(new)], capture_output=True,
                         text=True)
    assert res.returncode == 2 and "already exists" in res.stderr and "Traceback" not in res.stderr
    with pytest.raises(Exception, match="schema-1"):
        RecordingWriter(old, grid, append=True)
    assert _sha(old) == before


# --------------------------------------------------------------------------- live growth

def test_live_follower_sees_what_a_fresh_open_sees(tmp_path):
    rng = np.random.default_rng(8)
    grid = np.linspace(0, 2, 5)
    n = 20_000
    cols, phi = _columns(n, rng), _phi(n, 5, rng)
    tc, tr = _trials(n, rng)
    off = np.concatenate([[0], np.cumsum(tc)])
    path = tmp_path / "live.gda"
    w = RecordingWriter(path, grid, commit_interval=0.02, block_rows=1024)
    w.append_arrays({c: v[:10] for c, v in cols.items()}, phi[:10], tc[:10], {t: v[:off[10]] for t, v in tr.items()})
    w.flush()
    done = threading.Event()

    def produce():
        a = 10
        while a < n:
            b = min(n, a + int(rng.integers(1, 700)))
            w.append_arrays({c: v[a:b] for c, v in cols.items()}, phi[a:b], tc[a:b],
                            {t: v[off[a]:off[b]] for t, v in tr.items()})
            time.sleep(0.002)
            a = b
        w.close()
        done.set()

    with Recording(path) as rec:
        follower = RunWindows.from_recording(rec)
        decoded_before = follower.decoded_blocks
        th = threading.Thread(target=produce)
        th.start()
        grown = 0
        while not done.is_set():
            grown += follower.refresh()
            follower.rows(follower.span()[1] - 50, follower.span()[1])  # what a follow view reads: the tail
            time.sleep(0.01)
        th.join()
        grown += follower.refresh()
        assert follower.n_rows == n and grown == n - 10
        assert follower.decoded_blocks - decoded_before < 3 * (n // 1024 + 1) + 200  # only new blocks, not all
        with Recording(path) as rec2:
            fresh = RunWindows.from_recording(rec2)
            assert fresh.chunks.counts() == follower.chunks.counts()
            for level, count in enumerate(fresh.chunks.counts()):
                _assert_buckets_equal(follower.chunks.buckets(level, 0, count), fresh.chunks.buckets(level, 0, count),
                                      f"level {level}")
            d = rec2.read()
            ref = pyramid.reference_buckets(grid, d.columns, d.phi, 0, np.diff(d.trial_offsets), d.trials["alpha"])
            _assert_buckets_equal(fresh.chunks.buckets(0, 0, 10 ** 9), ref, "fresh level 0")


# --------------------------------------------------------------------------- memory

def test_reading_a_run_ten_times_the_cache_keeps_memory_bounded(tmp_path, monkeypatch):
    import recorder.window as window

    rng = np.random.default_rng(2)
    grid = np.linspace(0, 2, 32)
    n = 150_000  # about 150,000 x (128 B phi + ~90 B columns) = 33 MB decoded
    path = tmp_path / "big.gda"
    with RecordingWriter(path, grid, commit_interval=3600) as w:
        for a in range(0, n, 30_000):
            b = min(n, a + 30_000)
            w.append_arrays({"iteration": np.arange(a, b), "train_loss": rng.random(b - a),
                             "taken_alpha": np.ones(b - a)}, rng.random((b - a, 32)).astype(np.float32))
    monkeypatch.setattr(window, "BLOCK_CACHE_BYTES", 3 << 20)  # 3 MB: the run is ten times that
    with Recording(path) as rec:
        win = RunWindows.from_recording(rec)
        tracemalloc.start()
        total = 0
        for x in range(0, n, 2_000):
            total += len(win.rows(x, x + 2_000))
            win.envelope(0, n, 800)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert total == n
    assert peak < 16 << 20, f"peak {peak / 2**20:.1f} MB while reading a {n}-row run through a 3 MB cache"


# --------------------------------------------------------------------------- damaged pyramids
# Each damage is applied wherever the commands below read the pyramid (info reads only the top bucket,
# render the level its view needs), so every command must meet it.

def _good(tmp_path: Path) -> Path:
    rng = np.random.default_rng(4)
    grid = np.linspace(0, 2, 4)
    n = 200_000  # at 1600 px, 125 rows per column: render draws from the pyramid
    path = tmp_path / "good.gda"
    with RecordingWriter(path, grid, commit_interval=3600) as w:
        w.append_arrays(_columns(n, rng), _phi(n, 4, rng))
    return path


def _damage_short_blob(con):
    con.execute("UPDATE lod SET data = substr(data, 1, length(data) - 7)")


def _damage_counts(con):
    for row in con.execute("SELECT level, chunk, n, first_iteration, last_iteration, data FROM lod").fetchall():
        recs = decode_chunk(*row)
        recs[f"status:{schema.STATUS_OK}"] = recs[f"status:{schema.STATUS_OK}"] + 1
        con.execute("UPDATE lod SET data = ? WHERE level = ? AND chunk = ?", (encode_chunk(recs), row[0], row[1]))


def _damage_level(con):
    con.execute("DELETE FROM lod WHERE level = 2")


def _damage_top(con):
    lvl = con.execute("SELECT MAX(level) FROM lod").fetchone()[0]
    con.execute("DELETE FROM lod WHERE level = ?", (lvl,))


def _damage_type(con):
    con.execute("UPDATE lod SET data = 'text'")


@pytest.mark.parametrize("damage", [_damage_short_blob, _damage_counts, _damage_level, _damage_top, _damage_type])
def test_damaged_pyramid_gets_one_line_and_exit_2(tmp_path, damage):
    src = _good(tmp_path)
    bad = tmp_path / "bad.gda"
    shutil.copy(src, bad)
    con = sqlite3.connect(bad)
    damage(con)
    con.commit()
    con.close()
    before = _sha(bad)
    env = dict(os.environ, EGL_PLATFORM="surfaceless")
    for cmd in (["info", str(bad)], ["render", str(bad), "-o", str(tmp_path / "x.png")],
                ["compare", str(bad), str(src)]):
        res = subprocess.run([sys.executable, "-m", "gda_gl", *cmd], capture_output=True, text=True, env=env,
                             timeout=120)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 2, (cmd, res.stdout, res.stderr)
        assert len(lines) == 1 and "bad.gda" in lines[0] and "pyramid" in lines[0], (cmd, res.stderr)
        assert "Traceback" not in res.stderr
    assert _sha(bad) == before


@pytest.mark.gl
def test_colour_by_and_highlight_show_in_the_overview_of_a_long_recording(tmp_path):
    """Zoomed out to 250 rows per pixel column, colours and fading come from the pyramid's aggregates."""
    n, k = 400_000, 4
    grid = np.linspace(0, 2, k)
    it = np.arange(n)
    phi = np.tile(np.linspace(1.0, 1.2, k, dtype=np.float32), (n, 1))
    eff = np.where(it < n // 2, 0.05, 0.95)
    cls = np.where(it < n // 4, schema.CLASS_OVERSHOOT, schema.CLASS_UNDERSHOOT)
    path = tmp_path / "c.gda"
    with RecordingWriter(path, grid, commit_interval=3600) as w:
        w.append_arrays({"iteration": it, "train_loss": phi[:, 0], "taken_alpha": np.ones(n), "efficiency": eff,
                         "step_class": cls}, phi)
    img = _render_png([path, "--color-by", "efficiency"], tmp_path, "e.png")
    ink = (np.abs(img - 255).sum(axis=2) > 60) & ~((np.abs(img[:, :, 0] - img[:, :, 1]) < 12) &
                                                    (np.abs(img[:, :, 1] - img[:, :, 2]) < 12))
    cols = np.nonzero(ink[40:-60].any(axis=0))[0]
    left = img[40:-60, cols.min() + 40][ink[40:-60, cols.min() + 40]].mean(axis=0)
    right = img[40:-60, cols.max() - 120][ink[40:-60, cols.max() - 120]].mean(axis=0)
    # viridis: low efficiency is purple (blue > green), high is yellow (green > blue)
    assert left[2] > left[1] and right[1] > right[2], (left, right)
    img = _render_png([path, "--highlight", "overshoot"], tmp_path, "h.png")
    sat = img.max(axis=2) - img.min(axis=2)  # the run's blue, solid where matching, faded elsewhere
    a = sat[40:-60, cols.min() + 40].max()
    b = sat[40:-60, cols.max() - 120].max()
    assert a > 2 * b, (a, b)


def test_a_flipped_byte_inside_a_compressed_column_is_an_error_not_wrong_numbers(tmp_path):
    """Zstandard frames carry a checksum: same-length damage in a block is caught when it is decoded."""
    rng = np.random.default_rng(9)
    path = tmp_path / "f.gda"
    with RecordingWriter(path, np.linspace(0, 2, 8)) as w:
        w.append_arrays(_columns(3000, rng), _phi(3000, 8, rng))
    con = sqlite3.connect(path)
    for col in ("phi", "f_train_loss"):
        blob = bytearray(con.execute(f"SELECT {col} FROM blocks WHERE id = 1").fetchone()[0])
        blob[len(blob) // 2] ^= 0x40
        con.execute(f"UPDATE blocks SET {col} = ? WHERE id = 1", (bytes(blob),))
        con.commit()
        with Recording(path) as rec, pytest.raises(Exception, match="block 1"):
            rec.read()
        blob[len(blob) // 2] ^= 0x40
        con.execute(f"UPDATE blocks SET {col} = ? WHERE id = 1", (bytes(blob),))
        con.commit()
    con.close()
    with Recording(path) as rec:
        assert len(rec.read()) == 3000


def test_temp_files_of_writers_that_died_while_creating_are_removed(tmp_path):
    dead = tmp_path / ".gda-999999-0123456789ab.tmp"   # no such pid
    live = tmp_path / f".gda-{os.getpid()}-0123456789ab.tmp"
    other = tmp_path / ".gda-999999-notours.tmp"
    for p in (dead, live, other):
        p.write_bytes(b"x")
        os.utime(p, (time.time() - 3600, time.time() - 3600))
    young = tmp_path / ".gda-999998-abcdefabcdef.tmp"
    young.write_bytes(b"x")
    with RecordingWriter(tmp_path / "new.gda", [0.0, 1.0]) as w:
        w.append(0, [1.0, 0.5])
    assert not dead.exists() and live.exists() and other.exists() and young.exists()


def test_compare_row_from_the_pyramid_equals_the_row_from_every_row(tmp_path):
    """compare's fast path (the whole-run bucket) against its plain twin over every row."""
    from gda_gl.compose.compare import run_summary, summary_from_bucket

    rng = np.random.default_rng(12)
    n, k = 7000, 6
    cols, phi = _columns(n, rng), _phi(n, k, rng)
    tc, tr = _trials(n, rng)
    path = tmp_path / "c.gda"
    with RecordingWriter(path, np.linspace(0, 2, k), block_rows=1000) as w:
        w.append_arrays(cols, phi, tc, tr)
    with Recording(path) as rec:
        windows = RunWindows.from_recording(rec)
        fast = summary_from_bucket("r", windows.summary(), windows)  # the median from the rows (issue 29)
        plain = run_summary("r", rec.read())
    assert fast.keys() == plain.keys()
    for key, v in plain.items():
        if isinstance(v, float):
            np.testing.assert_allclose(fast[key], v, rtol=1e-6, equal_nan=True, err_msg=key)  # float32 statistics
        else:
            assert fast[key] == v, key
