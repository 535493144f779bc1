"""How gwcheck names an inner flow in reports and truth files: protocol, client, server and endpoint."""

from __future__ import annotations

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
