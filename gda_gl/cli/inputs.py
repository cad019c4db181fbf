"""What the ``gda-gl`` command line accepts: output paths, inputs, ranges, sizes, the view state from its flags.

Each check refuses bad input in one line (:class:`~gda_gl.session.errors.UsageError`) before any work is
done; the subcommands (:mod:`.commands`) call them first.
"""

from __future__ import annotations

import argparse
import math
import os
import stat
from pathlib import Path

from gda_gl.session.errors import UsageError, short as _short

__all__ = ["MAX_PIXELS", "check_output", "write_atomic", "check_inputs", "parse_range", "parse_size",
           "view_state_from_args", "parse_scatter", "parse_ylim"]


#: Largest image ``render`` and ``compare --png`` draw (pixels): memory grows with it.
MAX_PIXELS = 1 << 24

#: Iteration numbers are int64; a range end beyond this is certainly a typo.
_MAX_ITERATION = float(2 ** 62)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        try:
            return os.path.realpath(a) == os.path.realpath(b)
        except (OSError, ValueError):
            return False


def _looks_like(path: Path, kind: str) -> bool:
    """Whether an existing file is one gda-gl writes as ``kind`` (so replacing it loses nothing of anyone's)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError:
        return False
    if kind == "png":
        return head.startswith(b"\x89PNG\r\n\x1a\n")
    if kind == "json":
        return head.lstrip().startswith(b"{") or head == b""
    if kind in ("svg", "pdf"):
        return head.startswith(b"%PDF-" if kind == "pdf" else b"<?xml") and (kind == "pdf" or b"<svg" in head)
    return head.startswith(b"run,iterations,final loss,") or head == b""  # a table of gda-gl compare


def check_output(text: str, kind: str, inputs=()) -> Path:
    """Validate an output path before any work is done.

    The name must end in ``.png`` / ``.csv``; an existing file may be replaced
    only if it is a regular file of that kind (a PNG, or a CSV table written by
    ``gda-gl compare``) and not one of the command's inputs; the nearest existing
    parent must be a writable directory (missing directories are created when
    writing).

    Raises
    ------
    UsageError
        one line naming the path and the problem.
    """
    p = Path(text)
    name = _short(text)
    want = "." + kind
    if p.suffix.lower() != want:
        got = f"'{p.suffix}'" if p.suffix else "no extension"
        raise UsageError(f"{name}: the output must be a {want} file (got {got})")
    for inp in inputs:
        if inp and _same_file(p, Path(inp)):
            raise UsageError(f"{name}: is an input of this command; refusing to write over it")
    _check_existing(p, name, kind)
    _check_parent(p, name)
    return p


def _check_existing(p: Path, name: str, kind: str) -> None:
    """An existing output may be replaced only if it is a regular file gda-gl wrote as ``kind``."""
    try:
        st = os.stat(p)
    except FileNotFoundError:
        return
    except NotADirectoryError:
        raise UsageError(f"{name}: a parent is not a directory") from None
    except OSError as exc:
        raise UsageError(f"{name}: cannot be written ({exc.strerror or exc})") from None
    if stat.S_ISDIR(st.st_mode):
        raise UsageError(f"{name}: is a directory")
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{name}: is not a regular file (a FIFO, device or socket); refusing to write to it")
    if not _looks_like(p, kind):
        raise UsageError(f"{name}: exists and is not a {kind.upper()} written by gda-gl; refusing to "
                         "overwrite it")


def _check_parent(p: Path, name: str) -> None:
    """The nearest existing parent must be a directory this process may write into."""
    parent = p.parent if str(p.parent) else Path(".")
    try:
        while not parent.exists():
            parent = parent.parent
    except OSError as exc:
        raise UsageError(f"{name}: cannot be written ({exc.strerror or exc})") from None
    if not parent.is_dir():
        raise UsageError(f"{name}: {_short(parent)} is not a directory")
    try:
        ro = bool(os.statvfs(parent).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        ro = False
    if ro or not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"{name}: cannot be written (no write permission in {_short(parent)})")


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename (no half-written outputs)."""
    from gda_gl.session.files import write_file_atomic

    try:
        write_file_atomic(path, data)
    except OSError as exc:
        raise UsageError(f"{_short(path)}: cannot be written ({exc.strerror or exc})") from None


def check_inputs(paths) -> None:
    """Refuse inputs that are not regular files before anything opens them (FIFOs would block)."""
    from recorder.fsutil import check_recording_file

    for p in paths:
        check_recording_file(p)


def parse_range(text: str) -> tuple[float | None, float | None]:
    try:
        a, b = text.split(":")
        lo = float(a) if a.strip() else None
        hi = float(b) if b.strip() else None
    except ValueError:
        raise UsageError(f"--range {text[:80]!r}: expected A:B (iterations, either side may be empty)") from None
    for v in (lo, hi):
        if v is not None and not (math.isfinite(v) and abs(v) <= _MAX_ITERATION):
            raise UsageError(f"--range {text[:80]!r}: iterations must be finite numbers within +-2**62")
    if lo is not None and hi is not None and hi <= lo:
        raise UsageError(f"--range {text!r}: the end must be larger than the start")
    return lo, hi


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text[:80]!r}: expected WIDTHxHEIGHT, e.g. 1600x900") from None
    if not (64 <= w <= 16384 and 64 <= h <= 16384):
        raise UsageError(f"--size {text!r}: width and height must be within 64..16384")
    if w * h > MAX_PIXELS:
        raise UsageError(f"--size {text!r}: {w * h / 1e6:.0f} megapixels; at most {MAX_PIXELS / 1e6:.1f} "
                         "(e.g. 4096x4096)")
    return w, h


def view_state_from_args(args: argparse.Namespace):
    """A ViewState from --state plus the command-line overrides."""
    from gda_gl.compose.state import ViewState

    if getattr(args, "state", None):
        from gda_gl.session.files import load_state

        st = load_state(args.state)
    else:
        st = ViewState()
    if getattr(args, "range", None):
        lo, hi = parse_range(args.range)
        x0, x1 = st.x_range or (None, None)
        st.x_range = (lo if lo is not None else x0, hi if hi is not None else x1)
    if getattr(args, "log", False):
        st.log_y = True
    if getattr(args, "color_by", None):
        st.color_by = args.color_by
    if getattr(args, "ylim", None):
        st.y_range = parse_ylim(args.ylim, st.log_y)
    if getattr(args, "highlight", None):
        st.highlight = args.highlight
    if getattr(args, "normalize", False):
        st.normalize = True
    if getattr(args, "x_axis", None):
        if st.x_axis != args.x_axis and not getattr(args, "range", None):
            st.x_range = None  # a saved range is in the saved axis's units
        st.x_axis = args.x_axis
    if getattr(args, "series", None):
        st.series = tuple(args.series)
    if getattr(args, "series_log", None):
        st.series_log = tuple(args.series_log)
        st.series = tuple(dict.fromkeys((st.series or ()) + st.series_log))
    if getattr(args, "smooth", None) is not None:
        try:
            v = float(args.smooth)
        except ValueError:
            v = math.nan
        if not 0.0 <= v < 1.0:
            raise UsageError(f"--smooth {args.smooth!r}: expected a number in [0, 1)")
        st.smoothing = v
    return st


def parse_ylim(text: str, log: bool) -> tuple[float, float]:
    """``--ylim A:B`` as the y range (loss units; positive on a log axis)."""
    try:
        lo, hi = (float(v) for v in text.split(":"))
    except ValueError:
        raise UsageError(f"--ylim {text[:80]!r}: expected A:B, e.g. 0.1:2.5") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo) or (log and lo <= 0):
        need = " and positive (log y)" if log else ""
        raise UsageError(f"--ylim {text[:80]!r}: two finite numbers, increasing{need}")
    return lo, hi


def parse_scatter(text: str, stat_keys: dict) -> tuple[str, str]:
    """``STAT:PARAM`` -> (the comparison column, the hyperparameter name)."""
    stat, sep, param = text.partition(":")
    stat = stat_keys.get(stat.strip(), stat.strip())
    if not sep or not param.strip() or stat not in stat_keys.values():
        raise UsageError(f"--scatter {text!r}: expected STAT:PARAM with STAT one of {', '.join(stat_keys)}")
    return stat, param.strip()
