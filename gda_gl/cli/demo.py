"""``gda-gl demo``: record real training runs on scikit-learn's bundled digits, then show them.

Two runs of the same small MLP (64-32-10, tanh) from the same seed:

* ``demo-sgd.gda``: SGD with momentum on mini-batches of 64, the probe's
  ``standard`` grid (17 alphas, 0..2) on the current mini-batch;
* ``demo-cg.gda``: the paper's setting, Polak-Ribiere CG with Rasmussen's line
  search, K = 20 iterations per mini-batch of 128; every trial point recorded.

With ``--sweep`` it adds SGD runs at three learning rates for comparison.
Afterwards the viewer opens when a display exists, otherwise PNGs are
rendered next to the recordings.  No data is downloaded.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["record_demo", "DemoRun"]


class DemoRun:
    """Name, path and a one-line description of a recorded demo run."""

    def __init__(self, name: str, path: Path, describe: str):
        self.name, self.path, self.describe = name, path, describe


#: digits held out of training: the validation set whose loss and accuracy the demo logs
VALIDATION = 297


def _data(seed: int):
    """(training X, y), (validation X, y): a seeded shuffle of the 1,797 digits, the last 297 held out."""
    import torch
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(X), generator=g)
    X = torch.tensor(X / 16.0, dtype=torch.float32)[perm]
    y = torch.tensor(y)[perm]
    return (X[:-VALIDATION], y[:-VALIDATION]), (X[-VALIDATION:], y[-VALIDATION:])


def _validate(rec, model, loss_fn, val) -> float:
    """Log the validation loss and accuracy at the current iteration (rec.log: series beside phi); returns
    the validation loss (what the progress bar shows)."""
    import torch

    with torch.no_grad():
        out = model(val[0])
        v = float(loss_fn(out, val[1]))
        rec.log_dict({"val_loss": v, "val_accuracy": float((out.argmax(1) == val[1]).float().mean())})
    return v


def _model(seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.Tanh(), nn.Linear(32, 10))


def _progress(total: int, desc: str, quiet: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="it", disable=quiet, leave=True, dynamic_ncols=True)


def _sgd_run(path: Path, lr: float, epochs: int, seed: int, quiet: bool, tags: dict) -> None:
    import torch
    from torch import nn

    import recorder

    (X, y), val = _data(seed)
    model = _model(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    bs = 64
    nb = (len(X) + bs - 1) // bs
    with recorder.attach(opt, model, loss_fn, path, probe="standard", seed=seed, tags=tags, overwrite=True,
                         run={"name": path.stem, "data": "sklearn digits (1,500 of 1,797 x 64; 297 held out to "
                                                 "validate), mini-batches of 64"}) as rec, \
            _progress(epochs * nb, path.stem, quiet) as bar:
        for ep in range(epochs):
            rec.set_epoch(ep)
            for i in range(nb):
                xb, yb = X[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
                opt.zero_grad()
                loss = loss_fn(model(xb), yb)
                loss.backward()
                opt.step()
                if i % 6 == 5:
                    _validate(rec, model, loss_fn, val)
                bar.update()
                bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)


def _cg_run(path: Path, k_per_batch: int, epochs: int, seed: int, quiet: bool, tags: dict) -> None:
    from torch import nn

    import recorder
    from recorder.optim import CG

    (X, y), val = _data(seed)
    model = _model(seed)
    opt = CG(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    bs = 128
    nb = len(X) // bs
    with recorder.attach(opt, model, loss_fn, path, probe="standard", seed=seed, overwrite=True,
                         tags=dict(tags, iterations_per_batch=k_per_batch),
                         run={"name": path.stem, "data": f"sklearn digits, mini-batches of {bs}, "
                                                         f"K = {k_per_batch} CG iterations each"}) as rec, \
            _progress(epochs * nb * k_per_batch, path.stem, quiet) as bar:
        for ep in range(epochs):
            rec.set_epoch(ep)
            for i in range(nb):
                xb, yb = X[i * bs:(i + 1) * bs], y[i * bs:(i + 1) * bs]
                opt.reset()  # a new error function: restart CG from steepest descent

                def closure():
                    opt.zero_grad()
                    loss = loss_fn(model(xb), yb)
                    loss.backward()
                    return loss

                for _ in range(k_per_batch):
                    loss = opt.step(closure)
                    bar.update()
                v = _validate(rec, model, loss_fn, val)
                # CG drives each mini-batch's loss to ~0 (it overfits the batch): 3 significant digits, and the
                # validation loss, which says how training goes
                bar.set_postfix(batch_loss=f"{float(loss):.3g}", val_loss=f"{v:.3g}", refresh=False)


def record_demo(out_dir: str | os.PathLike = "runs", *, sweep: bool = False, quick: bool = False,
                seed: int = 0, quiet: bool = False) -> list[DemoRun]:
    """Record the demo runs into ``out_dir`` (replacing earlier ones) and return them."""
    import torch

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    epochs_sgd, epochs_cg = (3, 1) if quick else (12, 3)
    runs = []
    t0 = time.perf_counter()
    p = out / "demo-sgd.gda"
    _sgd_run(p, 0.05, epochs_sgd, seed, quiet, {"demo": "sgd"})
    runs.append(DemoRun("demo-sgd", p, f"SGD lr=0.05 momentum=0.9, batch 64, {epochs_sgd} epochs"))
    p = out / "demo-cg.gda"
    _cg_run(p, 20, epochs_cg, seed, quiet, {"demo": "cg"})
    runs.append(DemoRun("demo-cg", p, f"CG, K=20 per batch of 128, {epochs_cg} epochs"))
    if sweep:
        for lr in (0.01, 0.2, 0.8):
            p = out / f"demo-sweep-lr{lr:g}.gda"
            _sgd_run(p, lr, max(2, epochs_sgd // 2), seed, quiet, {"demo": "sweep", "lr": lr})
            runs.append(DemoRun(p.stem, p, f"SGD lr={lr:g} momentum=0.9"))
    log.info("demo recorded %d runs in %.1f s", len(runs), time.perf_counter() - t0)
    return runs
