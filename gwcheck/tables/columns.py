"""The packet columns of captures, read and decoded, before they are a table.

numpy only, no pandas: the command line reads and decodes here while pandas is still being imported
on another thread (``gwcheck.startup``); ``tables.packets.packet_table`` then makes them the packet table.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from ..capture import RecordIndex, index_capture
from ..decode import GENEVE_PORT, allocate_matrices, column_views, decode_frames
from ..errors import CaptureDamageWarning
from ..schema import COLUMN_DTYPES, RECORD_COLUMNS

PathLike = str | os.PathLike
Progress = Callable[[int, int], None]  # (units done, units in all): records indexed and decoded
PROGRESS_RECORDS = 1 << 20  # records decoded between two progress calls


@dataclass
class PacketColumns:
    """Every column of the packet table but ``file`` (``kind`` and ``status`` as their integer codes), one row a
    packet in time order; ``file_codes`` index ``paths``; ``captures`` describe each file as the packet table's
    ``attrs["captures"]`` does."""

    columns: dict[str, np.ndarray]
    file_codes: np.ndarray
    paths: list[str]
    captures: list[dict]


def read_columns(paths: PathLike | Iterable[PathLike], port: int = GENEVE_PORT, progress: Progress | None = None) -> PacketColumns:
    """Read and decode captures into columns (what ``read_packets`` does before making them a DataFrame).

    Raises ``CaptureError`` for a file that cannot be read at all; a file damaged part way gives its packets
    before the damage and a ``CaptureDamageWarning``.  ``progress``, when given, is called as the work
    advances with the bytes of the files done and in all.
    """
    path_list = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    sizes = [_size(path) for path in path_list]
    report = _ProgressSplit(progress, sum(sizes))
    indexes = []
    for path, size in zip(path_list, sizes):
        indexes.append(index_capture(path))
        report.advance(size // 2)
    for index in indexes:
        if index.damage is not None:
            warnings.warn(CaptureDamageWarning(index.path, index.damage.offset, index.damage.reason, len(index)), stacklevel=3)
    columns, file_codes = _decode_all(indexes, port, report.records(indexes, sizes))
    counts = np.bincount(file_codes, minlength=len(indexes))
    return PacketColumns(columns, file_codes, path_list, [_describe(index, int(count)) for index, count in zip(indexes, counts)])


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0  # index_capture names the problem


class _ProgressSplit:
    """Turns indexing and decoding into one byte count for a progress callback: each is half of a file."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback, self.total, self.done = callback, max(total, 1), 0

    def advance(self, amount: int) -> None:
        self.done = min(self.done + amount, self.total)
        if self.callback is not None:
            self.callback(self.done, self.total)

    def records(self, indexes: list[RecordIndex], sizes: list[int]) -> Callable[[int, int], None]:
        """A callback for (file number, records decoded) that advances by that share of the file's half."""
        return lambda k, n: self.advance(int(sizes[k] - sizes[k] // 2) * n // max(len(indexes[k]), 1))


def _decode_file(data: np.ndarray, records: dict[str, np.ndarray], matrices: dict[str, np.ndarray], port: int, done: Callable[[int], None]) -> None:
    """Decode in slices of PROGRESS_RECORDS so that a progress bar moves on large files."""
    n = len(records["frame_offset"])
    for start in range(0, n, PROGRESS_RECORDS):
        stop = min(start + PROGRESS_RECORDS, n)
        decode_frames(
            data,
            {name: array[start:stop] for name, array in records.items()},
            {group: m[:, start:stop] for group, m in matrices.items()},
            port,
        )
        done(stop - start)


def _decode_all(indexes: list[RecordIndex], port: int, progress: Callable[[int, int], None]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Decode each file into its slice of one set of columns: no concatenation, no second copy."""
    total = sum(len(index) for index in indexes)
    matrices = allocate_matrices(total)
    if len(indexes) == 1:
        records = indexes[0].columns
        _decode_file(indexes[0].data, records, matrices, port, lambda n: progress(0, n))
        return {**records, **column_views(matrices)}, np.zeros(total, np.uint16)
    records = {name: np.empty(total, COLUMN_DTYPES[name]) for name in RECORD_COLUMNS}
    file_codes = np.empty(total, np.uint16)
    start = 0
    for code, index in enumerate(indexes):
        stop = start + len(index)
        for name in RECORD_COLUMNS:
            records[name][start:stop] = index.columns[name]
        part = {name: array[start:stop] for name, array in records.items()}
        _decode_file(index.data, part, {group: m[:, start:stop] for group, m in matrices.items()}, port, lambda n, k=code: progress(k, n))
        file_codes[start:stop] = code
        start = stop
    if np.any(np.diff(records["ts_ns"]) < 0):
        order = np.argsort(records["ts_ns"], kind="stable")
        records = {name: array[order] for name, array in records.items()}
        for group in matrices:  # one matrix at a time: the old one is freed before the next is sorted
            matrices[group] = np.take(matrices[group], order, axis=1)
        file_codes = file_codes[order]
    return {**records, **column_views(matrices)}, file_codes


def _describe(index: RecordIndex, packets: int) -> dict:
    return {
        "path": index.path,
        "format": index.format,
        "packets": packets,
        "interfaces": [vars(interface) for interface in index.interfaces],
        "damage": None if index.damage is None else {"offset": index.damage.offset, "reason": index.damage.reason},
    }
