"""How gwcheck names an inner flow in reports and truth files: protocol, client, server and endpoint."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .tables.grouping import group_ids
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
    """``format_flow_key`` of many flows, addresses and endpoints given as Arrow text: one concatenation in
    Arrow's kernels, whose pieces around the addresses (protocol name, brackets, colons, ports) are taken from
    the few texts each can be."""
    proto = np.asarray(proto)
    code, firsts = group_ids([proto])
    protocols = proto[firsts]
    with_ports = ~np.isin(protocols, list(PORTLESS_PROTOCOLS))[code]
    # As _side writes a side: IPv6 text in brackets before its port, a colon before the port, nothing without one.
    bracketed = [with_ports & pc.match_substring(side, ":").to_numpy(zero_copy_only=False) for side in (client, server)]
    before_client = take_text([f"{protocol_name(p)} {bracket}" for p in protocols.tolist() for bracket in ("", "[")], code * 2 + bracketed[0])
    before_server = take_text([" > ", " > ["], bracketed[1].astype(np.int64))
    after = [take_text(["", ":", "]:"], with_ports.astype(np.int64) + side_bracketed) for side_bracketed in bracketed]
    ports = [pc.if_else(pa.array(with_ports), pc.cast(pa.array(np.asarray(p)), pa.string()), "") for p in (client_port, server_port)]
    return join_text(before_client, client, after[0], ports[0], before_server, server, after[1], ports[1], " @ ", endpoint)
