"""Per-row alpha grids (issue 22): storage, reader API, statistics and pyramid against plain twins."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest

from recorder import linestats, pyramid, schema
from recorder.codec import Iterations
from recorder.errors import RecordingError
from recorder.store import Recording, RecordingWriter
from recorder.window import RunWindows

K = 7
NOMINAL = np.linspace(0.0, 2.0, K)


def ragged_rows(n: int, seed: int = 0):
    """n rows of adaptive-looking alphas (0, 1, 2 and a few others; some rows shorter, some unprobed)
    with parabola losses; returns (alphas, phi, columns)."""
    rng = np.random.default_rng(seed)
    alphas = np.full((n, K), np.nan)
    phi = np.full((n, K), np.nan)
    for i in range(n):
        if i % 11 == 5:
            continue  # not probed: no alphas, no losses
        m = K if i % 3 else K - 2
        extra = np.sort(rng.choice(np.arange(1, 64) / 32.0, m, replace=False))
        a = np.unique(np.concatenate([[0.0, 1.0, 2.0], extra]))[:m]
        a = np.unique(np.concatenate([[0.0, 1.0], a]))[:m]
        alphas[i, :m] = a
        phi[i, :m] = 1.0 + rng.uniform(0.2, 2.0) * (a - rng.uniform(0.0, 2.2)) ** 2
    cols = {"iteration": np.arange(n) * 2 + 3, "batch": np.arange(n) // 4, "epoch": np.zeros(n, np.int32),
            "taken_alpha": np.ones(n), "train_loss": np.nanmin(np.where(np.isnan(phi), np.inf, phi), axis=1)}
    return alphas, phi.astype(np.float32), cols


def write_adaptive(path, n=300, half_by_append=True):
    alphas, phi, cols = ragged_rows(n)
    with RecordingWriter(path, NOMINAL, {"name": "adaptive"}, row_alphas=True, block_rows=64) as w:
        h = n // 2 if half_by_append else 0
        for i in range(h):
            w.append(int(cols["iteration"][i]), phi[i], alphas=alphas[i], batch=int(cols["batch"][i]),
                     taken_alpha=1.0, train_loss=float(cols["train_loss"][i]))
        w.append_arrays({k: v[h:] for k, v in cols.items()}, phi[h:], alphas=alphas[h:])
    return alphas, phi


def test_round_trip_and_reader_api(tmp_path):
    p = tmp_path / "a.gda"
    alphas, phi = write_adaptive(p)
    with Recording(p) as rec:
        assert rec.row_alphas and len(rec.alpha_grid) == K
        d = rec.read()
        np.testing.assert_array_equal(d.row_alphas, alphas)
        np.testing.assert_array_equal(d.alphas_of_rows(), alphas)
        np.testing.assert_array_equal(d.phi, phi)
        np.testing.assert_array_equal(d.alpha_grid, NOMINAL)
        part = rec.read(103, 161)  # a slice keeps each row's alphas
        i = int(np.searchsorted(d.iteration, 103))
        np.testing.assert_array_equal(part.row_alphas, alphas[i:i + len(part)])
        both = Iterations.concat([d.slice_rows(0, 10), d.slice_rows(10, 30)])
        np.testing.assert_array_equal(both.alphas_of_rows(), alphas[:30])
    con = sqlite3.connect(p)
    grid = json.loads(con.execute("SELECT value FROM meta WHERE key='alpha_grid'").fetchone()[0])
    con.close()
    assert grid == {"nominal": NOMINAL.tolist(), "per_row": "alpha"}  # the previous release refuses this


def test_shared_grid_files_broadcast_their_grid(tmp_path):
    p = tmp_path / "s.gda"
    with RecordingWriter(p, NOMINAL) as w:
        w.append(0, np.arange(K, dtype=np.float32))
        w.append(1, np.arange(K, dtype=np.float32))
        with pytest.raises(ValueError, match="shared alpha grid"):
            w.append(2, np.zeros(K), alphas=NOMINAL)
    with Recording(p) as rec:
        d = rec.read()
        assert not rec.row_alphas and d.row_alphas is None
        np.testing.assert_array_equal(d.alphas_of_rows(), np.broadcast_to(NOMINAL, (2, K)))


def test_writer_refuses_bad_rows_and_mismatched_appends(tmp_path):
    p = tmp_path / "a.gda"
    with RecordingWriter(p, NOMINAL, row_alphas=True) as w:
        bad = [np.array([0, 1, 0.5, 2, np.nan, np.nan, np.nan]),      # not increasing
               np.array([0, np.nan, 1, 2, np.nan, np.nan, np.nan]),    # a hole
               np.array([0, 1, 2, np.inf, np.nan, np.nan, np.nan])]    # not finite
        for a in bad:
            with pytest.raises(ValueError):
                w.append(0, np.where(np.isnan(a), np.nan, 1.0), alphas=a)
        with pytest.raises(ValueError, match="loss without an alpha"):
            w.append(0, np.ones(K), alphas=[0, 1, 2, np.nan, np.nan, np.nan, np.nan])
        with pytest.raises(ValueError, match="loss without an alpha"):
            w.append(0, np.ones(K))  # a per-row file needs the alphas of every loss
        w.append(0, None)            # an unprobed row: no alphas, no losses
        w.append(1, np.ones(K), alphas=NOMINAL)
    with pytest.raises(RecordingError, match="per-row alphas"):
        RecordingWriter(p, NOMINAL, append=True)
    with RecordingWriter(p, NOMINAL, append=True, row_alphas=True) as w:
        w.append(2, [1, 2, 3, np.nan, np.nan, np.nan, np.nan], alphas=[0, 1, 2, np.nan, np.nan, np.nan, np.nan])
    with Recording(p) as rec:
        d = rec.read()
        assert len(d) == 3 and np.isnan(d.row_alphas[0]).all()
        np.testing.assert_array_equal(d.row_alphas[2, :3], [0, 1, 2])


def test_a_file_whose_column_and_meta_disagree_is_damaged(tmp_path):
    p = tmp_path / "a.gda"
    write_adaptive(p, n=20)
    con = sqlite3.connect(p)
    con.execute("UPDATE meta SET value = ? WHERE key = 'alpha_grid'", (json.dumps(NOMINAL.tolist()),))
    con.commit()
    con.close()
    with pytest.raises(RecordingError, match="disagree"):
        Recording(p)


def test_statistics_per_row_equal_the_shared_grid_path():
    rng = np.random.default_rng(3)
    grid = np.linspace(0, 2, 17)
    phi = 1 + rng.uniform(0.1, 3, (200, 1)) * (grid - rng.uniform(-0.5, 2.5, (200, 1))) ** 2
    phi[3, 4], phi[9] = np.nan, np.nan
    taken = rng.choice([1.0, 0.5, 1.5], 200)
    shared = linestats.line_stats(grid, phi, taken)
    rows = linestats.line_stats(np.broadcast_to(grid, phi.shape), phi, taken)
    twin = linestats.line_stats_reference(np.broadcast_to(grid, phi.shape), phi, taken)
    for name in linestats.STAT_NAMES:
        np.testing.assert_array_equal(rows[name], shared[name])
        np.testing.assert_allclose(twin[name], shared[name], rtol=1e-6, atol=1e-9)


def test_statistics_per_row_equal_each_row_on_its_own_grid():
    alphas, phi, cols = ragged_rows(150, seed=4)
    taken = np.where(np.arange(150) % 4 == 0, 0.75, 1.0)
    got = linestats.line_stats(alphas, phi, taken)
    twin = linestats.line_stats_reference(alphas, phi, taken)
    for i in range(150):
        keep = np.isfinite(alphas[i])
        if not keep.any():  # an unprobed row: nothing known
            assert np.isnan(got["min_phi"][i]) and got["step_class"][i] == schema.CLASS_UNKNOWN
            continue
        one = linestats.line_stats(alphas[i][keep], phi[i][keep][None, :], taken[i])
        for name in linestats.STAT_NAMES:
            np.testing.assert_allclose(got[name][i], one[name][0], rtol=1e-9, atol=1e-12, err_msg=f"{name} {i}")
            np.testing.assert_allclose(twin[name][i], one[name][0], rtol=1e-6, atol=1e-9, err_msg=f"{name} {i}")


def test_pyramid_row_functions_per_row_equal_the_shared_grid():
    rng = np.random.default_rng(5)
    grid = np.linspace(0, 2, 9)
    phi = rng.standard_normal((64, 9)).astype(np.float32)
    phi[2, 3] = np.nan
    taken = rng.choice([1.0, 0.5, np.nan], 64)
    tl = rng.standard_normal(64)
    wide = np.broadcast_to(grid, phi.shape)
    np.testing.assert_array_equal(pyramid.classic_values(wide, phi, tl), pyramid.classic_values(grid, phi, tl))
    c = pyramid.classic_values(grid, phi, tl)
    for a, b in zip(pyramid.row_envelope(wide, phi, taken, c), pyramid.row_envelope(grid, phi, taken, c)):
        np.testing.assert_array_equal(a, b)


def test_pyramid_of_an_adaptive_file_equals_its_plain_twin(tmp_path):
    p = tmp_path / "a.gda"
    alphas, phi = write_adaptive(p, n=600)
    with Recording(p) as rec:
        d = rec.read()
        w = RunWindows.from_recording(rec)
        counts = w.chunks.counts()
        stored = {level: w.chunks.buckets(level, 0, counts[level]) for level in range(len(counts))}
    for level, got in stored.items():
        ref = pyramid.reference_buckets(d.alphas_of_rows(), d.columns, d.phi, level,
                                        np.diff(d.trial_offsets), d.trials["alpha"])
        for name, _, _ in pyramid.BUCKET_FIELDS:
            np.testing.assert_allclose(got[name].astype(np.float64), ref[name].astype(np.float64), rtol=1e-6,
                                       equal_nan=True, err_msg=f"level {level} {name}")
    # the envelope really used each row's own alphas: row i's drawn part is alpha <= 1 of its points
    lo, hi = pyramid.row_envelope(alphas, phi, np.ones(len(phi)), pyramid.classic_values(alphas, phi, d["train_loss"]))
    mine = np.where(alphas <= 1.0, phi, np.nan)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(np.isnan(hi), np.isnan(np.fmax.reduce(mine, axis=1)))
    in_mem = RunWindows.from_iterations(d)
    top_mem = in_mem.summary()
    with Recording(p) as rec:
        top_file = RunWindows.from_recording(rec).summary()
    for name in ("env_lo", "env_hi", "cl_lo", "cl_hi"):
        np.testing.assert_array_equal(top_mem[name], top_file[name])


def test_upgrade_copies_keep_each_rows_alphas(tmp_path):
    from recorder.upgrade import upgrade

    alphas, phi = write_adaptive(tmp_path / "a.gda", n=100)
    upgrade(tmp_path / "a.gda", tmp_path / "b.gda")
    with Recording(tmp_path / "b.gda") as rec:
        d = rec.read()
        assert rec.row_alphas
        np.testing.assert_array_equal(d.row_alphas, alphas)
        np.testing.assert_array_equal(d.phi, phi)
