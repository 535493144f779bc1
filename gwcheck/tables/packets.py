"""The packet table: every packet of every capture, one row each, merged in time order."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Iterator
from typing import BinaryIO

import numpy as np
import pandas as pd

from ..capture.stream import DEFAULT_CHUNK_BYTES, CaptureStream, RecordBatch
from ..decode import GENEVE_PORT, allocate_matrices, column_views, decode_frames
from ..errors import CaptureDamageWarning, CaptureError
from ..schema import COLUMN_DTYPES, COLUMN_NAMES, category_labels
from .columns import PathLike, PacketColumns, Progress, read_columns


def read_packets(paths: PathLike | Iterable[PathLike], port: int = GENEVE_PORT, progress: Progress | None = None) -> pd.DataFrame:
    """Read and decode captures into one DataFrame, a row per packet, in time order.

    ``paths`` is one capture or several (pcap or pcapng, plain or gzip; told apart by magic number).
    Columns and dtypes are those of ``gwcheck.schema.PACKET_COLUMNS``.  ``df.attrs["captures"]`` describes
    each file: format, packet count, interfaces and any damage.  Raises ``CaptureError`` for a file that
    cannot be read at all; a file damaged part way gives its packets before the damage and a
    ``CaptureDamageWarning``.  ``progress``, when given, is called as the work advances with the bytes
    of the files done and in all.
    """
    return packet_table(read_columns(paths, port, progress))


def packet_table(read: PacketColumns) -> pd.DataFrame:
    """The packet table of columns ``tables.columns.read_columns`` read, with their captures in ``attrs``."""
    table = _to_frame(read.columns, read.file_codes, read.paths)
    table.attrs["captures"] = read.captures
    return table


def iter_packet_batches(
    stream: BinaryIO, port: int = GENEVE_PORT, batch_bytes: int = DEFAULT_CHUNK_BYTES, name: str = "<stream>"
) -> Iterator[pd.DataFrame]:
    """Read and decode a capture from a binary stream as it arrives: a packet table per read that completes packets.

    ``stream`` is a file object (``tcpdump -w -``'s standard output, a pipe, a file larger than memory) holding
    pcap or pcapng, plain or gzip; ``batch_bytes`` are asked of it per read.  The tables have the columns and
    dtypes of ``read_packets`` (``file`` is ``name``); concatenated, they are the table ``read_packets`` gives
    for the same bytes.  See ``PacketStream`` for the batches' ``attrs`` and the damage warning.
    """
    return iter(PacketStream(stream, port, batch_bytes, name))


class PacketStream:
    """The packet tables of a capture stream, one per read that completes packets (``iter_packet_batches``).

    Each table's ``attrs["captures"]`` describes the stream as read so far (as ``read_packets`` describes a
    file).  When the final description differs from the last table's (the stream ended damaged, described
    interfaces after its last packet, or held no packet) a table of no rows carrying it comes last.  Damage is
    also warned as a ``CaptureDamageWarning``.  Every byte read is written to
    ``tee`` first, when given.
    """

    def __init__(self, stream: BinaryIO, port: int = GENEVE_PORT, batch_bytes: int = DEFAULT_CHUNK_BYTES, name: str = "<stream>", tee: BinaryIO | None = None) -> None:
        self.capture = CaptureStream(stream, name, batch_bytes, tee)
        self.port = port

    def __iter__(self) -> Iterator[pd.DataFrame]:
        described = None
        for batch in self.capture:
            table = _decode_batch(batch, self.port, self.capture.name)
            table.attrs["captures"] = described = self.captures()
            yield table
        if self.capture.damage is not None:
            damage = self.capture.damage
            warnings.warn(CaptureDamageWarning(self.capture.name, damage.offset, damage.reason, self.capture.records), stacklevel=2)
        if self.captures() != described:  # damage, interfaces after the last packet, or no packet at all
            table = _to_frame(_empty_columns(), np.zeros(0, np.uint16), [self.capture.name])
            table.attrs["captures"] = self.captures()
            yield table

    def captures(self) -> list[dict]:
        """The stream described as ``read_packets`` describes each file in ``attrs["captures"]``."""
        capture = self.capture
        return [
            {
                "path": capture.name,
                "format": capture.full_format,
                "packets": capture.records,
                "interfaces": [vars(interface) for interface in capture.interfaces],
                "damage": None if capture.damage is None else {"offset": capture.damage.offset, "reason": capture.damage.reason},
            }
        ]


def _decode_batch(batch: RecordBatch, port: int, name: str) -> pd.DataFrame:
    matrices = allocate_matrices(len(batch))
    decode_frames(batch.data, batch.columns, matrices, port)
    records = {**batch.columns, "frame_offset": batch.columns["frame_offset"] + batch.shift}
    return _to_frame({**records, **column_views(matrices)}, np.zeros(len(batch), np.uint16), [name])


def empty_packets(paths: list[str] | tuple[str, ...] = ()) -> pd.DataFrame:
    """A packet table of no rows, with every column and dtype of ``read_packets`` (``file`` categories ``paths``)."""
    return _to_frame(_empty_columns(), np.zeros(0, np.uint16), list(paths))


def concat_packets(tables: list[pd.DataFrame]) -> pd.DataFrame:
    """Packet tables (or column subsets of them) as one, rows in the order given; ``file`` categories united
    where the tables come from different captures (several streams, or batches of a growing set)."""
    files = [t["file"].cat.categories for t in tables if "file" in t]
    if files and any(not f.equals(files[0]) for f in files[1:]):
        united = files[0]
        for more in files[1:]:
            united = united.union(more, sort=False)
        tables = [t.assign(file=t["file"].cat.set_categories(united)) for t in tables]
    return pd.concat(tables, ignore_index=True)


def _empty_columns() -> dict[str, np.ndarray]:
    return {name: np.zeros(0, COLUMN_DTYPES[name]) for name in COLUMN_DTYPES if name != "file"}


def _to_frame(columns: dict[str, np.ndarray], file_codes: np.ndarray, paths: list[str]) -> pd.DataFrame:
    data = dict(columns)
    names = [path if path not in paths[:k] else f"{path}#{k}" for k, path in enumerate(paths)]
    data["file"] = pd.Categorical.from_codes(file_codes.astype(np.int16), categories=names)
    for name in ("status", "kind"):
        data[name] = pd.Categorical.from_codes(columns[name].astype(np.int8), categories=category_labels(name))
    return pd.DataFrame({name: data[name] for name in COLUMN_NAMES}, copy=False)


class MergedStreams:
    """Several captures read as streams and merged in time order, a packet table at a time, in bounded memory.

    For captures larger than memory (``gwcheck analyze --stream``): each file is read ``batch_bytes`` at a
    time and rows are released once no file can still bring an earlier one (every file's next rows are
    no earlier than what it has given so far, as in a capture written in order).  Ties keep file order,
    as ``read_packets`` does.  Iterating gives (table, files ended so far); ``file`` categories are the paths.
    """

    def __init__(self, paths: Iterable[PathLike], port: int = GENEVE_PORT, batch_bytes: int = 64 << 20) -> None:
        self.paths = [os.fspath(p) for p in paths]
        self.port = port
        self.batch_bytes = batch_bytes
        self.captures: list[dict] = [{"path": p, "format": None, "packets": 0, "interfaces": [], "damage": None} for p in self.paths]

    def __iter__(self) -> Iterator[tuple[pd.DataFrame, frozenset[str]]]:
        names = pd.Index(self.paths)
        files = []
        try:
            for path in self.paths:
                try:
                    files.append(open(path, "rb"))  # noqa: SIM115 - closed below
                except OSError as error:
                    raise CaptureError(path, 0, error.strerror or str(error)) from None
            streams = [iter(PacketStream(f, self.port, self.batch_bytes, name=path)) for f, path in zip(files, self.paths)]
            waiting: list[pd.DataFrame | None] = [None] * len(self.paths)
            ended = [False] * len(self.paths)

            def pull(code: int) -> None:
                """Read the file's next table onto its waiting rows, or mark it ended."""
                try:
                    table = next(streams[code])
                except StopIteration:
                    ended[code] = True
                    return
                self.captures[code] = table.attrs["captures"][0]
                if len(table):
                    table["file"] = pd.Categorical.from_codes(np.full(len(table), code, np.int16), categories=names)
                    waiting[code] = table if waiting[code] is None else pd.concat([waiting[code], table], ignore_index=True)

            while True:
                for code in range(len(self.paths)):
                    while not ended[code] and waiting[code] is None:
                        pull(code)
                live = {code: int(waiting[code]["ts_ns"].iat[-1]) for code in range(len(self.paths)) if not ended[code]}
                horizon = min(live.values()) if live else None
                out = []
                for code, table in enumerate(waiting):
                    if table is None:
                        continue
                    ready = np.ones(len(table), bool) if horizon is None else table["ts_ns"].to_numpy() < horizon
                    if ready.any():
                        out.append(table[ready])
                        waiting[code] = table[~ready].reset_index(drop=True) if not ready.all() else None
                if out:
                    merged = pd.concat(out, ignore_index=True)
                    merged = merged.take(np.argsort(merged["ts_ns"].to_numpy(), kind="stable")).reset_index(drop=True)
                    merged.attrs["captures"] = list(self.captures)
                    yield merged, frozenset(p for p, e in zip(self.paths, ended) if e)
                elif live:
                    pull(min(live, key=live.__getitem__))  # the file that holds everything back must bring more
                else:
                    break
            final = empty_packets(self.paths)
            final.attrs["captures"] = list(self.captures)
            yield final, frozenset(self.paths)
        finally:
            for f in files:
                f.close()

