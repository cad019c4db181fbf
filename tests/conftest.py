"""Shared fixtures: synthetic recordings with known values."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("EGL_PLATFORM", "surfaceless")
# probe calibrations are cached per user; tests start from none (subprocesses inherit this)
import tempfile  # noqa: E402

os.environ["GDA_GL_CACHE"] = tempfile.mkdtemp(prefix="gda-test-cache-")

from recorder.store import RecordingWriter  # noqa: E402


def parabola_phi(n: int, grid: np.ndarray, *, start: float = 2.0, decay: float = 0.999,
                 curvature: float = 1.0, batch_every: int = 0) -> np.ndarray:
    """phi_k(alpha) = c_k + curvature (alpha - a_k)^2 with phi_k(1) = phi_{k+1}(0) when batch_every == 0."""
    ks = np.arange(n)
    top = start * decay ** ks
    bottom = start * decay ** (ks + 1)
    # parabola through (0, top) and (1, bottom) with the given curvature
    c2 = curvature
    c1 = bottom - top - c2
    phi = top[:, None] + c1[:, None] * grid[None, :] + c2 * grid[None, :] ** 2
    if batch_every:
        phi += 0.3 * ((ks // batch_every) % 2)[:, None]
    return phi.astype(np.float32)


def write_synthetic(path: Path, n: int = 200, k: int = 16, *, batch_every: int = 0, trials: bool = True,
                    **phi_kw) -> Path:
    from recorder.linestats import line_stats

    grid = np.linspace(0.0, 2.0, k)
    phi = parabola_phi(n, grid, batch_every=batch_every, **phi_kw)
    stats = line_stats(grid, phi)
    with RecordingWriter(path, grid, {"name": path.stem, "optimizer": "SGD",
                                      "hyperparameters": {"lr": 0.1}}, overwrite=True) as w:
        for i in range(n):
            tr = None
            if trials and i % 2 == 0:
                tr = {"alpha": [0.5, 1.0, 1.6], "loss": [float(phi[i, 3]), float(phi[i, 7]), float(phi[i, 12])],
                      "slope": [np.nan, -0.1, 0.2]}
            w.append(i, phi[i], trials=tr, epoch=i // 100, batch=(i // batch_every) if batch_every else 0,
                     taken_alpha=1.0, train_loss=float(phi[i, 0]), wall_time=1.7e9 + i, status=0,
                     **{name: v[i] for name, v in stats.items()})
    return path


def foreign_sqlite(path: Path) -> Path:
    """An SQLite database of another application at ``path``: one table ``t`` with one row."""
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE t (x)")
    con.execute("INSERT INTO t VALUES (1)")
    con.commit()
    con.close()
    return path


@pytest.fixture
def fresh_calibration(tmp_path, monkeypatch):
    """A probe-calibration cache of this test's own: ``strategy='auto'`` calibrates from scratch."""
    monkeypatch.setenv("GDA_GL_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def synthetic(tmp_path):
    return write_synthetic(tmp_path / "synthetic.gda")


def run_cli(*args, timeout=120, env=None):
    """Run ``python -m gda_gl ARGS`` in a subprocess; returns CompletedProcess."""
    e = dict(os.environ)
    e["PYTHONPATH"] = str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", "gda_gl", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=str(ROOT))
