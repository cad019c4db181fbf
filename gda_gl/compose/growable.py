"""Arrays that grow in place (amortised doubling), so a live run's new rows cost O(new), not O(all)."""

from __future__ import annotations

import numpy as np

__all__ = ["Growable"]


class Growable:
    """A numpy array along axis 0 with spare capacity; :attr:`view` is the filled part (no copy).

    Takes ownership of ``initial`` (no copy: a 1e8-sample run is not duplicated on load); rows
    may later be overwritten in place, so callers must not keep using ``initial`` themselves.
    """

    def __init__(self, initial: np.ndarray):
        self._buf = np.asarray(initial)
        self.n = len(self._buf)

    @property
    def view(self) -> np.ndarray:
        return self._buf[:self.n]

    def set_tail(self, start: int, values: np.ndarray) -> None:
        """Overwrite from row ``start`` on with ``values`` (the array then ends after them)."""
        values = np.asarray(values, dtype=self._buf.dtype)
        end = start + len(values)
        if end > len(self._buf):
            cap = max(end, 2 * len(self._buf), 16)
            buf = np.empty((cap,) + self._buf.shape[1:], self._buf.dtype)
            buf[:start] = self._buf[:start]
            self._buf = buf
        self._buf[start:end] = values
        self.n = end

    def append(self, values: np.ndarray) -> None:
        self.set_tail(self.n, values)
