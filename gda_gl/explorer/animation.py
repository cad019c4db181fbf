"""View animation of the explorer: the x range between a start view and a target, and when a flight is over.

Pure functions (:func:`interpolate_view` and its two paths) plus one small
state holder (:class:`Flight`).  No GL, no toolkit, no runs.

Paths.  With an *anchor* (the point under the cursor for the wheel, the step
for a double-click) inside both views, the anchor's screen fraction moves
linearly while the width changes geometrically, so the anchor never leaves the
screen.  Without one, nested views zoom about their shared fixed point, equal
widths that overlap pan, and anything else follows van Wijk and Nuij's smooth
zoom-and-pan (2003), which zooms out on the way to an off-screen target.

Landing exactly.  A flight is over only once a frame *showing the target* has
been handed out: :meth:`Flight.x_range` with ``consume=True`` returns the
target itself (never an interpolated value that merely rounds to it) and only
then forgets the flight.  A frame that takes longer than the whole animation
therefore still ends with the target on screen, and the whole-run-to-one-step
flight lands on the exact floats of the target.
"""

from __future__ import annotations

import math
from typing import Callable

__all__ = ["ANIMATION_S", "VAN_WIJK_RHO", "Flight", "interpolate_view", "ease"]

ANIMATION_S = 0.25
VAN_WIJK_RHO = 1.4        # zoom/pan trade-off of the smooth path (van Wijk and Nuij 2003 recommend ~1.4)

XRange = tuple[float, float]


def ease(t: float) -> float:
    """Smoothstep easing of a time fraction (clamped to 0..1)."""
    t = min(1.0, max(0.0, t))
    return t * t * (3.0 - 2.0 * t)


def _anchored(a: XRange, b: XRange, p: float, e: float) -> XRange:
    """Views from a to b with data point p at a screen fraction moving linearly, width geometrically."""
    wa, wb = a[1] - a[0], b[1] - b[0]
    fa, fb = (p - a[0]) / wa, (p - b[0]) / wb
    w = wa * (wb / wa) ** e
    f = fa + (fb - fa) * e
    return (p - f * w, p - f * w + w)


def _van_wijk(a: XRange, b: XRange, e: float, rho: float = VAN_WIJK_RHO) -> XRange:
    """Smooth zoom-and-pan (van Wijk and Nuij 2003) from view a to view b in one dimension, at path fraction e."""
    ua, ub = 0.5 * (a[0] + a[1]), 0.5 * (b[0] + b[1])
    w0, w1 = a[1] - a[0], b[1] - b[0]
    d = abs(ub - ua)
    sign = 1.0 if ub >= ua else -1.0
    r2 = rho * rho
    if d < 1e-12 * max(w0, w1):
        w = w0 * (w1 / w0) ** e
        return (ua - 0.5 * w, ua + 0.5 * w)
    b0 = (w1 * w1 - w0 * w0 + r2 * r2 * d * d) / (2 * w0 * r2 * d)
    b1 = (w1 * w1 - w0 * w0 - r2 * r2 * d * d) / (2 * w1 * r2 * d)
    r0 = math.log(-b0 + math.sqrt(b0 * b0 + 1))
    r1 = math.log(-b1 + math.sqrt(b1 * b1 + 1))
    S = (r1 - r0) / rho
    s = e * S
    u = w0 / r2 * (math.cosh(r0) * math.tanh(rho * s + r0) - math.sinh(r0))
    w = w0 * math.cosh(r0) / math.cosh(rho * s + r0)
    c = ua + sign * u
    if e >= 1.0:
        return b
    return (c - 0.5 * w, c + 0.5 * w)


def interpolate_view(a: XRange, b: XRange, e: float, anchor: float | None = None) -> XRange:
    """The x range at path fraction ``e`` (0..1) of the flight from ``a`` to ``b``.

    With an ``anchor`` inside both views it stays on screen the whole way (its screen fraction
    moves linearly, the width changes geometrically).  Without one, the fixed point of the two
    views is used when they nest (a pure zoom about that point), a linear move when the widths
    are equal (a pan), and van Wijk and Nuij's smooth zoom-and-pan otherwise.
    """
    if e <= 0.0:
        return a
    if e >= 1.0:
        return b
    wa, wb = a[1] - a[0], b[1] - b[0]
    if anchor is not None and a[0] <= anchor <= a[1] and b[0] <= anchor <= b[1]:
        return _anchored(a, b, anchor, e)
    if abs(wa - wb) <= 1e-12 * max(wa, wb):
        shift = (b[0] - a[0]) * e
        if abs(b[0] - a[0]) <= wa:  # the two views overlap: a plain pan
            return (a[0] + shift, a[1] + shift)
        return _van_wijk(a, b, e)
    f = (b[0] - a[0]) / (wa - wb)  # screen fraction of the point both views share
    if 0.0 <= f <= 1.0:
        return _anchored(a, b, a[0] + f * wa, e)
    return _van_wijk(a, b, e)


class Flight:
    """The flight of the x range in progress, if any.

    Parameters
    ----------
    clock : time source in seconds (tests pass a fake clock)
    duration : seconds from the start view to the target
    """

    def __init__(self, clock: Callable[[], float], duration: float = ANIMATION_S):
        self.clock = clock
        self.duration = duration
        self._a: XRange | None = None
        self._b: XRange | None = None
        self._t0 = 0.0
        self._anchor: float | None = None

    @property
    def active(self) -> bool:
        """True until a frame showing the target has been handed out (``x_range(consume=True)``)."""
        return self._b is not None

    def start(self, current: XRange, target: XRange, anchor: float | None = None) -> None:
        """Fly from ``current`` to ``target`` (no flight when they are equal)."""
        if current == target:
            self.stop()
            return
        self._a, self._b, self._t0, self._anchor = current, target, self.clock(), anchor

    def stop(self) -> None:
        self._a = self._b = None

    def x_range(self, target: XRange, consume: bool = False) -> XRange:
        """The x range to show now on the way to ``target``.

        Returns ``target`` itself once the time is up or the target changed under the flight; with
        ``consume`` the flight then ends (the caller is about to draw the target).
        """
        if self._b is None:
            return target
        t = (self.clock() - self._t0) / self.duration
        if t >= 1.0 or self._b != target:
            if consume:
                self.stop()
            return target
        return interpolate_view(self._a, self._b, ease(t), self._anchor)
