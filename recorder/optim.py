"""Nonlinear conjugate gradient with a Wolfe-Powell line search: the paper's setting.

:class:`CG` is Polak-Ribiere conjugate gradient with the line search of Carl
Rasmussen's ``minimize`` (extrapolate with cubics, then interpolate with cubic
or quadratic fits until the strong Wolfe-Powell conditions hold), ported to a
``torch.optim.Optimizer``: one ``step(closure)`` is one CG iteration (one line
search).  Constants as in ``minimize``: INT 0.1, EXT 3.0, at most 20
evaluations per line search, RATIO 10, SIG 0.1, RHO = SIG / 2.

Becker et al. run K CG iterations per mini-batch (K = 20 in their figures);
call :meth:`CG.reset` when the mini-batch changes so the search restarts from
steepest descent on the new error function.  After every step,
``last_line_search`` holds the trial steps, losses and slopes (along the search
direction), the accepted step, phi(0) and phi'(0), which
:mod:`recorder.hooks` stores as trial points.

Hand-written because no maintained PyTorch package implements this line
search (torch's LBFGS has a strong-Wolfe search, but not Rasmussen's
extrapolation and not with conjugate directions).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch.optim import Optimizer

from .flat import assign, flat_grad, flatten

__all__ = ["CG"]


class CG(Optimizer):
    """Polak-Ribiere nonlinear conjugate gradient, Rasmussen line search.

    Parameters
    ----------
    params : parameters to optimise
    max_evals : loss evaluations per line search (20)
    int_ : don't re-evaluate within ``int_`` of the bracket ends (0.1)
    ext : extrapolate at most ``ext`` times the current bracket (3.0)
    ratio : maximum slope ratio for the initial step guess (10)
    sig, rho : Wolfe-Powell constants (0.1, sig / 2)
    initial_step : first step guess, ``red / (1 - d0)`` with ``red`` = this (1.0)
    """

    def __init__(self, params, max_evals: int = 20, int_: float = 0.1, ext: float = 3.0, ratio: float = 10.0,
                 sig: float = 0.1, rho: float | None = None, initial_step: float = 1.0):
        defaults = dict(max_evals=max_evals, int_=int_, ext=ext, ratio=ratio, sig=sig,
                        rho=sig / 2 if rho is None else rho, initial_step=initial_step)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("CG supports a single parameter group")
        self._params = [p for p in self.param_groups[0]["params"] if p.requires_grad]
        self._state: dict = {}
        self.last_line_search: dict = {}

    # -- flat helpers (recorder.flat) -------------------------------------------
    def _flat(self) -> torch.Tensor:
        return flatten(self._params)

    def _flat_grad(self) -> torch.Tensor:
        return flat_grad(self._params)

    def _set(self, flat: torch.Tensor) -> None:
        assign(self._params, flat)

    def _evaluate(self, closure, x: torch.Tensor):
        self._set(x)
        with torch.enable_grad():
            loss = closure()
        f = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        return f, self._flat_grad()

    def reset(self) -> None:
        """Restart from steepest descent at the next step (call when the mini-batch changes)."""
        self._state = {}

    def _accept(self, st: dict, x_new, s, x3: float, df0, f3: float, df3, ratio: float, info: dict) -> None:
        """A successful line search: move to ``x_new`` and take the next direction (Polak-Ribiere)."""
        self._set(x_new)
        info["step"] = x3
        s_new = (float(df3 @ df3) - float(df0 @ df3)) / float(df0 @ df0) * s - df3  # Polak-Ribiere
        d_old = st["d0"]
        d0n = float(df3 @ s_new)
        if d0n > 0:  # not a descent direction: restart
            s_new = -df3
            d0n = -float(s_new @ s_new)
        x3n = x3 * min(ratio, d_old / (d0n - 1e-300))
        st.update(f0=f3, df0=df3, s=s_new, d0=d0n, x3=x3n, failed=False)

    def _restart(self, st: dict, X0, F0: float, dF0, best_t: float, info: dict) -> None:
        """A failed line search: keep the best point seen, restart along steepest descent."""
        self._set(X0)
        info["step"] = best_t
        s_new = -dF0
        d0n = -float(s_new @ s_new)
        st.update(f0=F0, df0=dF0, s=s_new, d0=d0n, x3=1.0 / (1 - d0n), failed=True)

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        """One CG iteration: a line search along the current direction.

        ``closure`` must zero the gradients, compute the loss, call ``backward()`` and return the loss.
        """
        if closure is None:
            raise ValueError("CG needs a closure that recomputes the loss and its gradient")
        g = self.param_groups[0]
        INT, EXT, RATIO, SIG, RHO, MAX = g["int_"], g["ext"], g["ratio"], g["sig"], g["rho"], g["max_evals"]
        st = self._state
        X = self._flat()
        evals = 0
        steps, losses, slopes = [], [], []
        if not st:
            f0, df0 = self._evaluate(closure, X)
            s = -df0
            steps.append(0.0)  # the start point (evaluated, but not counted as a line-search trial)
            losses.append(f0)
            slopes.append(-float(s @ s))
            d0 = -float(s @ s)
            x3 = g["initial_step"] / (1 - d0)
            st.update(f0=f0, df0=df0, s=s, d0=d0, x3=x3, failed=False)
        f0, df0, s, d0, x3 = st["f0"], st["df0"], st["s"], st["d0"], st["x3"]
        F0, X0, dF0, best_t = f0, X, df0, 0.0

        def trial(t):
            nonlocal evals, F0, X0, dF0, best_t
            f, df = self._evaluate(closure, X + t * s)
            evals += 1
            d = float(df @ s)
            steps.append(t)
            losses.append(f)
            slopes.append(d)
            if math.isfinite(f) and f < F0:
                X0, F0, dF0, best_t = X + t * s, f, df, t
            return f, df, d

        M = MAX
        x2 = f2 = d2 = f3 = d3 = 0.0
        df3 = df0
        while True:  # extrapolation
            x2, f2, d2, f3, df3 = 0.0, f0, d0, f0, df0
            success = False
            while not success and M > 0:
                M -= 1
                f3, df3, d3 = trial(x3)
                if math.isfinite(f3) and math.isfinite(d3) and bool(torch.isfinite(df3).all()):
                    success = True
                else:
                    x3 = (x2 + x3) / 2  # bisect and try again
            if not success:
                break
            if d3 > SIG * d0 or f3 > f0 + x3 * RHO * d0 or M == 0:
                break
            x1, f1, d1 = x2, f2, d2
            x2, f2, d2 = x3, f3, d3
            x3 = _extrapolated(x1, f1, d1, x2, f2, d2, INT, EXT)
        x4, f4, d4 = x3, f3, d3
        while success and (abs(d3) > -SIG * d0 or f3 > f0 + x3 * RHO * d0) and M > 0:  # interpolation
            if d3 > 0 or f3 > f0 + x3 * RHO * d0:
                x4, f4, d4 = x3, f3, d3
            else:
                x2, f2, d2 = x3, f3, d3
            x3 = _interpolated(x2, f2, d2, x4, f4, d4, f0, INT)
            M -= 1
            f3, df3, d3 = trial(x3)
        ok = success and abs(d3) < -SIG * d0 and f3 < f0 + x3 * RHO * d0
        info = {"f0": f0, "d0": d0, "grad_norm": float(torch.linalg.vector_norm(df0)), "trial_steps": steps,
                "trial_losses": losses, "trial_slopes": slopes, "evals": evals, "success": ok}
        if ok:
            self._accept(st, X + x3 * s, s, x3, df0, f3, df3, RATIO, info)
        else:
            self._restart(st, X0, F0, dF0, best_t, info)
        self.last_line_search = info
        return torch.tensor(f0)


def _extrapolated(x1: float, f1: float, d1: float, x2: float, f2: float, d2: float, INT: float, EXT: float
                  ) -> float:
    """The next trial step while extrapolating: the cubic's minimum, kept within [x2 + INT (x2 - x1), x2 EXT]."""
    A = 6 * (f1 - f2) + 3 * (d2 + d1) * (x2 - x1)
    B = 3 * (f2 - f1) - (2 * d1 + d2) * (x2 - x1)
    disc = B * B - A * d1 * (x2 - x1)
    denom = B + math.sqrt(disc) if disc >= 0 else float("nan")
    x3 = x1 - d1 * (x2 - x1) ** 2 / denom if denom and math.isfinite(denom) else float("nan")
    if not math.isfinite(x3) or x3 < 0:
        return x2 * EXT
    if x3 > x2 * EXT:
        return x2 * EXT
    if x3 < x2 + INT * (x2 - x1):
        return x2 + INT * (x2 - x1)
    return x3


def _interpolated(x2: float, f2: float, d2: float, x4: float, f4: float, d4: float, f0: float, INT: float
                  ) -> float:
    """The next trial step while interpolating between x2 and x4 (quadratic when f4 > f0, else cubic; the
    middle when neither is finite), kept INT of the interval away from its ends."""
    if f4 > f0:
        denom = f4 - f2 - d2 * (x4 - x2)
        x3 = x2 - (0.5 * d2 * (x4 - x2) ** 2) / denom if denom else float("nan")
    else:
        A = 6 * (f2 - f4) / (x4 - x2) + 3 * (d4 + d2) if x4 != x2 else float("nan")
        B = 3 * (f4 - f2) - (2 * d2 + d4) * (x4 - x2)
        disc = B * B - A * d2 * (x4 - x2) ** 2
        x3 = x2 + (math.sqrt(disc) - B) / A if (disc >= 0 and A and math.isfinite(A)) else float("nan")
    if not math.isfinite(x3):
        x3 = (x2 + x4) / 2
    return max(min(x3, x4 - INT * (x4 - x2)), x2 + INT * (x4 - x2))
