"""PDF of a :class:`~gda_gl.gl.vector.VectorScene`: one page, written here (PDF 1.4, no dependency).

The page is the canvas in points (1 px = 1 pt; origin bottom-left, as the scene's).  One content
stream, Flate-compressed, draws the items in order: rectangles (``re f``), segments of one colour as
one stroked path, markers as paths (a disc as four Bezier quarters), text in the standard Helvetica
(``Tj``, Latin-1; characters outside it are written as ``?``), clip rectangles as ``q ... re W n ...
Q`` groups.  Opacity goes through one ExtGState per value (``/ca`` fill, ``/CA`` stroke).
"""

from __future__ import annotations

import zlib

import numpy as np

from .vector import _KAPPA, VectorScene, _num, _rgba

__all__ = ["to_pdf"]


class _Content:
    """The content stream and the opacity states it uses."""

    def __init__(self):
        self.ops: list[str] = []
        self.alphas: dict[float, str] = {}

    def alpha(self, a: float) -> None:
        a = round(min(1.0, max(0.0, a)), 3)
        name = self.alphas.setdefault(a, f"GS{len(self.alphas)}")
        self.ops.append(f"/{name} gs")

    def fill(self, c) -> None:
        r, g, b, a = _rgba(c)
        self.alpha(a)
        self.ops.append(f"{r:.3f} {g:.3f} {b:.3f} rg")

    def stroke(self, c, width: float) -> None:
        r, g, b, a = _rgba(c)
        self.alpha(a)
        self.ops.append(f"{r:.3f} {g:.3f} {b:.3f} RG {_num(width)} w")


def _escape(text: str) -> str:
    raw = text.encode("latin-1", "replace").decode("latin-1")
    return raw.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _rect(out: _Content, data) -> None:
    (x0, y0, x1, y1), color = data
    out.fill(color)
    out.ops.append(f"{_num(x0)} {_num(y0)} {_num(max(0.0, x1 - x0))} {_num(max(0.0, y1 - y0))} re f")


def _segs(out: _Content, data) -> None:
    a, b, colors, width = data
    if not len(a):
        return
    keys = np.round(colors * 255).astype(np.int32)
    _, inverse = np.unique(keys, axis=0, return_inverse=True)
    out.ops.append("2 J")  # square caps, as the shader extends segments by half their width
    for g in np.unique(inverse):
        sel = np.nonzero(inverse.ravel() == g)[0]
        out.stroke(colors[sel[0]], width)
        out.ops.append(" ".join(f"{_num(a[i, 0])} {_num(a[i, 1])} m {_num(b[i, 0])} {_num(b[i, 1])} l" for i in sel)
                       + " S")


def _disc(x: float, y: float, r: float) -> str:
    """A closed circle path: four Bezier quarters."""
    k = _KAPPA * r
    pts = [(x + r, y + k, x + k, y + r, x, y + r), (x - k, y + r, x - r, y + k, x - r, y),
           (x - r, y - k, x - k, y - r, x, y - r), (x + k, y - r, x + r, y - k, x + r, y)]
    return f"{_num(x + r)} {_num(y)} m " + " ".join(" ".join(_num(v) for v in q) + " c" for q in pts) + " h"


def _marker(out: _Content, data) -> None:
    (x, y), color, size, shape = data
    r = 0.5 * size
    if shape == 2:
        path = f"{_num(x - r)} {_num(y - 0.8 * r)} m {_num(x + r)} {_num(y - 0.8 * r)} l {_num(x)} {_num(y + r)} l h"
    elif shape == 1:
        path = f"{_num(x - r)} {_num(y - r)} {_num(size)} {_num(size)} re"
    else:
        path = _disc(x, y, r)
    if shape == 3:
        out.stroke(color, 1.0)
        out.ops.append(path + " S")
    else:
        out.fill(color)
        out.ops.append(path + " f")


def _text(out: _Content, data) -> None:
    text, x, y, size, rgba, bold, rotate, (ox, oy) = data
    x, y = x + ox, y + oy
    out.fill(rgba)
    font = "F2" if bold else "F1"
    if rotate:  # centred on (x, y), reading upwards: Helvetica's width is about 0.52 em per character
        half = 0.26 * size * len(text)
        out.ops.append(f"BT /{font} {size} Tf 0 1 -1 0 {_num(x + 0.35 * size)} {_num(y - half)} Tm "
                       f"({_escape(text)}) Tj ET")
    else:
        out.ops.append(f"BT /{font} {size} Tf {_num(x)} {_num(y)} Td ({_escape(text)}) Tj ET")


_DRAW = {"rect": _rect, "segs": _segs, "marker": _marker, "text": _text}


def _content(scene: VectorScene) -> _Content:
    out = _Content()
    out.ops.append("1 1 1 rg 0 0 %d %d re f" % (scene.width, scene.height))
    clip = -1
    for kind, data, c in scene.items:
        if c != clip:
            if clip >= 0:
                out.ops.append("Q")
            if c >= 0:
                x, y, w, h = scene.clips[c]
                out.ops.append(f"q {_num(x)} {_num(y)} {_num(w)} {_num(h)} re W n")
            clip = c
        _DRAW[kind](out, data)
    if clip >= 0:
        out.ops.append("Q")
    return out


def to_pdf(scene: VectorScene) -> bytes:
    """The scene as a one-page PDF document."""
    content = _content(scene)
    stream = zlib.compress("\n".join(content.ops).encode("latin-1"))
    states = " ".join(f"/{name} << /Type /ExtGState /ca {a} /CA {a} >>" for a, name in content.alphas.items())
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {scene.width} {scene.height}] /Contents 4 0 R "
         f"/Resources << /Font << /F1 5 0 R /F2 6 0 R >> /ExtGState << {states} >> >> >>").encode(),
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)
