"""DDP: each rank probes its shard, per-alpha sums are all-reduced, only rank 0 writes (2 CPU ranks, gloo)."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))


def _worker(rank, world, init_file, out_dir):
    sys.path.insert(0, os.path.dirname(__file__))
    import recorder
    from models import MLP, digits
    from recorder.probe import ProbeConfig

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(0)
    model = MLP()
    ddp = nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.5)
    loss_fn = nn.CrossEntropyLoss()
    X, y = digits(128)
    xs, ys = X[rank::world], y[rank::world]
    snaps = []
    rec = recorder.attach(opt, model, loss_fn, os.path.join(out_dir, "ddp.gda"),
                          probe=ProbeConfig(k=5, strategy="sweep"),
                          strict=True)
    opt.register_step_pre_hook(lambda o, a, k: snaps.append([p.detach().clone() for p in model.parameters()]))
    for _ in range(3):
        opt.zero_grad()
        loss_fn(ddp(xs), ys).backward()
        opt.step()
    rec.close()
    if rank == 0:
        snaps.append([p.detach().clone() for p in model.parameters()])
        flat = [torch.cat([p.reshape(-1) for p in s]).numpy() for s in snaps]
        np.save(os.path.join(out_dir, "w.npy"), np.array(flat))
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_probe_equals_single_process_on_the_union(tmp_path):
    from models import MLP, digits
    from recorder.probe import naive_phi
    from recorder.store import Recording

    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    d = Recording(tmp_path / "ddp.gda").read()
    assert len(d) == 3 and np.all(d["status"] == 0)
    assert Recording(tmp_path / "ddp.gda").run["world_size"] == 2
    ws = np.load(tmp_path / "w.npy")
    model = MLP()
    shapes = [p.shape for p in model.parameters()]
    sizes = [p.numel() for p in model.parameters()]

    def unflat(v):
        return [torch.from_numpy(c.copy()).view(s) for c, s in zip(np.split(v, np.cumsum(sizes)[:-1]), shapes)]

    X, y = digits(128)  # the union of both shards
    for k in range(3):
        ref = naive_phi(model, nn.CrossEntropyLoss(), unflat(ws[k]), unflat(ws[k + 1]), lambda m: list(m.parameters()),
                        d.alpha_grid, ((X,), {}), y)
        np.testing.assert_allclose(d.phi[k], ref, rtol=1e-5)
    # train_loss is the mean over both ranks' shards (the union's loss at w_k), not rank 0's own
    np.testing.assert_allclose(d["train_loss"], d.phi[:, 0], rtol=1e-5)
    assert not list(tmp_path.glob("*.gda-*"))  # one file, written once
