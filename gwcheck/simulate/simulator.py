"""Write what ``tcpdump -i eth0 -w x.pcap 'udp port 6081 or tcp port 80'`` on GWLB appliances would capture, and the truth of it.

Each inner packet becomes two legs on its appliance (shared/docs/gwlb.md): GWLB node -> appliance with the
three AWS options, and after the appliance's dwell time the return copy with the outer addresses swapped,
the UDP ports and Geneve header unchanged.  Faults from the scenario bend that picture flow by flow; the
truth says exactly what was written, after timestamp rounding.

The simulator decides in three steps: flows (conversations and faults, one Python object each), transits
(every crossing of an appliance by an inner packet, as numpy columns), and legs (the packets written, sorted
by file and time).  Then it packs the frames: the outer headers of many legs at once with numpy
(``frames.EncapsulationTable``), and one concatenation and one write per leg.
"""

from __future__ import annotations

import contextlib
import gc
import ipaddress
import itertools
import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..capture.writer import PcapngWriter, PcapWriter
from ..decode.ip import IPPROTO_TCP
from ..decode.link import ETHERTYPE_IPV4, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2
from ..schema import NS_PER_MS, NS_PER_SECOND, NS_PER_US
from . import conversations as conv
from . import frames as fr
from .draws import Draws
from .scenario import FLOW_FAULTS, Scenario, appliance_ip, gwlb_node_ip
from .truth import Transits, build_truth, dumps_truth

INGRESS_TTL = 255  # GWLB's own legs (gwlb.md, "Outer headers")
EGRESS_TTL = 2  # what the reference appliance's egress legs carry (gwlb.md)
ATTACHMENT_ID = 0  # 0 in every real capture seen
MODIFIED_ATTACHMENT_ID = 0x1  # what a misbehaving appliance writes instead
FLOW_START_SHARE = 0.8  # flows start within this share of the duration, so most end inside it
EPHEMERAL_PORTS = (1024, 65536)  # [low, high) of source ports: clients' and GWLB's
CLIENT_IPV4_BASE = int(ipaddress.IPv4Address("10.64.0.0"))  # clients 10.64.0.1 ... (a /10: 4 million flows)
CLIENT_IPV6_BASE = 0x2001_0DB8_0001 << 80
SERVER_IPV4_BASE = int(ipaddress.IPv4Address("10.2.0.0"))
SERVER_IPV6_BASE = 0x2001_0DB8_0002 << 80
SERVERS = (1, 64)  # [low, high) of the servers' host numbers
JUMBO_MSS = 8961  # a 9,001-byte VPC MTU less 40 bytes of headers
GSO_SEGMENTS = 4  # segments per GSO/GRO super-packet
APPLIANCE_MTU = 1500  # with outer_fragments, larger return legs are fragmented
LEGS_PER_CHUNK = 1 << 14  # legs whose outer headers are packed at once
IDLE_MARGIN_S = 30.0  # how far past the idle timeout a gap lasts
STALE_GAP_S = (0.2, 1.0)  # [low, high) of the pause between an old flow and the new one reusing its 5-tuple
PROBE_RTT_NS = 150_000
PROBE_RETRANSMIT_NS = NS_PER_SECOND  # an unanswered probe's SYN is sent once more after this
PROBE_STEP_NS = 1000  # between two packets one side sends back to back
PROBE_MSS = 8961
PROBE_NODE_TTL = 255
PROBE_APPLIANCE_TTL = 64
HEALTH_CHECK_REQUEST = b"GET / HTTP/1.1\r\nHost: gwlb-health-check\r\nUser-Agent: ELB-HealthChecker/2.0\r\n\r\n"
HEALTH_CHECK_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
SLL2_INCOMING, SLL2_OUTGOING = 0, 4  # Linux packet types: to this host, sent by it
MAC_APPLIANCE, MAC_NODE = b"\x02\0\0\0\1", b"\x02\0\0\0\2"  # locally administered; the last byte is the index
# Faults that need a long TCP conversation; a move needs both directions before and after.
TCP_FAULTS = ("over_mtu", "outer_fragments", "gso", "stale_cookie", "moved")
ARTEFACTS = ("gso",)  # planned like faults, reported apart: they are not faults (gwlb.md)


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
    packets: conv.Conversation = field(default_factory=conv.Conversation)
    reverse: Route | None = None  # asymmetric: the reverse direction's own route
    changes: list[tuple[int, Route]] = field(default_factory=list)  # from packet k on, both directions
    one_sided: bool = False
    originated: bool = False
    egress_options: bytes | None = None  # options the appliance returns instead of the flow's
    fragment_mtu: int | None = None
    faults: list[str] = field(default_factory=list)
    artefacts: list[str] = field(default_factory=list)


class FlowPath(NamedTuple):
    """One route of one flow: the packets whose outer headers are the same."""

    flow: Flow
    route: Route


class Simulator:
    """Decide flows, transits and legs for a scenario, then write captures and truth."""

    def __init__(self, scenario: Scenario) -> None:
        scenario.validate()
        self.s = scenario
        self.rng = np.random.default_rng(scenario.seed)
        self.draws = Draws(self.rng)
        self.endpoint_ids = [int(x) for x in self.rng.integers(1, 2**60, scenario.endpoints, dtype=np.int64)]
        self.appliances = [appliance_ip(a) for a in range(scenario.appliances)]
        self.nodes = [gwlb_node_ip(n) for n in range(scenario.gwlb_nodes)]
        weights = scenario.weights if scenario.weights is not None else [1.0] * scenario.appliances
        self._pick_appliance = self.draws.weighted(weights)
        medians = scenario.latency_median_us
        self.latency_median_us = np.asarray(medians * scenario.appliances if len(medians) == 1 else medians, float)
        # The link-layer header between each appliance and GWLB node, by direction.
        self.links = {
            (a, n, from_node): self._link(a, n, from_node)
            for a in range(scenario.appliances) for n in range(scenario.gwlb_nodes) for from_node in (False, True)
        }
        self.flows: list[Flow] = []
        self.paths: list[FlowPath] = []
        self.probes: list[HealthProbe] = []
        self._used_cookies: set[int] = set()

    # -- flows -------------------------------------------------------------------------------------------
    def _cookie(self) -> int:
        while True:
            cookie = self.draws.integer(1, 1 << 32)
            if cookie not in self._used_cookies:
                self._used_cookies.add(cookie)
                return cookie

    def _route(self, endpoint: int | None = None, appliance: int | None = None) -> Route:
        s, draws = self.s, self.draws
        endpoint = draws.integer(0, s.endpoints) if endpoint is None else endpoint
        appliance = self._pick_appliance() if appliance is None else appliance
        return Route(endpoint, endpoint % s.gwlb_nodes, appliance, self._cookie(), draws.integer(*EPHEMERAL_PORTS))

    def _other_appliance(self, appliance: int) -> int:
        return (appliance + 1 + self.draws.integer(0, self.s.appliances - 1)) % self.s.appliances

    def _start_ns(self) -> int:
        return int(self.draws.uniform(0.0, self.s.duration_s * FLOW_START_SHARE) * NS_PER_SECOND)

    def make_flows(self) -> None:
        s, draws = self.s, self.draws
        kinds = list(s.protocol_mix)
        pick_kind = draws.weighted([s.protocol_mix[k] for k in kinds])
        plan = [fault for fault in FLOW_FAULTS for _ in range(getattr(s, fault))]
        plan += [""] * (s.flows - len(plan))
        order = self.rng.permutation(len(plan))
        for i in range(s.flows):
            fault = plan[order[i]]
            kind = "tcp" if fault in TCP_FAULTS else kinds[pick_kind()]
            ends = self._endpoints(i, kind, draws.chance(s.ipv6_share))
            flow = Flow(index=i, protocol=kind, ends=ends, start_ns=self._start_ns(), route=self._route())
            flow.packets = self._conversation(kind, flow.ends, fault)
            if fault:
                self._plan_fault(flow, fault)
            self.flows.append(flow)
        for k in range(s.originated):
            self.flows.append(self._originated_flow(s.flows + k))

    def _plan_fault(self, flow: Flow, fault: str) -> None:
        s = self.s
        if fault in ARTEFACTS:
            flow.artefacts.append(fault)
            return
        flow.faults.append(fault)
        if fault == "asymmetric":
            endpoint = (flow.route.endpoint + 1 + self.draws.integer(0, s.endpoints - 1)) % s.endpoints
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
            self._make_idle_gap(flow)
        elif fault == "outer_fragments":
            flow.fragment_mtu = APPLIANCE_MTU

    def _make_idle_gap(self, flow: Flow) -> None:
        """Silence the flow past the idle timeout before a client packet half way; GWLB then routes it as new."""
        timeout = self.s.tcp_idle_timeout_s if flow.protocol == "tcp" else self.s.udp_idle_timeout_s
        gap = int((timeout + IDLE_MARGIN_S) * NS_PER_SECOND)
        resume = _next_client_packet(flow.packets, len(flow.packets) // 2)
        flow.packets.offset_ns[resume:] = [offset + gap for offset in flow.packets.offset_ns[resume:]]
        moved = self.draws.chance(0.5)
        appliance = self._other_appliance(flow.route.appliance) if moved else flow.route.appliance
        flow.changes.append((resume, self._route(flow.route.endpoint, appliance)))

    def _make_stale(self, flow: Flow) -> None:
        """Put an older flow with the same 5-tuple before ``flow``; the appliance answers ``flow`` with its options."""
        r = flow.route
        old = Flow(
            index=flow.index,
            protocol=flow.protocol,
            ends=flow.ends,
            start_ns=flow.start_ns,
            route=Route(r.endpoint, r.node, r.appliance, self._cookie(), r.sport),
            packets=self._conversation(flow.protocol, flow.ends, ""),
        )
        gap = int(self.draws.uniform(*STALE_GAP_S) * NS_PER_SECOND)
        flow.start_ns = old.start_ns + old.packets.offset_ns[-1] + gap
        flow.egress_options = fr.aws_options(self.endpoint_ids[old.route.endpoint], ATTACHMENT_ID, old.route.cookie)
        self.flows.append(old)

    def _originated_flow(self, index: int) -> Flow:
        kind = "udp"
        ends = self._endpoints(index, kind, False)
        flow = Flow(index, kind, ends, self._start_ns(), self._route())
        packets = self._conversation(kind, ends, "")
        flow.packets = packets.select([k for k, d in enumerate(packets.direction) if d == conv.CLIENT_TO_SERVER])
        flow.originated = True
        flow.faults.append("originated")
        return flow

    def _endpoints(self, i: int, kind: str, v6: bool) -> conv.Endpoints:
        """Client ``i`` (each flow has its own) and a server drawn from a few, with ports by protocol."""
        draws = self.draws
        server = draws.integer(*SERVERS)
        if v6:
            client_ip, server_ip = _ip_text(socket.AF_INET6, CLIENT_IPV6_BASE + i + 1), _ip_text(socket.AF_INET6, SERVER_IPV6_BASE + server)
        else:
            client_ip, server_ip = _ip_text(socket.AF_INET, CLIENT_IPV4_BASE + i + 1), _ip_text(socket.AF_INET, SERVER_IPV4_BASE + server)
        if kind == "tcp":
            server_port = draws.choice(conv.TCP_SERVER_PORTS)
        else:
            server_port = {"udp": conv.DNS_PORT, "quic": conv.QUIC_PORT}.get(kind, 0)
        client_port = draws.integer(*EPHEMERAL_PORTS) if kind != "icmp" else 0
        return conv.Endpoints(client_ip, server_ip, client_port, server_port)

    def _conversation(self, kind: str, ends: conv.Endpoints, fault: str) -> conv.Conversation:
        draws = self.draws
        rounds = 2 if fault == "idle_gap" else 1  # a gap needs a request on either side of it
        if kind == "tcp":
            exchanges = draws.integer(1, 4)
            if fault == "over_mtu":
                return conv.tcp_connection(draws, ends, exchanges=exchanges, mss=JUMBO_MSS, min_response_segments=1)
            if fault == "gso":
                return conv.tcp_connection(draws, ends, exchanges=exchanges, segment_bytes=GSO_SEGMENTS * conv.TCP_MSS, min_response_segments=1)
            if fault == "outer_fragments":
                return conv.tcp_connection(draws, ends, exchanges=exchanges, min_response_segments=1)
            return conv.tcp_connection(draws, ends, exchanges=exchanges)
        if kind == "udp":
            return conv.udp_exchange(draws, ends, rounds=rounds)
        if kind == "quic":
            return conv.udp_exchange(draws, ends, quic=True, rounds=draws.integer(2, 6))
        return conv.icmp_echo(draws, ends, count=draws.integer(rounds, 4))

    # -- transits ----------------------------------------------------------------------------------------
    def make_transits(self) -> Transits:
        """Every crossing of an appliance by an inner packet, with its true and written leg times."""
        s, rng, flows = self.s, self.rng, self.flows
        counts = np.fromiter((len(flow.packets) for flow in flows), np.int64, len(flows))
        total = int(counts.sum())

        def column(name: str) -> np.ndarray:
            return np.fromiter(itertools.chain.from_iterable(getattr(flow.packets, name) for flow in flows), np.int64, total)

        direction = column("direction")
        path, keep = self._assign_paths(np.cumsum(counts) - counts, counts, direction)
        inner = list(itertools.chain.from_iterable(flow.packets.packet for flow in flows))
        if not keep.all():
            inner = [inner[k] for k in np.flatnonzero(keep).tolist()]
        flow_of = np.repeat(np.arange(len(flows)), counts)[keep]
        start_ns = np.fromiter((flow.start_ns for flow in flows), np.int64, len(flows))
        t_in = s.start_ns + start_ns[flow_of] + column("offset_ns")[keep]
        n = len(path)
        routes = np.array([(p.route.appliance, p.route.node, p.route.endpoint) for p in self.paths], np.int64).reshape(-1, 3)
        appliance, node, endpoint = routes[path].T
        originated = np.array([flow.originated for flow in flows], bool)[flow_of]
        dwell = np.maximum(rng.lognormal(np.log(self.latency_median_us[appliance] * NS_PER_US), s.latency_sigma), 1).astype(np.int64)
        if n and s.endpoint_setup_ms > 0:
            pair = appliance * s.endpoints + endpoint
            order = np.lexsort((t_in, pair))
            first = order[np.r_[True, pair[order][1:] != pair[order][:-1]]]
            dwell[first] += int(s.endpoint_setup_ms * NS_PER_MS)
        returned = np.ones(n, bool)
        if s.not_returned_rate > 0:
            eligible = ~originated
            if s.not_returned_endpoint is not None:
                eligible &= endpoint == s.not_returned_endpoint
            returned &= ~(eligible & (rng.random(n) < s.not_returned_rate))
        clock = self._clock_offsets_ns()[appliance]
        t_out = t_in + dwell
        return Transits(
            flow=flow_of,
            path=path,
            appliance=appliance,
            node=node,
            endpoint=endpoint,
            direction=direction[keep],
            tcp_flags=column("tcp_flags")[keep],
            inner=inner,
            inner_bytes=np.fromiter(map(len, inner), np.int64, n),
            ingress=~originated,
            egress=returned,
            ingress_ns=t_in,
            egress_ns=t_out,
            ingress_written_ns=self._written(t_in + clock),
            egress_written_ns=self._written(t_out + clock),
            egress_frames=np.ones(n, np.int64),
        )

    def _assign_paths(self, first: np.ndarray, counts: np.ndarray, direction: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The path of each packet that reaches an appliance, and which packets do; sets ``self.paths``.

        ``first`` and ``counts`` locate each flow's packets, ``direction`` holds every packet's direction.
        """
        candidates = [FlowPath(flow, flow.route) for flow in self.flows]
        path = np.repeat(np.arange(len(self.flows)), counts)
        keep = np.ones(len(path), bool)
        for f, flow in enumerate(self.flows):
            if not flow.changes and flow.reverse is None and not flow.one_sided:
                continue
            packets = slice(first[f], first[f] + counts[f])
            for start, route in flow.changes:  # from packet ``start`` on, both directions
                path[first[f] + start : packets.stop] = len(candidates)
                candidates.append(FlowPath(flow, route))
            reverse = direction[packets] == conv.SERVER_TO_CLIENT
            if flow.reverse is not None:
                path[packets][reverse] = len(candidates)
                candidates.append(FlowPath(flow, flow.reverse))
            if flow.one_sided:
                keep[packets] &= ~reverse
        used, path = np.unique(path[keep], return_inverse=True)
        self.paths = [candidates[p] for p in used.tolist()]
        return path, keep

    def _clock_offsets_ns(self) -> np.ndarray:
        offsets = np.zeros(self.s.appliances, np.int64)
        if self.s.split and self.s.clock_offsets_ms:
            offsets[:] = np.round(np.asarray(self.s.clock_offsets_ms) * NS_PER_MS).astype(np.int64)
        return offsets

    def _written(self, ts_ns: np.ndarray) -> np.ndarray:
        """Timestamps as the capture file stores them: microseconds for pcap, nanoseconds otherwise."""
        if self.s.format == "pcap":
            return ts_ns // NS_PER_US * NS_PER_US
        return ts_ns

    def make_probes(self) -> list[HealthProbe]:
        """GWLB's health checks: from every node to every appliance, each interval over the duration."""
        s, draws = self.s, self.draws
        if s.health_check_interval_s <= 0:
            return []
        probes = []
        interval = int(s.health_check_interval_s * NS_PER_SECOND)
        end = s.start_ns + int(s.duration_s * NS_PER_SECOND)
        for node in range(s.gwlb_nodes):
            for appliance in range(s.appliances):
                t = s.start_ns + draws.integer(0, interval)
                while t < end:
                    answered = appliance != s.failing_appliance and not draws.chance(s.health_check_unanswered)
                    sport, node_isn, appliance_isn = draws.integer(*EPHEMERAL_PORTS), draws.integer(0, 1 << 32), draws.integer(0, 1 << 32)
                    probes.append(HealthProbe(t, node, appliance, sport, node_isn, appliance_isn, answered))
                    t += interval
        return probes

    # -- legs and frames ---------------------------------------------------------------------------------
    def _legs(self, t: Transits) -> Legs:
        """The legs to write, sorted by file, time, and ingress before egress."""
        probe_legs = [(probe, step) for probe in self.probes for step in range(len(probe.steps()))]
        probe_appliance = np.array([p.appliance for p, _ in probe_legs], np.int64)
        probe_ns = np.array([p.start_ns + p.steps()[k][0] for p, k in probe_legs], np.int64)
        ingress, egress = np.flatnonzero(t.ingress), np.flatnonzero(t.egress)
        source = np.concatenate([ingress, egress, -1 - np.arange(len(probe_legs))])
        is_egress = np.concatenate([np.zeros(len(ingress), bool), np.ones(len(egress), bool), np.zeros(len(probe_legs), bool)])
        written = np.concatenate([
            t.ingress_written_ns[ingress], t.egress_written_ns[egress], self._written(probe_ns + self._clock_offsets_ns()[probe_appliance])
        ])
        appliance = np.concatenate([t.appliance[ingress], t.appliance[egress], probe_appliance])
        file = appliance if self.s.split else np.zeros(len(source), np.int64)
        order = np.lexsort((is_egress, written, file))
        return Legs(source[order], is_egress[order], written[order], file[order], probe_legs)

    def _link(self, appliance: int, node: int, from_node: bool) -> bytes:
        """The link-layer header of a packet between an appliance and a GWLB node."""
        if self.s.link == "sll2":
            return fr.linux_sll2(b"", ETHERTYPE_IPV4, packet_type=SLL2_INCOMING if from_node else SLL2_OUTGOING)
        vlans = (self.s.vlan_id,) if self.s.link == "vlan" else ()
        appliance_mac, node_mac = MAC_APPLIANCE + bytes([appliance]), MAC_NODE + bytes([node])
        src, dst = (node_mac, appliance_mac) if from_node else (appliance_mac, node_mac)
        return fr.ethernet(b"", ETHERTYPE_IPV4, dst=dst, src=src, vlans=vlans)

    def _encapsulation_table(self) -> fr.EncapsulationTable:
        """Each path's outer headers: row 2 * path GWLB node -> appliance, row 2 * path + 1 the appliance's return."""
        bases: dict[tuple[int, int, bool, int], int] = {}  # (appliance, node, from node, inner protocol) -> base
        base_list: list[fr.GwlbEncapsulation] = []
        base, sport, options = [], [], []
        for flow, route in self.paths:
            protocol = fr.geneve_protocol_of(flow.packets.packet[0])
            own = fr.aws_options(self.endpoint_ids[route.endpoint], ATTACHMENT_ID, route.cookie)
            for from_node in (True, False):
                key = (route.appliance, route.node, from_node, protocol)
                if key not in bases:
                    bases[key] = len(base_list)
                    base_list.append(self._base_encapsulation(*key, len(own)))
                base.append(bases[key])
                sport.append(route.sport)
                options.append(own if from_node else flow.egress_options or own)
        return fr.EncapsulationTable(base_list, np.array(base, np.int64), np.array(sport, np.int64), options)

    def _base_encapsulation(self, appliance: int, node: int, from_node: bool, protocol: int, option_bytes: int) -> fr.GwlbEncapsulation:
        """The outer headers between an appliance and a GWLB node, one way: GWLB's own, or the appliance's return."""
        link = self.links[appliance, node, from_node]
        no_options = bytes(option_bytes)
        if from_node:
            return fr.GwlbEncapsulation(self.nodes[node], self.appliances[appliance], 0, no_options, protocol, INGRESS_TTL, link=link)
        return fr.GwlbEncapsulation(self.appliances[appliance], self.nodes[node], 0, no_options, protocol, EGRESS_TTL, udp_checksum=False, link=link)

    def _write_files(self, files: list[Path], t: Transits) -> list[int]:
        """Write every leg's frames in order; return the frames written to each file."""
        legs = self._legs(t)
        packer = _Packer(self, t, legs, self._encapsulation_table() if self.paths else None)
        bounds = np.searchsorted(legs.file, np.arange(len(files) + 1)).tolist()
        frames_per_file = []
        for k, output in enumerate(files):
            frames = 0
            with self._writer(output) as writer:
                write = writer.write
                for ts, frame in packer.frames(bounds[k], bounds[k + 1]):
                    write(ts, frame)
                    frames += 1
            frames_per_file.append(frames)
        return frames_per_file

    # -- output ------------------------------------------------------------------------------------------
    def write(self, output: str | os.PathLike) -> dict:
        """Write the captures and ``<stem>.truth.json`` beside them; return the truth."""
        output = Path(output)
        files = self._file_names(output)
        with _collector_paused():
            self.make_flows()
            transits = self.make_transits()
            self.probes = self.make_probes()
            frames_per_file = self._write_files(files, transits)
            truth = build_truth(self, transits, files, frames_per_file)
        truth_path_for(output).write_text(dumps_truth(truth))
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


class Legs(NamedTuple):
    """The packets to write, in the order written: by file, time, and ingress before egress."""

    source: np.ndarray  # the transit of a Geneve leg, or -1 - k for the k-th of ``probe_legs``
    egress: np.ndarray  # bool: the appliance's return leg
    written_ns: np.ndarray
    file: np.ndarray
    probe_legs: list[tuple[HealthProbe, int]]  # (probe, step)


class _Packer:
    """Packs the frames of the sorted legs a chunk at a time: outer headers with numpy, then a concatenation per leg.

    Health checks, and the return legs of a flow whose appliance fragments, take a slower path.
    """

    def __init__(self, sim: Simulator, t: Transits, legs: Legs, table: fr.EncapsulationTable | None) -> None:
        self.sim, self.t, self.legs, self.table = sim, t, legs, table
        inner = t.inner
        route = sim.s.appliance_mode == "route"
        self.payloads = inner + [_route_packet(p) for p in inner] if route else inner
        self.inner_sums = np.zeros(len(t), np.int64)  # for the UDP checksum of ingress legs
        sent = np.flatnonzero(t.ingress)
        self.inner_sums[sent] = np.fromiter((fr.word_sum(inner[j]) for j in sent.tolist()), np.int64, len(sent))
        self.geneve = np.flatnonzero(legs.source >= 0)
        self.transit, egress = legs.source[self.geneve], legs.egress[self.geneve]
        self.encapsulation = 2 * t.path[self.transit] + egress
        self.ip_ids = _egress_ip_ids(t.appliance[self.transit], egress, sim.s.appliances)
        self.payload = np.full(len(legs.source), -1)
        self.payload[self.geneve] = self.transit + len(t) * (egress & route)
        fragmenting = np.array([p.flow.fragment_mtu is not None for p in sim.paths], bool)
        self.special = np.ones(len(legs.source), bool)
        self.special[self.geneve] = egress & fragmenting[t.path[self.transit]]

    def frames(self, lo: int, hi: int) -> Iterator[tuple[int, bytes]]:
        """(timestamp, frame) of the legs ``lo`` to ``hi``: one frame each, or the fragments of a fragmented one."""
        legs, payloads = self.legs, self.payloads
        size = self.table.header_bytes if self.table else 0
        for start in range(lo, hi, LEGS_PER_CHUNK):
            end = min(start + LEGS_PER_CHUNK, hi)
            first, last = np.searchsorted(self.geneve, [start, end]).tolist()
            at = np.full(end - start, -1)  # where each leg's outer headers are in ``headers``
            at[self.geneve[first:last] - start] = np.arange(last - first) * size
            headers = self._headers(first, last)
            columns = (legs.written_ns[start:end], at, self.payload[start:end], self.special[start:end], legs.source[start:end])
            for ts, a, p, special, j in zip(*(column.tolist() for column in columns)):
                if not special:
                    yield ts, headers[a : a + size] + payloads[p]
                elif a < 0:
                    yield ts, self._probe_frame(*legs.probe_legs[-1 - j])
                else:
                    pieces = _fragment(headers[a : a + size] + payloads[p], self.table.link_bytes, self.sim.paths[self.t.path[j]].flow.fragment_mtu)
                    self.t.egress_frames[j] = len(pieces)
                    for piece in pieces:
                        yield ts, piece

    def _headers(self, first: int, last: int) -> bytes:
        """The outer headers of the Geneve legs ``first`` to ``last``, back to back."""
        if first == last:
            return b""
        transit = self.transit[first:last]
        rows = self.table.headers(self.encapsulation[first:last], self.t.inner_bytes[transit], self.inner_sums[transit], self.ip_ids[first:last])
        return rows.tobytes()

    def _probe_frame(self, probe: HealthProbe, step: int) -> bytes:
        sim = self.sim
        link = sim.links[probe.appliance, probe.node, probe.is_from_node(step)]
        return link + probe.packet(step, sim.nodes, sim.appliances, sim.s.health_check_port)


def _egress_ip_ids(appliance: np.ndarray, egress: np.ndarray, appliances: int) -> np.ndarray:
    """The outer IP ID of each Geneve leg, in write order: each appliance kernel's counter over its egress legs; 0 on ingress."""
    ids = np.zeros(len(appliance), np.int64)
    legs = np.flatnonzero(egress)
    by_appliance = np.argsort(appliance[legs], kind="stable")
    counts = np.bincount(appliance[legs], minlength=appliances)
    rank = np.arange(len(legs)) - np.repeat(np.cumsum(counts) - counts, counts)
    ids[legs[by_appliance]] = rank & 0xFFFF
    return ids


@dataclass
class HealthProbe:
    """One GWLB health check: TCP to the appliance, an HTTP GET, 200 OK, then the appliance's reset (gwlb.md)."""

    start_ns: int
    node: int
    appliance: int
    sport: int
    node_isn: int
    appliance_isn: int
    answered: bool

    def steps(self) -> list[tuple[int, str]]:
        """(offset, what) for each packet of the probe."""
        if not self.answered:
            return [(0, "syn"), (PROBE_RETRANSMIT_NS, "syn")]  # one retransmission before GWLB gives up
        r, step = PROBE_RTT_NS, PROBE_STEP_NS
        return [(0, "syn"), (r, "synack"), (2 * r, "ack"), (2 * r + step, "get"), (3 * r, "ok"), (3 * r + step, "rst")]

    def is_from_node(self, step: int) -> bool:
        return self.steps()[step][1] in ("syn", "ack", "get")

    def packet(self, step: int, nodes: list[str], appliances: list[str], port: int) -> bytes:
        node, appliance = nodes[self.node], appliances[self.appliance]
        what = self.steps()[step][1]
        n_seq, a_seq = self.node_isn, self.appliance_isn
        request, response = len(HEALTH_CHECK_REQUEST), len(HEALTH_CHECK_RESPONSE)
        if what == "syn":
            segment = fr.tcp(node, appliance, self.sport, port, n_seq, 0, fr.TCP_SYN, mss=PROBE_MSS)
        elif what == "synack":
            segment = fr.tcp(appliance, node, port, self.sport, a_seq, n_seq + 1, fr.TCP_SYN | fr.TCP_ACK, mss=PROBE_MSS)
        elif what == "ack":
            segment = fr.tcp(node, appliance, self.sport, port, n_seq + 1, a_seq + 1, fr.TCP_ACK)
        elif what == "get":
            segment = fr.tcp(node, appliance, self.sport, port, n_seq + 1, a_seq + 1, fr.TCP_PSH | fr.TCP_ACK, HEALTH_CHECK_REQUEST)
        elif what == "ok":
            segment = fr.tcp(appliance, node, port, self.sport, a_seq + 1, n_seq + 1 + request, fr.TCP_PSH | fr.TCP_ACK, HEALTH_CHECK_RESPONSE)
        else:
            segment = fr.tcp(appliance, node, port, self.sport, a_seq + 1 + response, 0, fr.TCP_RST)
        if self.is_from_node(step):
            return fr.ipv4(node, appliance, IPPROTO_TCP, segment, ttl=PROBE_NODE_TTL, df=True)
        return fr.ipv4(appliance, node, IPPROTO_TCP, segment, ttl=PROBE_APPLIANCE_TTL, df=True)


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector: the simulator keeps millions of objects alive and makes no cycles,
    so every collection would walk them all for nothing (a third of the run time at a million packets)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _after_handshake(packets: conv.Conversation) -> int:
    """The index after the first packet of each direction: both directions have packets on either side."""
    seen: set[int] = set()
    for k, direction in enumerate(packets.direction):
        seen.add(direction)
        if len(seen) == 2:
            return k + 1
    return max(1, len(packets) // 2)


def _next_client_packet(packets: conv.Conversation, start: int) -> int:
    """The index of the first client packet from ``start`` on (not the first packet), else of the last packet."""
    for k in range(max(start, 1), len(packets)):
        if packets.direction[k] == conv.CLIENT_TO_SERVER:
            return k
    return len(packets) - 1


def _ip_text(family: int, address: int) -> str:
    """An address given as an integer in its canonical text form (RFC 5952 for IPv6), as ``ipaddress`` writes it, faster."""
    return socket.inet_ntop(family, address.to_bytes(16 if family == socket.AF_INET6 else 4, "big"))


def _fragment(frame: bytes, link_bytes: int, mtu: int) -> list[bytes]:
    """The frame as it leaves an interface of ``mtu`` bytes: whole, or as outer IPv4 fragments behind its link header."""
    link, packet = frame[:link_bytes], frame[link_bytes:]
    return [link + piece for piece in fr.fragment_ipv4(packet, mtu)]


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
