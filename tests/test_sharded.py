"""Sharded training under torchrun (gloo, CPU): the recording equals one process on the global batch.

tests/helpers/sharded_worker.py trains each set-up twice (with and without the recorder) under a real
``torch.distributed.run``; rank 0 saves the gathered weights w_k of every step and the global batches.
The truth here is independent of the recorder: a fresh unsharded model on one process, evaluated with
``torch.func.functional_call`` at w_k + alpha (w_{k+1} - w_k) on the concatenated global batch (mean
over the step's micro-batches), and its gradient at w_k by autograd.  phi at every alpha, train_loss,
slope0 and grad_norm must match within 1e-5 relative.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

HERE = Path(__file__).parent
ROOT = HERE.parent
WORKER = HERE / "helpers" / "sharded_worker.py"
sys.path.insert(0, str(HERE / "helpers"))

RTOL = 1e-5
WORLD2 = ["fsdp2_mlp", "fsdp2_transformer", "fsdp2_transformer_root", "fsdp2_accum_clip", "fsdp2_batched", "tp",
          "fsdp1_flat", "fsdp1_orig", "fsdp1_accum", "fsdp1_grad_op", "fsdp2_bf16", "fsdp2_nowriter",
          "fsdp1_root_transformer", "fsdp1_plain", "ddp_unequal", "fsdp2_skip", "ddp_skip"]
NODES = ["fsdp2_mlp", "fsdp2_tp_2d", "fsdp2_hsdp"]

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed missing")]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")
    env.pop("GDA_GL_CACHE", None)
    return env


def _launch(out: Path, setups: list[str], nproc: int = 2, node: int | None = None, port: int | None = None,
            rdzv_id: str = "") -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}"]
    if node is None:
        cmd += ["--nnodes=1", f"--master_port={_port()}"]
    else:  # one of two launchers of one job: a c10d rendezvous on loopback
        cmd += ["--nnodes=2", "--rdzv_backend=c10d", f"--rdzv_endpoint=127.0.0.1:{port}", f"--rdzv_id={rdzv_id}"]
    cmd += [str(WORKER), str(out), *setups]
    return subprocess.Popen(cmd, cwd=str(ROOT), env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _wait(procs: list[subprocess.Popen], timeout: float = 240) -> tuple[list[int], str]:
    outs, rcs = [], []
    for p in procs:
        try:
            text, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            text, _ = p.communicate()
        outs.append(text)
        rcs.append(p.returncode)
    return rcs, "\n".join(outs)


@pytest.fixture(scope="module")
def world2(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded2")
    rcs, log = _wait([_launch(out, WORLD2)])
    return out, rcs[0], log


@pytest.fixture(scope="module")
def two_nodes(tmp_path_factory):
    out = tmp_path_factory.mktemp("nodes")
    port, rid = _port(), uuid.uuid4().hex[:8]
    rcs, log = _wait([_launch(out, NODES, node=n, port=port, rdzv_id=rid) for n in range(2)])
    return out, max(rcs), log


# --------------------------------------------------------------------------- the truth

def _truth(setup: str, tape: dict, alphas: np.ndarray) -> dict:
    """phi, train_loss, slope0, grad_norm of every step on one process with the unsharded model."""
    from sharded_worker import MODELS

    model = MODELS["transformer" if "transformer" in setup else "mlp"]().eval()
    names = [n for n, _ in model.named_parameters()]
    loss_fn = nn.CrossEntropyLoss()

    def loss(params, batches):
        return sum(loss_fn(torch.func.functional_call(model, params, (x,)), y) for x, y in batches) / len(batches)

    out = {"phi": [], "train_loss": [], "slope0": [], "grad_norm": []}
    for k, batches in enumerate(tape["batches"]):
        w0, w1 = tape["w"][k], tape["w"][k + 1]
        with torch.no_grad():
            out["phi"].append([float(loss({n: w0[n] + float(a) * (w1[n] - w0[n]) for n in names}, batches))
                               for a in alphas])
        p0 = {n: w0[n].clone().requires_grad_(True) for n in names}
        value = loss(p0, batches)
        grads = torch.autograd.grad(value, [p0[n] for n in names])
        g = torch.cat([gr.reshape(-1) for gr in grads]).double()
        d = torch.cat([(w1[n] - w0[n]).reshape(-1) for n in names]).double()
        out["train_loss"].append(float(value.detach()))
        out["slope0"].append(float(g @ d))
        out["grad_norm"].append(float(g.norm()))
    return {k: np.asarray(v) for k, v in out.items()}


def _check_exact(out: Path, setup: str, world: int) -> float:
    """Asserts the recording of ``setup`` equals the truth; returns the largest relative error seen."""
    from recorder.store import Recording

    tape = torch.load(out / f"{setup}.pt")
    assert tape["world"] == world
    assert all(tape["identical"]), f"training with the recorder differs from training without it: {tape['identical']}"
    rec = Recording(out / f"{setup}.gda")
    d = rec.read()
    assert len(d) == len(tape["batches"]) == 3
    assert np.all(d["status"] == 0), rec.events()
    assert rec.run["world_size"] == world
    assert rec.run["sharding"]["strategy"] == "sweep"
    truth = _truth(setup, tape, d.alpha_grid)
    worst = 0.0
    for name in ("phi", "train_loss", "slope0", "grad_norm"):
        got = d.phi if name == "phi" else d[name]
        np.testing.assert_allclose(got, truth[name], rtol=RTOL, err_msg=f"{setup}: {name}")
        worst = max(worst, float(np.max(np.abs(got - truth[name]) / np.abs(truth[name]))))
    # only rank 0 of the job holds a writer, and it left one file (no second recording, no side files)
    assert tape["writers"] == [True] + [False] * (world - 1)
    assert sorted(p.name for p in out.iterdir() if p.name.split(".")[0].split("-")[0] == setup) == \
        [f"{setup}.gda", f"{setup}.pt"]
    print(f"{setup}: max relative error {worst:.2e}")
    return worst


def _ran(fixture):
    out, rc, log = fixture
    assert rc == 0, log[-4000:]
    return out


# --------------------------------------------------------------------------- tests

@pytest.mark.parametrize("setup", ["fsdp2_mlp", "fsdp2_transformer", "fsdp2_transformer_root", "fsdp2_accum_clip",
                                   "tp"])
def test_sharded_recording_equals_one_process_on_the_global_batch(world2, setup):
    """FSDP2 per layer (an MLP with an unevenly sharded 5-unit output layer, a transformer) and at the root
    only, gradient accumulation without synchronisation plus clip_grad_norm_ on DTensors, tensor parallel."""
    out = _ran(world2)
    _check_exact(out, setup, 2)


def test_fsdp2_records_the_gradient_before_clipping(world2):
    """Clipping to 0.05 changes the gradient; slope0 and grad_norm are of the unclipped one (the truth's)."""
    from recorder.store import Recording

    d = Recording(_ran(world2) / "fsdp2_accum_clip.gda").read()
    assert np.all(d["grad_norm"] > 0.1)  # far above the clipping threshold: not the clipped gradient


@pytest.mark.parametrize("setup, why", [
    ("fsdp2_batched", "strategy='batched' cannot probe a sharded model"),
    ("fsdp1_grad_op", "FSDP1 sharding strategy ['SHARD_GRAD_OP'] is not supported")])
def test_what_cannot_be_measured_is_recorded_as_failed_with_the_reason(world2, setup, why):
    """The batched strategy on FSDP2, and FSDP1's SHARD_GRAD_OP (it keeps gathered parameters between
    forwards, so an in-place write would not be seen): failed rows, the reason as an event, no number
    guessed, training unchanged."""
    from recorder.store import Recording

    out = _ran(world2)
    tape = torch.load(out / f"{setup}.pt")
    assert all(tape["identical"])
    rec = Recording(out / f"{setup}.gda")
    d = rec.read()
    assert len(d) == 3 and np.all(d["status"] == 2) and np.all(np.isnan(d.phi))
    assert any(why in msg for _, _, kind, msg in rec.events("probe-failed")), rec.events()
    assert rec.run["sharding"]["strategy"] == "none" and why in rec.run["sharding"]["why"]
    if setup == "fsdp1_grad_op":  # no dot product over a layout the recorder cannot vouch for
        assert np.all(np.isnan(d["slope0"])) and np.all(np.isnan(d["grad_norm"]))


@pytest.mark.parametrize("setup", ["fsdp1_flat", "fsdp1_orig", "fsdp1_accum"])
def test_fsdp1(world2, setup):
    """FullyShardedDataParallel with use_orig_params False (flat parameters) and True, and gradient
    accumulation under no_sync() (FSDP1's gradient is p.grad at step(): no clipping in these runs)."""
    _check_exact(_ran(world2), setup, 2)


@pytest.mark.parametrize("setup, held", [("fsdp1_root_transformer", "embed.weight"), ("fsdp1_plain", "fc1.weight")])
def test_fsdp1_with_parameters_in_the_root_unit_is_refused_at_attach(world2, setup, held):
    """FSDP1 keeps its root unit's parameters gathered between forwards: the probe's writes into their shards
    would go unseen and the next training forward would read them.  attach refuses on every rank with one
    line that says why and what to do; no file is written and training is bit-identical to training
    without the recorder (the embedding and head left in the root; FSDP1(model) without a wrap policy)."""
    out = _ran(world2)
    tape = torch.load(out / f"{setup}.pt")
    assert all(tape["identical"])
    why = tape["refused"]
    assert why is not None and "\n" not in why and why.startswith("gda_gl recorder: FSDP1 keeps the parameters of its "
                                                                    "root unit gathered")
    assert held in why and "auto_wrap_policy" in why and "fully_shard" in why
    assert not (out / f"{setup}.gda").exists()


def test_ddp_with_unequal_batches_per_rank_is_one_objective(world2):
    """DDP with 7 samples on rank 0 and 5 on rank 1: DDP averages the ranks' gradients, so the objective the
    step descends is the mean of the ranks' mean losses.  phi, train_loss, slope0 and grad_norm are all that
    objective (the truth: one process, the global batch split as the ranks had it); samples counts all 12."""
    from recorder.store import Recording

    out = _ran(world2)
    tape = torch.load(out / "ddp_unequal.pt")
    assert all(tape["identical"]) and tape["writers"] == [True, False]
    rec = Recording(out / "ddp_unequal.gda")
    d = rec.read()
    assert len(d) == 3 and np.all(d["status"] == 0) and np.all(d["samples"] == 12)
    assert [len(part[1]) for part in tape["batches"][0]] == [7, 5]
    truth = _truth("ddp_unequal", tape, d.alpha_grid)
    for name in ("phi", "train_loss", "slope0", "grad_norm"):
        got = d.phi if name == "phi" else d[name]
        np.testing.assert_allclose(got, truth[name], rtol=RTOL, err_msg=f"ddp_unequal: {name}")


@pytest.mark.parametrize("setup", ["fsdp2_skip", "ddp_skip"])
def test_a_skipped_step_under_fsdp2_and_ddp_is_a_row_of_its_own(world2, setup):
    """The loop back-propagates its second batch and skips the step: that batch is a row with status skipped
    that did not move (on every rank: the rows stay aligned for the probe's collectives), and every other
    line is its own batch's only, against one process on the global batch; training bit-identical."""
    from recorder.store import Recording

    out = _ran(world2)
    tape = torch.load(out / f"{setup}.pt")
    assert all(tape["identical"])
    rec = Recording(out / f"{setup}.gda")
    d = rec.read()
    assert len(d) == 4 and list(d["status"]) == [0, 3, 0, 0], rec.events()
    assert d["step_norm"][1] == 0 and d["taken_alpha"][1] == 0 and np.all(np.isnan(d.phi[1]))
    assert [e[0] for e in rec.events("step-skipped")] == [1]
    truth = _truth(setup, tape, d.alpha_grid)
    rows = [0, 2, 3]
    for name in ("phi", "train_loss", "slope0", "grad_norm"):
        got = d.phi[rows] if name == "phi" else d[name][rows]
        np.testing.assert_allclose(got, truth[name], rtol=RTOL, err_msg=f"{setup}: {name}")


def test_fsdp2_mixed_precision_is_measured_at_the_training_precision(world2):
    """MixedPrecisionPolicy(param_dtype=bfloat16, reduce_dtype=float32): the sharded forward the probe runs
    computes in bfloat16, as training does, so phi(0) is train_loss exactly and every value agrees with the
    fp32 truth to bfloat16 precision (8 mantissa bits: 1e-2), not to 1e-5."""
    from recorder.store import Recording

    out = _ran(world2)
    tape = torch.load(out / "fsdp2_bf16.pt")
    assert all(tape["identical"]) and tape["writers"] == [True, False]
    d = Recording(out / "fsdp2_bf16.gda").read()
    assert len(d) == 3 and np.all(d["status"] == 0)
    np.testing.assert_allclose(d.phi[:, 0], d["train_loss"], rtol=1e-6)
    truth = _truth("fsdp2_bf16", tape, d.alpha_grid)
    for name in ("phi", "train_loss", "slope0", "grad_norm"):
        np.testing.assert_allclose(d.phi if name == "phi" else d[name], truth[name], rtol=1e-2, err_msg=name)


def test_rank0_without_a_writer_still_takes_part(world2):
    """Rank 0 cannot open its recording (a path under /dev/null): it still joins every collective of the
    probe, so no rank waits and training is bit-identical to training without the recorder."""
    out = _ran(world2)  # the whole job finished: nothing hung, nothing crashed
    tape = torch.load(out / "fsdp2_nowriter.pt")
    assert all(tape["identical"]) and tape["writers"] == [False, False]
    assert not list(out.glob("fsdp2_nowriter*.gda*"))


@pytest.mark.parametrize("setup", NODES)
def test_two_nodes_rank0_of_the_job_writes(two_nodes, setup):
    """torchrun --nnodes=2 twice on one host (c10d rendezvous on loopback), 2 processes each: a world of 4;
    FSDP2 per layer, FSDP2 + tensor parallel on a 2 x 2 mesh, and HSDP (FSDP2 on a 2 x 2 mesh: replicated
    over one dimension, sharded over the other)."""
    _check_exact(_ran(two_nodes), setup, 4)


def test_killing_a_rank_leaves_a_readable_recording(tmp_path):
    """Rank 1 dies by SIGKILL after step 3 of 6: rank 0's recording holds every row it committed."""
    from recorder.store import Recording

    rcs, log = _wait([_launch(tmp_path, ["kill"])], timeout=180)
    assert rcs[0] != 0
    d = Recording(tmp_path / "fsdp2_mlp.gda").read()
    assert len(d) >= 3, log[-3000:]
    assert np.all(d["status"][:3] == 0) and np.all(np.isfinite(d.phi[:3]))


def test_lightning_model_parallel_strategy_fsdp2(tmp_path):
    """Lightning's ModelParallelStrategy (FSDP2, CPU) with GdaCallback equals the one-process truth.
    (Lightning's FSDPStrategy, FSDP1, refuses a CPU accelerator: "The strategy `fsdp` requires a GPU".)"""
    pytest.importorskip("lightning")
    from recorder.store import Recording

    proc = subprocess.run([sys.executable, str(HERE / "helpers" / "sharded_lightning.py"), str(tmp_path)], check=False,
                          cwd=str(ROOT),
                          env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    tape = torch.load(tmp_path / "lightning.pt")
    rec = Recording(tmp_path / "lightning.gda")
    d = rec.read()
    assert len(d) == 3 and np.all(d["status"] == 0), rec.events()
    assert rec.run["sharding"]["kind"] == "fsdp2" and tape["world"] == 2
    truth = _truth("lightning", tape, d.alpha_grid)
    for name in ("phi", "train_loss", "slope0", "grad_norm"):
        np.testing.assert_allclose(d.phi if name == "phi" else d[name], truth[name], rtol=RTOL, err_msg=name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lightning.gda", "lightning.pt"]
