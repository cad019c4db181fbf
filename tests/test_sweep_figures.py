"""Issue 29 in pixels: a 30-run sweep reads at a glance (thin lines, each run's colour, a small coloured share,
the legend outside the data), arcs come back where each step has its pixels, runs coloured by a
hyperparameter get a colour bar in its units, folders / --runs / --where choose runs, and compare's
figures (PNG, SVG, PDF from one composition) have titles, an x label, a shared y option and scatter
ticks in the hyperparameter's units."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from conftest import run_cli
from gda_gl.bench.sweep import sweep_lrs, write_sweep
from gda_gl.compose.style import run_color

RUNS = 30
SIZE = (1200, 700)
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    d = tmp_path_factory.mktemp("lrsweep")
    write_sweep(d, runs=RUNS, steps=2000)
    return d


@pytest.fixture(scope="module")
def opened(sweep):
    from gda_gl.session.open import load_runs

    runs = load_runs(sorted(str(p) for p in sweep.glob("*.gda")))
    yield runs
    for r in runs:
        r.windows.recording.close()


def _draw(runs, state, size=SIZE):
    """(image rows top-down, layout, renderer) of the figure ``render`` draws."""
    from gda_gl.compose.layout import figure_layout
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.render import CurveRenderer

    target = Offscreen(*size)
    try:
        with target:
            r = CurveRenderer()
            lay = figure_layout(*size, runs, state)
            r.draw(runs, state, lay)
        return target.read()[..., :3].astype(np.int16), lay, r
    finally:
        target.close()


def _plot_pixels(img, lay):
    px, py, pw, ph = lay.plot
    h = img.shape[0]
    return img[h - py - ph + 1:h - py - 1, px + 1:px + pw - 1]


def _coloured(pixels) -> np.ndarray:
    """Pixels that are neither white nor grey (axes, grid, text): chroma above 40 of 255."""
    return (pixels.max(axis=2) - pixels.min(axis=2)) > 40


@pytest.mark.gl
def test_thirty_runs_zoomed_out_are_thin_lines_each_in_its_colour_and_the_legend_is_outside(opened):
    from gda_gl.compose.state import ViewState
    from gda_gl.gl.overlays import text_boxes

    img, lay, r = _draw(opened, ViewState())
    plot = _plot_pixels(img, lay)
    share = _coloured(plot).mean()
    assert share <= 0.12, share  # was most of the plot: 30 opaque envelopes
    assert r.last_frame.count("envelope") == 0 and r.last_frame.count("lines") > 0
    pix = plot[_coloured(plot)].reshape(-1, 3)
    colors = np.array([run_color(j)[:3] * 255 for j in range(RUNS)])
    dist = np.abs(pix[:, None, :] - colors[None, :, :]).max(axis=2)
    nearest = np.argmin(dist, axis=1)
    close = dist[np.arange(len(pix)), nearest] < 25
    counts = np.bincount(nearest[close], minlength=RUNS)
    assert counts.min() >= 40, counts  # every run is there, in its own colour
    px, py, pw, ph = lay.plot
    boxes = text_boxes(r.last_text)
    names = {run.name for run in opened}
    legend = [b for t, b in boxes if t in names]
    assert len(legend) == RUNS and all(left > px + pw for left, _, _, _ in legend)  # right of the data
    assert [t for t, b in boxes if b[1] < SIZE[1] - py - ph and b[0] < px + pw] == ["30 runs"]


@pytest.mark.gl
def test_arcs_return_where_each_step_has_its_pixels_and_for_the_focused_run(opened):
    from gda_gl.compose.manyruns import ARC_PX_PER_STEP
    from gda_gl.compose.scene import compose
    from gda_gl.compose.state import ViewState

    plot = (78, 58, 900, 600)
    steps_fit = int(900 / ARC_PX_PER_STEP)
    _, frame = compose(opened, ViewState(x_range=(500.0, 500.0 + steps_fit)), plot, SIZE)
    assert frame.count("lines") == 0 and set(np.unique(frame.merged("arcs").ids.run)) == set(range(RUNS))
    _, frame = compose(opened, ViewState(x_range=(500.0, 500.0 + 2 * steps_fit)), plot, SIZE)
    assert frame.count("arcs") == 0 and frame.count("lines") > 0
    focus = opened[7].name
    _, frame = compose(opened, ViewState(x_range=(500.0, 500.0 + 2 * steps_fit), focus=(focus,)), plot, SIZE)
    assert set(np.unique(frame.merged("arcs").ids.run)) == {7}  # its arcs: 300 rows fit 900 px at 2 per px
    assert 7 not in set(np.unique(frame.merged("lines").ids.run))


@pytest.mark.gl
def test_runs_coloured_by_the_learning_rate_on_a_log_colour_bar_in_its_units(opened):
    from gda_gl.compose.runcolor import param_colors, param_scale
    from gda_gl.compose.state import ViewState
    from gda_gl.gl.overlays import text_boxes

    img, lay, r = _draw(opened, ViewState(color_by="config.lr"))
    frame = r.last_frame
    assert frame.color_scale.log and "coloured by config.lr" in frame.title
    labels = [t for t, _ in text_boxes(r.last_text)]
    assert {"0.001", "0.01", "0.1", "1", "config.lr (log)"} <= set(labels)
    assert not {run.name for run in opened} & set(labels)  # the colour bar replaces the run legend
    want = param_colors(list(sweep_lrs(RUNS)), param_scale("config.lr", list(sweep_lrs(RUNS))))
    lines = frame.merged("lines")
    for j in (0, 15, 29):
        got = lines.color[lines.ids.run == j][0]
        np.testing.assert_allclose(got[:3], want[j][:3], atol=1e-6)
    px, py, pw, ph = lay.plot
    bar = img[SIZE[1] - py - ph + 2:SIZE[1] - py - 2, px + pw + 18:px + pw + 28]
    top, bottom = bar[0].mean(axis=0), bar[-1].mean(axis=0)  # image rows top-down: lr 1 on top
    assert top[1] > bottom[1] + 100 and bottom[2] > top[2]  # viridis: purple-blue at 0.001, yellow-green at 1


@pytest.mark.gl
def test_every_step_its_own_batch_draws_epoch_rules_and_one_row_of_epoch_labels(opened):
    from gda_gl.compose.scene import compose
    from gda_gl.compose.state import ViewState

    _, frame = compose(opened[:2], ViewState(), (78, 58, 1000, 600), SIZE)  # two runs: rows, rules on
    rules = np.unique(frame.merged("rules").rects[:, 0] + frame.origin[0])
    np.testing.assert_allclose(rules, np.arange(200, 2000, 200))  # epoch starts, not 2,000 batch changes
    marks = [(m[1], m[2]) for m in frame.epoch_marks]
    assert marks == [(e, 0) for e in range(1, 10)]  # both runs share epochs: one label each, one row


def test_folders_runs_and_where_choose_the_runs_every_command_draws(sweep, tmp_path):
    res = run_cli("info", sweep, "--where", "config.lr>=0.5")
    assert res.returncode == 0, res.stderr
    shown = [ln.split()[-1] for ln in res.stdout.splitlines() if ln.startswith("  run ")]
    assert shown == [f"lr={lr:.3g}" for lr in sweep_lrs(RUNS) if lr >= 0.5]
    res = run_cli("compare", sweep, "--runs", r"lr-0[0-4]\.gda$", "--csv", tmp_path / "t.csv")
    assert res.returncode == 0, res.stderr
    lines = (tmp_path / "t.csv").read_text().splitlines()
    assert len(lines) == 6 and "mean line-search evals" in lines[0] and lines[1].split(",")[3] == ""
    assert "mean line-search evals" not in res.stdout and "median efficiency" in res.stdout  # SGD: no search
    empty = tmp_path / "empty"
    empty.mkdir()
    res = run_cli("render", empty, "-o", tmp_path / "x.png")
    assert res.returncode == 2 and "holds no recordings" in res.stderr and len(res.stderr.splitlines()) == 1
    res = run_cli("render", sweep, "-o", tmp_path / "x.png", "--where", "config.lr<0.0001")
    assert res.returncode == 2 and "no run of 30 matches" in res.stderr


@pytest.mark.gl
def test_compare_writes_png_svg_and_pdf_of_one_composition(sweep, tmp_path):
    from PIL import Image

    out = {k: tmp_path / f"g.{k}" for k in ("png", "svg", "pdf")}
    res = run_cli("compare", sweep, "--png", out["png"], "--svg", out["svg"], "--pdf", out["pdf"], "--size",
                  "1500x900", "--shared-y", "--log")
    assert res.returncode == 0, res.stderr
    root = ET.parse(out["svg"]).getroot()
    texts = [e.text for e in root.iter(f"{SVG}text")]
    labels = [f"lr={lr:.3g}" for lr in sweep_lrs(RUNS)]
    assert set(labels) <= set(texts)  # cell labels whole, not "lr=0.00..."
    assert "iteration" in texts and "30 runs, loss (log), one y axis for all" in texts
    ticks = [t for t in texts if t in ("0.1", "0.2", "0.5", "1", "2")]
    assert len(ticks) == RUNS * len(set(ticks))  # shared y: every cell has the same y ticks
    pypdf = pytest.importorskip("pypdf")
    page = pypdf.PdfReader(os.fspath(out["pdf"])).pages[0]
    assert [float(v) for v in page.mediabox] == [0, 0, 1500, 900]
    text = page.extract_text()
    assert all(lab in text for lab in labels) and "one y axis for all" in text
    img = np.asarray(Image.open(out["png"]))[..., :3]
    assert img[:20].min() < 100 and np.median(img[:20]) == 255  # the title strip: dark text on white


@pytest.mark.gl
def test_svg_of_a_render_holds_the_texts_of_its_png(opened, sweep, tmp_path):
    from gda_gl.compose.state import ViewState

    _, _, r = _draw(opened, ViewState(log_y=True), size=(1600, 900))
    res = run_cli("render", sweep, "-o", tmp_path / "r.svg", "--log")
    assert res.returncode == 0, res.stderr
    svg = [e.text for e in ET.parse(tmp_path / "r.svg").getroot().iter(f"{SVG}text")]
    assert svg == [item[0] for item in r.last_text.items]


@pytest.mark.gl
def test_scatter_ticks_are_learning_rates_and_point_labels_never_overlap(sweep, tmp_path):
    res = run_cli("compare", sweep, "--svg", tmp_path / "s.svg", "--scatter", "final_loss:config.lr", "--size",
                  "1000x700")
    assert res.returncode == 0, res.stderr
    root = ET.parse(tmp_path / "s.svg").getroot()
    texts = [e for e in root.iter(f"{SVG}text")]
    words = [e.text for e in texts]
    assert {"0.001", "0.01", "0.1", "1"} <= set(words) and "-3" not in words
    assert "config.lr (log scale)" in words
    from gda_gl.compose.textlayer import TextLayer

    tl = TextLayer(1, 1)
    boxes = []
    for e in texts:
        if e.text and e.text.startswith("lr="):
            x, y, w = float(e.get("x")), float(e.get("y")), tl.text_width(e.text, 9)
            boxes.append((x, y - 9, x + w, y + 2))
    assert len(boxes) >= 10
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
