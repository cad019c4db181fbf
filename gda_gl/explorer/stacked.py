"""Several runs stacked in linked views that share the x axis (``gda-gl compare --png``)."""

from __future__ import annotations

from ..render import CurveRenderer, Layout
from ..scene import RunData
from ..state import ViewState

__all__ = ["draw_stacked", "shared_x_range"]


def shared_x_range(runs: list[RunData], state: ViewState) -> tuple[float, float]:
    if state.x_range is not None and None not in state.x_range:
        return state.x_range
    spans = [r.x_span for r in runs]
    lo = min(s[0] for s in spans) if state.x_range is None or state.x_range[0] is None else state.x_range[0]
    hi = max(s[1] for s in spans) if state.x_range is None or state.x_range[1] is None else state.x_range[1]
    return lo, hi


def draw_stacked(runs: list[RunData], state: ViewState, size: tuple[int, int],
                 renderer: CurveRenderer | None = None) -> list:
    """Draw one band per run, top to bottom, all with the same x range; returns the frames."""
    w, h = size
    n = len(runs)
    band = h // n
    renderer = renderer or CurveRenderer()
    x_range = shared_x_range(runs, state)
    frames = []
    for i, run in enumerate(runs):
        st = ViewState(**{k: v for k, v in vars(state).items() if not k.startswith("_")})
        st.x_range = x_range
        y_off = h - (i + 1) * band
        lay = Layout.for_size(w, band, colorbar=st.color_by != "none")
        lay.origin = (0, y_off)
        frames.append(renderer.draw([run], st, lay, title=run.name))
    return frames
