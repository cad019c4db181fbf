"""Lightning's ModelParallelStrategy (FSDP2) on 2 CPU processes with the recorder's GdaCallback.

``python sharded_lightning.py OUT``: Lightning launches the second process itself.  The module shards
its MLP per layer in ``configure_model``; a step pre-hook registered in ``configure_optimizers`` (before
the callback's) saves the gathered weights w_k, a post-hook gathers every rank's batch of the step (Lightning
runs ``training_step`` inside ``step(closure)``), so rank 0
writes ``OUT/lightning.pt`` for the one-process truth in tests/test_sharded.py.
"""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist
from torch import nn

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))

import lightning.pytorch as pl
import sharded_worker as W

from recorder.integrations.lightning import GdaCallback
from recorder.probe import ProbeConfig, probing


class Module(pl.LightningModule):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.net = W.MLP()
        self.tape = {"w": [], "batches": []}
        self._batch = None

    def configure_model(self):
        from torch.distributed.fsdp import fully_shard

        mesh = self.device_mesh["data_parallel"]
        for m in self.net.children():
            fully_shard(m, mesh=mesh)
        fully_shard(self.net, mesh=mesh)

    def training_step(self, batch, idx):
        if not probing():  # the probe calls training_step too
            self._batch = batch
        x, y = batch
        return nn.functional.cross_entropy(self.net(x), y)

    def _before_step(self, opt, args, kwargs):
        self.tape["w"].append(W.full_state(self.net))

    def _after_step(self, opt, args, kwargs):  # Lightning runs training_step inside step(closure)
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, self._batch)
        self.tape["batches"].append([(torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts]))])

    def configure_optimizers(self):
        opt = torch.optim.Adam(self.parameters(), lr=0.05)
        opt.register_step_pre_hook(self._before_step)  # before the callback's hooks: sees w_k first
        opt.register_step_post_hook(self._after_step)
        return opt


def main():
    from lightning.pytorch.strategies import ModelParallelStrategy

    out = sys.argv[1]
    torch.set_num_threads(1)
    x, y = W.data("mlp", 0, 48)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=8)
    module = Module()
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy=ModelParallelStrategy(2, 1), max_steps=3,
                         logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False,
                         callbacks=[GdaCallback(os.path.join(out, "lightning.gda"), probe=ProbeConfig(k=5),
                                                overwrite=True)])
    trainer.fit(module, loader)
    module.tape["w"].append(W.full_state(module.net))
    if trainer.global_rank == 0:
        torch.save({**module.tape, "world": trainer.world_size}, os.path.join(out, "lightning.pt"))


if __name__ == "__main__":
    main()
