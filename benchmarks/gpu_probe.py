"""GPU probe benchmark: samples/s and the multiple of the K-forward floor, batched vs sweep, on CUDA.

Stages of the GPU run (``bash benchmarks/gpu/run.sh``), each also runnable alone:

* ``--stage probe``: K in {32, 128, 512}, ``batched`` (CuPy-synthesised points + vmap) and ``sweep``, on a
  small launch-bound MLP (the probe suite's, batch 128), the benchmark CNN (batch 128) and a decoder-style
  transformer of about 100M parameters (batch 8 x 128 tokens).  The floor is K plain forward passes of
  the same model on the same batch (eval mode, no grad); ``x floor`` is probe time / floor, so a batched
  probe faster than K forward passes shows ``x floor`` < 1.
* ``--stage slowdown``: training time with the recorder attached per preset / without it, the benchmark
  CNN at batch 128 with SGD, on the GPU (the probe suite's cost table runs on the CPU), ``valley`` too, and
  ``valley-batched`` (its rounds' alphas, each point with its two grid neighbours, evaluated at once).
* ``--stage cockpit``: Cockpit's ``economy`` configuration on the same model and loop, beside plain training
  in the same process (needs cockpit-for-pytorch and backpack-for-pytorch; run.sh carries them as wheels).

``--device cpu --tiny`` rehearses a stage on a CPU machine with tiny sizes (plumbing only, not a
measurement).  ``--json PATH`` is rewritten after every row, so a stage stopped at its time limit keeps
what it measured.  Timing: the device is synchronised before and after each timed call; medians.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _sync(dev) -> None:
    import torch

    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def _time(fn, dev, min_reps: int = 3, min_time: float = 0.25, max_reps: int = 50) -> float:
    """Median seconds of ``fn`` after one warm-up call (device synchronised around each call)."""
    _sync(dev)
    t0 = time.perf_counter()
    fn()
    _sync(dev)
    first = time.perf_counter() - t0
    if first > 1.0:  # long calls (the 100M model at K = 512): two timed runs are enough
        min_reps = min(min_reps, 2)
    times: list[float] = []
    t_start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - t_start < min_time and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        _sync(dev)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _write(path: str | None, obj: dict) -> None:
    if path:
        Path(f"{path}.tmp").write_text(json.dumps(obj, indent=1, default=str))
        os.replace(f"{path}.tmp", path)


def transformer(vocab=1000, d=768, layers=14, heads=12, ff=3072, seq=128):
    """A pre-norm decoder-style transformer, ~100.9M parameters at the defaults; plain matmul attention
    (so ``vmap`` needs no special batching rules).  ``forward(tokens (B, T))`` returns (B*T, vocab) logits."""
    import torch
    from torch import nn

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.n1, self.n2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.ff1, self.ff2 = nn.Linear(d, ff), nn.Linear(ff, d)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.qkv(self.n1(x)).view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4)
            att = torch.softmax((q @ k.transpose(-1, -2)) / math.sqrt(d // heads), dim=-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(b, t, d))
            return x + self.ff2(torch.nn.functional.gelu(self.ff1(self.n2(x))))

    class LM(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(vocab, d)
            self.pos = nn.Parameter(0.02 * torch.randn(seq, d))
            self.blocks = nn.Sequential(*[Block() for _ in range(layers)])
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, vocab)

        def forward(self, tokens):
            x = self.blocks(self.embed(tokens) + self.pos[: tokens.shape[1]])
            return self.head(self.norm(x)).reshape(-1, vocab)

    return LM()


def _probe_models(tiny: bool):
    """name -> (make model, make (X, y) on a device)."""
    import torch

    from gda_gl.bench.probe import _batch, _models

    bench = _models()

    def digits(n=128):
        return lambda dev: tuple(t.to(dev) for t in _batch(n))

    cfg = dict(vocab=50, d=32, layers=2, heads=2, ff=64, seq=16) if tiny else {}
    vocab, seq, b = cfg.get("vocab", 1000), cfg.get("seq", 128), 4 if tiny else 8

    def tokens(dev):
        g = torch.Generator().manual_seed(0)
        return (torch.randint(0, vocab, (b, seq), generator=g).to(dev),
                torch.randint(0, vocab, (b * seq,), generator=g).to(dev))

    label = "transformer (tiny)" if tiny else "transformer ~100M"
    return {"MLP-small (launch-bound)": (bench["MLP"], digits()), "CNN (benchmark)": (bench["CNN"], digits()),
            label: (lambda: transformer(**cfg), tokens)}


def probe_stage(dev, tiny: bool, json_path: str | None, deadline: float) -> dict:
    import torch
    from torch import nn

    from recorder.kernels import cupy_available
    from recorder.probe import LineProbe, ProbeConfig

    from gda_gl.bench.probe import step_endpoints

    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    ks = (4, 8) if tiny else (32, 128, 512)
    out = {"device": str(dev), "cupy": cupy_available(), "K": list(ks), "rows": [], "skipped": []}
    loss_fn = nn.CrossEntropyLoss()
    for name, (make, data) in _probe_models(tiny).items():
        torch.manual_seed(0)
        model = make().to(dev)
        X, y = data(dev)
        params, w0, w1 = step_endpoints(model)
        model.eval()

        def fwd():
            with torch.no_grad():
                loss_fn(model(X), y)

        t_fwd = _time(fwd, dev, min_reps=10, min_time=0.3)
        model.train()
        for k in ks:
            for strat in ("batched", "sweep"):
                if time.monotonic() > deadline:
                    out["skipped"].append(f"{name} K={k} {strat}: out of time")
                    continue
                row = {"model": name, "params": w0.numel(), "batch": tuple(X.shape), "K": k, "method": strat,
                       "forward ms": 1e3 * t_fwd}
                try:
                    if dev.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(dev)
                    probe = LineProbe(model, loss_fn, params,
                                      ProbeConfig(k=k, strategy=strat, memory_budget=(64 << 20) if tiny else 16 << 30))
                    t = _time(lambda: probe.measure(w0, w1, ((X,), {}), y), dev)
                    row.update({"samples/s": k / t, "probe ms": 1e3 * t, "x floor (K fwd)": t / (k * t_fwd),
                                "speed-up vs K fwd": k * t_fwd / t})
                    if dev.type == "cuda":
                        row["peak GiB"] = torch.cuda.max_memory_allocated(dev) / 2 ** 30
                except Exception as exc:  # e.g. out of memory: recorded, the next row runs
                    row["error"] = f"{type(exc).__name__}: {exc}"[:300]
                    if dev.type == "cuda":
                        torch.cuda.empty_cache()
                out["rows"].append(row)
                _write(json_path, out)
                print(row, flush=True)
        model = params = w0 = w1 = X = y = None  # free before the next model (names the closures read)
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return out


def _cnn_data(dev, n=1792):
    from gda_gl.bench.probe import _batch

    X, y = _batch(n)
    return X.to(dev), y.to(dev)


def _train_loop(model, opt, loss_fn, X, y, steps, dev, start=0):
    for s in range(start, start + steps):
        i = (s * 128) % (len(X) - 128)
        xb, yb = X[i:i + 128], y[i:i + 128]
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    _sync(dev)


def slowdown_stage(dev, tiny: bool, json_path: str | None, deadline: float) -> dict:
    """The probe suite's slowdown table, on ``dev``: best of interleaved runs per configuration."""
    import torch
    from torch import nn

    import recorder

    from gda_gl.bench.probe import _models

    X, y = _cnn_data(dev)
    cls = _models()["CNN"]
    steps = 2 if tiny else 200
    loss_fn = nn.CrossEntropyLoss()
    tmp = tempfile.mkdtemp(prefix="gda-gpu-slowdown-")

    def config(preset):  # "valley-batched": the valley preset with its rounds' alphas evaluated at once
        if preset == "valley-batched":
            return recorder.PRESETS["valley"].with_(strategy="batched", name=preset)
        return recorder.PRESETS[preset]

    def train(preset):
        torch.manual_seed(0)
        model = cls().to(dev)
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        rec = recorder.attach(opt, model, loss_fn, os.path.join(tmp, f"{preset}.gda"), probe=config(preset)) \
            if preset else None
        _train_loop(model, opt, loss_fn, X, y, 5, dev)  # warm-up and the probe's calibration, untimed
        t0 = time.perf_counter()
        _train_loop(model, opt, loss_fn, X, y, steps, dev, start=5)
        t = time.perf_counter() - t0
        if rec:
            rec.close()
        return t

    presets = [None, "cheap", "standard", "dense", "valley", "valley-batched"]
    best = {p: math.inf for p in presets}
    out = {"device": str(dev), "model": "benchmark CNN, batch 128, SGD momentum", "steps": steps,
           "timing": "best of interleaved runs per configuration", "rows": []}

    def fin(v):  # a configuration not reached before the deadline: null, not infinity
        return v if math.isfinite(v) else None

    def table():
        base = best[None]
        rows = [{"preset": "(no recorder)", "alphas": 0, "ms/step": fin(1e3 * base / steps), "x training": 1.0}]
        for p in presets[1:]:
            cfg = config(p)
            alphas = f"<= {cfg.budget} fwd" if cfg.mode == "adaptive" else cfg.k
            rows.append({"preset": p, "alphas": alphas, "every": cfg.every, "ms/step": fin(1e3 * best[p] / steps),
                         "x training": fin(best[p] / base)})
        return rows

    for rep in range(1 if tiny else 2):
        for p in presets:
            if time.monotonic() > deadline:
                out["note"] = "stopped early: out of time"
                break
            best[p] = min(best[p], train(p))
            out["rows"], out["runs"] = table(), rep + 1
            _write(json_path, out)
            print(p, out["rows"], flush=True)
    _write(json_path, out)
    return out


def cockpit_stage(dev, tiny: bool, json_path: str | None, deadline: float) -> dict:
    """Cockpit ``economy`` on the benchmark CNN beside plain training, same loop, same process."""
    import torch
    from torch import nn

    from gda_gl.bench.probe import _models

    import backpack  # noqa: E402, F401  (ImportError: the stage reports it before training anything)
    import cockpit as ck_mod

    from benchmarks.peers import cockpit_economy

    X, y = _cnn_data(dev)
    steps = 5 if tiny else 60
    cls = _models()["CNN"]

    torch.manual_seed(0)
    model = cls().to(dev)
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    _train_loop(model, opt, loss_fn, X, y, 5, dev)
    t0 = time.perf_counter()
    _train_loop(model, opt, loss_fn, X, y, steps, dev, start=5)
    base = (time.perf_counter() - t0) / steps

    torch.manual_seed(0)
    train = cockpit_economy(cls().to(dev), X, y)
    train(0, 3)
    _sync(dev)
    t0 = time.perf_counter()
    train(3, steps)
    _sync(dev)
    t = (time.perf_counter() - t0) / steps

    out = {"device": str(dev), "steps": steps, "cockpit": getattr(ck_mod, "__version__", "?"),
           "rows": [{"what": "plain training (same loop)", "ms/step": 1e3 * base, "x training": 1.0},
                    {"what": "Cockpit configuration('economy')", "ms/step": 1e3 * t, "x training": t / base}]}
    _write(json_path, out)
    return out


STAGES = {"probe": probe_stage, "slowdown": slowdown_stage, "cockpit": cockpit_stage}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gpu_probe", description=__doc__.split("\n")[0])
    p.add_argument("--stage", choices=tuple(STAGES), action="append",
                   help="stage(s) to run (default: probe and slowdown)")
    p.add_argument("--device", default="cuda", help="cuda (default) or cpu (rehearsal)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes (CPU rehearsal)")
    p.add_argument("--json", help="write the results here (one stage), or to $OUT/gpu-probe.json")
    p.add_argument("--seconds", type=float, default=600.0, help="stop starting new rows after this long")
    a = p.parse_args(argv)
    import torch

    if a.device.startswith("cuda") and not torch.cuda.is_available():
        print("gpu_probe: no CUDA device (torch.cuda.is_available() is False); nothing measured", file=sys.stderr)
        return 3
    logging.getLogger("recorder").setLevel(logging.ERROR)
    os.environ.setdefault("GDA_GL_CACHE", tempfile.mkdtemp(prefix="gda-bench-cache-"))
    dev = torch.device(a.device)
    if dev.type == "cpu":
        torch.set_num_threads(min(2, os.cpu_count() or 1))  # a rehearsal on a shared CPU machine
    deadline = time.monotonic() + a.seconds
    stages = a.stage or ["probe", "slowdown"]
    if len(stages) == 1:
        res = STAGES[stages[0]](dev, a.tiny, a.json, deadline)
        _write(a.json, res)
    else:
        from gda_gl.bench.common import machine

        res = {"machine": machine(), **{s: STAGES[s](dev, a.tiny, None, deadline) for s in stages}}
        path = a.json or str(Path(os.environ.get("OUT") or Path(__file__).resolve().parent / "results")
                             / "gpu-probe.json")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        _write(path, res)
    print(json.dumps(res, default=str)[:3000], flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
