"""Drive the notebook widget in a real browser: JupyterLab on 127.0.0.1 plus headless Chromium via Playwright.

Shared by the browser test (``tests/test_notebook_browser.py``) and the measurement script
(``benchmarks/notebook_browser.py``).  The chain is the one checked in ``shared/BROWSER_TESTS.md``:
Debian's ``chromium`` (never a browser downloaded at test time) driven by Playwright for Python,
JupyterLab started with a random port and token in a folder holding the notebook, the notebook's
first code cell run with Shift+Enter, and the widget's frame read back from the page: the frame
is an ``<img>`` whose ``src`` is a blob URL that changes with each frame; its pixels are hashed in
the page (drawn into a canvas), so "the same picture" means the same decoded pixels.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["Lab", "find_chromium", "why_not", "FRAME", "STATUS", "VIEW", "DETAILS"]

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
FRAME = ".gda-explorer .renderview-wrapper img"
STATUS, VIEW, DETAILS = ".gda-explorer .gda-status", ".gda-explorer .gda-view", ".gda-explorer .gda-details"

#: page-side instrumentation: every load of the frame <img> with its time, the blob's size and type
_JS_WATCH = """(sel) => {
  const img = document.querySelector(sel);
  if (!img || img.__gda) return !!img;
  img.__gda = {loads: [], wheels: []};
  img.addEventListener('wheel', () => img.__gda.wheels.push(performance.now()), {capture: true});
  img.addEventListener('load', () => {
    const rec = {t: performance.now(), src: img.src, bytes: -1, type: ''};
    img.__gda.loads.push(rec);
    fetch(img.src).then(r => r.blob()).then(b => { rec.bytes = b.size; rec.type = b.type; }).catch(() => {});
  });
  return true;
}"""

#: FNV-1a over the decoded RGBA pixels of the frame as shown
_JS_HASH = """(sel) => {
  const img = document.querySelector(sel);
  const c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight;
  const g = c.getContext('2d');
  g.drawImage(img, 0, 0);
  const d = g.getImageData(0, 0, c.width, c.height).data;
  let h = 0x811c9dc5;
  for (let i = 0; i < d.length; i++) { h ^= d[i]; h = Math.imul(h, 0x01000193); }
  return [c.width, c.height, (h >>> 0).toString(16)];
}"""


def find_chromium() -> str | None:
    """Debian's Chromium (or another system Chrome), or None."""
    for p in CHROMIUM:
        if Path(p).exists():
            return p
    return shutil.which("chromium")


def why_not() -> str | None:
    """Why the browser chain cannot run here (None when it can)."""
    for mod, extra in (("playwright", "test"), ("jupyterlab", "test"), ("jupyter_rfb", "notebook"),
                       ("ipywidgets", "notebook")):
        try:
            __import__(mod)
        except ImportError:
            return f"{mod} is not installed (pip install 'gda-gl[{extra}]')"
    if find_chromium() is None:
        return ("no Chromium: apt-get install -y --no-install-recommends chromium "
                "(scripts/setup.sh does this as root with GDA_EXTRAS containing notebook)")
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server serving ``folder`` and one headless Chromium page.

    Parameters
    ----------
    folder : the server's root (holds the notebook)
    env : extra environment for the server and its kernels
    """

    def __init__(self, folder: str | os.PathLike, env: dict | None = None):
        self.folder = Path(folder)
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.env = dict(os.environ, **(env or {}))
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
            d = self.folder / f".{name.lower()}"
            d.mkdir(exist_ok=True)
            self.env[name] = str(d)
        self.server: subprocess.Popen | None = None
        self._pw = self.browser = self.page = None
        self.log_path = self.folder / ".jupyter-server.log"

    def start(self, timeout: float = 120.0) -> "Lab":
        """Start the server and wait until it answers."""
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.folder}", "--allow-root",
               "--LabApp.news_url=", "--ServerApp.open_browser=False"]
        self._log = open(self.log_path, "w")
        self.server = subprocess.Popen(cmd, cwd=self.folder, env=self.env, stdout=self._log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{self.port}/api/status?token={self.token}"
        t0 = time.time()
        while time.time() - t0 < timeout:
            if self.server.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(url, timeout=2).read()
                return self
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"jupyter lab did not answer in {timeout:.0f} s")

    def open(self, notebook: str, viewport=(1800, 1250)):
        """Open ``notebook`` in headless Chromium; returns the Playwright page."""
        from playwright.sync_api import sync_playwright

        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=find_chromium(),
                                                args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        self.page = self.browser.new_page(viewport={"width": viewport[0], "height": viewport[1]})
        self.page.goto(f"http://127.0.0.1:{self.port}/lab/tree/{notebook}?token={self.token}")
        self.page.wait_for_selector(".jp-Notebook", timeout=90_000)
        try:  # "Select Kernel" dialog (when the notebook names no kernel the server knows)
            self.page.locator(".jp-Dialog .jp-mod-accept").click(timeout=4000)
        except Exception:
            pass
        # JupyterLab's news question is a toast over the page (and over screenshots): hide toasts
        self.page.add_style_tag(content=".Toastify { display: none !important; }")
        self.page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle'], "
                                    ".jp-Notebook .jp-Cell", timeout=60_000)
        return self.page

    def run_cell(self, index: int = 0) -> None:
        """Run the ``index``-th code cell (click its editor, Shift+Enter)."""
        cell = self.page.locator(".jp-CodeCell .jp-InputArea-editor").nth(index)
        cell.click()
        self.page.keyboard.press("Shift+Enter")

    # -- the widget's frame as seen in the page ------------------------------------------------------
    def wait_frame(self, timeout: float = 120.0) -> None:
        """Wait for the first frame of the widget and instrument its <img>.

        On a timeout the error names what the cell printed; the page's screenshot and the server's log
        are left in the folder (``.failed.png``, ``.jupyter-server.log``).
        """
        try:
            self.page.wait_for_function(
                f"() => {{ const i = document.querySelector('{FRAME}'); "
                "return i && i.src && i.src.startsWith('blob:') && i.naturalWidth > 1; }", timeout=timeout * 1000)
        except Exception as exc:
            self.page.screenshot(path=str(self.folder / ".failed.png"))
            outputs = self.page.locator(".jp-OutputArea").all_inner_texts()
            raise TimeoutError(f"no frame in {timeout:.0f} s ({type(exc).__name__}); cell outputs: {outputs!r}; "
                               f"see {self.folder}/.failed.png and .jupyter-server.log") from None
        self.page.evaluate(_JS_WATCH, FRAME)

    def loads(self) -> list[dict]:
        """Every frame shown since :meth:`wait_frame`: ``{t (ms, page clock), bytes, type}``."""
        return self.page.evaluate("(sel) => document.querySelector(sel).__gda.loads"
                                  ".map(r => ({t: r.t, bytes: r.bytes, type: r.type}))", FRAME)

    def wheels(self) -> list[float]:
        """Page times (ms) of every wheel event the frame <img> received since :meth:`wait_frame`."""
        return self.page.evaluate("(sel) => document.querySelector(sel).__gda.wheels", FRAME)

    def now(self) -> float:
        """The page's clock (``performance.now()``, ms)."""
        return float(self.page.evaluate("() => performance.now()"))

    def frame_hash(self) -> tuple:
        """(width, height, FNV-1a of the decoded pixels) of the frame shown now."""
        return tuple(self.page.evaluate(_JS_HASH, FRAME))

    def settle(self, quiet_s: float = 1.0, timeout: float = 30.0) -> tuple:
        """Wait until no new frame arrived for ``quiet_s`` (the lossless frame follows 0.3 s after a change)."""
        t0 = time.time()
        n, last = len(self.loads()), time.time()
        while time.time() - t0 < timeout:
            time.sleep(0.2)
            m = len(self.loads())
            if m != n:
                n, last = m, time.time()
            elif time.time() - last >= quiet_s:
                return self.frame_hash()
        raise TimeoutError("the frame did not settle")

    def text(self, selector: str) -> str:
        return self.page.locator(selector).first.inner_text()

    def frame_box(self) -> dict:
        return self.page.locator(FRAME).bounding_box()

    def wait_text(self, selector: str, pattern: str, timeout: float = 60.0) -> re.Match:
        """Wait until the element's text matches ``pattern``; returns the match."""
        t0 = time.time()
        while True:
            m = re.search(pattern, self.text(selector))
            if m:
                return m
            if time.time() - t0 > timeout:
                raise TimeoutError(f"{selector} never matched {pattern!r}: {self.text(selector)!r}")
            time.sleep(0.2)

    def kernel_pids(self) -> list[int]:
        """Process ids of this server's kernels (children running ipykernel)."""
        out = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                stat = (d / "stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                if ppid == self.server.pid and b"ipykernel" in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except (OSError, ValueError, IndexError):
                continue
        return out

    def close(self) -> None:
        """Close the browser and stop the server (by its pid)."""
        for fn in (lambda: self.browser and self.browser.close(), lambda: self._pw and self._pw.stop()):
            try:
                fn()
            except Exception as exc:  # closing never hides the result
                log.debug("close: %s", exc)
        if self.server is not None and self.server.poll() is None:
            self.server.terminate()
            try:
                self.server.wait(15)
            except subprocess.TimeoutExpired:
                self.server.kill()
                self.server.wait()
        if getattr(self, "_log", None):
            self._log.close()
