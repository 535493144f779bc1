"""Numba set-up and the byte readers shared by the capture and decode kernels.

Every kernel is compiled once and cached on disk (``cache=True``), so only the first run on a machine pays
for compilation.  Readers take a uint8 array and an offset; callers check bounds first.  The 16- and
32-bit readers return int64: mixing unsigned and signed integers makes Numba compute in float64.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numba
import numpy as np

_PACKAGE = Path(__file__).resolve().parent
_KERNEL_SOURCES = ("_jit.py", "capture", "decode")


def _kernel_digest() -> str:
    """A digest of every source file a kernel may call into.

    Numba's cache notices a change to a kernel's own file but not to the functions it calls; keying the
    cache directory on all of them keeps a stale kernel from ever being loaded.
    """
    digest = hashlib.sha256()
    for entry in _KERNEL_SOURCES:
        path = _PACKAGE / entry
        for source in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _cache_dir() -> str:
    base = numba.config.CACHE_DIR or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "gwcheck"
    )
    return os.path.join(base, f"numba-{numba.__version__}-{_kernel_digest()}")


# Numba reads CACHE_DIR when a cached function is first located, so setting it here, before any kernel
# runs, is enough.
numba.config.CACHE_DIR = _cache_dir()

jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@jit
def u16be(buf: np.ndarray, p: int) -> int:
    return (np.int64(buf[p]) << 8) | np.int64(buf[p + 1])


@jit
def u32be(buf: np.ndarray, p: int) -> int:
    return (
        (np.int64(buf[p]) << 24)
        | (np.int64(buf[p + 1]) << 16)
        | (np.int64(buf[p + 2]) << 8)
        | np.int64(buf[p + 3])
    )


@jit
def u64be(buf: np.ndarray, p: int) -> np.uint64:
    return (np.uint64(u32be(buf, p)) << np.uint64(32)) | np.uint64(u32be(buf, p + 4))


@jit
def u16le(buf: np.ndarray, p: int) -> int:
    return (np.int64(buf[p + 1]) << 8) | np.int64(buf[p])


@jit
def u32le(buf: np.ndarray, p: int) -> int:
    return (
        (np.int64(buf[p + 3]) << 24)
        | (np.int64(buf[p + 2]) << 16)
        | (np.int64(buf[p + 1]) << 8)
        | np.int64(buf[p])
    )


@jit
def u16(buf: np.ndarray, p: int, big_endian: bool) -> int:
    return u16be(buf, p) if big_endian else u16le(buf, p)


@jit
def u32(buf: np.ndarray, p: int, big_endian: bool) -> int:
    return u32be(buf, p) if big_endian else u32le(buf, p)


@jit
def u64(buf: np.ndarray, p: int, big_endian: bool) -> np.uint64:
    if big_endian:
        return (np.uint64(u32be(buf, p)) << np.uint64(32)) | np.uint64(u32be(buf, p + 4))
    return (np.uint64(u32le(buf, p + 4)) << np.uint64(32)) | np.uint64(u32le(buf, p))

