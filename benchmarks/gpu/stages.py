"""GPU-run stages that need no probe: the environment, the EGL set-up, frames at 1e6..1e9 samples, and the
recorder under fp16 AMP with a GradScaler.

``python -m benchmarks.gpu.stages env|glinfo|render|amp --json PATH [--tiny] [--png PATH]``.  Each writes its
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


def amp_check(device: str = "cuda", steps: int = 8) -> dict:
    """fp16 autocast + ``torch.amp.GradScaler`` with the recorder attached, on ``device`` (issue 26).

    The scaler starts at 2**24, so its first steps overflow and are skipped.  Checked against the
    check's own truth (step hooks registered before the recorder's save w_k and w_{k+1}; a fresh fp32
    model evaluates the loss): every skipped step is a row with status skipped that did not move; every
    step taken has phi equal to the fresh model's within 1e-4 (fp32 probe, TF32 off), slope0 and grad_norm
    of the *unscaled* gradient (within 5e-2 of the fp32 truth: fp16 backward); training is bit-identical to
    the same run without the recorder.  Returns the figures; ``ok`` says whether every check held.
    """
    import copy

    import torch
    from torch import nn

    import recorder
    from recorder import schema
    from recorder.probe import ProbeConfig
    from recorder.store import Recording

    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    g = torch.Generator().manual_seed(0)
    X = torch.randn(steps * 64, 32, generator=g).to(device)
    y = torch.randint(0, 10, (steps * 64,), generator=g).to(device)
    torch.manual_seed(0)
    base = nn.Sequential(nn.Linear(32, 64), nn.Tanh(), nn.Linear(64, 10)).to(device)
    loss_fn = nn.CrossEntropyLoss()

    def train(model, path=None):
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        tape: list[dict] = []
        opt.register_step_pre_hook(lambda o, a, k: tape.append({"w0": copy.deepcopy(model.state_dict())}))
        opt.register_step_post_hook(lambda o, a, k: tape[-1].update(w1=copy.deepcopy(model.state_dict())))
        rec = recorder.attach(opt, model, loss_fn, path, probe=ProbeConfig(k=5), strict=True) if path else None
        scaler, skipped = torch.amp.GradScaler(device, init_scale=2.0 ** 24), []
        for i in range(steps):
            xb, yb = X[i * 64:(i + 1) * 64], y[i * 64:(i + 1) * 64]
            opt.zero_grad()
            with torch.autocast(device, dtype=torch.float16):
                loss = loss_fn(model(xb), yb)
            scaler.scale(loss).backward()
            n = len(tape)
            scaler.step(opt)
            scaler.update()
            if len(tape) > n:
                tape[-1]["batch"] = (xb, yb)
            else:
                skipped.append(i)
        if rec is not None:
            rec.close()
        return tape, skipped

    def truth(step, alphas):
        m = copy.deepcopy(base)
        out = []
        for a in [*alphas, None]:
            state = {k: v + (0.0 if a is None else float(a)) * (step["w1"][k] - v) for k, v in step["w0"].items()}
            m.load_state_dict(state)
            loss = loss_fn(m(step["batch"][0]), step["batch"][1])
            if a is not None:
                out.append(float(loss.detach()))
        grads = torch.autograd.grad(loss, list(m.parameters()))
        d = [step["w1"][k] - step["w0"][k] for k, _ in m.named_parameters()]
        slope = float(sum((gr * dk).sum() for gr, dk in zip(grads, d)))
        return np.asarray(out), slope, float(torch.sqrt(sum((gr ** 2).sum() for gr in grads)))

    with tempfile.TemporaryDirectory() as tmp:
        plain = copy.deepcopy(base)
        _, skipped0 = train(plain)
        traced = copy.deepcopy(base)
        tape, skipped = train(traced, Path(tmp) / "amp.gda")
        d = Recording(Path(tmp) / "amp.gda").read()
    identical = all(torch.equal(p, q) for p, q in zip(plain.parameters(), traced.parameters()))
    rows_skipped = [int(i) for i in np.flatnonzero(d["status"] == schema.STATUS_SKIPPED)]
    taken = [i for i in range(steps) if i not in skipped]
    phi_err, slope_err = 0.0, 0.0
    for row, step in zip(taken, tape):
        ref, slope, norm = truth(step, d.alpha_grid)
        phi_err = max(phi_err, float(np.max(np.abs(d.phi[row] - ref) / np.abs(ref))))
        slope_err = max(slope_err, abs(float(d["slope0"][row]) - slope) / abs(slope),
                        abs(float(d["grad_norm"][row]) - norm) / norm)
    moved = bool(np.all(d["step_norm"][rows_skipped] == 0)) if rows_skipped else True
    ok = (identical and skipped == skipped0 and rows_skipped == skipped and len(d) == steps and 0 < len(skipped) < steps
          and moved and phi_err <= 1e-4 and slope_err <= 5e-2)
    return {"device": device, "steps": steps, "skipped": skipped, "rows_skipped": rows_skipped,
            "bit_identical": identical, "phi_max_rel_err": phi_err, "gradient_max_rel_err": slope_err, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu.stages")
    p.add_argument("stage", choices=("env", "glinfo", "render", "amp"))
    p.add_argument("--json")
    p.add_argument("--tiny", action="store_true", help="CPU rehearsal sizes")
    p.add_argument("--png", help="render: save the largest size's overview frame here")
    a = p.parse_args(argv)
    if a.stage == "env":
        res = env_info()
    elif a.stage == "glinfo":
        res = gl_info()
    elif a.stage == "amp":
        res = amp_check("cpu" if a.tiny else "cuda")
    else:
        res = render(a.json, a.tiny, a.png)
    _write(a.json, res)
    print(json.dumps(res, default=str)[:2000], flush=True)
    return 1 if res.get("ok") is False else 0


if __name__ == "__main__":
    raise SystemExit(main())
