"""gwcheck.flowkey: the flow keys of many flows at once are those ``format_flow_key`` writes one by one."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from gwcheck.addresses import address_texts, parse_address
from gwcheck.flowkey import format_flow_key, format_flow_keys

ADDRESSES = ["10.0.0.1", "192.168.10.200", "2001:db8::1", "::1", "fe80::1:2:3:4", "::ffff:1.2.3.4"]


def test_flow_keys_match_one_by_one() -> None:
    rng = np.random.default_rng(3)
    n = 400
    halves = np.array([parse_address(a) for a in ADDRESSES], np.uint64)
    sides = [halves[rng.integers(0, len(ADDRESSES), n)] for _ in range(2)]
    client, server = (address_texts(side[:, 0], side[:, 1]) for side in sides)
    proto = rng.choice(np.array([0, 1, 6, 17, 47, 58], np.uint8), n)
    client_port, server_port = rng.integers(0, 65536, n).astype(np.uint16), rng.integers(0, 65536, n).astype(np.uint16)
    endpoint = pa.array(rng.choice(["vpce-0a", "vpce-1b"], n).tolist(), pa.string())
    keys = format_flow_keys(proto, client, client_port, server, server_port, endpoint).to_pylist()
    assert keys == [
        format_flow_key(*row)
        for row in zip(proto.tolist(), client.to_pylist(), client_port.tolist(), server.to_pylist(), server_port.tolist(), endpoint.to_pylist())
    ]
    assert len(format_flow_keys(proto[:0], client[:0], client_port[:0], server[:0], server_port[:0], endpoint[:0])) == 0
