"""Record columns in, packet columns out: link layer, outer IP/UDP, Geneve and the AWS options, inner IP/TCP/UDP/ICMP."""

from __future__ import annotations

import numpy as np

from ..schema import COLUMN_DTYPES
from .digest import as_words
from .geneve import AWS_OPTION_CLASS, GENEVE_PORT, vpce_id
from .kernel import ROW_COUNTS, ROWS, STORAGE_DTYPES, decode_records

__all__ = ["AWS_OPTION_CLASS", "GENEVE_PORT", "allocate_matrices", "column_views", "decode_frames", "vpce_id"]

Matrices = dict[str, np.ndarray]


def allocate_matrices(n: int) -> Matrices:
    """Zeroed storage for the decoded columns of ``n`` packets: one (rows, n) matrix per storage width."""
    return {group: np.zeros((ROW_COUNTS[group], n), dtype) for group, dtype in STORAGE_DTYPES.items()}


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
    if len(records["frame_offset"]) == 0:
        return
    decode_records(
        data,
        as_words(data),
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
