"""The smaller explorer items of issue 17.7 that need no window (the window ones are in test_explorer_window.py).

- at maximum zoom each further wheel-up drifted the point under the cursor;
- Esc closed the help but the status kept "help: press ? or Esc to close";
- the side panel said "nan" where the details table says "n/a";
- the exported PNG included the frame-time readout;
- the CSV's step_class was a bare integer without its name.
"""

from __future__ import annotations

import csv
import math
import time

import numpy as np
import pytest

from conftest import write_synthetic
from gda_gl.explorer.controller import ExplorerController
from gda_gl.explorer.navigation import MIN_WIDTH
from gda_gl.compose.scene import RunData
from recorder.store import Recording


def _controller(path, size=(800, 500)):
    with Recording(path) as rec:
        run = RunData(rec.read(), name=path.stem)
    return ExplorerController([run], size=size)


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("small") / "s.gda", n=120)


def test_wheel_at_maximum_zoom_keeps_the_point_under_the_cursor(rec):
    c = _controller(rec)
    lay = c.layout
    px = lay.left + 0.3 * lay.plot[2]

    def under_cursor():
        x0, x1 = c.state.x_range
        return x0 + (px - lay.left) / lay.plot[2] * (x1 - x0)

    c.zoom_at(px, 200, 1.0, animate=False)
    anchor = under_cursor()
    for _ in range(60):  # far past the narrowest view
        c.zoom_at(px, 200, 1.25, animate=False)
        assert under_cursor() == pytest.approx(anchor, abs=1e-9)
    x0, x1 = c.state.x_range
    assert x1 - x0 == pytest.approx(MIN_WIDTH)


def test_escape_clears_the_help_message(rec):
    c = _controller(rec)
    assert "Esc" in c.key("?")
    assert c.key("Escape") == "" and not c.show_help  # "" clears the status message
    assert "Esc" in c.key("?")
    assert c.key("?") == "" and not c.show_help


def test_side_panel_says_n_a_like_the_details_table():
    from gda_gl.explorer.panel import format_details

    text = format_details({"native step": math.nan, "efficiency": 0.5, "class": "overshoot", "run": "a"})
    assert "native step: <b>n/a</b>" in text and "nan" not in text
    assert "efficiency: <b>0.5</b>" in text and "class: <b>overshoot</b>" in text


def test_csv_names_the_step_class_and_status(rec, tmp_path):
    from recorder import stats

    c = _controller(rec)
    c.set_x_range((10.0, 40.0), animate=False)
    out = tmp_path / "rows.csv"
    n = c.visible_rows_csv(out)
    rows = list(csv.DictReader(out.open()))
    assert n == len(rows) == 30
    for r in rows:
        assert r["step_class_name"] == stats.CLASS_NAMES[int(r["step_class"])]
        assert r["status_name"] == stats.STATUS_NAMES[int(r["status"])]
    assert {r["step_class_name"] for r in rows} - {""}


@pytest.mark.gl
def test_exported_png_has_no_frame_time_readout(rec, tmp_path):
    from PIL import Image

    from gda_gl.gl.backend import use_backend

    use_backend(offscreen=True)
    from gda_gl.explorer.canvas import ExplorerCanvas

    c = _controller(rec, size=(600, 400))
    cv = ExplorerCanvas(c, show=False)
    try:
        c.set_x_range((10.0, 30.0), animate=False)
        for _ in range(3):
            cv.render()
        c.show_readout = False
        plain = cv.render()[..., :3]
        c.show_readout = True
        with_readout = cv.render()[..., :3]
        assert np.any(plain != with_readout)          # the readout is on screen ...
        (tmp_path / "x").mkdir()
        msg = cv.export(tmp_path / "x")
        png = next((tmp_path / "x").glob("*.png"))
        got = np.asarray(Image.open(png).convert("RGB"))
        assert "exported" in msg and np.array_equal(got, plain)  # ... but not in the export
        assert c.show_readout                           # and stays on screen afterwards
    finally:
        cv.close()
        time.sleep(0)
