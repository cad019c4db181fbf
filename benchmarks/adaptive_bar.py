"""Issue 27's agreement bar: a preset against the dense 65-point line of the same steps.

``python -m benchmarks.adaptive_bar [--quick] [--presets valley,adaptive] [--steps 50] [--seeds 0,1]
[--models "MLP,small CNN"] [--no-results-md]``

Per model of :mod:`gda_gl.bench.probe_models` (the benchmark CNN, the small CNN, a transformer language
model with dropout, an MLP), at each of its learning rates (the default one and larger ones, so the runs
hold overshooting and near-optimal steps too) and seeds, ``dense`` and the presets are attached to the
same optimizer and record the same steps (:mod:`gda_gl.bench.probe_agree`).  Reported per model and
preset over all its runs: the share of steps whose step class agrees with dense's, the share whose
minimum lies within one dense spacing (2/64), stored points per step, and dense's mix of step classes.
The bar: both shares at least 99 % over at least 300 steps and 2 seeds per model.

The cost of the presets is measured by ``gda-gl bench --only probe`` (section ``probe``).  Writes the
section ``probe agreement`` of ``benchmarks/RESULTS.md`` (other sections are kept).
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import tempfile
import time
from pathlib import Path

from gda_gl.bench.common import machine, table
from gda_gl.bench.probe_agree import agreement_rows
from gda_gl.bench.probe_models import SETUPS

SECTION = "probe agreement"


def write_section(rows: list[dict], by_lr: list[dict], command: str, seconds: float, results: Path) -> None:
    """Replace (or add) the section :data:`SECTION` of ``results``, keeping every other section."""
    m = machine()
    body = [f"Command: `{command}` ({dt.datetime.now().isoformat(timespec='seconds')}, {seconds:.0f} s"
            + (": recordings of an earlier run read again" if "--folder" in command else "") + "). "
            f"Machine: {m.get('cpu')}, {m.get('cores')} cores, torch {m.get('torch')}, numpy {m.get('numpy')}. "
            "Agreement does not depend on the machine's load (the same seeded steps are recorded).",
            "", __doc__.split("\n\n", 2)[2].split("\n\nThe cost")[0].strip(), "", "### all runs", "", table(rows),
            "### per learning rate", "", table(by_lr)]
    text = results.read_text() if results.exists() else "# Benchmark results\n"
    head, *sections = text.split("\n## ")
    sections = [sec for sec in sections if sec.partition("\n")[0].strip() not in (SECTION, "adaptive")]
    sections.append(SECTION + "\n" + "\n".join(body))
    results.write_text(head.rstrip("\n") + "\n\n" + "\n".join("## " + sec.strip("\n") + "\n" for sec in sections))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.adaptive_bar", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="10 steps per run, the first learning rate, one seed")
    p.add_argument("--presets", default="valley", help="comma-separated presets compared with dense")
    p.add_argument("--steps", type=int, default=50, help="steps per run (default 50: 3 rates x 2 seeds = 300)")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--models", default=",".join(SETUPS))
    p.add_argument("--folder", help="keep the recordings here; recordings already there are read, not re-recorded")
    p.add_argument("--no-results-md", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("recorder").setLevel(logging.ERROR)
    os.environ.setdefault("GDA_GL_CACHE", tempfile.mkdtemp(prefix="gda-bench-cache-"))
    import torch

    torch.set_num_threads(1)
    presets = tuple(x for x in args.presets.split(",") if x)
    seeds = (0,) if args.quick else tuple(int(x) for x in args.seeds.split(","))
    t0 = time.perf_counter()
    rows, by_lr = agreement_rows(args.models.split(","), presets, 10 if args.quick else args.steps, seeds,
                                 1 if args.quick else None, args.folder)
    print(table(rows), "", table(by_lr), sep="\n", flush=True)
    if not args.no_results_md:
        cmd = ("python -m benchmarks.adaptive_bar" + (" --quick" if args.quick else "")
               + f" --presets {args.presets} --steps {args.steps} --seeds {args.seeds}"
               + (f" --folder {args.folder}" if args.folder else ""))
        write_section(rows, by_lr, cmd, time.perf_counter() - t0, Path(__file__).resolve().parent / "RESULTS.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
