"""Issue 29: a folder given to the window or the notebook is watched; a run written into it after opening is
picked up (if it passes --runs / --where), drawn in a colour of its own, and the runs the filters exclude stay out."""

from __future__ import annotations

import numpy as np
import pytest

from gda_gl.bench.sweep import write_sweep


def _clock():
    t = {"now": 0.0}

    def clock():
        return t["now"]
    return t, clock


def test_the_window_picks_up_a_run_written_into_its_folder_after_opening(tmp_path):
    from recorder.store import Recording

    from gda_gl.compose.scene import RunData
    from gda_gl.compose.style import run_color
    from gda_gl.explorer.controller import ExplorerController
    from gda_gl.session.follow import WATCH_S, Follower
    from gda_gl.session.select import FolderWatch, expand_paths

    write_sweep(tmp_path, runs=3, steps=120)
    paths = expand_paths([tmp_path])
    recs = [Recording(p) for p in paths]
    runs = [RunData.from_recording(r, color=run_color(i)) for i, r in enumerate(recs)]
    t, clock = _clock()
    ctrl = ExplorerController(runs, size=(800, 500), clock=clock)
    follower = Follower(ctrl, recs, watch=FolderWatch([tmp_path], paths, where="config.lr<0.5"), clock=clock)
    try:
        assert follower.active and follower.poll() == 0
        write_sweep(tmp_path / "more", runs=5, steps=80, prefix="late")  # lrs 0.001 .. 1: four below 0.5
        for p in sorted((tmp_path / "more").glob("late-0[0-4].gda")):
            p.rename(tmp_path / p.name)
        t["now"] += 0.2
        assert follower.poll() == 0  # listed at most every WATCH_S
        t["now"] += WATCH_S
        assert follower.poll() == 4 * 80
        names = [r.name for r in ctrl.runs]
        assert len(names) == 7 and "late=1" not in names and names[3:] == [f"late={v:.3g}" for v in
                                                                            np.logspace(-3, 0, 5)[:4]]
        colors = {tuple(np.round(r.color, 4)) for r in ctrl.runs}
        assert len(colors) == 7  # each new run a colour of its own
        t["now"] += WATCH_S
        assert follower.poll() == 0  # each file once
    finally:
        follower.close()


@pytest.mark.gl
def test_the_notebook_picks_up_a_run_written_into_its_folder_after_opening(tmp_path):
    pytest.importorskip("jupyter_rfb")
    from gda_gl.notebook import ErrorLine, view
    from gda_gl.session.follow import WATCH_S

    write_sweep(tmp_path, runs=2, steps=100)
    v = view(str(tmp_path), size=(480, 300), runs=r"^lr")
    assert not isinstance(v, ErrorLine), v
    try:
        fb = v.frame
        fb.get_frame()
        assert len(v.controller.runs) == 2 and v.follower is not None
        write_sweep(tmp_path / "new", runs=2, steps=60, prefix="late")
        write_sweep(tmp_path / "new2", runs=1, steps=60, prefix="lr-x")
        (tmp_path / "new" / "late-00.gda").rename(tmp_path / "late-00.gda")  # --runs ^lr: left out
        (tmp_path / "new2" / "lr-x-00.gda").rename(tmp_path / "lr-x-00.gda")
        v.follower._next_watch -= WATCH_S  # the next poll lists the folder now
        assert fb.poll() == 60
        assert [r.name for r in v.controller.runs][-1] == "lr-x=0.001" and len(v.controller.runs) == 3
        img = fb.get_frame()
        assert img is not None and img.shape[:2] == (300, 480)
    finally:
        v.close()


@pytest.mark.gl
def test_notebook_filter_box_solo_smoothing_and_the_hover_table(tmp_path):
    pytest.importorskip("jupyter_rfb")
    import re

    from gda_gl.bench.sweep import sweep_lrs
    from gda_gl.notebook import ErrorLine, view

    write_sweep(tmp_path, runs=6, steps=300)
    v = view(str(tmp_path), size=(600, 360))
    assert not isinstance(v, ErrorLine), v
    try:
        fb, c, ctl = v.frame, v.controller, v.controls
        fb.handle_event({"type": "resize", "width": 600, "height": 360, "pwidth": 600, "pheight": 360, "ratio": 1})
        fb.get_frame()
        lrs = sweep_lrs(6)
        ctl.run_list.filter.value = "config.lr<0.05"  # --where grammar
        assert [r.visible for r in c.runs] == [bool(lr < 0.05) for lr in lrs]
        ctl.run_list.filter.value = r"lr=1$"  # else a regular expression
        assert [r.visible for r in c.runs] == [False] * 5 + [True]
        ctl.run_list.filter.value = ""
        assert all(r.visible for r in c.runs)
        ctl.run_list.solo(2)
        assert [r.visible for r in c.runs] == [i == 2 for i in range(6)]
        ctl.run_list.solo(2)
        assert all(r.visible for r in c.runs)
        ctl.smoothing.value = 0.937  # a continuous control, not a few steps
        assert c.state.smoothing == pytest.approx(0.937)
        assert "config.lr" in ctl.color.options
        ctl.smoothing.value = 0.0
        img = fb.get_frame()
        assert img is not None
        x, _ = c.view().data_to_px(150.0, 1.0)
        fb.handle_event({"type": "pointer_move", "x": x, "y": 180, "modifiers": (), "buttons": (), "button": 0})
        fb.get_frame()
        text = re.sub(r"<[^>]+>", "", ctl.run_list.table.value)
        rows = [ln.split() for ln in text.strip().splitlines() if ln.strip()]
        rows = [r[1:] if r[0] == ">" else r for r in rows]
        assert len(rows) == 6 and {r[0] for r in rows} == {run.name for run in c.runs}
        values = [float(r[1]) for r in rows]
        assert values == sorted(values)  # by the loss at the cursor's x
        for name, val in ((r[0], float(r[1])) for r in rows):
            run = next(run for run in c.runs if run.name == name)
            d = run.rows(120, 181)  # the drawn line: the training loss averaged over the columns around x
            truth = float(np.mean(d["train_loss"]))
            assert val == pytest.approx(truth, rel=0.08), name
    finally:
        v.close()


def test_a_click_on_a_run_line_draws_that_run_in_full(tmp_path):
    from recorder.store import Recording

    from gda_gl.compose.scene import RunData
    from gda_gl.compose.style import run_color
    from gda_gl.explorer.controller import ExplorerController
    from gda_gl.session.select import expand_paths

    write_sweep(tmp_path, runs=5, steps=600)
    recs = [Recording(p) for p in expand_paths([tmp_path])]
    try:
        runs = [RunData.from_recording(r, color=run_color(i)) for i, r in enumerate(recs)]
        c = ExplorerController(runs, size=(900, 500))
        view, frame = c.drawn()
        lines = frame.merged("lines")
        j = int(np.nonzero(lines.ids.run == 3)[0][len(lines) // 10])
        p = 0.5 * (lines.p0[j] + lines.p1[j]) + np.asarray(frame.origin)
        px, py = view.data_to_px(p[0], p[1])
        c.release((px, py), (px, py), box=False, dragged=False)
        assert c.state.focus == (runs[3].name,)
        _, frame = c.drawn()
        assert 3 in set(frame.merged("envelope").ids.run) and 3 not in set(frame.merged("lines").ids.run)
    finally:
        for r in recs:
            r.close()


PANEL_SCRIPT = r"""
import sys
from PyQt6 import QtWidgets
app = QtWidgets.QApplication([])
from recorder.store import Recording
from gda_gl.compose.scene import RunData
from gda_gl.compose.style import run_color
from gda_gl.explorer.controller import ExplorerController
from gda_gl.explorer.panel import ControlPanel
from gda_gl.session.select import expand_paths
recs = [Recording(p) for p in expand_paths([sys.argv[1]])]
c = ExplorerController([RunData.from_recording(r, color=run_color(i)) for i, r in enumerate(recs)], size=(800, 500))
said = []
panel = ControlPanel(c, said.append)
panel.run_filter.setText("config.lr<0.05")
panel.run_filter.editingFinished.emit()
print("where", [r.visible for r in c.runs])
panel.run_filter.setText(r"0\.1")
panel.run_filter.editingFinished.emit()
print("regex", [r.visible for r in c.runs])
panel.run_filter.setText("(")
panel.run_filter.editingFinished.emit()
print("bad", said[-1][:40])
panel.runs_list.setCurrentRow(1)
panel.solo_b.click()
print("solo", [r.visible for r in c.runs])
panel.solo_b.click()
print("all", [r.visible for r in c.runs])
"""


def test_the_window_panel_filters_runs_and_solos_one(tmp_path):
    import os
    import subprocess
    import sys

    pytest.importorskip("PyQt6")
    from gda_gl.bench.sweep import sweep_lrs

    write_sweep(tmp_path, runs=5, steps=60)
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run([sys.executable, "-c", PANEL_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    out = dict(ln.split(" ", 1) for ln in res.stdout.splitlines() if ln.split(" ", 1)[0] in
               ("where", "regex", "bad", "solo", "all"))
    lrs = sweep_lrs(5)
    assert out["where"] == str([bool(lr < 0.05) for lr in lrs])
    assert out["regex"] == str([f"lr={lr:.3g}".startswith("lr=0.1") for lr in lrs])  # a regular expression
    assert "not a regular expression" in out["bad"]
    assert out["solo"] == str([i == 1 for i in range(5)]) and out["all"] == str([True] * 5)


@pytest.mark.gl
def test_notebook_typed_y_limits_set_the_loss_axis(tmp_path):
    pytest.importorskip("jupyter_rfb")
    from gda_gl.notebook import ErrorLine, view

    write_sweep(tmp_path, runs=2, steps=100)
    v = view(str(tmp_path), size=(480, 300))
    assert not isinstance(v, ErrorLine), v
    try:
        ctl, c = v.controls, v.controller
        ctl.y_lo.value, ctl.y_hi.value = 0.5, 2.0
        ctl.y_apply.click()
        assert c.state.y_range == (0.5, 2.0)
        v.frame.get_frame()
        view_ = c.view()
        assert (view_.y0, view_.y1) == pytest.approx((0.5, 2.0))
        ctl.y_lo.value, ctl.y_hi.value = 3.0, 1.0
        ctl.y_apply.click()  # refused in one status line
        assert c.state.y_range == (0.5, 2.0) and "increasing" in v.frame.status
    finally:
        v.close()
