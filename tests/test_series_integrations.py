"""Zero lines for framework users (issue 18.2): what a LightningModule logs and what the HF Trainer logs
and evaluates arrive in the recording as series, at the right iteration.

The real packages, tiny random models built from configs, nothing downloaded.  Truth is the
framework's own view, taken by the test's own callback: the metric values and ``global_step`` it
sees at the end of each validation (sanity checks excluded) or in each ``on_log``/``on_evaluate``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from helpers.tiny_lm import TokenData, collate, tiny_gpt2
from models import MLP, digits
from recorder.probe import ProbeConfig
from recorder.store import Recording

torch.set_num_threads(2)

pl = pytest.importorskip("lightning.pytorch")


class LitVal(pl.LightningModule):
    def __init__(self, lr=0.3):
        super().__init__()
        self.save_hyperparameters()
        self.net = MLP()

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = F.cross_entropy(self.net(x), y)
        self.log("train_loss", loss)  # a built-in name: recorded as lightning/train_loss
        self.log_dict({"train_acc": (self.net(x).argmax(1) == y).float().mean()})
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", F.cross_entropy(self.net(x), y))  # on_epoch by default: the validation mean

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


class Seen(pl.Callback):
    """The framework's own view: validation results and the global step they belong to."""

    def __init__(self):
        self.val, self.train = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._step = trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.train.append((self._step, float(trainer.callback_metrics["train_loss"])))

    def on_validation_end(self, trainer, pl_module):
        if not trainer.sanity_checking:
            self.val.append((trainer.global_step, float(trainer.callback_metrics["val_loss"])))


def test_lightning_forwards_logged_and_validation_metrics_at_their_global_step(tmp_path, caplog):
    from torch.utils.data import DataLoader, TensorDataset

    from recorder.integrations.lightning import GdaCallback

    X, y = digits(16 * 8)
    train = DataLoader(TensorDataset(X, y), batch_size=16, shuffle=False)
    val = DataLoader(TensorDataset(X[:48], y[:48]), batch_size=16, shuffle=False)
    seen = Seen()
    gda = GdaCallback(tmp_path / "lit.gda", probe=ProbeConfig(k=5), strict=True)
    trainer = pl.Trainer(max_steps=6, val_check_interval=2, limit_val_batches=2, num_sanity_val_steps=1,
                         callbacks=[seen, gda], accelerator="cpu", devices=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.fit(LitVal(), train, val)
    assert len(seen.val) >= 2
    with Recording(tmp_path / "lit.gda") as r:
        assert len(r.read()) == 6
        names = r.series_names(builtin=False)
        assert {"val_loss", "lightning/train_loss", "train_acc"} <= set(names)
        v = r.read_series("val_loss")
        assert v.iteration.tolist() == [s for s, _ in seen.val]  # the global step of each validation
        np.testing.assert_allclose(v.value, [x for _, x in seen.val], rtol=1e-6)
        t = r.read_series("lightning/train_loss")
        assert t.iteration.tolist() == [s for s, _ in seen.train] == list(range(6))
        np.testing.assert_allclose(t.value, [x for _, x in seen.train], rtol=1e-6)
        # the recorder's train_loss at iteration k is the same batch's loss at w_k
        np.testing.assert_allclose(r.read()["train_loss"], t.value, rtol=1e-5)
        cfg = r.run["config"]
        assert cfg["lr"] == 0.3 and cfg["batch_size"] == 16 and cfg["accumulate_grad_batches"] == 1


transformers = pytest.importorskip("transformers")


class HFSeen(transformers.TrainerCallback):
    def __init__(self):
        self.evals, self.logs = [], []

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        self.evals.append((state.global_step, metrics["eval_loss"]))

    def on_log(self, args, state, control, logs=None, **kw):
        self.logs.append((state.global_step, dict(logs)))


def test_huggingface_forwards_logs_and_evaluation_at_their_global_step(tmp_path):
    from recorder.integrations.huggingface import GdaTrainerCallback

    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), max_steps=4, per_device_train_batch_size=4, gradient_accumulation_steps=2,
        learning_rate=5e-3, lr_scheduler_type="linear", report_to=[], use_cpu=True, logging_strategy="steps",
        logging_steps=1, eval_strategy="steps", eval_steps=2, per_device_eval_batch_size=8, save_strategy="no",
        disable_tqdm=True, seed=0, dataloader_num_workers=0)
    torch.manual_seed(0)
    seen = HFSeen()
    trainer = transformers.Trainer(model=tiny_gpt2(), args=args, train_dataset=TokenData(),
                                   eval_dataset=TokenData(16, seed=1),
                                   data_collator=collate,
                                   callbacks=[seen, GdaTrainerCallback(tmp_path / "hf.gda", probe=ProbeConfig(k=5),
                                                                       strict=True)])
    trainer.train()
    assert [s for s, _ in seen.evals] == [2, 4]
    with Recording(tmp_path / "hf.gda") as r:
        assert len(r.read()) == 4
        ev = r.read_series("eval_loss")
        assert ev.iteration.tolist() == [2, 4]  # once each, though on_log repeats them
        np.testing.assert_allclose(ev.value, [x for _, x in seen.evals], rtol=1e-6)
        train_logs = [(s, lg) for s, lg in seen.logs if "loss" in lg]
        loss = r.read_series("loss")
        assert loss.iteration.tolist() == [s for s, _ in train_logs] == [1, 2, 3, 4]
        np.testing.assert_allclose(loss.value, [lg["loss"] for _, lg in train_logs], rtol=1e-6)
        lr = r.read_series("learning_rate")
        np.testing.assert_allclose(lr.value, [lg["learning_rate"] for _, lg in train_logs], rtol=1e-6)
        gn = r.read_series("hf/grad_norm")  # a built-in name, kept apart from the recorder's own grad_norm
        assert gn.iteration.tolist() == [1, 2, 3, 4]
        assert "epoch" not in r.series_names()
        cfg = r.run["config"]
        assert cfg["batch_size"] == 8 and cfg["learning_rate"] == 5e-3 and cfg["lr_scheduler_type"] == "linear"
