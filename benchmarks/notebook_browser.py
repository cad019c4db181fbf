"""The notebook widget measured from a real browser: wheel-to-image latency, zoom fps, bytes, idle CPU.

``python -m benchmarks.notebook_browser [--rows 200000 10000000] [--size 1200x700] [--json PATH]``

For each recording (the scale suite's synthetic runs, :func:`gda_gl.bench.scale.make_recording`,
kept in ``$GDA_BENCH_DIR``) a notebook that opens it with :func:`gda_gl.notebook.view` is run in
JupyterLab in headless Chromium (:mod:`benchmarks.notebook_lab`).  Measured from the page's clock:

- **wheel latency**: ``performance.now()`` before Playwright sends one wheel notch over the frame,
  to the ``load`` of the next frame ``<img>`` (the first new image; the flight goes on after it),
  alternating in and out around a zoom of a few hundred steps;
- **zoom fps**: one notch every 40 ms from the whole run to one step; frames shown per second
  between the first notch and the last frame of the flight;
- **bytes per frame**: the blob sizes of the frames shown (JPEG while the view changes, the PNG
  that follows at rest);
- **idle kernel CPU**: the kernel's CPU time over 10 s with nothing happening (no follow);
- the kernel's own frame times (draw + readback, ``ExplorerFrameBuffer.frame_ms``) printed by a
  second cell: the same draw the Qt window's canvas does per frame (its readout, key R).

Nothing is asserted; targets (issue 19): latency <= 100 ms median and <= 200 ms p95, zoom >= 15 fps.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)

CELL_OPEN = ("from gda_gl.notebook import view\n"
             "explorer = view({path!r}, size=({w}, {h}))\n"
             "explorer")
CELL_STATS = ("import statistics, json\n"
              "ms = list(explorer.frame.frame_ms)\n"
              "print('KERNEL', json.dumps({'frame_ms_median': statistics.median(ms), 'frames': explorer.frame.frames,"
              " 'stats': explorer.frame.get_stats()}))")


def _notebook(folder: Path, path: str, size) -> str:
    cells = [CELL_OPEN.format(path=path, w=size[0], h=size[1]), CELL_STATS]
    nb = {"cells": [{"cell_type": "code", "execution_count": None, "id": f"c{i}", "metadata": {}, "outputs": [],
                     "source": src} for i, src in enumerate(cells)],
          "metadata": {"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                      "name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "bench.ipynb").write_text(json.dumps(nb))
    return "bench.ipynb"


def _cpu_s(pid: int) -> float:
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]


def wheel_latency(lab, n: int = 20) -> tuple[list[float], list[float]]:
    """ms to the next frame shown, ``n`` times (in and out in turn): from the page's wheel event, and from
    the moment Playwright was asked to send it."""
    box = lab.frame_box()
    lab.page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
    out, sent = [], []
    for i in range(n):
        lab.settle(quiet_s=0.6)
        t0 = lab.now()
        lab.page.mouse.wheel(0, -100 if i % 2 == 0 else 100)
        lab.page.wait_for_function("([sel, t0]) => document.querySelector(sel).__gda.loads.some(r => r.t > t0)",
                                   arg=[lab_frame(), t0], timeout=20_000)
        first = min(r["t"] for r in lab.loads() if r["t"] > t0)
        wheel = min((t for t in lab.wheels() if t > t0), default=t0)
        out.append(first - wheel)
        sent.append(first - t0)
    return out, sent


def lab_frame() -> str:
    from benchmarks.notebook_lab import FRAME

    return FRAME


def zoom_fps(lab, notch_ms: float = 40.0) -> dict:
    """Zoom from the whole run to about one step with a notch every ``notch_ms``; frames shown per second."""
    lab.page.keyboard.press("Home")
    lab.settle()
    box = lab.frame_box()
    lab.page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
    t0 = lab.now()
    notches = 0
    while notches < 120:
        lab.page.mouse.wheel(0, -100)
        notches += 1
        time.sleep(notch_ms / 1000)
        if notches % 10 == 0 and re.search(r"view x ([\d.,-]+) \.\. ([\d.,-]+)", lab.text(".gda-view")):
            a, b = (float(v.replace(",", "")) for v in
                    re.search(r"view x ([\d.,-]+) \.\. ([\d.,-]+)", lab.text(".gda-view")).groups())
            if b - a <= 2.0:
                break
    lab.settle(quiet_s=1.0)
    loads = [r for r in lab.loads() if r["t"] > t0]
    moving = [r for r in loads if "jpeg" in r["type"]] or loads
    t_end = max(r["t"] for r in moving)
    return {"notches": notches, "frames": len(moving), "seconds": (t_end - t0) / 1000,
            "fps": len(moving) / max(1e-3, (t_end - t0) / 1000),
            "jpeg_bytes_median": statistics.median([r["bytes"] for r in moving if r["bytes"] > 0] or [0]),
            "png_bytes_median": statistics.median([r["bytes"] for r in loads if "png" in r["type"]] or [0])}


def idle_cpu(lab, seconds: float = 10.0) -> float:
    """The kernel's CPU use (percent of one core) over ``seconds`` with nothing happening."""
    lab.settle()
    pids = lab.kernel_pids()
    c0, t0 = sum(_cpu_s(p) for p in pids), time.time()
    time.sleep(seconds)
    return 100.0 * (sum(_cpu_s(p) for p in pids) - c0) / (time.time() - t0)


def kernel_stats(lab) -> dict:
    lab.run_cell(1)
    m = lab.wait_text(".jp-Notebook", r"KERNEL (\{[^\n]*\})", timeout=60)
    return json.loads(m.group(1))


def measure(path: str, size, folder: Path) -> dict:
    from benchmarks.notebook_lab import Lab

    name = _notebook(folder, path, size)
    lab = Lab(folder, {"EGL_PLATFORM": "surfaceless"})
    try:
        t0 = time.time()
        lab.start()
        lab.open(name)
        lab.run_cell(0)
        lab.wait_frame(timeout=300)
        first_frame_s = time.time() - t0
        box = lab.frame_box()
        lab.page.mouse.click(box["x"] + 4, box["y"] + 4)  # focus
        cpu = idle_cpu(lab)
        lab.page.mouse.move(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
        for _ in range(12):  # to a zoom of a few hundred steps on the larger runs, where single notches land
            lab.page.mouse.wheel(0, -100)
            time.sleep(0.05)
        lat, sent = wheel_latency(lab)
        fps = zoom_fps(lab)
        ks = kernel_stats(lab)
        return {"recording": path, "size": size, "server_to_first_frame_s": first_frame_s, "idle_kernel_cpu_pct": cpu,
                "wheel_latency_ms": {"median": statistics.median(lat), "p95": _percentile(lat, 95), "all": lat,
                                     "from_send_median": statistics.median(sent),
                                     "from_send_p95": _percentile(sent, 95)},
                "zoom": fps, "kernel": ks}
    finally:
        lab.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=float, nargs="+", default=[200_000])
    ap.add_argument("--size", default="1200x700")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from benchmarks.notebook_common import parse_size, scale_recording, write_json
    from benchmarks.notebook_lab import why_not

    reason = why_not()
    if reason:
        raise SystemExit(f"notebook_browser: {reason}")
    size = parse_size(args.size)
    results = []
    for rows in args.rows:
        path = scale_recording(int(rows))
        with tempfile.TemporaryDirectory(prefix="gda-nb-bench-") as tmp:
            r = measure(str(path), size, Path(tmp))
        results.append(r)
        lat, z = r["wheel_latency_ms"], r["zoom"]
        log.info("%s: wheel event->image median %.0f ms, p95 %.0f ms (from Playwright's send: %.0f / %.0f); "
                 "zoom %.1f fps (%d frames in %.1f s, %d notches); "
                 "JPEG %.0f KiB, PNG %.0f KiB per frame; kernel frame (draw+readback) median %.0f ms; "
                 "idle kernel CPU %.2f %%", Path(path).name, lat["median"], lat["p95"], lat["from_send_median"],
                 lat["from_send_p95"], z["fps"], z["frames"],
                 z["seconds"], z["notches"], z["jpeg_bytes_median"] / 1024, z["png_bytes_median"] / 1024,
                 r["kernel"]["frame_ms_median"], r["idle_kernel_cpu_pct"])
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
