"""What a capture set holds: packets by kind and status, time span, GWLB nodes, appliances, endpoints, cookies."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..addresses import format_address
from ..decode.geneve import vpce_id
from ..schema import NS_PER_SECOND, GwlbShape
from ..tables.roles import Roles


def capture_summary(packets: pd.DataFrame, roles: Roles) -> dict:
    """A JSON-ready summary of ``packets`` (the packet table) with the ``roles`` found for its addresses."""
    ts = packets["ts_ns"].to_numpy()
    columns = ["gwlb_shape", "aws_endpoint_id", "aws_attachment_id", "aws_flow_cookie", "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo"]
    geneve = packets.loc[(packets["kind"] == "geneve").to_numpy(), columns]
    return {
        "files": packets.attrs.get("captures", []),
        "packets": int(len(packets)),
        "first_ts_ns": int(ts.min()) if len(ts) else None,
        "last_ts_ns": int(ts.max()) if len(ts) else None,
        "duration_s": float((ts.max() - ts.min()) / NS_PER_SECOND) if len(ts) else 0.0,
        "by_kind": _counts(packets["kind"]),
        "by_status": _counts(packets["status"]),
        "gwlb_shape": _shape_counts(geneve["gwlb_shape"].to_numpy()),
        "roles": {
            "method": roles.method,
            "evidence": roles.evidence,
            "gwlb_nodes": [_address_row(geneve, a, "gwlb") for a in roles.gwlb_nodes],
            "appliances": [_address_row(geneve, a, "appliance") for a in roles.appliances],
        },
        "endpoints": _endpoints(geneve),
        "cookies": int(geneve.loc[(geneve["gwlb_shape"].to_numpy() & int(GwlbShape.MISSING_COOKIE)) == 0, "aws_flow_cookie"].nunique()),
    }


def _counts(column: pd.Series) -> dict[str, int]:
    counts = column.value_counts()
    return {str(label): int(count) for label, count in counts.items() if count}


def _shape_counts(shape: np.ndarray) -> dict[str, int]:
    out = {"exact": int((shape == 0).sum())}
    for flag in GwlbShape:
        count = int(((shape & flag.value) != 0).sum())
        if count:
            out[flag.name.lower()] = count
    return out


def _address_row(geneve: pd.DataFrame, address: tuple[int, int], role: str) -> dict:
    hi, lo = address
    sent = (geneve["outer_src_hi"].to_numpy() == hi) & (geneve["outer_src_lo"].to_numpy() == lo)
    received = (geneve["outer_dst_hi"].to_numpy() == hi) & (geneve["outer_dst_lo"].to_numpy() == lo)
    return {"address": format_address(hi, lo), "role": role, "packets_sent": int(sent.sum()), "packets_received": int(received.sum())}


def _endpoints(geneve: pd.DataFrame) -> list[dict]:
    with_endpoint = geneve[(geneve["gwlb_shape"].to_numpy() & int(GwlbShape.MISSING_ENDPOINT)) == 0]
    grouped = with_endpoint.groupby("aws_endpoint_id", sort=True)
    packets = grouped.size()
    cookies = grouped["aws_flow_cookie"].nunique()
    attachments = grouped["aws_attachment_id"].unique()
    return [
        {
            "endpoint": vpce_id(endpoint),
            "endpoint_id": f"0x{int(endpoint):016x}",
            "packets": int(packets[endpoint]),
            "cookies": int(cookies[endpoint]),
            "attachment_ids": [f"0x{int(a):x}" for a in sorted(attachments[endpoint])],
        }
        for endpoint in packets.index
    ]
