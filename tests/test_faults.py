"""Faults that must not lose recorded data: failed commits, a full disk, writer races, bad values,
hostile files given to a writer, and readers that must accept good files in odd states.

Truth is independent of the code under test: what was appended (kept in the test), raw SQLite
(``quick_check``), byte digests of files, and exit statuses of separate processes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, foreign_sqlite
from recorder.errors import RecordingBusyError, RecordingError
from recorder.store import Recording, RecordingWriter

GRID = np.linspace(0.0, 2.0, 8)
HELPER = Path(__file__).parent / "helpers" / "writer_proc.py"


def _sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def _phi(i: int, k: int = len(GRID)) -> np.ndarray:
    return (np.float32(i) + np.arange(k, dtype=np.float32) / 8).astype(np.float32)


class FailingConnection:
    """Wraps the writer's sqlite3 connection; statements starting with ``fail_on`` raise SQLITE_FULL."""

    def __init__(self, con, fail_on: str, times: int | None = 1):
        self._con, self.fail_on, self.times = con, fail_on, times

    def _call(self, method: str, sql: str, *args):
        """Fail ``sql`` while failures are due, else run it with the wrapped connection's ``method``."""
        if sql.lstrip().upper().startswith(self.fail_on) and (self.times is None or self.times > 0):
            if self.times is not None:
                self.times -= 1
            raise sqlite3.OperationalError("database or disk is full")
        return getattr(self._con, method)(sql, *args)

    def execute(self, sql, *args):
        return self._call("execute", sql, *args)

    def executemany(self, sql, *args):
        return self._call("executemany", sql, *args)

    def __getattr__(self, name):
        return getattr(self._con, name)


def _check_rows(path: Path, iterations) -> None:
    with Recording(path) as rec:
        d = rec.read()
    np.testing.assert_array_equal(d.iteration, np.asarray(iterations))
    for r, i in enumerate(d.iteration):
        assert d.phi[r].tobytes() == _phi(int(i)).tobytes()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    con.close()


# --------------------------------------------------------------------------- 1. failed commits lose nothing

@pytest.mark.parametrize("fail_on", ["COMMIT", "UPDATE META", "INSERT INTO EVENTS", "INSERT INTO BLOCKS"])
def test_a_failed_commit_keeps_every_row(tmp_path, fail_on):
    p = tmp_path / "f.gda"
    w = RecordingWriter(p, GRID, {"name": "f"}, block_rows=64, commit_interval=3600)
    for i in range(100):
        w.append(i, _phi(i))
    w.flush()  # one full block and a 36-row tail
    for i in range(100, 140):  # grows the 36-row tail past the block boundary (no automatic flush)
        w.append(i, _phi(i))
    w.add_event("note", "before the failure")
    real = w._con
    w._con = FailingConnection(real, fail_on)
    with pytest.raises(RecordingError, match="disk is full"):
        w.flush()
    w._con = real
    for i in range(140, 150):
        w.append(i, _phi(i))
    w.flush()
    w.close()
    _check_rows(p, range(150))
    with Recording(p) as rec:
        assert [e[3] for e in rec.events("note")] == ["before the failure"]


def _mount_tmpfs(where: Path, size: str) -> bool:
    where.mkdir()
    try:
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                           timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return r.returncode == 0


def test_disk_full_then_space_freed_loses_nothing(tmp_path, caplog):
    mnt = tmp_path / "small"
    if not _mount_tmpfs(mnt, "1m"):
        pytest.skip("cannot mount a small tmpfs (not root, or no mount permission)")
    try:
        filler = mnt / "filler"
        filler.write_bytes(os.urandom(700 * 1024))
        p = mnt / "full.gda"
        rng = np.random.default_rng(0)
        k = 64
        grid = np.linspace(0, 2, k)
        rows = {}
        w = RecordingWriter(p, grid, {"name": "full"}, block_rows=128, commit_interval=3600)
        failed_at = None
        i = 0
        with caplog.at_level(logging.WARNING):
            while i < 4000 and (failed_at is None or i < failed_at + 300):
                phi = rng.random(k).astype(np.float32)  # incompressible: fills the disk
                rows[i] = phi
                w.append(i, phi)
                i += 1
                if i % 50 == 0:
                    try:
                        w.flush()
                    except RecordingError:
                        failed_at = failed_at or i
            assert failed_at is not None, "the disk never filled up"
            filler.unlink()  # space again
            w.flush()
            w.close()
        assert w.rows_dropped == 0
        with Recording(p) as rec:
            d = rec.read()
        np.testing.assert_array_equal(d.iteration, np.arange(i))
        assert d.phi.tobytes() == np.stack([rows[j] for j in range(i)]).tobytes()
        con = sqlite3.connect(p)
        assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
        con.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_during_training_bounds_memory_and_speed(tmp_path, caplog):
    """Commits fail for good: appends stay fast, the buffer stays bounded, one warning, committed rows readable."""
    p = tmp_path / "stuck.gda"
    w = RecordingWriter(p, GRID, {"name": "stuck"}, block_rows=256, commit_interval=0.05, max_buffer_rows=2000)
    for i in range(300):
        w.append(i, _phi(i))
    w.flush()
    real = w._con
    w._con = FailingConnection(real, "COMMIT", times=None)
    n = 20000
    with caplog.at_level(logging.WARNING):
        t0 = time.perf_counter()
        for i in range(300, 300 + n):
            w.append(i, _phi(i))
        elapsed = time.perf_counter() - t0
        assert w._pending_rows <= 2000
        assert w.stopped and w.rows_dropped == n - 2000
        time.sleep(0.2)  # the commit thread retries meanwhile, quietly
        w._con = real
        w.close()
    assert elapsed < 15, f"{n} appends took {elapsed:.1f} s while commits failed"
    stopped = [r for r in caplog.records if "recording stopped" in r.getMessage()]
    assert len(stopped) == 1
    _check_rows(p, range(300 + 2000))
    with Recording(p) as rec:
        assert [e[2] for e in rec.events("recording-stopped")] == ["recording-stopped"]


# --------------------------------------------------------------------------- 2. writers started together

_RACER = r"""
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from recorder.errors import RecordingError
from recorder.store import RecordingWriter
path, tag, overwrite, t0 = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1", float(sys.argv[4])
time.sleep(max(0.0, t0 - time.time()))
grid = np.linspace(0, 2, 8)
try:
    w = RecordingWriter(path, grid, {{"name": f"w{{tag}}"}}, overwrite=overwrite, commit_interval=0.01, block_rows=16)
except RecordingError as exc:
    print(exc, file=sys.stderr)
    sys.exit(2)
for i in range(60):
    w.append(i, np.full(8, tag, np.float32))
    time.sleep(0.002)
w.close()
"""


@pytest.mark.parametrize("overwrite", [False, True])
def test_writers_started_together_one_wins_cleanly(tmp_path, overwrite):
    code = _RACER.format(root=str(ROOT))
    for round_ in range(5):
        p = tmp_path / f"race{round_}.gda"
        if overwrite:  # an earlier, finished recording that both may replace
            with RecordingWriter(p, GRID, {"name": "old"}) as w:
                w.append(0, _phi(0))
        t0 = time.time() + 1.5
        procs = [subprocess.Popen([sys.executable, "-c", code, str(p), str(tag), "1" if overwrite else "0", str(t0)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in (1, 2)]
        results = [(pr.wait(timeout=120), pr.stderr.read()) for pr in procs]
        for rc, err in results:
            assert "Traceback" not in err, err
            assert rc in (0, 2), err
            if rc == 2:
                assert len(err.strip().splitlines()) == 1 and str(p) in err
                assert "already exists" in err or "being written" in err
        winners = [tag for tag, (rc, _) in zip((1, 2), results) if rc == 0]
        assert winners, results
        if not overwrite:
            assert len(winners) == 1
        with Recording(p) as rec:
            d = rec.read()
            assert rec.writer_state() == "closed"
        # the file holds one complete run of a writer that reported success
        assert len(d) == 60 and d.phi[0, 0] in winners and np.all(d.phi == d.phi[0, 0])
        assert not list(tmp_path.glob(".gda-*.tmp"))


# --------------------------------------------------------------------------- 3. one bad value

@pytest.mark.parametrize("bad", [
    dict(iteration=float("nan")), dict(iteration=2 ** 64), dict(iteration="7"),
    dict(epoch="one"), dict(status=300), dict(status=-1.5), dict(batch=float("inf")), dict(lr="fast"),
    dict(phi=[1.0, 2.0]), dict(trials={"alpha": [0.1, 0.2], "loss": [1.0]}), dict(unknown_field=1),
])
def test_one_bad_value_fails_that_call_only(tmp_path, bad):
    p = tmp_path / "b.gda"
    with RecordingWriter(p, GRID, block_rows=4, commit_interval=3600) as w:
        for i in range(10):
            w.append(i, _phi(i), epoch=i // 5, status=0)
        kw = dict(bad)
        it = kw.pop("iteration", 10)
        phi = kw.pop("phi", _phi(10))
        with pytest.raises((TypeError, ValueError)):
            w.append(it, phi, **kw)
        w.append(10, _phi(10))
    _check_rows(p, range(11))


def test_bad_column_in_append_arrays_buffers_nothing(tmp_path):
    p = tmp_path / "c.gda"
    with RecordingWriter(p, GRID, commit_interval=3600) as w:
        w.append(0, _phi(0))
        with pytest.raises(ValueError):
            w.append_arrays({"iteration": np.arange(1, 4), "status": np.array([0, 1, 999])}, np.zeros((3, 8)))
        with pytest.raises(ValueError):
            w.append_arrays({"iteration": np.array([1.0, np.nan, 3.0])}, np.zeros((3, 8)))
        w.append_arrays({"iteration": np.arange(1, 4)}, np.stack([_phi(i) for i in range(1, 4)]))
    _check_rows(p, range(4))


# --------------------------------------------------------------------------- 5. stored SQL never runs; no file replaced

def _good(p: Path, n: int = 20) -> Path:
    with RecordingWriter(p, GRID, {"name": p.stem}) as w:
        for i in range(n):
            w.append(i, _phi(i))
    return p


@pytest.mark.parametrize("sql", [
    "CREATE TRIGGER wipe AFTER INSERT ON blocks BEGIN DELETE FROM blocks; END",
    "CREATE TRIGGER wipe2 AFTER UPDATE ON meta BEGIN DELETE FROM blocks; END",
    "CREATE VIEW v AS SELECT 1",
    "CREATE INDEX ix ON blocks(length(phi) + 1)",
    "CREATE TABLE extra(x)",
])
def test_append_refuses_files_with_foreign_schema_objects(tmp_path, sql):
    p = _good(tmp_path / "t.gda")
    con = sqlite3.connect(p)
    con.execute(sql)
    con.commit()
    con.close()
    before = _sha(p)
    with pytest.raises(RecordingError) as ei:
        RecordingWriter(p, GRID, append=True)
    assert "\n" not in str(ei.value) and str(p) in str(ei.value)
    assert _sha(p) == before
    con = sqlite3.connect(p)
    assert con.execute("SELECT SUM(n) FROM blocks").fetchone()[0] == 20
    con.close()


def _make_targets(tmp: Path) -> dict[str, Path]:
    text = tmp / "notes.gda"
    text.write_text("my notes\n")
    ckpt = tmp / "model.pt"
    ckpt.write_bytes(b"PK\x03\x04" + os.urandom(200))
    other = foreign_sqlite(tmp / "app.db")
    d = tmp / "adir.gda"
    d.mkdir()
    fifo = tmp / "pipe.gda"
    os.mkfifo(fifo)
    empty = tmp / "empty.gda"
    empty.write_bytes(b"")
    return {"text": text, "checkpoint": ckpt, "foreign-sqlite": other, "directory": d, "fifo": fifo, "empty": empty}


def test_writer_never_replaces_a_file_that_is_not_a_recording(tmp_path):
    targets = _make_targets(tmp_path)
    for name, p in targets.items():
        before = _sha(p) if p.is_file() else None
        for kw in ({"overwrite": True}, {"append": True}, {}):
            with pytest.raises(RecordingError) as ei:
                RecordingWriter(p, GRID, **kw)
            assert "\n" not in str(ei.value), name
        assert (p.is_dir() if name == "directory" else True)
        if before is not None:
            assert _sha(p) == before, name
    assert not list(tmp_path.glob(".gda-*.tmp"))


def test_overwrite_replaces_a_finished_recording_but_not_a_live_one(tmp_path):
    p = _good(tmp_path / "r.gda", n=5)
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(p, GRID)
    with RecordingWriter(p, GRID, overwrite=True) as w:
        w.append(100, _phi(100))
        with pytest.raises(RecordingBusyError):
            RecordingWriter(p, GRID, overwrite=True)
    _check_rows(p, [100])


def test_attach_leaves_a_non_recording_path_alone_and_training_goes_on(tmp_path):
    torch = pytest.importorskip("torch")
    import recorder

    p = tmp_path / "checkpoint.gda"
    p.write_bytes(b"weights that must survive" * 100)
    before = _sha(p)
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.MSELoss()
    rec = recorder.attach(opt, model, loss_fn, p, probe="cheap")
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    w0 = model.weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    rec.close()
    assert not torch.equal(model.weight, w0)  # training went on
    assert _sha(p) == before


# --------------------------------------------------------------------------- readers must accept good files

def test_hot_rollback_journal_is_read_without_changing_anything(tmp_path):
    p = tmp_path / "hot.gda"
    with RecordingWriter(p, GRID, {"name": "hot"}, journal="delete", block_rows=16) as w:
        for i in range(200):
            w.append(i, _phi(i))
    code = (f"import sqlite3, os\ncon = sqlite3.connect({str(p)!r}, isolation_level=None)\n"
            "con.execute('PRAGMA cache_size=1')\ncon.execute('BEGIN')\n"
            "con.execute('UPDATE blocks SET phi = zeroblob(length(phi)), n = n + 1000')\n"
            "con.execute('DELETE FROM meta')\nos._exit(0)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    journal = Path(str(p) + "-journal")
    assert journal.exists() and journal.stat().st_size > 0
    digests = (_sha(p), _sha(journal))
    _check_rows_ro(p, range(200))
    from gda_gl.cli import main

    assert main(["info", str(p)]) == 0
    assert (_sha(p), _sha(journal)) == digests  # nothing rolled back in place
    # a writer resuming the recording lets SQLite recover it, then appends
    with RecordingWriter(p, GRID, append=True, journal="delete") as w:
        w.append(200, _phi(200))
    assert not journal.exists()
    _check_rows(p, range(201))


def _check_rows_ro(p: Path, iterations) -> None:
    with Recording(p) as rec:
        d = rec.read()
    np.testing.assert_array_equal(d.iteration, np.asarray(iterations))
    assert all(d.phi[r].tobytes() == _phi(int(i)).tobytes() for r, i in enumerate(d.iteration))


def test_wal_checkpoint_killed_half_way_is_read(tmp_path):
    """The database file's header already claims pages only the WAL holds (a checkpoint killed half-way)."""
    p = tmp_path / "ckpt.gda"
    proc = subprocess.Popen([sys.executable, str(HELPER), str(p), "150", "0.0", "--hold", "60"],
                            stdout=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            line = proc.stdout.readline()
            if line.startswith("committed 128"):
                time.sleep(1.0)  # the commit thread commits the last rows meanwhile
                break
        else:
            raise AssertionError("the writer did not commit")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    wal = Path(str(p) + "-wal")
    data = wal.read_bytes()
    page = int.from_bytes(data[8:12], "big")
    db = bytearray(p.read_bytes())
    # the newest copy of page 1 in the WAL, written over the database file (what a checkpoint does first)
    off, newest = 32, None
    while off + 24 + page <= len(data):
        if int.from_bytes(data[off:off + 4], "big") == 1:
            newest = data[off + 24:off + 24 + page]
        off += 24 + page
    assert newest is not None
    db[:page] = newest
    p.write_bytes(bytes(db))
    claimed = int.from_bytes(newest[28:32], "big") * page
    assert claimed > len(db)  # the pre-check alone would call this truncated
    with Recording(p) as rec:
        d = rec.read()
    # independent truth: SQLite itself on a copy it may recover
    copy = tmp_path / "copy.gda"
    copy.write_bytes(p.read_bytes())
    Path(str(copy) + "-wal").write_bytes(wal.read_bytes())
    con = sqlite3.connect(copy)
    assert con.execute("PRAGMA quick_check").fetchone()[0] == "ok"
    total = con.execute("SELECT SUM(n) FROM blocks").fetchone()[0]
    con.close()
    assert total >= 128
    np.testing.assert_array_equal(d.iteration, np.arange(total))


def test_opens_while_a_writer_commits_never_fail(tmp_path):
    p = tmp_path / "live.gda"
    proc = subprocess.Popen([sys.executable, str(HELPER), str(p), "400", "0.003"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("started")
        failures, opens = [], 0
        while proc.poll() is None and opens < 300:
            try:
                with Recording(p) as rec:
                    rec.read()
            except RecordingError as exc:
                failures.append(str(exc))
            opens += 1
        assert opens > 20 and not failures, failures[:3]
    finally:
        proc.kill()
        proc.wait()


def _remote_writer_open(p: Path, heartbeat: float) -> None:
    """Mark ``p`` as held open by a writer on another host whose last heartbeat says ``heartbeat``."""
    con = sqlite3.connect(p)
    con.execute("UPDATE meta SET value = ? WHERE key = 'writer'",
                (json.dumps({"pid": 77, "host": "far-away.example", "token": None, "heartbeat": heartbeat,
                             "state": "open"}),))
    con.commit()
    con.close()


def test_remote_heartbeat_in_the_future_does_not_lock_forever(tmp_path):
    p = _good(tmp_path / "remote.gda", n=3)
    _remote_writer_open(p, time.time() + 1e7)
    with RecordingWriter(p, GRID, append=True) as w:
        w.append(3, _phi(3))
    _check_rows(p, range(4))
    # a recent remote heartbeat still counts as a live writer
    _remote_writer_open(p, time.time() + 5)
    with pytest.raises(RecordingBusyError):
        RecordingWriter(p, GRID, append=True)


def test_attach_never_replaces_an_earlier_recording_by_default(tmp_path, caplog):
    """Re-running a training script keeps the earlier run: the new one goes to a fresh numbered name."""
    torch = pytest.importorskip("torch")
    import recorder

    p = tmp_path / "run.gda"
    with RecordingWriter(p, GRID, {"name": "earlier"}) as w:
        w.append(0, _phi(0))
    before = _sha(p)
    (tmp_path / "run-2.gda").write_bytes(b"not ours")  # taken names are skipped too
    model = torch.nn.Linear(4, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.MSELoss()
    x, y = torch.randn(8, 4), torch.randn(8, 2)
    with recorder.attach(opt, model, loss_fn, p, probe="cheap") as rec:
        for _ in range(3):
            opt.zero_grad()
            loss_fn(model(x), y).backward()
            opt.step()
    assert rec.path == tmp_path / "run-3.gda"
    assert any("run-3.gda" in r.getMessage() for r in caplog.records)  # one warning names the new file
    assert _sha(p) == before and (tmp_path / "run-2.gda").read_bytes() == b"not ours"
    with Recording(tmp_path / "run-3.gda") as r:
        assert r.n_iterations() > 0
    # asked for explicitly, a finished recording is replaced
    with recorder.attach(opt, model, loss_fn, p, probe="cheap", overwrite=True) as rec:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
    assert rec.path == p and _sha(p) != before
