"""A tiny training run, recorded with gda_gl's recorder and paced, so that a notebook can follow it live.

Run it in another process (the usual case on a GPU machine: training and the notebook's kernel are
different processes), for example from the example notebook::

    python train_small.py runs/small.gda --steps 300 --delay 0.05

A 20-32-2 MLP (tanh) on a fixed random two-class problem, SGD with momentum on mini-batches of 64,
the probe's ``standard`` alpha grid.  Needs only torch and gda_gl (no data download).  Rows are
committed every ``--commit`` seconds, which is what a follower sees arrive.
"""

from __future__ import annotations

import argparse
import logging
import time

log = logging.getLogger("train_small")


def main(argv: list[str] | None = None) -> int:
    import torch
    from torch import nn

    import recorder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", help="the .gda recording to write")
    ap.add_argument("--steps", type=int, default=300, help="optimizer steps")
    ap.add_argument("--delay", type=float, default=0.05, help="seconds to wait after each step")
    ap.add_argument("--commit", type=float, default=0.25, help="seconds between commits of new rows")
    args = ap.parse_args(argv)

    g = torch.Generator().manual_seed(0)
    X = torch.randn(1024, 20, generator=g)
    y = ((X[:, :5].sum(1) + 0.3 * torch.randn(1024, generator=g)) > 0).long()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 2))
    opt = torch.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    bs, nb = 64, 1024 // 64
    run = {"name": "small", "data": "random 2-class, 1024 x 20"}
    with recorder.attach(opt, model, loss_fn, args.out, probe="standard", seed=0, overwrite=True,
                         commit_interval=args.commit, run=run) as rec:
        for step in range(args.steps):
            i = step % nb
            rec.set_epoch(step // nb)
            xb, yb = X[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
            opt.zero_grad()
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            if args.delay:
                time.sleep(args.delay)
    log.info("wrote %s (%d steps)", args.out, args.steps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
