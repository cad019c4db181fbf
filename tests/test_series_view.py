"""Logged series drawn beside phi (issue 18.3): on the curve's axes, in panels, through real GL pixels."""

from __future__ import annotations

import numpy as np
import pytest

from gda_gl.compose import seriesview
from gda_gl.compose.layout import figure_layout
from gda_gl.compose.scene import RunData
from gda_gl.compose.state import ViewState
from recorder.store import Recording, RecordingWriter

GRID = np.linspace(0.0, 2.0, 9)
N = 200_000
SPIKE_AT, SPIKE = 123_000, 30.0


@pytest.fixture(scope="module")
def long_run(tmp_path_factory):
    """A 200,000-iteration run with a validation loss every 1,000 iterations (one spike) and a dense
    'accuracy' series logged at every iteration (one dip)."""
    p = tmp_path_factory.mktemp("series") / "long.gda"
    its = np.arange(N)
    top = 2.0 * np.exp(-its / 80_000.0) + 0.1
    phi = (top[:, None] - 0.05 * GRID[None, :] + 0.03 * GRID[None, :] ** 2).astype(np.float32)
    w = RecordingWriter(p, GRID, {"name": "long"}, commit_interval=3600)
    w.append_arrays({"iteration": its, "train_loss": phi[:, 0], "taken_alpha": np.ones(N),
                     "lr": 0.1 * np.cos(its / 40_000.0) ** 2}, phi)
    for i in range(0, N, 1000):
        w.series.log("val_loss", SPIKE if i == SPIKE_AT else float(top[i] + 0.2), int(i))
    acc = 0.5 + 0.4 * (1 - np.exp(-its / 50_000.0))
    acc[77_777] = -1.0
    for i in range(N):
        w.series.log("accuracy", float(acc[i]), int(i))
    w.close()
    return p


def _image(runs, state, size=(900, 600)):
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.render import CurveRenderer

    target = Offscreen(*size)
    with target:
        r = CurveRenderer()
        lay = figure_layout(*size, runs, state)
        frame = r.draw(runs, state, lay)
        view = r.last_view
    img = target.read()
    target.close()
    return img[..., :3].astype(np.int16), frame, view, lay


def test_plan_puts_loss_like_series_on_the_curve_and_others_in_panels(long_run):
    with Recording(long_run) as rec:
        run = RunData.from_recording(rec)
        assert seriesview.plan([run], ViewState()) == (["val_loss"], [])
        assert seriesview.plan([run], ViewState(series=("accuracy", "val_loss", "lr", "nope"))) == \
            (["val_loss"], ["accuracy", "lr"])


@pytest.mark.gl
def test_the_validation_spike_is_visible_in_the_whole_run(long_run):
    with Recording(long_run) as rec:
        run = RunData.from_recording(rec)
        img, frame, view, lay = _image([run], ViewState())
    assert frame.mode == "overview" and frame.count("series") > 100
    assert view.y1 > SPIKE  # the y range makes room for the series
    color = (seriesview.series_color(run.color, True)[:3] * 255).astype(np.int16)
    x, y = view.data_to_px(SPIKE_AT, SPIKE)
    patch = img[int(y) - 4:int(y) + 5, int(x) - 4:int(x) + 5]
    assert (np.abs(patch - color).max(axis=2) < 40).any(), "the spike's point is drawn in the series colour"
    assert any(name == "long: val_loss" for name, _ in frame.legend)


@pytest.mark.gl
def test_a_panel_keeps_a_one_point_dip_of_a_dense_series_at_every_zoom(long_run):
    dip_it, dip = 77_777, -1.0
    with Recording(long_run) as rec:
        run = RunData.from_recording(rec)
        for x_range in (None, (70_000.0, 90_000.0), (77_700.0, 77_850.0)):
            state = ViewState(series=("accuracy",), x_range=x_range)
            img, frame, view, lay = _image([run], state)
            (panel,) = lay.panel_layouts()
            assert lay.plot[1] >= panel.origin[1] + panel.height  # the curve sits above the panel
            windows = seriesview.read_windows([run], ["accuracy"], view.x0, view.x1, panel.plot[2])
            pview, pframe = seriesview.panel_frame(windows, "accuracy", (view.x0, view.x1), False, panel.plot,
                                                   (panel.width, panel.height))
            assert pview.y0 <= dip <= pview.y1 and pview.x_range == view.x_range
            # a drawn pixel of the run's blue (line or light band) at the dip, in the canvas image
            x, y = pview.data_to_px(dip_it + 0.5, dip)
            gy = panel.origin[1] + (panel.height - y)          # GL row of the dip
            row = img.shape[0] - 1 - int(round(gy))
            patch = img[row - 3:row + 4, int(x) - 3:int(x) + 4]
            assert ((patch[..., 2] - patch[..., 0]) > 30).any(), x_range


def test_the_controller_toggles_series_and_the_layout_follows(long_run):
    from gda_gl.explorer.controller import ExplorerController

    with Recording(long_run) as rec:
        c = ExplorerController([RunData.from_recording(rec)], ViewState(), size=(1000, 700))
        names, shown = c.series_shown()
        assert names == ["train_loss", "lr", "grad_norm", "val_loss", "accuracy"] and shown == ["val_loss"]
        full = c.layout.plot
        c.show_series("accuracy", True)
        assert c.state.series == ("val_loss", "accuracy") and c.layout.panels == ("accuracy",)
        assert c.layout.plot[3] < full[3]  # the curve made room for the panel
        assert c.toggle_series_log("accuracy") and c.state.series_log == ("accuracy",)
        c.show_series("val_loss", False)
        assert c.series_shown()[1] == ["accuracy"]


PANEL_SCRIPT = r"""
import sys
from PyQt6 import QtCore, QtWidgets
app = QtWidgets.QApplication([])
from gda_gl.explorer.controller import ExplorerController
from gda_gl.explorer.serieslist import SeriesList
from gda_gl.compose.scene import RunData
from gda_gl.compose.state import ViewState
from recorder.store import Recording
rec = Recording(sys.argv[1])
c = ExplorerController([RunData.from_recording(rec)], ViewState())
sl = SeriesList(c)
items = {sl.widget.item(i).text(): sl.widget.item(i) for i in range(sl.widget.count())}
on = QtCore.Qt.CheckState.Checked
print("items", sorted(items), "checked", [t for t, it in items.items() if it.checkState() == on])
items["accuracy"].setCheckState(QtCore.Qt.CheckState.Checked)
print("series", c.state.series, "panels", c.layout.panels)
sl.widget.itemDoubleClicked.emit(items["accuracy"])
sl.fill()
print("log", c.state.series_log, [sl.widget.item(i).text() for i in range(sl.widget.count())][-1])
"""


def test_the_panels_series_list_edits_the_state(long_run):
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run([sys.executable, "-c", PANEL_SCRIPT, str(long_run)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    out = res.stdout
    assert "checked ['val_loss']" in out
    assert "series ('val_loss', 'accuracy') panels ('accuracy',)" in out
    assert "log ('accuracy',) accuracy  (log)" in out


def test_hover_and_csv_include_the_series_drawn(long_run, tmp_path):
    """The hover readout names the value of each series line drawn at the cursor's x; the CSV of the
    visible rows carries each drawn logged series at the iterations it was logged at."""
    import csv

    from gda_gl.explorer.controller import ExplorerController
    from gda_gl.explorer.picking import hover_text

    with Recording(long_run) as rec:
        c = ExplorerController([RunData.from_recording(rec)], ViewState(), size=(1000, 700))
        c.set_x_range((4000.0, 6000.0), animate=False)
        v = c.view()
        px, py = v.data_to_px(4500.0, 0.5 * (v.y0 + v.y1))
        info = c.hover(px, py)
        expect = np.interp(4500.0, [4000.0, 5000.0], [float(2.0 * np.exp(-4000 / 80_000.0) + 0.3),
                                                      float(2.0 * np.exp(-5000 / 80_000.0) + 0.3)])
        assert info["series"]["long: val_loss"] == pytest.approx(expect, rel=2e-3)
        assert f"long: val_loss {expect:.6g}" in hover_text(info)
        c.set_x_range((4990.0, 5010.0), animate=False)
        c.show_series("accuracy", True)
        n = c.visible_rows_csv(tmp_path / "v.csv")
        rows = list(csv.DictReader(open(tmp_path / "v.csv")))
    assert n == len(rows) and {"val_loss", "accuracy"} <= set(rows[0])
    by_it = {int(r["iteration"]): r for r in rows}
    assert by_it[5000]["val_loss"] != "" and by_it[5001]["val_loss"] == ""
    assert float(by_it[5003]["accuracy"]) == pytest.approx(0.5 + 0.4 * (1 - np.exp(-5003 / 50_000.0)))


AXIS_SCRIPT = r"""
import sys
from PyQt6 import QtWidgets
app = QtWidgets.QApplication([])
from gda_gl.explorer.axischoice import AxisChoice
from gda_gl.explorer.controller import ExplorerController
from gda_gl.compose.scene import RunData
from gda_gl.compose.state import ViewState
from recorder.store import Recording
rec = Recording(sys.argv[1])
c = ExplorerController([RunData.from_recording(rec)], ViewState())
ax = AxisChoice(c, print)
print("disabled", sorted(ax.disabled()), [v for v in ax.disabled().values()][0][:40])
ax.widget.setCurrentIndex(ax.axes.index("forward_passes"))
print("axis", c.state.x_axis, c.state.x_range)
"""


def test_the_x_axis_choice_greys_out_what_a_run_cannot_provide(long_run):
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen")
    res = subprocess.run([sys.executable, "-c", AXIS_SCRIPT, str(long_run)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "disabled ['samples', 'wall_time'] long " in res.stdout  # no wall time, no samples: greyed, with why
    assert f"axis forward_passes (0.0, {float(N)})" in res.stdout  # no line searches: one pass per step


@pytest.mark.gl
def test_logged_points_are_not_drawn_as_trial_points(tmp_path):
    """Issue 28: logged val_loss points were the same dark disc the legend calls a line-search trial point."""
    p = tmp_path / "few.gda"
    with RecordingWriter(p, GRID, {"name": "few"}) as w:
        for i in range(40):
            w.append(i, (1.0 + 0.1 * GRID).astype(np.float32), train_loss=1.0, taken_alpha=1.0,
                     trials={"alpha": [0.5], "loss": [1.05]} if i % 4 == 0 else None, ls_evals=1)
        for i in range(0, 40, 5):
            w.series.log("val_loss", 1.1, i)
    with Recording(p) as rec:
        run = RunData.from_recording(rec)
        _, frame, _, _ = _image([run], ViewState(series=("val_loss",)))
    marks, trials = frame.merged("series_marks"), frame.merged("trials")
    assert len(marks.xy) == 8 and len(trials.xy) > 0
    assert not set(np.unique(marks.shape)) & set(np.unique(trials.shape)), (marks.shape, trials.shape)
