"""GPU-run stages that need no probe: the environment, the EGL set-up, and frames at 1e6..1e9 samples.

``python -m benchmarks.gpu.stages env|glinfo|render --json PATH [--tiny] [--png PATH]``.  Each writes its
JSON to PATH (the render stage after every size, so a stage killed at its time limit keeps what it
measured).  The EGL set-up (``EGL_PLATFORM``, ``VISPY_GL_LIB``) comes from the environment: the
orchestrator (:mod:`benchmarks.gpu.__main__`) tries several with ``glinfo`` and renders with the first
that gives the NVIDIA driver.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

W, H = 1600, 900  # the render suite's frame


def _write(path: str | None, obj: dict) -> None:
    if path:
        tmp = f"{path}.tmp"
        Path(tmp).write_text(json.dumps(obj, indent=1, default=str))
        os.replace(tmp, path)


def env_info() -> dict:
    out: dict = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
                 "numpy": np.__version__}
    import torch

    out["torch"] = torch.__version__
    out["torch_cuda"] = torch.version.cuda
    out["cuda_available"] = torch.cuda.is_available()
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        out.update({"device": p.name, "capability": f"{p.major}.{p.minor}", "memory_GiB": p.total_memory / 2 ** 30,
                    "multiprocessors": p.multi_processor_count,
                    "cudnn": torch.backends.cudnn.version(),
                    "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
                    "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32})
    try:
        import cupy

        from recorder.kernels import cupy_available

        out["cupy"] = cupy.__version__
        out["cupy_available"] = cupy_available()
        if out["cupy_available"]:
            out["cupy_cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
    except Exception as exc:
        out["cupy"] = f"not usable: {type(exc).__name__}: {exc}"[:200]
    for mod in ("vispy", "OpenGL", "sklearn", "matplotlib", "cockpit", "backpack"):
        try:
            m = __import__(mod)
            out[mod] = getattr(m, "__version__", "?")
        except Exception as exc:
            out[mod] = f"missing ({type(exc).__name__})"
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total,clocks.sm,clocks.mem,"
                              "temperature.gpu,power.draw", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=15)
        out["nvidia_smi"] = (smi.stdout or smi.stderr).strip()
    except Exception as exc:
        out["nvidia_smi"] = f"n/a ({type(exc).__name__})"
    out["egl_env"] = {k: os.environ.get(k) for k in ("EGL_PLATFORM", "VISPY_GL_LIB", "__EGL_VENDOR_LIBRARY_FILENAMES",
                                                    "LD_LIBRARY_PATH")}
    return out


def gl_info() -> dict:
    """Open the offscreen target, draw and read one small frame; say which GL driver did it."""
    from vispy import gloo

    from gda_gl.gl.export import Offscreen

    t0 = time.perf_counter()
    target = Offscreen(64, 64)
    with target:
        gloo.clear(color=(0.2, 0.4, 0.6, 1.0))
    img = target.read()
    info = {"renderer": target.renderer_info(), "seconds": time.perf_counter() - t0,
            "pixel": [int(v) for v in img[0, 0]]}
    try:
        with target:
            info["vendor"] = str(gloo.gl.glGetParameter(gloo.gl.GL_VENDOR))
    except Exception:
        pass
    target.close()
    if info["pixel"][:3] != [51, 102, 153]:
        raise RuntimeError(f"cleared to (51, 102, 153) but read back {info['pixel']} from {info['renderer']}")
    return info


def render(json_path: str | None, tiny: bool, png: str | None) -> dict:
    from vispy import gloo

    from gda_gl.bench.common import timeit
    from gda_gl.bench.render import _first_frame, _synthetic, lod_off_frame
    from gda_gl.gl.export import Offscreen
    from gda_gl.session.files import save_png
    from gda_gl.gl.render import CurveRenderer
    from gda_gl.compose.layout import Layout
    from gda_gl.compose.scene import RunData
    from gda_gl.compose.state import ViewState

    target = Offscreen(W, H)
    out: dict = {"renderer": target.renderer_info(), "frame": f"{W}x{H}", "rows": [], "notes": []}
    with target:
        renderer = CurveRenderer()
    layout = Layout.for_size(W, H, colorbar=False)
    sizes = [(100_000, 16), (1_000_000, 16)] if tiny else \
        [(1_000_000, 16), (10_000_000, 16), (100_000_000, 16), (1_000_000_000, 16)]
    strip_max = 1_000_000 if tiny else 100_000_000
    reps = 3 if tiny else 10
    for i, (samples, k) in enumerate(sizes):
        if samples == sizes[-1][0] and not tiny:
            # before the largest size, which may not finish inside the stage's time box
            try:
                tmp = Path(tempfile.mkdtemp(prefix="gda-gpu-first-"))
                key = "first frame (gda-gl render, 1e6 x 16, process start to PNG) s"
                out[key] = _first_frame(tmp, env=dict(os.environ), timeout=60)  # this process's GL set-up
            except Exception as exc:
                out["notes"].append(f"first frame CLI failed: {type(exc).__name__}: {exc}"[:300])
            _write(json_path, out)
        row: dict = {"samples": f"{samples:.0e}", "iterations": samples // k, "K": k}
        try:
            t0 = time.perf_counter()
            data = _synthetic(samples // k, k)
            row["synthesise s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
            run_ = RunData(data, name="bench")
            row["prepare (envelopes+pyramid) s"] = time.perf_counter() - t0

            def frame(state, read=True):
                with target:
                    renderer.draw([run_], state, layout)
                    if not read:
                        gloo.gl.glFinish()
                if read:
                    return target.read()

            t0 = time.perf_counter()
            img = frame(ViewState())
            row["first frame ms"] = 1e3 * (time.perf_counter() - t0)
            row["overview ms"] = 1e3 * timeit(lambda: frame(ViewState()), repeat=reps, warmup=1)
            row["overview draw only (glFinish) ms"] = 1e3 * timeit(lambda: frame(ViewState(), read=False),
                                                                  repeat=reps, warmup=1)
            mid = (samples // k) // 2
            row["zoomed (200 it) ms"] = 1e3 * timeit(lambda: frame(ViewState(x_range=(mid, mid + 200))),
                                                    repeat=reps, warmup=1)
            row["fps (overview)"] = 1e3 / row["overview ms"]
            if png and i == len(sizes) - 1:
                save_png(img, png)
                out["png"] = os.path.basename(png)
            if samples <= strip_max:
                t0 = time.perf_counter()
                brute = lod_off_frame(target, data)
                brute()
                row["LOD off upload s"] = time.perf_counter() - t0
                row["LOD off ms"] = 1e3 * timeit(brute, repeat=3, warmup=0)
                del brute  # frees the strip's vertex buffer
            run_ = data = None  # free both before the next, larger size
        except Exception as exc:  # e.g. out of host or GL memory at 1e9: say so, keep the smaller sizes
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        out["rows"].append(row)
        _write(json_path, out)
        print(row, flush=True)
    target.close()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu.stages")
    p.add_argument("stage", choices=("env", "glinfo", "render"))
    p.add_argument("--json")
    p.add_argument("--tiny", action="store_true", help="CPU rehearsal sizes")
    p.add_argument("--png", help="render: save the largest size's overview frame here")
    a = p.parse_args(argv)
    if a.stage == "env":
        res = env_info()
    elif a.stage == "glinfo":
        res = gl_info()
    else:
        res = render(a.json, a.tiny, a.png)
    _write(a.json, res)
    print(json.dumps(res, default=str)[:2000], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
