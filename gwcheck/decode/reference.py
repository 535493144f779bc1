"""A plain per-packet reference decoder on dpkt (tcpdump.org link types; RFC 791, 8200, 768, 9293, 792, 4443, 8926; AWS GWLB guide)."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import NamedTuple

import dpkt
import numpy as np
import pandas as pd

from ..capture import index_capture
from ..schema import (
    COLUMN_DTYPES,
    COLUMN_NAMES,
    DECODER_COLUMNS,
    RECORD_COLUMNS,
    DecodeStatus,
    GwlbShape,
    FragmentFlags,
    PacketKind,
)

GENEVE_PORT = 6081  # IANA, RFC 8926 3.3
WORD_BYTES = 4  # the unit of the IPv4 header length, TCP data offset, AH length and Geneve lengths

# Link layers (tcpdump.org link-layer header types).
LINKTYPE_NULL = 0  # BSD loopback: address family in the writing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_OPENBSD = 12
LINKTYPE_RAW_OLD = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback: address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
RAW_IP_LINK_TYPES = frozenset({LINKTYPE_RAW, LINKTYPE_RAW_OPENBSD, LINKTYPE_RAW_OLD})
LOOPBACK_LINK_TYPES = frozenset({LINKTYPE_NULL, LINKTYPE_LOOP})
LOOPBACK_HEADER_BYTES = 4
AF_INET = 2
AF_INET6 = frozenset({10, 24, 28, 30})  # Linux, NetBSD/OpenBSD, FreeBSD, macOS
FAMILY_MAX = 0xFFFF  # a little-endian read above this was written big-endian

ETHERNET_HEADER_BYTES = 14
VLAN_TAG_BYTES = 4
VLAN_ETHERTYPES = frozenset({dpkt.ethernet.ETH_TYPE_8021Q, dpkt.ethernet.ETH_TYPE_8021AD, dpkt.ethernet.ETH_TYPE_QINQ1})
IP_VERSION_OF_ETHERTYPE = {dpkt.ethernet.ETH_TYPE_IP: 4, dpkt.ethernet.ETH_TYPE_IP6: 6}
ETHERTYPE_OF_IP_VERSION = {4: dpkt.ethernet.ETH_TYPE_IP, 6: dpkt.ethernet.ETH_TYPE_IP6}
SLL_HEADER_BYTES = 16
SLL2_HEADER_BYTES = 20
LINK_HEADERS = {  # link type -> (dpkt header class, header bytes, name of its ethertype field)
    LINKTYPE_ETHERNET: (dpkt.ethernet.Ethernet, ETHERNET_HEADER_BYTES, "type"),
    LINKTYPE_LINUX_SLL: (dpkt.sll.SLL, SLL_HEADER_BYTES, "ethtype"),
    LINKTYPE_LINUX_SLL2: (dpkt.sll2.SLL2, SLL2_HEADER_BYTES, "ethtype"),
}

# IP (RFC 791, RFC 8200) and what follows it.
IPV4_MIN_HEADER_BYTES = 20
IPV6_HEADER_BYTES = 40
IPV6_FRAGMENT_HEADER_BYTES = 8
IPV6_EXTENSION_MIN_BYTES = 2  # next header and length
IPV6_EXTENSION_UNIT = 8  # RFC 8200 4.3: length in 8-byte units past the first 8
# IANA's extension headers but ESP (opaque): hop-by-hop, routing, fragment, AH, destination options, mobility, HIP, shim6
IPV6_EXTENSION_HEADERS = frozenset({0, 43, 44, 51, 60, 135, 139, 140})
FRAGMENT_OFFSET_UNIT = 8
IPV4_MAPPED_HI = 0
IPV4_MAPPED_LO = 0xFFFF_0000_0000  # ::ffff:0:0/96 (RFC 4291 2.5.5.2), low half
UDP_HEADER_BYTES = 8
TCP_MIN_HEADER_BYTES = 20
TCP_OPTION_END = 0
TCP_OPTION_NOP = 1
TCP_OPTION_MSS = 2
TCP_OPTION_MSS_BYTES = 4
TCP_OPTION_HEADER_BYTES = 2  # kind and length
ICMP_HEADER_BYTES = 4
ICMP_ECHO_HEADER_BYTES = 8
ICMP_PROTOCOLS = {  # IP protocol -> (dpkt header, dpkt echo header, the types carrying identifier and sequence)
    dpkt.ip.IP_PROTO_ICMP: (dpkt.icmp.ICMP, dpkt.icmp.ICMP.Echo, frozenset({0, 8, 13, 14})),  # echo, timestamp (RFC 792)
    dpkt.ip.IP_PROTO_ICMP6: (dpkt.icmp6.ICMP6, dpkt.icmp6.ICMP6.Echo, frozenset({128, 129})),  # echo (RFC 4443)
}
HTTP_STATUS_LINE = re.compile(rb"HTTP/1\.[0-9] ([0-9]{3})")  # RFC 9112 4

# Geneve (RFC 8926) and the AWS options (shared/docs/gwlb.md).
GENEVE_HEADER_BYTES = 8
GENEVE_VERSION = 0
OPTION_HEADER_BYTES = 4
PROTOCOL_ETHERNET = dpkt.ethernet.ETH_TYPE_TEB
GWLB_PROTOCOLS = frozenset({dpkt.ethernet.ETH_TYPE_IP, dpkt.ethernet.ETH_TYPE_IP6})
AWS_OPTION_CLASS = 0x0108
AWS_OPTIONS = {  # type -> (data bytes, column)
    1: (8, "aws_endpoint_id"),
    2: (8, "aws_attachment_id"),
    3: (4, "aws_flow_cookie"),
}
MISSING_AWS_OPTION = {1: GwlbShape.MISSING_ENDPOINT, 2: GwlbShape.MISSING_ATTACHMENT, 3: GwlbShape.MISSING_COOKIE}

# The inner digest: xxHash64's round and avalanche (Collet, xxHash specification) over little-endian words.
PRIME1 = 0x9E3779B185EBCA87
PRIME2 = 0xC2B2AE3D27D4EB4F
PRIME3 = 0x165667B19E3779F9
UINT64 = (1 << 64) - 1
DIGEST_WORD_BYTES = 8
DIGEST_STRIPE_BYTES = 4 * DIGEST_WORD_BYTES
DIGEST_ROTATE = 31
DIGEST_IGNORED_BYTES = {4: (8, 10, 11), 6: (7,)}  # IPv4 TTL and header checksum; IPv6 hop limit
NO_DIGEST = 0
ZERO_DIGEST_STORED_AS = 1  # 0 means "no digest"

#: The columns decode_frame returns: every decoder column but those of the capture records.
FRAME_COLUMNS = tuple(name for name in DECODER_COLUMNS if name not in RECORD_COLUMNS)
BOOL_COLUMNS = frozenset(name for name in FRAME_COLUMNS if COLUMN_DTYPES[name] == np.bool_)


class GeneveHeader(dpkt.Packet):
    """The Geneve base header (RFC 8926 3.4)."""

    __hdr__ = (("_ver_opt_len", "B", 0), ("_flags", "B", 0), ("protocol", "H", 0), ("_vni_reserved", "I", 0))
    __bit_fields__ = {
        "_ver_opt_len": (("version", 2), ("opt_words", 6)),
        "_flags": (("oam", 1), ("critical", 1), ("_flags_reserved", 6)),
        "_vni_reserved": (("vni", 24), ("_vni_low_reserved", 8)),
    }


class GeneveOption(dpkt.Packet):
    """A Geneve option header (RFC 8926 3.5)."""

    __hdr__ = (("option_class", "H", 0), ("_type", "B", 0), ("_length", "B", 0))
    __bit_fields__ = {
        "_type": (("critical", 1), ("type", 7)),
        "_length": (("_reserved", 3), ("words", 5)),
    }


class _Stop(Exception):
    """Decoding stops at this packet's current layer with ``status``."""

    def __init__(self, status: DecodeStatus) -> None:
        super().__init__(status.label)
        self.status = status


class _Layer(NamedTuple):
    """The column prefix and statuses of one IP layer, outer or inner."""

    prefix: str
    truncated_ip: DecodeStatus
    bad_version: DecodeStatus
    bad_header_length: DecodeStatus
    bad_total_length: DecodeStatus
    bad_extension: DecodeStatus
    truncated_l4: DecodeStatus
    bad_tcp: DecodeStatus
    bad_udp: DecodeStatus
    tcp_flags_mask: int


OUTER = _Layer(
    "outer",
    DecodeStatus.TRUNCATED_OUTER_IP,
    DecodeStatus.MALFORMED_OUTER_IP_VERSION,
    DecodeStatus.MALFORMED_OUTER_IP_HEADER_LENGTH,
    DecodeStatus.MALFORMED_OUTER_IP_TOTAL_LENGTH,
    DecodeStatus.MALFORMED_OUTER_IPV6_EXTENSION,
    DecodeStatus.TRUNCATED_OUTER_L4,
    DecodeStatus.MALFORMED_OUTER_TCP_HEADER_LENGTH,
    DecodeStatus.MALFORMED_UDP_LENGTH,
    0xFF,  # the outer column keeps the 8 classic flags
)
INNER = _Layer(
    "inner",
    DecodeStatus.TRUNCATED_INNER_IP,
    DecodeStatus.MALFORMED_INNER_IP_VERSION,
    DecodeStatus.MALFORMED_INNER_IP_HEADER_LENGTH,
    DecodeStatus.MALFORMED_INNER_IP_TOTAL_LENGTH,
    DecodeStatus.MALFORMED_INNER_IPV6_EXTENSION,
    DecodeStatus.TRUNCATED_INNER_L4,
    DecodeStatus.MALFORMED_INNER_TCP_HEADER_LENGTH,
    DecodeStatus.MALFORMED_INNER_UDP_LENGTH,
    0x1FF,  # the inner column keeps all 9
)


class _Ip(NamedTuple):
    """What the transport layer needs from a decoded IP header."""

    header_bytes: int  # fixed header, options and extension headers
    total: int  # IP packet length on the wire
    proto: int
    frag: FragmentFlags


def _header(cls: type[dpkt.Packet], data: bytes) -> dpkt.Packet:
    """The fields of dpkt header ``cls`` at the start of ``data`` (long enough), without dpkt decoding the payload."""
    header = cls.__new__(cls)
    dpkt.Packet.unpack(header, data)
    return header


def _address(packed: bytes) -> tuple[int, int]:
    """An IPv4 or IPv6 address as the (high, low) 64-bit halves of its 128-bit form, IPv4 mapped (RFC 4291 2.5.5.2)."""
    value = int.from_bytes(packed, "big")
    if len(packed) == 4:
        return IPV4_MAPPED_HI, IPV4_MAPPED_LO | value
    return value >> 64, value & UINT64


def _rotl(value: int, bits: int) -> int:
    return ((value << bits) | (value >> (64 - bits))) & UINT64


def _digest_round(acc: int, word: int) -> int:
    return (_rotl((acc + word * PRIME2) & UINT64, DIGEST_ROTATE) * PRIME1) & UINT64


def inner_digest(packet: bytes, ip_version: int) -> int:
    """The digest of ``packet`` (0 when empty) with the bytes a router rewrites zeroed: ``ip_version`` 4 or 6, 0 for none."""
    if not packet:
        return NO_DIGEST
    data = bytearray(packet)
    for index in DIGEST_IGNORED_BYTES.get(ip_version, ()):
        if index < len(data):
            data[index] = 0
    def word(k: int) -> int:
        return int.from_bytes(data[k : k + DIGEST_WORD_BYTES], "little")  # short at the end: zero-padded

    seed = PRIME3 ^ len(data)
    lanes = [seed, (seed + PRIME1) & UINT64, (seed + PRIME2) & UINT64, (seed - PRIME1) & UINT64]
    k = 0
    while len(data) - k >= DIGEST_STRIPE_BYTES:
        lanes = [_digest_round(lane, word(k + n * DIGEST_WORD_BYTES)) for n, lane in enumerate(lanes)]
        k += DIGEST_STRIPE_BYTES
    acc = sum(_rotl(lane, bits) for lane, bits in zip(lanes, (1, 7, 12, 18))) & UINT64
    for k in range(k, len(data), DIGEST_WORD_BYTES):
        acc = _digest_round(acc, word(k))
    acc ^= acc >> 33
    acc = (acc * PRIME2) & UINT64
    acc ^= acc >> 29
    acc = (acc * PRIME3) & UINT64
    acc ^= acc >> 32
    return acc or ZERO_DIGEST_STORED_AS


def decode_frame(frame: bytes, link_type: int, wire_len: int, port: int = GENEVE_PORT) -> dict[str, int | bool]:
    """Every decoder column but the record columns for one frame; ``status`` and ``kind`` as integer codes.

    A frame shorter than ``wire_len`` was snapped: a header cut by the capture is truncated, while a length
    field claiming more than the packet carries on the wire is malformed.  Decoding stops at the first
    layer that cannot be decoded; the columns keep what was decoded before.
    """
    row: dict[str, int | bool] = dict.fromkeys(FRAME_COLUMNS, 0)
    row.update(dict.fromkeys(BOOL_COLUMNS, False))
    try:
        _decode_link(frame, link_type, max(wire_len - len(frame), 0), port, row)
        status = DecodeStatus.OK
    except _Stop as stop:
        status = stop.status
    row["status"] = int(status)
    return row


def _decode_link(frame: bytes, link_type: int, wire_extra: int, port: int, row: dict) -> None:
    if link_type in LINK_HEADERS:
        cls, start, field = LINK_HEADERS[link_type]
        if len(frame) < start:
            raise _Stop(DecodeStatus.TRUNCATED_LINK)
        start, ethertype, vlan_ids = _vlan_tags(frame, start, getattr(_header(cls, frame), field))
        if vlan_ids:
            row["vlan_id"], row["vlan_count"] = vlan_ids[0], len(vlan_ids)
        if start is None:
            raise _Stop(DecodeStatus.TRUNCATED_LINK)
    elif link_type in RAW_IP_LINK_TYPES:
        if not frame:
            raise _Stop(DecodeStatus.TRUNCATED_LINK)  # the version nibble tells the protocol
        start, ethertype = 0, ETHERTYPE_OF_IP_VERSION.get(frame[0] >> 4, 0)
    elif link_type == LINKTYPE_IPV4 or link_type == LINKTYPE_IPV6:
        start, ethertype = 0, ETHERTYPE_OF_IP_VERSION[4 if link_type == LINKTYPE_IPV4 else 6]
    elif link_type in LOOPBACK_LINK_TYPES:
        if len(frame) < LOOPBACK_HEADER_BYTES:
            raise _Stop(DecodeStatus.TRUNCATED_LINK)
        header = frame[:LOOPBACK_HEADER_BYTES]
        family = int.from_bytes(header, "big" if link_type == LINKTYPE_LOOP else "little")
        if family > FAMILY_MAX:
            family = int.from_bytes(header, "big")
        start = LOOPBACK_HEADER_BYTES
        version = 4 if family == AF_INET else 6 if family in AF_INET6 else 0
        ethertype = ETHERTYPE_OF_IP_VERSION.get(version, 0)
    else:
        row["kind"] = int(PacketKind.UNSUPPORTED_LINK)
        raise _Stop(DecodeStatus.UNSUPPORTED_LINK_TYPE)
    version = IP_VERSION_OF_ETHERTYPE.get(ethertype)
    if version is None:
        row["kind"] = int(PacketKind.NON_IP)
        return
    _decode_outer(frame[start:], len(frame) - start + wire_extra, version, start, port, row)


def _vlan_tags(data: bytes, start: int, ethertype: int) -> tuple[int | None, int, list[int]]:
    """Step over the 802.1Q/802.1ad tags from ``start``: (payload offset or None when cut, ethertype, tag IDs)."""
    vlan_ids = []
    while ethertype in VLAN_ETHERTYPES:
        if len(data) - start < VLAN_TAG_BYTES:
            return None, ethertype, vlan_ids
        tag = _header(dpkt.ethernet.VLANtag8021Q, data[start:])
        vlan_ids.append(tag.id)
        ethertype = tag.type
        start += VLAN_TAG_BYTES
    return start, ethertype, vlan_ids


def _decode_ip(
    data: bytes, on_wire: int, version: int, layer: _Layer, row: dict
) -> tuple[_Ip | None, bytes, DecodeStatus | None]:
    """Decode the IP header at the start of ``data`` (``on_wire`` bytes on the wire) into ``layer``'s columns.

    Returns (header or None when decoding stops, the captured bytes of the IP packet, status or None).
    """
    p = layer.prefix
    if not data:
        return None, data, layer.truncated_ip
    if data[0] >> 4 != version:
        return None, data, layer.bad_version
    if version == 4:
        return _decode_ipv4(data, on_wire, layer, row)
    if len(data) < IPV6_HEADER_BYTES:
        return None, data, layer.truncated_ip
    ip6 = _header(dpkt.ip6.IP6, data)
    row[f"{p}_src_hi"], row[f"{p}_src_lo"] = _address(ip6.src)
    row[f"{p}_dst_hi"], row[f"{p}_dst_lo"] = _address(ip6.dst)
    row[f"{p}_ttl"] = ip6.hlim
    row[f"{p}_proto"] = ip6.nxt
    total = IPV6_HEADER_BYTES + ip6.plen if ip6.plen else on_wire  # 0: jumbogram or BIG TCP
    row[f"{p}_ip_len_bytes"] = total
    packet = data[:total]
    if total > on_wire:
        return None, packet, layer.bad_total_length
    frag = FragmentFlags(0)
    next_header = ip6.nxt
    position = IPV6_HEADER_BYTES
    status = None
    while next_header in IPV6_EXTENSION_HEADERS:
        if next_header == dpkt.ip.IP_PROTO_FRAGMENT:
            size = IPV6_FRAGMENT_HEADER_BYTES
        elif len(packet) - position < IPV6_EXTENSION_MIN_BYTES:
            status = layer.truncated_ip if position + IPV6_EXTENSION_MIN_BYTES <= total else layer.bad_extension
            break
        elif next_header == dpkt.ip.IP_PROTO_AH:
            size = (packet[position + 1] + 2) * WORD_BYTES  # RFC 4302 2.2: 4-byte units, minus 2
        else:
            size = (packet[position + 1] + 1) * IPV6_EXTENSION_UNIT
        if position + size > len(packet):
            status = layer.truncated_ip if position + size <= total else layer.bad_extension
            break
        if next_header == dpkt.ip.IP_PROTO_FRAGMENT:
            fragment = _header(dpkt.ip6.IP6FragmentHeader, packet[position:])
            frag |= FragmentFlags.IPV6_FRAGMENT_HEADER
            if fragment.m_flag:
                frag |= FragmentFlags.MF
            if fragment.frag_off:
                frag |= FragmentFlags.OFFSET
            row[f"{p}_ip_id"] = fragment.id
            if layer is INNER:
                row["inner_frag_offset_bytes"] = fragment.frag_off * FRAGMENT_OFFSET_UNIT
        next_header = packet[position]
        position += size
        if frag & FragmentFlags.OFFSET:
            break  # a non-first fragment: what follows is payload
    row[f"{p}_frag"] = int(frag)
    row[f"{p}_proto"] = next_header
    if status is not None:
        return None, packet, status
    return _Ip(position, total, next_header, frag), packet, None


def _decode_ipv4(data: bytes, on_wire: int, layer: _Layer, row: dict) -> tuple[_Ip | None, bytes, DecodeStatus | None]:
    """The IPv4 half of :func:`_decode_ip`; a length that lies is malformed before a cut header is truncated."""
    p = layer.prefix
    if len(data) < IPV4_MIN_HEADER_BYTES:
        return None, data, layer.truncated_ip
    ip = _header(dpkt.ip.IP, data)
    row[f"{p}_src_hi"], row[f"{p}_src_lo"] = _address(ip.src)
    row[f"{p}_dst_hi"], row[f"{p}_dst_lo"] = _address(ip.dst)
    row[f"{p}_ttl"] = ip.ttl
    row[f"{p}_ip_id"] = ip.id
    row[f"{p}_proto"] = ip.p
    frag = FragmentFlags(0)
    if ip.df:
        frag |= FragmentFlags.DF
    if ip.mf:
        frag |= FragmentFlags.MF
    if ip.offset:
        frag |= FragmentFlags.OFFSET
    row[f"{p}_frag"] = int(frag)
    if layer is INNER:
        row["inner_frag_offset_bytes"] = ip.offset * FRAGMENT_OFFSET_UNIT
    total = ip.len or on_wire  # 0: TCP segmentation offload, BIG TCP
    row[f"{p}_ip_len_bytes"] = total
    header_bytes = ip.hl * WORD_BYTES
    if header_bytes < IPV4_MIN_HEADER_BYTES:
        return None, data, layer.bad_header_length
    packet = data[:total]
    if total < header_bytes or total > on_wire:
        return None, packet, layer.bad_total_length
    if len(packet) < header_bytes:
        return None, packet, layer.truncated_ip
    return _Ip(header_bytes, total, ip.p, frag), packet, None


def _decode_outer(data: bytes, on_wire: int, version: int, start: int, port: int, row: dict) -> None:
    """Decode the outer IP packet captured in ``data``, which starts at byte ``start`` of the frame."""
    row["outer_ip_version"] = version
    ip, packet, status = _decode_ip(data, on_wire, version, OUTER, row)
    if status is not None:
        raise _Stop(status)
    if ip.frag & FragmentFlags.OFFSET:
        row["kind"] = int(PacketKind.IP_FRAGMENT)
        return
    segment = packet[ip.header_bytes :]
    segment_on_wire = ip.total - ip.header_bytes
    if ip.proto == dpkt.ip.IP_PROTO_UDP:
        row["kind"] = int(PacketKind.UDP)
        udp, length = _decode_udp(segment, segment_on_wire, OUTER, row)
        row["outer_udp_len_bytes"] = length
        row["outer_udp_checksum"] = udp.sum
        if port in (udp.sport, udp.dport):
            row["kind"] = int(PacketKind.GENEVE)
        if not _udp_length_fits(length, segment_on_wire, ip.frag):
            raise _Stop(OUTER.bad_udp)
        if row["kind"] == PacketKind.GENEVE:
            geneve_start = start + ip.header_bytes + UDP_HEADER_BYTES
            _decode_geneve(segment[UDP_HEADER_BYTES:length], length - UDP_HEADER_BYTES, geneve_start, start, row)
    elif ip.proto == dpkt.ip.IP_PROTO_TCP:
        row["kind"] = int(PacketKind.TCP)
        header_bytes = _decode_tcp(segment, segment_on_wire, OUTER, row)
        status_line = HTTP_STATUS_LINE.match(segment[header_bytes:])
        if status_line:
            row["outer_http_status"] = int(status_line.group(1))
    elif ip.proto in ICMP_PROTOCOLS:
        row["kind"] = int(PacketKind.ICMP)
        if len(segment) < ICMP_HEADER_BYTES:
            raise _Stop(OUTER.truncated_l4)
    else:
        row["kind"] = int(PacketKind.IP_OTHER)


def _decode_udp(segment: bytes, on_wire: int, layer: _Layer, row: dict) -> tuple[dpkt.udp.UDP, int]:
    """Fill ``layer``'s UDP columns from the header starting ``segment``; return it and the UDP length."""
    if len(segment) < UDP_HEADER_BYTES:
        raise _Stop(layer.truncated_l4)
    udp = _header(dpkt.udp.UDP, segment)
    length = udp.ulen or on_wire  # 0: BIG TCP, GSO, jumbogram (RFC 2675)
    row[f"{layer.prefix}_sport"], row[f"{layer.prefix}_dport"] = udp.sport, udp.dport
    row[f"{layer.prefix}_l4_payload_bytes"] = max(length - UDP_HEADER_BYTES, 0)
    return udp, length


def _udp_length_fits(length: int, on_wire: int, frag: FragmentFlags) -> bool:
    """A UDP length holds its header and stays within the IP payload, unless later fragments hold the rest."""
    return length >= UDP_HEADER_BYTES and (length <= on_wire or bool(frag & FragmentFlags.MF))


def _decode_tcp(segment: bytes, on_wire: int, layer: _Layer, row: dict) -> int:
    """Fill ``layer``'s TCP columns from the segment starting ``segment``; return the TCP header length."""
    p = layer.prefix
    if len(segment) < TCP_MIN_HEADER_BYTES:
        raise _Stop(layer.truncated_l4)
    tcp = _header(dpkt.tcp.TCP, segment)
    header_bytes = tcp.off * WORD_BYTES
    row[f"{p}_sport"], row[f"{p}_dport"] = tcp.sport, tcp.dport
    row[f"{p}_tcp_flags"] = tcp.flags & layer.tcp_flags_mask
    row[f"{p}_l4_payload_bytes"] = max(on_wire - header_bytes, 0)
    if layer is INNER:
        row["inner_tcp_seq"], row["inner_tcp_ack"] = tcp.seq, tcp.ack
    if header_bytes < TCP_MIN_HEADER_BYTES or header_bytes > on_wire:
        raise _Stop(layer.bad_tcp)
    if len(segment) < header_bytes:
        raise _Stop(layer.truncated_l4)
    if layer is INNER:
        row["inner_tcp_mss"] = _tcp_mss(segment[TCP_MIN_HEADER_BYTES:header_bytes])
    return header_bytes


def _tcp_mss(options: bytes) -> int:
    """The MSS option's value (RFC 9293 3.2), 0 when absent or after a malformed option."""
    position = 0
    while position < len(options):
        kind = options[position]
        if kind == TCP_OPTION_END:
            return 0
        if kind == TCP_OPTION_NOP:
            position += 1
            continue
        if position + TCP_OPTION_HEADER_BYTES > len(options):
            return 0
        size = options[position + 1]
        if size < TCP_OPTION_HEADER_BYTES or position + size > len(options):
            return 0
        if kind == TCP_OPTION_MSS and size == TCP_OPTION_MSS_BYTES:
            return int.from_bytes(options[position + TCP_OPTION_HEADER_BYTES : position + size], "big")
        position += size
    return 0


def _decode_geneve(payload: bytes, on_wire: int, start: int, outer_start: int, row: dict) -> None:
    """Decode Geneve from the UDP ``payload`` (``on_wire`` bytes on the wire) at byte ``start`` of the frame."""
    row["geneve_offset"] = start
    if len(payload) < GENEVE_HEADER_BYTES:
        raise _Stop(DecodeStatus.TRUNCATED_GENEVE)
    geneve = _header(GeneveHeader, payload)
    options_bytes = geneve.opt_words * WORD_BYTES
    row["geneve_version"] = geneve.version
    row["geneve_opt_len_bytes"] = options_bytes
    row["geneve_oam"] = bool(geneve.oam)
    row["geneve_critical"] = bool(geneve.critical)
    row["geneve_protocol"] = geneve.protocol
    row["geneve_vni"] = geneve.vni
    shape = GwlbShape(0)
    if row["outer_ip_version"] == 6:
        shape |= GwlbShape.OUTER_IPV6
    gwlb_header = not (geneve.oam or geneve.critical or geneve.vni) and geneve.protocol in GWLB_PROTOCOLS
    if geneve.version != GENEVE_VERSION or not gwlb_header:
        shape |= GwlbShape.HEADER
    if geneve.version != GENEVE_VERSION:
        row["gwlb_shape"] = int(shape)
        raise _Stop(DecodeStatus.MALFORMED_GENEVE_VERSION)
    inner_start = GENEVE_HEADER_BYTES + options_bytes
    options = payload[GENEVE_HEADER_BYTES:inner_start]
    options_shape, status = _decode_options(options, options_bytes, inner_start > on_wire, row)
    row["gwlb_shape"] = int(shape | options_shape)
    if status is not None:
        raise _Stop(status)
    row["encap_overhead_bytes"] = start + inner_start - outer_start
    inner, inner_on_wire, inner_at = payload[inner_start:], on_wire - inner_start, start + inner_start
    ethertype = geneve.protocol
    if ethertype == PROTOCOL_ETHERNET:
        skip = None
        if len(inner) >= ETHERNET_HEADER_BYTES:
            skip, ethertype, _ = _vlan_tags(inner, ETHERNET_HEADER_BYTES, _header(dpkt.ethernet.Ethernet, inner).type)
        if skip is None:
            row["inner_digest"] = inner_digest(inner, 0)
            raise _Stop(DecodeStatus.TRUNCATED_INNER_ETHERNET)
        inner, inner_on_wire, inner_at = inner[skip:], inner_on_wire - skip, inner_at + skip
    version = IP_VERSION_OF_ETHERTYPE.get(ethertype)
    if version is None:
        row["inner_digest"] = inner_digest(inner, 0)
        return
    row["inner_offset"] = inner_at
    _decode_inner(inner, inner_on_wire, version, row)


def _decode_options(options: bytes, declared: int, past_packet: bool, row: dict) -> tuple[GwlbShape, DecodeStatus | None]:
    """Walk the captured ``options`` of ``declared`` bytes; return their GwlbShape flags and the status if the walk stops.

    ``past_packet`` says the options run past the UDP payload on the wire: a cut there is malformed, not truncated.
    """
    cut = DecodeStatus.MALFORMED_GENEVE_OPTIONS if past_packet else DecodeStatus.TRUNCATED_GENEVE_OPTIONS
    shape = GwlbShape(0)
    seen: list[int] = []  # AWS types, first appearances in order
    status = None
    position = 0
    count = 0
    while position < declared:
        if len(options) - position < OPTION_HEADER_BYTES:
            status = cut
            break
        option = _header(GeneveOption, options[position:])
        end = position + OPTION_HEADER_BYTES + option.words * WORD_BYTES
        if end > declared:
            status = DecodeStatus.MALFORMED_GENEVE_OPTIONS
            break
        if end > len(options):
            status = cut
            break
        count += 1
        data = options[position + OPTION_HEADER_BYTES : end]
        position = end
        if option.critical:
            shape |= GwlbShape.CRITICAL_OPTION
        if option.option_class != AWS_OPTION_CLASS:
            shape |= GwlbShape.OTHER_CLASS
            continue
        if option.type not in AWS_OPTIONS:
            shape |= GwlbShape.UNKNOWN_AWS_OPTION
            continue
        if option.type in seen:
            shape |= GwlbShape.DUPLICATE_OPTION
        else:
            if seen and option.type < max(seen):
                shape |= GwlbShape.ORDER
            seen.append(option.type)
        size, column = AWS_OPTIONS[option.type]
        if len(data) != size:
            shape |= GwlbShape.OPTION_LENGTH
        else:
            row[column] = int.from_bytes(data, "big")  # a duplicate overwrites: the last one wins
    row["geneve_opt_count"] = count
    for aws_type, flag in MISSING_AWS_OPTION.items():
        if aws_type not in seen:
            shape |= flag
    return shape, status


def _decode_inner(data: bytes, on_wire: int, version: int, row: dict) -> None:
    """Decode the inner IP packet captured in ``data`` (``on_wire`` bytes on the wire) and its transport header."""
    row["inner_ip_version"] = version
    ip, packet, status = _decode_ip(data, on_wire, version, INNER, row)
    row["inner_digest"] = inner_digest(data, 0) if status == INNER.bad_version else inner_digest(packet, version)
    if status is not None:
        raise _Stop(status)
    if ip.frag & FragmentFlags.OFFSET:
        return
    segment = packet[ip.header_bytes :]
    segment_on_wire = ip.total - ip.header_bytes
    if ip.proto == dpkt.ip.IP_PROTO_TCP:
        _decode_tcp(segment, segment_on_wire, INNER, row)
    elif ip.proto == dpkt.ip.IP_PROTO_UDP:
        _, length = _decode_udp(segment, segment_on_wire, INNER, row)
        if not _udp_length_fits(length, segment_on_wire, ip.frag):
            raise _Stop(INNER.bad_udp)
    elif ip.proto in ICMP_PROTOCOLS:
        if len(segment) < ICMP_HEADER_BYTES:
            raise _Stop(INNER.truncated_l4)
        header_class, echo_class, identified_types = ICMP_PROTOCOLS[ip.proto]
        icmp = _header(header_class, segment)
        row["inner_icmp_type"], row["inner_icmp_code"] = icmp.type, icmp.code
        if icmp.type in identified_types:
            if len(segment) < ICMP_ECHO_HEADER_BYTES:
                raise _Stop(INNER.truncated_l4)
            echo = _header(echo_class, segment[ICMP_HEADER_BYTES:])
            row["inner_icmp_id"], row["inner_icmp_seq"] = echo.id, echo.seq


def read_packets_reference(
    paths: str | os.PathLike | Iterable[str | os.PathLike], port: int = GENEVE_PORT
) -> pd.DataFrame:
    """``gwcheck.read_packets`` done one packet at a time with :func:`decode_frame`: same columns, dtypes and row order."""
    path_list = [os.fspath(paths)] if isinstance(paths, (str, os.PathLike)) else [os.fspath(p) for p in paths]
    rows = []
    for code, path in enumerate(path_list):
        index = index_capture(path)
        for k in range(len(index)):
            record = {name: int(index.columns[name][k]) for name in RECORD_COLUMNS}
            start = record["frame_offset"]
            frame = bytes(index.data[start : start + record["cap_len_bytes"]])
            rows.append({**record, "file": code, **decode_frame(frame, record["link_type"], record["wire_len_bytes"], port)})
    if len(path_list) > 1:
        rows.sort(key=lambda row: row["ts_ns"])  # stable: files in the order given
    names = [path if path not in path_list[:k] else f"{path}#{k}" for k, path in enumerate(path_list)]
    categories = {
        "file": names,
        "status": [status.label for status in DecodeStatus],
        "kind": [kind.label for kind in PacketKind],
    }
    columns = {}
    for name in COLUMN_NAMES:
        values = np.array([row[name] for row in rows], dtype=COLUMN_DTYPES[name])
        if name in categories:
            columns[name] = pd.Categorical.from_codes(values.astype(np.int16), categories=categories[name])
        else:
            columns[name] = values
    return pd.DataFrame(columns)
