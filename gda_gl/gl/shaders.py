"""Find and assemble the GLSL sources in ``shaders/``.

One loader for every install: an installed wheel ships the files as
``gda_gl/shaders/`` (``force-include`` in pyproject.toml); a source checkout or
an editable install finds the top-level ``shaders/`` beside the package.

Assembly is one strict step: ``#include "name.glsl"`` lines are replaced by
the named file (recursively, each file at most once per program), and
``{{ NAME }}`` placeholders by values passed by the caller.  An unknown
include, an unknown or unused placeholder, or an include cycle raises
:class:`ShaderError`, so no half-built shader ever reaches the GL driver.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Mapping

__all__ = ["ShaderError", "shader_dir", "load_source", "build", "placeholders"]

_INCLUDE = re.compile(r'^[ \t]*#include[ \t]+"([A-Za-z0-9_./-]+)"[ \t]*$', re.M)
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class ShaderError(ValueError):
    """A shader file is missing or does not assemble."""


@lru_cache(maxsize=1)
def shader_dir() -> Path:
    """The directory holding the ``*.glsl`` files (wheel first, then checkout)."""
    package = Path(__file__).resolve().parent.parent  # gda_gl/ (this module is gda_gl/gl/shaders.py)
    for cand in (package / "shaders", package.parent / "shaders"):
        if cand.is_dir() and any(cand.glob("*.glsl")):
            return cand
    raise ShaderError(f"no shaders/ directory found in or next to {package}")


def load_source(name: str) -> str:
    """Raw text of one shader file."""
    path = shader_dir() / name
    if not path.is_file() or path.suffix != ".glsl":
        raise ShaderError(f"unknown shader file {name!r} (looked in {shader_dir()})")
    return path.read_text(encoding="utf-8")


def placeholders(name: str) -> set[str]:
    """Names of the ``{{ NAME }}`` placeholders in ``name`` and its includes."""
    seen: set[str] = set()
    names: set[str] = set()

    def walk(fname: str) -> None:
        if fname in seen:
            return
        seen.add(fname)
        text = load_source(fname)
        names.update(_PLACEHOLDER.findall(text))
        for inc in _INCLUDE.findall(text):
            walk(inc)

    walk(name)
    return names


def build(name: str, values: Mapping[str, object] | None = None) -> str:
    """Assemble ``name`` with its includes and placeholder values.

    Parameters
    ----------
    name : file name in ``shaders/``, e.g. ``"segment.vert.glsl"``
    values : ``{{ NAME }}`` substitutions; every placeholder must be given and every value used

    Returns
    -------
    str : GLSL ready to compile
    """
    values = dict(values or {})
    seen: set[str] = set()

    def expand(fname: str, stack: tuple[str, ...]) -> str:
        if fname in stack:
            raise ShaderError(f"include cycle: {' -> '.join(stack + (fname,))}")
        if fname in seen:
            return f"// {fname} already included\n"
        seen.add(fname)
        text = load_source(fname)
        return _INCLUDE.sub(lambda m: expand(m.group(1), stack + (fname,)), text)

    src = expand(name, ())
    stray = [ln for ln in src.splitlines() if ln.strip().startswith("#include")]
    if stray:
        raise ShaderError(f"{name}: malformed include line {stray[0].strip()!r}")
    used: set[str] = set()

    def subst(m: re.Match) -> str:
        key = m.group(1)
        if key not in values:
            raise ShaderError(f"{name}: no value for placeholder {{{{ {key} }}}}")
        used.add(key)
        return str(values[key])

    src = _PLACEHOLDER.sub(subst, src)
    unused = set(values) - used
    if unused:
        raise ShaderError(f"{name}: values given for unknown placeholders {sorted(unused)}")
    return src
