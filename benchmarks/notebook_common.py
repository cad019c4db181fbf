"""What the notebook benchmarks (:mod:`benchmarks.notebook_browser`, :mod:`benchmarks.notebook_encoding`) share.

The synthetic recording they measure (the scale suite's generator, reused from ``$GDA_BENCH_DIR``),
the ``--size`` they parse and the JSON file they write.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["scale_recording", "parse_size", "write_json"]


def scale_recording(rows: int) -> Path:
    """The synthetic ``rows``-iteration recording in ``$GDA_BENCH_DIR`` (default ``gda-scale`` in the temporary
    folder), written by :func:`gda_gl.bench.scale.make_recording` unless a finished one is already there."""
    from gda_gl.bench.scale import make_recording

    folder = Path(os.environ.get("GDA_BENCH_DIR", Path(tempfile.gettempdir()) / "gda-scale"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"scale-{int(rows)}.gda"
    make_recording(path, int(rows))
    return path


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (``1200x700``) as integers."""
    w, h = (int(v) for v in text.lower().split("x"))
    return w, h


def write_json(path: str | None, results) -> None:
    """Write ``results`` as JSON to ``path`` (missing folders created); nothing when ``path`` is None."""
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(results, indent=1))
