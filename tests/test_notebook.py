"""The notebook widget driven in-process (no browser): events -> controller -> frames, bad input, follow.

The widget's jupyter_rfb side (sending frames) needs a front end; here ``get_frame`` is called the
way jupyter_rfb calls it after ``request_draw``, and events are the dicts jupyter_rfb delivers.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

pytest.importorskip("jupyter_rfb")
pytest.importorskip("ipywidgets")

from conftest import write_synthetic  # noqa: E402

from gda_gl.notebook import ErrorLine, view  # noqa: E402

pytestmark = pytest.mark.gl

W, H = 640, 360


def _resize(fb, w=W, h=H, ratio=1.0):
    fb.handle_event({"type": "resize", "width": w / ratio, "height": h / ratio, "pwidth": w, "pheight": h,
                     "ratio": ratio})


def _settle(fb, limit=200):
    """Frames until the flight has landed (jupyter_rfb would keep asking while the controller animates)."""
    img = fb.get_frame()
    for _ in range(limit):
        if not fb.ctrl.animating:
            break
        img = fb.get_frame()
    assert not fb.ctrl.animating
    return img


def _ev(kind, x=W / 2, y=H / 2, **kw):
    return dict({"type": kind, "x": x, "y": y, "modifiers": (), "buttons": (), "button": 1}, **kw)


def _zoomed_in(explorer):
    """Three wheel notches up at the centre, settled; returns (frame buffer, controller, the zoomed x range)."""
    fb, c = explorer.frame, explorer.controller
    _settle(fb)
    fb.handle_event(_ev("wheel", dy=-300.0))
    _settle(fb)
    return fb, c, c.state.x_range


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("nb") / "nb.gda", n=240)


@pytest.fixture
def explorer(recording):
    v = view(str(recording), size=(W, H))
    assert not isinstance(v, ErrorLine), v
    _resize(v.frame)
    yield v
    v.close()


def test_wheel_changes_the_frame_home_returns_it_pixel_identically(explorer):
    fb, c = explorer.frame, explorer.controller
    whole = _settle(fb)
    assert whole.shape == (H, W, 3) and whole.dtype == np.uint8
    assert "whole run" in fb.view_text()
    x_before = c.state.x_range
    fb.handle_event(_ev("wheel", dx=0.0, dy=-200.0))  # two notches up: zoom in at the cursor
    zoomed = _settle(fb)
    assert c.state.x_range[1] - c.state.x_range[0] < 0.7 * (x_before[1] - x_before[0])
    assert not np.array_equal(zoomed, whole)
    assert "zoomed" in fb.view_text()
    fb.handle_event({"type": "key_down", "key": "Home", "modifiers": ()})
    assert np.array_equal(_settle(fb), whole)


def test_drag_pans_and_shift_drag_box_zooms(explorer):
    fb, c, x0 = _zoomed_in(explorer)
    fb.handle_event(_ev("pointer_down", x=300, buttons=(1,)))
    fb.handle_event(_ev("pointer_move", x=200, buttons=(1,)))
    fb.handle_event(_ev("pointer_up", x=200))
    assert c.state.x_range[0] > x0[0]  # dragged left: the view moved right
    w0 = c.state.x_range[1] - c.state.x_range[0]
    shift = ("Shift",)
    fb.handle_event(_ev("pointer_down", x=200, y=100, buttons=(1,), modifiers=shift))
    fb.handle_event(_ev("pointer_move", x=300, y=200, buttons=(1,), modifiers=shift))
    assert fb.input.box == (200.0, 100.0, 300.0, 200.0)
    fb.get_frame()  # the box outline is drawn
    fb.handle_event(_ev("pointer_up", x=300, y=200, modifiers=shift))
    assert fb.input.box is None
    assert c.state.x_range[1] - c.state.x_range[0] < w0


def test_double_click_selects_a_step_and_the_details_show_it(explorer):
    fb, c = explorer.frame, explorer.controller
    _settle(fb)
    assert explorer.controls.details_image.layout.display == "none"
    fb.handle_event(_ev("double_click"))
    k = c.state.selected
    assert k is not None
    _settle(fb)
    assert c.state.x_range[0] <= k and c.state.x_range[1] >= k + 1  # flew to the step
    ctl = explorer.controls
    assert ctl.details_image.value[:8] == b"\x89PNG\r\n\x1a\n" and ctl.details_image.layout.display == ""
    assert f"details of step {k}" in ctl.details_numbers.value
    assert f"selected {k}" in fb.view_text() and f"selected iteration {k}" in fb.status
    from gda_gl.explorer.picking import _to_px

    view, frame = c.drawn()  # rest the cursor on a drawn arc: the hover readout names its step and alpha
    seg = frame.merged("arcs")
    gx, gy = _to_px(view, 0.5 * (seg.p0 + seg.p1))  # GL pixels, origin bottom-left
    j = int(np.argmin(np.abs(gx - (view.plot[0] + view.plot[2] / 2))))  # the arc nearest the plot's middle
    fb.handle_event(_ev("pointer_move", x=float(gx[j]), y=float(view.size[1] - gy[j])))
    assert re.search(r"step \d+, alpha [\d.]+, phi", fb.status), fb.status
    assert re.search(r"step \d+, alpha", explorer.controls.status.value)
    fb.handle_event(_ev("pointer_leave"))
    assert "alpha" not in fb.status


def test_frames_are_requested_only_when_something_changed(explorer):
    fb, c = explorer.frame, explorer.controller
    _settle(fb)
    n = fb.draw_requests
    fb.handle_event(_ev("pointer_move", x=200, y=150))  # hover: the status line changes, the frame does not
    fb.handle_event({"type": "key_down", "key": "Shift", "modifiers": ("Shift",)})
    fb.handle_event({"type": "key_down", "key": "x", "modifiers": ("Control",)})  # a browser shortcut
    assert fb.draw_requests == n
    assert "cursor" in fb.status or "step" in fb.status
    fb.handle_event({"type": "key_down", "key": "l", "modifiers": ()})  # log y: a new frame
    assert fb.draw_requests > n and c.state.log_y
    assert "log y on" in fb.status


def test_controls_edit_the_state_and_follow_it(explorer):
    c, ctl = explorer.controller, explorer.controls
    ctl.color.value = "efficiency"
    assert c.state.color_by == "efficiency"
    c.key("c")  # the key moves the state on; the dropdown follows
    assert ctl.color.value == c.state.color_by != "efficiency"
    ctl.highlight.value = "overshoot"
    assert c.state.highlight == "overshoot"
    ctl.highlight.value = "no such filter <"
    assert c.state.highlight == "overshoot" and explorer.frame.status  # refused in one status line
    ctl.x_axis.value = "epoch"
    assert c.state.x_axis == "epoch"
    ctl.x_axis.value = "iteration"
    ctl.it_lo.value, ctl.it_hi.value = 10, 19
    ctl.it_apply.click()
    assert c.state.x_range == (10.0, 20.0)
    row = ctl.runs.children[0]
    row.children[1].value = False
    assert not c.runs[0].visible


def test_arrow_keys_pan_and_help_toggles(explorer):
    fb, c, x0 = _zoomed_in(explorer)
    fb.handle_event({"type": "key_down", "key": "ArrowRight", "modifiers": ()})
    assert c.state.x_range[0] > x0[0]
    fb.handle_event({"type": "key_down", "key": "?", "modifiers": ("Shift",)})
    assert c.show_help
    fb.handle_event({"type": "key_down", "key": "Escape", "modifiers": ()})
    assert not c.show_help


def test_bad_input_is_one_line(tmp_path):
    missing = view(str(tmp_path / "missing.gda"))
    assert isinstance(missing, ErrorLine) and missing.text.startswith("gda-gl: error:")
    assert "missing.gda" in missing.text and "\n" not in missing.text
    junk = tmp_path / "junk.gda"
    junk.write_bytes(b"not a recording at all" * 10)
    bad = view(str(junk))
    assert isinstance(bad, ErrorLine) and "\n" not in bad.text and "junk.gda" in bad.text
    assert "Traceback" not in bad._repr_html_()
    assert view().text.startswith("gda-gl: error: no recording")
    state = tmp_path / "view.json"
    state.write_text("{not json")
    bad_state = view(str(junk), state=str(state))  # the recording is refused first
    assert isinstance(bad_state, ErrorLine)


def test_a_bad_view_state_and_no_opengl_are_one_line(recording, tmp_path):
    import subprocess
    import sys

    from conftest import ROOT

    state = tmp_path / "view.json"
    state.write_text("{not json")
    bad = view(str(recording), state=str(state))
    assert isinstance(bad, ErrorLine) and "view.json" in bad.text and "not a view state" in bad.text
    code = ("from gda_gl.notebook import view; import sys; v = view(sys.argv[1]); print(repr(v))")
    env = dict(__import__("os").environ, GDA_GL_BACKEND="no-such-gl")
    out = subprocess.run([sys.executable, "-c", code, str(recording)], capture_output=True, text=True, env=env,
                         cwd=str(ROOT), timeout=120)
    lines = [line for line in out.stdout.splitlines() if line.startswith("gda-gl")]
    assert out.returncode == 0 and lines == [lines[0]] and "no OpenGL backend" in lines[0], out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_follow_grows_the_view_when_rows_are_committed(tmp_path):
    from recorder.store import RecordingWriter

    p = tmp_path / "live.gda"
    grid = np.linspace(0, 2, 8)
    w = RecordingWriter(p, grid, {"name": "live"}, overwrite=True, commit_interval=60.0)
    try:
        for i in range(20):
            w.append(i, (2.0 - 0.01 * i + grid * (grid - 1.0)).astype(np.float32), train_loss=2.0 - 0.01 * i)
        w.flush()
        v = view(str(p), follow=True, size=(W, H))
        assert not isinstance(v, ErrorLine), v
        fb = v.frame
        _resize(fb)
        before = _settle(fb)
        x1 = v.controller.state.x_range[1]
        n = fb.draw_requests
        for i in range(20, 60):
            w.append(i, (2.0 - 0.01 * i + grid * (grid - 1.0)).astype(np.float32), train_loss=2.0 - 0.01 * i)
        w.flush()
        assert fb.poll() == 40
        assert fb.draw_requests > n
        assert v.controller.state.x_range[1] > x1 + 30  # the whole run was shown: the view grew with it
        assert not np.array_equal(_settle(fb), before)
        assert "60 steps" in fb.view_text()
        v.close()
    finally:
        w.close()


def test_findings_list_flies_to_a_finding(tmp_path):
    """Issue 30: the controls list gda-gl diagnose's findings; picking one (or J) flies the frame to a view that
    shows it, and the status line says what it is."""
    from diagnose_runs import train
    from recorder.diagnose import diagnose_paths, numbered, span_of

    path = train(tmp_path / "nbevents.gda", 0.3, 160, outlier_at=64, lr_spike_at=110)
    entries = numbered(diagnose_paths([path])[0])
    v = view(str(path), size=(W, H))
    assert not isinstance(v, ErrorLine), v
    try:
        _resize(v.frame)
        fb, c, ctl = v.frame, v.controller, v.controls
        _settle(fb)
        assert [n for _, n in ctl.findings.options] == [n for n, _, _, _ in entries]
        spike = next(n for n, _, s, e in entries if s == "spikes" and e["cause"] == "batch")
        before = fb.get_frame()
        ctl.findings.value = spike
        after = _settle(fb)
        lo, hi = span_of("spikes", entries[spike - 1][3])
        x0, x1 = c.state.x_range
        assert x0 <= lo and hi <= x1 and x1 - x0 < 40 and c.state.selected == entries[spike - 1][3]["iteration"]
        assert f"#{spike} " in fb.status and "cause batch" in fb.status
        assert not np.array_equal(before, after)
        ctl.findings.value = None
        c.key("j")  # the finding after the spike
        _settle(fb)
        assert c.findings.current == spike + 1
    finally:
        v.close()
