"""gda-gl compare of a sweep (issue 18.5-6): 30 runs stay readable, names that clash are told apart, the
hyperparameters stand beside the line-search statistics, and a statistic is drawn against one of them."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from conftest import run_cli
from gda_gl.compose.comparefig import grid_shape
from gda_gl.compose.compare import hyperparameters, unique_names, varying
from gda_gl.compose.style import run_color
from recorder.store import RecordingWriter

GRID = np.linspace(0.0, 2.0, 9)
RUNS = 30


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("sweep")
    n = 2000
    its = np.arange(n)
    for j in range(RUNS):
        lr = 0.01 * 1.25 ** j
        top = 2.0 * np.exp(-its * lr / 30.0) + 0.1 + 0.02 * j
        phi = (top[:, None] - lr * GRID[None, :] + 0.3 * GRID[None, :] ** 2).astype(np.float32)
        meta = {"name": "sgd", "optimizer": "SGD", "hyperparameters": {"lr": lr, "momentum": 0.9},
                "config": {"batch_size": 64 * (1 + j % 3)}}
        with RecordingWriter(d / f"sgd-{j:02d}.gda", GRID, meta, commit_interval=3600) as w:
            w.append_arrays({"iteration": its, "train_loss": phi[:, 0], "taken_alpha": np.ones(n),
                             "step_class": np.where(its % 7 < j % 7, 3, 1).astype(np.int8)}, phi)
    return sorted(d.glob("sgd-*.gda"))


def test_table_and_csv_name_runs_by_file_and_show_the_hyperparameters_that_differ(sweep, tmp_path):
    res = run_cli("compare", *sweep, "--csv", tmp_path / "s.csv")
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].startswith("same in every run:") and "momentum=0.9" in lines[0] and "optimizer=SGD" in lines[0]
    header = lines[1]
    assert "lr" in header.split() and "config.batch_size" in header and "momentum" not in header
    assert sum("sgd (sgd-17.gda)" in ln for ln in lines) == 1
    rows = list(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))
    assert len(rows) == RUNS and len({r["run"] for r in rows}) == RUNS
    assert float(rows[3]["lr"]) == pytest.approx(0.01 * 1.25 ** 3) and rows[4]["config.batch_size"] == "128"
    assert float(rows[5]["overshoot share"]) == pytest.approx(5 / 7, abs=1e-3)


@pytest.mark.gl
def test_thirty_runs_draw_as_a_readable_grid_each_cell_in_its_runs_colour(sweep, tmp_path):
    from PIL import Image

    res = run_cli("compare", *sweep, "--png", tmp_path / "g.png", "--size", "1500x900")
    assert res.returncode == 0, res.stderr
    img = np.asarray(Image.open(tmp_path / "g.png"))[..., :3].astype(np.int16)
    cols, rows = grid_shape(RUNS, 1500, 900)
    cw, ch = 1500 // cols, 900 // rows
    assert ch >= 100  # not 30 bands of 29 pixels
    for j in range(RUNS):
        r, c = divmod(j, cols)
        cell = img[r * ch + 16: (r + 1) * ch - 22, c * cw + 46: (c + 1) * cw - 6]
        color = (run_color(j)[:3] * 255).astype(np.int16)
        hits = (np.abs(cell - color).max(axis=2) < 30).sum()
        assert hits > 50, (j, hits)  # the run's curve, in its own colour, inside its own cell
    colors = {tuple(np.round(run_color(j)[:3], 3)) for j in range(100)}
    assert len(colors) == 100  # a sweep of 100 runs repeats no colour


@pytest.mark.gl
def test_scatter_puts_each_run_at_its_hyperparameter_and_statistic(sweep, tmp_path):
    from PIL import Image

    res = run_cli("compare", *sweep[:12], "--png", tmp_path / "s.png", "--scatter", "overshoot:lr", "--size",
                  "1000x700")
    assert res.returncode == 0, res.stderr
    img = np.asarray(Image.open(tmp_path / "s.png"))[..., :3].astype(np.int16)
    found = 0
    for j in range(12):
        color = (run_color(j)[:3] * 255).astype(np.int16)
        found += int((np.abs(img - color).max(axis=2) < 25).sum() >= 20)
    assert found == 12
    bad = run_cli("compare", *sweep[:3], "--png", tmp_path / "x.png", "--scatter", "overshoot:optimizer")
    assert bad.returncode == 2 and "not a number in every run" in bad.stderr and bad.stderr.count("\n") == 1
    bad = run_cli("compare", *sweep[:3], "--scatter", "overshoot:lr")
    assert bad.returncode == 2 and "--png" in bad.stderr


def test_helpers_on_their_own():
    assert unique_names(["a", "b", "a"], ["/x/1.gda", "/x/2.gda", "/y/3.gda"]) == ["a (1.gda)", "b", "a (3.gda)"]
    assert unique_names(["a", "a"], ["/x/r.gda", "/y/r.gda"]) == ["a (/x/r.gda)", "a (/y/r.gda)"]
    hp = hyperparameters({"optimizer": "Adam", "hyperparameters": {"lr": 1e-3, "betas": [0.9, 0.999], "foreach": None,
                                                                   "fused": False}, "config": {"K": 20, "obj": {}}}, 17)
    assert hp == {"optimizer": "Adam", "lr": 1e-3, "betas": "0.9,0.999", "probe K": 17, "config.K": 20}
    assert varying([{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 1}]) == (["b"], {"a": 1})


@pytest.mark.gl
def test_thirty_overlaid_runs_keep_legend_and_title_inside_the_canvas(sweep):
    """The window with 30 runs open: the legend ran off the bottom of the plot, the title off its right edge;
    then the legend covered the data (issue 29): now it sits right of the plot, never over it."""
    from gda_gl.session.open import load_runs
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.overlays import text_boxes
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.compose.layout import figure_layout
    from gda_gl.compose.state import ViewState

    runs = load_runs([str(p) for p in sweep])
    try:
        target = Offscreen(900, 420)
        with target:
            r = CurveRenderer()
            lay = figure_layout(900, 420, runs, ViewState())
            r.draw(runs, ViewState(), lay)
            boxes = text_boxes(r.last_text)
        target.close()
    finally:
        for run in runs:
            run.windows.recording.close()
    px, py, pw, ph = lay.plot
    top, bottom = 420 - (py + ph), 420 - py  # image rows of the plot's edges
    names = {run.name for run in runs}
    legend = [(t, b) for t, b in boxes if t in names or t.endswith("...") or t.endswith("more")]
    assert len(legend) == RUNS  # in two columns at this height
    for t, (left, up, right, down) in legend:
        assert px + pw < left and right <= 900 and top <= up and down <= bottom, t
    title = [(t, b) for t, b in boxes if b[1] < top]
    assert [t for t, _ in title] == ["30 runs"] and 0 <= title[0][1][0] and title[0][1][2] <= 900
