"""Group rows by several key columns at once: one hash to find the groups, exact equality to tell them apart."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import _kernels

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


def pack_columns(columns: Sequence[np.ndarray]) -> np.ndarray:
    """Integer key columns packed exactly into as few uint64 words as hold them, the rows of a (words, rows)
    array: each column as its offset from its minimum, in as many bits as its range needs."""
    columns = [np.asarray(c) for c in columns]
    placed = []  # (column, minimum, word, shift)
    words, used = 0, 64
    for column in columns:
        low, high = int(column.min()), int(column.max())
        bits = (high - low).bit_length()
        if bits == 0:
            continue  # the same in every row
        if used + bits > 64:
            words, used = words + 1, 0
        placed.append((column, low, words - 1, used))
        used += bits
    packed = np.zeros((max(words, 1), len(columns[0])), np.uint64)
    for column, low, word, shift in placed:
        value = column.astype(np.uint64)
        if low:
            value -= np.uint64(low % (1 << 64))  # modulo 2**64, as the cast wraps negative values
        packed[word] |= value << np.uint64(shift)
    return packed


def group_ids(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per row, its group (rows with equal keys, compared exactly), numbered in order of first appearance;
    and each group's first row.  Columns are integers or bools of any width."""
    if len(columns[0]) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    columns = [np.ascontiguousarray(c) for c in columns]
    ids, first = np.empty(len(columns[0]), np.int64), np.empty(len(columns[0]), np.int64)
    # Rows hashed as hash_columns does, straight from the columns, into an open-addressing table kept at most
    # half full and doubled as groups appear: a key of few values keeps a small table in cache
    # (gwcheck/tables/_kernels.c).
    groups, exact = _kernels.hash_groups(columns, ids, first)
    if not exact:
        return _sorted_group_ids(pack_columns(columns))  # two keys shared a hash: group by sorting instead
    return ids, first[:groups].copy()


def key_counts(columns: list[np.ndarray], rows: np.ndarray | None = None) -> dict[tuple, int]:
    """How many times each key (a tuple of the columns' values, as Python ints) occurs, among the ``rows``
    (a mask) when given: hashed groups, no sort, and the mask is one more key column rather than a copy of
    the others."""
    if rows is not None:
        columns = [~rows, *columns]
    if len(columns[0]) == 0:
        return {}
    ids, firsts = group_ids(columns)
    counts = np.bincount(ids, minlength=len(firsts))
    if rows is not None:
        kept = rows[firsts]
        firsts, counts, columns = firsts[kept], counts[kept], columns[1:]
    keys = zip(*(np.asarray(c)[firsts].tolist() for c in columns))
    return dict(zip(keys, counts.tolist()))


def _sorted_group_ids(words: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort(words[::-1])
    new = np.ones(len(order), bool)
    new[1:] = np.logical_or.reduce([w[order][1:] != w[order][:-1] for w in words])
    sorted_ids = np.empty(len(order), np.int64)
    sorted_ids[order] = np.cumsum(new) - 1
    first = np.minimum.reduceat(order, np.flatnonzero(new))  # lexsort is stable: the group's first row
    by_appearance = np.argsort(first)
    rank = np.empty(len(first), np.int64)
    rank[by_appearance] = np.arange(len(first))
    return rank[sorted_ids], first[by_appearance]


def group_order(ids: np.ndarray, n_groups: int) -> np.ndarray:
    """Rows ordered by their group id (0 to ``n_groups`` - 1), in table order within a group: a stable counting sort."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"group ids must be integers, not {ids.dtype}")
    ids = np.ascontiguousarray(ids, np.int64)
    order = np.empty(len(ids), np.int64)
    _kernels.counting_order(ids, int(n_groups), order)
    return order


def lex_order(keys: Sequence[np.ndarray]) -> np.ndarray:
    """``np.lexsort(keys)`` of integer or bool keys (the last key sorts first, ties keep table order): when the keys'
    combined span is within a few times the rows, a counting sort of the keys combined into one number."""
    keys = [np.asarray(k) for k in keys]
    n = len(keys[0])
    if not all(np.can_cast(key.dtype, np.int64) for key in keys):
        return np.lexsort(keys)
    lows = [int(key.min()) if n else 0 for key in keys]
    spans = [int(key.max()) - low + 1 if n else 1 for key, low in zip(keys, lows)]
    if math.prod(spans) > 4 * n + 1024:
        return np.lexsort(keys)
    combined, stride = np.zeros(n, np.int64), 1
    for key, low, span in zip(keys, lows, spans):
        combined += (key.astype(np.int64) - low) * stride
        stride *= span
    return group_order(combined, stride)


def group_sort(columns: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Rows ordered so that equal keys are adjacent, keeping the table's order within a key; and for each
    position in that order, whether its key equals the previous row's (compared exactly, not by hash)."""
    ids, first = group_ids(columns)
    order = group_order(ids, len(first))
    sorted_ids = ids[order]
    same = np.r_[False, sorted_ids[1:] == sorted_ids[:-1]] if len(order) else np.zeros(0, bool)
    return order, same
