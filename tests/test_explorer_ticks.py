"""Numbers at scale (issue 17.4, 17.5): tick labels, readouts and colour bar labels stay exact and readable.

At 1e7 iterations zoomed to one step the x ticks read "7,646,519.8000000007" and the status line
"x 7.64652e+06"; the last overview tick was clipped ("10,000,00"); a colour bar over SGD's constant
lr 0.05 read "500010e-7".  Labels here are parsed back and compared with the tick values.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from gda_gl.compose.ticks import colorbar_labels, format_position, format_ticks, linear_ticks

FIXED = re.compile(r"-?\d{1,3}(,\d{3})*(\.\d+)?")


def _value(label: str) -> float:
    return float(label.replace(",", ""))


def _check_axis(lo: float, hi: float, target: int = 7) -> list[str]:
    ticks = linear_ticks(lo, hi, target)
    labels = format_ticks(ticks)
    assert len(ticks) >= 2 and len(set(labels)) == len(labels), labels
    step = float(np.min(np.diff(ticks)))
    decimals = {len(s.split(".")[1]) if "." in s else 0 for s in labels}
    assert len(decimals) == 1, labels                                   # one style per axis
    for v, s in zip(ticks, labels):
        assert FIXED.fullmatch(s), labels                               # plain, grouped, no exponent
        assert abs(_value(s) - v) <= 1e-3 * step, (s, v)                # the label is the tick's value
    # no more decimals than the step needs: 0.2 -> 1, 0.0002 -> 4
    assert decimals.pop() <= max(0, -int(np.floor(np.log10(step))) + 1), labels
    return labels


@pytest.mark.parametrize("lo,hi", [(7646519.15, 7646520.35), (7646519.0, 7646523.0), (1e9 + 0.5, 1e9 + 0.501),
                                   (1e9, 1e9 + 1.2), (1e9 - 2.0, 1e9 + 3.0), (123456789.1234, 123456789.1244)])
def test_x_ticks_at_1e7_and_1e9_iterations_are_exact_and_readable(lo, hi):
    labels = _check_axis(lo, hi)
    assert not any(len(s.split(".")[1]) > 4 for s in labels if "." in s) or hi - lo < 0.01


def test_one_step_at_1e7_has_one_decimal():
    assert _check_axis(7646519.15, 7646520.35) == ["7,646,519.2", "7,646,519.4", "7,646,519.6", "7,646,519.8",
                                                   "7,646,520.0", "7,646,520.2"]


@pytest.mark.parametrize("x,width_px_data,expect", [
    (7646519.812345678, 1e-3, "7,646,519.812"),       # 1 step over 1000 px: 3 decimals
    (749548.0, 1.0, "749,548"),                        # every digit of a large integer position
    (749548.25, 0.01, "749,548.25"),
    (1e9 + 0.0004567, 1e-6, "1,000,000,000.000457"),   # a 1e-3-wide view at 1e9: 6 decimals
    (12.5, 0.3, "12.5"),
])
def test_position_readout_keeps_the_digits_a_pixel_resolves(x, width_px_data, expect):
    assert format_position(x, width_px_data) == expect


def test_readout_in_the_status_line_is_exact_at_scale():
    """The status line's x: not '7.64652e+06' and not '749548' without its fraction."""
    from gda_gl.explorer.picking import hover_text

    info = {"x": 7646519.8123, "loss": 1.25, "x_res": 1e-3}
    assert "x 7,646,519.812," in hover_text(info)
    info = {"x": 749548.4, "loss": 1.25, "x_res": 0.1}
    assert "x 749,548.4," in hover_text(info)


@pytest.mark.parametrize("lo,hi", [(0.05, 0.05), (0.05 * (1 - 1e-7), 0.05 * (1 + 1e-7)), (0.0499999, 0.0500011),
                                   (1e-8, 1e-8), (0.0, 0.0), (-3.0, -3.0), (1234567.0, 1234567.5)])
def test_colour_bar_labels_of_constant_and_near_constant_statistics(lo, hi):
    """Issue 17.5: a colour bar over SGD's lr 0.05 read '500010e-7'."""
    out = colorbar_labels(lo, hi)
    assert out, (lo, hi)
    for f, label in out:
        assert 0.0 <= f <= 1.0
        assert "e" not in label or re.fullmatch(r"-?\d(\.\d+)?e-?\d+", label), label
        assert len(label.replace(",", "")) <= 12, label
        v = float(label.replace(",", ""))
        tol = 1e-6 * max(abs(lo), abs(hi), 1e-300)
        assert lo - tol <= v <= hi + tol, (label, lo, hi)
    if hi - lo <= 1e-6 * max(abs(lo), abs(hi)) or hi == lo:
        assert len(out) == 1 and float(out[0][1].replace(",", "")) == pytest.approx(0.5 * (lo + hi), rel=1e-6)
    if (lo, hi) == (0.05, 0.05):
        assert out == [(0.5, "0.05")]


def test_colour_bar_labels_of_a_plain_range_are_its_ticks():
    out = colorbar_labels(0.0, 1.0)
    assert [s for _, s in out] == ["0", "0.2", "0.4", "0.6", "0.8", "1.0"]
    assert [f for f, _ in out] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])


def test_a_label_at_the_edge_is_moved_inside_not_clipped():
    """The last overview tick ('10,000,000' centred on the plot's right end) was cut to '10,000,00'."""
    from gda_gl.compose.textlayer import TextLayer

    def ink(x):
        t = TextLayer(300, 60)
        t.add("10,000,000", x, 40, "mt", 12)
        return t.rasterize()[..., 3]

    middle, edge = ink(150.0), ink(295.0)
    assert (edge > 0).sum() == (middle > 0).sum()          # every pixel of the label is there
    assert not (edge[:, -1] > 0).any()                      # and it does not touch the border
    ref = TextLayer(300, 60)
    ref.add("10,000,000", 295.0, 40, "mt", 12)
    assert np.abs(ref.rasterize_reference()[..., 3].astype(int) - edge.astype(int)).max() <= 1


@pytest.mark.gl
def test_last_overview_tick_of_a_run_ending_at_1e7_is_whole(tmp_path):
    from gda_gl.gl.export import render_image
    from gda_gl.compose.scene import RunData
    from gda_gl.compose.state import ViewState
    from recorder.store import Recording, RecordingWriter

    grid = np.linspace(0.0, 2.0, 8)
    p = tmp_path / "big.gda"
    with RecordingWriter(p, grid, {"name": "big"}, overwrite=True) as w:
        for i in range(9_999_900, 10_000_000):
            w.append(i, 1.0 + 0.1 * (grid - 1.0) ** 2 * (1 + (i % 7) / 7), train_loss=1.1, taken_alpha=1.0)
    with Recording(p) as rec:
        run = RunData(rec.read(), name="big")
    img = render_image([run], ViewState(), size=(420, 260))
    dark = np.all(img[..., :3] < 120, axis=2)
    assert not dark[:, -2:].any()                 # no label runs into the right border
    h = img.shape[0]
    assert dark[int(0.76 * h):int(0.9 * h), -80:].sum() > 30   # the last tick's label is drawn near it


@pytest.mark.gl
def test_colour_bar_over_a_constant_lr_says_its_value(tmp_path, monkeypatch):
    """Issue 17.5, drawn: colour by SGD's constant lr 0.05 labels the bar '0.05', not '500010e-7'."""
    from gda_gl.compose import textlayer
    from gda_gl.gl.export import render_image
    from gda_gl.compose.scene import RunData
    from gda_gl.compose.state import ViewState
    from recorder.store import Recording, RecordingWriter

    grid = np.linspace(0.0, 2.0, 8)
    p = tmp_path / "sgd.gda"
    with RecordingWriter(p, grid, {"name": "sgd"}, overwrite=True) as w:
        for i in range(80):
            w.append(i, 1.0 + 0.1 * (grid - 1.0) ** 2, train_loss=1.1, taken_alpha=1.0, lr=np.float32(0.05))
    with Recording(p) as rec:
        run = RunData(rec.read(), name="sgd")
    labels = []
    orig = textlayer.TextLayer.add

    def spy(self, text, *a, **kw):
        labels.append(str(text))
        return orig(self, text, *a, **kw)

    monkeypatch.setattr(textlayer.TextLayer, "add", spy)
    render_image([run], ViewState(color_by="lr"), size=(520, 300))
    assert "0.05" in labels, labels
    assert not any(re.fullmatch(r"-?\d{4,}e-?\d+", s) for s in labels), labels
