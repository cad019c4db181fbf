"""Hostile schema-2 recordings (issue 21): forged pyramids, damaged frames, careless commands.

The corpus is generated here with raw ``sqlite3`` and the project's own encoders (no binary files in the
repository): a good schema-2 recording of 600 rows is written once, copied, and each case forges or damages
it.  Every case was written to fail before the fix it names.
"""

from __future__ import annotations

import hashlib
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
from recorder import pyramid, schema
from recorder.codec import decode_block
from recorder.colcodec import pack_columns
from recorder.errors import RecordingError
from recorder.lodstore import decode_chunk, encode_chunk
from recorder.store import Recording, RecordingWriter

GRID = np.linspace(0.0, 2.0, 8)
N_ROWS = 600


# --------------------------------------------------------------------------- corpus generator

def write_good(p: Path, n: int = N_ROWS, events: int = 3, **kw) -> Path:
    """A valid schema-2 recording: ``n`` rows in blocks of 64, ragged trials, loss in 1.0..1.6."""
    with RecordingWriter(p, GRID, {"name": p.stem}, block_rows=64, commit_interval=60, **kw) as w:
        for i in range(n):
            tr = {"alpha": [0.5, 1.5], "loss": [1.0, 1.2]} if i % 3 == 0 else None
            w.append(i, (1.0 + GRID * 0.1 + i * 1e-3).astype(np.float32), trials=tr, epoch=i // 100,
                     train_loss=1.0 + i * 1e-3, wall_time=1.7e9 + i, ls_evals=i % 3)
        for j in range(events):
            w.add_event("note", f"event {j}", iteration=j)
    return p


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return write_good(tmp_path_factory.mktemp("tmpl") / "good.gda")


def _sql(p: Path, *changes) -> Path:
    con = sqlite3.connect(p, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode = DELETE")
        con.execute("BEGIN")
        for change in changes:
            change(con)
        con.execute("COMMIT")
    finally:
        con.close()
    return p


def _top(con) -> int:
    return con.execute("SELECT MAX(level) FROM lod").fetchone()[0]


def forge_chunk(level_of, change, chunk: int = 0):
    """A mutation: decode chunk ``chunk`` of a level (``level_of(con)``), let ``change(recs)`` alter the
    buckets, store them back consistently re-encoded (table columns follow the buckets)."""
    def mutate(con):
        level = level_of(con)
        row = con.execute("SELECT level, chunk, n, first_iteration, last_iteration, data FROM lod "
                          "WHERE level = ? AND chunk = ?", (level, chunk)).fetchone()
        recs = {k: np.array(v) for k, v in decode_chunk(*row).items()}
        change(recs)
        con.execute("UPDATE lod SET n = ?, first_iteration = ?, last_iteration = ?, data = ? "
                    "WHERE level = ? AND chunk = ?", (len(recs["rows"]), int(recs["first_it"][0]),
                                                      int(recs["last_it"][-1]), encode_chunk(recs), level, chunk))
    return mutate


def _every_level(change):
    def mutate(con):
        for level in range(_top(con) + 1):
            forge_chunk(lambda _c, lv=level: lv, change)(con)
    return mutate


def _top_rows_1000(recs):
    recs["rows"][0] = 1000
    recs["status:0"][0] = 1000  # the code counts still add up to the forged row count
    recs["step_class:0"][0] += 1000 - recs["step_class:0"][0] - recs["step_class:1"][0] - recs["step_class:2"][0] \
        - recs["step_class:3"][0]


def _spikes(recs):
    recs["env_hi"][:] = 50.0
    recs["env_lo"][:] = -50.0


def _shift_spans(recs):
    recs["first_it"] += 5000
    recs["last_it"] += 5000


def _sum_doubled(recs):
    recs["train_loss:sum"] *= 2


def _drop_last_block(con):
    con.execute("DELETE FROM blocks WHERE id = (SELECT MAX(id) FROM blocks)")


def _top_chunk_index(con):
    con.execute("UPDATE lod SET chunk = 3 WHERE level = ?", (_top(con),))


def _level0_short(con):
    forge_chunk(lambda _c: 0, lambda r: [r.__setitem__(k, v[:-1]) for k, v in list(r.items())])(con)


#: forged pyramids the cheap invariants at open refuse: (mutation, words of the message)
OPEN_CASES = {
    "top-rows-1000": (forge_chunk(_top, _top_rows_1000), "whole-run bucket counts 1,000"),
    "last-block-deleted": (_drop_last_block, "576 iterations"),
    "pyramid-empty": (lambda c: c.execute("DELETE FROM lod"), "pyramid is empty but the blocks hold 600"),
    "top-chunk-index": (_top_chunk_index, "chunks missing"),
    "level0-one-bucket-short": (_level0_short, "level 0 has 37 buckets"),
    "spans-shifted": (_every_level(_shift_spans), "spans iterations 5000..5599"),
    "blocks-deleted": (lambda c: c.execute("DELETE FROM blocks"), "no blocks"),
}
#: forged pyramids that agree with the block index: only ``gda-gl check`` (every bucket) finds them
CHECK_CASES = {
    "env-spikes": (_every_level(_spikes), "env_lo"),
    "top-sum-doubled": (forge_chunk(_top, _sum_doubled), "train_loss:sum"),
    # the level-1 buckets contradict the level above them: refused by whatever reads level 1 or 0 (issue 28)
    "level1-sum-doubled": (forge_chunk(lambda _c: 1, _sum_doubled), "against level 1 chunk 0"),
}


def make(name: str, template: Path, where: Path) -> Path:
    p = where / f"{name}.gda"
    shutil.copyfile(template, p)
    mutation = {**OPEN_CASES, **CHECK_CASES}[name][0]
    return _sql(p, mutation)


def _sha(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _run(argv, capsys):
    capsys.readouterr()
    rc = main(argv)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def _one_line(err: str, p: Path, words: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert p.name in lines[0] and words in lines[0], err


# --------------------------------------------------------------------------- forged pyramids

@pytest.mark.parametrize("name", sorted(OPEN_CASES))
def test_forged_pyramid_is_refused_at_open(name, template, tmp_path, capsys):
    p = make(name, template, tmp_path)
    before = _sha(p)
    words = OPEN_CASES[name][1]
    for argv in (["info", str(p)], ["compare", str(p)], ["render", str(p), "-o", str(tmp_path / "o.png")],
                 ["check", str(p)]):
        rc, out, err = _run(argv, capsys)
        assert rc == 2, (argv, out, err)
        _one_line(err, p, words)
        assert "no iterations" not in err
    assert not (tmp_path / "o.png").exists()
    assert _sha(p) == before and not [s for s in ("-wal", "-shm", "-journal") if Path(f"{p}{s}").exists()]


@pytest.mark.parametrize("name", sorted(CHECK_CASES))
def test_check_compares_every_bucket_with_the_blocks(name, template, tmp_path, capsys):
    p = make(name, template, tmp_path)
    before = _sha(p)
    rc, out, err = _run(["check", str(p)], capsys)
    assert rc == 2, out
    _one_line(err, p, CHECK_CASES[name][1])
    assert "damaged pyramid" in err
    assert _sha(p) == before


def test_check_passes_good_files_and_an_upgraded_schema1_file(template, tmp_path, capsys):
    rc, out, err = _run(["check", str(template)], capsys)
    assert rc == 0 and err == "" and "600 iterations" in out and "agree with the blocks" in out, (out, err)
    big = write_good(tmp_path / "big.gda", n=70_000, events=0)  # several chunks at level 0: chunks are settled
    rc, out, err = _run(["check", str(big)], capsys)
    assert rc == 0 and "70,000 iterations" in out, err


def test_append_refuses_a_pyramid_the_reader_refuses(template, tmp_path):
    """Item 5: a top chunk under the wrong index made every later commit fail with IndexError."""
    p = make("top-chunk-index", template, tmp_path)
    before = _sha(p)
    with pytest.raises(RecordingError, match="damaged pyramid"):
        RecordingWriter(p, GRID, append=True)
    p2 = make("top-rows-1000", template, tmp_path)
    with pytest.raises(RecordingError, match="damaged pyramid"):
        RecordingWriter(p2, GRID, append=True)
    assert _sha(p) == before


# --------------------------------------------------------------------------- damaged frames

def _recompress_first_iteration(con, checksum: bool, extra: bytes = b""):
    import zstandard

    row = con.execute(f"SELECT id, n, {', '.join(schema.block_columns())} FROM blocks ORDER BY id").fetchone()
    cols = decode_block(row[2:], row[1], len(GRID))[0]
    from recorder.colcodec import _shuffle

    z = zstandard.ZstdCompressor(level=1, write_content_size=True, write_checksum=checksum)
    blob = z.compress(_shuffle(np.ascontiguousarray(cols["iteration"]))) + extra
    con.execute("UPDATE blocks SET f_iteration = ? WHERE id = ?", (blob, row[0]))


@pytest.mark.parametrize("how", ["no-checksum", "trailing-bytes"])
def test_frames_without_checksum_or_with_trailing_bytes_are_refused(how, template, tmp_path):
    p = tmp_path / f"{how}.gda"
    shutil.copyfile(template, p)
    _sql(p, lambda c: _recompress_first_iteration(c, checksum=how != "no-checksum",
                                                  extra=b"\x00junk" if how == "trailing-bytes" else b""))
    with pytest.raises(RecordingError, match="block 1") as ei, Recording(p) as rec:
        rec.read()
    assert ("checksum" if how == "no-checksum" else "unused data") in str(ei.value)


def test_pyramid_chunk_with_trailing_bytes_is_refused(template, tmp_path, capsys):
    p = tmp_path / "lod-trailing.gda"
    shutil.copyfile(template, p)

    def pad(con):
        top = _top(con)
        row = con.execute("SELECT n, data FROM lod WHERE level = ? AND chunk = 0", (top,)).fetchone()
        recs = decode_chunk(top, 0, row[0], 0, N_ROWS - 1, row[1])
        cols = [np.asarray(recs[n], d) for n, d, _ in pyramid.BUCKET_FIELDS]
        blob = bytearray(pack_columns(cols))
        # grow the last frame by 3 bytes and say so in the header: the lengths add up, the frame has extra data
        c = len(cols)
        last_len = int.from_bytes(blob[8 + 4 * (c - 1):8 + 4 * c], "little")
        blob[8 + 4 * (c - 1):8 + 4 * c] = (last_len + 3).to_bytes(4, "little")
        con.execute("UPDATE lod SET data = ? WHERE level = ? AND chunk = 0", (bytes(blob) + b"abc", top))

    _sql(p, pad)
    rc, out, err = _run(["info", str(p)], capsys)
    assert rc == 2
    _one_line(err, p, "damaged pyramid")


# --------------------------------------------------------------------------- upgrade (items 6, 7, 8)

@pytest.mark.parametrize("suffix", ["-wal", "-journal", "-shm"])
def test_upgrade_refuses_sqlite_side_file_names(suffix, template, tmp_path, capsys):
    """Item 7: ``upgrade src.gda src.gda-wal`` made a later append take the copy for its WAL."""
    src = tmp_path / "src.gda"
    shutil.copyfile(template, src)
    dst = tmp_path / f"src.gda{suffix}"
    rc, out, err = _run(["upgrade", str(src), str(dst)], capsys)
    assert rc == 2 and "side file" in err and len(err.strip().splitlines()) == 1, err
    assert not dst.exists()
    with RecordingWriter(src, GRID, append=True) as w:
        w.append(10_000, GRID)
    with Recording(src) as rec:
        assert rec.n_iterations() == N_ROWS + 1


def test_upgrade_of_a_damaged_source_leaves_no_target(template, tmp_path, capsys):
    """Item 8: a damaged block half-way left a partial copy marked closed that info showed as complete."""
    src = tmp_path / "src.gda"
    shutil.copyfile(template, src)
    _sql(src, lambda c: c.execute("UPDATE blocks SET phi = substr(phi, 1, 10) WHERE id = 5"))
    dst = tmp_path / "copy.gda"
    rc, out, err = _run(["upgrade", str(src), str(dst)], capsys)
    assert rc == 2 and "block 5" in err and len(err.strip().splitlines()) == 1, err
    assert sorted(os.listdir(tmp_path)) == ["src.gda"]


def test_upgrade_onto_a_full_disk_leaves_no_target(template, tmp_path, capsys):
    """Item 8: a full disk half-way left a partial target."""
    from test_faults import _mount_tmpfs

    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "160k"):
        pytest.skip("cannot mount a small tmpfs here")
    try:
        src = write_good(tmp_path / "src.gda", n=6000, events=0)
        dst = disk / "copy.gda"
        rc, out, err = _run(["upgrade", str(src), str(dst)], capsys)
        assert rc == 2 and len(err.strip().splitlines()) == 1, (out, err)
        assert "copy.gda:" in err and "upgrading" not in err, err  # the target named, not the temporary file
        assert os.listdir(disk) == []
    finally:
        subprocess.run(["umount", str(disk)], check=False)


def test_upgrade_copies_every_event(tmp_path):
    """Item 6: only the first 10,000 events were copied, silently."""
    src = write_good(tmp_path / "src.gda", n=50, events=0)
    n_events = 25_000
    _sql(src, lambda c: c.executemany("INSERT INTO events(iteration, wall_time, kind, message) VALUES "
                                      "(?, 1.0, 'note', ?)", ((i, f"m{i}") for i in range(n_events))))
    from recorder.upgrade import upgrade

    assert upgrade(src, tmp_path / "copy.gda") == 50
    with Recording(tmp_path / "copy.gda") as rec:
        ev = rec.events()
    assert len(ev) == n_events and ev[-1][3] == f"m{n_events - 1}"


# --------------------------------------------------------------------------- SQL and errors (items 9, 10)

_HANG = ("import sys, numpy as np; sys.path.insert(0, {root!r}); from recorder.store import RecordingWriter; "
         "from recorder.errors import RecordingError\n"
         "try:\n    RecordingWriter({path!r}, np.linspace(0.0, 2.0, 8), overwrite=True).close()\n"
         "except RecordingError as exc:\n    print(exc); sys.exit(2)\n")


@pytest.mark.parametrize("what", ["meta-recursive-view", "meta-generated-column"])
def test_overwrite_runs_no_sql_stored_in_the_file(what, template, tmp_path):
    """Item 9: overwrite=True read ``meta`` before validating; a recursive view in its place hung it."""
    p = tmp_path / f"{what}.gda"
    shutil.copyfile(template, p)
    if what == "meta-recursive-view":
        stmts = ("ALTER TABLE meta RENAME TO meta_old",
                 "CREATE VIEW meta AS WITH RECURSIVE r(key, value) AS (SELECT 'writer', '{}' UNION ALL "
                 "SELECT key, value || 'x' FROM r) SELECT key, value FROM r")
    else:
        stmts = ("ALTER TABLE meta ADD COLUMN g TEXT GENERATED ALWAYS AS (printf('%.*c', 2000000000, 'x')) VIRTUAL",)
    _sql(p, *[lambda c, s=s: c.execute(s) for s in stmts])
    before = _sha(p)
    proc = subprocess.run([sys.executable, "-c", _HANG.format(root=str(ROOT), path=str(p))], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr[-500:]
    assert "refusing to replace" in proc.stdout and ("view" in proc.stdout or "generated" in proc.stdout)
    assert _sha(p) == before


def _bad_utf8_schema(con):
    con.execute("PRAGMA writable_schema = ON")
    sql = con.execute("SELECT sql FROM sqlite_master WHERE name = 'events'").fetchone()[0]
    bad = sql.encode().replace(b"message TEXT", b"message TEXT /*\xff\xfe*/")
    con.execute("UPDATE sqlite_master SET sql = CAST(? AS TEXT) WHERE name = 'events'", (bad,))


def test_schema_text_that_is_not_utf8_is_one_short_line(template, tmp_path, capsys):
    """Item 10: malformed UTF-8 in the schema text."""
    p = tmp_path / "utf8.gda"
    shutil.copyfile(template, p)
    con = sqlite3.connect(p, isolation_level=None)
    _bad_utf8_schema(con)
    con.close()
    before = _sha(p)
    with pytest.raises(RecordingError, match="not valid UTF-8") as ei:
        Recording(p)
    assert str(p) in str(ei.value) and "\ufffd" not in str(ei.value)
    for kw in ({"append": True}, {"overwrite": True}):
        with pytest.raises(RecordingError, match="not valid UTF-8"):
            RecordingWriter(p, GRID, **kw)
    for argv in (["info", str(p)], ["check", str(p)]):
        rc, out, err = _run(argv, capsys)
        assert rc == 2
        _one_line(err, p, "not valid UTF-8")
    assert _sha(p) == before


def test_every_zeroed_pyramid_page_is_one_line_never_unexpected(template, tmp_path, capsys):
    """Item 10: a zeroed page of the pyramid table (root, leaf or overflow) is a damaged recording."""
    con = sqlite3.connect(template)
    pages = [r[0] for r in con.execute("SELECT pageno FROM dbstat WHERE name = 'lod' ORDER BY pageno")]
    page_size = con.execute("PRAGMA page_size").fetchone()[0]
    con.close()
    assert pages
    for pno in pages:
        p = tmp_path / f"zero-{pno}.gda"
        data = bytearray(template.read_bytes())
        data[(pno - 1) * page_size:pno * page_size] = bytes(page_size)
        p.write_bytes(bytes(data))
        for argv in (["info", str(p)], ["compare", str(p)], ["check", str(p)]):
            rc, out, err = _run(argv, capsys)
            # info and compare read only the top of the pyramid; check reads every page
            assert rc == 2 or (rc == 0 and argv[0] != "check" and err == ""), (pno, argv, err)
            if rc:
                assert "unexpected" not in err, (pno, argv, err)
                _one_line(err, p, "")


def test_extreme_values_print_no_runtime_warnings(tmp_path):
    """Item 10: ``render`` printed numpy RuntimeWarnings (overflow in cast) on valid extreme values."""
    p = tmp_path / "extreme.gda"
    with RecordingWriter(p, GRID, {"name": "extreme"}) as w:
        for i in range(300):
            v = [3e38, -3e38, np.inf, np.nan, 1e-45, 0.0][i % 6]
            w.append(i, np.full(len(GRID), v, np.float32), train_loss=v, grad_norm=3e38, efficiency=v,
                     wall_time=1e300 if i % 2 else -1e300, lr=1e308, curvature=-3e38)
    env = dict(os.environ, EGL_PLATFORM="surfaceless")
    for args in (["info", str(p)], ["compare", str(p)], ["check", str(p)],
                 ["render", str(p), "-o", str(tmp_path / "e.png"), "--size", "320x200"]):
        proc = subprocess.run([sys.executable, "-m", "gda_gl", *args], capture_output=True, text=True, timeout=120,
                              env=env, cwd=str(ROOT))
        if args[0] == "render" and proc.returncode and "display" in proc.stderr.lower():
            continue  # no GL here
        assert proc.returncode == 0 and proc.stderr == "", (args, proc.stderr[-800:])


# --------------------------------------------------------------------------- bounded work and memory (items 1, 2, 4)

def write_bomb(p: Path, blocks: int, rows: int, k: int, lod: bool = True) -> Path:
    """A small file whose compressed blocks declare ``blocks x rows`` iterations of ``k`` alphas (all zeros but
    the iterations: a decompression bomb), with a consistent stored pyramid when ``lod`` (built here with the
    writer's builder from the declared rows), else without ``meta.lod``."""
    from recorder.codec import encode_block
    from recorder.colcodec import compress_array
    from recorder.lodstore import write_chunks

    grid = np.linspace(0.0, 2.0, k)
    RecordingWriter(p, grid, {"name": p.stem}).close()
    zero = {name: np.zeros(rows, dt) for name, dt in schema.ITER_DTYPES.items()}
    phi = np.zeros((rows, k), np.float32)
    tc = np.zeros(rows, np.int32)
    tr = {name: np.empty(0, dt) for name, dt in schema.TRIAL_DTYPES.items()}
    blobs = encode_block({**zero, "iteration": np.arange(rows, dtype=np.int64)}, phi, tc, tr)
    builder = pyramid.PyramidBuilder(grid)
    con = sqlite3.connect(p, isolation_level=None)
    con.execute("PRAGMA journal_mode = DELETE")
    con.execute("BEGIN")
    cols = ", ".join(schema.block_columns())
    qs = ", ".join("?" for _ in range(len(schema.block_columns()) + 3))
    changed = {}
    for b in range(blocks):
        it = np.arange(b * rows, (b + 1) * rows, dtype=np.int64)
        con.execute(f"INSERT INTO blocks(first_iteration, last_iteration, n, {cols}) VALUES ({qs})",
                    (int(it[0]), int(it[-1]), rows, compress_array(it), *blobs[1:]))
        if lod:
            for level, c, recs in builder.add({**zero, "iteration": it}, phi, tc, None):
                changed[(level, c)] = (level, c, recs)
    if lod:
        write_chunks(con, list(changed.values()))
    else:
        con.execute("DELETE FROM meta WHERE key = 'lod'")
    con.execute("COMMIT")
    con.close()
    return p


def test_file_without_a_usable_pyramid_layout_is_not_decoded_whole_at_open(tmp_path, capsys):
    """Item 1: a missing pyramid layout key made every open decode every block (812 KB: 36 s in info)."""
    p = write_bomb(tmp_path / "nolayout.gda", blocks=40, rows=65536, k=8, lod=False)
    assert p.stat().st_size < 2 << 20
    for argv in (["info", str(p)], ["compare", str(p)], ["render", str(p), "-o", str(tmp_path / "o.png")]):
        rc, out, err = _run(argv, capsys)
        assert rc == 2, (argv, out)
        _one_line(err, p, "refusing to index")
    # a small file without the layout key (as written before meta.lod existed) still opens, same numbers
    q = write_good(tmp_path / "old.gda")
    _sql(q, lambda c: c.execute("DELETE FROM meta WHERE key = 'lod'"))
    rc, out, err = _run(["info", str(q)], capsys)
    assert rc == 0 and "600 (0..599)" in out and "indexed in memory" in out, err


def test_read_refuses_above_its_memory_budget(tmp_path):
    """Item 2: read() of a 0.1-5 MB file declaring 1M rows x 1024 alphas reached 3.9-5.8 GB."""
    p = write_bomb(tmp_path / "wide.gda", blocks=64, rows=16384, k=1024, lod=False)
    assert p.stat().st_size < 8 << 20
    with Recording(p) as rec:
        with pytest.raises(RecordingError, match="read budget"):
            rec.read()
        assert len(rec.read(0, 100)) == 100  # a range within the budget is read


def test_full_disk_buffer_is_bounded_in_bytes(tmp_path, caplog):
    """Item 4: while commits failed the buffer grew to 65,536 rows (1.67 GB at ~21 KB per row)."""
    from test_faults import FailingConnection

    from recorder.writer import MAX_BUFFER_BYTES

    k = 2048  # 8 KiB of phi per row
    w = RecordingWriter(tmp_path / "stuck.gda", np.linspace(0.0, 2.0, k), {"name": "stuck"}, commit_interval=3600)
    real = w._con
    w._con = FailingConnection(real, "INSERT INTO BLOCKS", times=None)
    phi = np.ones((100, k), np.float32)
    for b in range(80):  # 8,000 rows: 64 MiB of phi
        w.append_arrays({"iteration": np.arange(b * 100, (b + 1) * 100)}, phi)
    assert w.stopped and w.rows_dropped > 0
    assert w._pending_rows * 4 * k <= MAX_BUFFER_BYTES + 100 * 4 * k
    kept = w._pending_rows
    assert kept + w.rows_dropped == 8000
    w._con = real
    w.close()  # space is back: every buffered row is committed
    with Recording(tmp_path / "stuck.gda") as rec:
        assert rec.n_iterations() == kept


# --------------------------------------------------------------------------- finished files stand alone

def _journal_bytes(p: Path) -> bytes:
    return p.read_bytes()[18:20]  # 1, 1: rollback journal; 2, 2: WAL


def test_finished_recording_is_one_file_readable_from_read_only_media(tmp_path, capsys):
    """A recording closed while a reader had it open stayed in WAL mode: alone on read-only media it could not
    be opened, and every ``info`` on writable media left -wal and -shm files beside it."""
    p = tmp_path / "run.gda"
    w = RecordingWriter(p, GRID, {"name": "run"}, commit_interval=3600)
    for i in range(100):
        w.append(i, GRID)
    w.flush()
    with Recording(p):
        w.close()  # the reader holds it: the switch back to the rollback journal cannot happen now
    alone = tmp_path / "copy"
    alone.mkdir()
    shutil.copyfile(p, alone / "run.gda")
    before = _sha(alone / "run.gda")
    for argv in (["info", str(alone / "run.gda")], ["check", str(alone / "run.gda")]):
        rc, out, err = _run(argv, capsys)
        assert sorted(os.listdir(alone)) == ["run.gda"], argv  # nothing left beside it
        assert rc == 0 and "100" in out, err
    with Recording(alone / "run.gda") as rec:
        assert rec.n_iterations() == 100
    assert sorted(os.listdir(alone)) == ["run.gda"] and _sha(alone / "run.gda") == before
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        shutil.copyfile(p, ro / "run.gda")
        assert subprocess.run(["mount", "-o", "remount,ro", str(ro)], capture_output=True).returncode == 0
        rc, out, err = _run(["info", str(ro / "run.gda")], capsys)
        assert rc == 0 and "100 (0..99)" in out, err
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_writer_leaves_the_rollback_journal_when_the_reader_lets_go(tmp_path):
    p = tmp_path / "run.gda"
    with RecordingWriter(p, GRID, {"name": "run"}, journal="wal") as w:
        for i in range(10):
            w.append(i, GRID)
    assert _journal_bytes(p) == b"\x01\x01"
    assert [s for s in ("-wal", "-shm", "-journal") if Path(f"{p}{s}").exists()] == []


def test_overview_of_a_consistent_bomb_reads_buckets_bounded_by_pixels(tmp_path, capsys):
    """A small file with a consistent pyramid over 1.3M declared rows: info answers from the top bucket, and an
    envelope asked at the finest level is coarsened to at most 16 buckets per pixel column (render read every
    level-0 chunk: 447 MB and 4 s at 6.5M rows)."""
    from recorder.window import MAX_BUCKETS_PER_COLUMN, RunWindows

    p = write_bomb(tmp_path / "bomb.gda", blocks=20, rows=65536, k=8, lod=True)
    rc, out, err = _run(["info", str(p)], capsys)
    assert rc == 0 and "1,310,720" in out, err
    with Recording(p) as rec:
        w = RunWindows.from_recording(rec)
        env = w.envelope(0, 1_310_720, 100, level=0)
        assert env.level > 0 and len(env) <= MAX_BUCKETS_PER_COLUMN * 100 + 2
        assert w.envelope(0, 2000, 100, level=0).level == 0  # a narrow window keeps the level asked for


# --------------------------------------------------------------------------- drawing bounded along alpha (item 3)

def test_render_draws_65536_alphas_and_refuses_huge_images(tmp_path, capsys):
    """Item 3: a valid recording with 65,536 alphas made ``render`` take 24 s and 4.1 GB, then fail with
    GL_OUT_OF_MEMORY; ``--size 16384x16384`` reached 4.27 GB.  Drawing is now bounded by pixels along alpha
    (gda_gl.compose.scene.drawn_columns, the pyramid past a budget of samples): the whole run, a zoom and the
    details view render; an image larger than the pixel budget is refused in one line."""
    k = 65536
    p = tmp_path / "wide.gda"
    with RecordingWriter(p, np.linspace(0.0, 2.0, k), {"name": "wide"}) as w:
        for i in range(4):
            w.append(i, np.linspace(1.0, 2.0, k).astype(np.float32), train_loss=1.0)
    out = tmp_path / "o.png"
    for extra in ([], ["--range", "1:3"], ["--detail", "2"]):
        rc, _, err = _run(["render", str(p), "-o", str(out), "--size", "800x450", *extra], capsys)
        assert rc == 0 and out.exists(), (extra, err)
        out.unlink()
    rc, _, err = _run(["compare", str(p), "--png", str(out), "--size", "800x450"], capsys)
    assert rc == 0 and out.exists(), err
    rc, info, err = _run(["info", str(p)], capsys)
    assert rc == 0 and "65536 values" in info, err
    rc, _, err = _run(["render", str(template_path(tmp_path)), "-o", str(out), "--size", "16384x16384"], capsys)
    assert rc == 2 and "megapixels" in err and len(err.strip().splitlines()) == 1


def template_path(tmp_path: Path) -> Path:
    return write_good(tmp_path / "small.gda", n=50, events=0)
