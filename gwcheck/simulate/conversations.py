"""Inner client traffic as an appliance sees it: TCP connections (RFC 9293), DNS- and QUIC-sized UDP exchanges, ICMP echo.

Each conversation is a list of inner packets with their offset from the flow's start and their direction
(client -> server or back); sequence numbers, lengths and checksums are consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..decode.ip import IPPROTO_TCP, IPPROTO_UDP
from . import frames as fr

CLIENT_TO_SERVER = 0
SERVER_TO_CLIENT = 1
TCP_MSS = 1460
DNS_PORT = 53
QUIC_PORT = 443
TCP_SERVER_PORTS = (443, 80, 22, 8080, 5432)


@dataclass(frozen=True)
class InnerPacket:
    offset_ns: int  # from the flow's first packet
    direction: int  # CLIENT_TO_SERVER or SERVER_TO_CLIENT
    packet: bytes  # the whole inner IP packet
    tcp_flags: int = 0


@dataclass(frozen=True)
class Endpoints:
    """The two ends of an inner flow."""

    client: str
    server: str
    client_port: int
    server_port: int


def _gap_ns(rng: np.random.Generator, median_us: float) -> int:
    return int(rng.lognormal(np.log(median_us * 1000.0), 0.4))


class _Builder:
    """Accumulates the inner packets of one conversation, keeping time, IP IDs and TCP sequence numbers."""

    def __init__(self, rng: np.random.Generator, ends: Endpoints, rtt_us: float) -> None:
        self.rng = rng
        self.ends = ends
        self.rtt_us = rtt_us
        self.t = 0
        self.packets: list[InnerPacket] = []
        self.ip_id = [int(rng.integers(0, 65536)), int(rng.integers(0, 65536))]
        self.seq = [int(rng.integers(0, 2**32)), int(rng.integers(0, 2**32))]

    def _addresses(self, direction: int) -> tuple[str, str, int, int]:
        e = self.ends
        if direction == CLIENT_TO_SERVER:
            return e.client, e.server, e.client_port, e.server_port
        return e.server, e.client, e.server_port, e.client_port

    def wait(self, median_us: float) -> None:
        self.t += _gap_ns(self.rng, median_us)

    def add(self, direction: int, proto: int, l4: bytes, tcp_flags: int = 0) -> None:
        src, dst, _, _ = self._addresses(direction)
        ttl = 64 if direction == CLIENT_TO_SERVER else 128
        ident = self.ip_id[direction]
        self.ip_id[direction] = (ident + 1) & 0xFFFF
        self.packets.append(InnerPacket(self.t, direction, fr.ip_packet(src, dst, proto, l4, ttl=ttl, ident=ident), tcp_flags))

    def tcp(self, direction: int, flags: int, payload: bytes = b"", mss: int | None = None) -> None:
        src, dst, sport, dport = self._addresses(direction)
        ack = self.seq[1 - direction] if flags & fr.TCP_ACK else 0
        segment = fr.tcp(src, dst, sport, dport, self.seq[direction], ack, flags, payload, mss=mss)
        advance = len(payload) + (1 if flags & (fr.TCP_SYN | fr.TCP_FIN) else 0)
        self.seq[direction] = (self.seq[direction] + advance) & 0xFFFFFFFF
        self.add(direction, IPPROTO_TCP, segment, flags)

    def udp(self, direction: int, payload: bytes) -> None:
        src, dst, sport, dport = self._addresses(direction)
        self.add(direction, IPPROTO_UDP, fr.udp(src, dst, sport, dport, payload))


def tcp_connection(
    rng: np.random.Generator,
    ends: Endpoints,
    rtt_us: float = 400.0,
    exchanges: int = 3,
    mss: int = TCP_MSS,
    segment_bytes: int | None = None,
    min_response_segments: int = 0,
) -> list[InnerPacket]:
    """Handshake, ``exchanges`` request/response rounds, and a FIN teardown.

    Responses are cut into segments of ``segment_bytes`` (the MSS by default); more than the MSS is what
    a capture shows of GSO/GRO super-packets.  ``min_response_segments`` makes every response at least
    that many full segments.
    """
    segment = segment_bytes or mss
    b = _Builder(rng, ends, rtt_us)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_SYN, mss=mss)
    b.wait(rtt_us)
    b.tcp(SERVER_TO_CLIENT, fr.TCP_SYN | fr.TCP_ACK, mss=mss)
    b.wait(rtt_us)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_ACK)
    for _ in range(exchanges):
        b.wait(rtt_us / 4)
        b.tcp(CLIENT_TO_SERVER, fr.TCP_PSH | fr.TCP_ACK, _payload(rng, int(rng.integers(60, 600))))
        b.wait(rtt_us)
        response = int(rng.integers(max(200, min_response_segments * segment), (4 + min_response_segments) * segment))
        while response > 0:
            size = min(response, segment)
            response -= size
            b.tcp(SERVER_TO_CLIENT, fr.TCP_ACK | (fr.TCP_PSH if response == 0 else 0), _payload(rng, size))
            b.wait(20)
        b.wait(rtt_us / 2)
        b.tcp(CLIENT_TO_SERVER, fr.TCP_ACK)
    b.wait(rtt_us)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_FIN | fr.TCP_ACK)
    b.wait(rtt_us)
    b.tcp(SERVER_TO_CLIENT, fr.TCP_FIN | fr.TCP_ACK)
    b.wait(rtt_us)
    b.tcp(CLIENT_TO_SERVER, fr.TCP_ACK)
    return b.packets


def udp_exchange(rng: np.random.Generator, ends: Endpoints, rtt_us: float = 400.0, quic: bool = False, rounds: int = 1) -> list[InnerPacket]:
    """DNS-like query and answer, or QUIC-sized datagrams both ways."""
    b = _Builder(rng, ends, rtt_us)
    for k in range(rounds):
        if k:
            b.wait(rtt_us)
        low, high = (1200, 1350) if quic else (30, 80)
        b.udp(CLIENT_TO_SERVER, _payload(rng, int(rng.integers(low, high))))
        b.wait(rtt_us)
        low, high = (1200, 1350) if quic else (80, 500)
        b.udp(SERVER_TO_CLIENT, _payload(rng, int(rng.integers(low, high))))
    return b.packets


def icmp_echo(rng: np.random.Generator, ends: Endpoints, rtt_us: float = 400.0, count: int = 3) -> list[InnerPacket]:
    """``count`` echo requests and their replies, one a second, 56 bytes of data each."""
    b = _Builder(rng, ends, rtt_us)
    ident = int(rng.integers(1, 65536))
    proto = fr.icmp_protocol(ends.client)
    data = bytes(range(56))
    for seq in range(count):
        if seq:
            b.wait(1_000_000)
        b.add(CLIENT_TO_SERVER, proto, fr.icmp_echo(ends.client, ends.server, ident, seq, data))
        b.wait(rtt_us)
        b.add(SERVER_TO_CLIENT, proto, fr.icmp_echo(ends.server, ends.client, ident, seq, data, reply=True))
    return b.packets


_PAYLOAD_POOL_BYTES = 1 << 16
# Fixed random bytes; payloads are slices of it at offsets drawn from the scenario's generator.
_POOL = np.random.default_rng(6081).integers(0, 256, _PAYLOAD_POOL_BYTES + 65536, dtype=np.uint8).tobytes()


def _payload(rng: np.random.Generator, size: int) -> bytes:
    start = int(rng.integers(0, _PAYLOAD_POOL_BYTES))
    return _POOL[start : start + size]
