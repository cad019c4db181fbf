"""A tiny random GPT-2 and its token data, for the HuggingFace Trainer tests (built from a config, nothing downloaded).

Imported by tests/test_integrations.py and tests/test_series_integrations.py (``from helpers.tiny_lm import ...``),
which skip themselves where ``transformers`` is missing.
"""

from __future__ import annotations

import torch


def tiny_gpt2():
    """One layer, two heads, 32 wide, a vocabulary of 64, no dropout."""
    import transformers

    cfg = transformers.GPT2Config(n_layer=1, n_head=2, n_embd=32, vocab_size=64, n_positions=16, resid_pdrop=0.0,
                                  embd_pdrop=0.0, attn_pdrop=0.0)
    return transformers.GPT2LMHeadModel(cfg)


class TokenData(torch.utils.data.Dataset):
    """``n`` random sequences of ``T`` tokens (seeded), each its own labels."""

    def __init__(self, n=32, T=12, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(0, 64, (n, T), generator=g)

    def __len__(self):
        return len(self.ids)

    def __getitem__(self, i):
        return {"input_ids": self.ids[i], "labels": self.ids[i]}


def collate(examples):
    """Stack the examples' tensors field by field."""
    return {k: torch.stack([e[k] for e in examples]) for k in examples[0]}
