"""Build wire frames byte by byte: Ethernet/VLAN/Linux cooked, IPv4/IPv6, TCP/UDP/ICMP with valid checksums, Geneve with AWS options.

Plain ``struct`` packing, no per-layer objects, so the simulator writes a million frames in seconds.
Addresses are ``ipaddress`` objects, strings or integers.
"""

from __future__ import annotations

import functools
import ipaddress
import struct
from collections.abc import Iterable, Sequence

from ..decode.geneve import (
    AWS_OPTION_ATTACHMENT_ID,
    AWS_OPTION_CLASS,
    AWS_OPTION_ENDPOINT_ID,
    AWS_OPTION_FLOW_COOKIE,
    GENEVE_PORT,
    PROTOCOL_IPV4,
    PROTOCOL_IPV6,
)
from ..decode.ip import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
from ..decode.link import ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN

Address = ipaddress.IPv4Address | ipaddress.IPv6Address | str | int

TCP_FIN = 0x01
TCP_SYN = 0x02
TCP_RST = 0x04
TCP_PSH = 0x08
TCP_ACK = 0x10

_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBBHHH")
_UDP = struct.Struct("!HHHH")
_GENEVE = struct.Struct("!BBHI")


@functools.lru_cache(maxsize=1 << 16)
def ip_address(value: Address) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return value
    return ipaddress.ip_address(value)


@functools.lru_cache(maxsize=1 << 16)
def packed(value: Address | bytes) -> bytes:
    """The address in network byte order, 4 or 16 bytes (given so already, it is returned as it is)."""
    if isinstance(value, bytes):
        return value
    return ip_address(value).packed


def internet_checksum(data: bytes) -> int:
    """The ones'-complement checksum of RFC 1071 over 16-bit big-endian words.

    Read as one big-endian integer, the data is congruent modulo 0xFFFF to the sum of its 16-bit words
    (2**16 = 1 mod 0xFFFF), so one C-level modulo replaces the word loop.
    """
    if len(data) % 2:
        data += b"\0"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF
    return ~total & 0xFFFF




def _pseudo_header(src: Address, dst: Address, proto: int, length: int) -> bytes:
    s, d = packed(src), packed(dst)
    if len(s) == 4:
        return s + d + struct.pack("!BBH", 0, proto, length)
    return s + d + struct.pack("!IxxxB", length, proto)


def ipv4(
    src: Address,
    dst: Address,
    proto: int,
    payload: bytes,
    ttl: int = 64,
    ident: int = 0,
    df: bool = False,
    mf: bool = False,
    frag_offset: int = 0,
    options: bytes = b"",
    total_length: int | None = None,
) -> bytes:
    """An IPv4 packet (RFC 791) with a correct header checksum; ``total_length`` overrides the field (0 for BIG TCP)."""
    header_len = 20 + len(options)
    length = header_len + len(payload) if total_length is None else total_length
    flags = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    header = _IPV4.pack(
        0x40 | header_len // 4, 0, length, ident, flags, ttl, proto, 0, packed(src), packed(dst)
    ) + options
    checksum = internet_checksum(header)
    return header[:10] + struct.pack("!H", checksum) + header[12:] + payload


def ipv6(
    src: Address,
    dst: Address,
    next_header: int,
    payload: bytes,
    hop_limit: int = 64,
    flow_label: int = 0,
    payload_length: int | None = None,
) -> bytes:
    """An IPv6 packet (RFC 8200); extension headers, if any, are the caller's part of ``payload``."""
    length = len(payload) if payload_length is None else payload_length
    return _IPV6.pack(0x6000_0000 | flow_label, length, next_header, hop_limit, packed(src), packed(dst)) + payload


def ip_packet(src: Address, dst: Address, proto: int, payload: bytes, ttl: int = 64, ident: int = 0, df: bool = True) -> bytes:
    """An IPv4 or IPv6 packet by the family of ``src``."""
    if len(packed(src)) == 4:
        return ipv4(src, dst, proto, payload, ttl=ttl, ident=ident, df=df)
    return ipv6(src, dst, proto, payload, hop_limit=ttl)


def tcp(
    src: Address,
    dst: Address,
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    payload: bytes = b"",
    window: int = 65535,
    mss: int | None = None,
) -> bytes:
    """A TCP segment (RFC 9293) with its checksum over the pseudo-header of ``src`` and ``dst``."""
    options = struct.pack("!BBH", 2, 4, mss) if mss else b""
    offset = (20 + len(options)) // 4
    segment = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, offset << 4, flags, window, 0, 0) + options + payload
    checksum = internet_checksum(_pseudo_header(src, dst, IPPROTO_TCP, len(segment)) + segment)
    return segment[:16] + struct.pack("!H", checksum) + segment[18:]


def udp(src: Address, dst: Address, sport: int, dport: int, payload: bytes, checksum: bool = True) -> bytes:
    """A UDP datagram (RFC 768); without ``checksum`` the field is 0 ("none", IPv4 only)."""
    length = 8 + len(payload)
    datagram = _UDP.pack(sport, dport, length, 0) + payload
    if not checksum:
        return datagram
    value = internet_checksum(_pseudo_header(src, dst, IPPROTO_UDP, length) + datagram) or 0xFFFF
    return datagram[:6] + struct.pack("!H", value) + datagram[8:]


def icmp_echo(src: Address, dst: Address, ident: int, seq: int, payload: bytes = b"", reply: bool = False) -> bytes:
    """An ICMP (RFC 792) or ICMPv6 (RFC 4443) echo request or reply, by the family of ``src``."""
    v6 = len(packed(src)) == 16
    icmp_type = (129 if reply else 128) if v6 else (0 if reply else 8)
    message = struct.pack("!BBHHH", icmp_type, 0, 0, ident, seq) + payload
    pseudo = _pseudo_header(src, dst, IPPROTO_ICMPV6, len(message)) if v6 else b""
    checksum = internet_checksum(pseudo + message)
    return message[:2] + struct.pack("!H", checksum) + message[4:]


def icmp_protocol(src: Address) -> int:
    return IPPROTO_ICMPV6 if len(packed(src)) == 16 else IPPROTO_ICMP


def geneve_option(option_class: int, option_type: int, data: bytes) -> bytes:
    """One Geneve option TLV (RFC 8926 3.5); ``data`` is padded to 4-byte words."""
    data += b"\0" * (-len(data) % 4)
    return struct.pack("!HBB", option_class, option_type, len(data) // 4) + data


def aws_options(endpoint_id: int, attachment_id: int, flow_cookie: int, order: Sequence[int] = (1, 2, 3)) -> bytes:
    """The three GWLB options of class 0x0108 (shared/docs/gwlb.md), in ``order``."""
    values = {
        AWS_OPTION_ENDPOINT_ID: struct.pack("!Q", endpoint_id),
        AWS_OPTION_ATTACHMENT_ID: struct.pack("!Q", attachment_id),
        AWS_OPTION_FLOW_COOKIE: struct.pack("!I", flow_cookie),
    }
    return b"".join(geneve_option(AWS_OPTION_CLASS, t, values[t]) for t in order)


def geneve(protocol: int, options: bytes, payload: bytes, vni: int = 0, oam: bool = False, critical: bool = False, version: int = 0) -> bytes:
    """A Geneve header (RFC 8926 3.4) with ``options`` (whole 4-byte words) and the inner ``payload``."""
    flags = (0x80 if oam else 0) | (0x40 if critical else 0)
    return _GENEVE.pack(version << 6 | len(options) // 4, flags, protocol, vni << 8) + options + payload


def ethernet(payload: bytes, ethertype: int, dst: bytes = b"\x02\0\0\0\0\x02", src: bytes = b"\x02\0\0\0\0\x01", vlans: Iterable[int] = ()) -> bytes:
    """An Ethernet II frame with 802.1Q tags, outermost first."""
    tags = b"".join(struct.pack("!HH", ETHERTYPE_VLAN, vid & 0x0FFF) for vid in vlans)
    return dst + src + tags + struct.pack("!H", ethertype) + payload


def linux_sll2(payload: bytes, protocol: int, ifindex: int = 2, packet_type: int = 0) -> bytes:
    """A Linux cooked v2 header (LINKTYPE_LINUX_SLL2), what ``tcpdump -i any`` writes."""
    return struct.pack("!HHIHBB8s", protocol, 0, ifindex, 1, packet_type, 6, b"\x02\0\0\0\0\x01\0\0") + payload


def linux_sll(payload: bytes, protocol: int, packet_type: int = 0) -> bytes:
    """A Linux cooked v1 header (LINKTYPE_LINUX_SLL)."""
    return struct.pack("!HHH8sH", packet_type, 1, 6, b"\x02\0\0\0\0\x01\0\0", protocol) + payload


def ethertype_of(packet: bytes) -> int:
    return ETHERTYPE_IPV6 if packet[0] >> 4 == 6 else ETHERTYPE_IPV4


def geneve_protocol_of(packet: bytes) -> int:
    return PROTOCOL_IPV6 if packet[0] >> 4 == 6 else PROTOCOL_IPV4


def gwlb_encapsulate(
    inner: bytes,
    outer_src: Address,
    outer_dst: Address,
    sport: int,
    options: bytes,
    ttl: int = 255,
    ident: int = 0,
    udp_checksum: bool = True,
    port: int = GENEVE_PORT,
) -> bytes:
    """The outer IPv4/UDP/Geneve packet GWLB sends: ``inner`` wrapped with ``options`` (shared/docs/gwlb.md)."""
    payload = geneve(geneve_protocol_of(inner), options, inner)
    return ipv4(outer_src, outer_dst, IPPROTO_UDP, udp(outer_src, outer_dst, sport, port, payload, checksum=udp_checksum), ttl=ttl, ident=ident)


def fragment_ipv4(packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet into fragments of at most ``mtu`` bytes (RFC 791 3.2); one piece when it fits."""
    if len(packet) <= mtu:
        return [packet]
    header_len = (packet[0] & 0x0F) * 4
    header, payload = packet[:header_len], packet[header_len:]
    step = (mtu - header_len) // 8 * 8
    ident = struct.unpack_from("!H", header, 4)[0]
    ttl, proto = header[8], header[9]
    src, dst = header[12:16], header[16:20]
    pieces = []
    for offset in range(0, len(payload), step):
        chunk = payload[offset : offset + step]
        more = offset + step < len(payload)
        pieces.append(ipv4(src, dst, proto, chunk, ttl=ttl, ident=ident, mf=more, frag_offset=offset, options=header[20:]))
    return pieces
