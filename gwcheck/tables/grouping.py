"""Group rows by several key columns at once: one hash to sort on, exact equality to tell the groups apart."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_PRIME = np.uint64(0x9E3779B185EBCA87)  # xxHash64's first prime
_SHIFT = np.uint64(29)


def hash_columns(columns: Sequence[np.ndarray]) -> np.ndarray:
    """A 64-bit mix of the key columns, row by row (equal keys give equal hashes)."""
    with np.errstate(over="ignore"):
        h = np.zeros(len(columns[0]), np.uint64)
        for column in columns:
            h ^= np.asarray(column).astype(np.uint64, copy=False)
            h *= _PRIME
            h ^= h >> _SHIFT
    return h


def group_sort(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered so that equal keys are adjacent, keeping the table's order within a key; and for each
    position in that order, whether its key equals the previous row's (compared exactly, not by hash)."""
    if len(columns[0]) == 0:
        return np.zeros(0, np.int64), np.zeros(0, bool)
    order = np.argsort(hash_columns(columns), kind="stable")
    same = np.ones(len(order), bool)
    same[0] = False
    for column in columns:
        ordered = np.asarray(column)[order]
        same[1:] &= ordered[1:] == ordered[:-1]
    return order, same
