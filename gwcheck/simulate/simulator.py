"""Write what ``tcpdump -i eth0 -w x.pcap 'udp port 6081 or tcp port 80'`` on GWLB appliances would capture, and the truth of it.

Each inner packet becomes two legs on its appliance (shared/docs/gwlb.md): GWLB node -> appliance with the
three AWS options, and after the appliance's dwell time the return copy with the outer addresses swapped,
the UDP ports and Geneve header unchanged.  Faults from the scenario bend that picture flow by flow; the
truth says exactly what was written, after timestamp rounding.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..capture.writer import PcapngWriter, PcapWriter
from ..decode.ip import IPPROTO_TCP
from ..decode.link import ETHERTYPE_IPV4, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2
from . import conversations as conv
from . import frames as fr
from .scenario import Scenario, appliance_ip, gwlb_node_ip
from .truth import Leg, build_truth

INGRESS_TTL = 255  # GWLB's own legs (gwlb.md, "Outer headers")
EGRESS_TTL = 2  # what the reference appliance's egress legs carry (gwlb.md)
ATTACHMENT_ID = 0  # 0 in every real capture seen
MODIFIED_ATTACHMENT_ID = 0x1  # what a misbehaving appliance writes instead
NS_PER_US = 1000
NS_PER_S = 1_000_000_000
JUMBO_MSS = 8961  # a 9,001-byte VPC MTU less 40 bytes of headers
GSO_SEGMENTS = 4  # segments per GSO/GRO super-packet
APPLIANCE_MTU = 1500  # with outer_fragments, larger return legs are fragmented
IDLE_MARGIN_S = 30.0  # how far past the idle timeout a gap lasts
PROBE_RTT_NS = 150_000
HEALTH_CHECK_REQUEST = b"GET / HTTP/1.1\r\nHost: gwlb-health-check\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\r\n"
HEALTH_CHECK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class Route:
    """How packets of a flow travel: by which endpoint, GWLB node and appliance, with which cookie and port."""

    endpoint: int
    node: int
    appliance: int
    cookie: int
    sport: int


@dataclass
class Flow:
    """One inner flow as the simulator decided it, with the faults planned for it."""

    index: int
    protocol: str
    ends: conv.Endpoints
    start_ns: int
    route: Route
    packets: list[conv.InnerPacket] = field(default_factory=list)
    reverse: Route | None = None  # asymmetric: the reverse direction's own route
    changes: list[tuple[int, Route]] = field(default_factory=list)  # from packet k on, both directions
    one_sided: bool = False
    originated: bool = False
    egress_options: bytes | None = None  # options the appliance returns instead of the flow's
    fragment_mtu: int | None = None
    faults: list[str] = field(default_factory=list)
    artefacts: list[str] = field(default_factory=list)

    def route_of(self, k: int, direction: int) -> Route:
        route = self.route
        for start, changed in self.changes:
            if k >= start:
                route = changed
        if direction == conv.SERVER_TO_CLIENT and self.reverse is not None:
            return self.reverse
        return route


class Simulator:
    """Decide flows and legs for a scenario, then write captures and truth."""

    def __init__(self, scenario: Scenario) -> None:
        scenario.validate()
        self.s = scenario
        self.rng = np.random.default_rng(scenario.seed)
        self.endpoint_ids = [int(x) for x in self.rng.integers(1, 2**60, scenario.endpoints, dtype=np.int64)]
        self.appliances = [appliance_ip(a) for a in range(scenario.appliances)]
        self.nodes = [gwlb_node_ip(n) for n in range(scenario.gwlb_nodes)]
        weights = np.asarray(scenario.weights if scenario.weights is not None else [1.0] * scenario.appliances, float)
        self.appliance_share = weights / weights.sum()
        medians = scenario.latency_median_us
        self.latency_median_us = np.asarray(medians * scenario.appliances if len(medians) == 1 else medians, float)
        self.flows: list[Flow] = []
        self._used_cookies: set[int] = set()

    # -- flows -------------------------------------------------------------------------------------------
    def _cookie(self) -> int:
        while True:
            cookie = int(self.rng.integers(1, 2**32))
            if cookie not in self._used_cookies:
                self._used_cookies.add(cookie)
                return cookie

    def _route(self, endpoint: int | None = None, appliance: int | None = None) -> Route:
        rng, s = self.rng, self.s
        endpoint = int(rng.integers(s.endpoints)) if endpoint is None else endpoint
        if appliance is None:
            appliance = int(rng.choice(s.appliances, p=self.appliance_share))
        return Route(endpoint, endpoint % s.gwlb_nodes, appliance, self._cookie(), int(rng.integers(1024, 65536)))

    def _other_appliance(self, appliance: int) -> int:
        return (appliance + 1 + int(self.rng.integers(self.s.appliances - 1))) % self.s.appliances

    def make_flows(self) -> None:
        s, rng = self.s, self.rng
        kinds = list(s.protocol_mix)
        mix = np.asarray([s.protocol_mix[k] for k in kinds], float)
        plan = (
            ["asymmetric"] * s.asymmetric + ["one_sided"] * s.one_sided + ["moved"] * s.moved
            + ["stale_cookie"] * s.stale_cookie + ["modified_options"] * s.modified_options + ["idle_gap"] * s.idle_gap
            + ["over_mtu"] * s.over_mtu + ["outer_fragments"] * s.outer_fragments + ["gso"] * s.gso
        )
        plan += [""] * (s.flows - len(plan))
        order = rng.permutation(len(plan))
        for i in range(s.flows):
            fault = plan[order[i]]
            # Faults that need a long TCP conversation get one; a move needs both directions before and after.
            kind = "tcp" if fault in ("over_mtu", "outer_fragments", "gso", "stale_cookie", "moved") else kinds[int(rng.choice(len(kinds), p=mix / mix.sum()))]
            flow = Flow(
                index=i,
                protocol=kind,
                ends=self._endpoints(i, kind, bool(rng.random() < s.ipv6_share)),
                start_ns=int(rng.uniform(0, s.duration_s * 0.8) * NS_PER_S),
                route=self._route(),
            )
            flow.packets = self._conversation(kind, flow.ends, fault)
            if fault:
                self._plan_fault(flow, fault)
            self.flows.append(flow)
        for k in range(s.originated):
            self.flows.append(self._originated_flow(s.flows + k))

    def _plan_fault(self, flow: Flow, fault: str) -> None:
        rng, s = self.rng, self.s
        middle = max(1, len(flow.packets) // 2)
        if fault in ("gso",):
            flow.artefacts.append(fault)
            return
        flow.faults.append(fault)
        if fault == "asymmetric":
            endpoint = (flow.route.endpoint + 1 + int(rng.integers(s.endpoints - 1))) % s.endpoints
            flow.reverse = self._route(endpoint, self._other_appliance(flow.route.appliance))
        elif fault == "one_sided":
            flow.one_sided = True
        elif fault == "moved":
            r = flow.route
            switch = _after_handshake(flow.packets)
            flow.changes.append((switch, Route(r.endpoint, r.node, self._other_appliance(r.appliance), r.cookie, r.sport)))
        elif fault == "stale_cookie":
            self._make_stale(flow)
        elif fault == "modified_options":
            r = flow.route
            flow.egress_options = fr.aws_options(self.endpoint_ids[r.endpoint], MODIFIED_ATTACHMENT_ID, r.cookie)
        elif fault == "idle_gap":
            timeout = s.tcp_idle_timeout_s if flow.protocol == "tcp" else s.udp_idle_timeout_s
            gap = int((timeout + IDLE_MARGIN_S) * NS_PER_S)
            flow.packets = flow.packets[:middle] + [
                conv.InnerPacket(p.offset_ns + gap, p.direction, p.packet, p.tcp_flags) for p in flow.packets[middle:]
            ]
            moved = bool(rng.random() < 0.5)
            appliance = self._other_appliance(flow.route.appliance) if moved else flow.route.appliance
            flow.changes.append((middle, self._route(flow.route.endpoint, appliance)))
        elif fault == "outer_fragments":
            flow.fragment_mtu = APPLIANCE_MTU

    def _make_stale(self, flow: Flow) -> None:
        """Put an older flow with the same 5-tuple before ``flow``; the appliance answers ``flow`` with its options."""
        old = Flow(
            index=flow.index,
            protocol=flow.protocol,
            ends=flow.ends,
            start_ns=flow.start_ns,
            route=Route(flow.route.endpoint, flow.route.node, flow.route.appliance, self._cookie(), flow.route.sport),
            packets=self._conversation(flow.protocol, flow.ends, ""),
        )
        gap = int(self.rng.uniform(0.2, 1.0) * NS_PER_S)
        flow.start_ns = old.start_ns + old.packets[-1].offset_ns + gap
        flow.egress_options = fr.aws_options(self.endpoint_ids[old.route.endpoint], ATTACHMENT_ID, old.route.cookie)
        self.flows.append(old)

    def _originated_flow(self, index: int) -> Flow:
        kind = "udp"
        ends = self._endpoints(index, kind, False)
        flow = Flow(index, kind, ends, int(self.rng.uniform(0, self.s.duration_s * 0.8) * NS_PER_S), self._route())
        flow.packets = [p for p in self._conversation(kind, ends, "") if p.direction == conv.CLIENT_TO_SERVER]
        flow.originated = True
        flow.faults.append("originated")
        return flow

    def _endpoints(self, i: int, kind: str, v6: bool) -> conv.Endpoints:
        rng = self.rng
        if v6:
            client = str(ipaddress.IPv6Address(0x2001_0DB8_0001 << 80 | (i + 1)))
            server = str(ipaddress.IPv6Address(0x2001_0DB8_0002 << 80 | int(rng.integers(1, 64))))
        else:
            client = f"10.1.{(i + 1) >> 8 & 0xFF}.{(i + 1) & 0xFF}"
            server = f"10.2.0.{int(rng.integers(1, 64))}"
        server_port = {"tcp": int(rng.choice(conv.TCP_SERVER_PORTS)), "udp": conv.DNS_PORT, "quic": conv.QUIC_PORT}.get(kind, 0)
        client_port = int(rng.integers(1024, 65536)) if kind != "icmp" else 0
        return conv.Endpoints(client, server, client_port, server_port)

    def _conversation(self, kind: str, ends: conv.Endpoints, fault: str) -> list[conv.InnerPacket]:
        rng = self.rng
        if kind == "tcp":
            exchanges = int(rng.integers(1, 4))
            if fault == "over_mtu":
                return conv.tcp_connection(rng, ends, exchanges=exchanges, mss=JUMBO_MSS, min_response_segments=1)
            if fault == "gso":
                return conv.tcp_connection(rng, ends, exchanges=exchanges, segment_bytes=GSO_SEGMENTS * conv.TCP_MSS, min_response_segments=1)
            if fault == "outer_fragments":
                return conv.tcp_connection(rng, ends, exchanges=exchanges, min_response_segments=1)
            return conv.tcp_connection(rng, ends, exchanges=exchanges)
        if kind == "udp":
            return conv.udp_exchange(rng, ends)
        if kind == "quic":
            return conv.udp_exchange(rng, ends, quic=True, rounds=int(rng.integers(2, 6)))
        return conv.icmp_echo(rng, ends, count=int(rng.integers(1, 4)))

    # -- legs --------------------------------------------------------------------------------------------
    def make_legs(self) -> list[Leg]:
        """Every leg the appliances capture, with true and written times; health checks included."""
        s, rng = self.s, self.rng
        transits = []  # (flow, packet index, route, ingress?, egress?)
        for flow in self.flows:
            for k, packet in enumerate(flow.packets):
                if flow.one_sided and packet.direction == conv.SERVER_TO_CLIENT:
                    continue
                route = flow.route_of(k, packet.direction)
                transits.append((flow, k, route, not flow.originated, True))
        n = len(transits)
        t_in = np.fromiter((s.start_ns + f.start_ns + f.packets[k].offset_ns for f, k, *_ in transits), np.int64, n)
        appliance = np.fromiter((r.appliance for _, _, r, *_ in transits), np.int64, n)
        endpoint = np.fromiter((r.endpoint for _, _, r, *_ in transits), np.int64, n)
        dwell = np.maximum(rng.lognormal(np.log(self.latency_median_us[appliance] * NS_PER_US), s.latency_sigma), 1).astype(np.int64)
        returned = np.ones(n, bool)
        if s.not_returned_rate > 0:
            eligible = np.fromiter((not f.originated for f, *_ in transits), bool, n)
            if s.not_returned_endpoint is not None:
                eligible &= endpoint == s.not_returned_endpoint
            returned &= ~(eligible & (rng.random(n) < s.not_returned_rate))
        ingress = np.fromiter((i for *_, i, _ in transits), bool, n)
        if n and s.endpoint_setup_ms > 0:
            pair = appliance * s.endpoints + endpoint
            order = np.lexsort((t_in, pair))
            first = order[np.r_[True, pair[order][1:] != pair[order][:-1]]]
            dwell[first] += int(s.endpoint_setup_ms * 1e6)
        offsets = np.zeros(s.appliances, np.int64)
        if s.split and s.clock_offsets_ms:
            offsets[:] = (np.asarray(s.clock_offsets_ms) * 1e6).astype(np.int64)
        legs: list[Leg] = []
        for j, (flow, k, route, _, _) in enumerate(transits):
            clock = int(offsets[route.appliance])
            if ingress[j]:
                legs.append(Leg(flow, k, route, False, int(t_in[j]), self._written(int(t_in[j]) + clock)))
            if returned[j]:
                t_out = int(t_in[j] + dwell[j])
                legs.append(Leg(flow, k, route, True, t_out, self._written(t_out + clock)))
        legs += self._health_check_legs(offsets)
        return legs

    def _written(self, ts_ns: int) -> int:
        """The timestamp as the capture file stores it: microseconds for pcap, nanoseconds otherwise."""
        if self.s.format == "pcap":
            return ts_ns // NS_PER_US * NS_PER_US
        return ts_ns

    def _health_check_legs(self, offsets: np.ndarray) -> list[Leg]:
        s, rng = self.s, self.rng
        if s.health_check_interval_s <= 0:
            return []
        legs = []
        interval = int(s.health_check_interval_s * NS_PER_S)
        for node in range(s.gwlb_nodes):
            for appliance in range(s.appliances):
                t = s.start_ns + int(rng.integers(0, interval))
                while t < s.start_ns + int(s.duration_s * NS_PER_S):
                    answered = appliance != s.failing_appliance and not rng.random() < s.health_check_unanswered
                    probe = HealthProbe(node, appliance, int(rng.integers(1024, 65536)), int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32)), answered)
                    clock = int(offsets[appliance])
                    for step, (when, _) in enumerate(probe.steps()):
                        legs.append(Leg(probe, step, None, False, t + when, self._written(t + when + clock)))
                    t += interval
        return legs

    # -- frames ------------------------------------------------------------------------------------------
    def _frame(self, leg: Leg, ip_ident: list[int]) -> list[bytes]:
        """The frames of one leg: one, or several when the appliance fragments it."""
        if isinstance(leg.flow, HealthProbe):
            outer = leg.flow.packet(leg.index, self.nodes, self.appliances, self.s.health_check_port)
            return [self._link(outer, leg.flow.appliance, leg.flow.node, leg.flow.is_from_node(leg.index))]
        flow, route = leg.flow, leg.route
        packet = flow.packets[leg.index].packet
        node, appliance = self.nodes[route.node], self.appliances[route.appliance]
        options = fr.aws_options(self.endpoint_ids[route.endpoint], ATTACHMENT_ID, route.cookie)
        if not leg.egress:
            outer = fr.gwlb_encapsulate(packet, node, appliance, route.sport, options, ttl=INGRESS_TTL, ident=0)
            return [self._link(outer, route.appliance, route.node, True)]
        ident = ip_ident[route.appliance]
        ip_ident[route.appliance] = (ident + 1) & 0xFFFF
        inner = _route_packet(packet) if self.s.appliance_mode == "route" else packet
        outer = fr.gwlb_encapsulate(
            inner, appliance, node, route.sport, flow.egress_options or options, ttl=EGRESS_TTL, ident=ident, udp_checksum=False
        )
        pieces = fr.fragment_ipv4(outer, flow.fragment_mtu) if flow.fragment_mtu else [outer]
        return [self._link(piece, route.appliance, route.node, False) for piece in pieces]

    def _link(self, outer: bytes, appliance: int, node: int, from_node: bool) -> bytes:
        if self.s.link == "sll2":
            return fr.linux_sll2(outer, ETHERTYPE_IPV4, packet_type=0 if from_node else 4)
        vlans = (self.s.vlan_id,) if self.s.link == "vlan" else ()
        appliance_mac, node_mac = b"\x02\0\0\0\1" + bytes([appliance]), b"\x02\0\0\0\2" + bytes([node])
        src, dst = (node_mac, appliance_mac) if from_node else (appliance_mac, node_mac)
        return fr.ethernet(outer, ETHERTYPE_IPV4, dst=dst, src=src, vlans=vlans)

    # -- output ------------------------------------------------------------------------------------------
    def write(self, output: str | os.PathLike) -> dict:
        """Write the captures and ``<stem>.truth.json`` beside them; return the truth."""
        self.make_flows()
        legs = self.make_legs()
        output = Path(output)
        files = self._file_names(output)
        appliance_of = [leg.appliance for leg in legs]
        file_of = appliance_of if self.s.split else [0] * len(legs)
        order = sorted(range(len(legs)), key=lambda j: (file_of[j], legs[j].written_ns, legs[j].egress))
        ip_ident = [0] * self.s.appliances
        frames_per_file = [0] * len(files)
        for k, path in enumerate(files):
            with self._writer(path) as writer:
                for j in order:
                    if file_of[j] != k:
                        continue
                    leg = legs[j]
                    frames = self._frame(leg, ip_ident)
                    leg.frames = len(frames)
                    leg.wire_bytes = sum(len(f) for f in frames)
                    for frame in frames:
                        writer.write(leg.written_ns, frame)
                    frames_per_file[k] += len(frames)
        truth = build_truth(self, legs, files, frames_per_file)
        truth_path_for(output).write_text(json.dumps(truth, indent=1) + "\n")
        return truth

    def _file_names(self, output: Path) -> list[Path]:
        if not self.s.split:
            return [output]
        return [output.with_name(f"{output.stem}-appliance{a + 1}{output.suffix}") for a in range(self.s.appliances)]

    def _writer(self, path: Path) -> PcapWriter | PcapngWriter:
        link = LINKTYPE_LINUX_SLL2 if self.s.link == "sll2" else LINKTYPE_ETHERNET
        if self.s.format == "pcapng":
            writer = PcapngWriter(path)
            writer.add_interface(link, "any" if self.s.link == "sll2" else "eth0", tsresol=9)
            return writer
        return PcapWriter(path, link_type=link, nanosecond=self.s.format == "pcap-ns")


@dataclass
class HealthProbe:
    """One GWLB health check: TCP to the appliance, an HTTP GET, 200 OK, then the appliance's reset (gwlb.md)."""

    node: int
    appliance: int
    sport: int
    node_isn: int
    appliance_isn: int
    answered: bool

    def steps(self) -> list[tuple[int, str]]:
        """(offset, what) for each packet of the probe."""
        if not self.answered:
            return [(0, "syn"), (NS_PER_S, "syn")]  # one retransmission before GWLB gives up
        r = PROBE_RTT_NS
        return [(0, "syn"), (r, "synack"), (2 * r, "ack"), (2 * r + 1000, "get"), (3 * r, "ok"), (3 * r + 1000, "rst")]

    def is_from_node(self, step: int) -> bool:
        return self.steps()[step][1] in ("syn", "ack", "get")

    def packet(self, step: int, nodes: list[str], appliances: list[str], port: int) -> bytes:
        node, appliance = nodes[self.node], appliances[self.appliance]
        what = self.steps()[step][1]
        n_seq, a_seq = self.node_isn, self.appliance_isn
        request, response = len(HEALTH_CHECK_REQUEST), len(HEALTH_CHECK_RESPONSE)
        if what == "syn":
            segment = fr.tcp(node, appliance, self.sport, port, n_seq, 0, fr.TCP_SYN, mss=8961)
        elif what == "synack":
            segment = fr.tcp(appliance, node, port, self.sport, a_seq, n_seq + 1, fr.TCP_SYN | fr.TCP_ACK, mss=8961)
        elif what == "ack":
            segment = fr.tcp(node, appliance, self.sport, port, n_seq + 1, a_seq + 1, fr.TCP_ACK)
        elif what == "get":
            segment = fr.tcp(node, appliance, self.sport, port, n_seq + 1, a_seq + 1, fr.TCP_PSH | fr.TCP_ACK, HEALTH_CHECK_REQUEST)
        elif what == "ok":
            segment = fr.tcp(appliance, node, port, self.sport, a_seq + 1, n_seq + 1 + request, fr.TCP_PSH | fr.TCP_ACK, HEALTH_CHECK_RESPONSE)
        else:
            segment = fr.tcp(appliance, node, port, self.sport, a_seq + 1 + response, 0, fr.TCP_RST)
        src, dst = (node, appliance) if self.is_from_node(step) else (appliance, node)
        return fr.ipv4(src, dst, IPPROTO_TCP, segment, ttl=64 if src == appliance else 255, df=True)


def _after_handshake(packets: list[conv.InnerPacket]) -> int:
    """The index after the first packet of each direction: both directions have packets on either side."""
    seen: set[int] = set()
    for k, packet in enumerate(packets):
        seen.add(packet.direction)
        if len(seen) == 2:
            return k + 1
    return max(1, len(packets) // 2)


def _route_packet(packet: bytes) -> bytes:
    """The packet as a routing appliance forwards it: TTL or hop limit one lower, IPv4 checksum recomputed."""
    if packet[0] >> 4 == 6:
        return packet[:7] + bytes([max(packet[7] - 1, 0)]) + packet[8:]
    header_len = (packet[0] & 0x0F) * 4
    header = bytearray(packet[:header_len])
    header[8] = max(header[8] - 1, 0)
    header[10:12] = b"\0\0"
    header[10:12] = fr.internet_checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + packet[header_len:]


def truth_path_for(output: str | os.PathLike) -> Path:
    output = Path(output)
    return output.with_name(output.stem + ".truth.json")


def simulate(scenario: Scenario, output: str | os.PathLike) -> dict:
    """Write the captures of ``scenario`` to ``output`` (or one per appliance beside it) and return the truth."""
    return Simulator(scenario).write(output)
