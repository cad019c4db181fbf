"""Which image encoding the notebook widget sends: bytes per frame and encode time, measured on its frames.

``python -m benchmarks.notebook_encoding [--size 1200x700] [--rows 200000] [--json PATH]``

Renders frames of the notebook widget in-process (no browser: :meth:`ExplorerFrameBuffer.render`,
the same pixels the browser gets) for a few typical views of a synthetic recording (the scale
suite's generator, :func:`gda_gl.bench.scale.make_recording`): the whole run, a zoom of a few hundred
steps, a few steps (arcs), one step, the whole run coloured by a statistic.  Each frame is encoded
the ways jupyter_rfb can send it: PNG (jupyter_rfb's own encoder, what it sends when the view rests
or ``quality=100``), JPEG at several qualities through simplejpeg (what it sends while the view
changes), and Pillow's PNG at its fastest level for comparison.  Prints a table of median bytes and
milliseconds per frame; nothing is asserted.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time

log = logging.getLogger(__name__)


def _encoders():
    import io

    from jupyter_rfb._png import array2png
    from PIL import Image

    def pil_png1(a):
        buf = io.BytesIO()
        Image.fromarray(a).save(buf, format="PNG", compress_level=1)
        return buf.getvalue()

    out = {"png (jupyter_rfb)": array2png, "png (Pillow, level 1)": pil_png1}
    try:
        import simplejpeg

        for q in (70, 85, 95):
            out[f"jpeg q{q} (simplejpeg)"] = lambda a, q=q: simplejpeg.encode_jpeg(a, quality=q, colorspace="RGB")
    except ImportError:
        log.warning("simplejpeg is not installed: JPEG not measured")
    return out


def _views(c):
    """(name, action on the controller) of the measured views."""
    f0, f1 = c.full_x_range()
    mid = 0.5 * (f0 + f1)
    return [("whole run", lambda: c.home()),
            ("300 steps", lambda: c.set_x_range((mid, mid + 300), animate=False)),
            ("8 steps (arcs)", lambda: c.set_x_range((mid, mid + 8), animate=False)),
            ("one step", lambda: c.zoom_to_iteration(int(mid))),
            ("whole run, colour by efficiency", lambda: (c.home(), c.state.update(color_by="efficiency")))]


def measure(path: str, size: tuple[int, int], repeat: int = 5) -> list[dict]:
    """Render each view of ``path`` and encode it every way; returns one row per (view, encoding)."""
    from gda_gl.notebook import ErrorLine, view

    v = view(path, size=size)
    if isinstance(v, ErrorLine):
        raise SystemExit(v.text)
    fb, c = v.frame, v.controller
    rows = []
    enc = _encoders()
    for name, act in _views(c):
        act()
        while True:
            t0 = time.perf_counter()
            img = fb.render()
            render_ms = 1000 * (time.perf_counter() - t0)
            if not c.animating:
                break
        for ename, fn in enc.items():
            times, data = [], b""
            for _ in range(repeat):
                t0 = time.perf_counter()
                data = fn(img)
                times.append(1000 * (time.perf_counter() - t0))
            rows.append({"view": name, "encoding": ename, "bytes": len(data), "encode_ms": statistics.median(times),
                         "render_ms": render_ms})
    v.close()
    return rows


def table(rows: list[dict]) -> str:
    """Markdown: per encoding, the median bytes and ms over the views, and the largest frame."""
    lines = ["| encoding | median bytes/frame | largest | median encode ms |", "|---|---|---|---|"]
    for e in dict.fromkeys(r["encoding"] for r in rows):
        rs = [r for r in rows if r["encoding"] == e]
        med_ms = statistics.median(r["encode_ms"] for r in rs)
        lines.append(f"| {e} | {statistics.median(r['bytes'] for r in rs) / 1024:.0f} KiB | "
                     f"{max(r['bytes'] for r in rs) / 1024:.0f} KiB | {med_ms:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1200x700")
    ap.add_argument("--rows", type=int, default=200_000, help="iterations of the synthetic recording")
    ap.add_argument("--json", default=None, help="write the rows here")
    args = ap.parse_args(argv)
    os.environ.setdefault("EGL_PLATFORM", "surfaceless")
    from benchmarks.notebook_common import parse_size, scale_recording, write_json

    rows = measure(str(scale_recording(args.rows)), parse_size(args.size))
    for r in rows:
        print(f"{r['view']:<34} {r['encoding']:<24} {r['bytes'] / 1024:7.1f} KiB {r['encode_ms']:6.1f} ms"
              f"  (render {r['render_ms']:.0f} ms)")
    print()
    print(table(rows))
    write_json(args.json, rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
