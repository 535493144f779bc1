"""What a capture set holds: packets by kind and status, time span, GWLB nodes, appliances, endpoints, cookies."""

from __future__ import annotations

from ..addresses import format_address
from ..decode.geneve import vpce_id
from ..schema import NS_PER_SECOND
from ..tables.roles import Roles
from .tallies import PacketTally


def capture_summary(tally: PacketTally, captures: list[dict], roles: Roles) -> dict:
    """A JSON-ready summary of the packets counted in ``tally``, the ``captures`` read and the ``roles`` found."""
    first, last = tally.first_ts_ns, tally.last_ts_ns
    return {
        "files": captures,
        "packets": tally.packets,
        "first_ts_ns": first,
        "last_ts_ns": last,
        "duration_s": float((last - first) / NS_PER_SECOND) if tally.packets else 0.0,
        "by_kind": _ordered(tally.by_kind),
        "by_status": _ordered(tally.by_status),
        "gwlb_shape": _shape(tally.shape),
        "gwlb_shape_decoded": _shape(tally.shape_decoded, deviating=True),  # the same over Geneve packets decoded whole
        "roles": {
            "method": roles.method,
            "evidence": roles.evidence,
            "gwlb_nodes": [_address_row(tally, a, "gwlb") for a in roles.gwlb_nodes],
            "appliances": [_address_row(tally, a, "appliance") for a in roles.appliances],
        },
        "endpoints": _endpoints(tally),
        "cookies": len(tally.cookies),
    }


def _ordered(counts) -> dict[str, int]:
    """Most frequent first (ties by name), as pandas' value_counts orders them."""
    return {label: int(count) for label, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])) if count}


def _shape(counts, deviating: bool = False) -> dict[str, int]:
    """Packets of the exact GWLB shape, then per deviation flag; with ``deviating``, also how many deviate at all."""
    out = {"exact": int(counts.get("exact", 0))}
    if deviating:
        out["deviating"] = int(counts.get("deviating", 0))
    return out | {k: int(v) for k, v in counts.items() if k not in ("exact", "deviating") and v}


def _address_row(tally: PacketTally, address: tuple[int, int], role: str) -> dict:
    return {"address": format_address(*address), "role": role, "packets_sent": int(tally.sent.get(address, 0)), "packets_received": int(tally.received.get(address, 0))}


def _endpoints(tally: PacketTally) -> list[dict]:
    attachments: dict[int, list[int]] = {}
    for endpoint, attachment in tally.endpoint_attachments:
        attachments.setdefault(endpoint, []).append(attachment)
    return [
        {
            "endpoint": vpce_id(endpoint),
            "endpoint_id": f"0x{int(endpoint):016x}",
            "packets": int(tally.endpoint_packets[endpoint]),
            "cookies": len(tally.endpoint_cookies.get(endpoint, ())),
            "attachment_ids": [f"0x{int(a):x}" for a in sorted(attachments.get(endpoint, []))],
        }
        for endpoint in sorted(tally.endpoint_packets)
    ]
