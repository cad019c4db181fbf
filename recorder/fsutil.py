"""File-system sniffing: what kind of file system a path is on, and whether a file looks like SQLite.

The pre-check runs before SQLite touches a file, so that empty, foreign and
truncated files get one clear line instead of an SQLite error.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from .errors import RecordingError

__all__ = ["fs_type", "check_recording_file", "sniff", "has_journal", "read_header", "NETWORK_FS", "SQLITE_MAGIC"]

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


def _stat(p: Path) -> os.stat_result | None:
    try:
        return os.stat(p)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except PermissionError:
        raise RecordingError(p, "permission denied (cannot read the file)") from None
    except OSError as exc:
        raise RecordingError(p, f"cannot be read ({exc.strerror or exc})") from None


def has_journal(path: str | os.PathLike) -> bool:
    """Whether a ``-wal`` or ``-journal`` file sits beside ``path`` (SQLite then owns the size checks)."""
    for suffix in ("-wal", "-journal"):
        try:
            if os.stat(os.fspath(path) + suffix).st_size > 0:
                return True
        except OSError:
            pass
    return False


def read_header(p: Path, n: int = 100) -> bytes:
    """The first ``n`` bytes of a regular file, opened non-blocking (never hangs on a FIFO)."""
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except PermissionError:
        raise RecordingError(p, "permission denied (cannot read the file)") from None
    except OSError as exc:
        raise RecordingError(p, f"cannot be read ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RecordingError(p, "not a regular file, not a recording")
        return os.read(fd, n)
    except OSError as exc:
        raise RecordingError(p, f"cannot be read ({exc.strerror or exc})") from None
    finally:
        os.close(fd)


def sniff(path: str | os.PathLike) -> str:
    """What is at ``path``: ``"missing"``, ``"dir"``, ``"special"`` (FIFO, device, socket),
    ``"sqlite"`` (an SQLite database: check its application id to know whose) or ``"other"``.

    Raises
    ------
    RecordingError
        the path cannot be examined (permission, name too long, ...).
    """
    p = Path(path)
    st = _stat(p)
    if st is None:
        return "missing"
    if stat.S_ISDIR(st.st_mode):
        return "dir"
    if not stat.S_ISREG(st.st_mode):
        return "special"
    if st.st_size == 0:
        return "other"
    return "sqlite" if read_header(p, 16) == SQLITE_MAGIC else "other"


def check_recording_file(path: str | os.PathLike) -> Path:
    """Check that ``path`` looks like a readable, complete SQLite file, without opening it in SQLite.

    Non-regular files (FIFOs, devices) are refused without being opened for a
    blocking read.  When a ``-wal`` or ``-journal`` file exists, the database
    file alone may legitimately be shorter or longer than its header says (a
    live commit, a checkpoint killed half-way, a hot journal), so only the
    magic and the page size are checked and SQLite decides the rest.

    Raises
    ------
    RecordingError
        one line naming the file and the problem.
    """
    p = Path(path)
    st = _stat(p)
    if st is None:
        raise RecordingError(p, "no such file")
    if stat.S_ISDIR(st.st_mode):
        raise RecordingError(p, "is a directory, not a recording")
    if not stat.S_ISREG(st.st_mode):
        raise RecordingError(p, "not a regular file (a FIFO, device or socket), not a recording")
    header = read_header(p)
    size = st.st_size
    if size == 0 or not header:
        raise RecordingError(p, "empty file (0 bytes), not a recording")
    if not header.startswith(SQLITE_MAGIC):
        raise RecordingError(p, "not a gda recording (not an SQLite database)")
    journal = has_journal(p)
    if len(header) < 100 and not journal:
        raise RecordingError(p, f"truncated SQLite file ({size} bytes)")
    if len(header) < 100:
        return p
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    n_pages = int.from_bytes(header[28:32], "big")
    valid_for = int.from_bytes(header[92:96], "big")
    change = int.from_bytes(header[24:28], "big")
    if page_size < 512 or page_size & (page_size - 1):
        raise RecordingError(p, "corrupt SQLite header (bad page size)")
    if journal:
        return p
    if size % page_size:
        raise RecordingError(p, f"truncated or corrupt ({size} bytes is not a whole number of "
                                f"{page_size}-byte pages)")
    if valid_for == change and n_pages and size < n_pages * page_size:
        raise RecordingError(p, f"truncated ({size} bytes, the header says {n_pages * page_size})")
    return p
