"""Data-plane kernels around the probe's forward passes.

``stack_points(w0, w1, alphas)`` synthesises the K parameter vectors
``w0 + alpha_j (w1 - w0)`` (flat, ``(K, n)``) in one fused pass, with the
endpoints exact (alpha = 0 gives w0 and alpha = 1 gives w1 bit-for-bit, the
same formula as ``torch.lerp``).

* On CUDA with CuPy installed, one ``cupy.ElementwiseKernel`` writes straight
  into a torch tensor shared through DLPack (no copies).
* Elsewhere ``torch.lerp`` with a broadcast weight does the same on the CPU.
* :func:`stack_points_reference` is the plain numpy twin the tests compare with.
"""

from __future__ import annotations

import logging
from functools import lru_cache

import numpy as np
import torch

log = logging.getLogger(__name__)

__all__ = ["cupy_available", "stack_points", "stack_points_reference"]


@lru_cache(maxsize=1)
def _cupy():
    try:
        import cupy  # noqa: F401

        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
        return cupy
    except Exception:  # not installed, no driver, no device
        return None


def cupy_available() -> bool:
    """True when CuPy imports and sees a CUDA device."""
    return _cupy() is not None


@lru_cache(maxsize=4)
def _lerp_kernel(ctype: str):
    cp = _cupy()
    return cp.ElementwiseKernel(
        f"raw {ctype} w0, raw {ctype} w1, raw {ctype} alphas, int64 n",
        f"{ctype} out",
        f"""
        const long long j = i / n;
        const long long k = i - j * n;
        const {ctype} s = w0[k];
        const {ctype} e = w1[k];
        const {ctype} a = alphas[j];
        const {ctype} diff = e - s;
        out = (fabs(a) < ({ctype})0.5) ? s + a * diff : e - diff * (({ctype})1 - a);
        """,
        "gda_lerp_points",
    )


def stack_points(w0: torch.Tensor, w1: torch.Tensor, alphas: torch.Tensor, out: torch.Tensor | None = None,
                 use_cupy: bool | None = None) -> torch.Tensor:
    """``out[j] = lerp(w0, w1, alphas[j])`` for flat ``w0``, ``w1`` of length n; returns ``(K, n)``.

    Parameters
    ----------
    w0, w1 : (n,) tensors on one device, same floating dtype
    alphas : (K,) tensor of step sizes (same dtype/device)
    out : optional preallocated (K, n) tensor
    use_cupy : force (True) or forbid (False) the CuPy kernel; default: on CUDA when CuPy is present
    """
    k, n = alphas.shape[0], w0.shape[0]
    if out is None:
        out = torch.empty((k, n), dtype=w0.dtype, device=w0.device)
    cuda = w0.is_cuda and w0.dtype in (torch.float32, torch.float64)
    if use_cupy is None:
        use_cupy = cuda and cupy_available()
    if use_cupy:
        cp = _cupy()
        if cp is None or not cuda:
            raise RuntimeError("the CuPy kernel needs CuPy and a CUDA tensor")
        ctype = "float" if w0.dtype == torch.float32 else "double"
        _lerp_kernel(ctype)(cp.from_dlpack(w0.contiguous()), cp.from_dlpack(w1.contiguous()),
                            cp.from_dlpack(alphas.contiguous()), np.int64(n), cp.from_dlpack(out))
        return out
    torch.lerp(w0.unsqueeze(0).expand(k, n), w1.unsqueeze(0).expand(k, n), alphas.unsqueeze(1).expand(k, n),
               out=out)
    return out


def stack_points_reference(w0: np.ndarray, w1: np.ndarray, alphas: np.ndarray) -> np.ndarray:
    """Plain numpy twin of :func:`stack_points` (same lerp formula, exact endpoints)."""
    w0 = np.asarray(w0)
    w1 = np.asarray(w1)
    out = np.empty((len(alphas), len(w0)), dtype=w0.dtype)
    diff = w1 - w0
    for j, a in enumerate(np.asarray(alphas, dtype=w0.dtype)):
        out[j] = w0 + a * diff if abs(a) < 0.5 else w1 - diff * (w0.dtype.type(1) - a)
    return out
