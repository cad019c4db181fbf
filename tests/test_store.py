"""Recording store: round trips, concurrency, crash safety, single writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recorder import schema
from recorder.errors import RecordingBusyError, RecordingError
from recorder.store import Recording, RecordingWriter, open_recordings

HELPER = Path(__file__).parent / "helpers" / "writer_proc.py"


def test_round_trip_with_nonfinite_and_ragged_trials(tmp_path):
    grid = np.array([0.0, 0.25, 0.5, 1.0, 2.0])
    rng = np.random.default_rng(0)
    n = 700  # spans several blocks at block_rows=256
    phi = rng.normal(size=(n, 5)).astype(np.float32)
    phi[3, 1] = np.nan
    phi[4, 2] = np.inf
    phi[5, 0] = -np.inf
    # a NaN with a payload must survive bit-exactly too
    phi.view(np.uint32)[6, 4] = 0x7FC00123
    losses = rng.normal(size=n)
    losses[7] = np.nan
    losses[8] = -np.inf
    trials = []
    with RecordingWriter(tmp_path / "r.gda", grid, {"name": "rt", "tags": {"x": 1}}, block_rows=256,
                         commit_interval=0.05) as w:
        for i in range(n):
            m = i % 5
            tr = {"alpha": rng.random(m), "loss": rng.normal(size=m), "slope": np.where(np.arange(m) % 2, np.nan, 1.0)}
            trials.append(tr)
            w.append(10 + 3 * i, phi[i], trials=tr if m else None, epoch=i // 100, batch=i // 20,
                     train_loss=losses[i], status=schema.STATUS_NONFINITE if i in (3, 4, 5) else 0)
            if i == 350:
                time.sleep(0.2)  # let the background thread commit a partial tail block
    with Recording(tmp_path / "r.gda") as rec:
        assert rec.run["tags"] == {"x": 1}
        np.testing.assert_array_equal(rec.alpha_grid, grid)
        d = rec.read()
        assert len(d) == n
        assert d.phi.tobytes() == phi.tobytes()  # bit-exact, NaN payload included
        assert d["train_loss"].tobytes() == losses.astype(np.float32).tobytes()  # float32 since schema 2
        np.testing.assert_array_equal(d.iteration, 10 + 3 * np.arange(n))
        np.testing.assert_array_equal(d["batch"], np.arange(n) // 20)
        assert list(d["status"][2:7]) == [0, 1, 1, 1, 0]
        for i in (0, 1, 4, 399, 699):
            got = d.trials_of(i)
            np.testing.assert_array_equal(got["alpha"], trials[i]["alpha"])
            np.testing.assert_array_equal(got["loss"], trials[i]["loss"])
            assert got["slope"].tobytes() == np.asarray(trials[i]["slope"], np.float64).tobytes()
            np.testing.assert_array_equal(got["order"], np.arange(len(trials[i]["alpha"])))
        # range reads by iteration number (half-open)
        part = rec.read(start=10 + 3 * 300, stop=10 + 3 * 310)
        np.testing.assert_array_equal(part.iteration, 10 + 3 * np.arange(300, 310))
        assert part.phi.tobytes() == phi[300:310].tobytes()
        np.testing.assert_array_equal(part.trials_of(1)["alpha"], trials[301]["alpha"])
        blocks = rec.query("SELECT COUNT(*), MAX(n) FROM blocks")[0]
        assert blocks[0] == 3 and blocks[1] == 256  # grown tail blocks, not one block per commit


def test_append_is_strictly_increasing_and_append_mode_continues(tmp_path):
    p = tmp_path / "a.gda"
    with RecordingWriter(p, [0.0, 1.0]) as w:
        w.append(0, [1.0, 0.5])
        w.append(1, [0.5, 0.25])
        with pytest.raises(ValueError):
            w.append(1, [0.0, 0.0])
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(p, [0.0, 1.0])
    with pytest.raises(RecordingError, match="alpha grid differs"):
        RecordingWriter(p, [0.0, 2.0], append=True)
    with RecordingWriter(p, [0.0, 1.0], append=True) as w:
        with pytest.raises(ValueError):
            w.append(1, [0.0, 0.0])
        w.append(2, [0.25, 0.125])
    with Recording(p) as rec:
        d = rec.read()
        np.testing.assert_array_equal(d.iteration, [0, 1, 2])
        np.testing.assert_array_equal(d.phi[:, 0], [1.0, 0.5, 0.25])
        assert rec.writer_state() == "closed"
    assert not Path(str(p) + "-wal").exists()  # closed recordings are one file


def test_several_runs_open_together(tmp_path):
    from conftest import write_synthetic

    a = write_synthetic(tmp_path / "a.gda", n=50)
    b = write_synthetic(tmp_path / "b.gda", n=80)
    recs = open_recordings([a, b])
    assert [len(r.read()) for r in recs] == [50, 80]
    for r in recs:
        r.close()
    with pytest.raises(RecordingError, match="no such file"):
        open_recordings([a, tmp_path / "missing.gda"])


def _spawn(path, n, sleep, *extra):
    env = dict(os.environ)
    return subprocess.Popen([sys.executable, str(HELPER), str(path), str(n), str(sleep), *extra],
                            stdout=subprocess.PIPE, text=True, env=env)


def _wait_line(proc, prefix, timeout=30):
    t0 = time.time()
    while time.time() - t0 < timeout:
        line = proc.stdout.readline()
        if line.startswith(prefix):
            return line.strip()
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no {prefix!r} from writer process")


def test_reader_in_second_process_sees_committed_tail(tmp_path):
    p = tmp_path / "live.gda"
    proc = _spawn(p, 300, 0.005)
    try:
        _wait_line(proc, "started")
        rec = None
        deadline = time.time() + 30
        while rec is None and time.time() < deadline:
            try:
                rec = Recording(p)
            except RecordingError:
                time.sleep(0.05)
        assert rec is not None
        seen = []
        states = set()
        while time.time() < deadline:
            part = rec.read_new()
            seen.append(part)
            states.add(rec.writer_state())
            if proc.poll() is not None and len(part) == 0 and sum(len(s) for s in seen) >= 300:
                break
            time.sleep(0.05)
        from recorder.store import Iterations

        allrows = Iterations.concat([s for s in seen if len(s)])
        np.testing.assert_array_equal(allrows.iteration, np.arange(300))  # every row once, in order
        np.testing.assert_array_equal(allrows.phi[:, 0], np.arange(300, dtype=np.float32))
        np.testing.assert_array_equal(np.diff(allrows.trial_offsets), np.arange(300) % 4)
        assert sum(1 for s in seen if len(s)) > 3  # it really arrived in pieces while being written
        assert "live" in states
        assert rec.writer_state() == "closed"
        rec.close()
    finally:
        proc.kill()
        proc.wait()


def test_kill_9_loses_at_most_the_uncommitted_tail(tmp_path):
    p = tmp_path / "killed.gda"
    proc = _spawn(p, 100000, 0.002)
    try:
        _wait_line(proc, "started")
        last = 0
        t0 = time.time()
        while time.time() - t0 < 1.5:
            line = proc.stdout.readline()
            if line.startswith("committed"):
                last = int(line.split()[1])
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    assert last > 0
    with Recording(p) as rec:
        d = rec.read()
        assert len(d) >= last
        np.testing.assert_array_equal(d.iteration, np.arange(len(d)))
        np.testing.assert_array_equal(d.phi[:, 3], (np.arange(len(d)) + np.linspace(0, 2, 8)[3]).astype(np.float32))
        assert rec.writer_state() == "died"
    # the dead writer's lock does not block a new writer
    with RecordingWriter(p, np.linspace(0, 2, 8), append=True) as w:
        w.append(len(d), np.zeros(8))
    with Recording(p) as rec:
        assert len(rec.read()) == len(d) + 1


def test_two_writers_get_a_clear_error(tmp_path):
    p = tmp_path / "busy.gda"
    proc = _spawn(p, 20, 0.0, "--hold", "30")
    try:
        _wait_line(proc, "started")
        t0 = time.time()
        while time.time() - t0 < 20:
            try:
                with Recording(p) as rec:
                    if rec.n_iterations() == 20:
                        break
            except RecordingError:
                pass
            time.sleep(0.05)
        for kw in ({"append": True}, {"overwrite": True}):
            with pytest.raises(RecordingBusyError, match=f"being written by another writer \\(pid {proc.pid}"):
                RecordingWriter(p, np.linspace(0, 2, 8), **kw)
    finally:
        proc.kill()
        proc.wait()
    with Recording(p) as rec:  # the failed attempts changed nothing
        assert len(rec.read()) == 20
        np.testing.assert_array_equal(rec.read().iteration, np.arange(20))


def test_commit_interval_bounds_visibility(tmp_path):
    p = tmp_path / "tick.gda"
    w = RecordingWriter(p, [0.0, 1.0], commit_interval=0.1)
    try:
        w.append(0, [1.0, 0.0])
        rec = Recording(p)
        t0 = time.time()
        while rec.n_iterations() == 0 and time.time() - t0 < 5:
            time.sleep(0.02)
        assert rec.n_iterations() == 1  # committed by the background thread, no close() needed
        rec.close()
    finally:
        w.close()


def test_rollback_journal_fallback_round_trip_and_concurrent_reader(tmp_path):
    """journal='delete' (what network file systems get) keeps the same semantics."""
    p = tmp_path / "nfs-like.gda"
    w = RecordingWriter(p, [0.0, 1.0], {"name": "rb"}, journal="delete", commit_interval=0.05)
    assert w.journal_mode == "delete"
    try:
        w.append(0, [1.0, 0.5])
        w.flush()
        rec = Recording(p)
        assert len(rec.read()) == 1
        w.append(1, [0.5, np.nan])
        w.flush()
        new = rec.read_new()
        np.testing.assert_array_equal(new.iteration, [1])
        assert np.isnan(new.phi[0, 1])
        assert rec.writer_state() == "live"
        rec.close()
    finally:
        w.close()
    assert not Path(str(p) + "-wal").exists() and not Path(str(p) + "-journal").exists()
    with Recording(p) as rec:
        assert rec.writer_state() == "closed" and len(rec.read()) == 2
