"""Time and peak RSS of info/render/compare/read() on the issue-21 hostile corpus, each in a fresh process.

Usage: ``.venv/bin/python scripts/measure_hostile.py`` (prints a tab-separated table; asserts nothing).
The corpus is the one ``tests/test_hostile_v2.py`` generates, plus three decompression bombs.
"""

import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
import test_hostile_v2 as H  # noqa: E402

out = Path(tempfile.mkdtemp(prefix="gda-hostile-"))
good = H.write_good(out / "good.gda")
files = {"good-600": good}
for name in sorted({**H.OPEN_CASES, **H.CHECK_CASES}):
    files[name] = H.make(name, good, out)
files["bomb-nolayout-2.6M"] = H.write_bomb(out / "bomb-nolayout.gda", 40, 65536, 8, lod=False)
files["bomb-wide-1Mx1024"] = H.write_bomb(out / "bomb-wide.gda", 64, 16384, 1024, lod=False)
files["bomb-lod-6.5M"] = H.write_bomb(out / "bomb-lod.gda", 100, 65536, 8, lod=True)
PY = sys.executable
READ = (
    "import sys\nfrom recorder.store import Recording\ntry:\n    Recording(sys.argv[1]).read()\n"
    "except Exception as e:\n    print(e, file=sys.stderr)\n    sys.exit(2)\n"
)
WRAP = (
    "import resource, subprocess, sys, time\nt = time.perf_counter()\n"
    "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
    "dt = time.perf_counter() - t\npeak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024\n"
    "last = (p.stderr.strip().splitlines() or [''])[-1][-90:]\n"
    "print(p.returncode, round(dt, 2), peak, last, sep='\\t')\n"
)
print("file\tsize_KB\tcommand\trc\tseconds\tpeak_MiB\tlast stderr line")
for label, f in files.items():
    size = f.stat().st_size // 1024
    for cmd, argv in (
        ("info", [PY, "-m", "gda_gl", "info", str(f)]),
        ("compare", [PY, "-m", "gda_gl", "compare", str(f)]),
        ("render", [PY, "-m", "gda_gl", "render", str(f), "-o", str(out / "o.png")]),
        ("read()", [PY, "-c", READ, str(f)]),
    ):
        r = subprocess.run(
            [PY, "-c", WRAP, *argv],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=str(ROOT),
            env=dict(os.environ, EGL_PLATFORM="surfaceless"),
        )
        print(f"{label}\t{size}\t{cmd}\t{r.stdout.strip()}", flush=True)
        if (out / "o.png").exists():
            (out / "o.png").unlink()
