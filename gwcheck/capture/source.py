"""Open a capture file as one uint8 array: memory-mapped when plain, decompressed in memory when gzip (RFC 1952)."""

from __future__ import annotations

import mmap
import os
import zlib
from dataclasses import dataclass, field

import numpy as np

from ..errors import CaptureError, NotACaptureError

GZIP_MAGIC = b"\x1f\x8b"  # RFC 1952 2.3.1: ID1, ID2
_GZIP_CHUNK = 1 << 20
_SALVAGE_PIECE = 64  # bytes fed at a time when recovering the data before a gzip error


@dataclass
class CaptureBytes:
    """The bytes of one capture file, ready for the record walkers."""

    path: str
    data: np.ndarray  # uint8, the whole (decompressed) file
    gzip: bool = False
    damage: tuple[int, str] | None = None  # (offset in the compressed file, reason) when gzip is cut short
    _keepalive: object = field(default=None, repr=False)


def open_bytes(path: str | os.PathLike) -> CaptureBytes:
    """Map or decompress ``path``; the format is told by magic numbers, never the file name."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size == 0:
                raise NotACaptureError(path, 0, "empty file: not a pcap or pcapng capture")
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except CaptureError:
        raise
    except IsADirectoryError:
        raise CaptureError(path, 0, "is a directory, not a capture file") from None
    except FileNotFoundError:
        raise CaptureError(path, 0, "no such file") from None
    except PermissionError:
        raise CaptureError(path, 0, "permission denied") from None
    except (OSError, ValueError) as exc:
        raise CaptureError(path, 0, f"cannot open: {exc}") from None
    if mapped[:2] == GZIP_MAGIC:
        try:
            data, damage = _gunzip(mapped)
        finally:
            mapped.close()
        return CaptureBytes(path, np.frombuffer(data, dtype=np.uint8), gzip=True, damage=damage)
    return CaptureBytes(path, np.frombuffer(mapped, dtype=np.uint8), _keepalive=mapped)


def _gunzip(raw: mmap.mmap) -> tuple[bytearray, tuple[int, str] | None]:
    """Decompress every gzip member; a cut or corrupt stream keeps what came before it."""
    out = bytearray()
    pos = 0
    total = len(raw)
    while pos < total:
        member = zlib.decompressobj(wbits=31)
        while True:
            chunk = raw[pos : pos + _GZIP_CHUNK]
            if not chunk:
                return out, (pos, "gzip stream ends before its end marker")
            before = member.copy()
            try:
                out += member.decompress(chunk)
            except zlib.error as exc:
                # A failing call returns nothing: replay the chunk in small pieces to keep what came before the error.
                kept, where = _salvage(before, chunk)
                out += kept
                return out, (pos + where, f"gzip data corrupt: {exc}")
            if member.eof:
                pos += len(chunk) - len(member.unused_data)
                break
            pos += len(chunk)
        # Trailing zero padding after the last member is common (tape-style writers); stop there.
        if raw[pos : pos + 2] != GZIP_MAGIC:
            break
    return out, None


def _salvage(member, chunk: bytes) -> tuple[bytes, int]:
    """What ``member`` decompresses from ``chunk`` before its error, and the offset in ``chunk`` of the failing byte.

    Fed in pieces; the piece that fails is fed again a byte at a time, so nothing before the error is lost.
    """
    kept = bytearray()
    step = _SALVAGE_PIECE
    start = 0
    while start < len(chunk):
        before = member.copy()
        try:
            kept += member.decompress(chunk[start : start + step])
        except zlib.error:
            if step == 1:
                return bytes(kept), start
            member, step = before, 1
            continue
        start += step
    return bytes(kept), len(chunk)
