"""The notebook widget in a real browser: JupyterLab + headless Chromium (Debian's) via Playwright.

One server and one page for the module (start-up dominates): the example notebook
(``docs/notebook/example.ipynb``) is copied into a temporary folder with its training script and its
first cell is run.  It starts the writer process and follows its recording.  Checked from the
browser side, in order:

1. the frame image appears; while the writer appends, the view grows (the view line's step count
   rises and the image changes) until the follower reports the run finished;
2. a wheel event over the frame changes the image and the view line says "zoomed";
   Home returns to the whole run with the same decoded pixels as before the wheel;
3. a double-click selects a step: the details (picture and numbers) show it.

Skips with the reason only where the chain cannot run (no Chromium, no playwright / jupyterlab).
Screenshots go to ``$GDA_NOTEBOOK_SCREENSHOTS`` when set (the README's come from there).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from benchmarks.notebook_lab import DETAILS, FRAME, STATUS, VIEW, Lab, why_not

ROOT = Path(__file__).resolve().parent.parent
STEPS = 60

pytestmark = [pytest.mark.gl, pytest.mark.slow]


def _steps(lab) -> int:
    m = re.search(r"([\d,]+) steps", lab.text(VIEW))
    return int(m.group(1).replace(",", "")) if m else 0


def _shot(lab, name: str) -> None:
    folder = os.environ.get("GDA_NOTEBOOK_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        lab.page.locator(".gda-explorer").first.screenshot(path=str(Path(folder) / name))


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    reason = why_not()
    if reason:
        pytest.skip(f"browser test: {reason}")
    folder = tmp_path_factory.mktemp("lab")
    for name in ("example.ipynb", "train_small.py"):
        shutil.copy(ROOT / "docs" / "notebook" / name, folder / name)
    env = {"EGL_PLATFORM": "surfaceless", "LP_NUM_THREADS": "1", "GDA_NB_STEPS": str(STEPS),
           "GDA_NB_DELAY": "0.02", "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    lab = Lab(folder, env)
    try:
        lab.start()
        lab.open("example.ipynb")
        lab.run_cell(0)
        lab.wait_frame(timeout=150)
        yield lab
    finally:
        lab.close()


def test_frame_appears_and_the_followed_run_grows(lab):
    first = lab.frame_hash()
    assert first[0] > 100 and first[1] > 100
    seen = {_steps(lab)}
    t0 = time.time()
    while time.time() - t0 < 120 and "finished" not in lab.text(STATUS):
        n = _steps(lab)
        if n >= STEPS // 2 > max(seen):
            _shot(lab, "notebook-live.png")  # half way: the run is growing
        seen.add(n)
        time.sleep(0.3)
    assert "finished" in lab.text(STATUS), lab.text(STATUS)
    assert _steps(lab) == STEPS
    assert len(seen - {0}) >= 2, f"the view did not grow in steps while the writer ran: {sorted(seen)}"
    assert lab.settle() != first


def test_wheel_changes_the_image_and_home_returns_it_pixel_identically(lab):
    box = lab.frame_box()
    lab.page.mouse.click(box["x"] + 4, box["y"] + 4)  # focus (a corner: selects nothing)
    lab.page.keyboard.press("Home")
    lab.wait_text(VIEW, "whole run")
    whole = lab.settle()
    lab.page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    n = len(lab.loads())
    lab.page.mouse.wheel(0, -100)
    lab.page.mouse.wheel(0, -100)
    lab.page.wait_for_function(f"() => document.querySelector('{FRAME}').__gda.loads.length > {n}")
    lab.wait_text(VIEW, "zoomed")
    zoomed = lab.settle()
    assert zoomed != whole
    _shot(lab, "notebook-zoom.png")
    lab.page.keyboard.press("Home")
    lab.wait_text(VIEW, "whole run")
    assert lab.settle() == whole


def test_double_click_selects_a_step_and_the_details_show_it(lab):
    box = lab.frame_box()
    lab.page.mouse.dblclick(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.5)
    m = lab.wait_text(VIEW, r"selected (\d+)")
    k = m.group(1)
    lab.wait_text(DETAILS, rf"details of step {k}\b")
    assert lab.page.locator(f"{DETAILS} img").first.is_visible()
    lab.settle()
    _shot(lab, "notebook-details.png")
