"""How gwcheck names an inner flow in reports and truth files: protocol, client, server and endpoint."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .text import join_text, take_text

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
    proto: np.ndarray, client: pa.Array, client_port: np.ndarray, server: pa.Array, server_port: np.ndarray, endpoint: pa.Array
) -> pa.Array:
    """``format_flow_key`` of many flows, addresses and endpoints given as Arrow text: built column by column
    in Arrow's kernels, each protocol's name made once."""
    proto = np.asarray(proto)
    protocols, code = np.unique(proto, return_inverse=True)
    name = take_text([protocol_name(p) for p in protocols.tolist()], code.reshape(-1))
    ports = [pc.cast(pa.array(np.asarray(p)), pa.string()) for p in (client_port, server_port)]
    with_ports = join_text(name, " ", _bracketed(client), ":", ports[0], " > ", _bracketed(server), ":", ports[1], " @ ", endpoint)
    portless = join_text(name, " ", client, " > ", server, " @ ", endpoint)
    return pc.if_else(pa.array(np.isin(proto, list(PORTLESS_PROTOCOLS))), portless, with_ports)


def _bracketed(addresses: pa.Array) -> pa.Array:
    """IPv6 address text in brackets, as ``_side`` writes it before a port; IPv4 as it is."""
    return pc.if_else(pc.match_substring(addresses, ":"), join_text("[", addresses, "]"), addresses)
