"""Point labels that never overlap: each label takes the first free spot around its point, or is left out.

Used by the scatter of ``gda-gl compare --scatter`` (one label per run beside its point).  Greedy, in
the order given (callers pass the points they most want labelled first): a label tries right of its
point, left, above, below; a spot is free when its box stays inside the bounds and overlaps neither
an earlier label nor any point's marker.  Compute only: boxes in pixels, no drawing.
"""

from __future__ import annotations

__all__ = ["place_labels", "overlaps"]

Box = tuple[float, float, float, float]  # x0, y0, x1, y1


def overlaps(a: Box, b: Box) -> bool:
    """Whether two boxes share any area."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _candidates(x: float, y: float, w: float, h: float, gap: float) -> list[tuple[Box, str]]:
    """(box, Pillow anchor at the point's side) right, left, above and below the point (y upwards)."""
    return [((x + gap, y - h / 2, x + gap + w, y + h / 2), "lm"),
            ((x - gap - w, y - h / 2, x - gap, y + h / 2), "rm"),
            ((x - w / 2, y + gap, x + w / 2, y + gap + h), "mb"),
            ((x - w / 2, y - gap - h, x + w / 2, y - gap), "mt")]


def place_labels(points: list[tuple[float, float]], sizes: list[tuple[float, float]], bounds: Box,
                 marker_px: float = 9.0, gap: float = 6.0) -> list[tuple[float, float, str] | None]:
    """For each point, (x, y, anchor) of its label's anchor point, or None when no spot is free.

    Parameters
    ----------
    points : (x, y) pixel positions of the points (y upwards)
    sizes : (width, height) in pixels of each point's label
    bounds : the box labels must stay inside
    marker_px : the markers' diameter (labels keep off every marker)
    """
    r = marker_px / 2
    taken: list[Box] = [(x - r, y - r, x + r, y + r) for x, y in points]
    out: list[tuple[float, float, str] | None] = []
    for i, ((x, y), (w, h)) in enumerate(zip(points, sizes)):
        spot = None
        for box, anchor in _candidates(x, y, w, h, gap):
            inside = box[0] >= bounds[0] and box[1] >= bounds[1] and box[2] <= bounds[2] and box[3] <= bounds[3]
            if inside and not any(overlaps(box, t) for t in taken):
                spot = (box, anchor)
                break
        if spot is None:
            out.append(None)
            continue
        taken.append(spot[0])
        box, anchor = spot
        ax = {"l": box[0], "r": box[2], "m": 0.5 * (box[0] + box[2])}[anchor[0]]
        ay = {"m": 0.5 * (box[1] + box[3]), "b": box[1], "t": box[3]}[anchor[1]]
        out.append((ax, ay, anchor))
    return out
