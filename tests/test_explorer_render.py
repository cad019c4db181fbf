"""Explorer drawing offscreen: details layout, overlays (box, help, glyph legend, owner lines), status, tick labels."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from conftest import parabola_phi, write_synthetic
from gda_gl.compose.scene import RunData
from gda_gl.compose.ticks import format_ticks, linear_ticks, log_ticks
from recorder import schema
from recorder.store import Iterations, Recording, RecordingWriter


# -- tick labels (item 9) ------------------------------------------------------------------
@pytest.mark.parametrize("lo,hi", [(0, 1.2e6), (0, 3.7e6), (230768.6, 230770.9), (0, 1), (0.2, 1.35), (0, 2e-4),
                                   (-5, 5), (999_000, 1_001_000), (0, 2.5e13)])
def test_tick_labels_of_an_axis_share_one_style(lo, hi):
    labels = format_ticks(linear_ticks(lo, hi, 6))
    assert labels and not any("e+" in s for s in labels)
    decimals = {len(s.split(".")[1]) if "." in s else 0 for s in labels if s not in ("0",)}
    assert len(decimals) == 1, labels                             # same number of decimals
    for s in labels:
        digits = s.split(".")[0].lstrip("-")
        if "e" not in s and len(digits.replace(",", "")) > 3:
            assert re.fullmatch(r"\d{1,3}(,\d{3})+", digits), labels  # thousands separators, always
    assert len(set(labels)) == len(labels)


def test_log_tick_labels_are_one_style():
    assert format_ticks(log_ticks(-5, 1, 6), log=True) == ["1e-5", "1e-4", "1e-3", "1e-2", "1e-1", "1e0", "1e1"]
    assert format_ticks(log_ticks(-1.2, 0.8, 6), log=True) == ["0.1", "0.2", "0.5", "1", "2", "5"]
    sub = format_ticks(log_ticks(np.log10(0.3), np.log10(0.9), 6), log=True)
    assert sub == ["0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]


# -- offscreen canvas ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def far_loose(tmp_path_factory):
    """60 steps; step 30's line search tried alpha = 5 (far beyond the grid's 2) before accepting 1."""
    p = tmp_path_factory.mktemp("far") / "far.gda"
    grid = np.linspace(0.0, 2.0, 16)
    phi = parabola_phi(60, grid)
    with RecordingWriter(p, grid, {"name": "far"}, overwrite=True) as w:
        for i in range(60):
            tr = {"alpha": [0.5, 5.0, 1.0], "loss": [float(phi[i, 4]), 2.4, float(phi[i, 7])]} if i == 30 else None
            w.append(i, phi[i], trials=tr, train_loss=float(phi[i, 0]), taken_alpha=1.0)
    return p


def _canvas(path, size=(800, 500)):
    from gda_gl.gl.backend import use_backend

    use_backend(offscreen=True)
    from gda_gl.explorer.canvas import ExplorerCanvas
    from gda_gl.explorer.controller import ExplorerController

    with Recording(path) as rec:
        run = RunData(rec.read(), name=path.stem)
    c = ExplorerController([run], size=size)
    return c, ExplorerCanvas(c, show=False)


def _settle(cv, n=20):
    for _ in range(n):
        img = cv.render()
        if not cv.controller.animating:
            return np.asarray(img)[..., :3].astype(np.int16)
        time.sleep(0.05)
    return np.asarray(cv.render())[..., :3].astype(np.int16)


@pytest.mark.gl
def test_far_loose_end_is_joined_to_its_step_and_the_legend_names_the_glyphs(far_loose):
    c, cv = _canvas(far_loose)
    try:
        c.set_x_range((28.0, 37.0), animate=False, y_range=(1.6, 4.2))
        img = _settle(cv)
        v, frame = c.drawn()
        owner = frame.merged("owner")  # the composition's owner lines, in the drawn frame
        p0, p1 = owner.p0 + frame.origin, owner.p1 + frame.origin
        assert len(p0) == 1
        assert p0[0][0] == pytest.approx(32.0) and p1[0] == pytest.approx((35.0, 2.4))  # end of arc -> trial
        # dotted orange pixels along the owner line
        (ax, ay), (bx, by) = v.data_to_px(*p0[0]), v.data_to_px(*p1[0])
        orange = np.all(np.abs(img - np.array([247, 186, 117])) < 50, axis=2)  # the loose-end orange at 60 %
        hits = 0
        for f in np.linspace(0.1, 0.9, 17):
            x, y = int(ax + f * (bx - ax)), int(ay + f * (by - ay))
            hits += orange[y - 2:y + 3, x - 2:x + 3].any()
        assert hits >= 6
        # the glyph legend (detail mode) names the glyphs with the words the help uses
        labels = [t[0] for t in cv.overlays.last_text.items]
        assert {"arc", "beyond the step", "loose end", "trial point of the line search", "owner line",
                "batch change"} <= set(labels)
        c.key("g")
        cv.render()
        assert not cv.overlays.last_text.items
    finally:
        cv.close()


@pytest.mark.gl
def test_box_zoom_draws_its_rectangle_and_help_is_an_overlay(tmp_path):
    p = write_synthetic(tmp_path / "b.gda", n=120, batch_every=20)
    c, cv = _canvas(p)
    try:
        base = _settle(cv)
        lay = c.layout
        p0, p1 = (lay.left + 100, 120), (lay.left + 400, 330)
        cv.events.mouse_press(pos=p0, button=1, modifiers=(_shift(),))
        cv.events.mouse_move(pos=(lay.left + 250, 200), button=1, modifiers=(_shift(),),
                             press_event=_press(cv, p0), last_event=None)
        cv.events.mouse_move(pos=p1, button=1, modifiers=(_shift(),), press_event=_press(cv, p0), last_event=None)
        img = np.asarray(cv.render())[..., :3].astype(np.int16)
        edge = img[p0[1], p0[0] + 5:p1[0] - 5]
        assert np.all(np.abs(edge - np.array([53, 96, 192])) < 70, axis=1).mean() > 0.5
        inside_changed = np.abs(img[p0[1] + 10:p1[1] - 10, p0[0] + 10:p1[0] - 10] - base[p0[1] + 10:p1[1] - 10,
                                                                                     p0[0] + 10:p1[0] - 10])
        assert inside_changed.mean() > 2  # the translucent fill
        x_expect = (c.drawn_view.px_to_data(*p0)[0], c.drawn_view.px_to_data(*p1)[0])
        cv.events.mouse_release(pos=p1, button=1, modifiers=(_shift(),))
        assert c.state.x_range == pytest.approx(x_expect)
        # help: a panel over the plot, no dialog; ? again or Esc closes it
        cv.events.key_press(key="?", text="?")
        assert c.show_help
        img = _settle(cv)
        texts = [t[0] for t in cv.overlays.last_text.items]
        assert "help (? or Esc to close)" in texts and any(t.startswith("loose end:") for t in texts)
        h, w = img.shape[:2]
        assert (np.abs(img[h // 2 - 40:h // 2 + 40, w // 2 - 200:w // 2 + 200] - 255).sum(axis=2) < 40).mean() > 0.6
        cv.events.key_press(key="Escape", text="")
        assert not c.show_help
    finally:
        cv.close()


def _shift():
    from vispy.util import keys

    return keys.SHIFT


def _press(cv, pos):
    from vispy.app.canvas import MouseEvent

    return MouseEvent("mouse_press", pos=pos, button=1, modifiers=(_shift(),))


@pytest.mark.gl
def test_status_line_follows_the_drawn_view_after_a_zoom(tmp_path):
    p = write_synthetic(tmp_path / "s.gda", n=200, batch_every=20)
    c, cv = _canvas(p)
    try:
        c.set_x_range((100.0, 140.0), animate=False)
        _settle(cv)
        lay = c.layout
        pos = (lay.left + 0.2 * lay.plot[2], c.size[1] / 2)
        cv.events.mouse_move(pos=pos, button=None, modifiers=())
        k_before = int(c.drawn_view.px_to_data(*pos)[0])
        assert f"step {k_before}" in cv.status
        cv.events.key_press(key="+", text="+")
        _settle(cv)
        k_after = int(c.drawn_view.px_to_data(*pos)[0])
        assert k_after != k_before and f"step {k_after}" in cv.status  # no mouse move needed
        c.state.update(highlight="batch>5")
        _settle(cv)
        assert "highlight batch>5:" in cv.status and "in view" in cv.status
        c.key("r")
        _settle(cv)
        assert re.match(r"frame \d+\.\d ms", [t for t in cv.overlays._readout_key if isinstance(t, str)][0])
    finally:
        cv.close()


# -- details panel layout (item 4) ---------------------------------------------------------
@pytest.mark.gl
@pytest.mark.parametrize("size", [(420, 320), (646, 186), (1246, 290), (900, 400)])
def test_details_text_never_overlaps_and_stays_inside(tmp_path_factory, size):
    from gda_gl.gl.detail import draw_detail
    from gda_gl.gl.export import Offscreen
    from gda_gl.gl.overlays import text_boxes
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.compose.layout import Layout

    p = tmp_path_factory.getbasetemp() / "detail.gda"
    if not p.exists():
        write_synthetic(p, n=40, batch_every=10)
    with Recording(p) as rec:
        run = RunData(rec.read(), name="detail")
    W, H = size
    target = Offscreen(W, H)
    try:
        with target:
            r = CurveRenderer()
            draw_detail(r, run, 20, Layout(W, H, left=56, right=18, bottom=44, top=26))
        img = target.read()[..., :3].astype(np.int16)
    finally:
        target.close()
    boxes = text_boxes(r.last_detail_text)
    texts = [t for t, _ in boxes]
    assert any(t.startswith("alpha") for t in texts) and any("loose ends" in t for t in texts)
    for i, (ta, a) in enumerate(boxes):
        assert a[0] >= 0 and a[1] >= 0 and a[2] <= W and a[3] <= H, (ta, a)
        for tb, b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (ta, tb)
    blue = np.all(np.abs(img - np.array([31, 120, 181])) < 40, axis=2).sum()
    assert blue > 100  # the curve itself is drawn


@pytest.mark.gl
def test_x_exports_the_view_as_png_and_the_visible_rows_as_csv(tmp_path):
    p = write_synthetic(tmp_path / "x.gda", n=80)
    c, cv = _canvas(p, size=(600, 400))
    try:
        c.set_x_range((10.0, 30.0), animate=False)
        _settle(cv)
        msg = cv.export(tmp_path)
        pngs, csvs = list(tmp_path.glob("gda_gl-view-*.png")), list(tmp_path.glob("gda_gl-view-*.csv"))
        assert len(pngs) == 1 and len(csvs) == 1 and "20 rows" in msg
        from PIL import Image

        assert Image.open(pngs[0]).size == (600, 400)
        rows = csvs[0].read_text().splitlines()
        assert len(rows) == 21 and rows[1].split(",")[1] == "10"
    finally:
        cv.close()


def test_details_view_is_a_frame_drawn_by_the_same_renderer(tmp_path):
    """compose_detail is compute only: it returns a View and a Frame (no GL), which draw_frame draws."""
    from gda_gl.compose.detail import compose_detail
    from gda_gl.compose.layout import Layout
    from gda_gl.compose.scene import Frame
    from gda_gl.compose.view import View

    grid = np.linspace(0, 2, 9)
    n = 5
    phi = (1.0 + 0.3 * (grid[None, :] - 0.8) ** 2 + 0.01 * np.arange(n)[:, None]).astype(np.float32)
    cols = {name: np.zeros(n, dt) if dt.kind != "f" else np.full(n, np.nan, dt)
            for name, dt in schema.ITER_DTYPES.items()}
    cols.update(iteration=np.arange(n), taken_alpha=np.ones(n), train_loss=phi[:, 0].astype(np.float32))
    tr_alpha = np.array([0.5, 1.6, 1.0])
    data = Iterations(grid, cols, phi, np.array([0, 0, 3, 3, 3, 3]),
                      {"alpha": tr_alpha, "loss": np.array([1.2, 1.5, 1.1]), "slope": np.full(3, np.nan),
                       "order": np.arange(3, dtype=np.int32)})
    run = RunData(data, name="r")
    view, frame, nums, lay = compose_detail(run, 1, Layout(700, 400, left=56, right=18, bottom=44, top=26))
    assert isinstance(view, View) and isinstance(frame, Frame) and frame.mode == "line-search"
    assert nums["iteration"] == 1 and nums["trial points"] == 3 and nums["loose ends"] == 1
    # the accepted alpha and alpha = 0 are the two rules, in the view's coordinates
    np.testing.assert_allclose(frame.merged("rules").rects[:, 0], [1.0 - view.x0, 0.0 - view.x0])
    # every trial point is a marker (the loose one a triangle), at its alpha and loss
    mk, shape = frame.merged("trials").xy, frame.merged("trials").shape
    for a, loss in zip(tr_alpha, [1.2, 1.5, 1.1]):
        hit = np.nonzero(np.isclose(mk[:, 0], a - view.x0) & np.isclose(mk[:, 1], loss - view.y0))[0]
        assert len(hit), (a, loss)
        assert (shape[hit] == 2.0).any() == (a > 1.0)
    # the trial order labels and the numbers are text items of the frame
    labels = [t[0] for t in frame.texts]
    assert {"1", "2", "3"} <= set(labels) and "accepted alpha" in labels  # the registry's label
    assert all(k in labels for k in nums)  # every number returned is written (those without a value are not)
