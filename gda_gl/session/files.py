"""Files the viewer reads and writes: view states, PNGs, every output written atomically (never half a file)."""

from __future__ import annotations

import io
import os
import stat
import secrets
from pathlib import Path

import numpy as np

from gda_gl.compose.state import ViewState

from .errors import UsageError, short

__all__ = ["encode_png", "write_file_atomic", "save_png", "load_state", "save_state"]


def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an RGBA or RGB uint8 image (rows top-down); the alpha channel is dropped."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image[..., :3] if image.shape[-1] == 4 else image).save(buf, format="PNG")
    return buf.getvalue()


def write_file_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory and ``os.replace``.

    A reader (or a crash) never sees a half-written file, and a failure leaves
    whatever was at ``path`` untouched.  Missing parent directories are created.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.parent / f".gda-out-{os.getpid()}-{secrets.token_hex(4)}.tmp"
    try:
        with open(tmp, "xb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
    return p


def save_png(image: np.ndarray, path: str | Path) -> Path:
    """Write ``image`` as a PNG at ``path`` (atomically; parent directories are created)."""
    return write_file_atomic(path, encode_png(image))


def load_state(path: str):
    """A ViewState from a JSON file, refusing non-regular files and bad values in one line."""
    name = short(path)
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise UsageError(f"{name}: not a regular file, not a view state")
        if st.st_size > (1 << 20):
            raise UsageError(f"{name}: {st.st_size} bytes is too large for a view state")
        return ViewState.from_json(Path(path).read_text())
    except OSError as exc:
        raise UsageError(f"{name}: cannot read the view state ({exc.strerror or exc})") from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise UsageError(f"{name}: not a view state ({' '.join(str(exc).split())[:200]})") from None


def save_state(state: ViewState, path: str | Path) -> Path:
    """Write ``state.to_json()`` to ``path`` atomically; returns the path."""
    return write_file_atomic(path, state.to_json().encode())
