"""The details table, ``gda-gl info`` and the hover list statistics from the registry (recorder.stats), so a new
statistic shows in them without a change there; each value is checked against the columns written."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import write_synthetic
from gda_gl.compose.detail import detail_numbers
from gda_gl.compose.scene import RunData
from gda_gl.compose.state import ViewState
from gda_gl.compose.summary import info_text
from gda_gl.explorer.controller import ExplorerController
from gda_gl.explorer.picking import hover_text
from recorder import stats
from recorder.store import Recording


@pytest.fixture(scope="module")
def rec_path(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("reg") / "r.gda", n=120)


def test_details_list_every_statistic_the_row_holds(rec_path):
    with Recording(rec_path) as rec:
        d = rec.read()
        nums = detail_numbers(d, 40)
        held = [s for s in stats.STATISTICS if s.name in d.columns and s.name != "iteration"]
        assert [k for k in nums if k not in ("iteration", "loss phi(0)", "trial points", "loose ends")] == \
            [s.label for s in held]  # the registry's order and labels
        for s in held:
            raw = d[s.name][40]
            want = dict(s.codes)[int(raw)] if s.codes else raw
            got = nums[s.label]
            assert got == want or (isinstance(got, float) and math.isnan(got) and math.isnan(raw)), s.name


def test_info_lists_every_aggregated_statistic_with_its_whole_run_range(rec_path):
    with Recording(rec_path) as rec:
        d = rec.read()
        text = info_text(rec)
    for s in stats.STATISTICS:
        if s.aggregate != "float" or s.name == "wall_time" or s.name not in d.columns:
            continue
        v = np.asarray(d[s.name], np.float64)
        v = v[np.isfinite(v)]
        line = next((ln for ln in text.splitlines() if ln.startswith(f"    {s.label} ")), None)
        if not len(v):
            assert line is None, s.name
            continue
        f = ".4g" if s.fmt == "d" else s.fmt
        assert line is not None and f"{v.min():{f}} .. {v.max():{f}}" in line, (s.name, line)


def test_hover_names_the_statistic_the_curve_is_coloured_by(rec_path):
    with Recording(rec_path) as rec:
        run = RunData.from_recording(rec)
        c = ExplorerController([run], ViewState(color_by="efficiency"), size=(900, 500))
        c.set_x_range((38.0, 44.0), animate=False)
        view, frame = c.drawn()
        arcs = frame.merged("arcs")
        k = 40
        i = int(np.nonzero((arcs.ids.first == k) & (arcs.ids.a0 == 0))[0][0])
        y = arcs.p0[i, 1] + frame.origin[1]
        px, py = view.data_to_px(arcs.p0[i, 0] + frame.origin[0], y)
        info = c.hover(px, py)
        assert info["iteration"] == k
        eff = float(rec.read()["efficiency"][k])
        assert f"step efficiency {eff:.3f}" in hover_text(info)
