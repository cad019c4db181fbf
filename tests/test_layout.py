"""Package layout: import isolation, shader loader from a checkout and from a built wheel."""

from __future__ import annotations

import ast
import json
import re
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
    # every product module ships (a folder name matching .gitignore, e.g. runs/, would silently drop one)
    sources = {f.relative_to(ROOT).as_posix() for pkg in ("gda_gl", "recorder") for f in (ROOT / pkg).rglob("*.py")}
    assert sorted(sources - set(names)) == []
    # the benchmark suites ship inside the package; the repository's benchmarks/ does not
    assert "gda_gl/bench/runner.py" in names and "gda_gl/bench/scale.py" in names
    assert not [n for n in names if n.startswith("benchmarks/")]
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import gda_gl.gl.shaders as s; print(s.shader_dir()); "
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


#: What each folder of the product may not import (one-way layers, bottom to top):
#: recorder -> gda_gl.compose (numpy only) -> gda_gl.gl (draws what compose returns) -> gda_gl.session (opening,
#: following, files, error wording) -> the faces (cli, explorer, notebook; bench is run by the cli).
_FACES = ("gda_gl.cli", "gda_gl.explorer", "gda_gl.notebook", "gda_gl.bench")
_UI = ("PyQt6", "ipywidgets", "jupyter_rfb", "anywidget")
FORBIDDEN = {
    "recorder": ("gda_gl", "vispy", "OpenGL", *_UI),
    "gda_gl/compose": ("gda_gl.gl", "gda_gl.session", *_FACES, "vispy.gloo", "vispy.app", "OpenGL", *_UI),
    "gda_gl/gl": ("gda_gl.session", *_FACES, *_UI),
    "gda_gl/session": (*_FACES, *_UI),
    "gda_gl/explorer": ("gda_gl.cli", "gda_gl.notebook", "gda_gl.bench", "ipywidgets", "jupyter_rfb"),
    "gda_gl/notebook": ("gda_gl.cli", "gda_gl.bench", "PyQt6"),
}


def _package_of(f: Path) -> str:
    rel = f.relative_to(ROOT).with_suffix("")
    return ".".join(rel.parts[:-1])


def test_every_folder_imports_only_the_layers_below_it():
    """One-way layers by folder, imports inside functions included."""
    offenders = []
    for folder, banned in FORBIDDEN.items():
        files = sorted((ROOT / folder).rglob("*.py"))
        assert files, folder
        for f in files:
            bad = {m for m in _imports_with_relative(f, _package_of(f))
                   if any(m == b or m.startswith(b + ".") for b in banned)}
            if bad:
                offenders.append(f"{f.relative_to(ROOT)}: {', '.join(sorted(bad))}")
    assert offenders == []


def test_gda_gl_has_only_the_layer_folders_at_its_top():
    """No module beside the layers but the package's own entry points."""
    top = sorted(f.name for f in (ROOT / "gda_gl").glob("*.py"))
    assert top == ["__init__.py", "__main__.py"]
    folders = sorted(d.name for d in (ROOT / "gda_gl").iterdir() if (d / "__init__.py").exists())
    assert folders == ["bench", "cli", "compose", "explorer", "gl", "notebook", "session"]


def import_cycles(*packages: str) -> list[tuple[str, str]]:
    """Every import (a, b) inside ``packages`` that is part of a cycle (b imports a, directly or not).

    :mod:`grimp` builds the graph from every import statement, those inside functions included (the ones
    that used to hide cycles from the interpreter).
    """
    import grimp

    graph = grimp.build_graph(*packages, cache_dir=None)
    return sorted((a, b) for a in graph.modules for b in graph.find_modules_directly_imported_by(a)
                  if graph.chain_exists(importer=b, imported=a))


def test_no_import_cycles_in_the_product():
    assert import_cycles("gda_gl", "recorder") == []


def test_the_cycle_check_sees_imports_inside_functions(tmp_path, monkeypatch):
    pkg = tmp_path / "cyclic"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import g  # hidden from the interpreter, not from the check\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_cycles("cyclic") == [("cyclic.a", "cyclic.b"), ("cyclic.b", "cyclic.a")]


def _layout_bullets() -> list[tuple[str, str]]:
    """(folder, text) of each bullet of the README's Layout section; a nested bullet's folder is its parent's
    folder plus its own first `name/` (the text is the bullet's own, its nested bullets left out)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    bullets, stack = [], []  # stack: (indent, folder)
    for line in section.splitlines():
        stripped = line.lstrip()
        indent = len(line) - len(stripped)
        if stripped.startswith("- "):
            while stack and stack[-1][0] >= indent:
                stack.pop()
            first = re.match(r"- `([\w./]+/)`", stripped)
            own = first.group(1) if first else ""
            folder = (stack[-1][1] if stack else "") + own
            stack.append((indent, folder))
            bullets.append([folder, stripped])
        elif bullets and stripped:
            bullets[-1][1] += " " + stripped
    return [(f, t) for f, t in bullets]


def test_readme_layout_names_every_product_module_and_only_existing_ones():
    named = set()
    for folder, text in _layout_bullets():
        if folder.split("/")[0] not in ("recorder", "gda_gl"):
            continue
        named.update(folder + name for name in re.findall(r"`([\w/]+\.py)`", text))
    modules = {f.relative_to(ROOT).as_posix() for pkg in ("recorder", "gda_gl") for f in (ROOT / pkg).rglob("*.py")
               if f.name not in ("__init__.py", "__main__.py")}
    assert sorted(modules - named) == [], "modules the README's Layout section does not name"
    assert sorted(named - modules) == [], "names in the README's Layout section that are no module"
