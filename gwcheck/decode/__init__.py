"""Record columns in, packet columns out: link layer, outer IP/UDP, Geneve and the AWS options, inner IP/TCP/UDP/ICMP."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..schema import COLUMN_DTYPES
from .geneve import AWS_OPTION_CLASS, GENEVE_PORT, vpce_id
from .kernel import ROW_COUNTS, ROWS, STORAGE_DTYPES, decode_records

__all__ = ["AWS_OPTION_CLASS", "GENEVE_PORT", "allocate_matrices", "column_views", "decode_frames", "vpce_id"]

Matrices = dict[str, np.ndarray]
MAX_THREADS = 8
MIN_PACKETS_PER_THREAD = 50_000  # below this a thread costs more than it saves


def allocate_matrices(n: int) -> Matrices:
    """Storage for the decoded columns of ``n`` packets: one (rows, n) matrix per storage width, uninitialized.

    ``decode_frames`` writes every column of every row it decodes (0 where a packet did not reach a field),
    so the matrices are not zeroed first: that would be a second pass over all of them.  Rows no call
    decodes hold garbage.  (``np.empty`` also gets huge pages from numpy (madvise) for large arrays, where
    ``np.zeros`` takes 4 KiB pages from calloc, whose first-touch faults cost several times the zeroing.)
    """
    return {group: np.empty((ROW_COUNTS[group], n), dtype) for group, dtype in STORAGE_DTYPES.items()}


def column_views(matrices: Matrices) -> dict[str, np.ndarray]:
    """Every decoded column as a contiguous view of its matrix row, with the schema's dtype (no copy)."""
    return {name: matrices[group][row].view(COLUMN_DTYPES[name]) for name, (group, row) in ROWS.items()}


def decode_frames(
    data: np.ndarray, records: dict[str, np.ndarray], matrices: Matrices, port: int = GENEVE_PORT, start: int = 0
) -> None:
    """Decode the frames of one file held in ``data`` into columns [start, start + n) of ``matrices``.

    ``records`` are the capture layer's columns (``schema.RECORD_COLUMNS``), n records locating each frame
    in ``data``; record k fills matrix column ``start + k``, every field of it.  ``matrices`` are those of
    ``allocate_matrices`` (or column slices ``m[:, a:b]`` of them).  A wrong dtype is a TypeError; a record
    outside ``data`` or a matrix too narrow a ValueError.
    """
    if not 0 <= int(port) <= 0xFFFF:
        from ..errors import ConfigError

        raise ConfigError(f"port {port} is not a UDP port (0-65535)")
    n = len(records["frame_offset"])
    arguments = (
        data,
        records["frame_offset"],
        records["cap_len_bytes"],
        records["wire_len_bytes"],
        records["link_type"],
        matrices["u8"],
        matrices["u16"],
        matrices["u32"],
        matrices["u64"],
        int(port),
    )
    workers = min(os.cpu_count() or 1, MAX_THREADS, n // MIN_PACKETS_PER_THREAD)
    if workers <= 1:
        decode_records(*arguments, 0, n, int(start))
        return
    bounds = [n * k // workers for k in range(workers + 1)]
    with ThreadPoolExecutor(workers) as pool:  # the kernel releases the GIL
        for future in [pool.submit(decode_records, *arguments, a, b, int(start)) for a, b in zip(bounds, bounds[1:])]:
            future.result()
