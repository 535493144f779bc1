"""Record columns in, packet columns out: link layer, outer IP/UDP, Geneve and the AWS options, inner IP/TCP/UDP/ICMP."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..schema import COLUMN_DTYPES
from .digest import as_words
from .geneve import AWS_OPTION_CLASS, GENEVE_PORT, vpce_id
from .kernel import ROW_COUNTS, ROWS, STORAGE_DTYPES, decode_records

__all__ = ["AWS_OPTION_CLASS", "GENEVE_PORT", "allocate_matrices", "column_views", "decode_frames", "vpce_id"]

Matrices = dict[str, np.ndarray]
MAX_THREADS = 8
MIN_PACKETS_PER_THREAD = 50_000  # below this a thread costs more than it saves


def allocate_matrices(n: int) -> Matrices:
    """Zeroed storage for the decoded columns of ``n`` packets: one (rows, n) matrix per storage width.

    ``np.empty`` then ``fill`` rather than ``np.zeros``: numpy backs large ``empty`` arrays with huge pages
    (madvise), where ``zeros`` takes fresh 4 KiB pages from calloc whose first-touch faults cost several
    times the zeroing itself.
    """
    matrices = {group: np.empty((ROW_COUNTS[group], n), dtype) for group, dtype in STORAGE_DTYPES.items()}
    for matrix in matrices.values():
        matrix.fill(0)
    return matrices


def column_views(matrices: Matrices) -> dict[str, np.ndarray]:
    """Every decoded column as a contiguous view of its matrix row, with the schema's dtype (no copy)."""
    return {name: matrices[group][row].view(COLUMN_DTYPES[name]) for name, (group, row) in ROWS.items()}


def decode_frames(data: np.ndarray, records: dict[str, np.ndarray], matrices: Matrices, port: int = GENEVE_PORT) -> None:
    """Decode the frames of one file held in ``data`` into ``matrices`` (zeroed, one column per record).

    ``records`` are the capture layer's columns (``schema.RECORD_COLUMNS``) locating each frame in ``data``.
    """
    if not 0 <= int(port) <= 0xFFFF:
        from ..errors import ConfigError

        raise ConfigError(f"port {port} is not a UDP port (0-65535)")
    n = len(records["frame_offset"])
    words = as_words(data)

    def decode_slice(start: int, stop: int) -> None:
        decode_records(
            data,
            words,
            records["frame_offset"][start:stop],
            records["cap_len_bytes"][start:stop],
            records["wire_len_bytes"][start:stop],
            records["link_type"][start:stop],
            matrices["u8"][:, start:stop],
            matrices["u16"][:, start:stop],
            matrices["u32"][:, start:stop],
            matrices["u64"][:, start:stop],
            int(port),
        )

    workers = min(os.cpu_count() or 1, MAX_THREADS, n // MIN_PACKETS_PER_THREAD)
    if workers <= 1:
        decode_slice(0, n)
        return
    bounds = [n * k // workers for k in range(workers + 1)]
    with ThreadPoolExecutor(workers) as pool:  # the kernel releases the GIL (nogil=True)
        for future in [pool.submit(decode_slice, a, b) for a, b in zip(bounds, bounds[1:])]:
            future.result()
