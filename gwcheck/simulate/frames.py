"""Build wire frames byte by byte: Ethernet/VLAN/Linux cooked, IPv4/IPv6, TCP/UDP/ICMP with valid checksums, Geneve with AWS options.

Plain ``struct`` packing, no per-layer objects, checksums summed with one big-integer modulo; the outer headers
of a flow are packed once (``GwlbEncapsulation``), so the simulator writes a million frames in seconds.
Addresses are ``ipaddress`` objects, strings or integers.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import struct
from collections.abc import Iterable, Sequence

import numpy as np

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
_TCP_MSS = struct.Struct("!BBH")
_ICMP_ECHO = struct.Struct("!BBHHH")

IPV4_DF = 0x4000
IPV4_MF = 0x2000
IPV4_LENGTH_AT, IPV4_ID_AT, IPV4_CHECKSUM_AT = 2, 4, 10  # field offsets in the IPv4 header (RFC 791 3.1)
UDP_LENGTH_AT, UDP_CHECKSUM_AT = 4, 6  # in the UDP header (RFC 768)
TCP_OPTION_MSS = 2  # RFC 9293 3.2
TCP_MSS_OPTION_WORD = TCP_OPTION_MSS << 8 | _TCP_MSS.size  # the option's first word: kind and length


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
    if isinstance(value, str):  # inet_pton parses text far faster than ipaddress
        return socket.inet_pton(socket.AF_INET6 if ":" in value else socket.AF_INET, value)
    return ip_address(value).packed


def word_sum(data: bytes) -> int:
    """The sum of ``data``'s 16-bit big-endian words modulo 0xFFFF, odd data padded with a zero byte (RFC 1071).

    Read as one big-endian integer, the data is congruent modulo 0xFFFF to the sum of its 16-bit words
    (2**16 = 1 mod 0xFFFF), so one C-level modulo replaces the word loop.  The sums of pieces that each
    start at an even offset add up to the sum of the whole.
    """
    value = int.from_bytes(data, "big")
    return (value << 8 if len(data) & 1 else value) % 0xFFFF


def checksum_of(total: int) -> int:
    """The checksum field for words (not all zero) summing to ``total``: the ones' complement of their folded sum."""
    return 0xFFFF - (total % 0xFFFF or 0xFFFF)


def checksums_of(totals: np.ndarray) -> np.ndarray:
    """``checksum_of`` of each of an array of word sums."""
    folded = totals % 0xFFFF
    return 0xFFFF - np.where(folded == 0, 0xFFFF, folded)


def internet_checksum(data: bytes) -> int:
    """The ones'-complement checksum of RFC 1071 over 16-bit big-endian words."""
    return checksum_of(word_sum(data)) if any(data) else 0xFFFF


@functools.lru_cache(maxsize=1 << 17)
def _address_sum(src: Address | bytes, dst: Address | bytes) -> int:
    """The word sum of two addresses, their share of an IPv4 header or pseudo-header checksum."""
    return word_sum(packed(src) + packed(dst))


class IpHeader:
    """The IP header of one source's packets of one protocol to one destination, its fixed checksum share summed once.

    IPv4 (RFC 791) or IPv6 (RFC 8200) by the family of ``src``; the fragment fields and options are IPv4's.
    """

    def __init__(
        self,
        src: Address,
        dst: Address,
        proto: int,
        ttl: int = 64,
        df: bool = False,
        mf: bool = False,
        frag_offset: int = 0,
        options: bytes = b"",
    ) -> None:
        self.src, self.dst, self.proto, self.ttl, self.options = packed(src), packed(dst), proto, ttl, options
        self.v6 = len(self.src) == 16
        self._flags = (IPV4_DF if df else 0) | (IPV4_MF if mf else 0) | (frag_offset // 8)
        self._version_ihl = 0x40 | (_IPV4.size + len(options)) // 4
        # The word sum of the fields every packet shares: all but the length, the ID and the checksum.
        self.fixed_sum = (self._version_ihl << 8) + self._flags + (ttl << 8 | proto) + _address_sum(src, dst) + (word_sum(options) if options else 0)
        self.size = _IPV6.size if self.v6 else _IPV4.size + len(options)

    def header(self, length: int, ident: int = 0) -> bytes:
        """The header, options included, of a packet of ``length`` bytes (IPv6: of payload) with IPv4 ID ``ident``."""
        if self.v6:
            return _IPV6.pack(0x6000_0000, length, self.proto, self.ttl, self.src, self.dst)
        checksum = checksum_of(self.fixed_sum + length + ident)
        return _IPV4.pack(self._version_ihl, 0, length, ident, self._flags, self.ttl, self.proto, checksum, self.src, self.dst) + self.options

    def wrap(self, payload: bytes, ident: int = 0) -> bytes:
        """The packet carrying ``payload``."""
        return self.header(len(payload) if self.v6 else self.size + len(payload), ident) + payload


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
    header = IpHeader(src, dst, proto, ttl, df, mf, frag_offset, options)
    return header.header(header.size + len(payload) if total_length is None else total_length, ident) + payload


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
    return IpHeader(src, dst, proto, ttl, df=df).wrap(payload, ident)


class TcpHeader:
    """The TCP header of one side of a connection (RFC 9293), its fixed checksum share summed once."""

    def __init__(self, src: Address, dst: Address, sport: int, dport: int, window: int = 65535) -> None:
        self.sport, self.dport, self.window = sport, dport, window
        self.fixed_sum = _address_sum(src, dst) + IPPROTO_TCP + sport + dport + window

    def segment(self, seq: int, ack: int, flags: int, payload: bytes = b"", mss: int | None = None, payload_sum: int | None = None) -> bytes:
        """A segment with its checksum; ``mss`` adds the MSS option; ``payload_sum`` is the payload's word sum, when known."""
        options = _TCP_MSS.pack(TCP_OPTION_MSS, _TCP_MSS.size, mss) if mss else b""
        header_len = _TCP.size + len(options)
        seq &= 0xFFFFFFFF
        ack &= 0xFFFFFFFF
        total = self.fixed_sum + header_len + len(payload) + (seq >> 16) + (seq & 0xFFFF) + (ack >> 16) + (ack & 0xFFFF)
        total += (header_len << 10 | flags) + (TCP_MSS_OPTION_WORD + mss if mss else 0)
        total += word_sum(payload) if payload_sum is None else payload_sum
        header = _TCP.pack(self.sport, self.dport, seq, ack, header_len << 2, flags, self.window, checksum_of(total), 0)
        return header + options + payload


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
    return TcpHeader(src, dst, sport, dport, window).segment(seq, ack, flags, payload, mss)


class UdpHeader:
    """The UDP header of one source port's datagrams between two addresses (RFC 768), its fixed checksum share summed once."""

    def __init__(self, src: Address, dst: Address, sport: int, dport: int) -> None:
        self.sport, self.dport = sport, dport
        self.fixed_sum = _address_sum(src, dst) + IPPROTO_UDP + sport + dport  # the pseudo-header's and ports' share

    def header(self, length: int, payload_sum: int | None) -> bytes:
        """The header of a ``length``-byte datagram whose payload's word sum is ``payload_sum``; None: no checksum (0)."""
        checksum = 0 if payload_sum is None else checksum_of(self.fixed_sum + 2 * length + payload_sum) or 0xFFFF
        return _UDP.pack(self.sport, self.dport, length, checksum)

    def datagram(self, payload: bytes, checksum: bool = True, payload_sum: int | None = None) -> bytes:
        """A datagram carrying ``payload``, whose word sum ``payload_sum`` is computed when not given."""
        if checksum and payload_sum is None:
            payload_sum = word_sum(payload)
        return self.header(_UDP.size + len(payload), payload_sum if checksum else None) + payload


def udp(src: Address, dst: Address, sport: int, dport: int, payload: bytes, checksum: bool = True) -> bytes:
    """A UDP datagram (RFC 768); without ``checksum`` the field is 0 ("none", IPv4 only)."""
    return UdpHeader(src, dst, sport, dport).datagram(payload, checksum)


def icmp_echo(src: Address, dst: Address, ident: int, seq: int, payload: bytes = b"", reply: bool = False) -> bytes:
    """An ICMP (RFC 792) or ICMPv6 (RFC 4443) echo request or reply, by the family of ``src``."""
    v6 = len(packed(src)) == 16
    icmp_type = (129 if reply else 128) if v6 else (0 if reply else 8)
    total = (icmp_type << 8) + ident + seq + word_sum(payload)
    if v6:  # the ICMPv6 checksum covers a pseudo-header (RFC 4443 2.3)
        total += _address_sum(src, dst) + IPPROTO_ICMPV6 + _ICMP_ECHO.size + len(payload)
    return _ICMP_ECHO.pack(icmp_type, 0, checksum_of(total), ident, seq) + payload


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


class GwlbEncapsulation:
    """The outer IPv4/UDP/Geneve headers of one direction of one GWLB flow, packed once; ``wrap`` puts a packet inside.

    Every outer field but the lengths, the IP ID and the checksums is the same for all packets of the flow, so
    their checksum shares are summed here once and ``wrap`` adds only what varies (shared/docs/gwlb.md).
    """

    def __init__(
        self,
        outer_src: Address,
        outer_dst: Address,
        sport: int,
        options: bytes,
        protocol: int = PROTOCOL_IPV4,
        ttl: int = 255,
        udp_checksum: bool = True,
        port: int = GENEVE_PORT,
        link: bytes = b"",
    ) -> None:
        self.link = link  # the link-layer header put before each packet
        self.geneve = geneve(protocol, options, b"")
        self.geneve_sum = word_sum(self.geneve)
        self.ip = IpHeader(outer_src, outer_dst, IPPROTO_UDP, ttl)
        self.udp = UdpHeader(outer_src, outer_dst, sport, port)
        self.udp_checksum = udp_checksum

    def wrap(self, inner: bytes, ident: int = 0) -> bytes:
        """The link header and outer packet around ``inner``, with lengths, IP ID ``ident`` and checksums filled in."""
        udp_length = _UDP.size + len(self.geneve) + len(inner)
        payload_sum = self.geneve_sum + word_sum(inner) if self.udp_checksum else None
        ip_header = self.ip.header(_IPV4.size + udp_length, ident)
        return b"".join((self.link, ip_header, self.udp.header(udp_length, payload_sum), self.geneve, inner))


class EncapsulationTable:
    """The outer headers of many GWLB flows, as arrays, to pack those of many packets at once with numpy.

    Row i is ``bases[base[i]]`` with UDP source port ``sport[i]`` and Geneve options ``options[i]``: flows differ
    from the few bases (one per appliance, GWLB node, direction and inner protocol) only there.  The bases' own
    port and options are ignored, but their options must be as long as the rows' and their links of one length.
    """

    def __init__(self, bases: Sequence[GwlbEncapsulation], base: np.ndarray, sport: np.ndarray, options: Sequence[bytes]) -> None:
        self.link_bytes = len(bases[0].link)
        self._geneve_bytes = len(bases[0].geneve)
        udp_at = self.link_bytes + _IPV4.size
        options_at = udp_at + _UDP.size + _GENEVE.size
        option_rows = np.frombuffer(b"".join(options), np.uint8).reshape(len(options), self._geneve_bytes - _GENEVE.size)
        templates = np.frombuffer(b"".join(b.wrap(b"") for b in bases), np.uint8).reshape(len(bases), -1)
        self._templates = templates[base]
        self._templates[:, udp_at] = sport >> 8
        self._templates[:, udp_at + 1] = sport & 0xFF
        self._templates[:, options_at:] = option_rows
        base_udp_sum = np.array([b.udp.fixed_sum - b.udp.sport + word_sum(b.geneve[: _GENEVE.size]) for b in bases], np.int64)
        self._udp_sum = base_udp_sum[base] + sport + option_rows.view(">u2").sum(axis=1, dtype=np.int64)
        self._ip_sum = np.array([b.ip.fixed_sum for b in bases], np.int64)[base]
        self._udp_checksum = np.array([b.udp_checksum for b in bases], bool)[base]

    @property
    def header_bytes(self) -> int:
        return self._templates.shape[1]

    def headers(self, which: np.ndarray, inner_bytes: np.ndarray, inner_sums: np.ndarray, ip_ids: np.ndarray) -> np.ndarray:
        """Row k: the bytes ``wrap`` puts before an inner packet of ``inner_bytes[k]`` bytes whose ``word_sum`` is
        ``inner_sums[k]``, with IP ID ``ip_ids[k]``, in the encapsulation of row ``which[k]``."""
        rows = self._templates[which]
        udp_length = _UDP.size + self._geneve_bytes + inner_bytes
        length = _IPV4.size + udp_length
        udp_checksum = checksums_of(self._udp_sum[which] + 2 * udp_length + inner_sums)
        udp_checksum[udp_checksum == 0] = 0xFFFF  # 0 means "no checksum" (RFC 768)
        fields = (
            (IPV4_LENGTH_AT, length),
            (IPV4_ID_AT, ip_ids),
            (IPV4_CHECKSUM_AT, checksums_of(self._ip_sum[which] + length + ip_ids)),
            (_IPV4.size + UDP_LENGTH_AT, udp_length),
            (_IPV4.size + UDP_CHECKSUM_AT, np.where(self._udp_checksum[which], udp_checksum, 0)),
        )
        for offset, values in fields:
            rows[:, self.link_bytes + offset] = values >> 8
            rows[:, self.link_bytes + offset + 1] = values & 0xFF
        return rows


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
    return GwlbEncapsulation(outer_src, outer_dst, sport, options, geneve_protocol_of(inner), ttl, udp_checksum, port).wrap(inner, ident)


def fragment_ipv4(packet: bytes, mtu: int) -> list[bytes]:
    """Split an IPv4 packet into fragments of at most ``mtu`` bytes (RFC 791 3.2); one piece when it fits."""
    if len(packet) <= mtu:
        return [packet]
    header_len = (packet[0] & 0x0F) * 4
    header, payload = packet[:header_len], packet[header_len:]
    step = (mtu - header_len) // 8 * 8
    ident = int.from_bytes(header[4:6], "big")
    ttl, proto = header[8], header[9]
    src, dst = header[12:16], header[16:20]
    pieces = []
    for offset in range(0, len(payload), step):
        chunk = payload[offset : offset + step]
        more = offset + step < len(payload)
        pieces.append(ipv4(src, dst, proto, chunk, ttl=ttl, ident=ident, mf=more, frag_offset=offset, options=header[20:]))
    return pieces
