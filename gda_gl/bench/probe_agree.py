"""Agreement of a preset with the dense 65-point line on the same steps (issue 27's bar).

Two or more recorders are attached to the same optimizer, one ``dense`` (65 alphas, 1/32 apart on
[0, 2]) and the presets compared, so every recorder measures phi on exactly the same steps and data,
in the same mode (eval by default).  Per recording of a preset, against dense:

* ``class agrees``: the share of steps whose step class (undershoot, near-optimal, overshoot) is dense's;
* ``min within 2/64``: the share whose stored minimum lies within one dense spacing of dense's;
* ``points/step``: stored points per step (measured losses; phi(0) may come from the training forward);
* the mix of dense's step classes (so a reader sees the runs hold overshoots and near-optimal steps,
  not only undershoots).

:func:`agreement_rows` trains each model at each of its learning rates and seeds (the setups of
:mod:`gda_gl.bench.probe_models`) and returns one row per model and preset over all its runs.
"""

from __future__ import annotations

import logging
import os
import tempfile

import numpy as np

from .probe_models import setup as make_setup

__all__ = ["DENSE_SPACING", "agreement", "agreement_rows", "record_together"]

#: the tolerance of the minimum's location: one spacing of the dense grid
DENSE_SPACING = 2.0 / 64


def train_steps(s, model, opt, steps: int, seed: int, start: int = 0) -> None:
    """``steps`` training steps of setup ``s`` (its batches for ``seed``, from step ``start``)."""
    for i in range(start, start + steps):
        x, y = s.batch_at(i, seed)
        model.train()
        opt.zero_grad()
        s.loss_fn(model(x), y).backward()
        opt.step()


def record_together(s, lr: float, seed: int, steps: int, presets, folder: str) -> list[str]:
    """Train setup ``s`` for ``steps`` steps with one recorder per preset on the same optimizer; the paths."""
    import torch

    import recorder

    torch.manual_seed(seed)
    model = s.factory()
    opt = s.make_opt(model.parameters(), lr)
    tag = f"{s.name.replace(' ', '_')}-lr{lr:g}-s{seed}"
    recs = [recorder.attach(opt, model, s.loss_fn, os.path.join(folder, f"{tag}-{i}.gda"), probe=p,
                            overwrite=True) for i, p in enumerate(presets)]
    try:
        train_steps(s, model, opt, steps, seed)
    finally:
        for r in recs:
            r.close()
    return [str(r.path) for r in recs]


def _read(path):
    from recorder.store import Recording

    with Recording(path) as r:
        return r.read()


def agreement(dense_path, other_path) -> dict:
    """Step class, minimum location and points per step of two recordings of the same steps."""
    from recorder import schema

    d, a = _read(dense_path), _read(other_path)
    ok = (d["status"] == schema.STATUS_OK) & (a["status"] == schema.STATUS_OK)
    cls = d["step_class"][ok] == a["step_class"][ok]
    near = np.abs(d["min_alpha"][ok].astype(np.float64) - a["min_alpha"][ok].astype(np.float64)) \
        <= DENSE_SPACING * (1 + 1e-6)
    al = a.alphas_of_rows()
    pts = np.isfinite(al[ok]).sum(axis=1) if al.ndim == 2 else np.full(int(ok.sum()), al.shape[-1])
    mix = np.bincount(d["step_class"][ok].astype(np.int64), minlength=4)
    return {"steps": int(ok.sum()), "class agrees": int(cls.sum()), "min within 2/64": int(near.sum()),
            "points": int(pts.sum()), "mix": mix.tolist()}


def _merge(parts: list[dict]) -> dict:
    out = {"steps": 0, "class agrees": 0, "min within 2/64": 0, "points": 0, "mix": [0, 0, 0, 0]}
    for p in parts:
        for k in ("steps", "class agrees", "min within 2/64", "points"):
            out[k] += p[k]
        out["mix"] = [x + y for x, y in zip(out["mix"], p["mix"])]
    return out


def _row(model: str, preset: str, runs: int, m: dict) -> dict:
    from recorder import schema

    n = max(m["steps"], 1)
    names = {schema.CLASS_UNDERSHOOT: "under", schema.CLASS_NEAR_OPTIMAL: "near", schema.CLASS_OVERSHOOT: "over"}
    mix = ", ".join(f"{names[c]} {m['mix'][c] / n:.0%}" for c in sorted(names))
    return {"model": model, "preset": preset, "runs": runs, "steps": m["steps"],
            "class agrees": m["class agrees"] / n, "min within 2/64": m["min within 2/64"] / n,
            "points/step": m["points"] / n, "dense's classes": mix}


def agreement_rows(models, presets=("valley",), steps: int = 50, seeds=(0, 1), lrs: int | None = None,
                   folder: str | None = None) -> tuple[list[dict], list[dict]]:
    """Rows per model and preset of their agreement with dense over every learning rate and seed of the model
    (``steps`` steps each; ``lrs`` limits the learning rates to the first n), and the same per learning rate.

    With ``folder``, recordings already there (from an earlier call with the same arguments) are read
    instead of recorded again."""
    log = logging.getLogger(__name__)
    rows, by_lr = [], []
    folder = folder or tempfile.mkdtemp(prefix="gda-agree-")
    for name in models:
        s = make_setup(name)
        parts: dict[str, list[dict]] = {p: [] for p in presets}
        for lr in s.lrs[:lrs]:
            here: dict[str, list[dict]] = {p: [] for p in presets}
            for seed in seeds:
                paths = _existing(folder, s, lr, seed, len(presets) + 1) or \
                    record_together(s, lr, seed, steps, ["dense", *presets], folder)
                for p, path in zip(presets, paths[1:]):
                    here[p].append(agreement(paths[0], path))
                log.info("agreement: %s lr %g seed %d done", name, lr, seed)
            for p in presets:
                parts[p] += here[p]
                by_lr.append({**_row(name, p, len(here[p]), _merge(here[p])), "lr": lr})
        rows += [_row(name, p, len(parts[p]), _merge(parts[p])) for p in presets]
    return rows, by_lr


def _existing(folder: str, s, lr: float, seed: int, n: int) -> list[str] | None:
    """The paths :func:`record_together` writes for these arguments, when all of them exist."""
    tag = f"{s.name.replace(' ', '_')}-lr{lr:g}-s{seed}"
    paths = [os.path.join(folder, f"{tag}-{i}.gda") for i in range(n)]
    return paths if all(os.path.exists(p) for p in paths) else None
