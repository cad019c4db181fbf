"""Writer liveness: who holds a recording's write lock (``meta.writer``) and whether it still runs.

A local writer is alive while its pid exists with the same process start token;
a writer on another host is alive while its heartbeat is recent.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Mapping

__all__ = ["writer_alive", "process_token", "describe_writer", "HEARTBEAT_S", "REMOTE_STALE_S"]

HEARTBEAT_S = 5.0
REMOTE_STALE_S = 30.0


def process_token(pid: int) -> str | None:
    """Start time of process ``pid`` (Linux), to tell a live writer from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            data = fh.read().decode("ascii", "replace")
        return data.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def writer_alive(info: Mapping | None) -> bool:
    """Whether the writer described by ``meta.writer`` is still running."""
    if not info or info.get("state") != "open":
        return False
    if info.get("host") == socket.gethostname():
        pid = int(info.get("pid", -1))
        if pid <= 0 or not _pid_alive(pid):
            return False
        token = info.get("token")
        return token is None or process_token(pid) in (None, token)
    return (time.time() - float(info.get("heartbeat", 0))) < REMOTE_STALE_S


def describe_writer(info: Mapping) -> str:
    return f"pid {info.get('pid')} on {info.get('host')}"

