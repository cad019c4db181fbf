"""The GPU run (benchmarks/gpu/run.sh): its fail-fast path and bookkeeping here, its CUDA checks on a GPU.

The ``test_device_*`` tests are the recorder's CUDA checks that ``run.sh`` runs on the GPU machine: the probe
equal to the naive deep-copy loop within 1e-5 (fp32, TF32 off) on the MLP, the CNN with BatchNorm and the
attention block, with both strategies; training with the recorder attached bit-for-bit the training
without it; the CuPy line statistics equal to numpy's.  They run where CUDA is, on the CPU when
``GDA_GPU_FAKE=cpu`` (the script's rehearsal), and are skipped otherwise.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from models import CNN, MLP, Attention, digits

ROOT = Path(__file__).resolve().parent.parent
RUN_SH = ROOT / "benchmarks" / "gpu" / "run.sh"

# cuBLAS is deterministic only with a fixed workspace; read when the first handle is made (after collection)
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
DEVICE = "cuda" if torch.cuda.is_available() else ("cpu" if os.environ.get("GDA_GPU_FAKE") == "cpu" else None)
needs_device = pytest.mark.skipif(DEVICE is None, reason="needs CUDA (or GDA_GPU_FAKE=cpu for a CPU rehearsal)")


# ---- the script, without a GPU ----------------------------------------------------------------------------

def test_run_sh_fails_fast_without_cuda(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("GDA_GPU_FAKE", "PYTHONPATH")}
    env.update(CUDA_VISIBLE_DEVICES="", OUT=str(tmp_path), PYTHON=sys.executable)
    t0 = time.monotonic()
    res = subprocess.run(["bash", str(RUN_SH)], capture_output=True, text=True, env=env, timeout=60, cwd="/")
    took = time.monotonic() - t0
    assert res.returncode == 3, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert lines == ["gpu run: no CUDA device (torch.cuda.is_available() is False); nothing measured"]
    assert took < 20, f"took {took:.1f} s"
    assert json.loads((tmp_path / "gpu.json").read_text())["status"] == "no-cuda"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gpu-run.log", "gpu.json"]


def test_orchestrator_rejects_unknown_stages(tmp_path):
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu", "--out", str(tmp_path), "--only", "nope"],
                         capture_output=True, text=True, cwd=ROOT, timeout=30)
    assert res.returncode == 2 and "unknown stage(s) nope" in res.stderr


def test_targets_are_read_from_measured_figures_only():
    from benchmarks.gpu.__main__ import targets

    none = targets({"stages": {}})
    assert [t["measured"] for t in none] == ["not measured"] * 3 and all(t["met"] is None for t in none)
    res = {"stages": {
        "probe": {"result": {"rows": [
            {"model": "MLP-small (launch-bound)", "method": "batched", "K": 32, "speed-up vs K fwd": 7.5},
            {"model": "MLP-small (launch-bound)", "method": "sweep", "K": 32, "speed-up vs K fwd": 1.0},
            {"model": "MLP-small (launch-bound)", "method": "batched", "K": 512, "speed-up vs K fwd": 3.0},
            {"model": "MLP-small (launch-bound)", "method": "batched", "K": 128, "error": "OutOfMemoryError"}]}},
        "slowdown": {"result": {"rows": [{"preset": "standard", "x training": 2.5}]}},
        "render": {"result": {"rows": [{"samples": "1e+09", "overview ms": 12.0}]}}}}
    got = [(t["measured"], t["met"]) for t in targets(res)]
    assert got == [("7.50x", True), ("3.00x", False), ("2.50x", False), ("12.00 ms", True)]


def test_amp_stage_rehearses_on_the_cpu(tmp_path):
    """The GPU run's fp16 GradScaler stage (``stages amp``, CUDA there) on the CPU's fp16 autocast: the scaler's
    calibration skips steps, each is a row that did not move, the lines and the unscaled gradient of the steps
    taken match a fresh fp32 model, training is bit-identical; the stage exits 0 only when all of that holds."""
    out = tmp_path / "amp.json"
    res = subprocess.run([sys.executable, "-m", "benchmarks.gpu.stages", "amp", "--tiny", "--json", str(out)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert res.returncode == 0, res.stdout + res.stderr
    got = json.loads(out.read_text())
    assert got["ok"] and got["bit_identical"] and got["device"] == "cpu"
    assert got["skipped"] and got["rows_skipped"] == got["skipped"] and len(got["skipped"]) < got["steps"]
    assert got["phi_max_rel_err"] <= 1e-4 and got["gradient_max_rel_err"] <= 5e-2


# ---- the recorder on the device (run by run.sh on the GPU machine) ----------------------------------------

@pytest.fixture
def fp32():
    """fp32 arithmetic as the 1e-5 claim means it: no TF32 in matmuls or convolutions, deterministic cuDNN."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    yield torch.device(DEVICE)
    (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
     torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark) = saved


@needs_device
@pytest.mark.parametrize("model_cls", [MLP, CNN, Attention])
@pytest.mark.parametrize("strategy", ["sweep", "batched"])
def test_device_probe_matches_naive_loop(fp32, model_cls, strategy):
    from recorder.probe import LineProbe, ProbeConfig, naive_phi

    dev = fp32
    torch.manual_seed(0)
    model = model_cls().to(dev)
    X, y = (t.to(dev) for t in digits(128))
    loss_fn = nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    params = list(model.parameters())
    w0 = [p.detach().clone() for p in params]
    opt.zero_grad()
    loss_fn(model(X), y).backward()
    opt.step()
    w1 = [p.detach().clone() for p in params]
    probe = LineProbe(model, loss_fn, params, ProbeConfig(k=17, strategy=strategy,
                                                          memory_budget=5 * sum(p.numel() * 4 for p in params)))
    phi, used = probe.measure(torch.cat([w.reshape(-1) for w in w0]), probe.flat(), ((X,), {}), y)
    assert used == strategy
    ref = naive_phi(model, loss_fn, w0, w1, lambda m: list(m.parameters()), probe.alphas, ((X,), {}), y)
    assert np.all(np.isfinite(phi))
    np.testing.assert_allclose(phi, ref, rtol=1e-5, atol=0)


def _train(model, opt, loss_fn, X, y, steps=6, batch=64):
    for s in range(steps):
        xb, yb = X[(s % 4) * batch:(s % 4 + 1) * batch], y[(s % 4) * batch:(s % 4 + 1) * batch]
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()


@needs_device
@pytest.mark.parametrize("model_cls,opt_name", [(MLP, "sgd-momentum"), (CNN, "adam")])
def test_device_training_with_recorder_is_bit_identical(fp32, tmp_path, model_cls, opt_name):
    import recorder
    from recorder import schema
    from recorder.linestats import line_stats
    from recorder.probe import ProbeConfig
    from recorder.store import Recording

    dev = fp32
    make_opt = {"sgd-momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
                "adam": lambda ps: torch.optim.Adam(ps, lr=1e-2)}[opt_name]
    X, y = (t.to(dev) for t in digits(256))
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(3)
    base = (model_cls(dropout=0.2) if model_cls is MLP else model_cls()).to(dev)  # dropout: the RNG stream too

    def plain_run():
        m = copy.deepcopy(base)
        torch.manual_seed(7)
        _train(m, make_opt(m.parameters()), loss_fn, X, y)
        return m

    plain, again = plain_run(), plain_run()
    # the control: without it a difference below could be the device's non-determinism, not the recorder
    assert all(torch.equal(p, q) for p, q in zip(plain.parameters(), again.parameters())), "training not repeatable"
    traced = copy.deepcopy(base)
    opt = make_opt(traced.parameters())
    rec = recorder.attach(opt, traced, loss_fn, tmp_path / "r.gda", probe=ProbeConfig(k=9), strict=True)
    torch.manual_seed(7)
    _train(traced, opt, loss_fn, X, y)
    rec.close()
    for p, q in zip(plain.parameters(), traced.parameters()):
        assert torch.equal(p, q)
    for (n, a), (_, b) in zip(plain.named_buffers(), traced.named_buffers()):  # BatchNorm statistics
        assert torch.equal(a, b), n
    data = Recording(tmp_path / "r.gda").read()
    assert len(data) == 6 and np.all(data["status"] == schema.STATUS_OK)
    # on CUDA the statistics come from CuPy (recorder.hooks._device_stats): equal to numpy's
    ref = line_stats(data.alpha_grid, data.phi.astype(np.float64), 1.0)
    for name in ("efficiency", "curvature", "min_alpha", "min_phi", "cockpit_alpha"):
        np.testing.assert_allclose(data[name], ref[name], rtol=1e-4, atol=1e-6, equal_nan=True, err_msg=name)


@needs_device
def test_device_valley_preset_with_batched_rounds_stores_measured_losses(fp32, tmp_path):
    """The valley preset on the GPU with its rounds batched: every stored point is the naive loop's loss."""
    import recorder
    from recorder import schema
    from recorder.probe import naive_phi
    from recorder.store import Recording

    dev = fp32
    X, y = (t.to(dev) for t in digits(128))
    loss_fn = nn.CrossEntropyLoss()
    torch.manual_seed(0)
    model = CNN().to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.3, momentum=0.9)
    cfg = recorder.PRESETS["valley"].with_(strategy="batched")
    saved = []
    with recorder.attach(opt, model, loss_fn, tmp_path / "v.gda", probe=cfg, strict=True):
        for _ in range(3):
            opt.zero_grad()
            loss_fn(model(X), y).backward()
            w0 = [p.detach().clone() for p in model.parameters()]
            state = {k: v.clone() for k, v in model.state_dict().items()}  # the buffers the probe sees
            opt.step()
            saved.append((state, w0, [p.detach().clone() for p in model.parameters()]))
    with Recording(tmp_path / "v.gda") as r:
        d = r.read()
    assert np.all(d["status"] == schema.STATUS_OK)
    for k, (state, w0, w1) in enumerate(saved):
        a = d.alphas_of(k)
        fin = np.isfinite(a)
        ref_model = CNN().to(dev)
        ref_model.load_state_dict(state)
        ref = naive_phi(ref_model, loss_fn, w0, w1, lambda m: list(m.parameters()), a[fin], ((X,), {}), y)
        np.testing.assert_allclose(d.phi[k][fin], ref, rtol=1e-5, atol=1e-7)
