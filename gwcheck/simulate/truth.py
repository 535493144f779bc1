"""The truth of a simulated capture: what was written, counted the way gwcheck's analysis counts it.

A flow row is an inner flow within one endpoint, keyed by protocol and its two ends (the client is the side
that sent the SYN, or received the SYN-ACK, or sent an echo request, or received an echo reply, or else sent
the first packet).  Per appliance: ingress and
egress legs, returned and not returned ingress legs, distinct flows, and the dwell time of every returned
leg as written (after timestamp rounding), summarised by ``gwcheck.summaries.latency_summary_us``.
"""

from __future__ import annotations

import enum
import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..decode.geneve import vpce_id
from ..decode.ip import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP, IPV6_HEADER_BYTES
from ..decode.transport import ICMP_ECHO_REPLY, ICMP_ECHO_REQUEST, ICMPV6_ECHO_REPLY, ICMPV6_ECHO_REQUEST
from ..flowkey import format_flow_key
from ..summaries import latency_summary_us
from . import conversations as conv
from . import frames as fr

TRUTH_VERSION = 2
PAIR_WINDOW_NS = 1_000_000_000  # the analysis' default pairing window: legs within it of a capture's edge are excused
GWLB_MAX_INNER_BYTES = 8500  # GWLB drops larger packets (gwlb.md, MTU)
PROTOCOL_NUMBERS = {"tcp": IPPROTO_TCP, "udp": IPPROTO_UDP, "quic": IPPROTO_UDP}
ECHO_REQUESTS = (ICMP_ECHO_REQUEST, ICMPV6_ECHO_REQUEST)
ECHO_REPLIES = (ICMP_ECHO_REPLY, ICMPV6_ECHO_REPLY)


class State(enum.IntEnum):
    """What became of an inner packet's crossing of an appliance, as its capture shows it."""

    RETURNED = 0  # ingress and egress leg
    NOT_RETURNED = 1  # ingress leg only
    IN_FLIGHT = 2  # ingress leg only, within the pairing window of the capture's end
    ORIGINATED = 3  # egress leg only
    BEFORE_CAPTURE = 4  # egress leg only, within the pairing window of the capture's start


@dataclass
class Transits:
    """Every crossing of an appliance by an inner packet, as columns: which packet, by which path, and its two legs."""

    flow: np.ndarray  # index into Simulator.flows
    path: np.ndarray  # index into Simulator.paths
    appliance: np.ndarray  # indexes of the path's appliance, GWLB node and endpoint
    node: np.ndarray
    endpoint: np.ndarray
    direction: np.ndarray  # conversations.CLIENT_TO_SERVER or SERVER_TO_CLIENT
    tcp_flags: np.ndarray
    inner: list[bytes]  # the inner packet
    inner_bytes: np.ndarray  # its length
    ingress: np.ndarray  # bool: GWLB sent it to the appliance (never so for originated flows)
    egress: np.ndarray  # bool: the appliance sent it back
    ingress_ns: np.ndarray  # true time of the ingress leg (when there would have been one)
    egress_ns: np.ndarray  # true time of the egress leg
    ingress_written_ns: np.ndarray  # as the capture stores them: clock offset, then rounded
    egress_written_ns: np.ndarray
    egress_frames: np.ndarray  # frames of the egress leg: more than one when the appliance fragmented it

    def __len__(self) -> int:
        return len(self.path)


def _protocol(flow: Any) -> int:
    if flow.protocol == "icmp":
        return IPPROTO_ICMPV6 if ":" in flow.ends.client else IPPROTO_ICMP
    return PROTOCOL_NUMBERS[flow.protocol]


def build_truth(sim: Any, t: Transits, files: list[Path], frames_per_file: list[int]) -> dict:
    """The truth JSON of a simulation (``sim`` is the Simulator that wrote the transits ``t`` to ``files``)."""
    s = sim.s
    state = _states(t, t.appliance if s.split else np.zeros(len(t), np.int64), len(files))
    rows, row = _rows(sim, t, state)
    latency = t.egress_written_ns - t.ingress_written_ns

    def sides(group: np.ndarray, count: int) -> list[dict]:
        """The counts and latency of the transits in each of ``count`` groups."""
        def per_group(select: np.ndarray) -> list[int]:
            """The transits ``select`` picks (a mask or indexes), counted per group."""
            return np.bincount(group[select], minlength=count).tolist()

        flows = per_group(np.unique(row * count + group, return_index=True)[1])  # one transit per (flow row, group)
        returned = state == State.RETURNED
        counts = zip(per_group(t.ingress), per_group(t.egress), per_group(returned), per_group(state == State.NOT_RETURNED),
                     per_group(state == State.IN_FLIGHT), flows)
        return [
            {"packets_in": i, "packets_out": o, "returned": r, "not_returned": nr, "in_flight": f, "flows": fl,
             "latency_us": latency_summary_us(latency[returned & (group == g)])}
            for g, (i, o, r, nr, f, fl) in enumerate(counts)
        ]

    def checks(select: Callable[[Any], bool]) -> dict:
        chosen = [p for p in sim.probes if select(p)]
        return {"probes": len(chosen), "answered": sum(p.answered for p in chosen), "unanswered": sum(not p.answered for p in chosen)}

    appliances = {
        ip: side | {"health_checks": checks(lambda p, a=a: p.appliance == a)}
        for a, (ip, side) in enumerate(zip(sim.appliances, sides(t.appliance, len(sim.appliances))))
    }
    nodes = {
        ip: side | {"health_checks": checks(lambda p, n=n: p.node == n)}
        for n, (ip, side) in enumerate(zip(sim.nodes, sides(t.node, len(sim.nodes))))
    }
    endpoints = {vpce_id(e): side for e, side in zip(sim.endpoint_ids, sides(t.endpoint, len(sim.endpoint_ids)))}
    everything = sides(np.zeros(len(t), np.int64), 1)[0]
    flow_rows = sorted(rows, key=lambda r: r["key"])
    faults: dict[str, list[str]] = defaultdict(list)
    artefacts: dict[str, list[str]] = defaultdict(list)
    for flow_row in flow_rows:
        for kind in flow_row["faults"]:
            faults[kind].append(flow_row["key"])
        for kind in flow_row["artefacts"]:
            artefacts[kind].append(flow_row["key"])
    return {
        "gwcheck_truth_version": TRUTH_VERSION,
        "scenario": asdict(s),
        "files": [
            {"path": p.name, "appliance": sim.appliances[k] if s.split else None, "packets": c}
            for k, (p, c) in enumerate(zip(files, frames_per_file))
        ],
        "packets": int(sum(frames_per_file)),
        "geneve_legs": int(t.ingress.sum() + t.egress.sum()),
        "flows": len(flow_rows),
        "appliances": appliances,
        "gwlb_nodes": nodes,
        "endpoints": endpoints,
        "latency_us": everything["latency_us"],
        "returned": everything["returned"],
        "not_returned": everything["not_returned"],
        "in_flight": everything["in_flight"],
        "health_checks": checks(lambda p: True),
        "flow_rows": flow_rows,
        "faults": dict(sorted(faults.items())),
        "artefacts": dict(sorted(artefacts.items())),
    }


def dumps_truth(truth: dict) -> str:
    """The truth as JSON text: indented, each flow row on one line (json's indenting encoder is pure Python,
    and a million packets make fifty thousand rows)."""
    rows = ",\n  ".join(json.dumps(row) for row in truth["flow_rows"])
    text = json.dumps({**truth, "flow_rows": None}, indent=1)
    return text.replace('"flow_rows": null', f'"flow_rows": [\n  {rows}\n ]' if rows else '"flow_rows": []', 1) + "\n"


def _states(t: Transits, file: np.ndarray, files: int) -> np.ndarray:
    """The State of each transit; a missing leg within the pairing window of its capture's edge is excused."""
    first = np.full(files, np.iinfo(np.int64).max)
    last = np.full(files, np.iinfo(np.int64).min)
    for present, written in ((t.ingress, t.ingress_written_ns), (t.egress, t.egress_written_ns)):
        np.minimum.at(first, file[present], written[present])
        np.maximum.at(last, file[present], written[present])
    state = np.full(len(t), State.RETURNED, np.int64)
    alone = ~t.egress
    state[alone] = np.where(t.ingress_written_ns[alone] > last[file[alone]] - PAIR_WINDOW_NS, State.IN_FLIGHT, State.NOT_RETURNED)
    alone = ~t.ingress
    state[alone] = np.where(t.egress_written_ns[alone] < first[file[alone]] + PAIR_WINDOW_NS, State.BEFORE_CAPTURE, State.ORIGINATED)
    return state


def _rows(sim: Any, t: Transits, state: np.ndarray) -> tuple[list[dict], np.ndarray]:
    """The flow rows, and the row of each transit: paths grouped by endpoint, protocol and the flow's two ends."""
    row_ids: dict[tuple, int] = {}
    row_of_path = []
    for flow, route in sim.paths:
        ends = flow.ends
        sides = frozenset({(ends.client, ends.client_port), (ends.server, ends.server_port)})
        row_of_path.append(row_ids.setdefault((route.endpoint, _protocol(flow), sides), len(row_ids)))
    row = np.asarray(row_of_path, np.int64)[t.path]
    count = len(row_ids)
    client_transit, client_receives = _client_transits(t, row, count, _icmp_types(sim, t))
    client_side = []
    for j, receives in zip(client_transit.tolist(), client_receives.tolist()):
        ends = sim.flows[t.flow[j]].ends
        sender_is_client = (t.direction[j] == conv.CLIENT_TO_SERVER) != receives
        client_side.append((ends.client, ends.client_port) if sender_is_client else (ends.server, ends.server_port))
    # The direction in which each path's flow sends from its row's client.
    forward = np.array([
        conv.CLIENT_TO_SERVER if (p.flow.ends.client, p.flow.ends.client_port) == client_side[r] else conv.SERVER_TO_CLIENT
        for p, r in zip(sim.paths, row_of_path)
    ], np.int64)

    def per_row(mask: np.ndarray) -> list[int]:
        return np.bincount(row[mask], minlength=count).tolist()

    fwd = per_row(t.direction == forward[t.path])
    members = per_row(np.ones(len(t), bool))
    returned, not_returned = per_row(state == State.RETURNED), per_row(state == State.NOT_RETURNED)
    in_flight, originated = per_row(state == State.IN_FLIGHT), per_row(state == State.ORIGINATED)
    over_mtu = per_row(t.inner_bytes > GWLB_MAX_INNER_BYTES)
    fragmented = per_row(t.egress & (t.egress_frames > 1))
    paths_of_row: list[list[Any]] = [[] for _ in range(count)]
    for path, r in zip(sim.paths, row_of_path):
        paths_of_row[r].append(path)
    rows = []
    for (endpoint, proto, _), r in row_ids.items():
        paths = paths_of_row[r]
        flow = paths[0].flow
        client, client_port = client_side[r]
        server, server_port = next(side for side in ((flow.ends.client, flow.ends.client_port), (flow.ends.server, flow.ends.server_port)) if side != client_side[r])
        faults = {f for p in paths for f in p.flow.faults}
        if not_returned[r]:
            faults.add("not_returned")
        if not originated[r]:
            faults.discard("originated")  # every packet fell in the capture's first window
        endpoint_id = vpce_id(sim.endpoint_ids[endpoint])
        rows.append({
            "key": format_flow_key(proto, client, client_port, server, server_port, endpoint_id),
            "protocol": proto,
            "client": client,
            "client_port": client_port,
            "server": server,
            "server_port": server_port,
            "endpoint": endpoint_id,
            "appliances": sorted({sim.appliances[p.route.appliance] for p in paths}),
            "gwlb_nodes": sorted({sim.nodes[p.route.node] for p in paths}),
            "cookies": sorted({f"0x{p.route.cookie:08x}" for p in paths}),
            "fwd_packets": fwd[r],
            "rev_packets": members[r] - fwd[r],
            "returned": returned[r],
            "not_returned": not_returned[r],
            "in_flight": in_flight[r],
            "over_mtu_packets": over_mtu[r],
            "fragmented_legs": fragmented[r],
            "faults": sorted(faults),
            "artefacts": sorted({a for p in paths for a in p.flow.artefacts}),
        })
    return rows, row


def _icmp_types(sim: Any, t: Transits) -> np.ndarray:
    """The ICMP or ICMPv6 type of each transit's inner packet; -1 for other protocols."""
    types = np.full(len(t), -1, np.int64)
    icmp = np.array([p.flow.protocol == "icmp" for p in sim.paths], bool)
    for j in np.flatnonzero(icmp[t.path] if len(t) else []).tolist():
        packet = t.inner[j]
        types[j] = packet[IPV6_HEADER_BYTES if packet[0] >> 4 == 6 else (packet[0] & 0x0F) * 4]
    return types


def _client_transits(t: Transits, row: np.ndarray, count: int, icmp_type: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the transit that names the client, and whether the client receives it rather than sends it.

    As the analysis (gwcheck.tables.flows) has it: the client sent the row's first SYN; failing that, received
    its first SYN-ACK; failing that, sent its first echo request, or received its first echo reply; failing
    that, sent its first packet.
    """
    order = np.lexsort((np.where(t.ingress, t.ingress_ns, t.egress_ns), row))
    sorted_row = row[order]
    handshake = t.tcp_flags[order] & (fr.TCP_SYN | fr.TCP_ACK)
    icmp_type = icmp_type[order]
    evidence = (  # weakest first: each stronger one overrides
        (np.ones(len(t), bool), False),
        (np.isin(icmp_type, ECHO_REPLIES), True),
        (np.isin(icmp_type, ECHO_REQUESTS), False),
        (handshake == fr.TCP_SYN | fr.TCP_ACK, True),
        (handshake == fr.TCP_SYN, False),
    )
    transit = np.full(count, -1, np.int64)
    receives = np.zeros(count, bool)
    for mask, received in evidence:
        hits = np.flatnonzero(mask)
        rows_hit, first = np.unique(sorted_row[hits], return_index=True)
        transit[rows_hit] = order[hits[first]]
        receives[rows_hit] = received
    return transit, receives
