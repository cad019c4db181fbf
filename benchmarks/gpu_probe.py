"""GPU probe benchmark (CUDA only): samples/s for K up to 512, batched (CuPy-synthesised points + vmap) vs sweep.

Run by ``benchmarks/gpu/run.sh`` on a GPU machine; writes JSON to ``$OUT`` (or benchmarks/results/).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path


def main() -> int:
    import torch
    from torch import nn

    from recorder.kernels import cupy_available
    from recorder.probe import LineProbe, ProbeConfig

    from .common import machine
    from .probe import step_endpoints

    if not torch.cuda.is_available():
        print("gpu_probe: no CUDA device", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    models = {
        "MLP-small (launch-bound)": (lambda: nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10)), 256, 64),
        "MLP-wide (4x2048)": (lambda: nn.Sequential(nn.Linear(1024, 2048), nn.ReLU(), nn.Linear(2048, 2048), nn.ReLU(),
                                                    nn.Linear(2048, 2048), nn.ReLU(), nn.Linear(2048, 10)), 1024, 1024),
    }
    rows = []
    loss_fn = nn.CrossEntropyLoss()
    for name, (make, batch, d_in) in models.items():
        torch.manual_seed(0)
        model = make().to(dev)
        X = torch.randn(batch, d_in, device=dev)
        y = torch.randint(0, 10, (batch,), device=dev)
        params, w0, w1 = step_endpoints(model)

        def fwd():
            with torch.no_grad():
                loss_fn(model.eval()(X), y)

        for _ in range(5):
            fwd()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(20):
            fwd()
        torch.cuda.synchronize()
        t_fwd = (time.perf_counter() - t0) / 20
        model.train()
        for k in (8, 32, 128, 512):
            for strat in ("sweep", "batched"):
                probe = LineProbe(model, loss_fn, params, ProbeConfig(k=k, strategy=strat, memory_budget=16 << 30))
                probe.measure(w0, w1, ((X,), {}), y)
                torch.cuda.synchronize()
                reps = 5
                t0 = time.perf_counter()
                for _ in range(reps):
                    probe.measure(w0, w1, ((X,), {}), y)
                torch.cuda.synchronize()
                t = (time.perf_counter() - t0) / reps
                rows.append({"model": name, "params": w0.numel(), "batch": batch, "K": k, "method": strat,
                             "samples/s": k / t, "x floor (K fwd)": t / (k * t_fwd),
                             "peak GiB": torch.cuda.max_memory_allocated() / 2 ** 30})
                torch.cuda.reset_peak_memory_stats()
                print(rows[-1], flush=True)
    out = Path(os.environ.get("OUT") or Path(__file__).resolve().parent / "results")
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu-probe.json").write_text(json.dumps({"machine": machine(), "cupy": cupy_available(), "rows": rows},
                                                   indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
