"""SVG of a :class:`~gda_gl.gl.vector.VectorScene` (``xml.etree``, no other dependency).

Rectangles and markers are elements of their own; the segments of one batch that share a colour and
a width become one ``<path>`` (a sweep's frame is thousands of segments in a few dozen colours).
Clip rectangles become ``<clipPath>`` elements; text stays text (font Open Sans, else Helvetica).
"""

from __future__ import annotations

import numpy as np

from .vector import FONT_FAMILY, VectorScene, _hex, _num, _rgba

__all__ = ["to_svg"]


def _opacity(el, attr: str, a: float) -> None:
    if a < 0.999:
        el.set(attr, _num(round(a, 3)))


def _marker(ET, parent, H: float, data) -> None:
    (x, y), color, size, shape = data
    r, cy = 0.5 * size, H - y
    if shape == 2:  # triangle pointing up
        pts = f"{_num(x - r)},{_num(cy + r * 0.8)} {_num(x + r)},{_num(cy + r * 0.8)} {_num(x)},{_num(cy - r)}"
        el = ET.SubElement(parent, "polygon", points=pts)
    elif shape == 1:
        el = ET.SubElement(parent, "rect", x=_num(x - r), y=_num(cy - r), width=_num(size), height=_num(size))
    else:
        el = ET.SubElement(parent, "circle", cx=_num(x), cy=_num(cy), r=_num(r))
    if shape == 3:
        el.set("fill", "none")
        el.set("stroke", _hex(color))
    else:
        el.set("fill", _hex(color))
        el.set("stroke", "#262626")
        el.set("stroke-width", "0.6")
    _opacity(el, "opacity", _rgba(color)[3])


def _segments(ET, parent, H: float, data) -> None:
    a, b, colors, width = data
    if not len(a):
        return
    keys = np.round(colors * 255).astype(np.int32)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    for g in np.unique(inverse):
        sel = np.nonzero(inverse.ravel() == g)[0]
        d = " ".join(f"M{_num(a[i, 0])} {_num(H - a[i, 1])}L{_num(b[i, 0])} {_num(H - b[i, 1])}" for i in sel)
        el = ET.SubElement(parent, "path", d=d, fill="none", stroke=_hex(colors[sel[0]]))
        el.set("stroke-width", _num(width))
        el.set("stroke-linecap", "square")
        _opacity(el, "stroke-opacity", float(colors[sel[0]][3]))


def _text(ET, parent, H: float, data) -> None:
    text, x, y, size, rgba, bold, rotate, (ox, oy) = data
    x, y = x + ox, y + oy
    el = ET.SubElement(parent, "text", fill=_hex(rgba))
    el.set("font-family", FONT_FAMILY)
    el.set("font-size", _num(size))
    if bold:
        el.set("font-weight", "bold")
    if rotate:
        el.set("text-anchor", "middle")
        el.set("dominant-baseline", "central")
        el.set("transform", f"translate({_num(x)} {_num(H - y)}) rotate(-90)")
    else:
        el.set("x", _num(x))
        el.set("y", _num(H - y))
    _opacity(el, "fill-opacity", rgba[3])
    el.text = text


def _rect(ET, parent, H: float, data) -> None:
    (x0, y0, x1, y1), color = data
    el = ET.SubElement(parent, "rect", x=_num(x0), y=_num(H - y1), width=_num(max(0.0, x1 - x0)),
                       height=_num(max(0.0, y1 - y0)), fill=_hex(color))
    _opacity(el, "fill-opacity", _rgba(color)[3])


_DRAW = {"rect": _rect, "segs": _segments, "marker": _marker, "text": _text}


def to_svg(scene: VectorScene) -> bytes:
    """The scene as an SVG 1.1 document."""
    import xml.etree.ElementTree as ET

    W, H = scene.width, scene.height
    root = ET.Element("svg", xmlns="http://www.w3.org/2000/svg", version="1.1", width=str(W), height=str(H),
                      viewBox=f"0 0 {W} {H}")
    defs = ET.SubElement(root, "defs")
    for i, (x, y, w, h) in enumerate(scene.clips):
        cp = ET.SubElement(defs, "clipPath", id=f"c{i}")
        ET.SubElement(cp, "rect", x=_num(x), y=_num(H - y - h), width=_num(w), height=_num(h))
    current, current_clip = root, -1
    for kind, data, clip in scene.items:
        if clip != current_clip:  # consecutive items of one clip share a group (draw order is kept)
            current = root if clip < 0 else ET.SubElement(root, "g", {"clip-path": f"url(#c{clip})"})
            current_clip = clip
        _DRAW[kind](ET, current, H, data)
    ET.indent(root, space="")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="utf-8")
