"""Text summaries of recordings (``gda-gl info``): quantities computed from the store, no drawing."""

from __future__ import annotations

import datetime as _dt

import numpy as np

from recorder import schema, stats
from recorder.errors import RecordingError
from recorder.reader import Recording

__all__ = ["describe_grid", "info_text", "human_bytes"]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def describe_grid(grid: np.ndarray) -> str:
    """'16 values, 0 .. 2 (uniform)' style description of an alpha grid."""
    g = np.asarray(grid, np.float64)
    kind = "user-given"
    if len(g) > 2:
        d = np.diff(g)
        if np.allclose(d, d[0], rtol=1e-9, atol=1e-12):
            kind = "uniform"
        elif g[0] > 0 and np.allclose(np.diff(np.log(g)), np.log(g[1] / g[0]), rtol=1e-6):
            kind = "log"
        elif g[0] == 0 and len(g) > 3 and g[1] > 0 and np.allclose(np.diff(np.log(g[1:])),
                                                                   np.log(g[2] / g[1]), rtol=1e-6):
            kind = "0 + log"
    return f"{len(g)} values, {g.min():g} .. {g.max():g} ({kind})"


def _fmt_time(t: float) -> str:
    """Local date and time of unix time ``t``; values no clock produces are shown as numbers."""
    try:
        if not (0 <= t < 253402214400):  # 1970 .. 9999
            raise ValueError
        return _dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError, OSError):
        return f"{t:g} (not a date)"


def _text(v, limit: int = 200) -> str:
    """A metadata value as one short line (metadata come from the file: any JSON type)."""
    s = v if isinstance(v, str) else str(v)
    s = s.splitlines()[0] if s.strip() else ""
    return "".join(ch if ch.isprintable() else "?" for ch in s[:limit])


def info_text(rec: Recording) -> str:
    """Multi-line summary of one recording.

    Raises
    ------
    RecordingError : the recording holds no iterations
    """
    from recorder.window import RunWindows

    top = RunWindows.from_recording(rec, rows=False).summary()  # the whole-run pyramid bucket: O(1) in the length
    n = 0 if top is None else int(top["rows"][0])
    if n == 0:
        raise RecordingError(rec.path, f"recording holds no iterations (writer {rec.writer_state()})")
    run = rec.run
    g = {k: v[0] for k, v in top.items()}
    counts = {name: int(g[f"status:{code}"]) for code, name in schema.STATUS_NAMES.items()}
    probed = n - counts["skipped"]
    wmin, wmax = float(g["wall_time:min"]), float(g["wall_time:max"])
    span = (f"{_fmt_time(wmin)} .. {_fmt_time(wmax)} ({wmax - wmin:.1f} s)" if int(g["wall_time:count"])
            else "unknown")
    hyper = run.get("hyperparameters")
    hyper = hyper if isinstance(hyper, dict) else {}
    hyper_s = " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={_text(v, 60)}" for k, v in hyper.items()
                       if not isinstance(v, (dict, list)) and v is not None and v is not False
                       and k not in ("foreach", "fused", "differentiable", "capturable"))[:400]
    model = _text(run.get("model_name") or run.get("model") or "?")
    pc = run.get("parameter_count")
    pc = pc if isinstance(pc, int) and not isinstance(pc, bool) else None
    failures = rec.events("probe-failed", limit=1)
    probe = run.get("probe")
    probe_s = _text(probe.get("describe", "")) if isinstance(probe, dict) else ""
    lines = [
        f"{rec.path}",
        f"  run           {rec.name}",
        f"  iterations    {n:,} ({int(g['first_it'])}..{int(g['last_it'])}), epochs {int(g['epoch_first'])}.."
        f"{int(g['epoch_last'])}, {int(g['batch_changes']) + 1:,} mini-batches",
        f"  samples       {probed * len(rec.alpha_grid):,} ({len(rec.alpha_grid)} alphas x {probed:,} probed "
        f"iterations), {int(g['trials']):,} line-search trial points, {int(g['loose_ends']):,} loose ends",
        f"  alpha grid    {describe_grid(rec.alpha_grid)}",
        f"  optimizer     {_text(run.get('optimizer', '?'), 80)} {hyper_s}".rstrip(),
        f"  model         {model}" + (f" ({pc:,} parameters)" if isinstance(pc, int) else ""),
        f"  probe         {probe_s}".rstrip(),
        f"  probe status  {counts['ok']:,} ok, {counts['non-finite']:,} non-finite, {counts['failed']:,} failed, "
        f"{counts['skipped']:,} skipped",
        f"  time span     {span}",
        f"  writer        {rec.writer_state()}",
        f"  file size     {human_bytes(rec.file_size())} ({rec.file_size() / n:.0f} bytes per iteration), "
        f"schema {rec.version}" + ("" if rec.has_stored_pyramid() else " (indexed in memory; 'gda-gl upgrade' "
                                                                       "stores the index)"),
    ]
    lines += _stat_lines(g)
    lines += _series_lines(rec, run)
    if failures:
        it0, _, _, msg = failures[0]
        lines.append(f"  first failure iteration {it0}: {_text(msg, 300)}")
    return "\n".join(ln for ln in lines if ln.strip().split()[1:] or ln == lines[0])


#: statistics the summary shows in lines of their own (the time span)
_SHOWN_ABOVE = ("wall_time",)


def _stat_lines(g: dict) -> list[str]:
    """Every statistic of :data:`recorder.stats.STATISTICS` the whole-run bucket aggregates, by its label and
    format: min .. max and mean over the rows that hold a finite value (a new statistic shows unchanged)."""
    lines = []
    for s in stats.STATISTICS:
        count = int(g.get(f"{s.name}:count", 0) or 0)
        if s.aggregate != "float" or not count or s.name in _SHOWN_ABOVE:
            continue
        lo, hi, mean = float(g[f"{s.name}:min"]), float(g[f"{s.name}:max"]), float(g[f"{s.name}:sum"]) / count
        f = ".4g" if s.fmt == "d" else s.fmt
        lines.append(f"    {s.label:<24} {lo:{f}} .. {hi:{f}}, mean {mean:{f}} ({count:,} steps)")
    return (["  statistics    min .. max, mean over the steps that hold a value"] + lines) if lines else []


def _series_lines(rec: Recording, run: dict) -> list[str]:
    """The logged series (points, iteration span) and the hyperparameters logged with ``rec.log_config``."""
    from recorder.series import series_summary

    out = []
    logged = series_summary(rec)
    if logged:
        shown = ", ".join(f"{_text(name, 60)} ({pts:,} points, {a}..{b})" for name, pts, a, b in logged[:12])
        more = f", and {len(logged) - 12} more" if len(logged) > 12 else ""
        out.append(f"  series        {shown}{more}")
    cfg = run.get("config")
    if isinstance(cfg, dict) and cfg:
        items = " ".join(f"{_text(k, 40)}={v:g}" if isinstance(v, float) else f"{_text(k, 40)}={_text(v, 60)}"
                         for k, v in cfg.items() if not isinstance(v, (dict, list)))
        out.append(f"  config        {items[:400]}")
    return out
