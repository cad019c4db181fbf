"""Two x spaces (issue 25.1): iterations and the chosen axis's units never stand in for each other.

Two runs with different batch sizes (32 and 96 samples per step on a 960-sample data set, the second
with line searches of 1-6 evaluations) put different steps at the same epoch, sample count, second or
forward pass.  The truth is computed here from the raw columns written (epoch e + steps into it / its
length, cumulative samples, cumulative forward passes, wall time since the first step), independent of
:mod:`gda_gl.compose.xaxis`; every feature that reads "what is in view" is checked against it on every
axis, at the compose and controller level (offscreen).  The named faults (a)-(f) of the issue each
have a test of their own that failed before the change.
"""

from __future__ import annotations

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT
from gda_gl.compose.comparefig import stacked_bands
from gda_gl.compose.scene import RunData, compose
from gda_gl.compose.state import ViewState
from gda_gl.explorer.controller import ExplorerController
from gda_gl.gl.comparefig import draw_runs
from recorder.store import Recording, RecordingWriter

GRID = np.linspace(0.0, 2.0, 9)
DATASET = 960
AXES = ("iteration", "epoch", "samples", "wall_time", "forward_passes")
#: (name, steps, batch size, loss offset, line searches?)
RUNS = (("b32", 300, 32, 0.0, False), ("b96", 120, 96, 1.0, True))
HIGHLIGHT = "batch>=5"


def _columns(n: int, bs: int, offset: float, searches: bool, seed: int) -> tuple[dict, np.ndarray]:
    its = np.arange(n)
    per_epoch = DATASET // bs
    rng = np.random.default_rng(seed)
    phi = (offset + 1.0 + 0.1 * np.cos(its / 20.0)[:, None] + 0.2 * (GRID[None, :] - 0.7) ** 2).astype(np.float32)
    cols = {"iteration": its, "epoch": (its // per_epoch).astype(np.int32),
            "batch": (its % per_epoch).astype(np.int32), "train_loss": phi[:, 0], "taken_alpha": np.ones(n),
            "ls_evals": rng.integers(1, 7, n).astype(np.int32) if searches else np.zeros(n, np.int32),
            "samples": np.full(n, bs, np.int64),
            "wall_time": 1.7e9 + np.cumsum(0.01 * bs / 32 + 0.004 * rng.random(n))}
    return cols, phi


#: steps of the line-search run with one loose end far beyond the grid, and that trial's alpha (x = k + alpha)
LOOSE = {10: 150.0, 50: 150.0}


def _far_loose_ends(n: int) -> tuple[np.ndarray, dict]:
    """One trial point each at the steps of :data:`LOOSE`, far right of the run's end (x = k + 150)."""
    count = np.zeros(n, np.int64)
    count[list(LOOSE)] = 1
    alpha = np.array(list(LOOSE.values()))
    return count, {"alpha": alpha, "loss": np.full(len(alpha), 1.5), "slope": np.full(len(alpha), np.nan)}


def truth_knots(cols: dict, axis: str) -> tuple[np.ndarray, np.ndarray]:
    """(u, v): the axis value at the start of every step and after the last, from the raw columns."""
    n = len(cols["iteration"])
    u = np.arange(n + 1, dtype=np.float64)
    if axis == "iteration":
        return u, u
    if axis == "epoch":
        per_epoch = np.bincount(cols["epoch"])[0]
        return u, u / per_epoch  # whole epochs of equal length: e + steps into it / its length
    if axis == "samples":
        return u, np.concatenate([[0.0], np.cumsum(cols["samples"])]).astype(np.float64)
    if axis == "forward_passes":
        return u, np.concatenate([[0.0], np.cumsum(np.maximum(1, cols["ls_evals"]))]).astype(np.float64)
    t = cols["wall_time"] - cols["wall_time"][0]  # step k spans from its own end to the next step's end
    return u, np.concatenate([t, [t[-1]]])


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("xspace")
    out = []
    for seed, (name, n, bs, offset, searches) in enumerate(RUNS):
        cols, phi = _columns(n, bs, offset, searches, seed)
        count, trials = _far_loose_ends(n) if searches else (None, None)
        with RecordingWriter(d / f"{name}.gda", GRID, {"name": name}, commit_interval=3600) as w:
            w.append_arrays(cols, phi, count, trials)
        out.append((d / f"{name}.gda", cols))
    return out


@pytest.fixture
def runs(two_runs):
    recs = [Recording(p) for p, _ in two_runs]
    yield [RunData.from_recording(rec, name=rec.name, color=(0.2 + 0.5 * i, 0.3, 0.6, 1.0))
           for i, rec in enumerate(recs)]
    for rec in recs:
        rec.close()


def _window(two_runs, axis: str) -> tuple[float, float]:
    """An x range on ``axis``: the middle of run b32 (steps 100..200) in its units."""
    u, v = truth_knots(two_runs[0][1], axis)
    return float(v[100]), float(v[200])


def _truth_iterations(cols: dict, axis: str, lo: float, hi: float) -> tuple[float, float]:
    u, v = truth_knots(cols, axis)
    return float(np.interp(lo, v, u)), float(np.interp(hi, v, u))


def _steps(cols: dict, axis: str, lo: float, hi: float) -> np.ndarray:
    """Steps [k, k+1) of a run overlapping [lo, hi] on ``axis`` (the truth)."""
    u0, u1 = _truth_iterations(cols, axis, lo, hi)
    k = cols["iteration"]
    return k[(k + 1 > u0) & (k < u1)]


def _ctrl(runs, axis: str, x_range=None) -> ExplorerController:
    c = ExplorerController(runs, ViewState(x_axis=axis), size=(1000, 600))
    c.set_x_axis(axis)
    if x_range is not None:
        c.set_x_range(x_range, animate=False)
    return c


# ----------------------------------------------------------------------------- the named faults

class _Recorder:
    """A renderer standing in for CurveRenderer: records what compare asks it to draw."""

    def __init__(self):
        self.calls = []

    def draw(self, runs, state, layout, title=None):
        self.calls.append((runs, state, layout))

    def draw_frame(self, view, frame, layout, title=None):
        self.calls.append((view, frame, layout))


def _compare_states(runs, axis):
    rec = _Recorder()
    draw_runs(runs, ViewState(x_axis=axis), (1000, 700), [r.name for r in runs], renderer=rec)
    return rec.calls


@pytest.mark.parametrize("axis", ["epoch", "samples", "wall_time", "forward_passes"])
def test_fault_a_compare_x_range_is_on_the_axis(runs, two_runs, axis):
    """(a) compare's shared x range is the runs' extent on the axis (it was their iterations: 0..300
    "epochs" for runs of 10 and 12 epochs)."""
    hi = max(truth_knots(cols, axis)[1][-1] for _, cols in two_runs)
    for _, state, _ in _compare_states(runs, axis):
        assert state.x_range[0] == pytest.approx(0.0, abs=1e-9)
        assert state.x_range[1] == pytest.approx(hi, rel=1e-6)


def test_fault_b_compare_marks_sit_where_render_puts_them(runs, two_runs):
    """(b) compare's figure on the epoch axis shows the marks ``render`` shows for the same run (loose-end
    triangles, rules), at the same x: the far loose ends of the line-search run (at iteration k + 150, past
    its 12 epochs) are off the plot, as in ``render`` (they were drawn out to "epoch 200")."""
    band_run, band_state, lay = _compare_states(runs, "epoch")[1]
    view_c, frame_c = compose(band_run, band_state, lay.plot, (lay.width, lay.height))
    view_r, frame_r = compose([runs[1]], ViewState(x_axis="epoch"), lay.plot, (lay.width, lay.height))

    def in_view(view, frame, kind):
        batch = frame.merged(kind)
        if batch is None:
            return np.empty(0)
        xs = np.sort((batch.xy[:, 0] if kind == "trials" else batch.rects[:, 0]) + frame.origin[0])
        return xs[(xs >= view.x0) & (xs <= view.x1)]

    for kind in ("trials", "rules"):
        np.testing.assert_allclose(in_view(view_c, frame_c, kind), in_view(view_r, frame_r, kind), err_msg=kind)
    # the loose ends are in the frame, where their iteration k + 150 lies on the epoch axis: past the run's end
    tri = frame_r.merged("trials").xy[:, 0] + frame_r.origin[0]
    per_epoch = DATASET // RUNS[1][2]
    np.testing.assert_allclose(np.sort(tri), sorted((k + a) / per_epoch for k, a in LOOSE.items()), rtol=1e-6)
    assert (tri > view_r.x1).all()


@pytest.mark.parametrize("axis", ["samples", "forward_passes"])
def test_fault_c_compare_draws_each_run_whole(runs, two_runs, axis):
    """(c) every run is drawn to its last step on samples and forward passes (one was cut short: the first
    steps only, or the CG panel at its iteration count of passes)."""
    for (run_list, state, lay), (_, cols) in zip(_compare_states(runs, axis), two_runs):
        view, frame = compose(run_list, state, lay.plot, (lay.width, lay.height))
        end = truth_knots(cols, axis)[1][-1]
        drawn = frame.merged("arcs") if frame.mode == "detail" else frame.merged("classic")
        xs = (drawn.p1[:, 0] if frame.mode == "detail" else drawn.rects[:, 2]) + frame.origin[0]
        assert xs.max() == pytest.approx(end, rel=0.02)
        assert view.x1 >= end


@pytest.mark.parametrize("axis", AXES)
def test_fault_d_csv_of_visible_rows_holds_each_runs_steps_in_view(runs, two_runs, tmp_path, axis):
    """(d) the CSV of visible rows holds, per run, exactly its steps inside the view (it held the rows of
    the view's range read as iterations: 1 row instead of 100 on the epoch axis)."""
    lo, hi = _window(two_runs, axis)
    c = _ctrl(runs, axis, (lo, hi))
    n = c.visible_rows_csv(tmp_path / "v.csv")
    with open(tmp_path / "v.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert n == len(rows)
    for run, (_, cols) in zip(runs, two_runs):
        got = sorted(int(r["iteration"]) for r in rows if r["run"] == run.name)
        assert got == _steps(cols, axis, lo, hi).tolist()


@pytest.mark.parametrize("axis", AXES)
def test_fault_e_highlight_count_in_view(runs, two_runs, axis):
    """(e) the highlight's count in view adds each run's matching steps in view (it said 1 instead of 100)."""
    lo, hi = _window(two_runs, axis)
    c = _ctrl(runs, axis, (lo, hi))
    c.state.update(highlight=HIGHLIGHT)
    total = in_view = 0
    for _, cols in two_runs:
        match = cols["iteration"][cols["batch"] >= 5]
        total += len(match)
        in_view += len(np.intersect1d(match, _steps(cols, axis, lo, hi)))
    assert c.match_summary() == f"highlight {HIGHLIGHT}: {total:,} steps ({in_view:,} in view)"


PANEL_SCRIPT = r"""
import sys
from PyQt6 import QtWidgets
app = QtWidgets.QApplication([])
from gda_gl.explorer.controller import ExplorerController
from gda_gl.explorer.panel import ControlPanel
from gda_gl.compose.scene import RunData
from gda_gl.compose.state import ViewState
from recorder.store import Recording
runs = [RunData.from_recording(Recording(p)) for p in sys.argv[2:]]
c = ExplorerController(runs, ViewState())
c.set_x_axis(sys.argv[1])
panel = ControlPanel(c, lambda m: None)
panel.update_ranges()
print("range", panel.it_lo.minimum(), panel.it_hi.maximum())
"""


@pytest.mark.parametrize("axis", ["epoch", "samples"])
def test_fault_f_iteration_spin_boxes_span_the_iterations(two_runs, axis):
    """(f) the window's iteration spin boxes reach every run's last step on any axis (they reached the axis's
    extent: 0..12 on the epoch axis)."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPATH=str(ROOT))
    res = subprocess.run([sys.executable, "-c", PANEL_SCRIPT, axis, *(str(p) for p, _ in two_runs)],
                         capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    last = max(len(cols["iteration"]) for _, cols in two_runs) - 1
    assert f"range 0 {last}" in res.stdout


# ----------------------------------------------------------------------------- the matrix

@pytest.mark.parametrize("axis", AXES)
def test_every_view_reading_feature_on_every_axis(runs, two_runs, tmp_path, axis):
    """Render (compose), compare, the view's iterations per run, CSV, highlight count, jump, spin-box range,
    epoch and iteration filters, hover and the series of the notebook's controls, against the truth."""
    lo, hi = _window(two_runs, axis)
    c = _ctrl(runs, axis, (lo, hi))
    view, frame = c.drawn()
    for i, (_, cols) in enumerate(two_runs):
        # the view carries each run's own iterations in view
        n = len(cols["iteration"])
        its = np.clip(view.iterations_of(i), 0, n)  # a run ending inside the view: iterations past its end
        assert its == pytest.approx(_truth_iterations(cols, axis, lo, hi), abs=1e-6 * n)
        # render: every arc of this run starts at its step's value on the axis
        arcs = frame.merged("arcs")
        mine = (arcs.ids.run == i) & (arcs.ids.a0 == 0)
        u, v = truth_knots(cols, axis)
        np.testing.assert_allclose(arcs.p0[mine, 0] + frame.origin[0], v[arcs.ids.first[mine]],
                                   rtol=1e-9, atol=1e-9 * v[-1])
    # compare: the shared range is the union of the runs' extents on the axis
    top = max(truth_knots(cols, axis)[1][-1] for _, cols in two_runs)
    assert all(s.x_range[1] == pytest.approx(top, rel=1e-6)
               for _, s, _ in stacked_bands(runs, ViewState(x_axis=axis), (800, 600)))
    # CSV and highlight count (faults d and e) on this axis
    n = c.visible_rows_csv(tmp_path / "m.csv")
    assert n == sum(len(_steps(cols, axis, lo, hi)) for _, cols in two_runs)
    c.state.update(highlight=HIGHLIGHT)
    assert c.match_summary().endswith(
        f"({sum(int(np.sum(cols['batch'][_steps(cols, axis, lo, hi)] >= 5)) for _, cols in two_runs):,} in view)")
    # jump: from the middle of the view's iterations to the next matching step of any run
    shown = c.iterations_shown()
    ref = 0.5 * (shown[0] + shown[1])
    every = np.unique(np.concatenate([cols["iteration"][cols["batch"] >= 5] for _, cols in two_runs]))
    assert c.jump_match(+1) == int(every[np.searchsorted(every, ref, side="right")])
    # spin-box range: iterations, whatever the axis
    assert tuple(c.full_iterations()) == (0.0, float(max(len(cols["iteration"]) for _, cols in two_runs)))
    # iteration filter: steps 40..60 of every run, each through its own map, together
    c.set_iteration_range(40, 60)
    want = [truth_knots(cols, axis)[1][[40, 60]] for _, cols in two_runs]
    assert c.state.x_range == pytest.approx((min(w[0] for w in want), max(w[1] for w in want)), rel=1e-6)
    # epoch filter: epochs 2..3 of every run (different steps per run), together
    c.set_epoch_range(2, 3)
    want = []
    for _, cols in two_runs:
        sel = cols["iteration"][(cols["epoch"] >= 2) & (cols["epoch"] <= 3)]
        want.append(truth_knots(cols, axis)[1][[sel.min(), sel.max() + 1]])
    assert c.state.x_range == pytest.approx((min(w[0] for w in want), max(w[1] for w in want)), rel=1e-6)


@pytest.mark.parametrize("axis", AXES)
def test_hover_names_the_step_under_the_cursor_on_every_axis(runs, two_runs, axis):
    """Hovering the start of a step of the second run names that step (the arcs of the two runs lie apart:
    the second run's losses are one higher)."""
    _, cols = two_runs[1]
    u, v = truth_knots(cols, axis)
    k = 70
    width = v[k + 20] - v[k - 20]
    c = _ctrl(runs, axis, (v[k] - 0.5 * width, v[k] + 0.5 * width))
    view, frame = c.drawn()
    loss0 = 1.0 + 1.0 + 0.1 * math.cos(k / 20.0) + 0.2 * 0.7 ** 2  # phi_k(0) of the second run
    px, py = view.data_to_px(float(v[k] + 0.2 * (v[k + 1] - v[k])), loss0)
    info = c.hover(px, py)
    assert info is not None and info.get("run_index") == 1 and info.get("iteration") == k
