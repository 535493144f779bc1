"""The option table: every Geneve option of every packet, generically (class, type, critical bit, length, data; RFC 8926 3.5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..capture import index_capture
from ..decode.geneve import (
    AWS_OPTION_ATTACHMENT_ID,
    AWS_OPTION_CLASS,
    AWS_OPTION_ENDPOINT_ID,
    AWS_OPTION_FLOW_COOKIE,
    GENEVE_HEADER_BYTES,
    GENEVE_PORT,
    OPTION_TYPE_CRITICAL,
    walk_options,
)
from .packets import PathLike, read_packets

AWS_OPTION_NAMES = {AWS_OPTION_ENDPOINT_ID: "endpoint_id", AWS_OPTION_ATTACHMENT_ID: "attachment_id", AWS_OPTION_FLOW_COOKIE: "flow_cookie"}


def read_options(paths: PathLike | list[PathLike], port: int = GENEVE_PORT, packets: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per Geneve option, in packet order, then option order.

    Columns: ``packet`` (row of ``read_packets``' table, which may be passed as ``packets`` to avoid
    reading it again), ``file``, ``ts_ns``, ``position`` (0 for a packet's first option),
    ``option_class``, ``option_type`` (without the critical bit), ``critical``, ``length_bytes`` (of the
    data), ``data`` (hex) and ``aws_option`` (endpoint_id, attachment_id, flow_cookie for class 0x0108,
    else empty).  Options past a truncated or malformed one are not listed (the packet's status says why).
    """
    path_list = [paths] if isinstance(paths, (str,)) or hasattr(paths, "__fspath__") else list(paths)
    if packets is None:
        packets = read_packets(path_list, port=port)
    counts = packets["geneve_opt_count"].to_numpy()
    rows = np.flatnonzero(counts > 0)
    files = packets["file"].cat.codes.to_numpy()[rows]
    parts = []
    for code, path in enumerate(path_list):
        mine = rows[files == code]
        if len(mine) == 0:
            continue
        data = index_capture(path).data
        starts = (packets["frame_offset"].to_numpy()[mine] + packets["geneve_offset"].to_numpy()[mine] + GENEVE_HEADER_BYTES).astype(np.int64)
        n = int(counts[mine].sum())
        option_class, option_type = np.empty(n, np.uint16), np.empty(n, np.uint8)
        length, data_start = np.empty(n, np.uint16), np.empty(n, np.int64)
        walk_options(data, starts, counts[mine].astype(np.int64), option_class, option_type, length, data_start)
        packet = np.repeat(mine, counts[mine])
        position = np.arange(n) - np.repeat(np.cumsum(counts[mine]) - counts[mine], counts[mine])
        raw = data.tobytes() if len(data) < (1 << 20) else data  # small files: one copy beats many slices
        parts.append(
            pd.DataFrame(
                {
                    "packet": packet,
                    "position": position.astype(np.uint8),
                    "option_class": option_class,
                    "option_type": option_type & ~np.uint8(OPTION_TYPE_CRITICAL),
                    "critical": (option_type & OPTION_TYPE_CRITICAL) != 0,
                    "length_bytes": length,
                    "data": [bytes(raw[s : s + size]).hex() for s, size in zip(data_start.tolist(), length.tolist())],
                }
            )
        )
    columns = ["packet", "position", "option_class", "option_type", "critical", "length_bytes", "data"]
    table = pd.concat(parts, ignore_index=True).sort_values(["packet", "position"], kind="stable") if parts else pd.DataFrame(columns=columns)
    table = table.reset_index(drop=True)
    table.insert(1, "file", packets["file"].to_numpy()[table["packet"].to_numpy().astype(np.int64)] if len(table) else [])
    table.insert(2, "ts_ns", packets["ts_ns"].to_numpy()[table["packet"].to_numpy().astype(np.int64)] if len(table) else [])
    aws = (table["option_class"].to_numpy() == AWS_OPTION_CLASS) if len(table) else np.zeros(0, bool)
    table["aws_option"] = [AWS_OPTION_NAMES.get(int(t), "") if a else "" for t, a in zip(table["option_type"].tolist(), aws)]
    return table
