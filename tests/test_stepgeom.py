"""The step rules (recorder.stepgeom) and every consumer agreeing on them: rows whose accepted alpha is
0 (a step that did not move), negative, NaN, or beyond the alpha grid."""

from __future__ import annotations

import numpy as np
import pytest

from gda_gl.compose.compare import run_summary, summary_from_bucket
from gda_gl.compose.detail import compose_detail, detail_numbers
from gda_gl.compose.layout import Layout
from gda_gl.compose.scene import RunData, compose
from gda_gl.compose.state import ViewState
from recorder import pyramid, stepgeom
from recorder.store import Recording, RecordingWriter
from recorder.window import RunWindows

GRID = np.linspace(0.0, 2.0, 9)
#: accepted alphas of the test rows: normal, did not move, negative, NaN, +inf, beyond the grid, small
TAKEN = [1.0, 0.0, -0.5, np.nan, np.inf, 3.0, 0.25]
TRIALS = [0.5, 1.0, 1.0 + 1e-12, 1.5, 2.5, 4.0, np.nan]


def test_rules_on_odd_accepted_alphas():
    acc = stepgeom.accepted_alpha(TAKEN)
    np.testing.assert_array_equal(acc, [1.0, 1.0, 1.0, 1.0, 1.0, 3.0, 0.25])
    b = stepgeom.beyond(np.asarray(TRIALS), 1.0)
    np.testing.assert_array_equal(b, [False, False, False, True, True, True, False])  # tolerance; NaN never
    assert not stepgeom.within(np.nan, 1.0) and stepgeom.within(1.0 + 1e-12, 1.0)
    assert stepgeom.grid_columns_within(GRID, 1.0) == 5 and stepgeom.grid_columns_within(GRID, 3.0) == 9
    np.testing.assert_allclose(stepgeom.arc_x(10, [0.0, 0.25], 0.25), [10.0, 11.0])
    assert float(stepgeom.step_extent(GRID, 0.25, [4.0])) == pytest.approx(16.0)


def _odd_recording(path, repeat=30):
    """Rows cycling through TAKEN, each with all of TRIALS as trial points."""
    n = len(TAKEN) * repeat
    phi = (1.0 + (GRID[None, :] - 0.8) ** 2 + 0.001 * np.arange(n)[:, None]).astype(np.float32)
    with RecordingWriter(path, GRID, {"name": "odd"}, block_rows=64) as w:
        for i in range(n):
            tr = {"alpha": TRIALS, "loss": [float(phi[i, 2])] * len(TRIALS), "slope": [np.nan] * len(TRIALS)}
            w.append(i, phi[i], trials=tr, taken_alpha=TAKEN[i % len(TAKEN)], train_loss=float(phi[i, 0]),
                     ls_evals=len(TRIALS), status=0)
    return n


def test_compare_details_and_drawing_count_the_same_loose_ends(tmp_path):
    path = tmp_path / "odd.gda"
    n = _odd_recording(path)
    with Recording(path) as rec:
        d = rec.read()
        fast = summary_from_bucket("odd", RunWindows.from_recording(rec, rows=False).summary())
        plain = run_summary("odd", d)
        run = RunData.from_recording(rec)
        # per row: the details table, the pyramid's row function and the drawn loose-end markers agree
        per_row = pyramid.loose_counts(d["taken_alpha"], np.diff(d.trial_offsets), d.trials["alpha"])
        expected = [int(np.count_nonzero(stepgeom.beyond(TRIALS, a))) for a in stepgeom.accepted_alpha(TAKEN)]
        np.testing.assert_array_equal(per_row[:len(TAKEN)], expected)
        for i in range(len(TAKEN)):
            assert detail_numbers(d, i)["loose ends"] == expected[i], TAKEN[i]
            _, frame, nums, _ = compose_detail(run, i, Layout(700, 400))
            assert int(np.count_nonzero(frame.merged("trials").shape == 2.0)) == nums["loose ends"], TAKEN[i]
        _, frame = compose([run], ViewState(x_range=(0.0, float(n)), show_loose=False), (78, 58, 1000, 600),
                           (1200, 700))
        assert frame.mode == "detail"
        assert int(np.count_nonzero(frame.merged("trials").shape == 2.0)) == int(per_row.sum())
    assert fast["loose ends / 100 it"] == pytest.approx(plain["loose ends / 100 it"])
    assert plain["loose ends / 100 it"] == pytest.approx(100.0 * sum(expected) / len(TAKEN))
    assert fast["iterations"] == plain["iterations"] == n


def test_arcs_of_odd_rows_span_their_step(tmp_path):
    """A step that did not move (taken 0), a negative or NaN one is drawn over [k, k + 1] like a normal step;
    a step beyond the grid ends its arc at the grid's end (k + 2/3)."""
    path = tmp_path / "odd.gda"
    _odd_recording(path, repeat=1)
    with Recording(path) as rec:
        run = RunData.from_recording(rec)
        _, frame = compose([run], ViewState(x_range=(0.0, float(len(TAKEN))), show_loose=False),
                           (78, 58, 1000, 600), (1200, 700))
    arcs = frame.merged("arcs")
    x_abs = arcs.p1[:, 0] + frame.origin[0]
    for k, t in enumerate(TAKEN):
        mine = arcs.ids.first == k
        acc = float(stepgeom.accepted_alpha(t))
        assert arcs.ids.a1[mine].max() == pytest.approx(min(acc, GRID[-1]))
        assert x_abs[mine].max() == pytest.approx(k + min(acc, GRID[-1]) / acc)


def test_pyramid_buckets_equal_their_plain_twin_on_odd_rows(tmp_path):
    path = tmp_path / "odd.gda"
    _odd_recording(path, repeat=40)
    with Recording(path) as rec:
        d = rec.read()
        tcount = np.diff(d.trial_offsets)
        ref = pyramid.reference_buckets(d.alpha_grid, d.columns, d.phi, 0, tcount, d.trials["alpha"])
        rows = pyramid.row_records(d.alpha_grid, d.columns, d.phi, None, tcount, d.trials["alpha"])
    starts = np.arange(0, len(d), pyramid.bucket_rows(0))
    np.testing.assert_array_equal(np.add.reduceat(rows["loose_ends"], starts), ref["loose_ends"])
    np.testing.assert_array_equal(np.fmin.reduceat(rows["env_lo"], starts), ref["env_lo"])
    np.testing.assert_array_equal(np.fmax.reduceat(rows["env_hi"], starts), ref["env_hi"])
    total = int(stepgeom.loose_counts(d["taken_alpha"], tcount, d.trials["alpha"]).sum())
    assert int(np.sum(ref["loose_ends"])) == total


def test_a_per_step_grid_is_drawn_at_each_steps_own_alphas(tmp_path):
    """Issue 22: an adaptive recording keeps each step's alphas; every drawn arc point, the details view and the
    hover readout use the step's own alphas (not the nominal grid)."""
    from test_adaptive_store import write_adaptive

    from gda_gl.explorer.controller import ExplorerController

    p = tmp_path / "a.gda"
    alphas, phi = write_adaptive(p, n=60)
    with Recording(p) as rec:
        run = RunData.from_recording(rec)
        its = rec.read().iteration
        view, frame = compose([run], ViewState(x_range=(float(its[10]), float(its[20]))), (60, 40, 1000, 500),
                              (1100, 600))
        for kind in ("arcs", "beyond"):
            b = frame.merged(kind)
            rows = np.searchsorted(its, b.ids.first)
            for end, a_end in (("p0", b.ids.a0), ("p1", b.ids.a1)):
                assert np.all([np.any(np.isclose(alphas[r], a)) for r, a in zip(rows, a_end)]), kind
                x = getattr(b, end)[:, 0] + frame.origin[0]
                np.testing.assert_allclose(x, b.ids.first + a_end)  # accepted alpha 1: x = k + alpha
                y = getattr(b, end)[:, 1] + frame.origin[1]
                want = [phi[r][np.isclose(alphas[r], a)][0] for r, a in zip(rows, a_end)]
                np.testing.assert_allclose(y, want, rtol=1e-6)
        k = int(its[14])
        _, dframe, nums, _ = compose_detail(run, k, Layout(800, 450))
        row = 14
        have = np.isfinite(alphas[row])
        min_alpha = nums.get("alpha of min phi", float("nan"))  # the details write no number without a value
        assert min_alpha == pytest.approx(alphas[row][have][np.argmin(phi[row][have])]) or not np.isfinite(min_alpha)
        c = ExplorerController([run], ViewState(x_range=(k - 0.2, k + 2.2)), size=(1000, 600))
        v = c.view()
        a_mid = 0.5 * (alphas[row][0] + alphas[row][1])
        y_mid = 0.5 * (phi[row][0] + phi[row][1])
        info = c.hover(*v.data_to_px(k + a_mid, y_mid))
        assert info["iteration"] == k and info["phi"] == pytest.approx(y_mid, rel=1e-3)
