"""The packet table: every packet of every capture, one row each, merged in time order."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from ..capture import RecordIndex, index_capture
from ..decode import GENEVE_PORT, allocate_matrices, column_views, decode_frames
from ..errors import CaptureDamageWarning
from ..schema import COLUMN_DTYPES, COLUMN_NAMES, RECORD_COLUMNS, category_labels

PathLike = str | os.PathLike


def read_packets(paths: PathLike | Iterable[PathLike], port: int = GENEVE_PORT) -> pd.DataFrame:
    """Read and decode captures into one DataFrame, a row per packet, in time order.

    ``paths`` is one capture or several (pcap or pcapng, plain or gzip; told apart by magic number).
    Columns and dtypes are those of ``gwcheck.schema.PACKET_COLUMNS``.  ``df.attrs["captures"]`` describes
    each file: format, packet count, interfaces and any damage.  Raises ``CaptureError`` for a file that
    cannot be read at all; a file damaged part way gives its packets before the damage and a
    ``CaptureDamageWarning``.
    """
    path_list = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    indexes = [index_capture(path) for path in path_list]
    for index in indexes:
        if index.damage is not None:
            warnings.warn(
                CaptureDamageWarning(index.path, index.damage.offset, index.damage.reason, len(index)), stacklevel=2
            )
    columns, file_codes = _decode_all(indexes, port)
    counts = np.bincount(file_codes, minlength=len(indexes))
    table = _to_frame(columns, file_codes, path_list)
    table.attrs["captures"] = [_describe(index, int(count)) for index, count in zip(indexes, counts)]
    return table


def _decode_all(indexes: list[RecordIndex], port: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Decode each file into its slice of one set of columns: no concatenation, no second copy."""
    total = sum(len(index) for index in indexes)
    matrices = allocate_matrices(total)
    if len(indexes) == 1:
        records = indexes[0].columns
        decode_frames(indexes[0].data, records, matrices, port)
        return {**records, **column_views(matrices)}, np.zeros(total, np.uint16)
    records = {name: np.empty(total, COLUMN_DTYPES[name]) for name in RECORD_COLUMNS}
    file_codes = np.empty(total, np.uint16)
    start = 0
    for code, index in enumerate(indexes):
        stop = start + len(index)
        for name in RECORD_COLUMNS:
            records[name][start:stop] = index.columns[name]
        part = {name: array[start:stop] for name, array in records.items()}
        decode_frames(index.data, part, {group: m[:, start:stop] for group, m in matrices.items()}, port)
        file_codes[start:stop] = code
        start = stop
    if np.any(np.diff(records["ts_ns"]) < 0):
        order = np.argsort(records["ts_ns"], kind="stable")
        records = {name: array[order] for name, array in records.items()}
        for group in matrices:  # one matrix at a time: the old one is freed before the next is sorted
            matrices[group] = np.take(matrices[group], order, axis=1)
        file_codes = file_codes[order]
    return {**records, **column_views(matrices)}, file_codes


def _to_frame(columns: dict[str, np.ndarray], file_codes: np.ndarray, paths: list[str]) -> pd.DataFrame:
    data = dict(columns)
    names = [path if path not in paths[:k] else f"{path}#{k}" for k, path in enumerate(paths)]
    data["file"] = pd.Categorical.from_codes(file_codes.astype(np.int16), categories=names)
    for name in ("status", "kind"):
        data[name] = pd.Categorical.from_codes(columns[name].astype(np.int8), categories=category_labels(name))
    return pd.DataFrame({name: data[name] for name in COLUMN_NAMES}, copy=False)


def _describe(index: RecordIndex, packets: int) -> dict:
    return {
        "path": index.path,
        "format": index.format,
        "packets": packets,
        "interfaces": [vars(interface) for interface in index.interfaces],
        "damage": None if index.damage is None else {"offset": index.damage.offset, "reason": index.damage.reason},
    }
