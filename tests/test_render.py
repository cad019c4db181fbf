"""Offscreen GL pixel tests on synthetic recordings with known parabolic phi_k (EGL + Mesa, CPU)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from conftest import parabola_phi, run_cli, write_synthetic
from gda_gl.compose.lod import envelope_reference
from gda_gl.gl.render import CurveRenderer
from gda_gl.compose.layout import Layout
from gda_gl.compose.scene import RunData, transform_y
from recorder import pyramid
from gda_gl.compose.state import ViewState
from recorder.store import Iterations, Recording, RecordingWriter

pytestmark = pytest.mark.gl

W, H = 640, 400
GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("GDA_GL_REGEN_GOLDEN") == "1"


@pytest.fixture(scope="module")
def target():
    from gda_gl.gl.export import Offscreen

    t = Offscreen(W, H)
    with t:
        r = CurveRenderer()
    yield t, r
    t.close()


def draw(target, runs, state):
    t, r = target
    with t:
        lay = Layout.for_size(W, H, colorbar=state.color_by != "none")
        r.draw(runs, state, lay)
    img = t.read()[..., :3].astype(np.int16)
    v = r.last_view
    return img, (v.x_range, v.y_range), lay


def to_px(lay, view, x, y, log=False):
    """Pixel column and image row (top-down) of data point(s) (x, y)."""
    (x0, x1), (y0, y1) = view
    px, py, pw, ph = lay.plot
    X = px + (np.asarray(x, np.float64) - x0) * pw / (x1 - x0)
    Y = py + (transform_y(np.asarray(y), log) - y0) * ph / (y1 - y0)
    return X, H - Y


def mask_color(img, rgb, tol=40):
    return np.all(np.abs(img - np.asarray(rgb)[None, None, :]) <= tol, axis=2)


def run_from(n=12, k=17, **kw):
    grid = np.linspace(0, 2, k)
    phi = parabola_phi(n, grid, **kw)
    cols = {"iteration": np.arange(n), "taken_alpha": np.ones(n), "batch": np.zeros(n, np.int64),
            "train_loss": phi[:, 0]}
    return grid, phi, cols


def make_run(grid, phi, cols, trials=None, name="synthetic", first=0):
    n = len(phi)
    cols = dict(cols)
    cols["iteration"] = np.arange(n) + first
    from recorder import schema

    full = {nm: np.asarray(cols.get(nm, np.zeros(n)), dt) for nm, dt in schema.ITER_DTYPES.items()}
    if trials is None:
        counts = np.zeros(n, np.int64)
        tr = {nm: np.empty(0, dt) for nm, dt in schema.TRIAL_DTYPES.items()}
    else:
        counts, tr = trials
    off = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=off[1:])
    return RunData(Iterations(grid, full, phi.astype(np.float32), off, tr), name=name)


BLUE = (31, 120, 181)  # RUN_COLORS[0] * 255


def test_curve_covers_expected_pixels_within_1px(target):
    grid, phi, cols = run_from(n=6, curvature=0.6)
    run = make_run(grid, phi, cols)
    img, view, lay = draw(target, [run], ViewState(show_rules=False, show_loose=False, x_range=(0, 6)))
    ink = mask_color(img, BLUE, 60)
    # every sample of the drawn part [0, 1] lies on inked pixels (within 1 px)
    for k in range(6):
        for j in range(0, 9):
            X, Yr = to_px(lay, view, k + grid[j], phi[k, j])
            c, r = int(np.floor(X)), int(np.floor(Yr))
            assert ink[r - 1:r + 2, c - 1:c + 2].any(), (k, j)
    # and every inked pixel in the plot lies within 2 px of the expected curve
    xs = np.concatenate([k + np.linspace(0, 1, 400) for k in range(6)])
    ys = np.concatenate([np.interp(np.linspace(0, 1, 400), grid, phi[k]) for k in range(6)])
    ex, ey = to_px(lay, view, xs, ys)
    rows, cols_ = np.nonzero(ink)
    px, py, pw, ph = lay.plot
    inside = (cols_ > px + 1) & (cols_ < px + pw - 1)
    d = np.min(np.hypot(cols_[inside, None] + 0.5 - ex[None, :], rows[inside, None] + 0.5 - ey[None, :]), axis=1)
    assert d.max() <= 2.5


def test_minibatch_jump_is_not_bridged(target):
    grid, phi, cols = run_from(n=8, batch_every=4, curvature=0.3)
    cols["batch"] = np.arange(8) // 4
    run = make_run(grid, phi, cols)
    img, view, lay = draw(target, [run], ViewState(show_rules=False, show_loose=False))
    ink = mask_color(img, BLUE, 60)
    # at x = 4 the curve jumps from phi_3(1) down/up to phi_4(0) (+0.3): nothing in between
    X, y_end = to_px(lay, view, 4.0, phi[3, 8])
    _, y_start = to_px(lay, view, 4.0, phi[4, 0])
    lo, hi = sorted((y_end, y_start))
    assert hi - lo > 30
    c = int(np.floor(X))
    # a bridge would be a vertical line through x = 4; segment 4 itself starts there and falls steeply to the
    # right, so look just left of the jump, where only a bridge could put ink between the two levels
    assert not ink[int(lo) + 4:int(hi) - 4, c - 2:c].any()
    # within a batch (x = 2) the segments meet: ink right at the junction
    X2, y2 = to_px(lay, view, 2.0, phi[2, 0])
    assert ink[int(y2) - 1:int(y2) + 2, int(X2) - 1:int(X2) + 2].any()


def test_loose_ends_trials_and_rules_are_drawn(target):
    grid, phi, cols = run_from(n=4, curvature=0.8)
    cols["batch"] = np.array([0, 0, 1, 1])
    counts = np.array([3, 0, 0, 2])
    tr = {"alpha": np.array([0.5, 1.0, 1.75, 0.25, 1.5]),
          "loss": np.concatenate([np.interp([0.5, 1.0, 1.75], grid, phi[0]), np.interp([0.25, 1.5], grid, phi[3])]),
          "slope": np.full(5, np.nan), "order": np.array([0, 1, 2, 0, 1], np.int32)}
    run = make_run(grid, phi, cols, trials=(counts, tr))
    img, view, lay = draw(target, [run], ViewState(x_range=(0, 6), y_range=(phi.min() - 0.1, phi.max() + 0.1)))
    # the loose end of the last iteration dangles past x = 4 (nothing else is drawn there), lighter than the curve
    X, Y = to_px(lay, view, 3 + 1.25, np.interp(1.25, grid, phi[3]))
    patch = img[int(Y) - 3:int(Y) + 4, int(X) - 3:int(X) + 4]
    light = np.all((patch > 120) & (patch < 250), axis=2) & (patch[..., 2] > patch[..., 0] + 20)
    assert light.any()
    # trial markers: dark discs inside [0, 1], orange triangles beyond
    X, Y = to_px(lay, view, 0.5, tr["loss"][0])
    assert (img[int(Y) - 2:int(Y) + 3, int(X) - 2:int(X) + 3].sum(axis=2) < 200).any()
    X, Y = to_px(lay, view, 1.75, tr["loss"][2])
    assert mask_color(img[int(Y) - 3:int(Y) + 4, int(X) - 3:int(X) + 4], (242, 140, 25), 50).any()
    # the batch change at iteration 2 is a faint vertical rule over the whole plot height
    X, _ = to_px(lay, view, 2.0, 0)
    px, py, pw, ph = lay.plot
    column = img[H - py - ph + 5:H - py - 5, int(X)]
    assert np.mean(np.all(column < 245, axis=1)) > 0.9
    X, _ = to_px(lay, view, 1.0, 0)  # no batch change at 1
    column = img[H - py - ph + 5:H - py - 5, int(np.floor(X)) + 3]
    assert np.mean(np.all(column < 245, axis=1)) < 0.5


def test_log_scale_places_decades(target):
    n = 5
    grid = np.linspace(0, 2, 5)
    vals = 10.0 ** np.arange(-3, 2)  # 1e-3 .. 1e1, one per iteration, flat lines
    phi = np.repeat(vals[:, None], 5, axis=1)
    run = make_run(grid, phi, {"taken_alpha": np.ones(n), "train_loss": vals})
    img, view, lay = draw(target, [run], ViewState(log_y=True, show_loose=False, y_range=(1e-4, 1e2)))
    ink = mask_color(img, BLUE, 60)
    rows = []
    for k in range(n):
        X, _ = to_px(lay, view, k + 0.5, 1.0)
        rr = np.nonzero(ink[:, int(X)])[0]
        rows.append(rr.mean())
    spacing = np.diff(rows)
    px, py, pw, ph = lay.plot
    assert np.allclose(spacing, -ph / 6, atol=1.0)  # 6 decades over the plot height, one per iteration
    _, Y = to_px(lay, view, 0, 1e-2, log=True)
    assert abs(rows[1] - Y) <= 1.0


def test_nan_leaves_a_gap_and_a_flag(target):
    grid, phi, cols = run_from(n=3, curvature=0.5)
    phi[1, 3:6] = np.nan  # alphas 0.375 .. 0.625 of iteration 1
    phi[2, 4] = np.inf
    run = make_run(grid, phi, cols)
    img, view, lay = draw(target, [run], ViewState(show_loose=False, show_rules=False))
    ink = mask_color(img, BLUE, 60)
    X, _ = to_px(lay, view, 1 + 0.5, 0)
    px, py, pw, ph = lay.plot
    assert not ink[H - py - ph:H - py, int(X) - 2:int(X) + 3].any()  # the gap
    X0, _ = to_px(lay, view, 1 + 0.125, 0)
    assert ink[H - py - ph:H - py, int(X0)].any()  # curve on both sides of it
    red = mask_color(img, (217, 13, 13), 50)
    top = red[H - py - ph:H - py - ph + 14]
    assert top.any()  # non-finite flags on the top edge
    flag_cols = np.unique(np.nonzero(top)[1])
    for x in (1 + 0.5, 2 + 0.5):
        X, _ = to_px(lay, view, x, 0)
        assert np.min(np.abs(flag_cols - X)) <= 4


def test_lod_overview_matches_brute_force_and_keeps_a_spike(target):
    rng = np.random.default_rng(0)
    n = 50_000
    grid = np.linspace(0, 2, 9)
    base = 1.0 + 0.5 * np.exp(-np.arange(n) / 8000.0) + 0.05 * rng.random(n)
    phi = base[:, None] + 0.02 * (grid[None, :] - 0.8) ** 2
    phi[31_337] += 3.0  # one spike in one iteration
    run = make_run(grid, phi, {"taken_alpha": np.ones(n), "train_loss": base})
    img, view, lay = draw(target, [run], ViewState(show_rules=False))
    assert run.windows.choose_level(0, n, lay.plot[2]) is not None  # drawn from the pyramid
    px, py, pw, ph = lay.plot
    plot = img[H - py - ph + 1:H - py - 1, px + 1:px + pw - 1]
    ink = np.any(plot < 215, axis=2)  # the envelope and curve, not the light grey grid lines
    (x0, x1), (y0, y1) = view
    classic = pyramid.classic_values(grid, run.data.phi, run.data["train_loss"])
    env_lo, env_hi = pyramid.row_envelope(grid, run.data.phi, run.data["taken_alpha"], classic)
    edges, lo, hi = envelope_reference(np.arange(n), env_lo, env_hi, x0, x1, pw)
    checked = 0
    off = H - py - ph + 1
    for c in range(3, pw - 4):
        if not np.isfinite(lo[c]):
            continue
        near = [np.nonzero(ink[:, cc - 1])[0] for cc in (c - 1, c, c + 1)]
        if not all(len(r) for r in near):
            continue
        top, bottom = off + min(r.min() for r in near), off + max(r.max() for r in near)
        _, ylo = to_px(lay, view, 0, lo[c])
        _, yhi = to_px(lay, view, 0, hi[c])
        # the brute-force extent of column c is covered within 1 px of coverage ...
        assert top <= yhi + 1.5 and bottom >= ylo - 1.5, c
        # ... and column c draws nothing beyond its neighbours' brute-force extent
        own = near[1]
        _, ylo_n = to_px(lay, view, 0, np.nanmin(lo[c - 1:c + 2]))
        _, yhi_n = to_px(lay, view, 0, np.nanmax(hi[c - 1:c + 2]))
        assert off + own.min() >= yhi_n - 1.5 - 2 and off + own.max() <= ylo_n + 1.5 + 2, c
        checked += 1
    assert checked > pw * 0.9
    X, Y = to_px(lay, view, 31_337.5, phi[31_337].max())
    c = int(X) - (px + 1)
    assert ink[int(Y) - (H - py - ph + 1) - 2:int(Y) - (H - py - ph + 1) + 3, c - 1:c + 2].any()  # spike visible


def test_far_out_iteration_renders_as_crisply_as_near(target):
    grid, phi, cols = run_from(n=3, curvature=0.7)
    near = make_run(grid, phi, cols, first=10)
    far = make_run(grid, phi, cols, first=10_000_000)
    a, view_a, lay = draw(target, [near], ViewState(x_range=(10, 13.5), show_rules=False))
    b, view_b, _ = draw(target, [far], ViewState(x_range=(10_000_000, 10_000_003.5), show_rules=False))
    px, py, pw, ph = lay.plot
    crop = (slice(H - py - ph, H - py), slice(px, px + pw))
    diff = np.abs(a[crop] - b[crop])
    assert diff.max() <= 8, diff.max()  # same picture: positions are relative to the view origin
    assert mask_color(a[crop], BLUE, 60).sum() > 200


def test_single_iteration_and_live_recording(target, tmp_path):
    grid, phi, cols = run_from(n=1)
    img, view, lay = draw(target, [make_run(grid, phi, cols)], ViewState())
    assert mask_color(img, BLUE, 60).sum() > 50
    p = tmp_path / "live.gda"
    w = RecordingWriter(p, grid, {"name": "live"})
    try:
        for i in range(5):
            w.append(i, phi[0] * (1 - 0.1 * i), taken_alpha=1.0)
        w.flush()
        data = Recording(p).read()  # while the writer is still open
        img, view, lay = draw(target, [RunData(data, name="live")], ViewState())
        assert mask_color(img, BLUE, 60).sum() > 100
    finally:
        w.close()


def test_extreme_and_nonfinite_values_do_not_break_the_frame(target):
    n = 40
    grid = np.linspace(0, 2, 9)
    phi = np.logspace(8, -8, n)[:, None] * (1 + 0.1 * grid[None, :])
    phi[5] = np.inf
    phi[6] = -np.inf
    phi[7] = np.nan
    phi[8, 3] = 0.0  # zero has no logarithm: a gap in log scale
    run = make_run(grid, phi, {"taken_alpha": np.ones(n), "train_loss": phi[:, 0]})
    for log in (True, False):
        img, view, lay = draw(target, [run], ViewState(log_y=log))
        assert np.isfinite(view[1]).all() and view[1][1] > view[1][0]
        assert mask_color(img, BLUE, 60).sum() > 100
    from vispy import gloo

    with target[0]:
        assert gloo.gl.glGetError() == 0


def test_golden_overview(target, tmp_path):
    grid, phi, cols = run_from(n=30, batch_every=10, curvature=0.4)
    cols["batch"] = np.arange(30) // 10
    counts = np.full(30, 1)
    tr = {"alpha": np.full(30, 1.4), "loss": phi[:, 11].astype(np.float64), "slope": np.full(30, np.nan),
          "order": np.zeros(30, np.int32)}
    run = make_run(grid, phi, cols, trials=(counts, tr))
    img, _, _ = draw(target, [run], ViewState(color_by="efficiency"))
    from PIL import Image

    small = np.asarray(Image.fromarray(img.astype(np.uint8)).resize((320, 200), Image.BILINEAR)).astype(np.int16)
    path = GOLDEN / "overview-320x200.png"
    if REGEN or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        Image.fromarray(small.astype(np.uint8)).save(path)
        if not REGEN:
            pytest.skip("golden image created; rerun to compare (GDA_GL_REGEN_GOLDEN=1 regenerates)")
    gold = np.asarray(Image.open(path)).astype(np.int16)[..., :3]
    diff = np.abs(small - gold)
    assert diff.mean() < 2.0 and np.mean(diff.max(axis=2) > 48) < 0.01, (diff.mean(), np.mean(diff.max(axis=2) > 48))


def test_render_cli_png_and_detail(tmp_path):
    p = write_synthetic(tmp_path / "s.gda", n=120, batch_every=20)
    out = tmp_path / "o.png"
    res = run_cli("render", p, "-o", out, "--size", "400x250", "--range", "10:30", "--color-by", "step_class")
    assert res.returncode == 0, res.stderr
    from PIL import Image

    im = Image.open(out)
    assert im.size == (400, 250)
    res = run_cli("render", p, "-o", tmp_path / "d.png", "--size", "800x400", "--detail", "20")
    assert res.returncode == 0, res.stderr
    arr = np.asarray(Image.open(tmp_path / "d.png"))
    assert (mask_color(arr.astype(np.int16), (242, 140, 25), 40)).sum() > 5  # the loose trial at alpha 1.6
    for bad, msg in ((["--detail", "5000"], "iteration 5000 is not in the recording"),
                     (["--size", "10x10"], "--size"), (["--range", "9:3"], "--range"),
                     (["--highlight", "bogus"], "unknown filter")):
        res = run_cli("render", p, "-o", tmp_path / "x.png", *bad)
        assert res.returncode == 2 and msg in res.stderr and "Traceback" not in res.stderr, res.stderr


def test_live_extension_equals_a_fresh_build():
    """RunData.extend (in place, incremental) must give exactly what building from all rows gives."""
    rng = np.random.default_rng(1)
    n, k = 3000, 9
    grid = np.linspace(0, 2, k)
    phi = (1 + rng.random((n, k))).astype(np.float32)
    phi[1234, 3] = np.inf
    cols = {"taken_alpha": np.ones(n), "train_loss": phi[:, 0], "batch": np.arange(n) // 7,
            "epoch": np.arange(n) // 1000, "status": np.where(np.arange(n) == 1234, 1, 0)}
    counts = rng.integers(0, 3, n)
    m = int(counts.sum())
    tr = {"alpha": rng.random(m) * 2, "loss": rng.random(m), "slope": np.full(m, np.nan),
          "order": np.zeros(m, np.int32)}
    full = make_run(grid, phi, cols, trials=(counts, tr))
    live = RunData(full.data.slice_rows(0, 100), name="live")
    for a, b in ((100, 101), (101, 700), (700, 2999), (2999, 3000)):
        live.extend(full.data.slice_rows(a, b))
    for name in full.data.columns:
        np.testing.assert_array_equal(live.data[name], full.data[name])
    np.testing.assert_array_equal(live.data.phi, full.data.phi)
    np.testing.assert_array_equal(live.data.trial_offsets, full.data.trial_offsets)
    np.testing.assert_array_equal(live.data.trials["alpha"], full.data.trials["alpha"])
    assert live.windows.chunks.counts() == full.windows.chunks.counts()
    for level, count in enumerate(full.windows.chunks.counts()):
        a, b = live.windows.chunks.buckets(level, 0, count), full.windows.chunks.buckets(level, 0, count)
        for name in a:
            if name.endswith(":sum"):
                np.testing.assert_allclose(a[name], b[name], rtol=1e-12)
            else:
                np.testing.assert_array_equal(a[name], b[name])


def test_text_layer_cached_labels_equal_the_plain_pillow_twin():
    from gda_gl.compose.textlayer import TextLayer

    t = TextLayer(640, 360)
    for i in range(12):
        t.add(f"{i * 12345:,}", 40 + i * 50, 30, "mt", 11)
    t.add("loss (log)", 12, 180, "mm", 12, rotate=True)
    t.add("title", 320, 355, "mt", 13, bold=True)
    t.add("right", 60, 200, "rm", 11, color=(200, 30, 30, 255))
    t.add("over", 62, 200, "lm", 11, color=(30, 30, 200, 128))  # overlapping, translucent
    t.add("clipped at the edge", 630, 100, "lm", 11)
    a, b = t.rasterize(), t.rasterize_reference()
    assert (b[..., 3] > 0).sum() > 1000
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 2


def test_ema_smoothing_equals_a_plain_loop_and_is_drawn(target):
    from gda_gl.compose.scene import compose, ema

    rng = np.random.default_rng(3)
    v = rng.random(50)
    v[7] = np.nan
    w = rng.integers(1, 5, 50).astype(float)
    # independent truth: TensorBoard's debiased EMA written out per row (a point of weight n = n rows)
    acc, norm, ref = 0.0, 0.0, []
    for x, n in zip(v, w):
        if np.isnan(x):
            ref.append(np.nan)
            continue
        for _ in range(int(n)):
            acc, norm = 0.9 * acc + 0.1 * x, 0.9 * norm + 0.1
        ref.append(acc / norm)
    np.testing.assert_allclose(ema(v, w, 0.9), ref, rtol=1e-12)
    grid, phi, cols = run_from(n=300)
    run = make_run(grid, phi, cols)
    for x_range in (None, (100.0, 110.0)):  # rows drawn as buckets, and arcs
        _, frame = compose([run], ViewState(smoothing=0.9, x_range=x_range), (78, 58, 1000, 600), (1200, 700))
        assert frame.count("smooth") > 5
        _, frame = compose([run], ViewState(smoothing=0.0, x_range=x_range), (78, 58, 1000, 600), (1200, 700))
        assert frame.count("smooth") == 0


def test_a_dense_alpha_grid_is_thinned_to_the_pixels_and_stays_on_the_curve():
    """Issue 21.3: a frame's work along alpha is bounded by pixels (65,536 alphas made render run out of
    memory); the drawn samples are grid samples, the accepted step's end among them."""
    from gda_gl.compose.scene import SAMPLES_PER_PX, compose, drawn_columns

    k = 8193
    grid = np.linspace(0.0, 2.0, k)
    phi = parabola_phi(30, grid)
    cols = {"iteration": np.arange(30), "taken_alpha": np.ones(30), "train_loss": phi[:, 0]}
    run = make_run(grid, phi, cols)
    _, frame = compose([run], ViewState(x_range=(10.0, 13.0)), (78, 58, 300, 300), (400, 400))
    arcs = frame.merged("arcs")
    rows = len(np.unique(arcs.ids.first))
    assert len(arcs) + len(frame.merged("beyond")) <= rows * (SAMPLES_PER_PX * 100 * 2 + 8)
    idx = np.searchsorted(grid, arcs.ids.a1)
    np.testing.assert_array_equal(grid[idx], arcs.ids.a1)  # endpoints are grid alphas
    for j in range(0, len(arcs), 97):
        r = int(arcs.ids.first[j])
        assert arcs.p1[j, 1] + frame.origin[1] == pytest.approx(float(phi[r, idx[j]]), rel=1e-6)
    assert np.isclose(arcs.ids.a1.max(), 1.0)  # the arc ends at the accepted step
    assert len(drawn_columns(grid, np.ones(1), 2000.0)) == k  # wide enough: every sample
