"""The truth of a simulated capture: what was written, counted the way gwcheck's analysis counts it.

A flow row is an inner flow within one endpoint, keyed by protocol and its two ends (the client is the side
that sent the SYN, or received the SYN-ACK, or else sent the first packet).  Per appliance: ingress and
egress legs, returned and not returned ingress legs, distinct flows, and the dwell time of every returned
leg as written (after timestamp rounding), summarised by ``gwcheck.summaries.latency_summary_us``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..decode.geneve import vpce_id
from ..flowkey import format_flow_key
from ..summaries import latency_summary_us
from . import conversations as conv
from . import frames as fr

TRUTH_VERSION = 2
PAIR_WINDOW_NS = 1_000_000_000  # the analysis' default pairing window: legs within it of a capture's edge are excused
GWLB_MAX_INNER_BYTES = 8500  # GWLB drops larger packets (gwlb.md, MTU)
PROTOCOL_NUMBERS = {"tcp": 6, "udp": 17, "quic": 17}


@dataclass
class Leg:
    """One packet an appliance captured: a Geneve leg of a flow, or a packet of a health check."""

    flow: Any  # simulator.Flow or simulator.HealthProbe
    index: int  # packet of the flow, or step of the probe
    route: Any  # simulator.Route; None for health checks
    egress: bool
    true_ns: int
    written_ns: int
    frames: int = 1  # more than one when the appliance fragmented it
    wire_bytes: int = 0

    @property
    def appliance(self) -> int:
        return self.route.appliance if self.route is not None else self.flow.appliance


@dataclass
class Transit:
    """One inner packet's crossing of an appliance: its ingress leg, its egress leg, or both."""

    ingress: Leg | None = None
    egress: Leg | None = None
    state: str = ""  # returned, not_returned, in_flight, originated, before_capture

    @property
    def leg(self) -> Leg:
        return self.ingress or self.egress  # type: ignore[return-value]


def _protocol(flow: Any) -> int:
    if flow.protocol == "icmp":
        return 58 if ":" in flow.ends.client else 1
    return PROTOCOL_NUMBERS[flow.protocol]


def build_truth(sim: Any, legs: list[Leg], files: list[Path], frames_per_file: list[int]) -> dict:
    """The truth JSON of a simulation (``sim`` is the Simulator that wrote ``legs`` to ``files``)."""
    s = sim.s
    transits: dict[tuple[int, int, int], Transit] = defaultdict(Transit)
    probes = []
    for leg in legs:
        if leg.route is None:
            if leg.index == 0:
                probes.append(leg.flow)
            continue
        transit = transits[(id(leg.flow), leg.index, leg.route.appliance)]
        if leg.egress:
            transit.egress = leg
        else:
            transit.ingress = leg
    edges = _file_edges(sim, legs)
    for transit in transits.values():
        first, last = edges[_file_of(sim, transit.leg)]
        if transit.egress is None:
            transit.state = "in_flight" if transit.leg.written_ns > last - PAIR_WINDOW_NS else "not_returned"
        elif transit.ingress is None:
            transit.state = "before_capture" if transit.leg.written_ns < first + PAIR_WINDOW_NS else "originated"
        else:
            transit.state = "returned"
    rows = _rows(sim, transits)

    def side(select: Any) -> dict:
        chosen = [t for t in transits.values() if select(t.leg.route)]
        latency = np.array([t.egress.written_ns - t.ingress.written_ns for t in chosen if t.state == "returned"], np.int64)
        return {
            "packets_in": sum(t.ingress is not None for t in chosen),
            "packets_out": sum(t.egress is not None for t in chosen),
            "returned": sum(t.state == "returned" for t in chosen),
            "not_returned": sum(t.state == "not_returned" for t in chosen),
            "in_flight": sum(t.state == "in_flight" for t in chosen),
            "flows": len({key for key, row in rows.items() if any(select(r) for r in row["routes"])}),
            "latency_us": latency_summary_us(latency),
        }

    def checks(select: Any) -> dict:
        chosen = [p for p in probes if select(p)]
        return {"probes": len(chosen), "answered": sum(p.answered for p in chosen), "unanswered": sum(not p.answered for p in chosen)}

    appliances = {}
    for a, ip in enumerate(sim.appliances):
        appliances[ip] = side(lambda r, a=a: r.appliance == a) | {"health_checks": checks(lambda p, a=a: p.appliance == a)}
    nodes = {ip: side(lambda r, n=n: r.node == n) | {"health_checks": checks(lambda p, n=n: p.node == n)} for n, ip in enumerate(sim.nodes)}
    endpoints = {vpce_id(e): side(lambda r, k=k: r.endpoint == k) for k, e in enumerate(sim.endpoint_ids)}
    everything = side(lambda r: True)
    flow_rows = sorted((row["truth"] for row in rows.values()), key=lambda r: r["key"])
    faults: dict[str, list[str]] = defaultdict(list)
    artefacts: dict[str, list[str]] = defaultdict(list)
    for row in flow_rows:
        for kind in row["faults"]:
            faults[kind].append(row["key"])
        for kind in row["artefacts"]:
            artefacts[kind].append(row["key"])
    return {
        "gwcheck_truth_version": TRUTH_VERSION,
        "scenario": asdict(s),
        "files": [
            {"path": p.name, "appliance": sim.appliances[k] if s.split else None, "packets": c}
            for k, (p, c) in enumerate(zip(files, frames_per_file))
        ],
        "packets": int(sum(frames_per_file)),
        "geneve_legs": sum((t.ingress is not None) + (t.egress is not None) for t in transits.values()),
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


def _rows(sim: Any, transits: dict[tuple[int, int, int], Transit]) -> dict[str, dict]:
    """Group the transits into flow rows and describe each."""
    grouped: dict[tuple, list[Transit]] = defaultdict(list)
    for transit in transits.values():
        leg = transit.leg
        flow = leg.flow
        ends = flow.ends
        sides = frozenset({(ends.client, ends.client_port), (ends.server, ends.server_port)})
        grouped[(leg.route.endpoint, _protocol(flow), sides)].append(transit)
    rows = {}
    for (endpoint, proto, _), members in grouped.items():
        members.sort(key=lambda t: t.leg.true_ns)
        client, client_port, server, server_port = _client_and_server(members)
        flows = {id(t.leg.flow): t.leg.flow for t in members}
        routes = [t.leg.route for t in members]
        faults = {f for flow in flows.values() for f in flow.faults}
        if any(t.state == "not_returned" for t in members):
            faults.add("not_returned")
        if "originated" in faults and not any(t.state == "originated" for t in members):
            faults.discard("originated")  # every packet fell in the capture's first window
        faults = sorted(faults)
        directions = [t.leg.flow.packets[t.leg.index] for t in members]
        key = format_flow_key(proto, client, client_port, server, server_port, vpce_id(sim.endpoint_ids[endpoint]))
        inner = [p.packet for p in directions]
        fwd = sum(1 for t, p in zip(members, directions) if _sender(t, p) == (client, client_port))
        rows[key] = {
            "routes": routes,
            "truth": {
                "key": key,
                "protocol": proto,
                "client": client,
                "client_port": client_port,
                "server": server,
                "server_port": server_port,
                "endpoint": vpce_id(sim.endpoint_ids[endpoint]),
                "appliances": sorted({sim.appliances[r.appliance] for r in routes}),
                "gwlb_nodes": sorted({sim.nodes[r.node] for r in routes}),
                "cookies": sorted({f"0x{r.cookie:08x}" for r in routes}),
                "fwd_packets": fwd,
                "rev_packets": len(members) - fwd,
                "returned": sum(t.state == "returned" for t in members),
                "not_returned": sum(t.state == "not_returned" for t in members),
                "in_flight": sum(t.state == "in_flight" for t in members),
                "over_mtu_packets": sum(len(p) > GWLB_MAX_INNER_BYTES for p in inner),
                "fragmented_legs": sum(t.egress.frames > 1 for t in members if t.egress is not None),
                "faults": faults,
                "artefacts": sorted({a for flow in flows.values() for a in flow.artefacts}),
            },
        }
    return rows


def _file_of(sim: Any, leg: Leg) -> int:
    return leg.appliance if sim.s.split else 0


def _file_edges(sim: Any, legs: list[Leg]) -> dict[int, tuple[int, int]]:
    """First and last written time of the Geneve legs of each capture file."""
    edges: dict[int, tuple[int, int]] = {}
    for leg in legs:
        if leg.route is None:
            continue
        k = _file_of(sim, leg)
        first, last = edges.get(k, (leg.written_ns, leg.written_ns))
        edges[k] = (min(first, leg.written_ns), max(last, leg.written_ns))
    return edges


def _sender(transit: Transit, packet: conv.InnerPacket) -> tuple[str, int]:
    ends = transit.leg.flow.ends
    if packet.direction == conv.CLIENT_TO_SERVER:
        return ends.client, ends.client_port
    return ends.server, ends.server_port


def _client_and_server(members: list[Transit]) -> tuple[str, int, str, int]:
    """The sender of a SYN, else the receiver of a SYN-ACK, else the sender of the first packet."""
    ends = members[0].leg.flow.ends
    by_direction = {conv.CLIENT_TO_SERVER: (ends.client, ends.client_port, ends.server, ends.server_port),
                    conv.SERVER_TO_CLIENT: (ends.server, ends.server_port, ends.client, ends.client_port)}
    packets = [t.leg.flow.packets[t.leg.index] for t in members]
    for p in packets:
        if p.tcp_flags & (fr.TCP_SYN | fr.TCP_ACK) == fr.TCP_SYN:
            return by_direction[p.direction]
    for p in packets:
        if p.tcp_flags & (fr.TCP_SYN | fr.TCP_ACK) == fr.TCP_SYN | fr.TCP_ACK:
            return by_direction[1 - p.direction]
    return by_direction[packets[0].direction]
