"""Text as one RGBA layer rasterised with Pillow (tick labels, titles, legend, numbers).

Why not VisPy's TextVisual: on llvmpipe it computes a signed-distance glyph
atlas on first use (about 0.5 s per new set of glyphs, measured here), which
alone would eat a tenth of the 5 s budget of ``gda-gl render``.  Pillow
rasterises a frame's 50 labels in a few milliseconds with the OpenSans font
that VisPy ships, and the engine draws the layer as one textured quad
(``shaders/overlay.*.glsl``).

No label is cut by the layer's left or right border: one that would cross it
(the last x tick centred on the plot's right end, "10,000,000") is moved
sideways until it is :data:`EDGE_PX` inside, when it fits at all.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["TextLayer", "font_path", "EDGE_PX"]

EDGE_PX = 2  # a label moved inside keeps this many pixels from the border


@lru_cache(maxsize=1)
def font_path() -> str | None:
    try:
        import vispy

        p = Path(vispy.__file__).parent / "util" / "fonts" / "data" / "OpenSans-Regular.ttf"
        return str(p) if p.exists() else None
    except Exception:
        return None


@lru_cache(maxsize=16)
def _font(size: int, bold: bool = False):
    from PIL import ImageFont

    path = font_path()
    if path and bold:
        bp = path.replace("Regular", "Bold")
        path = bp if Path(bp).exists() else path
    try:
        return ImageFont.truetype(path, size) if path else ImageFont.load_default()
    except OSError:
        return ImageFont.load_default()


@lru_cache(maxsize=8192)
def _text_width(text: str, size: int, bold: bool) -> float:
    """Pixel width of a label (cached: a sweep's legend measures a hundred names every frame)."""
    return _font(size, bold).getlength(text)


class TextLayer:
    """Collects text items in pixel coordinates (origin bottom-left, like GL) and rasterises them."""

    def __init__(self, width: int, height: int):
        self.width, self.height = int(width), int(height)
        self.items: list[tuple] = []

    def add(self, text: str, x: float, y: float, anchor: str = "mm", size: int = 12, color=(30, 30, 30, 255),
            bold: bool = False, rotate: bool = False) -> None:
        """``anchor`` as Pillow's two letters (l/m/r, t/m/b... 'la', 'mm', 'rt'); y measured from the bottom."""
        self.items.append((str(text), float(x), float(y), anchor, int(size), tuple(color), bold, rotate))

    def text_width(self, text: str, size: int = 12, bold: bool = False) -> float:
        return _text_width(str(text), int(size), bool(bold))

    def rasterize(self) -> np.ndarray:
        """(height, width, 4) uint8, rows top-down, straight alpha.

        Each label is rendered once into a small cached image (a zoom changes the tick labels
        every frame, but mostly to labels seen a frame or two earlier) and blended in place.
        """
        out = np.zeros((self.height, self.width, 4), np.uint8)
        for text, x, y, anchor, size, color, bold, rotate in self.items:
            img, dx, dy = _label(text, anchor, size, color, bold, rotate)
            left = _inside(int(round(x + dx)), img.shape[1], self.width)
            _blend(out, img, left, int(round(self.height - y + dy)))
        return out

    def rasterize_reference(self) -> np.ndarray:
        """Plain twin of :meth:`rasterize`: every label drawn by Pillow into one full-size image."""
        from PIL import Image, ImageDraw

        img = Image.new("RGBA", (self.width, self.height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        for text, x, y, anchor, size, color, bold, rotate in self.items:
            font = _font(size, bold)
            if rotate:
                tmp = _rotated(text, size, color, bold)
                left = _inside(int(x - tmp.width / 2), tmp.width, self.width)
                img.alpha_composite(tmp, (left, int(self.height - y - tmp.height / 2)))
            else:
                x0, _, x1, _ = font.getbbox(text, anchor=anchor)
                shift = _inside(int(round(x + x0)), max(1, x1 - x0), self.width) - int(round(x + x0))
                draw.text((x + shift, self.height - y), text, font=font, fill=color, anchor=anchor)
        return np.asarray(img)


def _inside(left: int, width: int, total: int) -> int:
    """The left edge of a label ``width`` wide that crosses a border of [0, total], moved EDGE_PX inside it.

    A label already inside (even touching a border) stays where it is; one too wide to fit stays too.
    """
    if width + 2 * EDGE_PX > total:
        return left
    if left < 0:
        return EDGE_PX
    if left + width > total:
        return total - EDGE_PX - width
    return left


def _rotated(text: str, size: int, color, bold: bool):
    from PIL import Image, ImageDraw

    font = _font(size, bold)
    w = int(font.getlength(text)) + 4
    tmp = Image.new("RGBA", (w, size * 2), (0, 0, 0, 0))
    ImageDraw.Draw(tmp).text((w / 2, size), text, font=font, fill=color, anchor="mm")
    return tmp.rotate(90, expand=True)


@lru_cache(maxsize=2048)
def _label(text: str, anchor: str, size: int, color: tuple, bold: bool, rotate: bool):
    """One label as an RGBA array and the offset of its top-left corner from the anchor point."""
    from PIL import Image, ImageDraw

    if rotate:
        tmp = _rotated(text, size, color, bold)
        return np.asarray(tmp), -tmp.width / 2, -tmp.height / 2
    font = _font(size, bold)
    left, top, right, bottom = font.getbbox(text, anchor=anchor)
    w, h = max(1, right - left), max(1, bottom - top)
    img = Image.new("RGBA", (w, h), (0, 0, 0, 0))
    ImageDraw.Draw(img).text((-left, -top), text, font=font, fill=color, anchor=anchor)
    return np.asarray(img), left, top


def _blend(out: np.ndarray, src: np.ndarray, x: int, y: int) -> None:
    """Straight-alpha 'over' of ``src`` onto ``out`` with its top-left at (x, y), clipped."""
    h, w = src.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(out.shape[1], x + w), min(out.shape[0], y + h)
    if x1 <= x0 or y1 <= y0:
        return
    s = src[y0 - y:y1 - y, x0 - x:x1 - x].astype(np.float32)
    d = out[y0:y1, x0:x1].astype(np.float32)
    sa, da = s[..., 3:4] / 255.0, d[..., 3:4] / 255.0
    oa = sa + da * (1 - sa)
    rgb = np.where(oa > 0, (s[..., :3] * sa + d[..., :3] * da * (1 - sa)) / np.maximum(oa, 1e-6), 0)
    out[y0:y1, x0:x1, :3] = np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    out[y0:y1, x0:x1, 3:4] = np.clip(oa * 255 + 0.5, 0, 255).astype(np.uint8)
