"""Explorer controller with a fake clock: animations that land, flight paths, drawn-view mapping, picking,
bounds, follow.

Frames are simulated the way the canvas draws them: a frame asks for
``display_state()`` at its start, takes its time, and the canvas redraws while
``animating`` is true.  A fake clock makes every frame take longer than the
whole animation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import write_synthetic
from gda_gl.explorer.animation import ANIMATION_S, interpolate_view
from gda_gl.explorer.controller import ZOOM_OUT_LIMIT, ExplorerController
from gda_gl.session.follow import Follower
from gda_gl.compose.scene import RUN_COLORS, RunData
from gda_gl.compose.state import ViewState
from gda_gl.compose.view import View
from recorder.store import Recording


class FakeClock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def _run(path, name, color=0):
    with Recording(path) as rec:
        return RunData(rec.read(), name=name, color=RUN_COLORS[color])


@pytest.fixture(scope="module")
def recs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ctrl")
    return (write_synthetic(d / "a.gda", n=300, batch_every=20),
            write_synthetic(d / "b.gda", n=200, curvature=3.0))


def _ctrl(recs, two=False, size=(800, 500)):
    runs = [_run(recs[0], "a")] + ([_run(recs[1], "b", 1)] if two else [])
    clock = FakeClock()
    return ExplorerController(runs, size=size, clock=clock), clock


def _draw(c, clock, frame_s, max_frames=50):
    """Simulate the canvas: draw (hand out the display state, record the View), let the frame take
    ``frame_s``, redraw while animating.  Returns the x ranges drawn."""
    drawn = []
    for _ in range(max_frames):
        st = c.display_state()
        lay = c.layout
        c.drawn_view = View(st.x_range[0], st.x_range[1], 0.0, 3.0, False, lay.plot, (lay.width, lay.height))
        drawn.append(st.x_range)
        clock.t += frame_s
        if not c.animating:
            break
    return drawn


def test_slow_frames_always_end_on_the_target_100_random_zooms(recs):
    c, clock = _ctrl(recs)
    redraws = []
    c.on_redraw(lambda: redraws.append(1))
    rng = np.random.default_rng(0)
    lay = c.layout
    misses = 0
    for i in range(100):
        op = rng.integers(0, 6)
        px = lay.left + rng.uniform(0, lay.plot[2])
        if op == 0:
            c.zoom_at(px, 200, float(1.25 ** rng.integers(-4, 5)))
        elif op == 1:
            c.key("+" if rng.random() < 0.6 else "-")
        elif op == 2:
            c.key("Home")
        elif op == 3:
            c.zoom_to_iteration(int(rng.integers(0, 300)))
        elif op == 4:
            c.box_zoom((px, 100), (px + rng.uniform(5, 300), 300))
        else:
            c.pan(rng.uniform(-300, 300))
        drawn = _draw(c, clock, frame_s=2 * ANIMATION_S)  # every frame takes twice the animation
        misses += drawn[-1] != c.state.x_range
    assert misses == 0
    # Home twice: the second press asks for a redraw although the state does not change
    c.zoom_to_iteration(150)
    _draw(c, clock, 2 * ANIMATION_S)
    c.key("Home")
    _draw(c, clock, 2 * ANIMATION_S)
    n = len(redraws)
    c.key("Home")
    assert len(redraws) > n and c.drawn_view.x_range == c.full_x_range()


def test_a_frame_longer_than_the_animation_still_shows_the_target(recs):
    c, clock = _ctrl(recs)
    c.key("+")
    st = c.display_state()          # the frame starts: an in-between (here: the start) view
    assert st.x_range != c.state.x_range
    clock.t += 2 * ANIMATION_S      # ... and takes longer than the whole animation
    assert c.animating              # so one more frame is owed
    assert c.display_state().x_range == c.state.x_range
    assert not c.animating


def test_double_click_flight_keeps_the_step_in_every_frame(recs):
    c, clock = _ctrl(recs)
    rng = np.random.default_rng(3)
    for k in [3, 290, 297, 150, *rng.integers(0, 300, 12)]:
        c.key("Home")
        _draw(c, clock, 1.0)
        k = int(k)
        c.zoom_to_iteration(k)
        target = c.state.x_range
        frames = []
        while True:
            x = c.display_state().x_range
            frames.append(x)
            if not c.animating:
                break
            clock.t += ANIMATION_S / 40
        assert frames[-1] == target and len(frames) > 20
        for x0, x1 in frames:
            assert x0 <= k + 0.5 <= x1, (k, x0, x1)
        widths = [b - a for a, b in frames]
        assert all(w2 <= w1 * (1 + 1e-12) for w1, w2 in zip(widths, widths[1:]))


def test_flight_to_an_off_screen_target_zooms_out_and_lands():
    a, b = (0.0, 10.0), (1000.0, 1010.0)  # same width, far apart: van Wijk and Nuij zoom out on the way
    path = [interpolate_view(a, b, e) for e in np.linspace(0, 1, 101)]
    assert path[0] == a and path[-1] == b
    widths = np.array([p[1] - p[0] for p in path])
    assert widths.max() > 50 and np.all(widths > 0)
    centres = np.array([0.5 * (p[0] + p[1]) for p in path])
    assert np.all(np.diff(centres) >= -1e-9)  # no going back
    # a wheel zoom keeps the anchor at its screen fraction
    for e in np.linspace(0, 1, 11):
        x0, x1 = interpolate_view((0.0, 100.0), (30.0, 40.0), e, anchor=35.0)
        assert (35.0 - x0) / (x1 - x0) == pytest.approx(0.35 + (0.5 - 0.35) * e)


def test_pixels_map_through_the_drawn_view_not_the_target(recs):
    c, clock = _ctrl(recs)
    lay = c.layout
    c.set_x_range((40.0, 60.0))                       # target
    c.drawn_view = View(0.0, 100.0, 1.0, 2.0, False, lay.plot, (lay.width, lay.height))  # still on screen
    x, y = c.px_to_data(lay.left, c.size[1] - lay.bottom)
    assert (x, y) == pytest.approx((0.0, 1.0))
    info = c.hover(lay.left + lay.plot[2] / 2, c.size[1] - lay.bottom - lay.plot[3] / 2)
    assert info["x"] == pytest.approx(50.0) and info["loss"] == pytest.approx(1.5)
    assert 1.0 <= info["loss"] <= 2.0                 # never a loss outside the drawn axis
    # box zoom in pixels of the drawn view
    c.box_zoom((lay.left, 100), (lay.left + lay.plot[2] / 2, 100))
    assert c.state.x_range == pytest.approx((0.0, 50.0))


def test_click_within_3px_picks_the_nearest_runs_step(recs):
    c, clock = _ctrl(recs, two=True)
    c.set_x_range((60.0, 75.0), animate=False)
    v = c.view()
    rng = np.random.default_rng(5)
    tried = 0
    for i in range(60):
        ri = i % 2
        run = c.runs[ri]
        k = int(rng.integers(61, 73))
        row = run.data.row_of(k)
        a = float(rng.uniform(0.1, 0.9))
        px, py = v.data_to_px(k + a, float(np.interp(a, run.alphas, run.data.phi[row])))
        other = c.runs[1 - ri]
        _, oy = v.data_to_px(k + a, float(np.interp(a, other.alphas, other.data.phi[other.data.row_of(k)])))
        if abs(oy - py) < 7:
            continue
        ang = rng.uniform(0, 2 * math.pi)
        assert c.pick(px + 2.9 * math.cos(ang), py + 2.9 * math.sin(ang)) == k
        assert c.selected_run == ri and c.details()["run"] == run.name
        tried += 1
    assert tried >= 30


def test_zoom_out_is_bounded_and_pan_stays_near_the_run(recs):
    c, clock = _ctrl(recs)
    full = c.full_x_range()
    for _ in range(20):
        c.key("-")
    for _ in range(5):
        c.zoom_at(c.layout.left, 0, 0.2)
    x0, x1 = c.state.x_range
    assert x1 - x0 <= ZOOM_OUT_LIMIT * (full[1] - full[0] + 1.0) + 1e-9
    assert x0 >= full[0] - 0.06 * (full[1] - full[0])
    c.key("+")
    c.key("+")
    for _ in range(50):
        c.pan(-400)
    assert c.state.x_range[1] <= full[1] + 0.06 * (full[1] - full[0]) + 1.0


def test_y_zoom_pan_and_autofit_toggle(recs):
    c, clock = _ctrl(recs)
    v0 = c.view()
    assert c.state.y_range is None
    c.zoom_y_at(c.size[1] / 2, 2.0)
    y0, y1 = c.state.y_range
    assert (y1 - y0) == pytest.approx((v0.y1 - v0.y0) / 2)
    c.drawn_view = None
    c.pan(0, 50)  # y fixed: a vertical drag moves it
    assert c.state.y_range[0] > y0
    assert c.key("a") == "y auto-fit on" and c.state.y_range is None
    assert c.key("a").startswith("y auto-fit off") and c.state.y_range is not None
    c.key("l")  # log: zoom in display units, stored as loss
    c.zoom_y_at(c.size[1] / 2, 4.0)
    lo, hi = c.state.y_range
    assert 0 < lo < hi and math.log10(hi / lo) == pytest.approx((c.view().y1 - c.view().y0))


def test_highlight_counts_for_the_status_line(recs):
    c, clock = _ctrl(recs)
    assert c.match_summary() == ""
    c.state.update(highlight="batch>10")
    d = c.runs[0].data
    n = int((d["batch"] > 10).sum())
    c.set_x_range((0.0, 250.0), animate=False)
    in_view = int(((d["batch"] > 10) & (d.iteration < 250)).sum())
    assert c.match_summary() == f"highlight batch>10: {n:,} steps ({in_view:,} in view)"
    assert c.key("h").startswith("highlight: ")


def test_follow_waits_for_a_missing_file_and_the_view_grows(tmp_path):
    from recorder.store import RecordingWriter
    from conftest import parabola_phi

    path = tmp_path / "later.gda"
    clock = FakeClock()
    c = ExplorerController([], ViewState(follow=True), size=(800, 500), clock=clock)
    grows = []
    c.on_grow(lambda: grows.append(len(c.runs)))
    f = Follower(c, [], pending=[str(path)])  # the live sources: owned outside the controller
    assert f.poll() == 0 and c.runs == [] and "later" in f.live_status
    grid = np.linspace(0.0, 2.0, 16)
    phi = parabola_phi(120, grid)
    w = RecordingWriter(path, grid, {"name": "later"}, overwrite=True, commit_interval=0.05)
    try:
        for i in range(40):
            w.append(i, phi[i], train_loss=float(phi[i, 0]), taken_alpha=1.0)
        w.flush()
        assert f.poll() == 40 and len(c.runs) == 1 and grows
        assert c.state.x_range[0] == 0.0 and c.state.x_range[1] >= 40
        for i in range(40, 120):
            w.append(i, phi[i], train_loss=float(phi[i, 0]), taken_alpha=1.0)
        w.flush()
        assert f.poll() == 80
        x0, x1 = c.state.x_range
        assert x0 == 0.0 and x1 >= 120  # the whole run was shown: the view grew with it
        # zoomed in on the newest steps: the width is kept and the view slides
        c.set_x_range((100.0, 121.0), animate=False, keep_follow=True)
        for i in range(120, 150):
            w.append(i, phi[i % 120], train_loss=float(phi[i % 120, 0]), taken_alpha=1.0)
        w.flush()
        assert f.poll() == 30
        x0, x1 = c.state.x_range
        assert x1 - x0 == pytest.approx(21.0) and x1 >= 150
    finally:
        w.close()
        for rec in f.recordings:
            rec.close()


def test_visible_rows_csv_and_run_visibility(recs, tmp_path):
    c, clock = _ctrl(recs, two=True)
    c.set_x_range((10.0, 20.0), animate=False)
    n = c.visible_rows_csv(tmp_path / "rows.csv")
    lines = (tmp_path / "rows.csv").read_text().splitlines()
    assert n == 20 and len(lines) == 21 and lines[0].startswith("run,")
    c.set_run_visible(1, False)
    assert c.visible_rows_csv(tmp_path / "rows.csv") == 10
    assert [r.name for r in c.visible_runs()] == ["a"]


def test_highlight_of_a_long_run_reads_the_view_not_the_run(recs, monkeypatch):
    import gda_gl.explorer.filters as ctl

    c, clock = _ctrl(recs)
    monkeypatch.setattr(ctl, "MATCH_ROWS", 50)  # pretend run a (300 rows) is too long to filter whole
    c.state.update(highlight="batch>5")
    c.set_x_range((100.0, 140.0), animate=False)
    m = c.matches()
    assert not c.matches_whole and m.min() >= 100 and m.max() < 140
    c.drawn_match = (17, False)
    assert c.match_summary() == "highlight batch>5: at most 17 in view"
    c.set_x_range((0.0, 300.0), animate=False)  # more than MATCH_ROWS rows in view: none read
    c.drawn_view = None
    assert len(c.matches()) == 0


def test_one_input_table_feeds_dispatch_help_and_readme():
    """Keys, the help overlay and the README's key list come from (or agree with) inputmap.BINDINGS."""
    import re

    from conftest import ROOT
    from gda_gl.gl import overlays
    from gda_gl.explorer import inputmap

    from gda_gl.explorer.frame_draw import overlay_spec

    assert inputmap.HELP_KEYS == tuple((b.label, b.text) for b in inputmap.BINDINGS)
    assert all(b.label in overlays.help_text(inputmap.HELP_KEYS) for b in inputmap.BINDINGS)
    c = ExplorerController([], ViewState())
    c.show_help = True
    from gda_gl.compose.frame import Frame

    assert overlay_spec(c, c.state, Frame(origin=(0.0, 0.0)), []).help_rows == inputmap.HELP_KEYS
    bound = inputmap.key_names()
    for b in inputmap.BINDINGS:  # every key a help row names is bound, by the same row
        for tok in re.findall(r"\b([A-Z0-9])\b", b.label):
            assert tok in {k.upper() for k in inputmap.KEY_ACTIONS if len(k) == 1}, (b.label, tok)
    readme = (ROOT / "README.md").read_text()
    table = readme[readme.index("| key | |"):]
    table = table[:table.index("\n\n")]
    first_column = "\n".join(line.split("|")[1] for line in table.splitlines()[2:])
    named = {"Escape" if t == "Esc" else t for t in re.findall(r"`([^`]+)`", first_column)}
    assert named <= bound, named - bound
    assert {k for k in bound if len(k) == 1 and k.isalpha()} <= named
    assert {"wheel", "ctrl+wheel", "drag", "shift+drag", "click", "double-click"} == \
        {g for b in inputmap.BINDINGS for g in b.mouse}


def test_the_controller_opens_no_files_and_keys_reach_commands(recs):
    """Live sources are a Follower owned outside the controller; X and S are commands of their owners."""
    import inspect

    import gda_gl.explorer.controller as ctl

    assert "recorder.store" not in inspect.getsource(ctl) and "Recording(" not in inspect.getsource(ctl)
    c, clock = _ctrl(recs)
    called = []
    assert c.key("s") is None  # no owner here: nothing happens
    assert c.key("S", {"save_state": lambda: called.append("s") or "saved"}) == "saved"
    assert c.key("x", {"export": lambda: "exported"}) == "exported" and called == ["s"]


def test_view_state_to_json_ignores_observers_that_cannot_be_copied():
    """Issue 17.1: to_json ran dataclasses.asdict over the observer list (a lock cannot be pickled)."""
    import threading

    lock = threading.Lock()
    st = ViewState(x_range=(1.0, 5.0), highlight="overshoot", selected=3)
    st.observe(lambda s, changed, lock=lock: None)

    class Holder:
        def __init__(self):
            self.lock = threading.Lock()

        def cb(self, s, changed):
            pass

    st.observe(Holder().cb)
    back = ViewState.from_json(st.to_json())
    assert back.x_range == (1.0, 5.0) and back.highlight == "overshoot" and back.selected == 3


@pytest.mark.parametrize("log_y", [False, True])
def test_every_readout_names_a_drawn_point_or_none(recs, log_y):
    """Issue 17.3: a hover readout with an alpha names a point of a drawn arc near the cursor.

    The whole-run view used to say "step 301, alpha -0.2405" (the step nearest in x, the cursor's x
    turned into an alpha outside the step), log y "alpha -8.519", a box zoom "alpha 2.298" on a 0..2
    grid.  Off the arcs the readout must carry no alpha (between steps, or a zoomed-out bucket).
    """
    from gda_gl.explorer.picking import BEYOND_PENALTY_PX, HOVER_PX

    c, clock = _ctrl(recs, two=True)
    c.state.update(log_y=log_y)
    checked = with_alpha = 0
    for x_range in (c.full_x_range(), (100.0, 140.0), (120.0, 123.5)):
        c.set_x_range(x_range, animate=False)
        c.drawn_view = None
        v = c.view()
        lx, ly, pw, ph = v.plot
        for px in np.linspace(lx + 1, lx + pw - 1, 41):
            for py in np.linspace(v.size[1] - ly - ph + 1, v.size[1] - ly - 1, 23):
                info = c.hover(float(px), float(py))
                checked += 1
                if info is None or "alpha" not in info:
                    continue
                with_alpha += 1
                run = c.runs[info["run_index"]]
                row = run.windows.row_of(info["iteration"])
                t = float(row["taken_alpha"][0])
                t = t if np.isfinite(t) and t > 0 else 1.0
                a = np.asarray(run.alphas, np.float64)
                alpha = info["alpha"]
                assert a[0] - 1e-9 <= alpha <= a[-1] + 1e-9, (x_range, info)
                y = np.asarray(row.phi[0], np.float64)  # the drawn polyline: straight in display units
                phi = float(10.0 ** np.interp(alpha, a, np.log10(y))) if log_y else float(np.interp(alpha, a, y))
                assert info["phi"] == pytest.approx(phi, rel=1e-9, abs=1e-12)
                qx, qy = v.data_to_px(info["iteration"] + alpha / t, phi)
                assert math.hypot(qx - px, qy - py) <= HOVER_PX + BEYOND_PENALTY_PX + 0.5, (x_range, px, py, info)
    assert checked > 2000 and with_alpha > 50


def test_saved_view_state_keeps_the_selected_step_with_its_run(recs):
    """Issue 28: the state stored the selected iteration without its run: with two runs holding that
    iteration, a restored state showed the first run's step whichever had been picked."""
    from gda_gl.compose.state import ViewState

    c, _ = _ctrl(recs, two=True)
    c.select(1, 50)
    assert c.state.selected == 50 and c.state.selected_run == "b"
    restored = ViewState.from_json(c.state.to_json())
    assert restored.selected_run == "b"
    c2 = ExplorerController([_run(recs[0], "a"), _run(recs[1], "b", 1)], restored, size=(800, 500))
    assert c2.selected_run_data().name == "b" and c2.details()["run"] == "b"
    c.select(None, None)
    assert c.state.selected_run is None
