"""Writer liveness: who holds a recording's write lock (``meta.writer``) and whether it still runs.

Design
------
The lock record is a JSON object ``{"pid", "host", "token", "heartbeat", "state"}``
written by the writer inside an ``IMMEDIATE`` transaction.  A local writer is
alive while its pid exists with the same process start token; a writer on
another host is alive while its heartbeat is recent.  A heartbeat dated more
than :data:`MAX_FUTURE_S` in the future (a skewed or hostile clock) counts as
stale, so such a record cannot lock a file forever.

Records read from a file are validated by :func:`parse_lock_record` before use:
a malformed record raises ``ValueError`` with one line saying what is wrong.
"""

from __future__ import annotations

import math
import os
import socket
import time
from typing import Mapping

__all__ = ["writer_alive", "process_token", "describe_writer", "parse_lock_record", "HEARTBEAT_S",
           "REMOTE_STALE_S", "MAX_FUTURE_S"]

HEARTBEAT_S = 5.0
REMOTE_STALE_S = 30.0
#: A heartbeat further than this in the future is treated as stale (clock skew tolerance).
MAX_FUTURE_S = 120.0
_STATES = ("open", "closed")


def parse_lock_record(info) -> dict:
    """Validate a ``meta.writer`` record (as decoded from JSON); returns it as a plain dict.

    Raises
    ------
    ValueError
        not an object, or a field of the wrong type or out of range.
    """
    if not isinstance(info, dict):
        raise ValueError(f"write-lock record is {type(info).__name__}, expected an object")
    state = info.get("state")
    if state not in _STATES:
        raise ValueError(f"write-lock record has state {str(state)[:40]!r} (expected open or closed)")
    pid = info.get("pid")
    if isinstance(pid, bool) or not isinstance(pid, int) or not (0 < pid < 1 << 31):
        raise ValueError(f"write-lock record has pid {str(pid)[:40]!r} (expected a positive integer)")
    host = info.get("host")
    if not isinstance(host, str) or len(host) > 1024:
        raise ValueError("write-lock record has no valid host name")
    token = info.get("token")
    if token is not None and (not isinstance(token, str) or len(token) > 64):
        raise ValueError("write-lock record has an invalid process token")
    hb = info.get("heartbeat", 0.0)
    if isinstance(hb, bool) or not isinstance(hb, (int, float)) or not math.isfinite(hb):
        raise ValueError(f"write-lock record has heartbeat {str(hb)[:40]!r} (expected a finite unix time)")
    return {"pid": pid, "host": host, "token": token, "heartbeat": float(hb), "state": state}


def process_token(pid: int) -> str | None:
    """Start time of process ``pid`` (Linux), to tell a live writer from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
        return data.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OSError, OverflowError, ValueError):
        return False
    return True


def writer_alive(info: Mapping | None, now: float | None = None) -> bool:
    """Whether the writer described by a ``meta.writer`` record is still running.

    A malformed record counts as not alive here; readers validate records with
    :func:`parse_lock_record` first, and writers refuse files with malformed records.
    """
    try:
        info = parse_lock_record(info) if info else None
    except ValueError:
        return False
    if not info or info["state"] != "open":
        return False
    if info["host"] == socket.gethostname():
        pid = info["pid"]
        if not pid_alive(pid):
            return False
        token = info["token"]
        return token is None or process_token(pid) in (None, token)
    age = (time.time() if now is None else now) - info["heartbeat"]
    return -MAX_FUTURE_S <= age < REMOTE_STALE_S


def describe_writer(info: Mapping) -> str:
    return f"pid {info.get('pid')} on {str(info.get('host'))[:80]}"
