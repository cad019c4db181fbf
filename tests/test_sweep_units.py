"""Issue 29, the parts without GL: choosing runs (folders, --runs, --where), colouring runs by a
hyperparameter, labels that never overlap, the comparison's columns and its median, vector writers."""

from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from gda_gl.compose.compare import distinct_keys, format_table, median_efficiency, run_summary, summary_from_bucket, \
    table_columns, to_csv, varying
from gda_gl.compose.filters import parse_filter
from gda_gl.compose.labelplace import overlaps, place_labels
from gda_gl.compose.manyruns import arcs_fit, smooth_centered
from gda_gl.compose.runcolor import param_colors, param_scale
from gda_gl.session.select import FolderWatch, expand_paths, parse_where, select
from recorder.errors import RecordingError


# -- folders ------------------------------------------------------------------------------------------
def test_a_folder_means_every_gda_directly_in_it_sorted(tmp_path):
    for name in ("b.gda", "a.gda", "a.gda-wal", "notes.txt", "c.GDA"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.gda").write_bytes(b"x")
    (tmp_path / "e.gda").mkdir()  # a folder named like a recording is not one
    got = expand_paths([tmp_path, tmp_path / "b.gda"])
    assert got == [str(tmp_path / "a.gda"), str(tmp_path / "b.gda")]


def test_an_empty_folder_is_one_clear_error_unless_runs_may_appear_later(tmp_path):
    with pytest.raises(RecordingError, match="holds no recordings"):
        expand_paths([tmp_path])
    assert expand_paths([tmp_path], allow_empty=True) == []
    assert expand_paths(["missing.gda"]) == ["missing.gda"]  # files are checked by the reader


def test_folder_watch_reports_each_new_recording_once(tmp_path):
    (tmp_path / "a.gda").write_bytes(b"x")
    watch = FolderWatch([tmp_path], known=[tmp_path / "a.gda"])
    assert watch.poll() == []
    (tmp_path / "b.gda").write_bytes(b"x")
    (tmp_path / "b.gda-journal").write_bytes(b"x")
    assert watch.poll() == [str(tmp_path / "b.gda")]
    assert watch.poll() == []


# -- --runs and --where --------------------------------------------------------------------------------
LRS = [0.001, 0.01, 0.05, 0.1, 0.5, 1.0]


def _params():
    out = []
    for i, lr in enumerate(LRS):
        p = {"optimizer": "SGD" if i % 2 else "Adam", "lr": lr, "config.lr": lr, "config.batch_size": 32 * (1 + i % 3)}
        if i == 5:
            del p["config.batch_size"]  # one run never logged it
        out.append(p)
    return out


def test_where_selects_exactly_the_runs_whose_hyperparameters_satisfy_every_condition():
    names = [f"run{i}" for i in range(len(LRS))]
    paths = [f"/x/r{i}.gda" for i in range(len(LRS))]
    params = _params()
    for text, truth in [("config.lr<0.1", lambda p: p["config.lr"] < 0.1),
                        ("config.lr >= 0.05", lambda p: p["config.lr"] >= 0.05),
                        ("lr<=0.1, optimizer=SGD", lambda p: p["lr"] <= 0.1 and p["optimizer"] == "SGD"),
                        ("optimizer!=SGD", lambda p: p["optimizer"] != "SGD"),
                        ("config.batch_size>40", lambda p: p.get("config.batch_size", -1) > 40)]:
        want = [i for i, p in enumerate(params) if truth(p)]
        assert select(names, paths, params, where=text) == want, text
    assert select(names, paths, params, regex=r"run[24]") == [2, 4]
    assert select(names, paths, params, regex=r"^r3\.gda$") == [3]  # the file name counts too
    assert select(names, paths, params, regex="run", where="config.lr>0.5") == [5]


def test_where_never_evaluates_and_says_what_is_wrong():
    names, paths, params = ["a"], ["a.gda"], [{"config.lr": 0.1}]
    for text, msg in [("config.lr<abc", "not a number"), ("__import__('os')", "not a condition"),
                      ("config.nope<1", "no run has the hyperparameter 'config.nope'"),
                      ("config.lr<nan", "NaN"), ("config.lr>1", "no run of 1 matches")]:
        with pytest.raises(ValueError, match=msg.replace("(", r"\(").replace(")", r"\)")):
            select(names, paths, params, where=text)
    with pytest.raises(ValueError, match="not a regular expression"):
        select(names, paths, params, regex="(")
    assert [c.op for c in parse_where("a<1, b>=2,c=x")] == ["<", ">=", "="]


def test_the_highlight_filter_keeps_its_grammar():
    assert parse_filter("efficiency < 0.5") == ("cmp", ("efficiency", "<", 0.5))
    with pytest.raises(ValueError, match="unknown statistic"):
        parse_filter("nope<1")
    with pytest.raises(ValueError, match="not a number"):
        parse_filter("efficiency<x")


# -- colour by a hyperparameter ------------------------------------------------------------------------
def test_a_learning_rate_sweep_is_coloured_on_a_log_scale_labelled_in_its_units():
    lrs = list(np.logspace(-3, 0, 30))
    scale = param_scale("config.lr", lrs)
    assert scale.log and scale.lo == pytest.approx(1e-3) and scale.hi == pytest.approx(1.0)
    labels = [s for _, s in scale.labels()]
    assert labels == ["0.001", "0.01", "0.1", "1"]
    frac = scale.fraction(lrs)
    np.testing.assert_allclose(frac, np.linspace(0, 1, 30), atol=1e-9)  # equal steps per decade
    colors = param_colors(lrs, scale)
    assert len({tuple(np.round(c, 3)) for c in colors}) == 30  # every run its own colour
    narrow = param_scale("config.batch_size", [32, 64, 128])  # 0.6 decades: linear
    assert not narrow.log and narrow.fraction([64])[0] == pytest.approx(32 / 96)
    grey = param_colors([0.1, None, "x"], scale)
    assert np.allclose(grey[1], grey[2]) and not np.allclose(grey[0], grey[1])
    with pytest.raises(ValueError, match="no run holds a number"):
        param_scale("config.opt", ["SGD", "Adam"])


# -- labels ---------------------------------------------------------------------------------------------
def test_placed_labels_overlap_neither_each_other_nor_any_point_and_stay_inside():
    rng = np.random.default_rng(3)
    pts = [(float(x), float(y)) for x, y in rng.uniform(50, 450, (40, 2))]
    sizes = [(60.0, 12.0)] * len(pts)
    bounds = (40.0, 40.0, 460.0, 460.0)
    spots = place_labels(pts, sizes, bounds)
    boxes = []
    for (w, h), spot in zip(sizes, spots):
        if spot is None:
            continue
        x, y, anchor = spot
        x0 = {"l": x, "r": x - w, "m": x - w / 2}[anchor[0]]
        y0 = {"m": y - h / 2, "b": y, "t": y - h}[anchor[1]]
        boxes.append((x0, y0, x0 + w, y0 + h))
    assert 10 <= len(boxes) < len(pts)  # crowded: some left out, many placed
    for i, a in enumerate(boxes):
        assert bounds[0] <= a[0] and a[2] <= bounds[2] and bounds[1] <= a[1] and a[3] <= bounds[3]
        assert not any(overlaps(a, b) for b in boxes[i + 1:])
        assert not any(overlaps(a, (px - 4.5, py - 4.5, px + 4.5, py + 4.5)) for px, py in pts)


# -- the comparison ------------------------------------------------------------------------------------
def test_repeated_hyperparameters_are_shown_once_and_sgd_has_no_line_search_columns():
    params = [{"optimizer": "SGD", "lr": lr, "initial_lr": lr, "config.lr": lr, "momentum": 0.9} for lr in LRS]
    vary, same = varying(params)
    assert vary == ["config.lr"] and same["momentum"] == 0.9
    assert distinct_keys(params, ["lr", "initial_lr"]) == ["lr"]
    sgd = {"run": "s", "iterations": 3, "final loss": 1.0, "mean line-search evals": None,
           "loose ends / 100 it": None, "overshoot share": 0.1, "undershoot share": 0.2, "median efficiency": 0.5}
    cg = dict(sgd, run="c", **{"mean line-search evals": 3.0, "loose ends / 100 it": 2.0})
    assert "mean line-search evals" not in table_columns([sgd, sgd])
    assert "mean line-search evals" in table_columns([sgd, cg])
    text = format_table([sgd, cg])
    assert text.splitlines()[1].split()[3] == "-" and "mean line-search evals" in text.splitlines()[0]
    assert to_csv([sgd]).splitlines()[1].split(",")[3:5] == ["", ""]  # empty in CSV, not 0


def test_median_efficiency_is_the_median_of_the_rows_and_the_pyramid_row_equals_the_plain_row(tmp_path):
    from recorder.store import Recording, RecordingWriter
    from recorder.window import RunWindows

    n = 301
    rng = np.random.default_rng(5)
    eff = rng.uniform(0, 1, n)
    eff[7] = -2.72  # one outlier moves the mean, not the median
    eff[11] = np.nan
    grid = np.linspace(0, 2, 5)
    phi = (1.0 + 0.1 * rng.random((n, 5))).astype(np.float32)
    with RecordingWriter(tmp_path / "m.gda", grid, {"name": "m", "optimizer": "SGD"}) as w:
        w.append_arrays({"iteration": np.arange(n), "efficiency": eff, "taken_alpha": np.ones(n)}, phi)
    with Recording(tmp_path / "m.gda") as rec:
        win = RunWindows.from_recording(rec)
        truth = float(np.median(eff[np.isfinite(eff).astype(bool)].astype(np.float32)))
        assert median_efficiency(win) == pytest.approx(truth, rel=1e-6)
        fast, plain = summary_from_bucket("m", win.summary(), win), run_summary("m", rec.read())
    assert fast["median efficiency"] == pytest.approx(plain["median efficiency"], rel=1e-6)
    assert fast["mean line-search evals"] is None and plain["loose ends / 100 it"] is None


# -- many runs -----------------------------------------------------------------------------------------
def test_the_run_line_is_a_centred_weighted_average_and_arcs_need_their_pixels():
    rng = np.random.default_rng(0)
    v, w = rng.normal(size=50), rng.integers(0, 4, 50).astype(float)
    v[w == 0] = np.nan
    got = smooth_centered(v, w, 3)
    for i in range(50):
        lo, hi = max(0, i - 3), min(50, i + 4)
        ww, vv = w[lo:hi], np.nan_to_num(v[lo:hi])
        want = (ww * vv).sum() / ww.sum() if ww.sum() else math.nan
        assert (math.isnan(want) and math.isnan(got[i])) or got[i] == pytest.approx(want)
    assert arcs_fit(100, 600) and not arcs_fit(101, 600)


# -- vector writers ---------------------------------------------------------------------------------------
def test_svg_and_pdf_of_a_scene_open_in_parsers_with_the_drawn_text(tmp_path):
    from gda_gl.compose.textlayer import TextLayer
    from gda_gl.gl.vector import VectorScene
    from gda_gl.gl.vector_pdf import to_pdf
    from gda_gl.gl.vector_svg import to_svg

    s = VectorScene(400, 300)
    s.rects([[10, 10, 100, 50]], [1, 0, 0, 0.5])
    s.clip((20, 20, 300, 200))
    s.segments([[0, 0], [10, 10]], [[100, 100], [200, 50]], [[0, 0, 1, 1]] * 2, 1.5)
    s.markers([[50, 50]], [0, 1, 0, 1], [8], [2])
    s.clip(None)
    t = TextLayer(400, 300)
    t.add("loss (log)", 200, 290, "mt", 12)
    s.texts(t.items, 400, 300)
    root = ET.fromstring(to_svg(s))
    ns = "{http://www.w3.org/2000/svg}"
    assert root.tag == f"{ns}svg" and root.get("width") == "400"
    assert [e.text for e in root.iter(f"{ns}text")] == ["loss (log)"]
    path = root.find(f".//{ns}g/{ns}path")
    assert path.get("d").count("M") == 2 and path.get("stroke") == "#0000ff"
    rect = root.find(f"{ns}rect")
    assert (rect.get("x"), rect.get("y"), rect.get("height")) == ("10", "250", "40")  # y flipped: 300 - 50
    pypdf = pytest.importorskip("pypdf")
    p = tmp_path / "s.pdf"
    p.write_bytes(to_pdf(s))
    reader = pypdf.PdfReader(os.fspath(p))
    assert len(reader.pages) == 1 and [float(v) for v in reader.pages[0].mediabox] == [0, 0, 400, 300]
    assert "loss (log)" in reader.pages[0].extract_text()


def test_the_window_tooltip_over_many_runs_is_the_table_sorted_by_loss():
    pytest.importorskip("PyQt6")
    from gda_gl.explorer.app import _tooltip_text
    from gda_gl.explorer.runtable import table_text

    table = [(3, "lr=0.3", 0.4), (0, "lr=0.001", 2.3), (1, "lr=0.01", 1.9), (2, "lr=0.1", 0.9), (4, "lr=1", 1.1)]
    table.sort(key=lambda t: t[2])
    tip = _tooltip_text({"x": 153.7, "loss": 1.0, "table": table, "run_index": 2, "run": "lr=0.1", "line": True})
    lines = tip.splitlines()
    assert lines[0] == "runs at x 153.7, by loss:" and [ln.split()[-2] for ln in lines[1:]] == \
        ["lr=0.3", "lr=0.1", "lr=1", "lr=0.01", "lr=0.001"]
    assert lines[2].startswith(">")  # the hovered run
    assert _tooltip_text({"x": 1.0, "loss": 1.0, "table": table[:1]}) is None  # one run: the status line says it
    many = [(i, f"r{i}", float(i)) for i in range(30)]
    text = table_text(many, hovered=25)
    assert "> r25" in text and text.splitlines()[-1].strip() == "(18 more runs)" and len(text.splitlines()) == 13
