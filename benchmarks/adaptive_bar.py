"""Issue 22's bar: the adaptive probe against the dense 65-point grid of the same steps, and its cost.

``python -m benchmarks.adaptive_bar [--quick] [--budgets 5,7] [--no-results-md]``

Per model (the benchmark CNN, a small transformer language model with dropout, an MLP):

* **Agreement.**  Two recorders are attached to the same optimizer, one ``dense`` (65 alphas), one
  adaptive, so both measure phi on exactly the same steps and data (eval mode).  Reported: the share of
  steps whose step class agrees, the share whose grid minimum lies within one dense spacing (2/64) of
  the dense one, the largest gap between the adaptive polyline (linear between its points) and the
  dense curve over [0, 2] (absolute, and relative to that step's dense range), forward passes per step.
* **Cost.**  Training with only the adaptive recorder attached, each run paired with a plain run right
  before it (budgets in alternating order, ``reps`` rounds); the median of the pairs' ratios with its
  min..max range, in wall and in this process's CPU time (a ratio below 1.0 is flagged).

Writes the section ``adaptive`` of ``benchmarks/RESULTS.md`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from gda_gl.bench.common import machine, table
from gda_gl.bench.probe import _batch, _models, ratio_cells, spread

DENSE_SPACING = 2.0 / 64


def _corpus(n_chars: int = 60000) -> str:
    """Text for the language model: this repository's own Python sources (no download)."""
    root = Path(__file__).resolve().parents[1] / "recorder"
    text = "".join(p.read_text() for p in sorted(root.glob("*.py")))
    return (text * (1 + n_chars // max(1, len(text))))[:n_chars]


def _lm_setup(seq=64, batch=16):
    """A 2-layer causal transformer over characters, dropout 0.1; returns (factory, loss, batches, opt)."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    text = _corpus()
    vocab = sorted(set(text))
    ids = torch.tensor([vocab.index(c) for c in text])

    class TinyLM(nn.Module):
        def __init__(self, v=len(vocab), d=64):
            super().__init__()
            self.emb = nn.Embedding(v, d)
            self.pos = nn.Parameter(torch.zeros(seq, d))
            layer = nn.TransformerEncoderLayer(d, 4, 128, dropout=0.1, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.head = nn.Linear(d, v)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(seq), persistent=False)

        def forward(self, x):
            return self.head(self.enc(self.emb(x) + self.pos, mask=self.mask, is_causal=True))

    class SeqCE(nn.Module):
        def forward(self, out, y):
            return F.cross_entropy(out.flatten(0, 1), y.flatten())

    def batch_at(s):
        g = torch.Generator().manual_seed(s)
        start = torch.randint(0, len(ids) - seq - 1, (batch,), generator=g)
        x = torch.stack([ids[i:i + seq] for i in start])
        y = torch.stack([ids[i + 1:i + seq + 1] for i in start])
        return x, y

    return TinyLM, SeqCE(), batch_at, lambda m: torch.optim.AdamW(m.parameters(), lr=3e-3)


def _digits_setup(name):
    import torch
    from torch import nn

    X, y = _batch(1792)
    cls = _models()[name]

    def batch_at(s):
        i = (s * 128) % (len(X) - 128)
        return X[i:i + 128], y[i:i + 128]

    opt = (lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)) if name == "CNN" else \
        (lambda m: torch.optim.Adam(m.parameters(), lr=3e-3))
    return cls, nn.CrossEntropyLoss(), batch_at, opt


SETUPS = {"CNN (benchmark, SGD+momentum)": lambda: _digits_setup("CNN"),
          "transformer LM (dropout 0.1, AdamW)": _lm_setup,
          "MLP (Adam)": lambda: _digits_setup("MLP")}


def _loop(setup, steps, probes):
    """Train ``steps`` steps with one recorder per entry of ``probes``; returns ((wall, CPU) s/step, paths)."""
    import torch

    import recorder

    factory, loss_fn, batch_at, make_opt = setup
    torch.manual_seed(0)
    model = factory()
    opt = make_opt(model)
    tmp = tempfile.mkdtemp(prefix="gda-adaptive-")
    recs = [recorder.attach(opt, model, loss_fn, os.path.join(tmp, f"{i}.gda"), probe=p)
            for i, p in enumerate(probes)]
    for s in range(3):  # warm-up (calibration of 'auto') outside the timed part
        _one_step(model, opt, loss_fn, batch_at(10_000 + s))
    w0, c0 = time.perf_counter(), time.process_time()
    for s in range(steps):
        _one_step(model, opt, loss_fn, batch_at(s))
    t = (time.perf_counter() - w0) / steps, (time.process_time() - c0) / steps
    for r in recs:
        r.close()
    return t, [r.path for r in recs]


def _one_step(model, opt, loss_fn, batch):
    model.train()
    x, y = batch
    opt.zero_grad()
    loss_fn(model(x), y).backward()
    opt.step()


def agreement(dense_path, adaptive_path) -> dict:
    """Step class, minimum location, polyline gap and points per step of two recordings of the same steps."""
    from recorder import schema
    from recorder.store import Recording

    with Recording(dense_path) as rd, Recording(adaptive_path) as ra:
        d, a = rd.read(), ra.read()
    ok = (d["status"] == schema.STATUS_OK) & (a["status"] == schema.STATUS_OK)
    d_al, a_al = d.alphas_of_rows(), a.alphas_of_rows()
    gaps, rel = [], []
    for i in np.nonzero(ok)[0]:
        fin = np.isfinite(a_al[i])
        dense_phi = d.phi[i].astype(np.float64)
        poly = np.interp(d_al[i], a_al[i][fin], a.phi[i][fin].astype(np.float64))
        gap = float(np.max(np.abs(poly - dense_phi)))
        gaps.append(gap)
        rel.append(gap / max(float(np.ptp(dense_phi)), 1e-12))
    cls = d["step_class"][ok] == a["step_class"][ok]
    near = np.abs(d["min_alpha"][ok].astype(np.float64) - a["min_alpha"][ok].astype(np.float64)) \
        <= DENSE_SPACING * (1 + 1e-6)
    pts = np.isfinite(a_al[ok]).sum(axis=1)
    return {"steps": int(ok.sum()), "class agrees": float(cls.mean()), "min within 2/64": float(near.mean()),
            "max gap": max(gaps), "max gap / range": max(rel), "median gap / range": float(np.median(rel)),
            "fwd/step": float(pts.mean())}


def run(quick: bool, budgets=(7,)) -> dict:
    """Both tables for every model: agreement per budget, and the training-time ratio per budget."""
    import torch

    from recorder.probe import ProbeConfig

    torch.set_num_threads(2)
    steps = 40 if quick else 150
    reps = 3 if quick else 5
    agree_rows, cost_rows = [], []
    for label, make in SETUPS.items():
        setup = make()
        cfgs = {b: ProbeConfig(mode="adaptive", budget=b, name=f"adaptive-{b}") for b in budgets}
        _, paths = _loop(setup, steps, ["dense", *cfgs.values()])
        for b, path in zip(budgets, paths[1:]):
            agree_rows.append({"model": label, "budget": b, **agreement(paths[0], path)})
        timing_steps = 30 if quick else 150
        times = {b: [] for b in budgets}
        plain = {b: [] for b in budgets}
        for r in range(reps):  # each adaptive run right after a plain run of its own
            for b in (budgets if r % 2 == 0 else budgets[::-1]):
                plain[b].append(_loop(setup, timing_steps, [])[0])
                times[b].append(_loop(setup, timing_steps, [cfgs[b]])[0])
        for b in budgets:
            cost_rows.append({"model": label, "budget": b,
                              "plain s/step": spread([w for w, _ in plain[b]])["median"],
                              "adaptive s/step": spread([w for w, _ in times[b]])["median"],
                              **ratio_cells(times[b], plain[b], "x training")})
        logging.getLogger(__name__).info("%s done", label)
    return {"agreement with dense (same steps)": agree_rows, "training time, adaptive every step": cost_rows}


def write_section(out: dict, command: str, seconds: float, results: Path) -> None:
    """Replace (or add) the ``## adaptive`` section of ``results``, keeping every other section."""
    m = machine()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    body = [f"Command: `{command}` ({dt.datetime.now().isoformat(timespec='seconds')}, {seconds:.0f} s). "
            f"Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}, numpy {m.get('numpy')}; "
            f"load average at the end {load:.1f} (shared machine: absolute times drift, ratios are per round).",
            "", __doc__.split("\n\n", 2)[2].split("\n\nWrites")[0].strip(), ""]
    for title, rows in out.items():
        body += [f"### {title}", "", table(rows)]
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    head, *sections = text.split("\n## ")
    sections = [sec for sec in sections if sec.partition("\n")[0].strip() != "adaptive"]
    sections.append("adaptive\n" + "\n".join(body))
    results.write_text(head.rstrip("\n") + "\n\n" + "\n".join("## " + sec.strip("\n") + "\n" for sec in sections))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.adaptive_bar", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--budgets", default="7", help="comma-separated adaptive budgets (default 7)")
    p.add_argument("--no-results-md", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("recorder").setLevel(logging.ERROR)
    os.environ.setdefault("GDA_GL_CACHE", tempfile.mkdtemp(prefix="gda-bench-cache-"))
    budgets = tuple(int(b) for b in args.budgets.split(","))
    t0 = time.perf_counter()
    out = run(args.quick, budgets)
    for title, rows in out.items():
        print(f"-- {title}\n{table(rows)}", flush=True)
    if not args.no_results_md:
        cmd = "python -m benchmarks.adaptive_bar" + (" --quick" if args.quick else "") + f" --budgets {args.budgets}"
        write_section(out, cmd, time.perf_counter() - t0, Path(__file__).resolve().parent / "RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
