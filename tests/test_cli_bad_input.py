"""Every kind of bad input gets one line naming the file, exit status 2, no traceback, no change to the file."""

from __future__ import annotations

import hashlib
import os
import sqlite3

import numpy as np
import pytest

from conftest import foreign_sqlite, run_cli, write_synthetic
from recorder.store import RecordingWriter


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _make_not_sqlite(tmp):
    p = tmp / "notes.gda"
    p.write_text("this is not a database\n" * 50)
    return p, "not a gda recording (not an SQLite database)"


def _make_other_sqlite(tmp):
    return foreign_sqlite(tmp / "other.gda"), "not a gda recording (an SQLite database of another application)"


def _make_newer(tmp):
    p = write_synthetic(tmp / "newer.gda", n=10)
    con = sqlite3.connect(p)
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    return p, "schema version 99 is newer than this gda-gl supports"


def _make_truncated(tmp):
    src = write_synthetic(tmp / "full.gda", n=400, k=64)
    p = tmp / "truncated.gda"
    data = src.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, "truncated"


def _make_truncated_midpage(tmp):
    src = write_synthetic(tmp / "full2.gda", n=50)
    p = tmp / "cut.gda"
    p.write_bytes(src.read_bytes()[:5000])
    return p, "truncated"


def _make_empty(tmp):
    p = tmp / "empty.gda"
    p.write_bytes(b"")
    return p, "empty file (0 bytes)"


def _make_no_iterations(tmp):
    p = tmp / "none.gda"
    RecordingWriter(p, [0.0, 1.0], {"name": "none"}).close()
    return p, "recording holds no iterations"


def _make_missing(tmp):
    return tmp / "does-not-exist.gda", "no such file"


def _make_directory(tmp):
    p = tmp / "adir.gda"
    p.mkdir()
    return p, "is a folder that holds no recordings"  # a folder stands for its *.gda (issue 29)


CASES = [_make_not_sqlite, _make_other_sqlite, _make_newer, _make_truncated, _make_truncated_midpage, _make_empty,
         _make_no_iterations, _make_missing, _make_directory]


@pytest.mark.parametrize("make", CASES, ids=[c.__name__[6:] for c in CASES])
def test_bad_input_one_line_exit_2_file_untouched(tmp_path, make):
    path, expected = make(tmp_path)
    before = _digest(path)
    mtime = path.stat().st_mtime_ns if path.exists() else None
    res = run_cli("info", path)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    assert str(path) in lines[0] and expected in lines[0], lines[0]
    assert _digest(path) == before
    if mtime is not None:
        assert path.stat().st_mtime_ns == mtime
    assert not os.path.exists(str(path) + "-journal")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path):
    p = write_synthetic(tmp_path / "locked.gda", n=5)
    p.chmod(0)
    try:
        res = run_cli("info", p)
        assert res.returncode == 2 and "permission denied" in res.stderr
    finally:
        p.chmod(0o644)


def test_info_on_good_and_bad_together_reports_the_bad_one(tmp_path):
    good = write_synthetic(tmp_path / "good.gda", n=30)
    bad, _ = _make_empty(tmp_path)
    res = run_cli("info", good, bad)
    assert res.returncode == 2
    assert "iterations    30 (0..29)" in res.stdout
    assert res.stderr.strip().endswith("empty file (0 bytes), not a recording")


def test_info_summary_numbers(tmp_path):
    p = write_synthetic(tmp_path / "s.gda", n=250, k=16, batch_every=20)
    res = run_cli("info", p)
    assert res.returncode == 0, res.stderr
    out = res.stdout
    assert "iterations    250 (0..249), epochs 0..2, 13 mini-batches" in out
    assert "samples       4,000 (16 alphas x 250 probed iterations), 375 line-search trial points" in out
    assert "alpha grid    16 values, 0 .. 2 (uniform)" in out
    assert "optimizer     SGD lr=0.1" in out
    assert "probe status  250 ok, 0 non-finite, 0 failed, 0 skipped" in out
    assert "(249.0 s)" in out
    assert "writer        closed" in out


def test_help_and_version():
    res = run_cli("--help")
    assert res.returncode == 0 and "info" in res.stdout
    res = run_cli("--version")
    assert res.returncode == 0 and res.stdout.startswith("gda-gl ")
    res = run_cli()
    assert res.returncode == 2


def test_nan_inf_values_survive_cli_reading(tmp_path):
    p = tmp_path / "nan.gda"
    with RecordingWriter(p, [0.0, 1.0, 2.0]) as w:
        w.append(0, [np.nan, np.inf, -np.inf], train_loss=np.nan, status=1)
        w.append(1, [1.0, 0.5, 2.0], train_loss=1.0)
    res = run_cli("info", p)
    assert res.returncode == 0
    assert "1 ok, 1 non-finite" in res.stdout
