"""Live diagnosis during a real training: ``rec.on_finding`` fires in the training thread with the same
dicts ``gda-gl diagnose --json`` lists, the findings are in the recording as events, and the detector's
CPU time is recorded."""

from __future__ import annotations

import json
import threading

from diagnose_runs import train
from recorder.diagnose import diagnose_paths
from recorder.reader import Recording


def test_on_finding_fires_during_training(tmp_path):
    got = []
    main = threading.get_ident()

    def fn(f):
        got.append((f, threading.get_ident()))

    path = train(tmp_path / "live.gda", 0.3, 240, outlier_at=64, lr_spike_at=128, diverge_at=192, on_finding=fn)
    assert got and all(t == main for _, t in got)
    live = [f for f, _ in got]
    kinds = {f["kind"] for f in live}
    assert {"spike", "divergence", "lr_change", "step_size"} <= kinds, kinds
    report = diagnose_paths([path])[0][0]
    # the live spikes and divergence are the offline ones, dict for dict (live, the divergence's first steps
    # may be reported as a spike before the rule can tell that the loss does not come back)
    div = [f for f in live if f["kind"] == "divergence"]
    assert [d["start"] for d in div] == [f["start"] for f in report["findings"] if f["kind"] == "divergence"]
    # a spike is reported live when first seen: its length ("steps") and largest rise may grow afterwards
    def decided(s):
        return s["iteration"], s["cause"], {k: v for k, v in s["evidence"].items() if k != "steps"}

    live_spikes = [f for f in live if f["kind"] == "spike" and f["iteration"] < div[0]["start"]]
    assert [decided(s) for s in live_spikes] == [decided(s) for s in report["spikes"]]
    assert all(a["rise"] <= b["rise"] for a, b in zip(live_spikes, report["spikes"]))
    with Recording(path) as rec:
        events = rec.events("finding")
        timing = rec.events("diagnose-timing")
    assert [json.loads(e[3]) for e in events] == live
    assert len(timing) == 1 and "us CPU per step" in timing[0][3]


def test_lightning_passes_findings_to_its_loggers(tmp_path, caplog):
    """The Lightning callback writes each live finding as a warning line and through ``add_text`` of a
    logger whose experiment has it (TensorBoard's SummaryWriter does)."""
    import logging

    import torch
    from torch.nn import functional as F
    from torch.utils.data import DataLoader, TensorDataset

    pl = __import__("pytest").importorskip("lightning.pytorch")
    from models import MLP, digits
    from recorder.integrations.lightning import GdaCallback

    class Lit(pl.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = MLP()

        def training_step(self, batch, batch_idx):
            return F.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.05)

    class Texts:
        def __init__(self):
            self.texts = []

        def add_text(self, tag, text, global_step=None):
            self.texts.append((tag, text, global_step))

    class TextLogger(pl.loggers.Logger):
        name, version = "texts", 0

        def __init__(self):
            super().__init__()
            self._exp = Texts()

        @property
        def experiment(self):
            return self._exp

        def log_metrics(self, metrics, step=None):
            pass

        def log_hyperparams(self, params, *args, **kwargs):
            pass

    X, y = digits(16 * 30)
    torch.manual_seed(0)
    logger = TextLogger()
    trainer = pl.Trainer(max_steps=30, callbacks=[GdaCallback(tmp_path / "lit.gda")], accelerator="cpu", devices=1,
                         logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    with caplog.at_level(logging.WARNING):
        trainer.fit(Lit(), DataLoader(TensorDataset(X, y), batch_size=16))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("gda_gl: step size")]
    # lr 0.05 on this MLP: the lines fall to the end of the interval (the sweep test's too-short end)
    assert lines and "too short" in lines[0], [r.getMessage() for r in caplog.records]
    assert [t for _, t, _ in logger.experiment.texts] == [m.removeprefix("gda_gl: ") for m in lines]
    assert all(tag == "gda_gl/findings" for tag, _, _ in logger.experiment.texts)
