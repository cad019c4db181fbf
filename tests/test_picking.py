"""Picking reads the drawn Frame: every readout names a point that is drawn (issue 17.3)."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import write_synthetic
from gda_gl.explorer.controller import ExplorerController
from gda_gl.explorer.picking import BEYOND_PENALTY_PX, HOVER_PX, hover_text
from gda_gl.compose.scene import RunData
from gda_gl.compose.state import ViewState
from recorder import stepgeom
from recorder.store import Recording


@pytest.fixture
def ctrl(tmp_path):
    rec = Recording(write_synthetic(tmp_path / "p.gda", n=3000, batch_every=20))
    c = ExplorerController([RunData.from_recording(rec)], ViewState(), size=(1000, 600))
    yield c
    rec.close()


def _sweep(c, step=9):
    lay = c.layout
    for px in np.arange(lay.left + 1, lay.left + lay.plot[2] - 1, step):
        for py in np.arange(lay.top + 1, c.size[1] - lay.bottom - 1, step):
            yield float(px), float(py), c.hover(float(px), float(py))


def test_zoomed_out_readouts_name_buckets_never_an_alpha(ctrl):
    c = ctrl
    view, frame = c.drawn()
    assert frame.mode == "overview"
    seen = 0
    for px, py, info in _sweep(c, step=23):
        assert info is not None and "alpha" not in info and "iteration" not in info
        if "bucket" in info:
            a, b = info["bucket"]
            lo, hi = info["loss_range"]
            assert a <= b and lo <= hi and "alpha" not in hover_text(info)
            x = view.px_to_data(px, py)[0]
            assert a - 1 <= x <= b + 2  # the bucket drawn in the cursor's pixel column
            seen += 1
    assert seen > 50


@pytest.mark.parametrize("x_range,log_y", [((100.0, 130.0), False), ((100.0, 104.0), True), ((55.0, 58.5), False)])
def test_zoomed_in_readouts_name_a_drawn_point_of_their_step(ctrl, x_range, log_y):
    c = ctrl
    c.state.update(log_y=log_y)
    c.set_x_range(x_range, animate=False)
    view, frame = c.drawn()
    assert frame.mode == "detail"
    run = c.runs[0]
    named = 0
    for px, py, info in _sweep(c, step=11):
        if "alpha" not in info:
            assert "iteration" not in info and "alpha" not in hover_text(info)
            continue
        named += 1
        k, alpha = info["iteration"], info["alpha"]
        row = run.windows.row_of(k)
        acc = float(stepgeom.accepted_alpha(row["taken_alpha"][0]))
        assert run.alphas[0] <= alpha <= run.alphas[-1]
        assert info["beyond"] or alpha <= acc * (1 + stepgeom.BEYOND_RTOL)
        # the named point lies on the drawn arc, within the hover distance of the cursor
        qx, qy = view.data_to_px(float(stepgeom.arc_x(k, alpha, acc)), info["phi"])
        assert np.hypot(qx - px, qy - py) <= HOVER_PX + 1e-6 + (BEYOND_PENALTY_PX if info["beyond"] else 0.0)
        if not log_y:
            assert info["phi"] == pytest.approx(np.interp(alpha, run.alphas, row.phi[0]), rel=1e-6)
    assert named > 20
