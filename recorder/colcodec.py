"""Compressed columns: the one place schema-2 bytes are packed and unpacked.

A *packed column set* is one BLOB holding several numpy columns of the same
length ``n``.  Each column is compressed on its own with Blosc2 (byte shuffle
+ Zstandard at a low level: shuffling puts the exponent bytes of neighbouring
floats next to each other, which is what makes loss values compressible;
Zstandard level 1 decodes at several GB/s, faster than the disk read it
saves).  Blosc2 is a well-kept C library with SIMD shuffles; hand-written
shuffles in numpy were measured slower and would be one more thing to fuzz.

Layout (little-endian)::

    u32 magic 0x47444332 ("GDC2") | u32 column count c | c x u32 compressed length | payloads

Every payload's *declared* decompressed size is checked against ``n x
itemsize`` before anything is decompressed, so a hostile file cannot make a
reader allocate more than the column could legitimately hold.  Bit patterns
(NaN payloads, -0.0, +-Inf) round-trip exactly: compression is lossless and
operates on bytes.
"""

from __future__ import annotations

import struct
from typing import Mapping, Sequence

import numpy as np

__all__ = ["pack_columns", "unpack_columns", "compress_array", "decompress_array", "CodecError", "MAGIC"]

MAGIC = 0x47444332
_HEAD = struct.Struct("<II")
_CLEVEL = 1


class CodecError(ValueError):
    """A packed column set does not match what the schema declares (message says what)."""


def _blosc():
    import blosc2

    return blosc2


def compress_array(a: np.ndarray) -> bytes:
    """One array as a Blosc2 frame (byte shuffle for multi-byte items + Zstandard level 1)."""
    b2 = _blosc()
    a = np.ascontiguousarray(a)
    raw = a.tobytes()
    return b2.compress(raw, typesize=max(1, a.dtype.itemsize), clevel=_CLEVEL, codec=b2.Codec.ZSTD,
                       filter=b2.Filter.SHUFFLE if a.dtype.itemsize > 1 else b2.Filter.NOFILTER)


def decompress_array(blob, count: int, dtype, name: str = "column") -> np.ndarray:
    """The ``count`` values of ``dtype`` in a frame made by :func:`compress_array`.

    The frame's declared sizes are checked against ``count`` before anything is decompressed.

    Raises
    ------
    CodecError
    """
    dt = np.dtype(dtype)
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        kind = "NULL" if blob is None else type(blob).__name__
        raise CodecError(f"{name} is {kind}, expected a BLOB")
    expect = count * dt.itemsize
    b2 = _blosc()
    try:
        nbytes, cbytes, _ = b2.get_cbuffer_sizes(bytes(blob[:32]) if len(blob) >= 32 else bytes(blob))
    except Exception:  # noqa: BLE001 - any failure to parse the header is damage
        raise CodecError(f"{name}: not a compressed buffer ({len(blob)} bytes)") from None
    if nbytes != expect or cbytes != len(blob):
        raise CodecError(f"{name}: declares {nbytes} bytes in {cbytes}, expected {expect} ({count} x {dt.name}) "
                         f"in {len(blob)}")
    if expect == 0:
        return np.empty(0, dt)
    try:
        raw = b2.decompress(bytes(blob))
    except Exception as exc:  # noqa: BLE001
        raise CodecError(f"{name}: does not decompress ({exc})") from None
    if raw is None or len(raw) != expect:
        raise CodecError(f"{name}: decompressed to the wrong size")
    return np.frombuffer(raw, dt)


def pack_columns(columns: Sequence[np.ndarray]) -> bytes:
    """Pack arrays (each C-contiguous, little-endian, same length) into one BLOB."""
    b2 = _blosc()
    payloads = []
    for a in columns:
        a = np.ascontiguousarray(a)
        raw = a.tobytes()
        if not raw:
            payloads.append(b"")
            continue
        payloads.append(b2.compress(raw, typesize=a.dtype.itemsize, clevel=_CLEVEL, codec=b2.Codec.ZSTD,
                                    filter=b2.Filter.SHUFFLE if a.dtype.itemsize > 1 else b2.Filter.NOFILTER))
    head = _HEAD.pack(MAGIC, len(payloads)) + struct.pack(f"<{len(payloads)}I", *(len(p) for p in payloads))
    return head + b"".join(payloads)


def unpack_columns(blob, n: int, dtypes: Sequence[np.dtype], names: Sequence[str] | None = None,
                   wanted: set[int] | None = None) -> list[np.ndarray | None]:
    """Unpack a BLOB made by :func:`pack_columns`, validating it against the expected layout.

    Parameters
    ----------
    blob : bytes-like
    n : rows every column must hold (``n x K`` values for a 2-D column: pass its dtype and
        multiply ``n`` beforehand, or use ``counts``)
    dtypes : expected dtype of each column (its item count is ``n`` unless ``names`` marks otherwise)
    names : column names for messages
    wanted : indices of the columns to decode (others are skipped and returned as ``None``)

    Raises
    ------
    CodecError
        wrong type, magic, column count, a length that does not add up, a declared size other than
        ``n x itemsize``, or a payload that does not decompress.
    """
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise CodecError(f"expected a BLOB, found {type(blob).__name__}")
    mv = memoryview(blob)
    names = list(names) if names is not None else [f"column {i}" for i in range(len(dtypes))]
    c = len(dtypes)
    if len(mv) < _HEAD.size + 4 * c:
        raise CodecError(f"BLOB of {len(mv)} bytes is too short for its header")
    magic, count = _HEAD.unpack_from(mv, 0)
    if magic != MAGIC:
        raise CodecError("BLOB does not start with the column-set magic")
    if count != c:
        raise CodecError(f"BLOB holds {count} columns, expected {c}")
    lengths = struct.unpack_from(f"<{c}I", mv, _HEAD.size)
    pos = _HEAD.size + 4 * c
    if pos + sum(lengths) != len(mv):
        raise CodecError(f"BLOB is {len(mv)} bytes but its header accounts for {pos + sum(lengths)}")
    out: list[np.ndarray | None] = []
    b2 = None
    for i, (dt, ln) in enumerate(zip(dtypes, lengths)):
        dt = np.dtype(dt)
        part = mv[pos:pos + ln]
        pos += ln
        if wanted is not None and i not in wanted:
            out.append(None)
            continue
        expect = n * dt.itemsize
        if ln == 0:
            if expect:
                raise CodecError(f"{names[i]}: empty payload, expected {n} values")
            out.append(np.empty(0, dt))
            continue
        if b2 is None:
            b2 = _blosc()
        try:
            nbytes, cbytes, _ = b2.get_cbuffer_sizes(part)
        except Exception:  # noqa: BLE001 - any failure to parse is damage
            raise CodecError(f"{names[i]}: payload is not a compressed buffer") from None
        if nbytes != expect or cbytes != ln:
            raise CodecError(f"{names[i]}: declares {nbytes} bytes in {cbytes}, expected {expect} in {ln}")
        try:
            raw = b2.decompress(bytes(part))
        except Exception as exc:  # noqa: BLE001
            raise CodecError(f"{names[i]}: payload does not decompress ({exc})") from None
        if raw is None or len(raw) != expect:
            raise CodecError(f"{names[i]}: decompressed to the wrong size")
        out.append(np.frombuffer(raw, dt))
    return out


def pack_named(columns: Mapping[str, np.ndarray], order: Sequence[tuple[str, np.dtype]]) -> bytes:
    """:func:`pack_columns` of ``columns`` in ``order``, cast to each declared dtype."""
    return pack_columns([np.asarray(columns[name], dt) for name, dt in order])
