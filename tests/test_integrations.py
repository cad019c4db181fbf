"""The Lightning and HuggingFace Trainer callbacks, with the real packages, on tiny random models.

Both run gradient accumulation and gradient clipping through the framework's own settings; phi,
train_loss and slope0 are checked against the tests' own truth (tests/truth.py): the batches the
framework fed (seen by the test's own callback or collator) and a fresh model evaluated at
w_k + alpha (w_{k+1} - w_k).  Nothing is downloaded.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from helpers.tiny_lm import TokenData, collate, tiny_gpt2
from models import MLP, digits
from recorder import schema
from recorder.probe import ProbeConfig
from recorder.store import Recording
from truth import Tape, true_gradient, truth

torch.set_num_threads(2)


def _slope(g, step):
    return sum(float(torch.dot(g[n].reshape(-1), (step["w1"][n] - step["state"][n]).reshape(-1))) for n in g)


def _traced_recording(plain, traced, path, caplog):
    """Training with the callback is bit for bit the training without it; the recording at ``path`` has its
    3 steps, all probed, and the recorder logged no warning.  Returns the recording's rows."""
    for p, q in zip(plain.parameters(), traced.parameters()):
        assert torch.equal(p, q)
    with Recording(path) as r:
        d = r.read()
    assert len(d) == 3 and np.all(d["status"] == schema.STATUS_OK)
    assert not [rec for rec in caplog.records if rec.name.startswith("recorder")]
    return d


# --------------------------------------------------------------------------- PyTorch Lightning

pl = pytest.importorskip("lightning.pytorch")


class LitMLP(pl.LightningModule):
    def __init__(self, lr=0.5):
        super().__init__()
        self.net = MLP()
        self.lr = lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr, momentum=0.5)


class TapeCallback(pl.Callback):
    """The test's own view: batches as Lightning feeds them, w_k and w_{k+1} at each step."""

    def __init__(self):
        self.tape = None
        self.logged = []

    def on_fit_start(self, trainer, pl_module):
        self.tape = Tape(pl_module, trainer.optimizers[0])

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.tape.feed(*batch)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.logged.append(float(trainer.callback_metrics["train_loss"]))


def _fit(tmp_path, callbacks, steps=3, accum=2, clip=0.02):
    from torch.utils.data import DataLoader, TensorDataset

    X, y = digits(16 * accum * steps)
    loader = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=False)
    torch.manual_seed(0)
    module = LitMLP()
    trainer = pl.Trainer(max_steps=steps, accumulate_grad_batches=accum, gradient_clip_val=clip, callbacks=callbacks,
                         accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path)
    trainer.fit(module, loader)
    return module


def test_lightning_callback_with_accumulation_and_clipping(tmp_path, caplog):
    from recorder.integrations.lightning import GdaCallback

    caplog.set_level(logging.WARNING, logger="recorder")
    plain = _fit(tmp_path, [])
    tape_cb = TapeCallback()
    gda = GdaCallback(tmp_path / "lit.gda", probe=ProbeConfig(k=5), strict=True)
    traced = _fit(tmp_path, [tape_cb, gda])
    d = _traced_recording(plain, traced, tmp_path / "lit.gda", caplog)
    ce = lambda m, x, y: F.cross_entropy(m.net(x), y)  # noqa: E731
    for k, step in enumerate(tape_cb.tape.steps):
        assert len(step["micro"]) == 2
        ref = truth(LitMLP, step, d.alpha_grid, ce)
        np.testing.assert_allclose(d.phi[k], ref, rtol=1e-5)
        assert d["train_loss"][k] == pytest.approx(ref[0], rel=1e-5)
        g = true_gradient(LitMLP, step, ce)  # the unclipped gradient of the accumulated loss
        assert d["slope0"][k] == pytest.approx(_slope(g, step), rel=1e-4)
        # the probe's training_step evaluations (self.log inside) never reached Lightning's metrics: what
        # was logged for the step's last micro-batch is its training loss at w_k, not a probe's value
        last = dict(step, micro=step["micro"][1:])
        assert tape_cb.logged[2 * k + 1] == pytest.approx(truth(LitMLP, last, [0.0], ce)[0], rel=1e-6)


# --------------------------------------------------------------------------- HuggingFace Trainer

transformers = pytest.importorskip("transformers")


def _hf_train(tmp_path, callbacks, steps=3, accum=2, clip=0.01):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=steps, per_device_train_batch_size=4,
        gradient_accumulation_steps=accum, max_grad_norm=clip, learning_rate=5e-3, lr_scheduler_type="constant",
        warmup_steps=0, report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True,
        seed=0, data_seed=0, dataloader_num_workers=0)
    torch.manual_seed(0)
    model = tiny_gpt2()
    trainer = transformers.Trainer(model=model, args=args, train_dataset=TokenData(), data_collator=collate,
                                   callbacks=callbacks)
    trainer.train()
    return model


class TapeTrainerCallback(transformers.TrainerCallback):
    """The test's own view: each training forward's batch (a hook of its own), w_k and w_{k+1}."""

    def __init__(self):
        self.tape = None

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kw):
        self.tape = Tape(model, getattr(optimizer, "optimizer", optimizer))

        def seen(module, a, kwargs):
            if torch.is_grad_enabled() and module.training:
                self.tape.feed({k: (v.clone() if isinstance(v, torch.Tensor) else v) for k, v in kwargs.items()
                                if k in ("input_ids", "labels", "num_items_in_batch")})

        model.register_forward_pre_hook(seen, with_kwargs=True)


def test_huggingface_callback_with_accumulation_and_clipping(tmp_path, caplog):
    from recorder.integrations.huggingface import GdaTrainerCallback

    caplog.set_level(logging.WARNING, logger="recorder")
    plain = _hf_train(tmp_path, [])
    tape_cb = TapeTrainerCallback()
    traced = _hf_train(tmp_path, [tape_cb, GdaTrainerCallback(tmp_path / "hf.gda", probe=ProbeConfig(k=5),
                                                              strict=True)])
    d = _traced_recording(plain, traced, tmp_path / "hf.gda", caplog)
    for k, step in enumerate(tape_cb.tape.steps):
        assert len(step["micro"]) == 2
        # the Trainer passes num_items_in_batch (the step's label count): each micro-batch's loss is then
        # its token sum over that count, and the step's loss is their sum (truth() averages: times 2)
        assert all("num_items_in_batch" in mb[0][0] for mb in step["micro"])

        def lm(m, batch):
            return m(**batch).loss * 2
        ref = truth(tiny_gpt2, step, d.alpha_grid, lm)
        np.testing.assert_allclose(d.phi[k], ref, rtol=1e-5)
        assert d["train_loss"][k] == pytest.approx(ref[0], rel=1e-5)
        g = true_gradient(tiny_gpt2, step, lm)
        assert d["slope0"][k] == pytest.approx(_slope(g, step), rel=1e-3)
