"""Peer comparisons the repository adds to the packaged suites (``gda_gl.bench``) for RESULTS.md.

Other libraries measured on the same data in the same run: matplotlib Agg drawing the render suite's
samples, tsdownsample's MinMax (Rust, SIMD) beside the pyramid ingest, and Cockpit's cheapest
configuration beside the recorder's presets.  :func:`extend` is the ``extend`` hook of
:func:`gda_gl.bench.runner.run_suites`.  A peer that is not installed reports n/a (and Cockpit a note).
"""

from __future__ import annotations

import importlib.util
import logging
import math
import time

import numpy as np

from gda_gl.bench.common import timeit

log = logging.getLogger(__name__)

#: the suite notes of RESULTS.md: the packaged ones, with what the peers add
NOTE_ADDITIONS = {
    "render": " matplotlib Agg (defaults, path simplification on) draws the same samples.",
    "lod": " tsdownsample's MinMax (Rust, SIMD; phi only) is a peer reference.",
    "probe": " Cockpit's cheapest configuration ('economy') runs the same training loop.",
}


def notes(base: dict[str, str]) -> dict[str, str]:
    """The packaged suite notes ``base`` with the peers' sentences appended."""
    return {k: v + NOTE_ADDITIONS.get(k, "") for k, v in base.items()}


def extend(name: str, tables: dict, quick: bool) -> None:
    """Add the peer measurements to one packaged suite's ``tables`` (in place)."""
    fn = {"render": _render, "lod": _lod, "probe": _probe}.get(name)
    if fn is not None:
        fn(tables, quick)


def _insert_after(row: dict, after: str, key: str, value) -> None:
    """Put ``key`` right after ``after`` in ``row``, keeping the table's column order readable."""
    items = list(row.items())
    at = next((i + 1 for i, (k, _) in enumerate(items) if k == after), len(items))
    items.insert(at, (key, value))
    row.clear()
    row.update(items)


def _matplotlib(data) -> float:
    """Seconds for matplotlib Agg to draw ``data``'s samples as one line at the render suite's size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gda_gl.bench.render import H, W

    x = (data.iteration[:, None] + data.alpha_grid[None, :]).reshape(-1)
    y = data.phi.reshape(-1)
    fig = plt.figure(figsize=(W / 100, H / 100), dpi=100)
    ax = fig.add_subplot(111)
    ax.plot(x, y, lw=1)
    t = timeit(fig.canvas.draw, repeat=3, warmup=1)
    plt.close(fig)
    return t


def _render(tables: dict, quick: bool) -> None:
    """matplotlib Agg on the render suite's synthetic data at 1e7 samples (and 1e6 in a full run)."""
    from gda_gl.bench.render import _synthetic

    mpl_at = {10_000_000} if quick else {1_000_000, 10_000_000}
    have = importlib.util.find_spec("matplotlib") is not None
    if not have:
        log.warning("matplotlib is not installed: the render suite's matplotlib columns read n/a")
    for row in tables.get("render", []):
        samples = int(float(row["samples"]))
        if samples not in mpl_at:
            continue
        ms = 1e3 * _matplotlib(_synthetic(samples // 16, 16)) if have else math.nan
        _insert_after(row, "LOD off ms", "matplotlib Agg ms", ms)
        _insert_after(row, "matplotlib Agg ms", "Agg / overview", ms / row["overview ms"])


def _lod(tables: dict, quick: bool) -> None:
    """tsdownsample's MinMax over a phi array of each row's size."""
    try:
        from tsdownsample import MinMaxDownsampler
    except Exception:  # noqa: BLE001 - optional reference
        MinMaxDownsampler = None
    rng = np.random.default_rng(0)
    for row in tables.get("lod", []):
        t = math.nan
        if MinMaxDownsampler is not None:
            n, k = (int(v.replace(",", "")) for v in row["rows x K"].split(" x "))
            flat = rng.random((n, k), dtype=np.float32).ravel()
            t = timeit(lambda: MinMaxDownsampler().downsample(flat, n_out=2 * (n // 64)), repeat=3)
            del flat
        _insert_after(row, "ingest x floor", "tsdownsample MinMax (phi only) s", t)


def _probe(tables: dict, quick: bool) -> None:
    """Cockpit's cheapest configuration as a row of the training-slowdown table."""
    rows = tables.get("training slowdown")
    if not rows:
        return
    base = next(r["s/step"] for r in rows if r["preset"] == "(no recorder)")
    rows.append(_cockpit_row(quick, base))


def _cockpit_row(quick: bool, base_step: float) -> dict:
    """Cockpit economy on the benchmark CNN (the probe suite's model and data), seconds per step."""
    row = {"model": "CNN (benchmark)", "preset": "Cockpit cheapest (cockpit-for-pytorch)"}
    if importlib.util.find_spec("cockpit") is None or importlib.util.find_spec("backpack") is None:
        row.update({"s/step": math.nan, "x training": math.nan,
                    "note": "not installed: pip install cockpit-for-pytorch 'setuptools<81', then pip install "
                            "torch==<your version> again (backpack pulls torchvision, which upgrades torch)"})
        return row
    try:
        import torch

        from gda_gl.bench.probe import _batch, _models

        torch.manual_seed(0)
        X, y = _batch(1792)
        train = cockpit_economy(_models()["CNN"](), X, y)
        steps = 20 if quick else 60
        t0 = time.perf_counter()
        train(0, steps)
        t = (time.perf_counter() - t0) / steps
        row.update({"s/step": t, "x training": t / base_step, "note": "configuration('economy')"})
    except Exception as exc:  # report exactly why
        row.update({"s/step": math.nan, "x training": math.nan, "note": f"failed: {type(exc).__name__}: {exc}"[:160]})
    return row


def cockpit_economy(model, X, y):
    """Cockpit's ``economy`` configuration watching ``model`` (extended by BackPACK here) train on (X, y):
    SGD (lr 0.05, momentum 0.9), batches of 128 taken in turn, cross-entropy.  Returns ``train(start, n)``,
    which runs steps ``start`` .. ``start + n - 1``.  Needs cockpit-for-pytorch and backpack-for-pytorch."""
    import torch
    from backpack import extend
    from cockpit import Cockpit
    from cockpit.utils.configuration import configuration
    from torch import nn

    model = extend(model)
    loss_fn = extend(nn.CrossEntropyLoss())
    ind = extend(nn.CrossEntropyLoss(reduction="none"))
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ck = Cockpit(model.parameters(), quantities=configuration("economy"))

    def train(start: int, n: int) -> None:
        for s in range(start, start + n):
            i = (s * 128) % (len(X) - 128)
            xb, yb = X[i:i + 128], y[i:i + 128]
            opt.zero_grad()
            out = model(xb)
            loss = loss_fn(out, yb)
            losses = ind(out, yb)
            with ck(s, info={"batch_size": 128, "individual_losses": losses, "loss": loss, "optimizer": opt}):
                loss.backward(create_graph=ck.create_graph(s))
            opt.step()

    return train
