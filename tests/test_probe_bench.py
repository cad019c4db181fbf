"""The probe benchmark's bookkeeping (gda_gl/bench/probe_cost.py): a busy machine gives no figure."""

from __future__ import annotations

import pytest

from gda_gl.bench.probe_cost import TIMED, _timing_cells, config_of


def _pairs():
    # (plain, preset) per round, each (wall s, CPU s, probe forwards, s inside the probe) per step;
    # wall ratios 2.5, 2.36, 2.4: median 2.4
    return [((0.010, 0.010, 0, 0.0), (0.025, 0.024, 5.0, 0.0120)),
            ((0.011, 0.010, 0, 0.0), (0.026, 0.025, 5.0, 0.0125)),
            ((0.010, 0.011, 0, 0.0), (0.024, 0.024, 5.0, 0.0118))]


def test_ratios_and_floors_from_the_pairs(monkeypatch):
    monkeypatch.delenv("GDA_GL_BENCH_BUSY_OK", raising=False)
    fwd = [(0.002, 0.002)] * 3
    c = _timing_cells("valley", _pairs(), fwd, busy=False, load="0.2..0.3")
    assert c["fwd/step"] == 5.0 and c["x training"] == pytest.approx(2.4)
    assert c["range"] == "2.36..2.50"
    assert c["probe / fwd floor"] == pytest.approx(0.0120 / (5 * 0.002))
    assert c["recorder / fwd floor"] == pytest.approx(0.015 / (5 * 0.002))
    assert c["probe beyond fwd"] == "17%" and "flag" not in c


def test_a_busy_machine_gives_no_figure_unless_asked(monkeypatch):
    monkeypatch.delenv("GDA_GL_BENCH_BUSY_OK", raising=False)
    c = _timing_cells("valley", _pairs(), [(0.002, 0.002)], busy=True, load="3.1..4.0")
    assert c["x training"] == "busy (load 3.1..4.0)" and "fwd/step" not in c
    monkeypatch.setenv("GDA_GL_BENCH_BUSY_OK", "1")
    c = _timing_cells("valley", _pairs(), [(0.002, 0.002)], busy=True, load="3.1..4.0")
    assert c["x training"] == pytest.approx(2.4) and c["flag"] == "taken under load 3.1..4.0"


def test_timed_labels_are_valid_configs():
    for label in TIMED:
        cfg = config_of(label)
        assert cfg.every >= 1
    assert config_of("valley every=4").every == 4 and config_of("valley sub_batch=32").sub_batch == 32
