"""The README's main job: the demo records real training on scikit-learn's digits and renders PNGs headless."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli
from recorder.store import Recording


@pytest.mark.slow
def test_demo_records_both_runs_and_renders_pngs(tmp_path):
    res = run_cli("demo", "--quick", "--quiet", "--out", tmp_path, "--sweep",
                  env={"DISPLAY": "", "WAYLAND_DISPLAY": ""},
                  timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    for name in ("demo-cg-overview", "demo-cg-zoom", "demo-cg-detail", "demo-sgd-zoom", "demo-sgd-series",
                 "demo-compare", "demo-sweep-compare"):
        assert (tmp_path / f"{name}.png").stat().st_size > 10_000, name
    with Recording(tmp_path / "demo-cg.gda") as rec:
        d = rec.read()
        assert rec.run["optimizer"] == "CG" and rec.writer_state() == "closed"
        assert len(d) == 11 * 20  # one epoch of 11 mini-batches (1,500 digits) x K = 20 CG iterations
        assert len(np.unique(d["batch"])) == 11
        val = rec.read_series("val_loss")
        assert len(val) == 11 and np.all(np.diff(val.value[[0, -1]]) < 0)  # validated after every batch
        assert np.all(d["status"] == 0)
        assert d.trial_offsets[-1] > len(d)  # line-search trial points were recorded
        assert d["train_loss"][19] < 0.5 * d["train_loss"][0]  # CG really optimises each batch
    with Recording(tmp_path / "demo-sgd.gda") as rec:
        d = rec.read()
        assert rec.run["optimizer"] == "SGD" and len(d) == 3 * 24
        assert rec.series_names(builtin=False) == ["val_loss", "val_accuracy"]
        assert np.isfinite(d["efficiency"]).mean() > 0.9
    assert "median efficiency" in res.stdout  # the sweep's table (SGD only: no line-search columns, issue 29)
    assert "loose ends / 100 it" not in res.stdout.split("median efficiency")[0].splitlines()[-1]
    assert (tmp_path / "demo-sweep.csv").read_text().count("\n") == 5  # header + 3 sweep runs + the SGD run
