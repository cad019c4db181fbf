"""``gda-gl diagnose`` against constructed trainings whose truth is known (recorded with the real recorder).

* the same MLP over a range of learning rates: ``factor`` orders the runs by learning rate, the verdicts go
  from too short through about right to too long;
* one run with an outlier batch at step 64 (labels shuffled, inputs scaled), a one-step learning-rate
  spike at step 128 and a learning rate that makes it diverge from step 192: a spike within one step of
  64 caused by the batch, one within one step of 128 caused by the step, the divergence's onset within
  one step of 192, and no other spike;
* the few-point preset (``cheap``) states a coarser resolution; a run whose steps do nothing has flat
  lines (cannot say) and a plateau; noisy lines cannot say either;
* bad input (no probed step, 3 steps, all-NaN lines): one line saying why, exit status 2.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from diagnose_runs import train
from recorder.diagnose import NothingToSay, diagnose_paths
from recorder.diagnose import thresholds as T
from recorder.reader import Recording
from recorder.store import RecordingWriter

SWEEP = (0.1, 0.6, 1.0, 2.0)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    return [train(d / f"lr{lr}.gda", lr, 100) for lr in SWEEP]


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    d = tmp_path_factory.mktemp("events")
    return train(d / "events.gda", 0.3, 240, outlier_at=64, lr_spike_at=128, diverge_at=192)


def _factor(e):
    return e["factor"]


def test_factor_orders_runs_by_learning_rate(sweep):
    reports, problems = diagnose_paths(sweep)
    assert not problems
    assert [r["run"] for r in reports] == [f"lr{lr}" for lr in SWEEP]
    for w in range(2):
        entries = [r["step_size"][w] for r in reports]
        factors = [_factor(e) for e in entries]
        assert all(f is not None for f in factors), entries
        # a larger learning rate never reads as a longer-wanted step; a lower bound only at the short end
        assert all(a > b for a, b in zip(factors, factors[1:])), factors
        assert [e["bound"] for e in entries[1:]] == [None] * 3
        assert entries[0]["verdict"] == "too_short" and entries[0]["bound"] == "lower"
        assert entries[-1]["verdict"] == "too_long"
        assert {e["verdict"] for e in entries[1:3]} == {"ok"}
        for e in entries:
            assert e["steps"] >= T.MIN_WINDOW_STEPS and 0.5 <= e["agree"] <= 1.0
            assert e["resolution"] == pytest.approx(1 / 8)  # standard: 17 alphas, step 1/8


def test_factor_is_the_median_of_the_measured_minima(sweep):
    """The window's factor recomputed from the raw rows: the median of argmin alpha over the steps."""
    rep = diagnose_paths(sweep[2:3])[0][0]
    with Recording(sweep[2]) as rec:
        data = rec.read()
    e = rep["step_size"][0]
    rows = (data.iteration >= e["start"]) & (data.iteration < e["stop"])
    amin = data.alpha_grid[np.argmin(data.phi[rows], axis=1)]
    assert e["factor"] == pytest.approx(float(np.median(amin)))


def test_outlier_batch_lr_spike_and_divergence(events):
    rep = diagnose_paths([events])[0][0]
    spikes = {s["iteration"]: s for s in rep["spikes"]}
    near = {k: [s for i, s in spikes.items() if abs(i - k) <= 1] for k in (64, 128)}
    assert len(near[64]) == 1 and near[64][0]["cause"] == "batch", spikes
    assert len(near[128]) == 1 and near[128][0]["cause"] == "step", spikes
    assert set(spikes) == {near[64][0]["iteration"], near[128][0]["iteration"]}  # no false alarm
    div = [f for f in rep["findings"] if f["kind"] == "divergence"]
    assert len(div) == 1 and abs(div[0]["start"] - 192) <= 1 and div[0]["stop"] == 240
    assert {(f["start"], f["kind"]) for f in rep["findings"]} >= {(128, "lr_change"), (129, "lr_change"),
                                                                    (192, "lr_change")}
    # the evidence is the recorded lines: phi_{k-1}(1) and phi_k(0) read back from the rows
    s = near[64][0]
    with Recording(events) as rec:
        data = rec.read(s["iteration"] - 1, s["iteration"] + 1)
    one = int(np.flatnonzero(data.alpha_grid == 1.0)[0])
    assert s["evidence"]["prev_phi1"] == pytest.approx(float(data.phi[0, one]), rel=1e-5)
    assert s["evidence"]["phi0"] == pytest.approx(float(data.phi[1, 0]), rel=1e-5)
    assert s["evidence"]["phi0"] - s["evidence"]["prev_phi1"] > s["evidence"]["threshold"]


def test_few_points_say_their_resolution(tmp_path):
    path = train(tmp_path / "cheap.gda", 0.1, 320, probe="cheap")
    rep = diagnose_paths([path])[0][0]
    readable = [e for e in rep["step_size"] if e["verdict"] != "cannot_say"]
    assert readable, rep["step_size"]
    for e in readable:
        assert e["resolution"] == pytest.approx(0.5)   # 5 alphas over [0, 2]
        assert e["steps"] >= T.MIN_WINDOW_STEPS and e["stop"] - e["start"] >= 16 * T.MIN_WINDOW_STEPS
    assert any(f["kind"] == "probe_skipped" for f in rep["findings"])


def test_flat_lines_cannot_say_and_plateau(tmp_path):
    path = train(tmp_path / "still.gda", 1e-7, 100)
    rep = diagnose_paths([path])[0][0]
    assert {e["verdict"] for e in rep["step_size"]} == {"cannot_say"}
    assert all("flat or noisy" in e["reason"] for e in rep["step_size"])
    assert [f["kind"] for f in rep["findings"]] == ["plateau"]
    assert rep["findings"][0]["start"] == 0 and rep["findings"][0]["stop"] == 100
    assert not rep["spikes"]


def _write(path, phi, status=0, grid=None):
    grid = np.linspace(0, 2, phi.shape[1]) if grid is None else grid
    with RecordingWriter(path, grid, {"name": path.stem}, overwrite=True) as w:
        for i, row in enumerate(phi):
            w.append(i, row, taken_alpha=1.0, train_loss=float(row[0]), status=status, lr=0.1)
    return path


def test_noisy_lines_cannot_say(tmp_path):
    rng = np.random.default_rng(0)
    path = _write(tmp_path / "noisy.gda", (1.0 + 0.1 * rng.standard_normal((80, 17))).astype(np.float32))
    rep = diagnose_paths([path])[0][0]
    assert {e["verdict"] for e in rep["step_size"]} == {"cannot_say"}


@pytest.mark.parametrize("case, why", [("skipped", "no step was probed"), ("three", "only 3 steps"),
                                       ("nan", "no line has a finite value")])
def test_bad_input_one_line(tmp_path, case, why):
    if case == "three":
        path = train(tmp_path / "three.gda", 0.1, 3)
    elif case == "skipped":
        path = _write(tmp_path / "skipped.gda", np.full((40, 5), np.nan, np.float32), status=3)
    else:
        path = _write(tmp_path / "nan.gda", np.full((40, 5), np.nan, np.float32), status=1)
    with Recording(path) as rec, pytest.raises(NothingToSay, match=why):
        from recorder.diagnose import diagnose

        diagnose(rec)
    r = subprocess.run([sys.executable, "-m", "recorder.diagnose", str(path)], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and why in lines[0]


def test_json_shape_and_table(sweep, events):
    r = subprocess.run([sys.executable, "-m", "recorder.diagnose", "--json", str(sweep[0]), str(events)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert [x["run"] for x in doc["runs"]] == ["lr0.1", "events"]
    for run in doc["runs"]:
        assert set(run) == {"run", "step_size", "spikes", "findings"}
        for e in run["step_size"]:
            assert {"start", "stop", "verdict", "factor", "steps", "agree"} <= set(e)
            assert e["verdict"] in ("too_long", "ok", "too_short", "cannot_say") and e["start"] < e["stop"]
        for s in run["spikes"]:
            assert {"iteration", "rise", "cause", "evidence"} <= set(s) and isinstance(s["evidence"], dict)
        for f in run["findings"]:
            assert {"kind", "start", "stop", "text"} <= set(f)
    r = subprocess.run([sys.executable, "-m", "recorder.diagnose", str(events)], capture_output=True, text=True)
    assert r.returncode == 0 and "cause batch" in r.stdout and "#1 " in r.stdout


def _gda(*args):
    return subprocess.run([sys.executable, "-m", "gda_gl", *map(str, args)], capture_output=True, text=True)


@pytest.mark.gl
def test_gda_gl_diagnose_and_render_finding(events, tmp_path):
    """``gda-gl diagnose`` prints what the library reports; ``render --finding N`` draws the view that shows
    entry N (the numbering of the table), a number that is no finding is one line and exit status 2."""
    from gda_gl.compose.findings import findings_of
    from gda_gl.compose.state import ViewState
    from gda_gl.cli.diagnose import apply_finding
    from gda_gl.session.open import load_runs

    r = _gda("diagnose", "--json", events)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"runs": diagnose_paths([events])[0]}
    table = _gda("diagnose", events).stdout
    runs = load_runs([str(events)])
    try:
        found = findings_of([run.windows.recording for run in runs])
        spike = next(f for f in found if f.section == "spikes")
        assert f"#{spike.number} " in table and f"spike at {spike.entry['iteration']}:" in table
        st = ViewState()
        apply_finding(st, runs, spike.number)
        assert st.x_range[0] <= spike.entry["iteration"] - 1 and spike.entry["iteration"] + 1 <= st.x_range[1]
        assert st.selected == spike.entry["iteration"] and st.x_axis == "iteration"
    finally:
        for run in runs:
            run.windows.recording.close()
    png = tmp_path / "f.png"
    r = _gda("render", events, "--finding", spike.number, "-o", png, "--size", "640x360")
    assert r.returncode == 0 and png.stat().st_size > 1000, r.stderr
    r = _gda("render", events, "--finding", len(found) + 1, "-o", tmp_path / "g.png")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "findings" in r.stderr
    assert not (tmp_path / "g.png").exists()


def test_every_threshold_is_documented_in_the_readme():
    """Every threshold is a named constant of recorder/diagnose/thresholds.py, each in the README's table."""
    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Diagnose: what the lines say"):]
    names = [n for n in vars(T) if n.isupper() and not n.startswith("_")]
    assert len(names) > 20
    missing = [n for n in names if f"| `{n}` | " not in section]
    assert not missing, missing
