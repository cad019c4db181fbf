"""What a probe changes and must put back: precision, RNG states, train/eval flags and buffers.

* :func:`precision_context`: the autocast state of one probe evaluation (``ProbeConfig.precision``),
  autocast's weight cache always off (the probe writes the parameters in place).
* :func:`rng_state` / :func:`set_rng_state`: the CPU and CUDA generators (the train-mode replay).
* :func:`preserved_state`: eval mode on entry (optionally); train flags, buffers and RNG states as
  they were on exit; its ``restore_buffers()`` resets buffers a forward changed before the next one.
* :func:`probing`: true in the whole process while any probe runs (capture hooks ignore its forwards).
"""

from __future__ import annotations

import contextlib
from typing import Sequence

import torch

__all__ = ["autocast_state", "precision_context", "preserved_state", "probing", "rng_state", "set_rng_state"]


def autocast_state(device_types: Sequence[str]) -> dict:
    """The device types among ``device_types`` with autocast enabled now, each with its autocast dtype."""
    out = {}
    for dt in device_types:
        try:
            if torch.is_autocast_enabled(dt):
                out[dt] = torch.get_autocast_dtype(dt)
        except (RuntimeError, TypeError, AttributeError):  # a device type autocast does not know
            pass
    return out


@contextlib.contextmanager
def precision_context(precision: str, recorded: dict | None, device_types: Sequence[str]):
    """The autocast state of one probe evaluation (see ``ProbeConfig.precision``).

    ``"fp32"``: autocast off; ``"training"``: the autocast state ``recorded`` at the micro-batch's
    training forward (None: the state at the probe).  Autocast's weight cache is always off: the
    probe writes the parameters in place, and a low-precision copy cached by an enclosing autocast
    region (``step()`` called inside it) would hide every new alpha behind the copy of w_k.
    """
    now = autocast_state(device_types)
    want = (now if recorded is None else recorded) if precision == "training" else {}
    if not now and not want:
        yield
        return
    with contextlib.ExitStack() as stack:
        for dt in sorted(set(now) | set(want)):
            if dt in want:
                stack.enter_context(torch.autocast(dt, dtype=want[dt], cache_enabled=False))
            else:
                stack.enter_context(torch.autocast(dt, enabled=False, cache_enabled=False))
        yield



def rng_state(devices: Sequence[torch.device]) -> tuple:
    """The CPU and CUDA RNG states (for the train-mode replay)."""
    return torch.get_rng_state(), {d: torch.cuda.get_rng_state(d) for d in devices if d.type == "cuda"}


def set_rng_state(state: tuple) -> None:
    cpu, cuda = state
    torch.set_rng_state(cpu)
    for d, s in cuda.items():
        torch.cuda.set_rng_state(s, d)


class _State:
    """Saved train flags, buffers and RNG states of a model; ``restore_buffers()`` puts the buffers back."""

    def __init__(self, model: torch.nn.Module, devices: Sequence[torch.device]):
        self.modes = [(m, m.training) for m in model.modules()]
        self.buffers = [(b, b.detach().clone()) for b in model.buffers()]
        self._live = [b for b, _ in self.buffers]
        self._saved = [s for _, s in self.buffers]
        self.rng = rng_state(devices)

    def restore_buffers(self) -> None:
        """Copy the saved buffers back (one fused ``torch._foreach_copy_``; before every evaluation)."""
        if not self._live:
            return
        with torch.no_grad():
            try:
                torch._foreach_copy_(self._live, self._saved)
            except (RuntimeError, TypeError):  # mixed devices or dtypes the fused copy does not take
                for b, saved in self.buffers:
                    b.copy_(saved)

    def restore(self) -> None:
        for m, flag in self.modes:
            m.training = flag
        with torch.no_grad():
            for b, saved in self.buffers:
                if b.dtype != saved.dtype or not torch.equal(b, saved):
                    b.copy_(saved)
        set_rng_state(self.rng)


@contextlib.contextmanager
def preserved_state(model: torch.nn.Module, eval_mode: bool, devices: Sequence[torch.device]):
    """Switch to eval mode (optionally) and restore train flags, buffers and RNG states afterwards.

    Yields the saved state: its ``restore_buffers()`` resets buffers a forward pass changed (running
    maxima, fake-quant observers, BatchNorm statistics in train mode) so every evaluation sees the
    buffers of the training step.
    """
    state = _State(model, devices)
    try:
        if eval_mode:
            model.eval()
        yield state
    finally:
        state.restore()


#: How many probes are running in this process (any recorder): capture hooks ignore their forwards.
_PROBING = [0]


def probing() -> bool:
    """True while some recorder's probe is evaluating the model (its forwards are not training)."""
    return _PROBING[0] > 0


@contextlib.contextmanager
def _probing_now():
    _PROBING[0] += 1
    try:
        yield
    finally:
        _PROBING[0] -= 1
