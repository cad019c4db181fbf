"""The x axis users pick (issue 18.4): exact maps from the pyramid, runs aligned on epoch and on samples."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import run_cli
from gda_gl.compose import xaxis
from gda_gl.compose.scene import RunData, compose, runs_x_span
from gda_gl.compose.state import ViewState
from recorder.store import Recording, RecordingWriter

GRID = np.linspace(0.0, 2.0, 9)


def _write(path, n, steps_per_epoch, ls_evals=None, samples=None, wall=True):
    its = np.arange(n)
    phi = (1.0 + 0.1 * np.cos(its / 50.0)[:, None] + 0.2 * (GRID[None, :] - 0.7) ** 2).astype(np.float32)
    cols = {"iteration": its, "epoch": (its // steps_per_epoch).astype(np.int32), "train_loss": phi[:, 0],
            "taken_alpha": np.ones(n), "ls_evals": np.zeros(n, np.int32) if ls_evals is None else ls_evals}
    if wall:
        cols["wall_time"] = 1.7e9 + np.cumsum(0.01 + 0.005 * (its % 3))
    if samples is not None:
        cols["samples"] = samples
    with RecordingWriter(path, GRID, {"name": path.stem}, commit_interval=3600) as w:
        w.append_arrays(cols, phi)
    return path


@pytest.mark.parametrize("n", [3_000, 400_000])
def test_maps_are_exact_at_every_row_and_bucket_the_frame_draws(tmp_path, n):
    rng = np.random.default_rng(1)
    evals = rng.integers(0, 7, n).astype(np.int32)
    p = _write(tmp_path / "r.gda", n, 1000, ls_evals=evals)
    truth = np.concatenate([[0.0], np.cumsum(np.maximum(1, evals))])  # forward passes before step k
    with Recording(p) as rec:
        run = RunData.from_recording(rec)
        gmap = xaxis.global_map(run, "forward_passes")
        assert len(gmap.u) <= xaxis.GLOBAL_KNOTS + 1
        np.testing.assert_allclose(gmap.v, truth[gmap.u.astype(np.int64)])  # exact at its knots
        np.testing.assert_allclose(gmap.to_iter(gmap.to_axis([10.25, n - 3.5])), [10.25, n - 3.5])
        for k0 in (0, n // 2 + 7, n - 40):  # zoomed in: every arc starts exactly at its step's value
            st = ViewState(x_axis="forward_passes", x_range=(float(truth[k0]), float(truth[k0 + 30])))
            view, frame = compose([run], st, (60, 40, 1200, 600), (1300, 700))
            assert frame.mode == "detail"
            arcs = frame.merged("arcs")
            start = arcs.ids.a0 == 0
            xs = arcs.p0[start, 0] + frame.origin[0]
            np.testing.assert_allclose(xs, truth[arcs.ids.first[start]], rtol=0, atol=1e-6 * truth[-1])
        st = ViewState(x_axis="forward_passes", x_range=(float(truth[n // 3]), float(truth[min(n, n // 3 + 20_000)])))
        view, frame = compose([run], st, (60, 40, 1200, 600), (1300, 700))  # buckets: their starts are exact
        if frame.mode == "overview":
            rects = frame.merged("classic")
            starts = rects.rects[:, 0] + frame.origin[0]
            np.testing.assert_allclose(starts, truth[rects.ids.first], atol=1e-6 * truth[-1])


def test_epoch_axis_aligns_runs_of_different_epoch_lengths(tmp_path):
    """Two runs with 100 and 37 steps per epoch: the start of epoch 2 falls on one pixel column."""
    a = _write(tmp_path / "a.gda", 500, 100)
    b = _write(tmp_path / "b.gda", 200, 37)
    with Recording(a) as ra, Recording(b) as rb:
        runs = [RunData.from_recording(ra), RunData.from_recording(rb, color=(0.8, 0.1, 0.1, 1.0))]
        assert runs_x_span(runs, "epoch")[0] == 0.0
        view, frame = compose(runs, ViewState(x_axis="epoch", x_range=(1.8, 2.2)), (60, 40, 1000, 500), (1100, 600))
        arcs = frame.merged("arcs")
        for run_index, first_of_epoch2 in ((0, 200), (1, 74)):
            mine = (arcs.ids.run == run_index) & (arcs.ids.first == first_of_epoch2) & (arcs.ids.a0 == 0)
            x = arcs.p0[mine, 0][0] + frame.origin[0]
            assert x == pytest.approx(2.0, abs=1e-9)
            assert view.data_to_px(x, 1.0)[0] == pytest.approx(view.data_to_px(2.0, 1.0)[0])
        assert frame.epoch_marks == []  # the epoch axis's ticks are the epochs: no second row of epoch labels
        _, frame = compose(runs, ViewState(x_range=(150.0, 250.0)), (60, 40, 1000, 500), (1100, 600))
        marks = sorted((m[1], round(m[0] + frame.origin[0])) for m in frame.epoch_marks)
        assert marks == [(2, 200), (5, 185)]  # both runs' epoch starts in view (b ends at 200), one label row
        assert {m[2] for m in frame.epoch_marks} == {0}


def test_axes_a_run_cannot_provide_are_refused_in_one_line(tmp_path):
    p = _write(tmp_path / "nowall.gda", 300, 100, wall=False)
    for axis, word in (("wall_time", "wall time"), ("samples", "samples")):
        res = run_cli("render", p, "-o", tmp_path / "x.png", "--x-axis", axis)
        assert res.returncode == 2 and word in res.stderr and res.stderr.count("\n") == 1, res.stderr
    assert not (tmp_path / "x.png").exists()
    res = run_cli("render", p, "-o", tmp_path / "x.png", "--x-axis", "epoch", "--range", "1.5:2.5")
    assert res.returncode == 0, res.stderr
    assert ViewState.from_json(ViewState(x_axis="epoch").to_json()).x_axis == "epoch"
    with pytest.raises(ValueError):
        ViewState.from_json('{"x_axis": "parsecs"}')


def _train(path, batch_size, steps_per_epoch, epochs=3):
    """A real recorded SGD run on an MLP (the recorder stores each step's samples)."""
    import recorder

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = torch.randn(batch_size * steps_per_epoch, 8), torch.randint(0, 3, (batch_size * steps_per_epoch,))
    with recorder.attach(opt, model, loss_fn, path=path, probe="standard") as rec:
        for e in range(epochs):
            rec.set_epoch(e)
            for i in range(steps_per_epoch):
                sl = slice(i * batch_size, (i + 1) * batch_size)
                for half in (slice(sl.start, sl.start + batch_size // 2), slice(sl.start + batch_size // 2, sl.stop)):
                    loss_fn(model(X[half]), y[half]).backward()  # two micro-batches per step
                opt.step()
                opt.zero_grad()
    return path


def test_samples_axis_aligns_runs_with_different_batch_sizes(tmp_path):
    a = _train(tmp_path / "b32.gda", 32, 20)
    b = _train(tmp_path / "b64.gda", 64, 10)
    with Recording(a) as ra, Recording(b) as rb:
        assert set(ra.read()["samples"].tolist()) == {32} and set(rb.read()["samples"].tolist()) == {64}
        runs = [RunData.from_recording(ra), RunData.from_recording(rb)]
        assert xaxis.unavailable(runs[0], "samples") is None
        assert runs_x_span(runs, "samples") == (0.0, 3 * 640.0)
        view, frame = compose(runs, ViewState(x_axis="samples", x_range=(600.0, 700.0)), (60, 40, 1000, 500),
                              (1100, 600))
        arcs = frame.merged("arcs")
        for run_index, first_of_epoch1 in ((0, 20), (1, 10)):  # epoch 1 starts after 640 samples in both
            mine = (arcs.ids.run == run_index) & (arcs.ids.first == first_of_epoch1) & (arcs.ids.a0 == 0)
            assert arcs.p0[mine, 0][0] + frame.origin[0] == pytest.approx(640.0)


def test_normalised_runs_of_different_scales_share_one_y_axis(tmp_path):
    """Issue 18.5: a run near 1e-6 flattened beside one near 2; normalised, each is drawn over its own first
    loss and both fill the axis."""
    a = _write(tmp_path / "big.gda", 300, 100)
    small = tmp_path / "small.gda"
    its = np.arange(300)
    phi = (1e-6 * (1.0 + 0.5 * np.exp(-its / 50.0))[:, None] * (1 + 0.1 * GRID[None, :])).astype(np.float32)
    with RecordingWriter(small, GRID, {"name": "small"}) as w:
        w.append_arrays({"iteration": its, "train_loss": phi[:, 0], "taken_alpha": np.ones(300)}, phi)
    with Recording(a) as ra, Recording(small) as rs:
        runs = [RunData.from_recording(ra), RunData.from_recording(rs)]
        _, plain = compose(runs, ViewState(), (60, 40, 1000, 500), (1100, 600))
        view, frame = compose(runs, ViewState(normalize=True), (60, 40, 1000, 500), (1100, 600))
    assert frame.y_title.startswith("loss / ")
    classic = frame.merged("classic")
    for i in (0, 1):
        mine = classic.rects[classic.ids.run == i]
        top = mine[:, 3].max() + frame.origin[1]
        assert top == pytest.approx(1.0, abs=0.2)  # every run starts near 1 (its own first loss)
        span = (mine[:, 3].max() - mine[:, 1].min()) / (view.y1 - view.y0)
        assert span > 0.2, (i, span)  # and spreads over the axis, where unnormalised the small run was flat
    small_plain = plain.merged("classic").rects[plain.merged("classic").ids.run == 1]
    assert (small_plain[:, 3].max() - small_plain[:, 1].min()) / (plain.merged("classic").rects[:, 3].max()) < 1e-3
