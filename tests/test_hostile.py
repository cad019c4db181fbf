"""Hostile recordings: a generated corpus of damaged and malicious files, and bad command lines.

The corpus is built here with raw ``sqlite3`` (no binary files in the repository): a good
recording is written once, copied, and each case changes it the way a broken disk, a buggy tool
or an attacker could.  For every case the Python reader and ``gda-gl info``, ``render`` and
``compare`` must answer with exit status 2 and exactly one line on stderr naming the file,
no traceback, and leave the file byte-for-byte unchanged.  Most cases call
:func:`gda_gl.cli.main` in-process (fast); a handful go through the installed ``gda-gl`` entry
point in a subprocess whose peak memory is measured.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from gda_gl.cli import main
from recorder import schema
from recorder.codec import BlockError, decode_block, encode_block
from recorder.errors import RecordingError
from recorder.store import Recording, RecordingWriter

GRID = np.linspace(0.0, 2.0, 8)
N_ROWS = 300
GDA_GL = ROOT / ".venv" / "bin" / "gda-gl"


# --------------------------------------------------------------------------- corpus generator

@pytest.fixture(scope="module")
def good_template(tmp_path_factory) -> Path:
    """A small valid recording: 300 rows in blocks of 64, ragged trials, a few events."""
    p = tmp_path_factory.mktemp("tmpl") / "good.gda"
    rng = np.random.default_rng(1)
    with RecordingWriter(p, GRID, {"name": "good", "optimizer": "SGD", "hyperparameters": {"lr": 0.1}},
                         block_rows=64, commit_interval=60) as w:
        for i in range(N_ROWS):
            m = i % 3
            tr = {"alpha": np.linspace(0.1, 1.0, m), "loss": rng.random(m)} if m else None
            w.append(i, (1.0 + GRID * 0.1 + i * 1e-3).astype(np.float32), trials=tr, epoch=i // 100,
                     train_loss=1.0, wall_time=1.7e9 + i)
        w.add_event("probe-failed", "out of memory", iteration=5)
    return p


def _blocks(con):
    return con.execute(f"SELECT id, n, {', '.join(schema.block_columns())} FROM blocks ORDER BY id").fetchall()


def _reencode(con, change):
    """Decode the first block with the project's codec, let ``change`` alter the arrays, store it back."""
    row = _blocks(con)[0]
    cols, phi, tcount, trials = decode_block(row[2:], row[1], len(GRID))
    cols = {k: np.array(v) for k, v in cols.items()}
    phi, tcount, trials = np.array(phi), np.array(tcount), {k: np.array(v) for k, v in trials.items()}
    cols, phi, tcount, trials = change(cols, phi, tcount, trials)
    blobs = encode_block(cols, phi, tcount, trials)
    sets = ", ".join(f"{c} = ?" for c in schema.block_columns())
    con.execute(f"UPDATE blocks SET {sets} WHERE id = ?", (*blobs, row[0]))


def _loosen_blocks(con):
    """Recreate ``blocks`` without NOT NULL constraints (CREATE TABLE AS drops them)."""
    for stmt in ("ALTER TABLE blocks RENAME TO blocks_old", "CREATE TABLE blocks AS SELECT * FROM blocks_old",
                 "DROP TABLE blocks_old"):
        con.execute(stmt)


def _set_meta(con, key, text):
    con.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, text))


def _deep(depth):
    return "[" * depth + "]" * depth


def _trial_mismatch(cols, phi, tcount, trials):
    tcount = tcount.copy()
    tcount[1] += 3
    return cols, phi, tcount, trials


def _iter_unsorted(cols, phi, tcount, trials):
    cols["iteration"] = cols["iteration"][::-1].copy()
    return cols, phi, tcount, trials


def _corrupt_pages(seed):
    def mutate(path: Path):
        data = bytearray(path.read_bytes())
        rng = np.random.default_rng(seed)
        page = int.from_bytes(data[16:18], "big")
        n_pages = len(data) // page
        for p in rng.choice(np.arange(1, n_pages), size=min(3, n_pages - 1), replace=False):
            off = int(p) * page + int(rng.integers(0, page - 64))
            data[off:off + 64] = rng.integers(0, 256, 64, dtype=np.uint8).tobytes()
        path.write_bytes(bytes(data))
    return mutate


# (name, SQL-level mutation or file-level mutation, expected words in the message)
SQL_CASES = {
    "blob-short": (lambda c: c.execute("UPDATE blocks SET phi = substr(phi, 1, length(phi) - 3) WHERE id = 1"),
                   "block"),
    "blob-long": (lambda c: c.execute("UPDATE blocks SET phi = phi || zeroblob(16) WHERE id = 1"), "block"),
    "blob-odd": (lambda c: c.execute("UPDATE blocks SET f_iteration = substr(f_iteration, 2) WHERE id = 1"),
                 "block"),
    "blob-null": (lambda c: (_loosen_blocks(c), c.execute("UPDATE blocks SET phi = NULL WHERE id = 1")), "block"),
    "blob-text": (lambda c: c.execute("UPDATE blocks SET phi = 'not bytes' WHERE id = 1"), "block"),
    "blob-integer": (lambda c: c.execute("UPDATE blocks SET f_epoch = 42 WHERE id = 1"), "block"),
    "n-negative": (lambda c: c.execute("UPDATE blocks SET n = -5 WHERE id = 1"), "block"),
    "n-zero": (lambda c: c.execute("UPDATE blocks SET n = 0 WHERE id = 1"), "block"),
    "n-huge": (lambda c: c.execute("UPDATE blocks SET n = ? WHERE id = 1", (2 ** 40,)), "block"),
    "n-text": (lambda c: c.execute("UPDATE blocks SET n = 'many' WHERE id = 1"), "block"),
    "first-last-wrong": (lambda c: c.execute("UPDATE blocks SET first_iteration = 100000 WHERE id = 2"), "block"),
    "trial-counts": (lambda c: _reencode(c, _trial_mismatch), "trial"),
    "iterations-unsorted": (lambda c: _reencode(c, _iter_unsorted), "block"),
    "grid-empty": (lambda c: _set_meta(c, "alpha_grid", "[]"), "alpha grid"),
    "grid-2d": (lambda c: _set_meta(c, "alpha_grid", "[[0, 1], [2, 3]]"), "alpha grid"),
    "grid-1e6": (lambda c: _set_meta(c, "alpha_grid", json.dumps(list(range(1_000_000)))), "alpha grid"),
    "grid-nan": (lambda c: _set_meta(c, "alpha_grid", "[0, NaN, 1]"), "alpha grid"),
    "grid-decreasing": (lambda c: _set_meta(c, "alpha_grid", json.dumps(GRID[::-1].tolist())), "alpha grid"),
    "grid-text": (lambda c: _set_meta(c, "alpha_grid", '"zero to two"'), "alpha grid"),
    "grid-missing": (lambda c: c.execute("DELETE FROM meta WHERE key = 'alpha_grid'"), "alpha grid"),
    "meta-run-list": (lambda c: _set_meta(c, "run", "[1, 2, 3]"), "run"),
    "meta-not-json": (lambda c: _set_meta(c, "run", "{not json"), "JSON"),
    "meta-deep": (lambda c: _set_meta(c, "run", '{"a": ' + _deep(200_000) + "}"), "nested"),
    "meta-blob": (lambda c: c.execute("UPDATE meta SET value = x'00ff00' WHERE key = 'run'"), "run"),
    "lock-garbage": (lambda c: _set_meta(c, "writer", '"locked!"'), "write-lock"),
    "lock-pid-text": (lambda c: _set_meta(c, "writer", json.dumps({"pid": "x", "host": "h", "state": "open",
                                                                   "heartbeat": 1.0})), "write-lock"),
    "lock-pid-huge": (lambda c: _set_meta(c, "writer", '{"pid": 1e300, "host": "h", "state": "open", '
                                                       '"heartbeat": 1.0}'), "write-lock"),
    "lock-heartbeat-text": (lambda c: _set_meta(c, "writer", json.dumps({"pid": 12, "host": "h", "state": "open",
                                                                         "heartbeat": "soon"})), "write-lock"),
    "trigger": (lambda c: c.execute("CREATE TRIGGER wipe AFTER INSERT ON blocks BEGIN DELETE FROM blocks; END"),
                "trigger"),
    "view": (lambda c: c.execute("CREATE VIEW v AS SELECT * FROM blocks"), "view"),
    "generated-column": (lambda c: c.execute("ALTER TABLE blocks ADD COLUMN g BLOB GENERATED ALWAYS AS "
                                             "(zeroblob(400000000)) VIRTUAL"), "generated column"),
    "blocks-is-view": (lambda c: (c.execute("ALTER TABLE blocks RENAME TO b2"),
                                  c.execute("CREATE VIEW blocks AS SELECT * FROM b2")), "view"),
    "event-blob-message": (lambda c: c.execute("INSERT INTO events(iteration, wall_time, kind, message) "
                                               "VALUES (1, 1.0, 'probe-failed', x'ff00')"), "event"),
    "newer-schema": (lambda c: c.execute("PRAGMA user_version = 99"), "newer"),
}
FILE_CASES = {f"page-corruption-{s}": _corrupt_pages(s) for s in range(6)}
#: damage inside a block's bytes (or a later event): found when that block is decoded.  ``info``,
#: ``compare`` and the overview of ``render`` on a schema-2 file answer from the stored level-of-detail
#: pyramid without decoding blocks, so for these they may succeed; whenever they fail, it is one line.
CONTENT_CASES = {"blob-short", "blob-long", "blob-odd", "trial-counts", "iterations-unsorted",
                 "event-blob-message"}


def make_case(name: str, template: Path, where: Path) -> Path:
    """Copy the good template to ``where/<name>.gda`` and apply case ``name``."""
    p = where / f"{name}.gda"
    shutil.copyfile(template, p)
    if name in SQL_CASES:
        con = sqlite3.connect(p, isolation_level=None)
        try:
            con.execute("PRAGMA journal_mode = DELETE")
            con.execute("BEGIN")
            SQL_CASES[name][0](con)
            con.execute("COMMIT")
        finally:
            con.close()
    else:
        FILE_CASES[name](p)
    assert not Path(str(p) + "-journal").exists() and not Path(str(p) + "-wal").exists()
    return p


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _one_line_about(err: str, path: Path) -> None:
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0] or path.name in lines[0]


def _sidecars(p: Path) -> list[str]:
    return [s for s in ("-journal", "-wal", "-shm") if Path(str(p) + s).exists()]


# --------------------------------------------------------------------------- the reader and the commands

@pytest.mark.parametrize("name", sorted(SQL_CASES))
def test_hostile_sql_case_is_refused_in_one_line(name, good_template, tmp_path, capsys):
    p = make_case(name, good_template, tmp_path)
    before = _sha(p)
    words = SQL_CASES[name][1]
    # the Python reader: one RecordingError naming the file (open, read or events)
    with pytest.raises(RecordingError) as ei:
        with Recording(p) as rec:
            rec.read()
            rec.events()
            rec.writer_state()
    msg = str(ei.value)
    assert "\n" not in msg and str(p) in msg
    assert words.lower() in msg.lower(), msg
    # the commands
    out_png = tmp_path / "out.png"
    for argv in (["info", str(p)], ["render", str(p), "-o", str(out_png)],
                 ["compare", str(good_template), str(p)]):
        capsys.readouterr()
        rc = main(argv)
        err = capsys.readouterr().err
        if rc == 0 and name in CONTENT_CASES and schema.SCHEMA_VERSION >= 2:
            assert err.strip() == ""
            continue
        assert rc == 2, (argv, err)
        _one_line_about(err, p)
        assert not out_png.exists()  # a refused render writes nothing
    assert _sha(p) == before and not _sidecars(p)


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_random_page_corruption_never_crashes(name, good_template, tmp_path, capsys):
    p = make_case(name, good_template, tmp_path)
    before = _sha(p)
    for argv in (["info", str(p)], ["compare", str(p)]):
        capsys.readouterr()
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc in (0, 2), err  # corruption may land in unused space; then the file is fine
        if rc == 2:
            _one_line_about(err, p)
        else:
            assert err.strip() == ""
    assert _sha(p) == before


def test_corrupted_block_bytes_are_always_detected(good_template, tmp_path, capsys):
    """Flipping bytes inside a stored block is caught by the decoder (not silently drawn)."""
    p = tmp_path / "flip.gda"
    shutil.copyfile(good_template, p)
    con = sqlite3.connect(p)
    blob = bytearray(con.execute("SELECT phi FROM blocks WHERE id = 1").fetchone()[0])
    con.execute("UPDATE blocks SET phi = ? WHERE id = 1", (bytes(blob[: len(blob) // 2]),))
    con.commit()
    con.close()
    with pytest.raises(RecordingError, match="block 1"), Recording(p) as rec:
        rec.read()
    with pytest.raises(RecordingError, match="block 1"), Recording(p) as rec:
        rec.read(start=0, stop=10)


def test_odd_but_valid_values_are_shown_not_refused(good_template, tmp_path, capsys):
    """wall_time 1e300, a remote writer's heartbeat far in the future: the file is readable."""
    p = tmp_path / "odd.gda"
    with RecordingWriter(p, GRID, {"name": "odd"}) as w:
        for i in range(N_ROWS):
            w.append(i, GRID, wall_time=1e300)
    con = sqlite3.connect(p, isolation_level=None)
    _set_meta(con, "writer", json.dumps({"pid": 4242, "host": "elsewhere.example", "token": None,
                                         "heartbeat": 1e300, "state": "open"}))
    con.close()
    capsys.readouterr()
    assert main(["info", str(p)]) == 0
    out = capsys.readouterr().out
    assert "not a date" in out and "died" in out  # the future heartbeat counts as stale
    # and the stale lock does not block a writer forever
    with RecordingWriter(p, GRID, append=True) as w:
        w.append(10_000, GRID)
    with Recording(p) as rec:
        assert rec.n_iterations() == N_ROWS + 1


def _measured(cmd: list[str], tmp: Path, limit_mb: int = 2048):
    """Run ``cmd`` (the real entry point) under an address-space limit; returns (proc, peak RSS MiB)."""
    wrapper = ("import resource, subprocess, sys\n"
               f"lim = {limit_mb} << 20\n"
               "def pre():\n"
               "    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))\n"
               "p = subprocess.run(sys.argv[1:], preexec_fn=pre, capture_output=True, text=True, timeout=120)\n"
               "sys.stdout.write(p.stdout); sys.stderr.write(p.stderr)\n"
               "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
               f"open({str(tmp / 'peak.txt')!r}, 'w').write(str(peak))\n"
               "sys.exit(p.returncode)\n")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True, text=True, timeout=180,
                          env=env, cwd=str(ROOT))
    return proc, int((tmp / "peak.txt").read_text()) / 1024


@pytest.mark.parametrize("name,command", [("generated-column", "info"), ("n-huge", "info"),
                                          ("grid-1e6", "compare"), ("meta-deep", "render"),
                                          ("trigger", "info")])
def test_real_entry_point_refuses_in_bounded_memory(name, command, good_template, tmp_path):
    exe = [str(GDA_GL)] if GDA_GL.exists() else [sys.executable, "-m", "gda_gl"]
    p = make_case(name, good_template, tmp_path)
    before = _sha(p)
    args = {"info": ["info", str(p)], "compare": ["compare", str(p)],
            "render": ["render", str(p), "-o", str(tmp_path / "o.png")]}[command]
    proc, peak_mb = _measured(exe + args, tmp_path)
    assert proc.returncode == 2, proc.stderr
    _one_line_about(proc.stderr, p)
    assert "memory" not in proc.stderr  # refused for what it is, not because the allocation failed
    assert peak_mb < 400, f"peak RSS {peak_mb:.0f} MiB"
    assert _sha(p) == before


# --------------------------------------------------------------------------- the decoder, fuzzed

def test_decoder_property_based():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    ncols = len(schema.block_columns())
    value = st.one_of(st.none(), st.integers(-2 ** 63, 2 ** 63 - 1), st.text(max_size=20),
                      st.binary(max_size=600))

    import inspect

    versions = [1, schema.SCHEMA_VERSION] if "version" in inspect.signature(decode_block).parameters else [None]

    @hypothesis.settings(max_examples=300, deadline=None, derandomize=True)
    @hypothesis.given(st.lists(value, min_size=ncols, max_size=ncols), st.integers(-3, 70), st.integers(1, 9),
                      st.sampled_from(versions))
    def fuzz(blobs, n, k, version):
        try:
            cols, phi, tcount, trials = (decode_block(blobs, n, k) if version is None
                                         else decode_block(blobs, n, k, version))
        except BlockError as exc:
            assert "\n" not in str(exc)
            return
        assert phi.shape == (n, k) and len(tcount) == n
        assert all(len(v) == n for v in cols.values())
        assert all(len(v) == int(tcount.sum()) for v in trials.values())

    fuzz()
    # near-valid inputs: a valid raw (schema 1) block with one column cut, padded or retyped
    if versions != [None]:
        n, k = 5, 3
        good = [np.zeros(n, dt).tobytes() for dt in schema.ITER_DTYPES_V1.values()] if hasattr(
            schema, "ITER_DTYPES_V1") else None
        if good is not None:
            good[0] = np.arange(n, dtype=np.int64).tobytes()
            good += [np.zeros((n, k), schema.PHI_DTYPE).tobytes(), np.zeros(n, schema.TRIAL_COUNT_DTYPE).tobytes()]
            good += [b"" for _ in schema.TRIAL_DTYPES]
            decode_block(good, n, k, 1)

            @hypothesis.settings(max_examples=200, deadline=None, derandomize=True)
            @hypothesis.given(st.integers(0, len(good) - 1), st.integers(-9, 9),
                              st.sampled_from(["cut", "pad", "none"]))
            def near(j, delta, how):
                bad = list(good)
                if how == "none":
                    bad[j] = None
                elif delta and (how == "pad" or len(bad[j]) > 0):
                    bad[j] = bad[j][:max(0, len(bad[j]) - abs(delta))] if how == "cut" else bad[j] + bytes(abs(delta))
                else:
                    return
                with pytest.raises(BlockError):
                    decode_block(bad, n, k, 1)

            near()


def test_decoder_round_trip_and_every_truncation():
    rng = np.random.default_rng(3)
    n, k = 17, 5
    cols = {name: rng.integers(0, 100, n).astype(dt) if dt.kind in "iu" else rng.random(n).astype(dt)
            for name, dt in schema.ITER_DTYPES.items()}
    cols["iteration"] = np.arange(n, dtype=np.int64) * 3
    phi = rng.random((n, k)).astype(np.float32)
    tcount = rng.integers(0, 4, n).astype(np.int32)
    m = int(tcount.sum())
    trials = {name: rng.random(m).astype(dt) if dt.kind == "f" else np.arange(m, dtype=dt)
              for name, dt in schema.TRIAL_DTYPES.items()}
    blobs = encode_block(cols, phi, tcount, trials)
    c2, p2, t2, tr2 = decode_block(blobs, n, k)
    assert p2.tobytes() == phi.tobytes() and np.array_equal(t2, tcount)
    assert all(np.array_equal(c2[name], cols[name].astype(c2[name].dtype)) for name in cols)
    for j in range(len(blobs)):
        for cut in (1, 3, len(blobs[j]) // 2):
            if cut > len(blobs[j]):
                continue
            bad = list(blobs)
            bad[j] = blobs[j][:-cut]
            with pytest.raises(BlockError):
                decode_block(bad, n, k)
    with pytest.raises(BlockError):
        decode_block(blobs, n + 1, k)
    with pytest.raises(BlockError):
        decode_block(blobs, n, k + 1)


# --------------------------------------------------------------------------- bad command lines

def _run(argv, capsys):
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize("argv_tail,words", [
    (["--range", "nan:5"], "finite"),
    (["--range", "0:1e300"], "finite"),
    (["--range", "inf:"], "finite"),
    (["--size", "12x"], "--size"),
    (["--color-by", "nonsense"], "choose from none, efficiency"),
    (["--bogus"], "unrecognized"),
    (["--detail", "x"], "invalid int"),
])
def test_bad_options_get_one_line(argv_tail, words, good_template, tmp_path, capsys):
    out = tmp_path / "o.png"
    rc, _, err = _run(["render", str(good_template), "-o", str(out), *argv_tail], capsys)
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and words in err and "usage:" not in err
    assert not out.exists()


def test_missing_required_option_and_command_get_one_line(capsys):
    for argv in (["render"], ["info"], ["nonsense-command"], ["compare", "--csv"]):
        rc, _, err = _run(argv, capsys)
        assert rc == 2 and len(err.strip().splitlines()) == 1, (argv, err)


@pytest.mark.parametrize("state", ['{"x_range": [NaN, 5]}', '{"x_range": [0, 1e30]}', '{"y_range": [1, Infinity]}',
                                   '{"y_range": [5, 1]}', '{"log_y": "yes"}', '{"iteration_range": [0.5, 3]}',
                                   '{"selected": 1e300}', "[" * 100000 + "]" * 100000, '{"color_by": 3}'])
def test_bad_state_files_get_one_line(state, good_template, tmp_path, capsys):
    f = tmp_path / "view.json"
    f.write_text(state)
    out = tmp_path / "o.png"
    rc, _, err = _run(["render", str(good_template), "-o", str(out), "--state", str(f)], capsys)
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "view.json" in err, err
    assert not out.exists()


def test_outputs_are_checked_before_any_work(good_template, tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("keep me\n")
    (tmp_path / "adir.png").mkdir()
    cases = [
        (tmp_path / "noext", "no extension"),
        (tmp_path / "out.txt", ".png"),
        (tmp_path / "adir.png", "directory"),
        (text / "x.png", "not a directory"),
        (tmp_path / ("y" * 5000 + ".png"), "too long"),
    ]
    for out, words in cases:
        rc, _, err = _run(["render", str(good_template), "-o", str(out)], capsys)
        assert rc == 2 and len(err.strip().splitlines()) == 1 and words in err, (out, err[:300])
    assert text.read_text() == "keep me\n"
    # a foreign file with the right extension is not overwritten either
    fake = tmp_path / "photo.png"
    fake.write_bytes(b"not really a png")
    rc, _, err = _run(["render", str(good_template), "-o", str(fake)], capsys)
    assert rc == 2 and "refusing to overwrite" in err and fake.read_bytes() == b"not really a png"


def test_unwritable_place_is_refused_before_drawing(good_template, tmp_path, capsys, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only tmpfs here")
    try:
        import gda_gl.session.open as opener

        def no_drawing(*a, **k):
            raise AssertionError("loaded the runs before checking the output")

        monkeypatch.setattr(opener, "load_runs", no_drawing)
        rc, _, err = _run(["render", str(good_template), "-o", str(ro / "x.png")], capsys)
        assert rc == 2 and "cannot be written" in err and len(err.strip().splitlines()) == 1
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_no_command_writes_over_its_inputs(good_template, tmp_path, capsys):
    run = tmp_path / "run.gda"
    shutil.copyfile(good_template, run)
    before = _sha(run)
    alias = tmp_path / "run.png"  # a recording with a misleading name, given as input and output
    shutil.copyfile(good_template, alias)
    for argv in (["compare", str(run), str(run), "--csv", str(run)],
                 ["compare", str(run), "--png", str(run)],
                 ["render", str(alias), "-o", str(alias)],
                 ["compare", str(alias), "--png", str(alias)]):
        rc, _, err = _run(argv, capsys)
        assert rc == 2 and len(err.strip().splitlines()) == 1, (argv, err)
    assert _sha(run) == before and _sha(alias) == before
    # --csv into a directory that does not exist yet: created, and a rerun may replace our own CSV
    csv = tmp_path / "new" / "dir" / "table.csv"
    for _ in range(2):
        rc, _, err = _run(["compare", str(run), "--csv", str(csv)], capsys)
        assert rc == 0, err
    assert csv.read_text().startswith("run,iterations")


def test_demo_out_onto_a_file_is_refused(tmp_path, capsys):
    f = tmp_path / "results"
    f.write_text("precious\n")
    rc, _, err = _run(["demo", "--out", str(f), "--quick", "--quiet", "--no-window"], capsys)
    assert rc == 2 and "not a directory" in err and f.read_text() == "precious\n"


def test_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "pipe.gda"
    os.mkfifo(fifo)
    state = tmp_path / "state.json"
    os.mkfifo(state)
    code = ("import sys; from gda_gl.cli import main; "
            f"sys.exit(main(['info', {str(fifo)!r}]) * 10 + main(['render', {str(fifo)!r}, '-o', "
            f"{str(tmp_path / 'o.png')!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=str(ROOT))
    assert proc.returncode == 22, proc.stderr
    assert all("regular file" in ln for ln in proc.stderr.strip().splitlines())


def test_bench_without_its_extra_says_what_it_skipped(tmp_path):
    code = ("import sys; sys.modules['sklearn'] = None; from gda_gl.cli import main; "
            f"sys.exit(main(['bench', '--only', 'probe', '--out', {str(tmp_path)!r}]))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "skipped probe" in lines[0] and "pip install 'gda-gl[bench]'" in lines[0]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.gl
def test_diverging_run_renders_on_a_linear_axis(tmp_path, capsys):
    p = tmp_path / "div.gda"
    with RecordingWriter(p, GRID, {"name": "div"}) as w:
        for i in range(60):
            v = 10.0 ** (i / 3.0)  # up to about 1e20
            w.append(i, (v * (1 + GRID)).astype(np.float32), train_loss=v)
    out = tmp_path / "div.png"
    rc, _, err = _run(["render", str(p), "-o", str(out)], capsys)
    assert rc == 0, err
    assert out.read_bytes().startswith(b"\x89PNG")


def test_names_from_a_file_cannot_inject_terminal_escapes_or_formulas(tmp_path, capsys):
    p = tmp_path / "evil.gda"
    with RecordingWriter(p, GRID, {"name": "=HYPERLINK(\"x\")\x1b[2J\x07", "optimizer": "SGD\x1b]0;pwned\x07"}) as w:
        for i in range(5):
            w.append(i, GRID)
    rc, out, err = _run(["info", str(p)], capsys)
    assert rc == 0 and "\x1b" not in out and "\x07" not in out
    csv = tmp_path / "t.csv"
    rc, out, err = _run(["compare", str(p), "--csv", str(csv)], capsys)
    assert rc == 0 and "\x1b" not in out
    row = csv.read_text().splitlines()[1]
    assert row.startswith("'=") or row.startswith("\"'=")
