"""The columnar decoder: one compiled pass over a file's records fills every column of the packet table.

Layers are decoded by the protocol modules beside this one; this module only walks the records, maps each
layer's outcome to a ``DecodeStatus`` and stores the fields.  A packet that stops early keeps what was
decoded before the stop and gets the status of the layer that stopped it.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from .._jit import jit
from ..schema import DECODER_COLUMNS, DecodeStatus, PacketKind
from . import geneve as g
from . import ip as iph
from . import link as lk
from . import transport as tp
from .digest import inner_digest

DecoderColumns = namedtuple("DecoderColumns", DECODER_COLUMNS)

S_OK = int(DecodeStatus.OK)
S_TRUNC_LINK = int(DecodeStatus.TRUNCATED_LINK)
S_TRUNC_OUTER_L4 = int(DecodeStatus.TRUNCATED_OUTER_L4)
S_TRUNC_GENEVE = int(DecodeStatus.TRUNCATED_GENEVE)
S_TRUNC_OPTIONS = int(DecodeStatus.TRUNCATED_GENEVE_OPTIONS)
S_TRUNC_INNER_ETHERNET = int(DecodeStatus.TRUNCATED_INNER_ETHERNET)
S_TRUNC_INNER_L4 = int(DecodeStatus.TRUNCATED_INNER_L4)
S_BAD_UDP_LENGTH = int(DecodeStatus.MALFORMED_UDP_LENGTH)
S_BAD_GENEVE_VERSION = int(DecodeStatus.MALFORMED_GENEVE_VERSION)
S_BAD_GENEVE_OPTIONS = int(DecodeStatus.MALFORMED_GENEVE_OPTIONS)
S_BAD_INNER_TCP = int(DecodeStatus.MALFORMED_INNER_TCP_HEADER_LENGTH)
S_BAD_INNER_UDP = int(DecodeStatus.MALFORMED_INNER_UDP_LENGTH)
S_BAD_OUTER_TCP = int(DecodeStatus.MALFORMED_OUTER_TCP_HEADER_LENGTH)
S_UNSUPPORTED_LINK = int(DecodeStatus.UNSUPPORTED_LINK_TYPE)
# parse_ip outcome -> status, outer and inner
OUTER_IP_STATUS = (
    S_OK,
    int(DecodeStatus.TRUNCATED_OUTER_IP),
    int(DecodeStatus.MALFORMED_OUTER_IP_VERSION),
    int(DecodeStatus.MALFORMED_OUTER_IP_HEADER_LENGTH),
    int(DecodeStatus.MALFORMED_OUTER_IP_TOTAL_LENGTH),
    int(DecodeStatus.MALFORMED_OUTER_IPV6_EXTENSION),
)
INNER_IP_STATUS = (
    S_OK,
    int(DecodeStatus.TRUNCATED_INNER_IP),
    int(DecodeStatus.MALFORMED_INNER_IP_VERSION),
    int(DecodeStatus.MALFORMED_INNER_IP_HEADER_LENGTH),
    int(DecodeStatus.MALFORMED_INNER_IP_TOTAL_LENGTH),
    int(DecodeStatus.MALFORMED_INNER_IPV6_EXTENSION),
)

K_UNDECODED = int(PacketKind.UNDECODED)
K_GENEVE = int(PacketKind.GENEVE)
K_UDP = int(PacketKind.UDP)
K_TCP = int(PacketKind.TCP)
K_ICMP = int(PacketKind.ICMP)
K_IP_OTHER = int(PacketKind.IP_OTHER)
K_IP_FRAGMENT = int(PacketKind.IP_FRAGMENT)
K_NON_IP = int(PacketKind.NON_IP)
K_UNSUPPORTED_LINK = int(PacketKind.UNSUPPORTED_LINK)


@jit
def _ip_version(ethertype):
    if ethertype == lk.ETHERTYPE_IPV4:
        return 4
    if ethertype == lk.ETHERTYPE_IPV6:
        return 6
    return 0


@jit
def _decode_inner(buf, c, i, start, end, wire_extra, version):
    """Decode the inner IP packet at ``start`` and its transport header; return the packet's status."""
    (outcome, l4, packet_end, total, proto, src_hi, src_lo, dst_hi, dst_lo,
     ttl, ident, frag, frag_offset) = iph.parse_ip(buf, start, end, wire_extra, version)
    c.inner_ip_version[i] = version
    c.inner_src_hi[i] = src_hi
    c.inner_src_lo[i] = src_lo
    c.inner_dst_hi[i] = dst_hi
    c.inner_dst_lo[i] = dst_lo
    c.inner_proto[i] = proto
    c.inner_ip_len_bytes[i] = total
    c.inner_ip_id[i] = ident
    c.inner_ttl[i] = ttl
    c.inner_frag[i] = frag
    c.inner_frag_offset_bytes[i] = frag_offset
    if outcome == iph.IP_BAD_VERSION:
        c.inner_digest[i] = inner_digest(buf, start, end, 0)
        return INNER_IP_STATUS[outcome]
    c.inner_digest[i] = inner_digest(buf, start, packet_end if packet_end > start else end, version)
    if outcome != iph.IP_OK:
        return INNER_IP_STATUS[outcome]
    if frag & iph.FRAG_OFFSET:
        return S_OK
    on_wire = total - (l4 - start)
    if proto == iph.IPPROTO_TCP:
        (l4_outcome, sport, dport, seq, ack, flags, _, mss, payload) = tp.parse_tcp(buf, l4, packet_end, on_wire)
        c.inner_sport[i] = sport
        c.inner_dport[i] = dport
        c.inner_tcp_seq[i] = seq
        c.inner_tcp_ack[i] = ack
        c.inner_tcp_flags[i] = flags
        c.inner_tcp_mss[i] = mss
        c.inner_l4_payload_bytes[i] = payload
        if l4_outcome == tp.L4_TRUNCATED:
            return S_TRUNC_INNER_L4
        if l4_outcome == tp.L4_BAD_LENGTH:
            return S_BAD_INNER_TCP
    elif proto == iph.IPPROTO_UDP:
        (l4_outcome, sport, dport, length, _, payload_start, _) = tp.parse_udp(buf, l4, packet_end, on_wire)
        c.inner_sport[i] = sport
        c.inner_dport[i] = dport
        c.inner_l4_payload_bytes[i] = max(length - tp.UDP_HEADER_BYTES, 0)
        if l4_outcome == tp.L4_TRUNCATED:
            return S_TRUNC_INNER_L4
        if l4_outcome == tp.L4_BAD_LENGTH:
            return S_BAD_INNER_UDP
    elif proto == iph.IPPROTO_ICMP or proto == iph.IPPROTO_ICMPV6:
        (l4_outcome, icmp_type, code, ident, seq) = tp.parse_icmp(buf, l4, packet_end, proto == iph.IPPROTO_ICMPV6)
        c.inner_icmp_type[i] = icmp_type
        c.inner_icmp_code[i] = code
        c.inner_icmp_id[i] = ident
        c.inner_icmp_seq[i] = seq
        if l4_outcome == tp.L4_TRUNCATED:
            return S_TRUNC_INNER_L4
    return S_OK


@jit
def _decode_geneve(buf, c, i, l3, start, end, wire_end):
    """Decode Geneve at ``start`` (payload captured to ``end``, on the wire to ``wire_end``); return the status."""
    (outcome, version, opt_len, oam, critical, protocol, vni, count,
     endpoint, attachment, cookie, shape, inner) = g.parse_geneve(buf, start, end)
    if c.outer_ip_version[i] == 6:
        shape |= g.SHAPE_OUTER_IPV6
    c.geneve_version[i] = version
    c.geneve_opt_len_bytes[i] = opt_len
    c.geneve_oam[i] = oam
    c.geneve_critical[i] = critical
    c.geneve_protocol[i] = protocol
    c.geneve_vni[i] = vni
    c.geneve_opt_count[i] = count
    c.aws_endpoint_id[i] = endpoint
    c.aws_attachment_id[i] = attachment
    c.aws_flow_cookie[i] = cookie
    if outcome == g.GENEVE_TRUNCATED:
        return S_TRUNC_GENEVE
    c.gwlb_shape[i] = shape
    if outcome == g.GENEVE_BAD_VERSION:
        return S_BAD_GENEVE_VERSION
    if outcome == g.GENEVE_OPTIONS_TRUNCATED:
        return S_TRUNC_OPTIONS
    if outcome == g.GENEVE_BAD_OPTIONS:
        return S_BAD_GENEVE_OPTIONS
    c.encap_overhead_bytes[i] = inner - l3
    ip_start = inner
    ethertype = protocol
    if protocol == g.PROTOCOL_ETHERNET:
        (link_outcome, ip_start, ethertype, _, _) = lk.parse_ethernet(buf, inner, end)
        if link_outcome != lk.LINK_OK:
            c.inner_digest[i] = inner_digest(buf, inner, end, 0)
            return S_TRUNC_INNER_ETHERNET
    version = _ip_version(ethertype)
    if version == 0:
        if end > ip_start:
            c.inner_digest[i] = inner_digest(buf, ip_start, end, 0)
        return S_OK
    c.inner_offset[i] = ip_start - c.frame_offset[i]
    return _decode_inner(buf, c, i, ip_start, end, wire_end - end, version)


@jit
def decode_records(buf, c, port):
    """Fill the decoder columns ``c`` (a DecoderColumns of equal-length arrays) for every record."""
    n = c.ts_ns.shape[0]
    for i in range(n):
        start = c.frame_offset[i]
        end = start + np.int64(c.cap_len_bytes[i])
        wire_extra = max(np.int64(c.wire_len_bytes[i]) - np.int64(c.cap_len_bytes[i]), 0)
        (link_outcome, l3, ethertype, vlan_id, vlan_count) = lk.parse_link(buf, start, end, c.link_type[i])
        c.vlan_id[i] = vlan_id
        c.vlan_count[i] = vlan_count
        if link_outcome == lk.LINK_UNSUPPORTED:
            c.status[i] = S_UNSUPPORTED_LINK
            c.kind[i] = K_UNSUPPORTED_LINK
            continue
        if link_outcome == lk.LINK_TRUNCATED:
            c.status[i] = S_TRUNC_LINK
            continue
        version = _ip_version(ethertype)
        if version == 0:
            c.kind[i] = K_NON_IP
            continue
        (outcome, l4, packet_end, total, proto, src_hi, src_lo, dst_hi, dst_lo,
         ttl, ident, frag, frag_offset) = iph.parse_ip(buf, l3, end, wire_extra, version)
        c.outer_ip_version[i] = version
        c.outer_src_hi[i] = src_hi
        c.outer_src_lo[i] = src_lo
        c.outer_dst_hi[i] = dst_hi
        c.outer_dst_lo[i] = dst_lo
        c.outer_ttl[i] = ttl
        c.outer_ip_id[i] = ident
        c.outer_frag[i] = frag
        c.outer_ip_len_bytes[i] = total
        c.outer_proto[i] = proto
        if outcome != iph.IP_OK:
            c.status[i] = OUTER_IP_STATUS[outcome]
            continue
        if frag & iph.FRAG_OFFSET:
            c.kind[i] = K_IP_FRAGMENT
            continue
        on_wire = total - (l4 - l3)
        if proto == iph.IPPROTO_UDP:
            (udp_outcome, sport, dport, length, checksum, payload, payload_end) = tp.parse_udp(buf, l4, packet_end, on_wire)
            if udp_outcome == tp.L4_TRUNCATED:
                c.kind[i] = K_UDP
                c.status[i] = S_TRUNC_OUTER_L4
                continue
            c.outer_sport[i] = sport
            c.outer_dport[i] = dport
            c.outer_udp_len_bytes[i] = length
            c.outer_udp_checksum[i] = checksum
            c.outer_l4_payload_bytes[i] = max(length - tp.UDP_HEADER_BYTES, 0)
            c.kind[i] = K_GENEVE if (sport == port or dport == port) else K_UDP
            if udp_outcome == tp.L4_BAD_LENGTH:
                c.status[i] = S_BAD_UDP_LENGTH
                continue
            if c.kind[i] == K_GENEVE:
                c.status[i] = _decode_geneve(buf, c, i, l3, payload, payload_end, l4 + length)
        elif proto == iph.IPPROTO_TCP:
            c.kind[i] = K_TCP
            (tcp_outcome, sport, dport, _, _, flags, header, _, payload_bytes) = tp.parse_tcp(buf, l4, packet_end, on_wire)
            c.outer_sport[i] = sport
            c.outer_dport[i] = dport
            c.outer_tcp_flags[i] = flags & 0xFF
            c.outer_l4_payload_bytes[i] = payload_bytes
            if tcp_outcome != tp.L4_OK:
                c.status[i] = S_TRUNC_OUTER_L4 if tcp_outcome == tp.L4_TRUNCATED else S_BAD_OUTER_TCP
                continue
            c.outer_http_status[i] = tp.http_status(buf, l4 + header, packet_end)
        elif proto == iph.IPPROTO_ICMP or proto == iph.IPPROTO_ICMPV6:
            c.kind[i] = K_ICMP
        else:
            c.kind[i] = K_IP_OTHER
