"""The file format outlives its statistics registry (recorder/schema.py, "New statistics").

* A schema-2 file written before ``micro_batches`` existed (built here by dropping the column with raw SQLite)
  opens, renders, appends and upgrades.
* A release whose registry has one more statistic (``tests/helpers/newer_release.py``, the registry patched
  before anything derives from it) reads, renders and appends files written by this one; this release reads
  and renders files written by it, and refuses to append to them in one line.
* The registry and the frozen tuples agree.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gda_gl.cli import main
from recorder import pyramid, schema, stats
from recorder.errors import RecordingError
from recorder.store import Recording, RecordingWriter
from recorder.window import RunWindows

NEWER = Path(__file__).parent / "helpers" / "newer_release.py"
GRID = [0.0, 0.25, 0.5, 1.0, 1.5]


def _write(path: Path, n: int, first: int = 0, **kw) -> Path:
    it = np.arange(first, first + n)
    phi = ((2.0 * 0.99 ** it)[:, None] * (1.0 + np.asarray(GRID)[None, :] ** 2)).astype(np.float32)
    with RecordingWriter(path, GRID, {"name": path.stem}, block_rows=64, **kw) as w:
        w.append_arrays({"iteration": it, "batch": it // 3, "taken_alpha": np.ones(n), "train_loss": 2 * 0.99 ** it,
                         "ls_evals": (it % 3 == 0).astype(np.int32), "micro_batches": 2, "step_class": it % 4,
                         "efficiency": np.linspace(0, 1, n)}, phi,
                        trial_count=(it % 3 == 0).astype(np.int32) * 2,
                        trials={"alpha": np.tile([0.5, 1.5], int((it % 3 == 0).sum())),
                                "loss": np.ones(2 * int((it % 3 == 0).sum()))})
    return path


def _drop_micro_batches(path: Path) -> None:
    """What a schema-2 writer before micro_batches wrote: the same file without the column (raw SQLite)."""
    con = sqlite3.connect(path)
    try:
        con.execute("ALTER TABLE blocks DROP COLUMN f_micro_batches")
        con.commit()
    finally:
        con.close()


def _digest(path: Path, skip=()) -> dict:
    with Recording(path) as rec:
        d = rec.read()
        out = {n: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for n, v in d.columns.items()
               if n not in skip}
        out["phi"] = hashlib.sha256(d.phi.tobytes()).hexdigest()
        out["trials"] = hashlib.sha256(b"".join(v.tobytes() for v in d.trials.values())).hexdigest()
    return out


def _summary_matches_rows(path: Path) -> None:
    """The stored pyramid's whole-run bucket equals the plain twin computed from the rows read."""
    with Recording(path) as rec:
        assert rec.has_stored_pyramid()
        d = rec.read()
        top = RunWindows.from_recording(rec).summary()
    level = 0
    while pyramid.bucket_rows(level) < len(d):
        level += 1
    ref = pyramid.reference_buckets(d.alpha_grid, d.columns, d.phi, level, np.diff(d.trial_offsets),
                                    d.trials["alpha"])
    for name, _, _ in pyramid.BUCKET_FIELDS:
        a, b = top[name].astype(np.float64), ref[name].astype(np.float64)
        assert np.allclose(a, b, rtol=1e-6, equal_nan=True), (name, a, b)


def _cols(path: Path) -> set[str]:
    con = sqlite3.connect(path)
    try:
        return {r[1] for r in con.execute("PRAGMA table_info(blocks)")}
    finally:
        con.close()


def _newer(*args, check: bool = True) -> dict:
    out = subprocess.run([sys.executable, str(NEWER), *map(str, args)], capture_output=True, text=True, timeout=300)
    if check:
        assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- before micro_batches

def test_schema2_file_from_before_micro_batches_opens_renders_appends(tmp_path, capsys):
    today = _write(tmp_path / "today.gda", 300)
    old = _write(tmp_path / "old.gda", 300)
    _drop_micro_batches(old)
    assert "f_micro_batches" not in _cols(old)
    # every other number as in today's file; the statistic the file lacks reads as its default
    assert _digest(old, skip={"micro_batches"}) == _digest(today, skip={"micro_batches"})
    with Recording(old) as rec:
        assert not rec.read()["micro_batches"].any()
    _summary_matches_rows(old)
    assert main(["info", str(old)]) == 0
    assert main(["render", str(old), "-o", str(tmp_path / "old.png"), "--size", "320x200"]) == 0
    assert (tmp_path / "old.png").stat().st_size > 0
    # appending keeps the file's layout: the new rows' micro_batches read as the default too
    _write(old, 200, first=300, append=True)
    assert "f_micro_batches" not in _cols(old)
    with Recording(old) as rec:
        d = rec.read()
    assert len(d) == 500 and not d["micro_batches"].any()
    np.testing.assert_array_equal(d.iteration, np.arange(500))
    _summary_matches_rows(old)
    # an upgraded copy stores the column again (and the source is not written)
    before = old.read_bytes()
    assert main(["upgrade", str(old), str(tmp_path / "copy.gda")]) == 0
    assert old.read_bytes() == before and "f_micro_batches" in _cols(tmp_path / "copy.gda")
    assert _digest(tmp_path / "copy.gda") == _digest(old)
    capsys.readouterr()


# --------------------------------------------------------------------------- a statistic added later

@pytest.mark.slow
def test_a_release_with_one_more_statistic_reads_renders_and_appends_our_files(tmp_path):
    path = _write(tmp_path / "ours.gda", 300)
    mine = _digest(path)
    got = _newer("read", path)
    assert {k: got[k] for k in mine if k != "trials"} == {k: v for k, v in mine.items() if k != "trials"}
    assert got["rows"] == 300 and got["stored_pyramid"]
    assert got["summary"]["grad_cosine:count"] == 0 and got["summary"]["grad_cosine:min"] is None
    assert got["summary"]["train_loss:count"] == 300
    assert _newer("cli", "render", path, "-o", tmp_path / "ours.png", "--size", "320x200") == {"rc": 0}
    assert _newer("append", path, 100) == {"ok": True}
    assert "f_grad_cosine" not in _cols(path)  # our layout kept; grad_cosine not stored for the new rows
    with Recording(path) as rec:
        assert len(rec.read()) == 400
    _summary_matches_rows(path)
    assert _newer("read", path)["summary"]["grad_cosine:count"] == 0


@pytest.mark.slow
def test_files_of_a_release_with_one_more_statistic_open_here(tmp_path, capsys):
    path = tmp_path / "newer.gda"
    assert _newer("write", path, 300) == {"ok": True}
    assert "f_grad_cosine" in _cols(path)
    theirs = _newer("read", path)
    assert theirs["summary"]["grad_cosine:count"] == 300
    mine = _digest(path)
    assert {k: theirs[k] for k in mine if k != "trials"} == {k: v for k, v in mine.items() if k != "trials"}
    _summary_matches_rows(path)  # the stored pyramid is used, its unknown fields skipped
    with Recording(path) as rec:
        assert "grad_cosine" not in rec.read().columns
    assert main(["info", str(path)]) == 0
    assert main(["render", str(path), "-o", str(tmp_path / "newer.png"), "--size", "320x200"]) == 0
    before = path.read_bytes()
    with pytest.raises(RecordingError, match="does not know \\(grad_cosine\\)"):
        RecordingWriter(path, GRID, append=True)
    assert path.read_bytes() == before
    capsys.readouterr()


# --------------------------------------------------------------------------- the registry and the frozen tuples

def test_registry_agrees_with_the_frozen_format():
    core = dict(schema.FIELDS_V2)
    pinned = {n: (d, dflt) for n, d, dflt in schema.OPTIONAL_V2}
    for st in stats.STATISTICS:
        if st.name in core:
            assert np.dtype(core[st.name]) == np.dtype(st.dtype), f"{st.name}: a frozen dtype changed"
        else:
            assert st.name in pinned, f"release {st.name}: pin it in schema.OPTIONAL_V2 (name, dtype, default)"
            d, dflt = pinned[st.name]
            assert np.dtype(d) == np.dtype(st.dtype)
            assert (math.isnan(dflt) if np.dtype(d).kind == "f" else dflt == 0)
    assert set(schema.V1_NAMES) <= set(core)
    # the frozen pyramid fields are those the registry's frozen statistics aggregate into, in order
    frozen = [(n, np.dtype(d), op) for n, d, op in schema.LOD_FIELDS_V2]
    assert list(pyramid.BUCKET_FIELDS[:len(frozen)]) == frozen
    stat_fields = {f for f, _, _ in frozen if ":" in f}
    want = {x[0] for st in stats.STATISTICS if st.name in core for x in pyramid.stat_bucket_fields(st)}
    assert stat_fields == want
    assert pyramid.layout() == schema.lod_layout(pyramid.BUCKET_FIELDS)


def test_stored_pyramid_layouts_a_reader_accepts():
    base = schema.lod_layout(pyramid.BUCKET_FIELDS)
    assert schema.stored_lod_fields(base, pyramid.BUCKET_FIELDS) is not None
    newer = dict(base, fields=base["fields"] + [["x:min", "<f8", "min"]])
    assert schema.stored_lod_fields(newer, pyramid.BUCKET_FIELDS)[-1][0] == "x:min"
    for bad in (dict(base, chunk=1024), dict(base, fields=base["fields"][1:]),
                dict(base, fields=base["fields"] + [["x", "<c16", "sum"]]),
                dict(base, fields=base["fields"] + [base["fields"][0]]),
                dict(base, fields=[["rows", "<i8", "sum"]] + base["fields"][1:]), None, [], {"fields": "x"}):
        assert schema.stored_lod_fields(bad, pyramid.BUCKET_FIELDS) is None, bad
