"""The models the probe benchmark trains: what a preset costs and how well it agrees is measured on these.

Each setup is a :class:`Setup`: a model factory, a loss module, ``batch_at(step, seed)`` (the step's
mini-batch, the same for the same step and seed), an optimizer factory taking the learning rate, and
the learning rates the agreement runs use (the default one first; the others give overshooting and
near-optimal steps too, not only undershoots).

* ``CNN (benchmark)``: the benchmark CNN (2 conv with BatchNorm + 1 linear, 6k parameters) on 8x8
  digits, batch 128, SGD with momentum: a ~3 ms step, where the probe's fixed cost per step shows most.
* ``small CNN``: 2 conv + 2 linear (no normalisation) on digits upsampled to 16x16, batch 128, SGD
  with momentum: a step of some 20 ms on 2 cores, the size of issue 27's table.
* ``transformer LM``: a 2-layer causal transformer over characters (width 64, dropout 0.1), batch
  64 x 32, AdamW; its text is this package's own sources (no download).
* ``MLP``: 64-128-64-10 with ReLU on digits, batch 128, Adam.

Only torch and (when installed) scikit-learn's bundled digits are needed; without scikit-learn the
digits are replaced by seeded random data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

__all__ = ["SETUPS", "Setup", "setup"]


@dataclass
class Setup:
    """One benchmark model: see the module docstring."""

    name: str
    factory: Callable
    loss_fn: object
    batch_at: Callable
    make_opt: Callable
    lrs: tuple


def _models():
    import torch
    from torch import nn

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

        def forward(self, x):
            return self.net(x)

    class CNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.b1 = nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16)
            self.c2, self.b2 = nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32)
            self.fc = nn.Linear(32 * 2 * 2, 10)

        def forward(self, x):
            x = x.view(-1, 1, 8, 8)
            x = torch.max_pool2d(torch.relu(self.b1(self.c1(x))), 2)
            x = torch.max_pool2d(torch.relu(self.b2(self.c2(x))), 2)
            return self.fc(x.flatten(1))

    class Attention(nn.Module):
        def __init__(self, d=32):
            super().__init__()
            self.embed = nn.Linear(8, d)
            self.attn = nn.MultiheadAttention(d, 4, batch_first=True)
            self.norm = nn.LayerNorm(d)
            self.head = nn.Linear(d, 10)

        def forward(self, x):
            t = self.embed(x.view(-1, 8, 8))
            a, _ = self.attn(t, t, t, need_weights=False)
            return self.head(self.norm(t + a).mean(1))

    return {"MLP": MLP, "CNN": CNN, "attention": Attention}


def _batch(n=128, seed=0):
    import torch

    try:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        return torch.tensor(X[:n] / 16.0, dtype=torch.float32), torch.tensor(y[:n])
    except ImportError:
        g = torch.Generator().manual_seed(seed)
        return torch.rand(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)


def _digits(n=1792, side=8):
    import torch

    try:
        from sklearn.datasets import load_digits

        X, y = load_digits(return_X_y=True)
        X, y = torch.tensor(X[:n] / 16.0, dtype=torch.float32), torch.tensor(y[:n])
    except ImportError:
        g = torch.Generator().manual_seed(0)
        X, y = torch.rand(n, 64, generator=g), torch.randint(0, 10, (n,), generator=g)
    if side != 8:
        X = torch.nn.functional.interpolate(X.view(-1, 1, 8, 8), size=(side, side), mode="bilinear",
                                            align_corners=False).reshape(len(X), -1).contiguous()
    return X, y


def _digit_batches(X, y, batch=128):
    import torch

    def batch_at(step: int, seed: int = 0):
        g = torch.Generator().manual_seed(1_000_003 * seed + step)
        idx = torch.randperm(len(X), generator=g)[:batch]
        return X[idx], y[idx]

    return batch_at


def _bench_cnn():
    return _models()["CNN"]


def _small_cnn():
    import torch
    from torch import nn

    class SmallCNN(nn.Module):
        """2 conv + 2 linear on 16x16 inputs (no normalisation, no dropout)."""

        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 32, 3, padding=1)
            self.c2 = nn.Conv2d(32, 64, 3, padding=1)
            self.fc1 = nn.Linear(64 * 4 * 4, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = x.view(-1, 1, 16, 16)
            x = torch.max_pool2d(torch.relu(self.c1(x)), 2)
            x = torch.max_pool2d(torch.relu(self.c2(x)), 2)
            return self.fc2(torch.relu(self.fc1(x.flatten(1))))

    return SmallCNN


def _mlp():
    return _models()["MLP"]


def _corpus(n_chars: int = 60000) -> str:
    """Text for the language model: the recorder package's own Python sources (no download)."""
    import recorder

    root = Path(recorder.__file__).resolve().parent
    text = "".join(p.read_text() for p in sorted(root.glob("*.py")))
    return (text * (1 + n_chars // max(1, len(text))))[:n_chars]


def _lm(seq=32, batch=64):
    import torch
    from torch import nn
    from torch.nn import functional as F

    text = _corpus()
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([index[c] for c in text])

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

    def batch_at(step: int, seed: int = 0):
        g = torch.Generator().manual_seed(1_000_003 * seed + step)
        start = torch.randint(0, len(ids) - seq - 1, (batch,), generator=g)
        x = torch.stack([ids[i:i + seq] for i in start])
        y = torch.stack([ids[i + 1:i + seq + 1] for i in start])
        return x, y

    return TinyLM, SeqCE(), batch_at


def _sgd(momentum=0.9):
    import torch

    return lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=momentum)


def _adam(cls_name="Adam"):
    import torch

    cls = getattr(torch.optim, cls_name)
    return lambda params, lr: cls(params, lr=lr)


def setup(name: str) -> Setup:
    """The :class:`Setup` called ``name`` (one of :data:`SETUPS`)."""
    from torch import nn

    if name == "CNN (benchmark)":
        X, y = _digits()
        return Setup(name, _bench_cnn(), nn.CrossEntropyLoss(), _digit_batches(X, y), _sgd(), (0.05, 0.5, 2.0))
    if name == "small CNN":
        X, y = _digits(side=16)
        return Setup(name, _small_cnn(), nn.CrossEntropyLoss(), _digit_batches(X, y), _sgd(), (0.02, 0.1, 0.3))
    if name == "transformer LM":
        factory, loss, batch_at = _lm()
        return Setup(name, factory, loss, batch_at, _adam("AdamW"), (3e-3, 1e-2, 3e-2))
    if name == "MLP":
        X, y = _digits()
        return Setup(name, _mlp(), nn.CrossEntropyLoss(), _digit_batches(X, y), _adam(), (3e-3, 2e-2, 6e-2))
    raise KeyError(f"unknown probe benchmark model {name!r} (choose from {', '.join(SETUPS)})")


#: the probe benchmark's models, in the order the tables list them
SETUPS = ("CNN (benchmark)", "small CNN", "transformer LM", "MLP")
