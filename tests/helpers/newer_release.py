"""Act as a later gda-gl release whose statistics registry has one more entry, ``grad_cosine``.

The registry is patched before any module that reads it is imported, so the schema, the pyramid and the
writer derive their fields exactly as a release declaring the statistic in :mod:`recorder.stats` would.

Usage (prints one JSON line; a refusal prints ``{"error": "..."}`` and exits 2)::

    python newer_release.py write PATH ROWS     # a new recording whose rows carry grad_cosine
    python newer_release.py read PATH           # digests of every column and the whole-run summary
    python newer_release.py append PATH ROWS    # append rows after the last iteration
    python newer_release.py cli ARGS...         # gda_gl.cli.main(ARGS)
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recorder import stats  # noqa: E402  (the package imports nothing that reads the registry)

EXTRA = stats.Statistic("grad_cosine", "<f4", "cosine between this step's gradient and the previous step's",
                        "gradient cosine", colormap="viridis")
stats.STATISTICS = stats.STATISTICS + (EXTRA,)
stats.STAT_BY_NAME = {s.name: s for s in stats.STATISTICS}
stats.FLOAT_AGGREGATED = tuple(s.name for s in stats.STATISTICS if s.aggregate == "float")
stats.CODE_AGGREGATED = tuple(s.name for s in stats.STATISTICS if s.aggregate == "codes")

import numpy as np  # noqa: E402

from recorder.errors import RecordingError  # noqa: E402
from recorder.store import Recording, RecordingWriter  # noqa: E402
from recorder.window import RunWindows  # noqa: E402

GRID = [0.0, 0.25, 0.5, 1.0, 1.5]


def rows(first: int, n: int) -> tuple[dict, np.ndarray]:
    """``n`` rows from iteration ``first``: the extra statistic filled, a line search every third row."""
    it = np.arange(first, first + n)
    cols = {"iteration": it, "epoch": it // 100, "batch": it // 3, "taken_alpha": np.ones(n),
            "train_loss": 2.0 * 0.99 ** it, "ls_evals": (it % 3 == 0).astype(np.int32), "micro_batches": 2,
            "step_class": it % 4, "grad_cosine": np.cos(it / 10.0)}
    phi = (2.0 * 0.99 ** it)[:, None] * (1.0 + np.asarray(GRID)[None, :] ** 2)
    return cols, phi.astype(np.float32)


def digests(path: str) -> dict:
    """sha256 of every column this release reads, and the whole-run summary of the stored pyramid."""
    with Recording(path) as rec:
        d = rec.read()
        out = {name: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for name, v in d.columns.items()}
        out["phi"] = hashlib.sha256(d.phi.tobytes()).hexdigest()
        out["rows"] = len(d)
        out["stored_pyramid"] = rec.has_stored_pyramid()
        top = RunWindows.from_recording(rec).summary()
        out["summary"] = {k: (None if not math.isfinite(float(v[0])) else float(v[0])) for k, v in top.items()}
    return out


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    try:
        if cmd == "write":
            with RecordingWriter(args[0], GRID, {"name": "newer"}, block_rows=64) as w:
                w.append_arrays(*rows(0, int(args[1])))
            print(json.dumps({"ok": True}))
        elif cmd == "append":
            with Recording(args[0]) as rec:
                last = rec.iteration_span()[1]
            with RecordingWriter(args[0], GRID, append=True) as w:
                w.append_arrays(*rows(last + 1, int(args[1])))
            print(json.dumps({"ok": True}))
        elif cmd == "read":
            print(json.dumps(digests(args[0])))
        elif cmd == "cli":
            from gda_gl.cli import main as cli_main

            rc = cli_main(args)
            print(json.dumps({"rc": rc}))
        else:
            raise SystemExit(f"unknown command {cmd!r}")
    except RecordingError as exc:
        print(json.dumps({"error": str(exc)}))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
