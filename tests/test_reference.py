"""The compiled decoder equals the dpkt reference decoder on every layout it supports, whole and cut at every byte.

Each layout also states its status and kind, and byte-literal packets pin exact field values, so that a bug the
two decoders share is still caught.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gwcheck import read_packets
from gwcheck.capture.writer import PcapngWriter, PcapWriter
from gwcheck.decode.reference import inner_digest, read_packets_reference
from gwcheck.schema import DecodeStatus, GwlbShape, FragmentFlags, PacketKind
from gwcheck.simulate import frames as f

TCP, UDP, ICMP, GRE, ICMPV6 = 6, 17, 1, 47, 58
IPV6_HOP_BY_HOP, IPV6_ROUTING, IPV6_FRAGMENT, IPV6_AUTH, IPV6_DEST_OPTIONS = 0, 43, 44, 51, 60
ETHERTYPE_IPV4, ETHERTYPE_ARP, ETHERTYPE_VLAN = 0x0800, 0x0806, 0x8100
ETHERTYPE_QINQ, ETHERTYPE_QINQ_OLD, PROTOCOL_ETHERNET = 0x88A8, 0x9100, 0x6558
LINK_NULL, LINK_ETHERNET, LINK_RAW_OPENBSD, LINK_RAW_OLD, LINK_RAW, LINK_LOOP = 0, 1, 12, 14, 101, 108
LINK_SLL, LINK_IPV4, LINK_IPV6, LINK_SLL2, LINK_UNSUPPORTED = 113, 228, 229, 276, 147
AF_INET, AF_INET6_LINUX, AF_INET6_BSD, AF_INET6_FREEBSD, AF_INET6_MACOS = 2, 10, 24, 28, 30
GENEVE_PORT = 6081
AWS_CLASS, GOOGLE_CLASS = 0x0108, 0x0132

ENDPOINT, ATTACHMENT, COOKIE = 0x31E129CDC0CD8633, 0x0A0B0C0D0E0F1011, 0x3DC956AC
GWLB, APPLIANCE = "10.0.1.10", "10.0.2.20"
GWLB6, APPLIANCE6 = "fd00:1::10", "fd00:2::20"
CLIENT, SERVER = "192.0.2.1", "198.51.100.2"
CLIENT6, SERVER6 = "2001:db8::1", "2001:db8:1::2"
GWLB_SPORT = 54321
MAC_DST, MAC_SRC = b"\x02\0\0\0\0\x02", b"\x02\0\0\0\0\x01"
ROUTER_ALERT = b"\x94\x04\x00\x00"  # an IPv4 option (RFC 2113)
TS_START_NS = 1_700_000_000_000_000_000
TS_STEP_NS = 1_000  # whole microseconds: every packet keeps its own timestamp in a microsecond pcap


class Layout(NamedTuple):
    """One frame, with the status and kind both decoders must give it whole."""

    name: str
    link_type: int
    frame: bytes
    status: str = "ok"
    kind: str = "geneve"


def patch(data: bytes, offset: int, value: bytes) -> bytes:
    """``data`` with ``value`` written at ``offset``."""
    return data[:offset] + value + data[offset + len(value) :]


# IPv6 extension headers (RFC 8200 4, RFC 4302 2).
def hop_by_hop(next_header: int) -> bytes:
    return bytes([next_header, 0, 1, 4, 0, 0, 0, 0])  # PadN over the 6 option bytes


def destination_options(next_header: int) -> bytes:
    return bytes([next_header, 0, 1, 4, 0, 0, 0, 0])


def routing(next_header: int) -> bytes:
    return bytes([next_header, 2, 0, 0, 0, 0, 0, 0]) + ipaddress.ip_address("2001:db8::99").packed


def fragment_header(next_header: int, offset_bytes: int, more: bool, ident: int) -> bytes:
    return struct.pack("!BBHI", next_header, 0, offset_bytes | int(more), ident)


def authentication(next_header: int) -> bytes:
    return struct.pack("!BBHII", next_header, 4, 0, 0x100, 1) + bytes(12)  # (4 + 2) * 4 = 24 bytes


def arp() -> bytes:
    """An ARP request (RFC 826) for 10.0.2.20 from 10.0.1.10."""
    sender, target = bytes([10, 0, 1, 10]), bytes([10, 0, 2, 20])
    return struct.pack("!HHBBH6s4s6s4s", 1, ETHERTYPE_IPV4, 6, 4, 1, MAC_SRC, sender, bytes(6), target)


# Inner packets: what a client sends through GWLB.
def tcp4(flags: int = f.TCP_SYN, payload: bytes = b"", mss: int | None = 1460) -> bytes:
    segment = f.tcp(CLIENT, SERVER, 40000, 443, 1000, 0, flags, payload=payload, mss=mss)
    return f.ipv4(CLIENT, SERVER, TCP, segment, ident=0x1234, df=True)


def carried() -> bytes:
    """The inner packet the outer variants carry: with 64 bytes of data, a 96-byte first fragment holds its headers."""
    return tcp4(f.TCP_PSH | f.TCP_ACK, bytes(range(64)), mss=None)


def tcp4_options(options: bytes) -> bytes:
    """An inner SYN with raw TCP ``options`` (whole words)."""
    offset_words = (20 + len(options)) // 4
    header = struct.pack("!HHIIBBHHH", 40002, 443, 1, 0, offset_words << 4, f.TCP_SYN, 65535, 0, 0)
    return f.ipv4(CLIENT, SERVER, TCP, header + options)


def udp4(payload: bytes = b"\x12\x34" + bytes(10)) -> bytes:
    return f.ipv4(CLIENT, SERVER, UDP, f.udp(CLIENT, SERVER, 5353, 53, payload))


def icmp4(icmp_type: int, code: int, body: bytes) -> bytes:
    message = struct.pack("!BBH", icmp_type, code, 0) + body
    return f.ipv4(CLIENT, SERVER, ICMP, message)


def icmp6(icmp_type: int, code: int, body: bytes) -> bytes:
    return f.ipv6(CLIENT6, SERVER6, ICMPV6, struct.pack("!BBH", icmp_type, code, 0) + body)


def fragments4() -> tuple[bytes, bytes]:
    """The two fragments of a UDP datagram of 108 bytes: the first carries 48 of them."""
    datagram = f.udp(CLIENT, SERVER, 5353, 53, bytes(range(100)))
    first = f.ipv4(CLIENT, SERVER, UDP, datagram[:48], ident=9, mf=True)
    return first, f.ipv4(CLIENT, SERVER, UDP, datagram[48:], ident=9, frag_offset=48)


def fragments6() -> tuple[bytes, bytes]:
    datagram = f.udp(CLIENT6, SERVER6, 5353, 53, bytes(range(100)))
    first = f.ipv6(CLIENT6, SERVER6, IPV6_FRAGMENT, fragment_header(UDP, 0, True, 0xABCDEF01) + datagram[:48])
    later = f.ipv6(CLIENT6, SERVER6, IPV6_FRAGMENT, fragment_header(UDP, 48, False, 0xABCDEF01) + datagram[48:])
    return first, later


def inner_packets() -> dict[str, tuple[bytes, str]]:
    """Inner packets by name, with the status of the whole GWLB packet carrying them."""
    tcp6 = f.ipv6(CLIENT6, SERVER6, TCP, f.tcp(CLIENT6, SERVER6, 40001, 443, 7, 0, f.TCP_SYN, mss=1440))
    udp6 = f.ipv6(CLIENT6, SERVER6, UDP, f.udp(CLIENT6, SERVER6, 5353, 53, b"query"))
    extensions = hop_by_hop(IPV6_ROUTING) + routing(IPV6_DEST_OPTIONS) + destination_options(UDP)
    ext6 = f.ipv6(CLIENT6, SERVER6, IPV6_HOP_BY_HOP, extensions + f.udp(CLIENT6, SERVER6, 1, 2, b"x"))
    ah6 = f.ipv6(CLIENT6, SERVER6, IPV6_AUTH, authentication(TCP) + f.tcp(CLIENT6, SERVER6, 3, 4, 5, 6, f.TCP_ACK))
    first4, later4 = fragments4()
    first6, later6 = fragments6()
    quoted = tcp4()[:28]
    udp_big, udp6_big = f.udp(CLIENT, SERVER, 7, 9, b"big"), f.udp(CLIENT6, SERVER6, 1, 2, b"j")
    tcp = tcp4()
    return {
        "tcp4_syn_mss": (tcp, "ok"),
        "tcp4_http": (tcp4(f.TCP_PSH | f.TCP_ACK, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", mss=None), "ok"),
        "tcp4_nop_window_mss": (tcp4_options(bytes.fromhex("0101 030307 02040578 000000")), "ok"),
        "tcp4_option_length_zero": (tcp4_options(bytes.fromhex("03000000 02040578")), "ok"),
        "udp4": (udp4(), "ok"),
        "icmp4_echo": (icmp4(8, 0, struct.pack("!HH", 0xBEEF, 3) + b"ping"), "ok"),
        "icmp4_echo_reply": (icmp4(0, 0, struct.pack("!HH", 0xBEEF, 3) + b"ping"), "ok"),
        "icmp4_timestamp": (icmp4(13, 0, struct.pack("!HH", 0x0101, 2) + bytes(12)), "ok"),
        "icmp4_unreachable": (icmp4(3, 1, bytes(4) + quoted), "ok"),
        "ipv4_options": (f.ipv4(CLIENT, SERVER, UDP, f.udp(CLIENT, SERVER, 7, 9, b"opt"), options=ROUTER_ALERT), "ok"),
        "ipv4_fragment_first": (first4, "ok"),
        "ipv4_fragment_later": (later4, "ok"),
        "ipv4_gre": (f.ipv4(CLIENT, SERVER, GRE, b"\x00\x00\x08\x00" + udp4()), "ok"),
        "ipv4_total_length_zero": (f.ipv4(CLIENT, SERVER, UDP, udp_big, total_length=0), "ok"),
        "tcp6_syn_mss": (tcp6, "ok"),
        "udp6": (udp6, "ok"),
        "icmp6_echo_request": (icmp6(128, 0, struct.pack("!HH", 0xCAFE, 1) + b"ping"), "ok"),
        "icmp6_echo_reply": (icmp6(129, 0, struct.pack("!HH", 0xCAFE, 1)), "ok"),
        "icmp6_unreachable": (icmp6(1, 4, bytes(4) + tcp6[:48]), "ok"),
        "icmp6_neighbor_solicitation": (icmp6(135, 0, bytes(4) + ipaddress.ip_address(SERVER6).packed), "ok"),
        "ipv6_extensions": (ext6, "ok"),
        "ipv6_authentication": (ah6, "ok"),
        "ipv6_fragment_first": (first6, "ok"),
        "ipv6_fragment_later": (later6, "ok"),
        "ipv6_payload_length_zero": (f.ipv6(CLIENT6, SERVER6, UDP, udp6_big, payload_length=0), "ok"),
        "ipv4_header_length_below_5": (patch(tcp, 0, b"\x44"), "malformed_inner_ip_header_length"),
        "ipv4_header_past_total": (patch(tcp, 0, b"\x4f"), "malformed_inner_ip_total_length"),
        "ipv4_total_length_past": (patch(tcp, 2, b"\x04\x00"), "malformed_inner_ip_total_length"),
        "ipv6_payload_length_past": (patch(udp6, 4, b"\x04\x00"), "malformed_inner_ip_total_length"),
        "ipv6_extension_past": (patch(ext6, 41, b"\xff"), "malformed_inner_ipv6_extension"),
        "udp_length_below_8": (patch(udp4(), 24, b"\x00\x04"), "malformed_inner_udp_length"),
        "udp_length_past": (patch(udp4(), 24, b"\x01\x00"), "malformed_inner_udp_length"),
        "udp_length_zero": (patch(udp4(), 24, b"\x00\x00"), "ok"),
        "tcp_data_offset_below_5": (patch(tcp, 32, b"\x40"), "malformed_inner_tcp_header_length"),
        "tcp_data_offset_past": (patch(tcp, 32, b"\xf0"), "malformed_inner_tcp_header_length"),
    }


# Geneve payloads (RFC 8926) around an inner packet.
def aws(order: tuple[int, ...] = (1, 2, 3)) -> bytes:
    return f.aws_options(ENDPOINT, ATTACHMENT, COOKIE, order=order)


def geneve_variants() -> dict[str, tuple[Callable[[bytes], bytes], str, int]]:
    """Geneve around an inner packet by name, with the status and GwlbShape flags of the whole packet."""
    proto = f.geneve_protocol_of
    header_bits = GwlbShape.HEADER
    endpoint_short = f.geneve_option(AWS_CLASS, 1, struct.pack("!I", 7))
    cookie_too_long = patch(aws(), 27, b"\x05")  # the cookie option claims 20 bytes of data

    def past_packet(inner: bytes) -> bytes:
        packet = f.geneve(proto(inner), aws(), inner)
        return patch(packet, 0, b"\x3f")  # 63 words of options: far past the datagram

    return {
        "exact": (lambda inner: f.geneve(proto(inner), aws(), inner), "ok", 0),
        "order_312": (lambda inner: f.geneve(proto(inner), aws((3, 1, 2)), inner), "ok", GwlbShape.ORDER),
        "missing_cookie": (lambda inner: f.geneve(proto(inner), aws((1, 2)), inner), "ok", GwlbShape.MISSING_COOKIE),
        "no_options": (lambda inner: f.geneve(proto(inner), b"", inner), "ok", 0x7),
        "duplicate": (lambda inner: f.geneve(proto(inner), aws((1, 2, 3, 1)), inner), "ok", GwlbShape.DUPLICATE_OPTION),
        "unknown_aws_type": (
            lambda inner: f.geneve(proto(inner), aws() + f.geneve_option(AWS_CLASS, 7, b"\0\0\0\1"), inner),
            "ok",
            GwlbShape.UNKNOWN_AWS_OPTION,
        ),
        "other_class": (
            lambda inner: f.geneve(proto(inner), f.geneve_option(GOOGLE_CLASS, 1, bytes(8)) + aws(), inner),
            "ok",
            GwlbShape.OTHER_CLASS,
        ),
        "critical_option": (
            lambda inner: f.geneve(proto(inner), patch(aws(), 2, b"\x81"), inner, critical=True),
            "ok",
            GwlbShape.CRITICAL_OPTION | header_bits,
        ),
        "wrong_aws_length": (
            lambda inner: f.geneve(proto(inner), endpoint_short + aws((2, 3)), inner),
            "ok",
            GwlbShape.OPTION_LENGTH,
        ),
        "vni": (lambda inner: f.geneve(proto(inner), aws(), inner, vni=0x123456), "ok", header_bits),
        "oam": (lambda inner: f.geneve(proto(inner), aws(), inner, oam=True), "ok", header_bits),
        "critical_flag": (lambda inner: f.geneve(proto(inner), aws(), inner, critical=True), "ok", header_bits),
        "version_1": (
            lambda inner: f.geneve(proto(inner), aws(), inner, version=1),
            "malformed_geneve_version",
            header_bits,
        ),
        "options_past_packet": (past_packet, "malformed_geneve_options", 0),
        "option_past_option_length": (
            lambda inner: f.geneve(proto(inner), cookie_too_long, inner),
            "malformed_geneve_options",
            GwlbShape.MISSING_COOKIE,
        ),
        "inner_ethernet": (
            lambda inner: f.geneve(PROTOCOL_ETHERNET, aws(), f.ethernet(inner, f.ethertype_of(inner))),
            "ok",
            header_bits,
        ),
        "inner_ethernet_vlan": (
            lambda inner: f.geneve(PROTOCOL_ETHERNET, aws(), f.ethernet(inner, f.ethertype_of(inner), vlans=[42])),
            "ok",
            header_bits,
        ),
        "inner_ethernet_arp": (
            lambda inner: f.geneve(PROTOCOL_ETHERNET, aws(), f.ethernet(arp(), ETHERTYPE_ARP)),
            "ok",
            header_bits,
        ),
        "inner_arp": (lambda inner: f.geneve(ETHERTYPE_ARP, aws(), arp()), "ok", header_bits),
        "inner_version_mismatch": (
            lambda inner: f.geneve(f.PROTOCOL_IPV6 if inner[0] >> 4 == 4 else f.PROTOCOL_IPV4, aws(), inner),
            "malformed_inner_ip_version",
            0,
        ),
    }


# Outer packets: what reaches the appliance.
def outer_udp4(payload: bytes, sport: int = GWLB_SPORT, dport: int = GENEVE_PORT, **ip: object) -> bytes:
    return f.ipv4(GWLB, APPLIANCE, UDP, f.udp(GWLB, APPLIANCE, sport, dport, payload), ttl=255, **ip)


def outer_udp6(payload: bytes, extensions: bytes = b"", first: int = UDP) -> bytes:
    return f.ipv6(GWLB6, APPLIANCE6, first, extensions + f.udp(GWLB6, APPLIANCE6, GWLB_SPORT, GENEVE_PORT, payload))


def outer_carriers() -> dict[str, tuple[Callable[[bytes], bytes], str, str]]:
    """Outer packets around a Geneve payload by name, with the status and kind of the whole packet."""
    extensions = hop_by_hop(IPV6_ROUTING) + routing(IPV6_FRAGMENT) + fragment_header(UDP, 0, False, 77)

    def first_fragment(payload: bytes) -> bytes:
        datagram = f.udp(GWLB, APPLIANCE, GWLB_SPORT, GENEVE_PORT, payload)
        return f.ipv4(GWLB, APPLIANCE, UDP, datagram[:96], ttl=255, ident=5, mf=True)

    def big_tcp(payload: bytes) -> bytes:
        datagram = patch(f.udp(GWLB, APPLIANCE, GWLB_SPORT, GENEVE_PORT, payload), 4, b"\0\0")
        return f.ipv4(GWLB, APPLIANCE, UDP, datagram, ttl=255, total_length=0)

    return {
        "ipv4_ingress": (outer_udp4, "ok", "geneve"),
        "ipv4_egress_source_port": (lambda payload: outer_udp4(payload, GENEVE_PORT, GWLB_SPORT), "ok", "geneve"),
        "ipv4_options": (lambda payload: outer_udp4(payload, options=b"\x01\x01\x01\x00"), "ok", "geneve"),
        "ipv4_udp_checksum_none": (
            lambda payload: f.ipv4(GWLB, APPLIANCE, UDP, f.udp(GWLB, APPLIANCE, 1, GENEVE_PORT, payload, checksum=False)),
            "ok",
            "geneve",
        ),
        "ipv4_fragment_first": (first_fragment, "ok", "geneve"),
        "ipv4_big_tcp": (big_tcp, "ok", "geneve"),
        "ipv4_udp_length_zero": (lambda payload: patch(outer_udp4(payload), 24, b"\0\0"), "ok", "geneve"),
        "ipv6": (outer_udp6, "ok", "geneve"),
        "ipv6_extensions": (lambda payload: outer_udp6(payload, extensions, IPV6_HOP_BY_HOP), "ok", "geneve"),
        "ipv6_payload_length_zero": (lambda payload: patch(outer_udp6(payload), 4, b"\0\0"), "ok", "geneve"),
        "udp_length_below_8": (lambda payload: patch(outer_udp4(payload), 24, b"\0\x04"), "malformed_udp_length", "geneve"),
        "udp_length_past": (lambda payload: patch(outer_udp4(payload), 24, b"\x08\0"), "malformed_udp_length", "geneve"),
        "udp_length_short": (lambda payload: patch(outer_udp4(payload), 24, b"\0\x0c"), "truncated_geneve", "geneve"),
        "ipv4_header_length_below_5": (
            lambda payload: patch(outer_udp4(payload), 0, b"\x44"),
            "malformed_outer_ip_header_length",
            "undecoded",
        ),
        "ipv4_header_past_total": (
            lambda payload: patch(patch(outer_udp4(payload), 0, b"\x4f"), 2, b"\x00\x28"),  # 60-byte header, 40-byte packet
            "malformed_outer_ip_total_length",
            "undecoded",
        ),
        "ipv4_total_length_past": (
            lambda payload: patch(outer_udp4(payload), 2, b"\x10\x00"),
            "malformed_outer_ip_total_length",
            "undecoded",
        ),
        "ipv6_payload_length_past": (
            lambda payload: patch(outer_udp6(payload), 4, b"\x10\x00"),
            "malformed_outer_ip_total_length",
            "undecoded",
        ),
        "ipv6_extension_past": (
            lambda payload: patch(outer_udp6(payload, extensions, IPV6_HOP_BY_HOP), 41, b"\xff"),
            "malformed_outer_ipv6_extension",
            "undecoded",
        ),
    }


def outer_others() -> dict[str, tuple[bytes, str, str]]:
    """Outer packets that carry no Geneve, with their status and kind."""
    datagram = f.udp(GWLB, APPLIANCE, GWLB_SPORT, GENEVE_PORT, f.geneve(f.PROTOCOL_IPV4, aws(), carried()))
    later = f.ipv4(GWLB, APPLIANCE, UDP, datagram[96:], ttl=255, ident=5, frag_offset=96)
    later6 = f.ipv6(GWLB6, APPLIANCE6, IPV6_FRAGMENT, fragment_header(UDP, 96, False, 78) + datagram[96:])
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"

    def health(flags: int, payload: bytes = b"", mss: int | None = None, reply: bool = False) -> bytes:
        src, dst, sport, dport = (APPLIANCE, GWLB, 80, 41000) if reply else (GWLB, APPLIANCE, 41000, 80)
        return f.ipv4(src, dst, TCP, f.tcp(src, dst, sport, dport, 1, 1, flags, payload=payload, mss=mss))

    return {
        "ipv4_fragment_later": (later, "ok", "ip_fragment"),
        "ipv6_fragment_later": (later6, "ok", "ip_fragment"),
        "dns": (f.ipv4(APPLIANCE, "10.0.0.2", UDP, f.udp(APPLIANCE, "10.0.0.2", 33000, 53, bytes(20))), "ok", "udp"),
        "health_syn": (health(f.TCP_SYN, mss=8961), "ok", "tcp"),
        "health_syn_ack": (health(f.TCP_SYN | f.TCP_ACK, mss=8961, reply=True), "ok", "tcp"),
        "health_http_200": (health(f.TCP_PSH | f.TCP_ACK, response, reply=True), "ok", "tcp"),
        "health_http_bad_version": (health(f.TCP_PSH | f.TCP_ACK, b"HTTP/1.x 200 OK\r\n\r\n", reply=True), "ok", "tcp"),
        "health_rst": (health(f.TCP_RST | f.TCP_ACK), "ok", "tcp"),
        "tcp_data_offset_below_5": (patch(health(f.TCP_ACK), 32, b"\x40"), "malformed_outer_tcp_header_length", "tcp"),
        "tcp_data_offset_past": (patch(health(f.TCP_ACK), 32, b"\xf0"), "malformed_outer_tcp_header_length", "tcp"),
        "icmp_echo": (f.ipv4(GWLB, APPLIANCE, ICMP, f.icmp_echo(GWLB, APPLIANCE, 1, 1)), "ok", "icmp"),
        "icmpv6_echo": (f.ipv6(GWLB6, APPLIANCE6, ICMPV6, f.icmp_echo(GWLB6, APPLIANCE6, 1, 1)), "ok", "icmp"),
        "gre": (f.ipv4(GWLB, APPLIANCE, GRE, b"\x00\x00\x08\x00" + udp4()), "ok", "ip_other"),
    }


# Link layers around an outer IP packet.
def qinq(ip: bytes, outer_tag: int = ETHERTYPE_QINQ) -> bytes:
    tags = struct.pack("!HHHH", outer_tag, 200, ETHERTYPE_VLAN, 300)
    return MAC_DST + MAC_SRC + tags + struct.pack("!H", f.ethertype_of(ip)) + ip


def loopback(ip: bytes, order: str, family6: int) -> bytes:
    family = AF_INET if ip[0] >> 4 == 4 else family6
    return family.to_bytes(4, order) + ip


LINKS: dict[str, tuple[int, Callable[[bytes], bytes]]] = {
    "ethernet": (LINK_ETHERNET, lambda ip: f.ethernet(ip, f.ethertype_of(ip))),
    "vlan": (LINK_ETHERNET, lambda ip: f.ethernet(ip, f.ethertype_of(ip), vlans=[100])),
    "qinq": (LINK_ETHERNET, qinq),
    "qinq_9100": (LINK_ETHERNET, lambda ip: qinq(ip, ETHERTYPE_QINQ_OLD)),
    "sll": (LINK_SLL, lambda ip: f.linux_sll(ip, f.ethertype_of(ip))),
    "sll_vlan": (LINK_SLL, lambda ip: f.linux_sll(struct.pack("!HH", 7, f.ethertype_of(ip)) + ip, ETHERTYPE_VLAN)),
    "sll2": (LINK_SLL2, lambda ip: f.linux_sll2(ip, f.ethertype_of(ip))),
    "raw": (LINK_RAW, lambda ip: ip),
    "raw_openbsd": (LINK_RAW_OPENBSD, lambda ip: ip),
    "raw_old": (LINK_RAW_OLD, lambda ip: ip),
    "null_little_endian": (LINK_NULL, lambda ip: loopback(ip, "little", AF_INET6_MACOS)),
    "null_big_endian": (LINK_NULL, lambda ip: loopback(ip, "big", AF_INET6_BSD)),
    "null_linux": (LINK_NULL, lambda ip: loopback(ip, "little", AF_INET6_LINUX)),
    "loop": (LINK_LOOP, lambda ip: loopback(ip, "big", AF_INET6_FREEBSD)),
    "ipv4": (LINK_IPV4, lambda ip: ip),
    "ipv6": (LINK_IPV6, lambda ip: ip),
}


def layouts() -> list[Layout]:
    """Every layout the decoder supports, each over Ethernet unless the link layer is what it varies."""
    inners = inner_packets()
    genevas = geneve_variants()
    carriers = outer_carriers()
    ethernet = LINKS["ethernet"][1]
    tcp = inners["tcp4_syn_mss"][0]
    result = []
    for name, (build, status, _) in genevas.items():
        result.append(Layout(f"geneve:{name}", LINK_ETHERNET, ethernet(outer_udp4(build(tcp))), status))
    result.append(Layout("geneve:inner_ethernet_vlan_ipv6", LINK_ETHERNET,
                         ethernet(outer_udp4(genevas["inner_ethernet_vlan"][0](inners["udp6"][0])))))
    for name, (inner, status) in inners.items():
        result.append(Layout(f"inner:{name}", LINK_ETHERNET, ethernet(outer_udp4(genevas["exact"][0](inner))), status))
    payload = genevas["exact"][0](carried())
    for name, (build, status, kind) in carriers.items():
        result.append(Layout(f"outer:{name}", LINK_ETHERNET, ethernet(build(payload)), status, kind))
    for name, (packet, status, kind) in outer_others().items():
        result.append(Layout(f"outer:{name}", LINK_ETHERNET, ethernet(packet), status, kind))
    ipv4_packet, ipv6_packet = outer_udp4(payload), outer_udp6(payload)
    for name, (link_type, build) in LINKS.items():
        for packet in (ipv4_packet, ipv6_packet):
            if (link_type, packet[0] >> 4) not in ((LINK_IPV4, 6), (LINK_IPV6, 4)):
                result.append(Layout(f"link:{name}:ipv{packet[0] >> 4}", link_type, build(packet)))
    result += [
        Layout("link:arp", LINK_ETHERNET, f.ethernet(arp(), ETHERTYPE_ARP), "ok", "non_ip"),
        Layout("link:vlan_arp", LINK_ETHERNET, f.ethernet(arp(), ETHERTYPE_ARP, vlans=[5]), "ok", "non_ip"),
        Layout("link:unsupported", LINK_UNSUPPORTED, ipv4_packet, "unsupported_link_type", "unsupported_link"),
        Layout("link:raw_not_ip", LINK_RAW, b"\x50" + ipv4_packet[1:], "ok", "non_ip"),
        Layout("link:null_unknown_family", LINK_NULL, b"\x07\0\0\0" + ipv4_packet, "ok", "non_ip"),
        Layout("link:ethertype_version_mismatch", LINK_ETHERNET, f.ethernet(ipv6_packet, ETHERTYPE_IPV4),
               "malformed_outer_ip_version", "undecoded"),
        Layout("link:ipv4_link_with_ipv6", LINK_IPV4, ipv6_packet, "malformed_outer_ip_version", "undecoded"),
    ]
    return result


LAYOUTS = layouts()


def cuts(layout: Layout) -> list[tuple[str, int, bytes, int]]:
    """The layout whole and snapped at every length, so at each layer boundary and one byte into each header."""
    frame = layout.frame
    whole = [(layout.name, layout.link_type, frame, len(frame))]
    return whole + [(f"{layout.name}[:{cut}]", layout.link_type, frame[:cut], len(frame)) for cut in range(len(frame))]


# Writing captures and comparing the decoders.
FORMATS = ("pcap-us-le", "pcap-us-be", "pcap-ns-le", "pcap-ns-be", "pcapng-le", "pcapng-be")


def write_captures(directory, packets: list[tuple[str, int, bytes, int]], fmt: str) -> tuple[list, dict[int, str]]:
    """Write ``packets`` (label, link type, frame, wire length) in ``fmt``; return the paths and labels by timestamp.

    pcap holds one link type per file, so it gets a file per link type; pcapng gets one interface per link
    type, alternating microsecond and nanosecond timestamps.
    """
    labels = {TS_START_NS + k * TS_STEP_NS: packet[0] for k, packet in enumerate(packets)}
    link_types = sorted({link_type for _, link_type, _, _ in packets})
    big_endian = fmt.endswith("-be")
    if fmt.startswith("pcapng"):
        path = directory / f"{fmt}.pcapng"
        with PcapngWriter(path, big_endian=big_endian) as writer:
            interfaces = {lt: writer.add_interface(lt, tsresol=6 if k % 2 else 9) for k, lt in enumerate(link_types)}
            for ts, (_, link_type, frame, wire_len) in zip(labels, packets):
                writer.write(ts, frame, interface=interfaces[link_type], wire_len=wire_len)
        return [path], labels
    writers = {
        lt: PcapWriter(directory / f"{fmt}-{lt}.pcap", lt, nanosecond="-ns-" in fmt, big_endian=big_endian) for lt in link_types
    }
    for ts, (_, link_type, frame, wire_len) in zip(labels, packets):
        writers[link_type].write(ts, frame, wire_len=wire_len)
    for writer in writers.values():
        writer.close()
    return [directory / f"{fmt}-{lt}.pcap" for lt in link_types], labels


def first_difference(fast: pd.DataFrame, reference: pd.DataFrame, labels: dict[int, str]) -> str:
    """Name the first row and column where the two tables differ."""
    if len(fast) != len(reference):
        return f"{len(fast)} rows from read_packets, {len(reference)} from the reference"
    differ = np.column_stack([fast[c].to_numpy() != reference[c].to_numpy() for c in reference.columns])
    rows = np.flatnonzero(differ.any(axis=1))
    if not len(rows):
        return "values agree; dtypes or categories differ"
    row = rows[0]
    column = reference.columns[differ[row].argmax()]
    ours, theirs = fast[column].iat[row], reference[column].iat[row]
    label = labels.get(int(reference["ts_ns"].iat[row]), "?")
    return f"row {row} ({label}), column {column}: read_packets {ours!r}, reference {theirs!r}"


def assert_decoders_agree(paths: list, labels: dict[int, str], port: int = GENEVE_PORT) -> pd.DataFrame:
    fast = read_packets(paths, port=port)
    reference = read_packets_reference(paths, port=port)
    try:
        pd.testing.assert_frame_equal(fast, reference)
    except AssertionError as error:
        raise AssertionError(f"{first_difference(fast, reference, labels)}\n{error}") from None
    return fast


def read_one(tmp_path, frames: list[tuple[int, bytes]]) -> pd.DataFrame:
    """Write (link type, frame) pairs to pcapng, check both decoders agree, return the table."""
    packets = [(f"literal {k}", link_type, frame, len(frame)) for k, (link_type, frame) in enumerate(frames)]
    paths, labels = write_captures(tmp_path, packets, "pcapng-le")
    return assert_decoders_agree(paths, labels)


# The tests.
def test_layouts_cover_every_status_and_kind() -> None:
    """Whole layouts reach every status but the truncated ones (test_every_cut reaches those) and every kind."""
    statuses = {layout.status for layout in LAYOUTS}
    assert {status.label for status in DecodeStatus if not status.name.startswith("TRUNCATED")} <= statuses
    assert {layout.kind for layout in LAYOUTS} == {kind.label for kind in PacketKind}


@pytest.mark.parametrize("fmt", FORMATS)
def test_whole_layouts(tmp_path, fmt: str) -> None:
    packets = [(layout.name, layout.link_type, layout.frame, len(layout.frame)) for layout in LAYOUTS]
    paths, labels = write_captures(tmp_path, packets, fmt)
    table = assert_decoders_agree(paths, labels)
    names = [labels[int(ts)] for ts in table["ts_ns"]]
    decoded = dict(zip(names, zip(table["status"], table["kind"])))
    assert decoded == {layout.name: (layout.status, layout.kind) for layout in LAYOUTS}


@pytest.mark.parametrize("fmt", ["pcap-us-le", "pcapng-be"])
def test_every_cut(tmp_path, fmt: str) -> None:
    packets = [packet for layout in LAYOUTS for packet in cuts(layout)]
    paths, labels = write_captures(tmp_path, packets, fmt)
    table = assert_decoders_agree(paths, labels)
    snapped = set(table.loc[table["cap_len_bytes"] < table["wire_len_bytes"], "status"])
    assert {status.label for status in DecodeStatus if status.name.startswith("TRUNCATED")} <= snapped


def test_other_geneve_port(tmp_path) -> None:
    packets = [(layout.name, layout.link_type, layout.frame, len(layout.frame)) for layout in LAYOUTS]
    paths, labels = write_captures(tmp_path, packets, "pcap-ns-le")
    table = assert_decoders_agree(paths, labels, port=GWLB_SPORT)
    assert (table["kind"] == "geneve").sum() > 0


@pytest.mark.parametrize(("name", "status", "shape"), [(n, s, int(v)) for n, (_, s, v) in geneve_variants().items()])
def test_geneve_shape(tmp_path, name: str, status: str, shape: int) -> None:
    build = geneve_variants()[name][0]
    row = read_one(tmp_path, [(LINK_ETHERNET, f.ethernet(outer_udp4(build(tcp4())), ETHERTYPE_IPV4))]).iloc[0]
    assert (row["status"], row["gwlb_shape"]) == (status, shape)


# Byte literals: exact values that do not depend on either decoder or on the frame builders.
ETHERNET_HEADER = bytes.fromhex("020000000002 020000000001 0800")
GWLB_OUTER = bytes.fromhex(
    "45000070 00000000 ff110000 0a000101 0a000202"  # IPv4, 112 bytes, TTL 255, UDP, 10.0.1.1 -> 10.0.2.2
    "d43117c1 005c0000"  # UDP 54321 -> 6081, 92 bytes, no checksum
)
GWLB_GENEVE = bytes.fromhex(  # shared/docs/gwlb.md, read off a real AWS capture
    "08000800 00000000"
    "01080102 31e129cd c0cd8633"
    "01080202 00000000 00000000"
    "01080301 3dc956ac"
)
INNER_SYN = bytes.fromhex(
    "4500002c 12344000 40060000 c0000201 c6336402"  # IPv4, 44 bytes, ID 0x1234, DF, TTL 64, TCP
    "9c4001bb 000003e8 00000000 6002ffff 00000000 020405b4"  # 40000 -> 443, seq 1000, SYN, MSS 1460
)
GOLDEN = ETHERNET_HEADER + GWLB_OUTER + GWLB_GENEVE + INNER_SYN

GOLDEN_VALUES = {
    "status": "ok",
    "kind": "geneve",
    "outer_ip_version": 4,
    "outer_src_hi": 0,
    "outer_src_lo": 0xFFFF_0A00_0101,
    "outer_dst_lo": 0xFFFF_0A00_0202,
    "outer_ttl": 255,
    "outer_ip_len_bytes": 112,
    "outer_proto": 17,
    "outer_sport": 54321,
    "outer_dport": 6081,
    "outer_udp_len_bytes": 92,
    "outer_udp_checksum": 0,
    "outer_l4_payload_bytes": 84,
    "geneve_version": 0,
    "geneve_opt_len_bytes": 32,
    "geneve_protocol": 0x0800,
    "geneve_vni": 0,
    "geneve_opt_count": 3,
    "aws_endpoint_id": 0x31E129CDC0CD8633,
    "aws_attachment_id": 0,
    "aws_flow_cookie": 0x3DC956AC,
    "gwlb_shape": 0,
    "encap_overhead_bytes": 68,
    "inner_offset": 82,
    "inner_ip_version": 4,
    "inner_src_lo": 0xFFFF_C000_0201,
    "inner_dst_lo": 0xFFFF_C633_6402,
    "inner_proto": 6,
    "inner_ip_len_bytes": 44,
    "inner_ip_id": 0x1234,
    "inner_ttl": 64,
    "inner_frag": int(FragmentFlags.DF),
    "inner_sport": 40000,
    "inner_dport": 443,
    "inner_tcp_flags": 0x02,
    "inner_tcp_seq": 1000,
    "inner_tcp_mss": 1460,
    "inner_l4_payload_bytes": 0,
}


def test_golden_gwlb_packet(tmp_path) -> None:
    row = read_one(tmp_path, [(LINK_ETHERNET, GOLDEN)]).iloc[0]
    assert {name: row[name] for name in GOLDEN_VALUES} == GOLDEN_VALUES
    assert row["inner_digest"] != 0


@pytest.mark.parametrize(
    ("link_type", "header", "vlan_id", "vlan_count"),
    [
        (LINK_ETHERNET, ETHERNET_HEADER, 0, 0),
        (LINK_ETHERNET, bytes.fromhex("020000000002 020000000001 8100 0064 0800"), 100, 1),
        (LINK_ETHERNET, bytes.fromhex("020000000002 020000000001 88a8 00c8 8100 012c 0800"), 200, 2),
        (LINK_SLL, bytes.fromhex("0000 0001 0006 0200000000010000 0800"), 0, 0),
        (LINK_SLL2, bytes.fromhex("0800 0000 00000002 0001 00 06 0200000000010000"), 0, 0),
        (LINK_NULL, bytes.fromhex("02000000"), 0, 0),
        (LINK_NULL, bytes.fromhex("00000002"), 0, 0),
        (LINK_LOOP, bytes.fromhex("00000002"), 0, 0),
        (LINK_RAW, b"", 0, 0),
        (LINK_IPV4, b"", 0, 0),
    ],
)
def test_link_layers(tmp_path, link_type: int, header: bytes, vlan_id: int, vlan_count: int) -> None:
    frame = header + GWLB_OUTER + GWLB_GENEVE + INNER_SYN
    row = read_one(tmp_path, [(link_type, frame)]).iloc[0]
    assert (row["status"], row["vlan_id"], row["vlan_count"]) == ("ok", vlan_id, vlan_count)
    assert (row["inner_offset"], row["encap_overhead_bytes"]) == (len(header) + 68, 68)
    assert (row["aws_flow_cookie"], row["inner_tcp_mss"]) == (0x3DC956AC, 1460)


def test_health_check_answer(tmp_path) -> None:
    response = b"HTTP/1.1 200 OK\r\n\r\n"
    frame = ETHERNET_HEADER + bytes.fromhex(
        "4500003b 00004000 40060000 0a000202 0a000101"  # IPv4, 59 bytes, TCP, 10.0.2.2 -> 10.0.1.1
        "0050a028 00000001 00000001 5018ffff 00000000"  # 80 -> 41000, PSH|ACK
    ) + response
    reset = patch(frame[:54], 47, b"\x14")  # RST|ACK, no payload
    reset = patch(reset, 16, b"\x00\x28")
    table = read_one(tmp_path, [(LINK_ETHERNET, frame), (LINK_ETHERNET, reset)])
    columns = ["kind", "outer_sport", "outer_dport", "outer_tcp_flags", "outer_l4_payload_bytes", "outer_http_status"]
    assert table[columns].values.tolist() == [
        ["tcp", 80, 41000, 0x18, 19, 200],
        ["tcp", 80, 41000, 0x14, 0, 0],
    ]


def test_inner_ethernet_vlan_icmpv6_echo(tmp_path) -> None:
    inner = bytes.fromhex(
        "020000000004 020000000003 8100 002a 86dd"  # inner Ethernet, VLAN 42, IPv6
        "60000000 00083a40"  # 8 bytes of ICMPv6, hop limit 64
        "20010db8000000000000000000000001 20010db8000100000000000000000002"
        "80000000 abcd0001"  # echo request, ID 0xabcd, sequence 1
    )
    geneve = bytes.fromhex("08006558 00000000") + GWLB_GENEVE[8:]
    row = read_one(tmp_path, [(LINK_ETHERNET, ETHERNET_HEADER + outer_udp4(geneve + inner))]).iloc[0]
    assert (row["status"], row["gwlb_shape"], row["geneve_protocol"]) == ("ok", GwlbShape.HEADER, PROTOCOL_ETHERNET)
    assert (row["inner_offset"], row["encap_overhead_bytes"]) == (14 + 68 + 18, 68)
    assert (row["inner_src_hi"], row["inner_src_lo"]) == (0x20010DB800000000, 1)
    icmp = (row["inner_icmp_type"], row["inner_icmp_id"], row["inner_icmp_seq"], row["inner_ttl"])
    assert icmp == (128, 0xABCD, 1, 64)


def test_digest_ignores_what_a_router_rewrites(tmp_path) -> None:
    datagram = bytes.fromhex(
        "45000024 00010000 4011f00d c0000201 c6336402"  # IPv4, 36 bytes, TTL 64, UDP, checksum 0xf00d
        "14e90035 00100000 68656c6c 6f212121"  # 5353 -> 53, "hello!!!"
    )
    routed = patch(datagram, 8, b"\x3f\x11\xbe\xef")  # TTL 63, checksum 0xbeef
    changed = patch(datagram, 35, b"\x3f")  # last payload byte "?"
    frames = [ETHERNET_HEADER + outer_udp4(GWLB_GENEVE + packet) for packet in (datagram, routed, changed)]
    table = read_one(tmp_path, [(LINK_ETHERNET, frame) for frame in frames])
    digests = table["inner_digest"].tolist()
    assert digests[0] == digests[1] != digests[2]
    assert digests[0] == inner_digest(datagram, 4) != inner_digest(datagram, 0)
    assert table["inner_ttl"].tolist() == [64, 63, 64]


def test_malformed_lengths(tmp_path) -> None:
    frames = [
        patch(GOLDEN, 14, b"\x44"),  # outer IHL 4
        patch(GOLDEN, 16, b"\x05\xdc"),  # outer total length 1500 in a 126-byte frame
        patch(GOLDEN, 38, b"\x00\x04"),  # UDP length 4
        patch(GOLDEN, 82 + 32, b"\x40"),  # inner TCP data offset 4
        patch(GOLDEN, 42, b"\x3f"),  # Geneve options of 252 bytes in an 84-byte payload
    ]
    table = read_one(tmp_path, [(LINK_ETHERNET, frame) for frame in frames])
    assert table["status"].tolist() == [
        "malformed_outer_ip_header_length",
        "malformed_outer_ip_total_length",
        "malformed_udp_length",
        "malformed_inner_tcp_header_length",
        "malformed_geneve_options",
    ]
    assert table["outer_src_lo"].tolist() == [0xFFFF_0A00_0101] * 5
    assert table["inner_sport"].tolist() == [0, 0, 0, 40000, 0]


def test_snapped_golden_packet(tmp_path) -> None:
    boundaries = {  # captured bytes -> status: one byte short of each header's end
        13: "truncated_link",
        14 + 19: "truncated_outer_ip",
        34 + 7: "truncated_outer_l4",
        42 + 7: "truncated_geneve",
        50 + 31: "truncated_geneve_options",
        82 + 19: "truncated_inner_ip",
        102 + 23: "truncated_inner_l4",
        126: "ok",
    }
    packets = [(f"golden[:{cut}]", LINK_ETHERNET, GOLDEN[:cut], len(GOLDEN)) for cut in boundaries]
    paths, labels = write_captures(tmp_path, packets, "pcap-ns-be")
    table = assert_decoders_agree(paths, labels)
    assert table["status"].tolist() == list(boundaries.values())
    assert table["cap_len_bytes"].tolist() == list(boundaries)


# Random combinations of the layers, cuts and corrupted bytes.
INNER_CHOICES = list(inner_packets().values())
GENEVE_CHOICES = [build for build, _, _ in geneve_variants().values()]
CARRIER_CHOICES = [build for build, _, _ in outer_carriers().values()]
OTHER_CHOICES = [packet for packet, _, _ in outer_others().values()]
LINK_CHOICES = list(LINKS.values()) + [(LINK_UNSUPPORTED, lambda ip: ip)]


@st.composite
def random_packets(draw) -> tuple[str, int, bytes, int]:
    """A link, outer, Geneve and inner layer drawn from the layouts, with up to two bytes overwritten and a cut."""
    inner = draw(st.sampled_from(INNER_CHOICES))[0]
    payload = draw(st.sampled_from(GENEVE_CHOICES))(inner)
    if draw(st.integers(0, 4)):
        packet = draw(st.sampled_from(CARRIER_CHOICES))(payload)
    else:
        packet = draw(st.sampled_from(OTHER_CHOICES))
    link_type, build = draw(st.sampled_from(LINK_CHOICES))
    frame = bytearray(build(packet))
    for _ in range(draw(st.integers(0, 2))):
        frame[draw(st.integers(0, len(frame) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(frame)))
    return f"random {bytes(frame).hex()} cut {cut}", link_type, bytes(frame[:cut]), len(frame)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(packets=st.lists(random_packets(), min_size=1, max_size=8), fmt=st.sampled_from(FORMATS))
def test_random_combinations(tmp_path, packets: list[tuple[str, int, bytes, int]], fmt: str) -> None:
    paths, labels = write_captures(tmp_path, packets, fmt)
    assert_decoders_agree(paths, labels)
