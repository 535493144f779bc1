"""How gwcheck names an inner flow in reports and truth files: protocol, client, server and endpoint."""

from __future__ import annotations

import numpy as np

PROTOCOL_NAMES = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6"}
PORTLESS_PROTOCOLS = frozenset({1, 58})  # flows keyed by 3-tuple (gwlb.md, stickiness)


def protocol_name(proto: int) -> str:
    return PROTOCOL_NAMES.get(int(proto), f"ip-proto-{int(proto)}")


def _side(address: str, port: int, with_port: bool) -> str:
    if not with_port:
        return address
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def format_flow_key(proto: int, client: str, client_port: int, server: str, server_port: int, endpoint: str) -> str:
    """``tcp 10.1.0.7:40112 > 10.2.0.9:443 @ vpce-0123...``: the client as the side that opened the flow."""
    with_ports = int(proto) not in PORTLESS_PROTOCOLS
    return (
        f"{protocol_name(proto)} {_side(client, client_port, with_ports)} > "
        f"{_side(server, server_port, with_ports)} @ {endpoint}"
    )


def format_flow_keys(
    proto: np.ndarray, client: np.ndarray, client_port: np.ndarray, server: np.ndarray, server_port: np.ndarray, endpoint: np.ndarray
) -> list[str]:
    """``format_flow_key`` of many flows, addresses and endpoints given as text: one f-string a flow, the
    protocol names and bracketed IPv6 addresses made beforehand."""
    proto = np.asarray(proto).tolist()
    names = {p: protocol_name(p) for p in set(proto)}
    client_side, server_side = _bracketed(client), _bracketed(server)
    return [
        f"{names[p]} {c} > {s} @ {e}" if p in PORTLESS_PROTOCOLS else f"{names[p]} {cs}:{cp} > {ss}:{sp} @ {e}"
        for p, c, cs, cp, s, ss, sp, e in zip(
            proto, client, client_side, np.asarray(client_port).tolist(), server, server_side, np.asarray(server_port).tolist(), endpoint
        )
    ]


def _bracketed(addresses: np.ndarray) -> list[str]:
    """IPv6 address text in brackets, as ``_side`` writes it before a port; IPv4 as it is."""
    return [f"[{a}]" if ":" in a else a for a in addresses]
