"""``gda-gl bench``: the packaged suites write where the user says and never into the package or the repo."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys

from conftest import ROOT

from gda_gl.bench import runner

RESULTS_MD = ROOT / "benchmarks" / "RESULTS.md"


def _report_files() -> set:
    """Result-like files under the package and the repository's benchmarks/ (others may edit code meanwhile)."""
    found = set()
    for top in (ROOT / "gda_gl", ROOT / "recorder", ROOT / "benchmarks"):
        for f in top.rglob("*"):
            if f.name.startswith("gda-gl-bench") or (f.suffix in (".json", ".md") and "results" not in f.parts):
                found.add((f, f.stat().st_mtime_ns))
    return found


def test_bench_writes_into_out_and_nothing_into_the_package(tmp_path):
    out, cwd = tmp_path / "out", tmp_path / "cwd"
    cwd.mkdir()
    before = _report_files()
    env = dict(os.environ, PYTHONPATH=str(ROOT), EGL_PLATFORM="surfaceless")
    proc = subprocess.run([sys.executable, "-m", "gda_gl", "bench", "--quick", "--only", "lod", "--out", str(out)],
                          capture_output=True, text=True, cwd=str(cwd), env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "== lod" in proc.stdout and "all suites:" in proc.stdout
    assert sorted(p.name for p in out.iterdir()) == [runner.JSON_NAME, runner.MARKDOWN_NAME]
    res = json.loads((out / runner.JSON_NAME).read_text())
    assert list(res["suites"]) == ["lod"] and res["command"] == "gda-gl bench --quick --only lod"
    assert res["suites"]["lod"]["tables"]["lod"][0]["pyramid ingest s"] > 0
    md = (out / runner.MARKDOWN_NAME).read_text()
    assert md.startswith("# Benchmark results") and "## lod" in md and "tsdownsample" not in md
    assert list(cwd.iterdir()) == []
    assert _report_files() == before


def _fake_results(name: str) -> dict:
    return {"date": "2026-01-01T00:00:00", "quick": True, "command": "gda-gl bench --quick",
            "suites": {name: {"seconds": 1.0, "tables": {name: [{"a": 1.5}]}}},
            "machine": {"cpu": "test", "cores": 1}, "seconds": 1.0}


def test_bench_defaults_to_the_current_folder_and_keeps_other_suites(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runner, "run_suites", lambda names, **kw: _fake_results(list(names)[0]))
    runner.bench(["lod"], quick=True)
    runner.bench(["store"], quick=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == [runner.JSON_NAME, runner.MARKDOWN_NAME]
    md = (tmp_path / runner.MARKDOWN_NAME).read_text()
    assert md.index("## store") < md.index("## lod")  # both kept, in suite order
    assert list(json.loads((tmp_path / runner.JSON_NAME).read_text())["suites"]) == ["store"]
    assert "results: " in capsys.readouterr().out


def test_bench_cli_refuses_an_out_that_is_a_file(tmp_path, capsys):
    from gda_gl.cli import main

    f = tmp_path / "file"
    f.write_text("x")
    assert main(["bench", "--only", "lod", "--out", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_repo_peers_add_their_columns_after_the_packaged_ones():
    from benchmarks import peers

    row = {"rows x K": "1,000 x 16", "numpy min+max floor s": 1.0, "pyramid ingest s": 2.0, "ingest x floor": 2.0,
           "commit of +100 rows ms": 0.1, "levels": 3}
    peers.extend("lod", {"lod": [row]}, quick=True)
    keys = list(row)
    assert keys[keys.index("ingest x floor") + 1] == "tsdownsample MinMax (phi only) s"
    t = row["tsdownsample MinMax (phi only) s"]
    assert math.isnan(t) or t > 0
    if importlib.util.find_spec("cockpit") is None:  # installed, it would train for real: left to the benchmark
        slow = [{"preset": "(no recorder)", "alphas": 0, "s/step": 0.01, "x training": 1.0}]
        peers.extend("probe", {"training slowdown": slow}, quick=True)
        assert len(slow) == 2 and slow[1]["preset"].startswith("Cockpit") and "not installed" in slow[1]["note"]
