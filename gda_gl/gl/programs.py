"""Shader programs of the engine, built from ``shaders/`` through :func:`gda_gl.gl.shaders.build`.

Each program takes flat numpy arrays of primitives (segments, rectangles,
markers) and expands them to triangles (6 vertices per primitive); the
vertex shaders turn each primitive into a screen-space quad.  One vertex
buffer per program is reused; a frame uploads only the primitives it draws
(a few per pixel column, whatever the size of the run).
"""

from __future__ import annotations

import numpy as np
from vispy import gloo

from .shaders import build

#: anti-aliasing width in pixels of lines and markers
AA_PX = "1.0"
#: Values for the ``{{ NAME }}`` placeholders of each program (vertex and fragment shader alike): the
#: strict template step (:func:`gda_gl.gl.shaders.build`) refuses a missing value and a value no
#: placeholder uses, so this table must match the files exactly.
PROGRAM_VALUES: dict[str, dict[str, str]] = {
    "segment": {"AA_PX": AA_PX},
    "marker": {"AA_PX": AA_PX},
    "rect": {},
    "overlay": {},
    "polyline": {},
}

_QUAD_LINE = np.array([[0, -1], [1, -1], [1, 1], [0, -1], [1, 1], [0, 1]], np.float32)
_QUAD_UNIT = np.array([[0, 0], [1, 0], [1, 1], [0, 0], [1, 1], [0, 1]], np.float32)
_QUAD_SIGNED = np.array([[-1, -1], [1, -1], [1, 1], [-1, -1], [1, 1], [-1, 1]], np.float32)


def build_program(name: str) -> gloo.Program:
    """Compile program ``name`` from ``shaders/NAME.vert.glsl`` and ``NAME.frag.glsl`` with its values."""
    values = PROGRAM_VALUES[name]
    return gloo.Program(build(f"{name}.vert.glsl", values), build(f"{name}.frag.glsl", values))


def _uniform_names(program: gloo.Program) -> frozenset[str]:
    """The uniforms a program declares."""
    return frozenset(v[2] for v in program.variables if v[0] == "uniform")


def _set_uniforms(program: gloo.Program, names: frozenset[str], uniforms: dict) -> None:
    """Set the uniforms in ``names`` (those ``program`` declares); ignore the rest (shared uniform dicts)."""
    for k, v in uniforms.items():
        if k in names:
            program[k] = v


def _upload(holder, verts: np.ndarray) -> None:
    """Upload ``verts`` into ``holder.vbo`` and (re)bind it to ``holder.program`` when its size changed.

    VisPy's attribute views remember the vertex count they were bound with: after a resize
    the program must be bound again, or it draws the old count.
    """
    if holder.vbo is None:
        holder.vbo = gloo.VertexBuffer(verts)
        holder.program.bind(holder.vbo)
        return
    resized = holder.vbo.size != len(verts)
    holder.vbo.set_data(verts)
    if resized:
        holder.program.bind(holder.vbo)


def _colors(color, n: int) -> np.ndarray:
    c = np.asarray(color, np.float32)
    if c.ndim == 1:
        c = np.broadcast_to(c, (n, 4))
    return np.ascontiguousarray(c, np.float32)


class _Batch:
    """A program plus one vertex buffer of a fixed structured dtype (resized by set_data as needed)."""

    def __init__(self, name: str, dtype: np.dtype):
        self.program = build_program(name)
        self.uniforms = _uniform_names(self.program)
        self.dtype = dtype
        self.vbo: gloo.VertexBuffer | None = None
        self.count = 0

    def upload(self, verts: np.ndarray) -> None:
        self.count = len(verts)
        if self.count == 0:
            return
        _upload(self, verts)

    def draw(self, **uniforms) -> None:
        if self.count == 0:
            return
        _set_uniforms(self.program, self.uniforms, uniforms)
        self.program.draw("triangles")


class SegmentBatch(_Batch):
    """Wide anti-aliased line segments p0 -> p1."""

    DTYPE = np.dtype([("a_p0", np.float32, 2), ("a_p1", np.float32, 2), ("a_corner", np.float32, 2),
                      ("a_color", np.float32, 4)])

    def __init__(self):
        super().__init__("segment", self.DTYPE)

    def set(self, p0: np.ndarray, p1: np.ndarray, color) -> None:
        n = len(p0)
        v = np.empty((n, 6), self.DTYPE)
        v["a_p0"] = np.asarray(p0, np.float32)[:, None, :]
        v["a_p1"] = np.asarray(p1, np.float32)[:, None, :]
        v["a_corner"] = _QUAD_LINE[None]
        v["a_color"] = _colors(color, n)[:, None, :]
        self.upload(v.reshape(-1))


class RectBatch(_Batch):
    """Axis-aligned rectangles with a minimum pixel size."""

    DTYPE = np.dtype([("a_rect", np.float32, 4), ("a_corner", np.float32, 2), ("a_color", np.float32, 4)])

    def __init__(self):
        super().__init__("rect", self.DTYPE)

    def set(self, rects: np.ndarray, color) -> None:
        n = len(rects)
        v = np.empty((n, 6), self.DTYPE)
        v["a_rect"] = np.asarray(rects, np.float32)[:, None, :]
        v["a_corner"] = _QUAD_UNIT[None]
        v["a_color"] = _colors(color, n)[:, None, :]
        self.upload(v.reshape(-1))


class MarkerBatch(_Batch):
    """Markers of a few shapes; a NaN y pins the marker to the top of the plot."""

    DTYPE = np.dtype([("a_center", np.float32, 2), ("a_corner", np.float32, 2), ("a_color", np.float32, 4),
                      ("a_size", np.float32), ("a_shape", np.float32)])

    def __init__(self):
        super().__init__("marker", self.DTYPE)

    def set(self, centers: np.ndarray, color, size, shape) -> None:
        n = len(centers)
        v = np.empty((n, 6), self.DTYPE)
        v["a_center"] = np.asarray(centers, np.float32)[:, None, :]
        v["a_corner"] = _QUAD_SIGNED[None]
        v["a_color"] = _colors(color, n)[:, None, :]
        v["a_size"] = np.broadcast_to(np.asarray(size, np.float32), (n,))[:, None]
        v["a_shape"] = np.broadcast_to(np.asarray(shape, np.float32), (n,))[:, None]
        self.upload(v.reshape(-1))


class Overlay:
    """An RGBA layer (text rasterised with Pillow) drawn as textured quads over its non-empty tiles only.

    Text lives mostly in the margins; drawing only the 32x32 tiles that hold any ink keeps the
    fill cost (which dominates on software rasterisers) proportional to the text, not the frame.
    """

    TILE = 32

    def __init__(self):
        self.program = build_program("overlay")
        self.uniforms = _uniform_names(self.program)
        self.texture: gloo.Texture2D | None = None
        self.size = (0, 0)
        self.vbo: gloo.VertexBuffer | None = None
        self.count = 0

    def set(self, rgba: np.ndarray) -> None:
        h, w = rgba.shape[:2]
        if self.texture is None or self.size != (w, h):
            self.texture = gloo.Texture2D(rgba, interpolation="nearest")
            self.size = (w, h)
            self.program["u_texture"] = self.texture
        else:
            self.texture.set_data(rgba)
        t = self.TILE
        ty, tx = -(-h // t), -(-w // t)
        alpha = np.zeros((ty * t, tx * t), np.uint8)
        alpha[:h, :w] = rgba[..., 3]
        ink = alpha.reshape(ty, t, tx, t).max(axis=(1, 3)) > 0
        rows, cols = np.nonzero(ink)
        x0, x1 = cols * t, np.minimum((cols + 1) * t, w)
        top, bottom = rows * t, np.minimum((rows + 1) * t, h)  # image rows, top-down
        y0, y1 = h - bottom, h - top                             # GL y, bottom-up
        corners = np.array([[0, 0], [1, 0], [1, 1], [0, 0], [1, 1], [0, 1]], np.float32)
        px = np.where(corners[None, :, 0] > 0, x1[:, None], x0[:, None]).astype(np.float32)
        py = np.where(corners[None, :, 1] > 0, y1[:, None], y0[:, None]).astype(np.float32)
        verts = np.empty((len(rows), 6), [("a_position", np.float32, 2), ("a_texcoord", np.float32, 2)])
        verts["a_position"] = np.stack([px, py], axis=2)
        verts["a_texcoord"] = np.stack([px / w, 1.0 - py / h], axis=2)
        self.count = len(rows)
        if self.count:
            _upload(self, verts.reshape(-1))

    def draw(self, **uniforms) -> None:
        if self.texture is None or self.count == 0:
            return
        _set_uniforms(self.program, self.uniforms, uniforms)
        self.program.draw("triangles")
