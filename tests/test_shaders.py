"""Shader sources as text, without GL: the loader, includes, strict templating."""

from __future__ import annotations

import re

import pytest

from gda_gl.gl import shaders
from gda_gl.gl.programs import PROGRAM_VALUES

PROGRAMS = ["segment", "rect", "marker", "overlay", "polyline"]


def test_the_value_table_names_every_program_file_and_nothing_else():
    files = {p.name.split(".")[0] for p in shaders.shader_dir().glob("*.vert.glsl")}
    assert set(PROGRAM_VALUES) == files


@pytest.mark.parametrize("name", PROGRAMS)
def test_every_program_assembles_completely(name):
    """Each program's values, unfiltered, through the strict step: a stale or missing value raises."""
    for stage in ("vert", "frag"):
        fname = f"{name}.{stage}.glsl"
        src = shaders.build(fname, PROGRAM_VALUES[name])
        assert "#include" not in src and "{{" not in src and "}}" not in src
        assert "void main()" in src
        assert src.count("{") == src.count("}")
        if stage == "vert":
            assert "gl_Position" in src and "uniform vec2 u_resolution;" in src  # view.glsl was included
            assert src.count("uniform vec2 u_resolution;") == 1
        else:
            assert "gl_FragColor" in src


def test_view_transform_is_relative_to_the_view_origin():
    src = shaders.load_source("view.glsl")
    assert re.search(r"return u_plot_origin \+ p \* u_scale;", src)


def _fake_dir(tmp_path, monkeypatch, files):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(shaders, "shader_dir", lambda: tmp_path)


def test_strict_template_errors(tmp_path, monkeypatch):
    _fake_dir(tmp_path, monkeypatch, {
        "a.glsl": '#include "b.glsl"\nfloat x = {{ X }};\n',
        "b.glsl": "float b;\n",
        "cycle1.glsl": '#include "cycle2.glsl"\n',
        "cycle2.glsl": '#include "cycle1.glsl"\n',
        "missing.glsl": '#include "nope.glsl"\n',
        "twice.glsl": '#include "b.glsl"\n#include "b.glsl"\n',
        "bad.glsl": "#include <b.glsl>\n",
    })
    assert shaders.build("a.glsl", {"X": "1.0"}) == "float b;\n\nfloat x = 1.0;\n"
    with pytest.raises(shaders.ShaderError, match="no value for placeholder"):
        shaders.build("a.glsl")
    with pytest.raises(shaders.ShaderError, match="unknown placeholders"):
        shaders.build("a.glsl", {"X": "1", "Y": "2"})
    with pytest.raises(shaders.ShaderError, match="include cycle"):
        shaders.build("cycle1.glsl")
    with pytest.raises(shaders.ShaderError, match="unknown shader file 'nope.glsl'"):
        shaders.build("missing.glsl")
    assert shaders.build("twice.glsl").count("float b;") == 1
    with pytest.raises(shaders.ShaderError, match="malformed include"):
        shaders.build("bad.glsl")
    assert shaders.placeholders("a.glsl") == {"X"}


def test_checkout_loader_finds_top_level_shaders():
    from conftest import ROOT

    assert shaders.shader_dir() in (ROOT / "shaders", ROOT / "gda_gl" / "shaders")
    assert (shaders.shader_dir() / "segment.vert.glsl").is_file()
