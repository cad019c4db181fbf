"""A synthetic learning-rate sweep: a folder of recordings as a user's 30-100-run sweep leaves them.

Each run is SGD at one learning rate of a log-spaced range (``config.lr`` logged with the config, as
``rec.log_config`` stores it), one mini-batch per step (the batch id changes every step), epochs of
``steps // 10`` steps, a noisy per-batch training loss that falls faster with a larger rate and
climbs back, noisier, at the largest ones (past 0.3), the phi_k(alpha) of each step a parabola through it (accepted
alpha 1, the SGD step), and a validation loss logged once per epoch.  Used by the sweep tests, the
sweep benchmark (:mod:`gda_gl.bench.sweepbench`) and the README's sweep screenshot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["write_sweep", "sweep_lrs", "GRID"]

#: the alpha grid of every run (the SGD step is alpha = 1)
GRID = np.linspace(0.0, 2.0, 9)


def sweep_lrs(runs: int) -> np.ndarray:
    """The learning rates of a sweep of ``runs`` runs: log-spaced from 0.001 to 1."""
    return np.logspace(-3, 0, runs)


def _run_arrays(lr: float, steps: int, rng) -> tuple[dict, np.ndarray, np.ndarray]:
    """Columns, phi and the per-epoch validation loss of one run at learning rate ``lr``."""
    it = np.arange(steps)
    rate = min(lr, 0.3) * 12.0 / steps
    unstable = max(0.0, lr - 0.3)
    clean = 0.15 + 2.2 * np.exp(-rate * it) + 0.5 * unstable * (1.0 - np.exp(-it / (0.3 * steps)))
    loss = (clean * (1.0 + (0.06 + 0.1 * unstable) * rng.standard_normal(steps))).astype(np.float32)
    curv = loss * (0.2 + 0.1 * rng.random(steps))  # phi stays positive: its minimum is loss * (1 - curv v^2 / loss)
    slope = 2 * curv * (0.6 + 0.9 * lr ** 0.3 + 0.1 * rng.standard_normal(steps))
    phi = loss[:, None] - slope[:, None] * GRID[None, :] + curv[:, None] * GRID[None, :] ** 2
    valley = slope / (2 * curv)
    per_epoch = max(1, steps // 10)
    eff = np.clip(1 - (1 - valley) ** 2 / np.maximum(valley, 1e-3) ** 2, -3, 1)
    cols = {"iteration": it, "epoch": it // per_epoch, "batch": it, "taken_alpha": np.ones(steps),
            "native_step": np.full(steps, lr), "train_loss": loss, "lr": np.full(steps, lr),
            "wall_time": 1.7e9 + it * 0.01, "efficiency": eff, "curvature": 2 * curv, "min_alpha": valley,
            "step_class": np.where(valley < 0.8, 3, np.where(valley > 1.25, 1, 2)).astype(np.int8),
            "samples": np.full(steps, 64)}
    val = clean[per_epoch - 1::per_epoch] * 1.08 + 0.02
    return cols, phi.astype(np.float32), val


def write_sweep(folder, runs: int = 30, steps: int = 2000, seed: int = 0, prefix: str = "lr") -> list[Path]:
    """Write ``runs`` recordings ``PREFIX-NN.gda`` into ``folder`` (created); returns their paths.

    Existing files of the same names are replaced.
    """
    from recorder.store import RecordingWriter

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for j, lr in enumerate(sweep_lrs(runs)):
        cols, phi, val = _run_arrays(float(lr), steps, rng)
        meta = {"name": f"{prefix}={lr:.3g}", "optimizer": "SGD",
                "hyperparameters": {"lr": float(lr), "momentum": 0.0}}
        path = out / f"{prefix}-{j:02d}.gda"
        for extra in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            extra.unlink(missing_ok=True)
        with RecordingWriter(path, GRID, meta, commit_interval=3600) as w:
            w.series.config({"lr": float(lr), "batch_size": 64})
            w.append_arrays(cols, phi)
            per_epoch = max(1, steps // 10)
            for e, v in enumerate(val):
                w.series.log("val_loss", float(v), (e + 1) * per_epoch - 1)
        paths.append(path)
    return paths
