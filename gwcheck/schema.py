"""The packet table's columns, their dtypes and meanings, and the decode statuses: the leaf every layer may import.

Column names follow one grammar: ``{layer}_{field}[_{unit}]`` with layer one of ``outer``, ``geneve``,
``aws``, ``inner``; units are spelled out (``_ns``, ``_bytes``).  Addresses are 128-bit integers split
into ``_hi`` and ``_lo`` uint64 halves, IPv4 as IPv4-mapped IPv6 (``::ffff:a.b.c.d``, RFC 4291 2.5.5.2),
so one pair of columns holds either family; ``gwcheck.addresses`` renders them.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import numpy as np


#: Time units: timestamps are integer nanoseconds everywhere.
NS_PER_US = 1_000
NS_PER_MS = 1_000_000
NS_PER_SECOND = 1_000_000_000


class DecodeStatus(enum.IntEnum):
    """How far a packet decoded: ok, truncated at a named layer, or malformed with a reason."""

    OK = 0
    TRUNCATED_LINK = 1
    TRUNCATED_OUTER_IP = 2
    TRUNCATED_OUTER_L4 = 3
    TRUNCATED_GENEVE = 4
    TRUNCATED_GENEVE_OPTIONS = 5
    TRUNCATED_INNER_ETHERNET = 6
    TRUNCATED_INNER_IP = 7
    TRUNCATED_INNER_L4 = 8
    MALFORMED_OUTER_IP_VERSION = 9
    MALFORMED_OUTER_IP_HEADER_LENGTH = 10
    MALFORMED_OUTER_IP_TOTAL_LENGTH = 11
    MALFORMED_OUTER_IPV6_EXTENSION = 12
    MALFORMED_OUTER_TCP_HEADER_LENGTH = 13
    MALFORMED_UDP_LENGTH = 14
    MALFORMED_GENEVE_VERSION = 15
    MALFORMED_GENEVE_OPTIONS = 16
    MALFORMED_INNER_IP_VERSION = 17
    MALFORMED_INNER_IP_HEADER_LENGTH = 18
    MALFORMED_INNER_IP_TOTAL_LENGTH = 19
    MALFORMED_INNER_IPV6_EXTENSION = 20
    MALFORMED_INNER_TCP_HEADER_LENGTH = 21
    MALFORMED_INNER_UDP_LENGTH = 22
    UNSUPPORTED_LINK_TYPE = 23

    @property
    def label(self) -> str:
        """Lower-case name used in tables and reports, e.g. ``truncated_geneve_options``."""
        return self.name.lower()


DECODE_STATUS_REASONS: dict[DecodeStatus, str] = {
    DecodeStatus.OK: "decoded",
    DecodeStatus.TRUNCATED_LINK: "frame ends inside the link-layer header",
    DecodeStatus.TRUNCATED_OUTER_IP: "frame ends inside the outer IP header",
    DecodeStatus.TRUNCATED_OUTER_L4: "frame ends inside the outer UDP/TCP/ICMP header",
    DecodeStatus.TRUNCATED_GENEVE: "frame ends inside the 8-byte Geneve header",
    DecodeStatus.TRUNCATED_GENEVE_OPTIONS: "frame ends inside the Geneve options",
    DecodeStatus.TRUNCATED_INNER_ETHERNET: "frame ends inside the inner Ethernet header",
    DecodeStatus.TRUNCATED_INNER_IP: "frame ends inside the inner IP header",
    DecodeStatus.TRUNCATED_INNER_L4: "frame ends inside the inner TCP/UDP/ICMP header",
    DecodeStatus.MALFORMED_OUTER_IP_VERSION: "outer IP version does not match the link layer's protocol",
    DecodeStatus.MALFORMED_OUTER_IP_HEADER_LENGTH: "outer IPv4 header length below 20 bytes",
    DecodeStatus.MALFORMED_OUTER_IP_TOTAL_LENGTH: "outer IP length disagrees with the frame",
    DecodeStatus.MALFORMED_OUTER_IPV6_EXTENSION: "outer IPv6 extension header runs past the packet",
    DecodeStatus.MALFORMED_UDP_LENGTH: "UDP length below 8 or past the IP payload",
    DecodeStatus.MALFORMED_GENEVE_VERSION: "Geneve version is not 0 (RFC 8926 3.4)",
    DecodeStatus.MALFORMED_GENEVE_OPTIONS: "a Geneve option runs past the option length, or the options past the datagram",
    DecodeStatus.MALFORMED_INNER_IP_VERSION: "inner IP version does not match the Geneve protocol type",
    DecodeStatus.MALFORMED_INNER_IP_HEADER_LENGTH: "inner IPv4 header length below 20 bytes",
    DecodeStatus.MALFORMED_INNER_IP_TOTAL_LENGTH: "inner IP length disagrees with the packet",
    DecodeStatus.MALFORMED_INNER_IPV6_EXTENSION: "inner IPv6 extension header runs past the packet",
    DecodeStatus.MALFORMED_INNER_TCP_HEADER_LENGTH: "inner TCP data offset below 5 words or past the segment",
    DecodeStatus.MALFORMED_INNER_UDP_LENGTH: "inner UDP length below 8 or past the IP payload",
    DecodeStatus.MALFORMED_OUTER_TCP_HEADER_LENGTH: "outer TCP data offset below 5 words or past the segment",
    DecodeStatus.UNSUPPORTED_LINK_TYPE: "the capture's link type is not one gwcheck decodes",
}


class PacketKind(enum.IntEnum):
    """What a packet on the appliance's wire is, by its outermost protocols."""

    UNDECODED = 0  # stopped before its outer protocol was known
    GENEVE = 1  # UDP to or from the Geneve port
    UDP = 2  # other UDP
    TCP = 3  # outer TCP: GWLB health checks and their answers
    ICMP = 4  # ICMP or ICMPv6
    IP_OTHER = 5  # another IP protocol
    IP_FRAGMENT = 6  # a non-first outer IP fragment: no ports to see
    NON_IP = 7  # ARP, LLDP and other non-IP frames
    UNSUPPORTED_LINK = 8  # a link type gwcheck does not decode

    @property
    def label(self) -> str:
        return self.name.lower()


class GwlbShape(enum.IntFlag):
    """Deviations of a Geneve packet from the shape GWLB sends (shared/docs/gwlb.md); 0 is the exact shape."""

    MISSING_ENDPOINT = 0x0001  # no AWS option type 1
    MISSING_ATTACHMENT = 0x0002  # no AWS option type 2
    MISSING_COOKIE = 0x0004  # no AWS option type 3
    DUPLICATE_OPTION = 0x0008  # an AWS option type seen twice
    UNKNOWN_AWS_OPTION = 0x0010  # an AWS-class option of a type other than 1, 2, 3
    OTHER_CLASS = 0x0020  # an option of a class other than 0x0108
    OPTION_LENGTH = 0x0040  # an AWS option of another data length than 8, 8, 4 bytes
    ORDER = 0x0080  # AWS options not in the order 1, 2, 3
    CRITICAL_OPTION = 0x0100  # an option with the critical bit set
    HEADER = 0x0200  # version, O/C flags, VNI or protocol type not as GWLB sets them
    OUTER_IPV6 = 0x0400  # outer IPv6: GWLB always uses outer IPv4


class FragmentFlags(enum.IntFlag):
    """Fragment flags of an IP header, outer or inner."""

    DF = 0x1  # don't fragment (IPv4)
    MF = 0x2  # more fragments
    OFFSET = 0x4  # a non-first fragment
    IPV6_FRAGMENT_HEADER = 0x8  # an IPv6 Fragment extension header is present


class Column(NamedTuple):
    name: str
    dtype: str
    doc: str


#: Every column of the packet table, in order.  The decoder fills all but ``file``.
PACKET_COLUMNS: tuple[Column, ...] = (
    Column("ts_ns", "int64", "capture timestamp, integer nanoseconds since the Unix epoch"),
    Column("file", "category", "the capture file the packet was read from, as given"),
    Column("interface", "uint16", "capture interface: pcapng interface number across sections, 0 for pcap"),
    Column("link_type", "uint16", "LINKTYPE_* of the interface (1 Ethernet, 113 SLL, 276 SLL2, 101 raw ...)"),
    Column("frame_offset", "int64", "byte offset of the frame's first byte in the (decompressed) file"),
    Column("wire_len_bytes", "uint32", "original frame length on the wire"),
    Column("cap_len_bytes", "uint32", "captured frame length (below wire_len_bytes when snapped)"),
    Column("status", "category", "DecodeStatus label: ok, truncated_<layer>, malformed_<field>, unsupported_link_type"),
    Column("kind", "category", "PacketKind label: geneve, tcp (health checks), udp, icmp, ..."),
    Column("vlan_id", "uint16", "outermost 802.1Q/802.1ad VLAN ID, 0 when untagged"),
    Column("vlan_count", "uint8", "number of VLAN tags"),
    Column("outer_ip_version", "uint8", "4 or 6; 0 when not IP"),
    Column("outer_src_hi", "uint64", "outer source address, high 64 bits"),
    Column("outer_src_lo", "uint64", "outer source address, low 64 bits"),
    Column("outer_dst_hi", "uint64", "outer destination address, high 64 bits"),
    Column("outer_dst_lo", "uint64", "outer destination address, low 64 bits"),
    Column("outer_ttl", "uint8", "outer IPv4 TTL or IPv6 hop limit"),
    Column("outer_ip_id", "uint32", "outer IPv4 identification, or IPv6 fragment identification"),
    Column("outer_frag", "uint8", "FragmentFlags of the outer IP header (DF, MF, OFFSET, ...)"),
    Column("outer_ip_len_bytes", "uint32", "outer IP packet length (from the captured length when the header says 0)"),
    Column("outer_proto", "uint8", "outer IP protocol after extension headers (17 UDP, 6 TCP, ...)"),
    Column("outer_sport", "uint16", "outer UDP/TCP source port"),
    Column("outer_dport", "uint16", "outer UDP/TCP destination port"),
    Column("outer_udp_len_bytes", "uint32", "UDP length (from the IP payload when the header says 0)"),
    Column("outer_udp_checksum", "uint16", "UDP checksum field as sent (0 means none, IPv4)"),
    Column("outer_tcp_flags", "uint8", "outer TCP flags (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10)"),
    Column("outer_l4_payload_bytes", "uint32", "outer TCP/UDP payload length"),
    Column("outer_http_status", "uint16", "status code of an HTTP response starting the outer TCP payload, else 0"),
    Column("geneve_offset", "uint32", "byte offset of the Geneve header within the frame, 0 when not Geneve"),
    Column("geneve_version", "uint8", "Geneve version (RFC 8926 3.4: 0)"),
    Column("geneve_opt_len_bytes", "uint16", "total length of the Geneve options"),
    Column("geneve_oam", "bool", "O flag: control packet"),
    Column("geneve_critical", "bool", "C flag: a critical option is present"),
    Column("geneve_protocol", "uint16", "protocol type of the inner packet (0x0800, 0x86DD, 0x6558 ...)"),
    Column("geneve_vni", "uint32", "virtual network identifier (24 bits)"),
    Column("geneve_opt_count", "uint8", "number of options"),
    Column("aws_endpoint_id", "uint64", "AWS option type 1: GWLB endpoint ID (render with gwcheck.vpce_id)"),
    Column("aws_attachment_id", "uint64", "AWS option type 2: attachment ID"),
    Column("aws_flow_cookie", "uint32", "AWS option type 3: flow cookie"),
    Column("gwlb_shape", "uint16", "GwlbShape flags: deviations from GWLB's header and options, 0 when exact"),
    Column("encap_overhead_bytes", "uint16", "outer IP + UDP + Geneve bytes before the inner packet (68 for GWLB)"),
    Column("inner_offset", "uint32", "byte offset of the inner IP header within the frame, 0 when none"),
    Column("inner_ip_version", "uint8", "4 or 6; 0 when there is no inner IP packet"),
    Column("inner_src_hi", "uint64", "inner source address, high 64 bits"),
    Column("inner_src_lo", "uint64", "inner source address, low 64 bits"),
    Column("inner_dst_hi", "uint64", "inner destination address, high 64 bits"),
    Column("inner_dst_lo", "uint64", "inner destination address, low 64 bits"),
    Column("inner_proto", "uint8", "inner IP protocol after extension headers"),
    Column("inner_ip_len_bytes", "uint32", "inner IP packet length (from the captured bytes when the header says 0)"),
    Column("inner_ip_id", "uint32", "inner IPv4 identification, or IPv6 fragment identification"),
    Column("inner_ttl", "uint8", "inner IPv4 TTL or IPv6 hop limit"),
    Column("inner_frag", "uint8", "FragmentFlags of the inner IP header"),
    Column("inner_frag_offset_bytes", "uint16", "inner fragment offset"),
    Column("inner_sport", "uint16", "inner TCP/UDP source port"),
    Column("inner_dport", "uint16", "inner TCP/UDP destination port"),
    Column("inner_tcp_flags", "uint16", "inner TCP flags, 9 bits (FIN 0x01 SYN 0x02 RST 0x04 PSH 0x08 ACK 0x10 ...)"),
    Column("inner_tcp_seq", "uint32", "inner TCP sequence number"),
    Column("inner_tcp_ack", "uint32", "inner TCP acknowledgement number"),
    Column("inner_tcp_mss", "uint16", "MSS option of an inner TCP segment, 0 when absent"),
    Column("inner_l4_payload_bytes", "uint32", "inner TCP/UDP payload length"),
    Column("inner_icmp_type", "uint8", "inner ICMP/ICMPv6 type"),
    Column("inner_icmp_code", "uint8", "inner ICMP/ICMPv6 code"),
    Column("inner_icmp_id", "uint16", "inner ICMP echo identifier"),
    Column("inner_icmp_seq", "uint16", "inner ICMP echo sequence number"),
    Column("inner_digest", "uint64", "64-bit digest of the inner packet ignoring TTL/hop limit and IPv4 checksum; 0 when none"),
)

COLUMN_NAMES: tuple[str, ...] = tuple(c.name for c in PACKET_COLUMNS)

#: Categorical columns: the decoder fills their integer codes (uint8), the table labels them.
CATEGORY_CODES: dict[str, str] = {"file": "uint16", "status": "uint8", "kind": "uint8"}

#: The columns the compiled decoder fills, with their storage dtypes (codes for categoricals).
DECODER_COLUMNS: tuple[str, ...] = tuple(name for name in COLUMN_NAMES if name != "file")
COLUMN_DTYPES: dict[str, np.dtype] = {
    c.name: np.dtype(CATEGORY_CODES.get(c.name, c.dtype)) for c in PACKET_COLUMNS
}

#: The columns the capture layer fills; the decoder fills the rest.
RECORD_COLUMNS: tuple[str, ...] = (
    "ts_ns",
    "interface",
    "link_type",
    "frame_offset",
    "wire_len_bytes",
    "cap_len_bytes",
)


def category_labels(column: str) -> list[str]:
    """The labels of a categorical column's codes, in code order."""
    if column == "status":
        return [s.label for s in DecodeStatus]
    if column == "kind":
        return [k.label for k in PacketKind]
    raise KeyError(column)
