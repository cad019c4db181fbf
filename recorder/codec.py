"""Block codec and the in-memory table: the one place raw bytes become numpy columns and back.

Design
------
A block is one row of the ``blocks`` table: ``n`` iterations stored columnar,
one BLOB per field in the order of :func:`recorder.schema.block_columns`.
:func:`encode_block` turns columns into those BLOBs; :func:`decode_block` is the
only decoder, used by the writer (to reload the tail block when appending) and
by the reader, so every check on stored bytes lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from . import schema

__all__ = ["Iterations", "encode_block", "decode_block", "concat_parts", "as_grid", "json_safe", "trials_arrays"]


# --------------------------------------------------------------------------- in-memory table

@dataclass
class Iterations:
    """A run's iterations as numpy columns (what :meth:`Recording.read` returns).

    Attributes
    ----------
    alpha_grid : (K,) float64
    columns : dict of name -> (n,) array, one per :data:`recorder.schema.ITER_FIELDS`
    phi : (n, K) float32, phi_k at the alpha grid
    trial_offsets : (n + 1,) int64, trials of row i are ``trials[name][off[i]:off[i+1]]``
    trials : dict of name -> concatenated trial arrays (:data:`recorder.schema.TRIAL_FIELDS`)
    """

    alpha_grid: np.ndarray
    columns: dict[str, np.ndarray]
    phi: np.ndarray
    trial_offsets: np.ndarray
    trials: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.phi.shape[0])

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    @property
    def iteration(self) -> np.ndarray:
        return self.columns["iteration"]

    def trials_of(self, row: int) -> dict[str, np.ndarray]:
        """Trial points of row ``row`` (not iteration number), in storage order."""
        a, b = int(self.trial_offsets[row]), int(self.trial_offsets[row + 1])
        return {k: v[a:b] for k, v in self.trials.items()}

    def row_of(self, iteration: int) -> int:
        """Row index of an iteration number; ``KeyError`` if absent."""
        it = self.columns["iteration"]
        i = int(np.searchsorted(it, iteration))
        if i >= len(it) or it[i] != iteration:
            raise KeyError(iteration)
        return i

    def slice_rows(self, a: int, b: int) -> "Iterations":
        ta, tb = int(self.trial_offsets[a]), int(self.trial_offsets[b])
        return Iterations(self.alpha_grid, {k: v[a:b] for k, v in self.columns.items()}, self.phi[a:b],
                          self.trial_offsets[a:b + 1] - ta, {k: v[ta:tb] for k, v in self.trials.items()})

    @staticmethod
    def empty(alpha_grid: np.ndarray) -> "Iterations":
        k = len(alpha_grid)
        return Iterations(np.asarray(alpha_grid, np.float64),
                          {n: np.empty(0, d) for n, d in schema.ITER_DTYPES.items()},
                          np.empty((0, k), schema.PHI_DTYPE), np.zeros(1, np.int64),
                          {n: np.empty(0, d) for n, d in schema.TRIAL_DTYPES.items()})

    @staticmethod
    def concat(parts: Sequence["Iterations"]) -> "Iterations":
        parts = list(parts)
        if len(parts) == 1:
            return parts[0]
        grid = parts[0].alpha_grid
        counts = np.concatenate([np.diff(p.trial_offsets) for p in parts])
        off = np.zeros(len(counts) + 1, np.int64)
        np.cumsum(counts, out=off[1:])
        return Iterations(grid, {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns},
                          np.concatenate([p.phi for p in parts]), off,
                          {k: np.concatenate([p.trials[k] for p in parts]) for k in parts[0].trials})


# --------------------------------------------------------------------------- block encoding

def encode_block(cols: Mapping[str, np.ndarray], phi: np.ndarray, tcount: np.ndarray,
                  trials: Mapping[str, np.ndarray]) -> list[bytes]:
    out = [np.ascontiguousarray(cols[n], schema.ITER_DTYPES[n]).tobytes() for n, _, _ in schema.ITER_FIELDS]
    out.append(np.ascontiguousarray(phi, schema.PHI_DTYPE).tobytes())
    out.append(np.ascontiguousarray(tcount, schema.TRIAL_COUNT_DTYPE).tobytes())
    out += [np.ascontiguousarray(trials[n], schema.TRIAL_DTYPES[n]).tobytes() for n, _, _ in schema.TRIAL_FIELDS]
    return out


def as_grid(alpha_grid) -> np.ndarray:
    g = np.asarray(alpha_grid, dtype=np.float64).ravel()
    if g.size == 0 or not np.all(np.isfinite(g)):
        raise ValueError("alpha grid must be a non-empty list of finite numbers")
    return g


def decode_block(blobs: Sequence[bytes], n: int, k: int):
    it = iter(blobs)
    cols = {name: np.frombuffer(next(it), dt).copy() for name, dt in schema.ITER_DTYPES.items()}
    phi = np.frombuffer(next(it), schema.PHI_DTYPE).reshape(n, k).copy()
    tcount = np.frombuffer(next(it), schema.TRIAL_COUNT_DTYPE).copy()
    trials = {name: np.frombuffer(next(it), dt).copy() for name, dt in schema.TRIAL_DTYPES.items()}
    return cols, phi, tcount, trials



def json_safe(v):
    """Metadata as strict JSON: non-finite floats become strings ("nan", "inf")."""
    if isinstance(v, float) and not np.isfinite(v):
        return str(v)
    if isinstance(v, dict):
        return {str(k): json_safe(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [json_safe(x) for x in v]
    if isinstance(v, np.generic):
        return json_safe(v.item())
    return v


def trials_arrays(trials: Mapping[str, Sequence] | None, total: int | None = None) -> dict[str, np.ndarray]:
    if trials is None:
        m = total or 0
        if m:
            raise ValueError("trial_count given without trials")
        return {n: np.empty(0, d) for n, d in schema.TRIAL_DTYPES.items()}
    alpha = np.asarray(trials["alpha"], schema.TRIAL_DTYPES["alpha"]).ravel()
    m = len(alpha)
    if total is not None and total != m:
        raise ValueError(f"trial_count sums to {total} but {m} trials were given")
    out = {"alpha": alpha}
    for name, dt in schema.TRIAL_DTYPES.items():
        if name == "alpha":
            continue
        v = trials.get(name)
        if v is None:
            v = np.arange(m) if name == "order" else np.full(m, np.nan)
        out[name] = np.asarray(v, dt).ravel()
        if len(out[name]) != m:
            raise ValueError(f"trial field {name!r} has {len(out[name])} values, expected {m}")
    return out


def concat_parts(parts):
    if len(parts) == 1:
        return parts[0]
    cols = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    phi = np.concatenate([p[1] for p in parts])
    tcount = np.concatenate([p[2] for p in parts])
    trials = {k: np.concatenate([p[3][k] for p in parts]) for k in parts[0][3]}
    return cols, phi, tcount, trials

