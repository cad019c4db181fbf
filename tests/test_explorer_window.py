"""The real explorer window under Xvfb, driven with synthetic Qt input (tests/helpers/qt_drive.py).

One subprocess runs every scenario against one window (start-up dominates the cost) and writes
``results.json`` plus framebuffer grabs; each test asserts on one scenario's state and pixels.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT, write_synthetic
from gda_gl.session.files import load_state

DRIVER = Path(__file__).parent / "helpers" / "qt_drive.py"


def _has_gui():
    try:
        import PyQt6  # noqa: F401
    except ImportError:
        return False
    return shutil.which("xvfb-run") is not None


pytestmark = pytest.mark.skipif(not _has_gui(), reason="needs PyQt6 and xvfb-run (installed by scripts/setup.sh)")


@pytest.fixture(scope="module")
def drive(tmp_path_factory):
    d = tmp_path_factory.mktemp("window")
    a = write_synthetic(d / "a.gda", n=300, batch_every=20)
    b = write_synthetic(d / "b.gda", n=200, curvature=3.0)
    out = d / "out"
    out.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="xcb")
    env.pop("GDA_GL_BACKEND", None)
    res = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1600x1000x24", sys.executable, str(DRIVER), str(out),
                          str(a), str(b), str(d / "follow.gda")], capture_output=True, text=True, timeout=240,
                         env=env, cwd=str(ROOT))
    path = out / "results.json"
    assert path.exists(), res.stderr[-3000:]
    results = json.loads(path.read_text())
    assert "fatal" not in results, results["fatal"]
    return results, out


def _get(drive, name):
    results, _ = drive
    r = results[name]
    assert "error" not in r, r["error"]
    return r


def test_widgets_follow_keys(drive):
    r = _get(drive, "widgets_follow_state")
    assert r["highlight_state"] == r["highlight_combo"] == "overshoot"
    assert r["color_state"] == r["color_combo"] == "efficiency"
    assert r["log_state"] and r["log_check"]
    x0, x1 = r["x_range"]
    assert r["it_spin"] == [int(np.floor(x0)), int(np.ceil(x1)) - 1]
    assert r["after_reset"] == [None, "none", False]  # and the widgets edit the state


def test_clicks_select_the_right_run_and_step(drive):
    r = _get(drive, "pick_two_runs")
    assert len(r["trials"]) >= 16 and r["ok"] == len(r["trials"]), r["trials"]
    assert {t["want"][0] for t in r["trials"]} == {0, 1}
    assert r["status_b"].startswith("b: step 66,")
    assert r["tooltip"].startswith("b\nstep 66\n")  # the resting cursor gets a tooltip naming run and step


def test_status_line_is_refreshed_after_a_zoom(drive):
    r = _get(drive, "status_after_zoom")
    k = int(np.floor(r["x_now"]))
    assert f"step {k:,}," in r["after"] and r["after"] != r["before"]
    lo, hi = r["y_range_data"]
    assert lo <= r["hover_loss"] <= hi


def test_box_zoom_draws_a_rectangle_and_zooms_there(drive):
    r = _get(drive, "box_zoom")
    assert r["outline_fraction"] > 0.4
    assert r["x_range"] == pytest.approx(r["expect"])
    assert r["y_range"] is not None


def test_y_zoom_and_autofit(drive):
    r = _get(drive, "y_zoom_autofit")
    assert r["h1"] < 0.8 * r["h0"] and r["fixed"] and r["autofit_check_off"] and r["auto_again"]


def test_zoom_out_is_bounded(drive):
    r = _get(drive, "zoom_out_bound")
    assert r["width"] <= 1.1 * (r["full"] + 1.0) + 1e-6


def test_help_is_a_non_modal_overlay(drive):
    r = _get(drive, "help_overlay")
    assert r["shown"] and not r["modal"] and r["closed"]
    assert r["blue_with_help"] < 0.5 * r["blue_before"] and r["blue_after"] == r["blue_before"]


def test_double_click_keeps_the_step_on_screen(drive):
    r = _get(drive, "double_click_flight")
    k = r["k"]
    assert r["selected"] == k and r["frames"]
    for x0, x1 in r["frames"]:
        assert x0 <= k + 0.5 <= x1
    assert r["frames"][-1] == pytest.approx(r["target"])
    assert r["target"][0] <= k and r["target"][1] >= k + 1


def test_slow_frames_end_on_the_target(drive):
    r = _get(drive, "slow_frames")
    assert r["misses"] == [] and r["n"] >= 8


def test_details_panel_scales_and_shows_at_900x560(drive):
    r = _get(drive, "details_layout")
    big, small = r["1500x850"], r["900x560"]
    for s in (big, small):
        assert s["visible"] and s["drawn"] == ["a", 120] and s["blue_px"] > 100
    assert small["height"] >= 160 and big["height"] > small["height"] * 1.3
    _, out = drive
    assert (out / "details_900x560.png").exists()


def test_follow_waits_for_the_file_and_grows(drive):
    r = _get(drive, "follow_missing_file")
    assert r["runs_before"] == 0 and "waiting" in r["title_before"]
    assert r["runs_after"] == 1 and r["rows_1"] == 50 and r["spin_max_1"] == 49
    assert r["rows_2"] == 100 and r["spin_max_2"] == 99
    assert r["x_2"][0] == 0.0 and r["x_2"][1] >= 100 and r["drawn_2"] == r["x_2"]


def test_saving_the_view_state_writes_a_file_and_says_where(drive):
    """Issue 17.1: S / ctrl+S used to abort (asdict over the observers); without --state S did nothing."""
    r = _get(drive, "save_view_state")
    assert r["beside_exists"] and r["beside_path"].endswith("a.view.json")
    assert r["beside_path"] in r["status_beside"]
    assert r["beside_x"] == pytest.approx(r["x_range"])
    assert r["explicit_exists"] and "explicit.view.json" in r["status_explicit"] and r["save_shortcut"] == "Ctrl+S"


def test_closing_a_window_with_state_exits_0_and_saves(tmp_path):
    """Issue 17.1: closing the window normally with --state exited 1 (TypeError in to_json)."""
    p = write_synthetic(tmp_path / "w.gda", n=60)
    state = tmp_path / "view.json"
    env = dict(os.environ, PYTHONPATH=str(ROOT), QT_QPA_PLATFORM="xcb")
    env.pop("GDA_GL_BACKEND", None)
    res = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", sys.executable, "-m", "gda_gl", "view",
                          "--state", str(state), str(p), "--exit-after", "2"],
                         capture_output=True, text=True, timeout=120, env=env, cwd=str(ROOT))
    assert res.returncode == 0, res.stderr[-2000:]

    assert load_state(state).x_range is not None


def test_side_panel_follows_the_selected_run_not_only_the_step(drive):
    """Issue 17.2: clicking the same step of another run left the side panel on the first run's numbers."""
    r = _get(drive, "panel_across_runs")
    k = r["k"]
    for p in r["panels"]:
        assert p["selected"][1] == k and p["detail"] == [p["want"], k]
        assert f"run: <b>{p['want']}</b>" in p["panel"], p["panel"]
        assert f"training loss: <b>{p['train_loss']:.6g}</b>" in p["panel"]


def test_status_and_tooltip_follow_a_view_that_moves_without_the_mouse(drive):
    """Issue 17.6: after Home, L or a key zoom the resting cursor's status and tooltip kept the old step."""
    r = _get(drive, "readout_after_view_moves")
    for name in ("home", "log", "zoom"):
        s = r[name]
        assert s["before"]["tip_visible"] and "step 120" in s["before"]["tip"], (name, s["before"])
        k = s["expect_step"]
        if k is None and s["expect_bucket"]:  # zoomed out over a bucket: its steps and loss range, no alpha
            assert s["status"].startswith(f"{s['expect_run']}: step") and "alpha" not in s["status"], (name, s)
        elif k is None:
            assert "step" not in s["status"], (name, s)
        else:
            assert f"{s['expect_run']}: step {k:,}," in s["status"], (name, s)
        if s["expect_near"]:
            assert s["tip_visible"] and s["tip"].startswith(f"{s['expect_run']}\nstep {k:,}\n"), (name, s)
            alpha, phi = s["tip"].split("\n")[2:4]  # the tooltip states the numbers of the status line
            assert f"{alpha}, {phi}" in s["status"] and s["tooltip"] == s["tip"], (name, s)
        elif s["expect_table"]:  # several runs under the cursor: the tooltip is their table (a sweep)
            assert s["tip"].startswith("runs at x") and "alpha" not in s["tip"], (name, s)
        else:
            assert not s["tip_visible"], (name, s)


def test_status_line_states_no_alpha_outside_the_drawn_arcs(drive):
    """Issue 17.3: the whole-run view said "alpha -0.2405", log y "alpha -8.519", a box zoom "alpha 2.298"."""
    r = _get(drive, "readouts_in_range")
    assert len(r["lines"]) >= 60 and all(r["lines"])
    assert all(0.0 <= a <= r["grid_max"] + 1e-9 for a in r["alphas"]), r["alphas"]


def test_keys_reach_the_plot_after_the_panel_and_esc_clears_the_help_line(drive):
    """Issue 17.7: after typing into the epoch box Home and L were ignored; Esc left "press ? or Esc"."""
    r = _get(drive, "keys_after_panel_and_esc")
    assert r["focus_is_plot"] and r["l_toggled"] and r["home_whole"] and r["focus_after_combo_is_plot"]
    assert "Esc" in r["status_help"] and "Esc" not in r["status_after_esc"]
    # issue 28: Enter in the epoch box applies the range; ticking a series gives the keys back to the plot
    assert r["enter_applied"]
    assert r["series_items"] > 0 and r["focus_after_series_is_plot"]


def test_numbers_at_scale_in_the_window(drive):
    """Issues 17.4, 17.5, 17.7 drawn: ticks, status line, colour bar and side panel at 7.6e6 iterations."""
    import re

    r = _get(drive, "numbers_at_scale")
    grouped = re.compile(r"\d{1,3}(,\d{3})+(\.\d+)?")
    x_ticks = [s for s in r["step_labels"] if grouped.fullmatch(s)]
    assert "7,646,519.8" in x_ticks and all(len(s.split(".")[1]) == 1 for s in x_ticks), r["step_labels"]
    assert not any(re.search(r"\d\.\d{5,}", s) for s in r["step_labels"]), r["step_labels"]
    assert "7,646,560" in r["overview_labels"] or any(s.startswith("7,646,5") for s in r["overview_labels"])
    m = re.search(r"x ([0-9,]+\.[0-9]+)", r["status"])
    assert m and m.group(1).startswith("7,646,519."), r["status"]   # every digit, with the fraction
    assert "e+06" not in r["status"]
    assert "0.05" in r["lr_labels"] and not any(re.fullmatch(r"\d{4,}e-\d+", s) for s in r["lr_labels"])
    assert "<b>n/a</b>" in r["panel"] and "<b>nan</b>" not in r["panel"]


def test_findings_list_and_keys_fly_to_a_finding(drive):
    """Issue 30: the panel lists what gda-gl diagnose says (same numbering and lines); J, K and a click on the
    list fly to a view that shows the finding's span."""
    from recorder.diagnose import diagnose_paths, numbered, span_of
    from recorder.diagnose.report import entry_line

    r = _get(drive, "findings_fly")
    _, out = drive
    runs = sorted(out.parent.glob("[ab].gda"))
    reports, _ = diagnose_paths(runs)
    entries = numbered(reports)
    assert len(entries) >= 2
    assert [line.split(": ", 1)[1] for line in r["items"]] == [entry_line(s, e) for _, _, s, e in entries]
    assert [f["current"] for f in r["flights"]] == [1, 2, 1, len(entries)]
    for f in r["flights"]:
        _, _, section, entry = entries[f["current"] - 1]
        lo, hi = span_of(section, entry)
        assert f["axis"] == "iteration"
        assert f["drawn"][0] <= lo and hi <= f["drawn"][1] + 1e-9, (f, lo, hi)
        assert f["drawn"][1] - f["drawn"][0] <= 3 * (hi - lo) + 40  # zoomed onto it, not the whole run
