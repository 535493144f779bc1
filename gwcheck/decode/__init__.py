"""Record columns in, packet columns out: link layer, outer IP/UDP, Geneve and the AWS options, inner IP/TCP/UDP/ICMP."""

from __future__ import annotations

import numpy as np

from ..schema import COLUMN_DTYPES, DECODER_COLUMNS
from .geneve import AWS_OPTION_CLASS, GENEVE_PORT, vpce_id
from .kernel import DecoderColumns, decode_records

__all__ = ["AWS_OPTION_CLASS", "GENEVE_PORT", "allocate_columns", "decode_frames", "vpce_id"]


def allocate_columns(n: int) -> dict[str, np.ndarray]:
    """Zeroed arrays for every decoder column (``schema.DECODER_COLUMNS``), ``n`` rows each."""
    return {name: np.zeros(n, COLUMN_DTYPES[name]) for name in DECODER_COLUMNS}


def decode_frames(data: np.ndarray, columns: dict[str, np.ndarray], port: int = GENEVE_PORT) -> None:
    """Decode, in place, the frames of one file held in ``data``.

    ``columns`` holds an array for every decoder column, all of one length, zeroed except the record
    columns (``schema.RECORD_COLUMNS``) that locate each frame in ``data``.
    """
    if not 0 <= int(port) <= 0xFFFF:
        from ..errors import ConfigError

        raise ConfigError(f"port {port} is not a UDP port (0-65535)")
    if len(columns["ts_ns"]):
        decode_records(data, DecoderColumns(**{name: columns[name] for name in DECODER_COLUMNS}), int(port))
