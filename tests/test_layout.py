"""Package layout: import isolation, shader loader from a checkout and from a built wheel."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from conftest import ROOT


def test_import_recorder_does_not_import_the_viewer():
    code = ("import sys, json, recorder, recorder.store, recorder.schema; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('gda_gl', 'vispy', 'OpenGL', 'torch'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), check=True)
    assert json.loads(out.stdout) == []  # not even torch until a torch-facing name is used


def test_recorder_torch_side_does_not_import_the_viewer():
    code = ("import sys, json, recorder; recorder.attach; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('gda_gl', 'vispy', 'OpenGL'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(ROOT), check=True)
    assert json.loads(out.stdout) == []


def test_wheel_ships_shaders_and_loader_finds_them(tmp_path):
    pytest.importorskip("hatchling")
    res = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                          "-w", str(tmp_path), str(ROOT)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    wheel = next(tmp_path.glob("gda_gl-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shaders = sorted(n for n in names if n.startswith("gda_gl/shaders/") and n.endswith(".glsl"))
    expected = sorted(f"gda_gl/shaders/{p.name}" for p in (ROOT / "shaders").glob("*.glsl"))
    assert shaders == expected and shaders
    assert any(n.startswith("recorder/") for n in names)
    # the benchmark suites ship inside the package; the repository's benchmarks/ does not
    assert "gda_gl/bench/runner.py" in names and "gda_gl/bench/scale.py" in names
    assert not [n for n in names if n.startswith("benchmarks/")]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import gda_gl.shaders as s; print(s.shader_dir()); "
            "print(len(s.build('view.glsl')))")
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); {code}"],
                         capture_output=True, text=True, cwd=str(tmp_path), check=True)
    found, length = out.stdout.split()
    assert Path(found) == site / "gda_gl" / "shaders"
    assert int(length) > 0
    out = subprocess.run([sys.executable, "-I", "-c", f"import sys; sys.path.insert(0, {str(site)!r}); "
                          "import gda_gl.bench.runner as r; print(r.__file__)"],
                         capture_output=True, text=True, cwd=str(tmp_path), check=True)
    assert Path(out.stdout.strip()).parent == site / "gda_gl" / "bench"


def _imported_modules(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (relative imports left out)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_product_module_imports_the_repository_benchmarks():
    offenders = []
    for pkg in ("gda_gl", "recorder"):
        for f in sorted((ROOT / pkg).rglob("*.py")):
            bad = {m for m in _imported_modules(f) if m.split(".")[0] == "benchmarks"}
            if bad:
                offenders.append(f"{f.relative_to(ROOT)}: {', '.join(sorted(bad))}")
    assert offenders == []


def _imports_with_relative(path: Path, package: str) -> set[str]:
    """Every module a file imports, relative imports resolved against its package."""
    names = set()
    parts = package.split(".")
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = parts[:len(parts) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            names.add(mod)
            names.update(f"{mod}.{a.name}" for a in node.names)
    return names


def test_the_engine_imports_no_ui_and_the_recorder_no_engine():
    """One-way layers: recorder -> engine (gda_gl: compose, render, GL) -> UI (explorer, notebook, Qt)."""
    ui = ("gda_gl.explorer", "gda_gl.notebook", "PyQt6", "ipywidgets", "jupyter_rfb")
    ui_side = {"cli.py", "demo.py", "__main__.py"}  # entry points that start the UI
    offenders = []
    for f in sorted((ROOT / "gda_gl").glob("*.py")) + sorted((ROOT / "gda_gl" / "gl").glob("*.py")):
        if f.name in ui_side:
            continue
        pkg = "gda_gl.gl" if f.parent.name == "gl" else "gda_gl"
        bad = {m for m in _imports_with_relative(f, pkg) if m.startswith(ui)}
        if bad:
            offenders.append(f"{f.relative_to(ROOT)}: {', '.join(sorted(bad))}")
    for f in sorted((ROOT / "recorder").rglob("*.py")):
        bad = {m for m in _imports_with_relative(f, "recorder") if m.split(".")[0] in ("gda_gl", "vispy", "OpenGL")}
        if bad:
            offenders.append(f"{f.relative_to(ROOT)}: {', '.join(sorted(bad))}")
    assert offenders == []
