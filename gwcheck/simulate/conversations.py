"""Inner client traffic as an appliance sees it: TCP connections (RFC 9293), DNS- and QUIC-sized UDP exchanges, ICMP echo.

Each conversation holds inner packets with their offset from the flow's start and their direction (client ->
server or back), as columns; sequence numbers, lengths and checksums are consistent.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from ..decode.ip import IPPROTO_TCP, IPPROTO_UDP
from ..schema import NS_PER_US
from . import frames as fr
from .draws import Draws

CLIENT_TO_SERVER = 0
SERVER_TO_CLIENT = 1
TCP_MSS = 1460
DNS_PORT = 53
QUIC_PORT = 443
TCP_SERVER_PORTS = (443, 80, 22, 8080, 5432)
CLIENT_TTL = 64  # inner TTL or hop limit of each side's packets
SERVER_TTL = 128
RTT_US = 400.0  # median round trip between client and server
GAP_SIGMA = 0.4  # lognormal shape of the gaps between packets
SEGMENT_GAP_US = 20.0  # between the segments of one response
ECHO_INTERVAL_US = 1_000_000.0  # between echo requests, as ping sends them
ECHO_DATA_BYTES = 56  # ping's default
DNS_QUERY_BYTES = (30, 80)  # UDP payload sizes, [low, high)
DNS_ANSWER_BYTES = (80, 500)
QUIC_DATAGRAM_BYTES = (1200, 1350)


@dataclass
class Conversation:
    """The inner packets of one flow, as columns: offset from the flow's start, direction, the IP packet, TCP flags."""

    offset_ns: list[int] = field(default_factory=list)
    direction: list[int] = field(default_factory=list)  # CLIENT_TO_SERVER or SERVER_TO_CLIENT
    packet: list[bytes] = field(default_factory=list)
    tcp_flags: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.packet)

    def select(self, keep: list[int]) -> Conversation:
        """The packets at the indexes ``keep``."""
        return Conversation(*([column[k] for k in keep] for column in (self.offset_ns, self.direction, self.packet, self.tcp_flags)))


Payload = tuple[bytes, int]  # data and its word sum


class Endpoints(NamedTuple):
    """The two ends of an inner flow."""

    client: str
    server: str
    client_port: int
    server_port: int


class _Builder:
    """Accumulates the inner packets of one conversation, keeping time, IP IDs and TCP sequence numbers.

    Each side's IP and transport headers are set up once; a packet then costs a few packs and one checksum
    sum over its payload.
    """

    def __init__(self, draws: Draws, ends: Endpoints, proto: int) -> None:
        self.draws = draws
        self.t = 0
        self.packets = Conversation()
        self.ip_id = [draws.integer(0, 1 << 16), draws.integer(0, 1 << 16)]
        self.seq = [draws.integer(0, 1 << 32), draws.integer(0, 1 << 32)]
        sides = ((ends.client, ends.server, ends.client_port, ends.server_port, CLIENT_TTL),
                 (ends.server, ends.client, ends.server_port, ends.client_port, SERVER_TTL))
        self.ip = [fr.IpHeader(src, dst, proto, ttl, df=True) for src, dst, _, _, ttl in sides]
        if proto == IPPROTO_TCP:
            self.tcp_header = [fr.TcpHeader(src, dst, sport, dport) for src, dst, sport, dport, _ in sides]
        elif proto == IPPROTO_UDP:
            self.udp_header = [fr.UdpHeader(src, dst, sport, dport) for src, dst, sport, dport, _ in sides]

    def wait(self, median_us: float) -> None:
        """Let a lognormal gap of the given median pass."""
        self.t += int(self.draws.lognormal(median_us * NS_PER_US, GAP_SIGMA))

    def add(self, direction: int, l4: bytes, tcp_flags: int = 0) -> None:
        ident = self.ip_id[direction]
        self.ip_id[direction] = (ident + 1) & 0xFFFF
        packets = self.packets
        packets.offset_ns.append(self.t)
        packets.direction.append(direction)
        packets.packet.append(self.ip[direction].wrap(l4, ident))
        packets.tcp_flags.append(tcp_flags)

    def tcp(self, direction: int, flags: int, payload: Payload = (b"", 0), mss: int | None = None) -> None:
        data, data_sum = payload
        seq = self.seq[direction]
        ack = self.seq[1 - direction] if flags & fr.TCP_ACK else 0
        self.seq[direction] = (seq + len(data) + (1 if flags & (fr.TCP_SYN | fr.TCP_FIN) else 0)) & 0xFFFFFFFF
        self.add(direction, self.tcp_header[direction].segment(seq, ack, flags, data, mss, data_sum), flags)

    def udp(self, direction: int, payload: Payload) -> None:
        data, data_sum = payload
        self.add(direction, self.udp_header[direction].datagram(data, payload_sum=data_sum))


def tcp_connection(
    draws: Draws,
    ends: Endpoints,
    rtt_us: float = RTT_US,
    exchanges: int = 3,
    mss: int = TCP_MSS,
    segment_bytes: int | None = None,
    min_response_segments: int = 0,
) -> Conversation:
    """Handshake, ``exchanges`` request/response rounds, and a FIN teardown.

    Responses are cut into segments of ``segment_bytes`` (the MSS by default); more than the MSS is what
    a capture shows of GSO/GRO super-packets.  ``min_response_segments`` makes every response at least
    that many full segments.
    """
    segment = segment_bytes or mss
    b = _Builder(draws, ends, IPPROTO_TCP)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_SYN, mss=mss)
    b.wait(rtt_us)
    b.tcp(SERVER_TO_CLIENT, fr.TCP_SYN | fr.TCP_ACK, mss=mss)
    b.wait(rtt_us)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_ACK)
    for _ in range(exchanges):
        b.wait(rtt_us / 4)
        b.tcp(CLIENT_TO_SERVER, fr.TCP_PSH | fr.TCP_ACK, _payload(draws, draws.integer(60, 600)))
        b.wait(rtt_us)
        response = draws.integer(max(200, min_response_segments * segment), (4 + min_response_segments) * segment)
        while response > 0:
            size = min(response, segment)
            response -= size
            b.tcp(SERVER_TO_CLIENT, fr.TCP_ACK | (fr.TCP_PSH if response == 0 else 0), _payload(draws, size))
            b.wait(SEGMENT_GAP_US)
        b.wait(rtt_us / 2)
        b.tcp(CLIENT_TO_SERVER, fr.TCP_ACK)
    b.wait(rtt_us)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_FIN | fr.TCP_ACK)
    b.wait(rtt_us)
    b.tcp(SERVER_TO_CLIENT, fr.TCP_FIN | fr.TCP_ACK)
    b.wait(rtt_us)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_ACK)
    return b.packets


def udp_exchange(draws: Draws, ends: Endpoints, rtt_us: float = RTT_US, quic: bool = False, rounds: int = 1) -> Conversation:
    """DNS-like queries and answers, or QUIC-sized datagrams both ways, ``rounds`` times."""
    b = _Builder(draws, ends, IPPROTO_UDP)
    request_bytes, response_bytes = (QUIC_DATAGRAM_BYTES, QUIC_DATAGRAM_BYTES) if quic else (DNS_QUERY_BYTES, DNS_ANSWER_BYTES)
    for k in range(rounds):
        if k:
            b.wait(rtt_us)
        b.udp(CLIENT_TO_SERVER, _payload(draws, draws.integer(*request_bytes)))
        b.wait(rtt_us)
        b.udp(SERVER_TO_CLIENT, _payload(draws, draws.integer(*response_bytes)))
    return b.packets


def icmp_echo(draws: Draws, ends: Endpoints, rtt_us: float = RTT_US, count: int = 3) -> Conversation:
    """``count`` echo requests and their replies, one a second, 56 bytes of data each."""
    b = _Builder(draws, ends, fr.icmp_protocol(ends.client))
    ident = draws.integer(1, 1 << 16)
    data = bytes(range(ECHO_DATA_BYTES))
    for seq in range(count):
        if seq:
            b.wait(ECHO_INTERVAL_US)
        b.add(CLIENT_TO_SERVER, fr.icmp_echo(ends.client, ends.server, ident, seq, data))
        b.wait(rtt_us)
        b.add(SERVER_TO_CLIENT, fr.icmp_echo(ends.server, ends.client, ident, seq, data, reply=True))
    return b.packets


_PAYLOAD_POOL_BYTES = 1 << 16
# Fixed random bytes; payloads are slices of it at even offsets drawn from the scenario's generator.
_POOL = np.random.default_rng(6081).integers(0, 256, _PAYLOAD_POOL_BYTES + 65536, dtype=np.uint8).tobytes()
# _POOL_RUNNING[k]: the sum of the pool's first k big-endian 16-bit words, for a payload's checksum share.
_POOL_RUNNING = [0, *itertools.accumulate(np.frombuffer(_POOL, ">u2").tolist())]


def _payload(draws: Draws, size: int) -> Payload:
    """``size`` bytes of the pool and their word sum (frames.word_sum up to a multiple of 0xFFFF)."""
    start = 2 * draws.integer(0, _PAYLOAD_POOL_BYTES // 2)
    end = start + size
    total = _POOL_RUNNING[end // 2] - _POOL_RUNNING[start // 2]
    if size & 1:
        total += _POOL[end - 1] << 8
    return _POOL[start:end], total
