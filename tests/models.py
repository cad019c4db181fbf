"""Small models for recorder tests: an MLP, a CNN with BatchNorm, an attention block."""

from __future__ import annotations

import torch
from torch import nn


class MLP(nn.Module):
    def __init__(self, d_in=64, hidden=32, classes=10, dropout=0.0):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_in, hidden), nn.Tanh(), nn.Dropout(dropout), nn.Linear(hidden, classes))

    def forward(self, x):
        return self.net(x)


class CNN(nn.Module):
    def __init__(self, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(16)
        self.fc = nn.Linear(16 * 2 * 2, classes)

    def forward(self, x):
        x = x.view(-1, 1, 8, 8)
        x = torch.max_pool2d(torch.relu(self.bn1(self.conv1(x))), 2)
        x = torch.max_pool2d(torch.relu(self.bn2(self.conv2(x))), 2)
        return self.fc(x.flatten(1))


class Attention(nn.Module):
    """Digits as 8 tokens of 8 pixels through one self-attention block."""

    def __init__(self, classes=10, d=16):
        super().__init__()
        self.embed = nn.Linear(8, d)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, classes)

    def forward(self, x):
        t = self.embed(x.view(-1, 8, 8))
        a, _ = self.attn(t, t, t, need_weights=False)
        return self.head(self.norm(t + a).mean(1))


def digits(n=None):
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = torch.tensor(X / 16.0, dtype=torch.float32)
    y = torch.tensor(y)
    return (X[:n], y[:n]) if n else (X, y)
