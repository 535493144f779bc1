"""Numba set-up and the byte readers shared by the capture and decode kernels.

Every kernel is compiled once and cached on disk (``cache=True``), so only the first run on a machine pays
for compilation.  Readers take a uint8 array and an offset; callers check bounds first.
"""

from __future__ import annotations

import numba
import numpy as np

jit = numba.njit(cache=True, nogil=True, boundscheck=False)


@jit
def u16be(buf: np.ndarray, p: int) -> int:
    return (np.uint32(buf[p]) << 8) | np.uint32(buf[p + 1])


@jit
def u32be(buf: np.ndarray, p: int) -> int:
    return (
        (np.uint32(buf[p]) << 24)
        | (np.uint32(buf[p + 1]) << 16)
        | (np.uint32(buf[p + 2]) << 8)
        | np.uint32(buf[p + 3])
    )


@jit
def u64be(buf: np.ndarray, p: int) -> np.uint64:
    return (np.uint64(u32be(buf, p)) << np.uint64(32)) | np.uint64(u32be(buf, p + 4))


@jit
def u16le(buf: np.ndarray, p: int) -> int:
    return (np.uint32(buf[p + 1]) << 8) | np.uint32(buf[p])


@jit
def u32le(buf: np.ndarray, p: int) -> int:
    return (
        (np.uint32(buf[p + 3]) << 24)
        | (np.uint32(buf[p + 2]) << 16)
        | (np.uint32(buf[p + 1]) << 8)
        | np.uint32(buf[p])
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


@jit
def u64le(buf: np.ndarray, p: int) -> np.uint64:
    """Eight bytes as a little-endian word; LLVM folds the byte loads into one load."""
    return (np.uint64(u32le(buf, p + 4)) << np.uint64(32)) | np.uint64(u32le(buf, p))
