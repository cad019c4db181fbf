"""Screenshots of the explorer window at three zoom levels, for the README.

usage (from the repository root, after ``gda-gl demo --out /tmp/demo --no-window``)::

    QT_QPA_PLATFORM=xcb xvfb-run -a -s "-screen 0 1600x1000x24" \\
        .venv/bin/python docs/explorer/screenshots.py /tmp/demo/demo-cg.gda /tmp/demo/demo-sgd.gda

Writes docs/explorer/{overview,zoom,step,series}.png: the real window (Qt, VisPy), grabbed after the
animation landed, saved with a 256-colour palette to keep them small.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

OUT = Path(__file__).resolve().parent


def main(paths: list[str]) -> None:
    from PIL import Image
    from PyQt6.QtTest import QTest

    from gda_gl.explorer.app import build_window

    w = build_window(paths)
    w.show((1280, 760))
    c, cv = w.ctrl, w.canvas

    def settle():
        t0 = time.time()
        while time.time() - t0 < 10:
            QTest.qWait(50)
            if not c.animating and not cv.pending_redraw:
                QTest.qWait(300)
                return

    def shot(name):
        path = OUT / f"{name}.png"
        w.win.grab().save(str(path))
        Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)
        print(path)

    run = c.runs[0]
    span = run.x_span
    c.state.update(log_y=True)
    c.home()
    settle()
    shot("overview")
    mid = int(span[0] + 0.3 * (span[1] - span[0]))
    c.set_x_range((mid, mid + 40))
    settle()
    shot("zoom")
    k = mid + 21
    c.select(0, k)
    c.zoom_to_iteration(k)
    settle()
    lay = c.layout
    v = c.drawn_view
    cv.mouse = v.data_to_px(k + 0.5, v.px_to_data(0, lay.height / 2)[1])
    settle()
    shot("step")
    # the curves beside phi: the SGD run by epoch, its validation loss over the curve, the lr in a panel
    for i, r in enumerate(c.runs):
        c.set_run_visible(i, "sgd" in r.name)
    w.panel.fill_runs()
    c.state.update(series=("val_loss", "lr"), log_y=True)
    c.set_x_axis("epoch")
    settle()
    shot("series")
    w.win.close()


if __name__ == "__main__":
    main(sys.argv[1:])
