"""The columnar decoder: one compiled pass over a file's records fills every column of the packet table.

Layers are decoded by the protocol modules beside this one; this module only walks the records, maps each
layer's outcome to a ``DecodeStatus`` and stores the fields.  A packet that stops early keeps what was
decoded before the stop and gets the status of the layer that stopped it.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit
from ..schema import COLUMN_DTYPES, DECODER_COLUMNS, RECORD_COLUMNS, DecodeStatus, PacketKind
from . import geneve as g
from . import ip as iph
from . import link as lk
from . import transport as tp
from .digest import inner_digest

#: The columns the kernel fills (all but the capture layer's).  They live as rows of one matrix per
#: storage width, u8 (bool too), u16, u32 and u64, so that the kernel writes straight into the final
#: columns: no per-batch copy, and only four arrays to pass (a tuple of sixty arrays would be
#: reference-counted on every access).
DECODED_COLUMNS: tuple[str, ...] = tuple(name for name in DECODER_COLUMNS if name not in RECORD_COLUMNS)
STORAGE = {"uint8": "u8", "bool": "u8", "uint16": "u16", "uint32": "u32", "uint64": "u64"}
STORAGE_DTYPES = {"u8": np.uint8, "u16": np.uint16, "u32": np.uint32, "u64": np.uint64}


def _rows() -> dict[str, tuple[str, int]]:
    rows: dict[str, tuple[str, int]] = {}
    used = dict.fromkeys(STORAGE_DTYPES, 0)
    for name in DECODED_COLUMNS:
        group = STORAGE[str(COLUMN_DTYPES[name])]
        rows[name] = (group, used[group])
        used[group] += 1
    return rows


#: column name -> (matrix, row)
ROWS: dict[str, tuple[str, int]] = _rows()
ROW_COUNTS: dict[str, int] = {g: sum(1 for m, _ in ROWS.values() if m == g) for g in STORAGE_DTYPES}
# The row of each column in its matrix, as the kernel writes them: u16[OUTER_SPORT, i] = sport.
STATUS = ROWS["status"][1]
KIND = ROWS["kind"][1]
VLAN_ID = ROWS["vlan_id"][1]
VLAN_COUNT = ROWS["vlan_count"][1]
OUTER_IP_VERSION = ROWS["outer_ip_version"][1]
OUTER_SRC_HI = ROWS["outer_src_hi"][1]
OUTER_SRC_LO = ROWS["outer_src_lo"][1]
OUTER_DST_HI = ROWS["outer_dst_hi"][1]
OUTER_DST_LO = ROWS["outer_dst_lo"][1]
OUTER_TTL = ROWS["outer_ttl"][1]
OUTER_IP_ID = ROWS["outer_ip_id"][1]
OUTER_FRAG = ROWS["outer_frag"][1]
OUTER_IP_LEN_BYTES = ROWS["outer_ip_len_bytes"][1]
OUTER_PROTO = ROWS["outer_proto"][1]
OUTER_SPORT = ROWS["outer_sport"][1]
OUTER_DPORT = ROWS["outer_dport"][1]
OUTER_UDP_LEN_BYTES = ROWS["outer_udp_len_bytes"][1]
OUTER_UDP_CHECKSUM = ROWS["outer_udp_checksum"][1]
OUTER_TCP_FLAGS = ROWS["outer_tcp_flags"][1]
OUTER_L4_PAYLOAD_BYTES = ROWS["outer_l4_payload_bytes"][1]
OUTER_HTTP_STATUS = ROWS["outer_http_status"][1]
GENEVE_VERSION = ROWS["geneve_version"][1]
GENEVE_OPT_LEN_BYTES = ROWS["geneve_opt_len_bytes"][1]
GENEVE_OAM = ROWS["geneve_oam"][1]
GENEVE_CRITICAL = ROWS["geneve_critical"][1]
GENEVE_PROTOCOL = ROWS["geneve_protocol"][1]
GENEVE_VNI = ROWS["geneve_vni"][1]
GENEVE_OPT_COUNT = ROWS["geneve_opt_count"][1]
AWS_ENDPOINT_ID = ROWS["aws_endpoint_id"][1]
AWS_ATTACHMENT_ID = ROWS["aws_attachment_id"][1]
AWS_FLOW_COOKIE = ROWS["aws_flow_cookie"][1]
GWLB_SHAPE = ROWS["gwlb_shape"][1]
ENCAP_OVERHEAD_BYTES = ROWS["encap_overhead_bytes"][1]
GENEVE_OFFSET = ROWS["geneve_offset"][1]
INNER_OFFSET = ROWS["inner_offset"][1]
INNER_IP_VERSION = ROWS["inner_ip_version"][1]
INNER_SRC_HI = ROWS["inner_src_hi"][1]
INNER_SRC_LO = ROWS["inner_src_lo"][1]
INNER_DST_HI = ROWS["inner_dst_hi"][1]
INNER_DST_LO = ROWS["inner_dst_lo"][1]
INNER_PROTO = ROWS["inner_proto"][1]
INNER_IP_LEN_BYTES = ROWS["inner_ip_len_bytes"][1]
INNER_IP_ID = ROWS["inner_ip_id"][1]
INNER_TTL = ROWS["inner_ttl"][1]
INNER_FRAG = ROWS["inner_frag"][1]
INNER_FRAG_OFFSET_BYTES = ROWS["inner_frag_offset_bytes"][1]
INNER_SPORT = ROWS["inner_sport"][1]
INNER_DPORT = ROWS["inner_dport"][1]
INNER_TCP_FLAGS = ROWS["inner_tcp_flags"][1]
INNER_TCP_SEQ = ROWS["inner_tcp_seq"][1]
INNER_TCP_ACK = ROWS["inner_tcp_ack"][1]
INNER_TCP_MSS = ROWS["inner_tcp_mss"][1]
INNER_L4_PAYLOAD_BYTES = ROWS["inner_l4_payload_bytes"][1]
INNER_ICMP_TYPE = ROWS["inner_icmp_type"][1]
INNER_ICMP_CODE = ROWS["inner_icmp_code"][1]
INNER_ICMP_ID = ROWS["inner_icmp_id"][1]
INNER_ICMP_SEQ = ROWS["inner_icmp_seq"][1]
INNER_DIGEST = ROWS["inner_digest"][1]

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
def _decode_inner(buf, words, u8, u16, u32, u64, i, start, end, wire_extra, version):
    """Decode the inner IP packet at ``start`` and its transport header; return the packet's status."""
    (outcome, l4, packet_end, total, proto, src_hi, src_lo, dst_hi, dst_lo,
     ttl, ident, frag, frag_offset) = iph.parse_ip(buf, start, end, wire_extra, version)
    u8[INNER_IP_VERSION, i] = version
    u64[INNER_SRC_HI, i] = src_hi
    u64[INNER_SRC_LO, i] = src_lo
    u64[INNER_DST_HI, i] = dst_hi
    u64[INNER_DST_LO, i] = dst_lo
    u8[INNER_PROTO, i] = proto
    u32[INNER_IP_LEN_BYTES, i] = total
    u32[INNER_IP_ID, i] = ident
    u8[INNER_TTL, i] = ttl
    u8[INNER_FRAG, i] = frag
    u16[INNER_FRAG_OFFSET_BYTES, i] = frag_offset
    if outcome == iph.IP_BAD_VERSION:
        u64[INNER_DIGEST, i] = inner_digest(buf, words, start, end, 0)
        return INNER_IP_STATUS[outcome]
    u64[INNER_DIGEST, i] = inner_digest(buf, words, start, packet_end if packet_end > start else end, version)
    if outcome != iph.IP_OK:
        return INNER_IP_STATUS[outcome]
    if frag & iph.FRAG_OFFSET:
        return S_OK
    on_wire = total - (l4 - start)
    if proto == iph.IPPROTO_TCP:
        (l4_outcome, sport, dport, seq, ack, flags, _, mss, payload) = tp.parse_tcp(buf, l4, packet_end, on_wire)
        u16[INNER_SPORT, i] = sport
        u16[INNER_DPORT, i] = dport
        u32[INNER_TCP_SEQ, i] = seq
        u32[INNER_TCP_ACK, i] = ack
        u16[INNER_TCP_FLAGS, i] = flags
        u16[INNER_TCP_MSS, i] = mss
        u32[INNER_L4_PAYLOAD_BYTES, i] = payload
        if l4_outcome == tp.L4_TRUNCATED:
            return S_TRUNC_INNER_L4
        if l4_outcome == tp.L4_BAD_LENGTH:
            return S_BAD_INNER_TCP
    elif proto == iph.IPPROTO_UDP:
        (l4_outcome, sport, dport, length, _, payload_start, _) = tp.parse_udp(buf, l4, packet_end, on_wire, (frag & iph.FRAG_MF) != 0)
        u16[INNER_SPORT, i] = sport
        u16[INNER_DPORT, i] = dport
        u32[INNER_L4_PAYLOAD_BYTES, i] = max(length - tp.UDP_HEADER_BYTES, 0)
        if l4_outcome == tp.L4_TRUNCATED:
            return S_TRUNC_INNER_L4
        if l4_outcome == tp.L4_BAD_LENGTH:
            return S_BAD_INNER_UDP
    elif proto == iph.IPPROTO_ICMP or proto == iph.IPPROTO_ICMPV6:
        (l4_outcome, icmp_type, code, ident, seq) = tp.parse_icmp(buf, l4, packet_end, proto == iph.IPPROTO_ICMPV6)
        u8[INNER_ICMP_TYPE, i] = icmp_type
        u8[INNER_ICMP_CODE, i] = code
        u16[INNER_ICMP_ID, i] = ident
        u16[INNER_ICMP_SEQ, i] = seq
        if l4_outcome == tp.L4_TRUNCATED:
            return S_TRUNC_INNER_L4
    return S_OK


@jit
def _decode_geneve(buf, words, u8, u16, u32, u64, i, frame, l3, start, end, wire_end):
    """Decode Geneve at ``start`` (payload captured to ``end``, on the wire to ``wire_end``); return the status."""
    (outcome, version, opt_len, oam, critical, protocol, vni, count,
     endpoint, attachment, cookie, shape, inner) = g.parse_geneve(buf, start, end)
    u32[GENEVE_OFFSET, i] = start - frame
    if u8[OUTER_IP_VERSION, i] == 6:
        shape |= g.SHAPE_OUTER_IPV6
    u8[GENEVE_VERSION, i] = version
    u16[GENEVE_OPT_LEN_BYTES, i] = opt_len
    u8[GENEVE_OAM, i] = oam
    u8[GENEVE_CRITICAL, i] = critical
    u16[GENEVE_PROTOCOL, i] = protocol
    u32[GENEVE_VNI, i] = vni
    u8[GENEVE_OPT_COUNT, i] = count
    u64[AWS_ENDPOINT_ID, i] = endpoint
    u64[AWS_ATTACHMENT_ID, i] = attachment
    u32[AWS_FLOW_COOKIE, i] = cookie
    if outcome == g.GENEVE_TRUNCATED:
        return S_TRUNC_GENEVE
    u16[GWLB_SHAPE, i] = shape
    if outcome == g.GENEVE_BAD_VERSION:
        return S_BAD_GENEVE_VERSION
    if outcome == g.GENEVE_OPTIONS_TRUNCATED:  # cut by the capture, or declared past the datagram on the wire
        return S_TRUNC_OPTIONS if inner <= wire_end else S_BAD_GENEVE_OPTIONS
    if outcome == g.GENEVE_BAD_OPTIONS:
        return S_BAD_GENEVE_OPTIONS
    u16[ENCAP_OVERHEAD_BYTES, i] = inner - l3
    ip_start = inner
    ethertype = protocol
    if protocol == g.PROTOCOL_ETHERNET:
        (link_outcome, ip_start, ethertype, _, _) = lk.parse_ethernet(buf, inner, end)
        if link_outcome != lk.LINK_OK:
            u64[INNER_DIGEST, i] = inner_digest(buf, words, inner, end, 0)
            return S_TRUNC_INNER_ETHERNET
    version = _ip_version(ethertype)
    if version == 0:
        if end > ip_start:
            u64[INNER_DIGEST, i] = inner_digest(buf, words, ip_start, end, 0)
        return S_OK
    u32[INNER_OFFSET, i] = ip_start - frame
    return _decode_inner(buf, words, u8, u16, u32, u64, i, ip_start, end, wire_end - end, version)


@jit
def decode_records(buf, words, frame_offset, cap_len, wire_len, link_type, u8, u16, u32, u64, port):
    """Decode the frames located by the record arrays into the zeroed column matrices (see ``ROWS``)."""
    for i in range(frame_offset.shape[0]):
        start = frame_offset[i]
        end = start + np.int64(cap_len[i])
        wire_extra = max(np.int64(wire_len[i]) - np.int64(cap_len[i]), 0)
        (link_outcome, l3, ethertype, vlan_id, vlan_count) = lk.parse_link(buf, start, end, link_type[i])
        u16[VLAN_ID, i] = vlan_id
        u8[VLAN_COUNT, i] = vlan_count
        if link_outcome == lk.LINK_UNSUPPORTED:
            u8[STATUS, i] = S_UNSUPPORTED_LINK
            u8[KIND, i] = K_UNSUPPORTED_LINK
            continue
        if link_outcome == lk.LINK_TRUNCATED:
            u8[STATUS, i] = S_TRUNC_LINK
            continue
        version = _ip_version(ethertype)
        if version == 0:
            u8[KIND, i] = K_NON_IP
            continue
        (outcome, l4, packet_end, total, proto, src_hi, src_lo, dst_hi, dst_lo,
         ttl, ident, frag, frag_offset) = iph.parse_ip(buf, l3, end, wire_extra, version)
        u8[OUTER_IP_VERSION, i] = version
        u64[OUTER_SRC_HI, i] = src_hi
        u64[OUTER_SRC_LO, i] = src_lo
        u64[OUTER_DST_HI, i] = dst_hi
        u64[OUTER_DST_LO, i] = dst_lo
        u8[OUTER_TTL, i] = ttl
        u32[OUTER_IP_ID, i] = ident
        u8[OUTER_FRAG, i] = frag
        u32[OUTER_IP_LEN_BYTES, i] = total
        u8[OUTER_PROTO, i] = proto
        if outcome != iph.IP_OK:
            u8[STATUS, i] = OUTER_IP_STATUS[outcome]
            continue
        if frag & iph.FRAG_OFFSET:
            u8[KIND, i] = K_IP_FRAGMENT
            continue
        on_wire = total - (l4 - l3)
        if proto == iph.IPPROTO_UDP:
            (udp_outcome, sport, dport, length, checksum, payload, payload_end) = tp.parse_udp(
                buf, l4, packet_end, on_wire, (frag & iph.FRAG_MF) != 0
            )
            if udp_outcome == tp.L4_TRUNCATED:
                u8[KIND, i] = K_UDP
                u8[STATUS, i] = S_TRUNC_OUTER_L4
                continue
            u16[OUTER_SPORT, i] = sport
            u16[OUTER_DPORT, i] = dport
            u32[OUTER_UDP_LEN_BYTES, i] = length
            u16[OUTER_UDP_CHECKSUM, i] = checksum
            u32[OUTER_L4_PAYLOAD_BYTES, i] = max(length - tp.UDP_HEADER_BYTES, 0)
            u8[KIND, i] = K_GENEVE if (sport == port or dport == port) else K_UDP
            if udp_outcome == tp.L4_BAD_LENGTH:
                u8[STATUS, i] = S_BAD_UDP_LENGTH
                continue
            if u8[KIND, i] == K_GENEVE:
                u8[STATUS, i] = _decode_geneve(buf, words, u8, u16, u32, u64, i, start, l3, payload, payload_end, l4 + length)
        elif proto == iph.IPPROTO_TCP:
            u8[KIND, i] = K_TCP
            (tcp_outcome, sport, dport, _, _, flags, header, _, payload_bytes) = tp.parse_tcp(buf, l4, packet_end, on_wire)
            u16[OUTER_SPORT, i] = sport
            u16[OUTER_DPORT, i] = dport
            u8[OUTER_TCP_FLAGS, i] = flags & 0xFF
            u32[OUTER_L4_PAYLOAD_BYTES, i] = payload_bytes
            if tcp_outcome != tp.L4_OK:
                u8[STATUS, i] = S_TRUNC_OUTER_L4 if tcp_outcome == tp.L4_TRUNCATED else S_BAD_OUTER_TCP
                continue
            u16[OUTER_HTTP_STATUS, i] = tp.http_status(buf, l4 + header, packet_end)
        elif proto == iph.IPPROTO_ICMP or proto == iph.IPPROTO_ICMPV6:
            u8[KIND, i] = K_ICMP
            if packet_end - l4 < tp.ICMP_MIN_HEADER_BYTES:
                u8[STATUS, i] = S_TRUNC_OUTER_L4
        else:
            u8[KIND, i] = K_IP_OTHER
