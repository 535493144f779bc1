"""Write what ``tcpdump -i eth0 -w x.pcap udp port 6081`` on GWLB appliances would capture, and the truth of what was written.

Each inner packet becomes two legs on its appliance (shared/docs/gwlb.md): GWLB node -> appliance with the
three AWS options, and after the appliance's dwell time the return copy with the outer addresses swapped,
the UDP ports and Geneve header unchanged.
"""

from __future__ import annotations

import ipaddress
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..capture.writer import PcapngWriter, PcapWriter
from ..decode.geneve import vpce_id
from ..decode.ip import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
from ..decode.link import ETHERTYPE_IPV4, LINKTYPE_ETHERNET, LINKTYPE_LINUX_SLL2
from ..summaries import latency_summary_us
from . import conversations as conv
from . import frames as fr
from .scenario import Scenario, appliance_ip, gwlb_node_ip

TRUTH_VERSION = 1
INGRESS_TTL = 255  # GWLB's own legs (gwlb.md, "Outer headers")
EGRESS_TTL = 2  # what the reference appliance's egress legs carry (gwlb.md)
ATTACHMENT_ID = 0  # 0 in every real capture seen
NS_PER_US = 1000
PROTOCOL_NAMES = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_ICMP: "icmp", IPPROTO_ICMPV6: "icmpv6"}


@dataclass
class Flow:
    """One inner flow as the simulator decided it."""

    index: int
    protocol: str
    ends: conv.Endpoints
    endpoint: int
    gwlb_node: int
    appliance: int
    cookie: int
    outer_sport: int
    start_ns: int
    options: bytes = b""  # the Geneve options GWLB sends for this flow
    packets: list[conv.InnerPacket] = field(default_factory=list)


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

    # -- flows -------------------------------------------------------------------------------------------
    def make_flows(self) -> None:
        s, rng = self.s, self.rng
        kinds = list(s.protocol_mix)
        mix = np.asarray([s.protocol_mix[k] for k in kinds], float)
        cookies = rng.choice(2**32, size=s.flows, replace=False) if s.flows else []
        for i in range(s.flows):
            kind = kinds[int(rng.choice(len(kinds), p=mix / mix.sum()))]
            v6 = bool(rng.random() < s.ipv6_share)
            ends = self._endpoints(i, kind, v6)
            endpoint = int(rng.integers(s.endpoints))
            flow = Flow(
                index=i,
                protocol=kind,
                ends=ends,
                endpoint=endpoint,
                gwlb_node=endpoint % s.gwlb_nodes,
                appliance=int(rng.choice(s.appliances, p=self.appliance_share)),
                cookie=int(cookies[i]),
                outer_sport=int(rng.integers(1024, 65536)),
                start_ns=int(rng.uniform(0, s.duration_s * 0.8) * 1e9),
            )
            flow.options = fr.aws_options(self.endpoint_ids[endpoint], ATTACHMENT_ID, flow.cookie)
            flow.packets = self._conversation(kind, ends)
            self.flows.append(flow)

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

    def _conversation(self, kind: str, ends: conv.Endpoints) -> list[conv.InnerPacket]:
        rng = self.rng
        if kind == "tcp":
            return conv.tcp_connection(rng, ends, exchanges=int(rng.integers(1, 4)))
        if kind == "udp":
            return conv.udp_exchange(rng, ends)
        if kind == "quic":
            return conv.udp_exchange(rng, ends, quic=True, rounds=int(rng.integers(2, 6)))
        return conv.icmp_echo(rng, ends, count=int(rng.integers(1, 4)))

    # -- legs --------------------------------------------------------------------------------------------
    def make_legs(self) -> dict[str, np.ndarray | list]:
        """Two legs per inner packet, with true times, written times and the frames."""
        s, rng = self.s, self.rng
        rows = [(f, p) for f in self.flows for p in f.packets]
        n = len(rows)
        t_in = np.fromiter((s.start_ns + f.start_ns + p.offset_ns for f, p in rows), np.int64, n)
        appliance = np.fromiter((f.appliance for f, _ in rows), np.int64, n)
        endpoint = np.fromiter((f.endpoint for f, _ in rows), np.int64, n)
        dwell = rng.lognormal(np.log(self.latency_median_us[appliance] * NS_PER_US), s.latency_sigma).astype(np.int64)
        dwell = np.maximum(dwell, 1)
        if n and s.endpoint_setup_ms > 0:
            pair = appliance * s.endpoints + endpoint
            order = np.lexsort((t_in, pair))
            first = order[np.r_[True, pair[order][1:] != pair[order][:-1]]]
            dwell[first] += int(s.endpoint_setup_ms * 1e6)
        t_out = t_in + dwell
        offsets = np.zeros(s.appliances, np.int64)
        if s.split and s.clock_offsets_ms:
            offsets[:] = (np.asarray(s.clock_offsets_ms) * 1e6).astype(np.int64)
        resolution = 1 if s.format in ("pcap-ns", "pcapng") else NS_PER_US
        written_in = (t_in + offsets[appliance]) // resolution * resolution
        written_out = (t_out + offsets[appliance]) // resolution * resolution
        return {"rows": rows, "appliance": appliance, "endpoint": endpoint, "t_in": t_in,
                "written_in": written_in, "written_out": written_out}

    def _frame(self, packet: bytes, flow: Flow, egress: bool, ident: int) -> bytes:
        node, appliance = self.nodes[flow.gwlb_node], self.appliances[flow.appliance]
        options = flow.options
        if egress:
            inner = _route(packet) if self.s.appliance_mode == "route" else packet
            outer = fr.gwlb_encapsulate(inner, appliance, node, flow.outer_sport, options, ttl=EGRESS_TTL, ident=ident, udp_checksum=False)
        else:
            outer = fr.gwlb_encapsulate(packet, node, appliance, flow.outer_sport, options, ttl=INGRESS_TTL, ident=0)
        if self.s.link == "sll2":
            return fr.linux_sll2(outer, ETHERTYPE_IPV4)
        vlans = (self.s.vlan_id,) if self.s.link == "vlan" else ()
        mac_src, mac_dst = (b"\x02\0\0\0\1" + bytes([flow.appliance]), b"\x02\0\0\0\2" + bytes([flow.gwlb_node]))
        if not egress:
            mac_src, mac_dst = mac_dst, mac_src
        return fr.ethernet(outer, ETHERTYPE_IPV4, dst=mac_dst, src=mac_src, vlans=vlans)

    # -- output ------------------------------------------------------------------------------------------
    def write(self, output: str | os.PathLike) -> dict:
        """Write the captures and ``<stem>.truth.json`` beside them; return the truth."""
        self.make_flows()
        legs = self.make_legs()
        rows = legs["rows"]
        output = Path(output)
        files = self._file_names(output)
        n = len(rows)
        # Every leg: (file, written time, egress?, row)
        file_of = legs["appliance"] if self.s.split else np.zeros(n, np.int64)
        leg_file = np.concatenate([file_of, file_of])
        leg_time = np.concatenate([legs["written_in"], legs["written_out"]])
        leg_egress = np.r_[np.zeros(n, bool), np.ones(n, bool)]
        leg_row = np.r_[np.arange(n), np.arange(n)]
        order = np.lexsort((leg_egress, leg_time, leg_file))
        ip_ident = [0] * self.s.appliances
        packets_per_file = [0] * len(files)
        for k, path in enumerate(files):
            with self._writer(path) as writer:
                for leg in order[leg_file[order] == k]:
                    flow, packet = rows[leg_row[leg]]
                    egress = bool(leg_egress[leg])
                    ident = ip_ident[flow.appliance]
                    if egress:
                        ip_ident[flow.appliance] = (ident + 1) & 0xFFFF
                    writer.write(int(leg_time[leg]), self._frame(packet.packet, flow, egress, ident))
                    packets_per_file[k] += 1
        truth = self.truth(legs, files, packets_per_file)
        truth_path = truth_path_for(output)
        truth_path.write_text(json.dumps(truth, indent=1) + "\n")
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

    # -- truth -------------------------------------------------------------------------------------------
    def truth(self, legs: dict, files: list[Path], packets_per_file: list[int]) -> dict:
        latency = legs["written_out"] - legs["written_in"]
        appliance, endpoint = legs["appliance"], legs["endpoint"]
        flow_of_row = np.fromiter((f.index for f, _ in legs["rows"]), np.int64, len(legs["rows"]))
        node_of_row = np.fromiter((f.gwlb_node for f, _ in legs["rows"]), np.int64, len(legs["rows"]))

        def group(mask: np.ndarray) -> dict:
            return {
                "packets_in": int(mask.sum()),
                "packets_out": int(mask.sum()),
                "not_returned": 0,
                "flows": int(np.unique(flow_of_row[mask]).size),
                "latency_us": latency_summary_us(latency[mask]),
            }

        return {
            "gwcheck_truth_version": TRUTH_VERSION,
            "scenario": asdict(self.s),
            "files": [
                {"path": p.name, "appliance": self.appliances[k] if self.s.split else None, "packets": c}
                for k, (p, c) in enumerate(zip(files, packets_per_file))
            ],
            "packets": int(sum(packets_per_file)),
            "inner_packets": len(legs["rows"]),
            "flows": len(self.flows),
            "appliances": {ip: group(appliance == a) for a, ip in enumerate(self.appliances)},
            "gwlb_nodes": {ip: group(node_of_row == k) for k, ip in enumerate(self.nodes)},
            "endpoints": {vpce_id(e): group(endpoint == k) for k, e in enumerate(self.endpoint_ids)},
            "latency_us": latency_summary_us(latency),
            "flow_list": [self._flow_truth(f) for f in self.flows],
            "faults": {},
        }

    def _flow_truth(self, flow: Flow) -> dict:
        first = flow.packets[0].packet
        proto = first[9] if first[0] >> 4 == 4 else first[6]
        directions = [p.direction for p in flow.packets]
        return {
            "protocol": PROTOCOL_NAMES.get(proto, str(proto)),
            "client": flow.ends.client,
            "client_port": flow.ends.client_port,
            "server": flow.ends.server,
            "server_port": flow.ends.server_port,
            "endpoint": vpce_id(self.endpoint_ids[flow.endpoint]),
            "appliance": self.appliances[flow.appliance],
            "gwlb_node": self.nodes[flow.gwlb_node],
            "cookie": f"0x{flow.cookie:08x}",
            "outer_sport": flow.outer_sport,
            "fwd_packets": directions.count(conv.CLIENT_TO_SERVER),
            "rev_packets": directions.count(conv.SERVER_TO_CLIENT),
            "faults": [],
        }


def _route(packet: bytes) -> bytes:
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
