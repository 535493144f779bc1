"""The columnar decoder's layout: one C pass over a file's records (``_decode.decode_records``) fills every column of the packet table.

Layers are decoded by the C headers beside this module (``link.h``, ``ip.h``, ``transport.h``, ``geneve.h``,
``digest.h``, the C halves of the Python modules of the same names); ``_decode.c`` walks the records, maps
each layer's outcome to a ``DecodeStatus`` and stores the fields.  A packet that stops early keeps what was
decoded before the stop and gets the status of the layer that stopped it; every other column of its row is
0.  This module holds the column layout the C code writes (``ROWS``) and checks at import that the built
extension agrees with it and with the schema's codes.
"""

from __future__ import annotations

import numpy as np

from ..schema import COLUMN_DTYPES, DECODER_COLUMNS, RECORD_COLUMNS, DecodeStatus, PacketKind
from . import _decode

#: The columns the kernel fills (all but the capture layer's).  They live as rows of one matrix per
#: storage width, u8 (bool too), u16, u32 and u64, so that the kernel writes straight into the final
#: columns: no per-batch copy, and only four arrays to pass.
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


#: The C kernel: ``decode_records(data, frame_offset, cap_len, wire_len, link_type, u8, u16, u32, u64, port,
#: first, last, column)`` decodes records [first, last) into matrix columns [column + first, column + last),
#: writing every column of those rows; it releases the GIL while it runs.
decode_records = _decode.decode_records


def _check_extension() -> None:
    """Refuse an extension built for another column layout or other status/kind codes (a stale build)."""
    problems = []
    if _decode.ROWS != ROWS:
        problems.append("column layout")
    if _decode.STATUS != {s.name: int(s) for s in DecodeStatus}:
        problems.append("DecodeStatus codes")
    if _decode.KIND != {k.name: int(k) for k in PacketKind}:
        problems.append("PacketKind codes")
    if problems:
        raise ImportError(
            f"gwcheck.decode._decode ({_decode.__file__}) disagrees with gwcheck.schema on the {' and '.join(problems)}: "
            "rebuild it (pip install -e .) or update _decode.c"
        )


_check_extension()
