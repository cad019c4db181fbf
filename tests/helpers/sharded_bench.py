"""Per-rank cost of the probe under FSDP2 (not a test): ``torchrun --nproc_per_node=N sharded_bench.py``.

A 3-layer MLP of 4096 x 4096 layers (about 50M parameters) sharded per layer with ``fully_shard``.
Rank 0 prints, per rank count: the local shard size, the probe's time for K alphas against K plain
sharded forward passes of the same batch (the floor), and the resident memory each adds over what the
process held just before it (sampled every millisecond from /proc/self/status): the difference is the
probe's own memory beyond the gathered layers and activations any sharded forward needs.
"""

from __future__ import annotations

import threading
import time

import torch
import torch.distributed as dist
from torch import nn

K = 17
WIDTH = 4096


def rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Peak:
    """Highest RSS seen while the block runs, sampled by a thread."""

    def __enter__(self):
        self.base, self.peak, self._run = rss(), rss(), True
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self):
        while self._run:
            self.peak = max(self.peak, rss())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self._run = False
        self._t.join()


def main():
    from torch.distributed.fsdp import fully_shard

    import recorder
    from recorder.probe import MicroBatch, ProbeConfig

    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = nn.Sequential(*[nn.Linear(WIDTH, WIDTH) for _ in range(3)])
    for m in model:
        fully_shard(m)
    fully_shard(model)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    loss_fn = nn.MSELoss()
    rec = recorder.attach(opt, model, loss_fn, "/tmp/sharded_bench.gda", overwrite=True,
                          probe=ProbeConfig(k=K, strategy="sweep"))
    x, y = torch.randn(8, WIDTH), torch.randn(8, WIDTH)
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()  # one recorded step: warm-up
    w1 = rec.probe.flat()
    w0 = w1 - 1e-3
    batches = [MicroBatch((x,), {}, y)]
    dist.barrier()
    with Peak() as peak:
        t0 = time.perf_counter()
        rec.probe.measure(w0, w1, batches=batches, distributed=True)
        t_probe = time.perf_counter() - t0
    dist.barrier()
    model.eval()
    with Peak() as floor, torch.no_grad():
        t0 = time.perf_counter()
        for _ in range(K):
            loss_fn(model(x), y)
            model.reshard()
        t_fwd = time.perf_counter() - t0
    rec.close()
    local = w1.numel() * w1.element_size()
    rows = [None] * dist.get_world_size()
    dist.all_gather_object(rows, (local, t_probe, t_fwd, peak.peak - peak.base, floor.peak - floor.base))
    if dist.get_rank() == 0:
        n = sum(p.numel() for p in model.parameters())
        print(f"{n / 1e6:.1f}M parameters on {len(rows)} ranks, K={K}")
        for r, (loc, tp, tf, mem, fmem) in enumerate(rows):
            print(f"rank {r}: local shard {loc / 2**20:.0f} MiB; probe {tp:.2f} s vs {K} sharded forwards "
                  f"{tf:.2f} s ({tp / tf:.2f}x); memory while probing +{mem / 2**20:.0f} MiB, while running the "
                  f"forwards +{fmem / 2**20:.0f} MiB: the probe's own {(mem - fmem) / loc:.1f} x local shard")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
