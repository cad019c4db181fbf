"""One-line recorder callbacks for training frameworks.

* :class:`recorder.integrations.lightning.GdaCallback` -- PyTorch Lightning:
  ``Trainer(callbacks=[GdaCallback("runs/x.gda")])``
* :class:`recorder.integrations.huggingface.GdaTrainerCallback` -- HuggingFace ``Trainer``:
  ``Trainer(..., callbacks=[GdaTrainerCallback("runs/x.gda")])``

Each module imports its framework on import; this package imports neither.
"""
