"""Text as one RGBA layer rasterised with Pillow (tick labels, titles, legend, numbers).

Why not VisPy's TextVisual: on llvmpipe it computes a signed-distance glyph
atlas on first use (about 0.5 s per new set of glyphs, measured here), which
alone would eat a tenth of the 5 s budget of ``gda-gl render``.  Pillow
rasterises a frame's 50 labels in a few milliseconds with the OpenSans font
that VisPy ships, and the engine draws the layer as one textured quad
(``shaders/overlay.*.glsl``).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["TextLayer", "font_path"]


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
        return _font(size, bold).getlength(text)

    def rasterize(self) -> np.ndarray:
        """(height, width, 4) uint8, rows top-down, straight alpha."""
        from PIL import Image, ImageDraw

        img = Image.new("RGBA", (self.width, self.height), (0, 0, 0, 0))
        draw = ImageDraw.Draw(img)
        for text, x, y, anchor, size, color, bold, rotate in self.items:
            font = _font(size, bold)
            if rotate:
                w = int(font.getlength(text)) + 4
                tmp = Image.new("RGBA", (w, size * 2), (0, 0, 0, 0))
                ImageDraw.Draw(tmp).text((w / 2, size), text, font=font, fill=color, anchor="mm")
                tmp = tmp.rotate(90, expand=True)
                img.alpha_composite(tmp, (int(x - tmp.width / 2), int(self.height - y - tmp.height / 2)))
            else:
                draw.text((x, self.height - y), text, font=font, fill=color, anchor=anchor)
        return np.asarray(img)
