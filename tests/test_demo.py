"""The README's main job: the demo records real training on scikit-learn's digits and renders PNGs headless."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import run_cli
from recorder.store import Recording


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """``gda-gl demo --quick --sweep`` run once: (its output folder, the finished process)."""
    out = tmp_path_factory.mktemp("demo") / "runs"
    res = run_cli("demo", "--quick", "--quiet", "--out", out, "--sweep", env={"DISPLAY": "", "WAYLAND_DISPLAY": ""},
                  timeout=600)
    return out, res


@pytest.mark.slow
def test_demo_records_both_runs_and_renders_pngs(demo):
    tmp_path, res = demo
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


def _readme_commands() -> list[list[str]]:
    """The ``gda-gl`` lines of the README's "Look at it" block, as argument lists (comments dropped)."""
    import shlex

    from conftest import ROOT

    text = (ROOT / "README.md").read_text()
    block = text.split("## Look at it", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [shlex.split(line.split("  #", 1)[0])[1:] for line in block.splitlines() if line.startswith("gda-gl ")]


@pytest.mark.slow
def test_the_readme_commands_run_against_the_demo_recordings(demo, tmp_path):
    """Every ``gda-gl`` line of the README's "Look at it" block runs against what ``gda-gl demo --sweep`` writes
    (the viewer, the live follow and the benchmark are left out: they need a display or take minutes); before,
    the scatter example named ``runs/sweep-*.gda``, which nothing writes."""
    import glob

    runs, res = demo
    assert res.returncode == 0, res.stderr[-2000:]
    commands = _readme_commands()
    assert len(commands) >= 8
    ran = 0
    for argv in commands:
        if argv[0] in ("view", "bench"):
            continue
        args = []
        for a in argv:  # runs/... -> the demo's folder; outputs into tmp_path; globs expanded as a shell would
            a = a.replace("runs/", f"{runs}/")
            if a.endswith((".png", ".csv")) and "/" not in a:
                a = str(tmp_path / a)
            args += sorted(glob.glob(a)) or [a] if "*" in a else [a]
        assert not any("*" in a for a in args), f"the README names files nothing writes: {argv}"
        r = run_cli(*args, env={"DISPLAY": "", "WAYLAND_DISPLAY": ""}, timeout=300)
        assert r.returncode == 0, (argv, r.stderr[-1500:])
        ran += 1
    assert ran >= 7
