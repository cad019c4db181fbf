"""File-system sniffing: what kind of file system a path is on, and whether a file looks like SQLite.

The pre-check runs before SQLite touches a file, so that empty, foreign and
truncated files get one clear line instead of an SQLite error.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import RecordingError

__all__ = ["fs_type", "check_recording_file", "NETWORK_FS", "SQLITE_MAGIC"]

SQLITE_MAGIC = b"SQLite format 3\x00"
NETWORK_FS = {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "fuse.sshfs", "afs", "ceph", "glusterfs",
              "fuse.glusterfs", "lustre", "gpfs", "beegfs", "fuse.s3fs", "fuse.rclone", "fuse.gcsfuse"}


def fs_type(path: Path) -> str:
    """File system type of ``path``'s directory from /proc/mounts ('' if unknown)."""
    try:
        target = os.path.realpath(path.parent if not path.is_dir() else path)
        best, fstype = "", ""
        with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                parts = line.split()
                if len(parts) < 3:
                    continue
                mnt = parts[1].replace("\\040", " ")
                if (target == mnt or target.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(best):
                    best, fstype = mnt, parts[2]
        return fstype
    except OSError:
        return ""


def check_recording_file(path: str | os.PathLike) -> Path:
    """Check that ``path`` looks like a readable, complete SQLite file, without opening it in SQLite.

    Raises
    ------
    RecordingError
        one line naming the file and the problem.
    """
    p = Path(path)
    if not p.exists():
        raise RecordingError(p, "no such file")
    if p.is_dir():
        raise RecordingError(p, "is a directory, not a recording")
    try:
        size = p.stat().st_size
        with open(p, "rb") as fh:
            header = fh.read(100)
    except PermissionError:
        raise RecordingError(p, "permission denied (cannot read the file)") from None
    except OSError as exc:
        raise RecordingError(p, f"cannot be read ({exc.strerror or exc})") from None
    if size == 0:
        raise RecordingError(p, "empty file (0 bytes), not a recording")
    if not header.startswith(SQLITE_MAGIC):
        raise RecordingError(p, "not a gda recording (not an SQLite database)")
    if len(header) < 100:
        raise RecordingError(p, f"truncated SQLite file ({size} bytes)")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(header[28:32], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    change = int.from_bytes(header[24:28], "big")
    if page_size < 512 or page_size & (page_size - 1):
        raise RecordingError(p, "corrupt SQLite header (bad page size)")
    if size % page_size:
        raise RecordingError(p, f"truncated or corrupt ({size} bytes is not a whole number of "
                                f"{page_size}-byte pages)")
    if valid_for == change and n_pages and size < n_pages * page_size:
        raise RecordingError(p, f"truncated ({size} bytes, the header says {n_pages * page_size})")
    return p

