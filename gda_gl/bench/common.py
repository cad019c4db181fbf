"""Timing helpers, the machine description and table formatting shared by the suites."""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable


def timeit(fn: Callable[[], object], repeat: int = 5, warmup: int = 1, min_time: float = 0.0) -> float:
    """Median wall time of ``fn`` in seconds over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    t_start = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - t_start < min_time and len(times) < 50):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, or what :mod:`platform` knows elsewhere."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(gl_renderer: str | None = None) -> dict:
    """The machine a run measured: CPU, cores, Python, numpy, torch and its device, vispy, the GL renderer."""
    import numpy as np

    out = {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
           "numpy": np.__version__, "platform": platform.platform()}
    try:
        import torch

        out["torch"] = torch.__version__
        out["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    except Exception:
        out["device"] = "cpu"
    try:
        import vispy

        out["vispy"] = vispy.__version__
    except Exception:
        pass
    if gl_renderer:
        out["gl_renderer"] = gl_renderer
    return out


def table(rows: list[dict], columns: list[str] | None = None) -> str:
    """A GitHub-markdown table of ``rows``."""
    if not rows:
        return "(no rows)\n"
    cols = columns or list(dict.fromkeys(k for r in rows for k in r))

    def fmt(v):
        if isinstance(v, float):
            if v != v:
                return "n/a"
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 1:
                return f"{v:.2f}"
            return f"{v:.3g}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines) + "\n"
