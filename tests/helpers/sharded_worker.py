"""One torchrun worker for tests/test_sharded.py: train sharded set-ups with and without the recorder.

``python -m torch.distributed.run ... sharded_worker.py OUT SETUP [SETUP ...]``.  For each set-up it
trains the model twice from the same initial weights on the same data (``*_skip``: a fourth batch whose step
the loop skips, the second), once with the recorder attached
(``OUT/SETUP.gda``) and once without, and rank 0 saves ``OUT/SETUP.pt``: the full (gathered) weights
before every step and after the last, the global batches of every step, and whether the two runs'
losses and final local shards are bit-identical on every rank.  The test computes the truth from it
on one process.  ``kill`` makes rank 1 kill itself with SIGKILL after its third step.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

STEPS = 3


class MLP(nn.Module):
    """12 -> 16 -> 5: the output layer's 5 rows do not divide by 2 or 4 ranks (uneven shards)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(12, 16)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc2(torch.tanh(self.fc1(x)))


class Transformer(nn.Module):
    """A one-block transformer on sequences of 6 tokens of 8 features, 5 classes."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Linear(8, 16)
        self.block = nn.TransformerEncoderLayer(16, 2, 32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 5)

    def forward(self, x):
        return self.head(self.block(self.embed(x)).mean(1))


MODELS = {"mlp": MLP, "transformer": Transformer}


def data(kind: str, step: int, n: int = 16):
    """The global batch of ``step`` (the same on every rank)."""
    g = torch.Generator().manual_seed(1000 + step)
    x = torch.randn(n, 6, 8, generator=g) if kind == "transformer" else torch.randn(n, 12, generator=g)
    return x, torch.randint(0, 5, (n,), generator=g)


def clean(name: str) -> str:
    return name.replace("_fsdp_wrapped_module.", "").replace("_checkpoint_wrapped_module.", "").removeprefix("module.")


def full_state(model) -> dict:
    """The unsharded parameters (collective: every rank calls it)."""
    from torch.distributed.fsdp import FullyShardedDataParallel as FSDP1

    if any(isinstance(m, FSDP1) for m in model.modules()):
        with FSDP1.summon_full_params(model, writeback=False):
            return {clean(n): p.detach().clone() for n, p in model.named_parameters()}
    return {clean(n): (p.full_tensor() if hasattr(p, "full_tensor") else p).detach().clone()
            for n, p in model.named_parameters()}


def shard(setup: str, model: nn.Module, world: int):
    """Apply the set-up's sharding; returns (model to call, data-parallel size, my data-parallel index)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    rank = dist.get_rank()
    if setup.startswith("fsdp2") and "tp" not in setup:
        from torch.distributed.fsdp import MixedPrecisionPolicy

        mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) if "bf16" in setup else None
        kw = {"mp_policy": mp} if mp is not None else {}
        if "hsdp" in setup:  # replicated over the first mesh dimension, sharded over the second
            kw["mesh"] = init_device_mesh("cpu", (2, world // 2), mesh_dim_names=("replicate", "shard"))
        if "root" not in setup:  # per layer: the MLP's two Linear layers, the transformer's embed, block, head
            for m in model.children():
                fully_shard(m, **kw)
        fully_shard(model, **kw)
        return model, world, rank
    if setup == "tp":
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        mesh = init_device_mesh("cpu", (world,))
        parallelize_module(model, mesh, {"fc1": ColwiseParallel(), "fc2": RowwiseParallel()})
        return model, 1, 0
    if setup == "fsdp2_tp_2d":
        from torch.distributed.tensor.parallel import (
            ColwiseParallel,
            RowwiseParallel,
            parallelize_module,
        )

        mesh = init_device_mesh("cpu", (world // 2, 2), mesh_dim_names=("dp", "tp"))
        parallelize_module(model, mesh["tp"], {"fc1": ColwiseParallel(), "fc2": RowwiseParallel()})
        fully_shard(model, mesh=mesh["dp"])
        return model, world // 2, mesh.get_local_rank("dp")
    if setup.startswith("fsdp1"):
        from torch.distributed.fsdp import FullyShardedDataParallel as FSDP1
        from torch.distributed.fsdp import ShardingStrategy
        from torch.distributed.fsdp.wrap import ModuleWrapPolicy

        strategy = ShardingStrategy.SHARD_GRAD_OP if "grad_op" in setup else ShardingStrategy.FULL_SHARD
        # fsdp1_root_transformer: only the encoder block wrapped, the embedding and the head left in the root
        # unit; fsdp1_plain: FSDP1(model) without a wrap policy (the root holds everything)
        policy = (None if "plain" in setup else ModuleWrapPolicy({nn.TransformerEncoderLayer}) if "root" in setup
                  else ModuleWrapPolicy({nn.Linear}))
        wrapped = FSDP1(model, auto_wrap_policy=policy, device_id=torch.device("cpu"),
                        use_orig_params=setup == "fsdp1_orig", sharding_strategy=strategy)
        return wrapped, world, rank
    if setup.startswith("ddp"):
        from torch.nn.parallel import DistributedDataParallel as DDP

        return DDP(model), world, rank
    raise ValueError(setup)


def train(setup: str, out: str, record: bool, kill: bool = False):
    """Train STEPS steps; returns (per-step losses, final local shards, tape or None)."""
    import recorder
    from recorder.probe import ProbeConfig

    world = dist.get_world_size()
    kind = "transformer" if "transformer" in setup else "mlp"
    torch.manual_seed(0)
    model, dp, dp_rank = shard(setup, MODELS[kind](), world)
    opt = (torch.optim.SGD(model.parameters(), lr=0.3) if "accum" in setup
           else torch.optim.Adam(model.parameters(), lr=0.05))
    loss_fn = nn.CrossEntropyLoss()
    tape = {"w": [], "batches": []} if record else None
    if record:  # registered before the recorder's hooks, so it sees w_k first
        opt.register_step_pre_hook(lambda o, a, k: tape["w"].append(full_state(model)))
        strategy = "batched" if "batched" in setup else "auto"
        path = "/dev/null/cannot.gda" if "nowriter" in setup else os.path.join(out, f"{setup}.gda")
        inner = model.module if setup.startswith("ddp") else model  # DDP: the recorder sits on the inner module
        try:
            rec = recorder.attach(opt, inner, loss_fn, path, overwrite=True,
                                  probe=ProbeConfig(k=5, strategy=strategy), commit_interval=0.01)
        except ValueError as exc:  # refused at attach (FSDP1 with parameters in its root unit): train on
            rec, tape["refused"] = None, str(exc)
    micro = 2 if "accum" in setup else 1
    losses = []
    for step in range(STEPS + 3 * kill + ("skip" in setup)):
        x, y = data(kind, step, 16 * micro)
        batches = [(x[j::micro], y[j::micro]) for j in range(micro)]  # the global micro-batches
        opt.zero_grad()
        for j, (xg, yg) in enumerate(batches):
            sync = contextlib.nullcontext()
            if hasattr(model, "set_requires_gradient_sync"):  # FSDP2
                model.set_requires_gradient_sync(j == micro - 1)
            elif hasattr(model, "no_sync") and j < micro - 1:  # FSDP1
                sync = model.no_sync()
            xm, ym = xg[dp_rank::dp], yg[dp_rank::dp]
            if "unequal" in setup:  # 7 samples on rank 0, 5 on rank 1
                cut = [(0, 7), (7, 12)][dp_rank]
                xm, ym = xg[cut[0]:cut[1]], yg[cut[0]:cut[1]]
            with sync:
                loss = loss_fn(model(xm), ym)
                (loss / micro).backward()
            losses.append(loss.detach().clone())
        if "skip" in setup and step == 1:  # a guard skips this batch's step: its gradient is discarded
            continue
        if "clip" in setup:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 0.05)
        opt.step()
        if record:
            tape["batches"].append(batches if "unequal" not in setup else [(x[0:7], y[0:7]), (x[7:12], y[7:12])])
        if kill and step == 2 and dist.get_rank() == 1:
            os.kill(os.getpid(), signal.SIGKILL)
    if record:
        tape["w"].append(full_state(model))
        writers = [None] * world
        dist.all_gather_object(writers, rec is not None and rec.writer is not None)
        tape["writers"] = writers
        if rec is not None:
            rec.close()
    shards = [(p.to_local() if hasattr(p, "to_local") else p).detach().clone() for p in model.parameters()]
    return losses, shards, tape


def main():
    out, setups = sys.argv[1], sys.argv[2:]
    torch.set_num_threads(1)
    dist.init_process_group("gloo")
    rank = dist.get_rank()
    for setup in setups:
        if setup == "kill":
            train("fsdp2_mlp", out, record=True, kill=True)
            continue
        l1, s1, tape = train(setup, out, record=True)
        l0, s0, _ = train(setup, out, record=False)
        same = all(torch.equal(a, b) for a, b in zip(l1 + s1, l0 + s0)) and len(l1) == len(l0)
        flags = [None] * dist.get_world_size()
        dist.all_gather_object(flags, bool(same))
        if rank == 0:
            torch.save({"w": tape["w"], "batches": tape["batches"], "identical": flags, "writers": tape["writers"],
                        "world": dist.get_world_size(), "refused": tape.get("refused")},
                       os.path.join(out, f"{setup}.pt"))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
