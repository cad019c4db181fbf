"""Live sources of the explorer (``gda-gl view --follow``): poll open recordings, open files that appear.

The :class:`Follower` is owned by whoever opened the recordings (the window
built by :func:`gda_gl.explorer.app.build_window`, or a test); the controller
never opens a file.  At each :meth:`Follower.poll` the follower

1. opens followed files that appeared since the last poll and hands the new
   runs to the controller (:meth:`~gda_gl.explorer.controller.ExplorerController.add_run`);
2. appends the rows committed since the last poll to each run (in-memory runs
   read the new rows, windowed runs refresh their index);
3. keeps a status per run ("live", "live, no new data for N s", "finished",
   "writer died", "waiting for the file") for the title line;
4. with a folder watch (:class:`gda_gl.session.select.FolderWatch`: a folder given as a run, the
   sweep being written), adds the recordings that appeared in the folders to the files to open,
   every :data:`WATCH_S` seconds;
5. tells the controller that the runs grew
   (:meth:`~gda_gl.explorer.controller.ExplorerController.runs_grew`), which
   follows the newest iterations when following is on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from gda_gl.compose.scene import RunData
from gda_gl.compose.style import run_color

log = logging.getLogger(__name__)

__all__ = ["Follower", "IDLE_S", "WATCH_S"]

IDLE_S = 5.0  # a live writer without new rows for this long is reported as idle
WATCH_S = 1.0  # watched folders are listed at most this often


class Follower:
    """Polls the recordings behind a controller's runs (in the same order) and waits for missing files.

    Parameters
    ----------
    ctrl : the explorer's controller (gets new runs and growth notices)
    recordings : open recordings, one per run of ``ctrl.runs`` and in that order
    pending : paths of followed files that do not exist yet
    clock : time source (defaults to the controller's)
    watch : a :class:`~gda_gl.session.select.FolderWatch` of folders whose new recordings are opened
    """

    def __init__(self, ctrl, recordings: list | None = None, pending: list[str] | None = None,
                 clock: Callable[[], float] | None = None, watch=None):
        self.ctrl = ctrl
        self.watch = watch
        self._next_watch = -float("inf")
        self.clock = clock or ctrl.clock
        self.recordings = list(recordings or [])
        self.pending = [str(p) for p in (pending or [])]
        self.live_status: dict[str, str] = {}
        self._last_growth: dict[str, float] = {run.name: self.clock() for run in ctrl.runs}
        for p in self.pending:
            self.live_status[Path(p).stem] = "waiting for the file"

    @property
    def active(self) -> bool:
        """Whether there is anything to poll."""
        return bool(self.recordings or self.pending or self.watch is not None)

    def title(self) -> str | None:
        """``name [status]`` of every followed run (None when nothing is followed); with many runs (a sweep
        folder) the runs counted by status, those not finished named ("30 runs: 28 finished; lr=0.1 [live]")."""
        if not self.live_status:
            return None
        from gda_gl.compose.manyruns import sweep_style

        if not sweep_style(len(self.live_status)):
            return "  ".join(f"{name} [{st}]" for name, st in self.live_status.items())
        done = sum(st == "finished" for st in self.live_status.values())
        others = "  ".join(f"{name} [{st}]" for name, st in self.live_status.items() if st != "finished")
        return f"{len(self.live_status)} runs: {done} finished" + (f"; {others}" if others else "")

    def _open_pending(self) -> int:
        """Open followed files that appeared since the last poll; returns how many did."""
        from recorder.store import Recording

        opened = 0
        for p in list(self.pending):
            if not Path(p).exists():
                continue
            rec = None
            try:
                rec = Recording(p)
                run = RunData.from_recording(rec, color=run_color(len(self.ctrl.runs)))
            except Exception as exc:  # still being created: try again at the next poll
                log.debug("%s not readable yet: %s", p, exc)
                if rec is not None:
                    rec.close()
                continue
            self.ctrl.add_run(run)
            self.recordings.append(rec)
            self.pending.remove(p)
            self.live_status.pop(Path(p).stem, None)
            self._last_growth[run.name] = self.clock()
            opened += 1
        return opened

    def _status(self, rec, run: RunData) -> str:
        state = rec.writer_state()
        if state == "live":
            idle = self.clock() - self._last_growth.get(run.name, self.clock())
            return "live" if idle < IDLE_S else f"live, no new data for {idle:.0f} s"
        if state == "died":
            return "writer died (recording ends here)"
        return "finished"

    def poll(self) -> int:
        """Append rows committed since the last poll to the runs; returns how many arrived."""
        was_whole = self.ctrl.shows_whole()
        total = 0
        self._watch_folders()
        opened = self._open_pending() if self.pending else 0
        for rec, run in zip(self.recordings, self.ctrl.runs):
            if run.in_memory:
                new = rec.read_new()
                n = len(new)
                run.extend(new)
            else:
                n = run.refresh()
            if n:
                total += n
                self._last_growth[run.name] = self.clock()
            self.live_status[run.name] = self._status(rec, run)
        if opened:
            total += sum(len(r) for r in self.ctrl.runs[-opened:])
        if total:
            self.ctrl.runs_grew(was_whole)
        return total

    def _watch_folders(self) -> None:
        """Add the recordings that appeared in the watched folders to the files to open (every WATCH_S)."""
        if self.watch is None or self.clock() < self._next_watch:
            return
        self._next_watch = self.clock() + WATCH_S
        for p in self.watch.poll():
            if p not in self.pending:
                self.pending.append(p)

    def close(self) -> None:
        """Close every recording this follower opened or was given (errors are logged, not raised)."""
        for rec in self.recordings:
            try:
                rec.close()
            except Exception as exc:  # closing never hides the window's own exit status
                log.debug("close: %s", exc)
