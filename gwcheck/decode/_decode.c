/* The columnar decoder (gwcheck.decode._decode): one pass over a file's records fills every decoded column of the packet table.
 *
 * Layers are decoded by the headers beside this file (link.h, ip.h, transport.h, geneve.h, digest.h), the C
 * halves of the Python modules of the same names; this file walks the records, maps each layer's outcome to
 * a DecodeStatus and stores the fields.  A packet that stops early keeps what was decoded before the stop and
 * gets the status of the layer that stopped it.
 *
 * Columns live as rows of one matrix per storage width (u8, bool too; u16; u32; u64), laid out as
 * kernel.ROWS says; the module exports its own layout (ROWS) and codes (STATUS, KIND, CONSTANTS) so that
 * kernel.py can refuse a build that disagrees with the schema.  Every field of every decoded row is written
 * (0 where the packet did not reach it), so the matrices need not be zeroed first.
 */
#include "native.h"

#include "digest.h"
#include "geneve.h"
#include "ip.h"
#include "link.h"
#include "transport.h"

/* --- column layout: (row constant, column name) per storage width, in kernel.ROWS order ------------------ */

#define GW_ROWS_U8(X)                                                                                           \
    X(STATUS, "status") X(KIND, "kind") X(VLAN_COUNT, "vlan_count") X(OUTER_IP_VERSION, "outer_ip_version")     \
    X(OUTER_TTL, "outer_ttl") X(OUTER_FRAG, "outer_frag") X(OUTER_PROTO, "outer_proto")                         \
    X(OUTER_TCP_FLAGS, "outer_tcp_flags") X(GENEVE_VERSION, "geneve_version") X(GENEVE_OAM, "geneve_oam")       \
    X(GENEVE_CRITICAL, "geneve_critical") X(GENEVE_OPT_COUNT, "geneve_opt_count")                               \
    X(INNER_IP_VERSION, "inner_ip_version") X(INNER_PROTO, "inner_proto") X(INNER_TTL, "inner_ttl")             \
    X(INNER_FRAG, "inner_frag") X(INNER_ICMP_TYPE, "inner_icmp_type") X(INNER_ICMP_CODE, "inner_icmp_code")

#define GW_ROWS_U16(X)                                                                                          \
    X(VLAN_ID, "vlan_id") X(OUTER_SPORT, "outer_sport") X(OUTER_DPORT, "outer_dport")                           \
    X(OUTER_UDP_CHECKSUM, "outer_udp_checksum") X(OUTER_HTTP_STATUS, "outer_http_status")                       \
    X(GENEVE_OPT_LEN_BYTES, "geneve_opt_len_bytes") X(GENEVE_PROTOCOL, "geneve_protocol")                       \
    X(GWLB_SHAPE, "gwlb_shape") X(ENCAP_OVERHEAD_BYTES, "encap_overhead_bytes")                                 \
    X(INNER_FRAG_OFFSET_BYTES, "inner_frag_offset_bytes") X(INNER_SPORT, "inner_sport")                         \
    X(INNER_DPORT, "inner_dport") X(INNER_TCP_FLAGS, "inner_tcp_flags") X(INNER_TCP_MSS, "inner_tcp_mss")       \
    X(INNER_ICMP_ID, "inner_icmp_id") X(INNER_ICMP_SEQ, "inner_icmp_seq")

#define GW_ROWS_U32(X)                                                                                          \
    X(OUTER_IP_ID, "outer_ip_id") X(OUTER_IP_LEN_BYTES, "outer_ip_len_bytes")                                   \
    X(OUTER_UDP_LEN_BYTES, "outer_udp_len_bytes") X(OUTER_L4_PAYLOAD_BYTES, "outer_l4_payload_bytes")           \
    X(GENEVE_OFFSET, "geneve_offset") X(GENEVE_VNI, "geneve_vni") X(AWS_FLOW_COOKIE, "aws_flow_cookie")         \
    X(INNER_OFFSET, "inner_offset") X(INNER_IP_LEN_BYTES, "inner_ip_len_bytes") X(INNER_IP_ID, "inner_ip_id")   \
    X(INNER_TCP_SEQ, "inner_tcp_seq") X(INNER_TCP_ACK, "inner_tcp_ack")                                         \
    X(INNER_L4_PAYLOAD_BYTES, "inner_l4_payload_bytes")

#define GW_ROWS_U64(X)                                                                                          \
    X(OUTER_SRC_HI, "outer_src_hi") X(OUTER_SRC_LO, "outer_src_lo") X(OUTER_DST_HI, "outer_dst_hi")             \
    X(OUTER_DST_LO, "outer_dst_lo") X(AWS_ENDPOINT_ID, "aws_endpoint_id")                                       \
    X(AWS_ATTACHMENT_ID, "aws_attachment_id") X(INNER_SRC_HI, "inner_src_hi") X(INNER_SRC_LO, "inner_src_lo")   \
    X(INNER_DST_HI, "inner_dst_hi") X(INNER_DST_LO, "inner_dst_lo") X(INNER_DIGEST, "inner_digest")

#define GW_ENUM_U8(row, name) U8_##row,
#define GW_ENUM_U16(row, name) U16_##row,
#define GW_ENUM_U32(row, name) U32_##row,
#define GW_ENUM_U64(row, name) U64_##row,
enum { GW_ROWS_U8(GW_ENUM_U8) N_U8 };
enum { GW_ROWS_U16(GW_ENUM_U16) N_U16 };
enum { GW_ROWS_U32(GW_ENUM_U32) N_U32 };
enum { GW_ROWS_U64(GW_ENUM_U64) N_U64 };

/* --- codes: schema.DecodeStatus and schema.PacketKind ---------------------------------------------------- */

#define GW_STATUSES(X)                                                                                          \
    X(OK, 0) X(TRUNCATED_LINK, 1) X(TRUNCATED_OUTER_IP, 2) X(TRUNCATED_OUTER_L4, 3) X(TRUNCATED_GENEVE, 4)      \
    X(TRUNCATED_GENEVE_OPTIONS, 5) X(TRUNCATED_INNER_ETHERNET, 6) X(TRUNCATED_INNER_IP, 7)                      \
    X(TRUNCATED_INNER_L4, 8) X(MALFORMED_OUTER_IP_VERSION, 9) X(MALFORMED_OUTER_IP_HEADER_LENGTH, 10)           \
    X(MALFORMED_OUTER_IP_TOTAL_LENGTH, 11) X(MALFORMED_OUTER_IPV6_EXTENSION, 12)                                \
    X(MALFORMED_OUTER_TCP_HEADER_LENGTH, 13) X(MALFORMED_UDP_LENGTH, 14) X(MALFORMED_GENEVE_VERSION, 15)        \
    X(MALFORMED_GENEVE_OPTIONS, 16) X(MALFORMED_INNER_IP_VERSION, 17) X(MALFORMED_INNER_IP_HEADER_LENGTH, 18)   \
    X(MALFORMED_INNER_IP_TOTAL_LENGTH, 19) X(MALFORMED_INNER_IPV6_EXTENSION, 20)                                \
    X(MALFORMED_INNER_TCP_HEADER_LENGTH, 21) X(MALFORMED_INNER_UDP_LENGTH, 22) X(UNSUPPORTED_LINK_TYPE, 23)

#define GW_KINDS(X)                                                                                             \
    X(UNDECODED, 0) X(GENEVE, 1) X(UDP, 2) X(TCP, 3) X(ICMP, 4) X(IP_OTHER, 5) X(IP_FRAGMENT, 6) X(NON_IP, 7)    \
    X(UNSUPPORTED_LINK, 8)

#define GW_ENUM_STATUS(name, value) S_##name = value,
#define GW_ENUM_KIND(name, value) K_##name = value,
enum { GW_STATUSES(GW_ENUM_STATUS) };
enum { GW_KINDS(GW_ENUM_KIND) };

/* parse_ip outcome -> status, outer and inner */
static const uint8_t outer_ip_status[] = {S_OK, S_TRUNCATED_OUTER_IP, S_MALFORMED_OUTER_IP_VERSION, S_MALFORMED_OUTER_IP_HEADER_LENGTH,
                                          S_MALFORMED_OUTER_IP_TOTAL_LENGTH, S_MALFORMED_OUTER_IPV6_EXTENSION};
static const uint8_t inner_ip_status[] = {S_OK, S_TRUNCATED_INNER_IP, S_MALFORMED_INNER_IP_VERSION, S_MALFORMED_INNER_IP_HEADER_LENGTH,
                                          S_MALFORMED_INNER_IP_TOTAL_LENGTH, S_MALFORMED_INNER_IPV6_EXTENSION};

/* --- the kernel ------------------------------------------------------------------------------------------ */

/* The decoded columns of GW_TILE packets, zeroed first, filled a packet (column) at a time, then stored a row
 * at a time: contiguous runs into each matrix row rather than one scattered store per field per packet, which
 * costs more than the decoding itself (58 rows: more write streams than caches track). */
#define GW_TILE 128
typedef struct {
    _Alignas(64) uint8_t u8[N_U8][GW_TILE];
    uint16_t u16[N_U16][GW_TILE];
    uint32_t u32[N_U32][GW_TILE];
    uint64_t u64[N_U64][GW_TILE];
} gw_tile;

/* The four matrices: row k of width w starts at w + k * stride_w (elements). */
typedef struct {
    uint8_t *u8;
    uint16_t *u16;
    uint32_t *u32;
    uint64_t *u64;
    Py_ssize_t s8, s16, s32, s64;
} gw_matrices;

#if defined(__GNUC__)
#define GW_NOINLINE __attribute__((noinline))
#else
#define GW_NOINLINE
#endif

/* The digest out of line: inlined in the kernel, its four lanes spill to the stack. */
static GW_NOINLINE uint64_t digest(const uint8_t *buf, int64_t p, int64_t end, unsigned ip_version) {
    return gw_inner_digest(buf, p, end, ip_version);
}

static inline unsigned ip_version_of(uint32_t ethertype) {
    return ethertype == GW_ETHERTYPE_IPV4 ? 4 : ethertype == GW_ETHERTYPE_IPV6 ? 6 : 0;
}

/* Decode the inner IP packet at ``start`` and its transport header; return the packet's status. */
static uint8_t decode_inner(const uint8_t *buf, gw_tile *t, int j, int64_t start, int64_t end, int64_t wire_extra, unsigned version) {
    gw_ip ip;
    gw_parse_ip(buf, start, end, wire_extra, version, &ip);
    t->u8[U8_INNER_IP_VERSION][j] = (uint8_t)version;
    t->u64[U64_INNER_SRC_HI][j] = ip.src_hi;
    t->u64[U64_INNER_SRC_LO][j] = ip.src_lo;
    t->u64[U64_INNER_DST_HI][j] = ip.dst_hi;
    t->u64[U64_INNER_DST_LO][j] = ip.dst_lo;
    t->u8[U8_INNER_PROTO][j] = (uint8_t)ip.proto;
    t->u32[U32_INNER_IP_LEN_BYTES][j] = (uint32_t)ip.total;
    t->u32[U32_INNER_IP_ID][j] = ip.ident;
    t->u8[U8_INNER_TTL][j] = (uint8_t)ip.ttl;
    t->u8[U8_INNER_FRAG][j] = (uint8_t)ip.frag;
    t->u16[U16_INNER_FRAG_OFFSET_BYTES][j] = (uint16_t)ip.frag_offset;
    if (ip.outcome == GW_IP_BAD_VERSION) {
        t->u64[U64_INNER_DIGEST][j] = digest(buf, start, end, 0);
        return inner_ip_status[ip.outcome];
    }
    t->u64[U64_INNER_DIGEST][j] = digest(buf, start, ip.packet_end > start ? ip.packet_end : end, version);
    if (ip.outcome != GW_IP_OK) return inner_ip_status[ip.outcome];
    if (ip.frag & GW_FRAG_OFFSET) return S_OK;
    int64_t on_wire = ip.total - (ip.l4 - start);
    if (ip.proto == GW_IPPROTO_TCP) {
        gw_tcp tcp = gw_parse_tcp(buf, ip.l4, ip.packet_end, on_wire);
        t->u16[U16_INNER_SPORT][j] = (uint16_t)tcp.sport;
        t->u16[U16_INNER_DPORT][j] = (uint16_t)tcp.dport;
        t->u32[U32_INNER_TCP_SEQ][j] = tcp.seq;
        t->u32[U32_INNER_TCP_ACK][j] = tcp.ack;
        t->u16[U16_INNER_TCP_FLAGS][j] = (uint16_t)tcp.flags;
        t->u16[U16_INNER_TCP_MSS][j] = (uint16_t)tcp.mss;
        t->u32[U32_INNER_L4_PAYLOAD_BYTES][j] = (uint32_t)tcp.payload;
        if (tcp.outcome == GW_L4_TRUNCATED) return S_TRUNCATED_INNER_L4;
        if (tcp.outcome == GW_L4_BAD_LENGTH) return S_MALFORMED_INNER_TCP_HEADER_LENGTH;
    } else if (ip.proto == GW_IPPROTO_UDP) {
        gw_udp udp = gw_parse_udp(buf, ip.l4, ip.packet_end, on_wire, (ip.frag & GW_FRAG_MF) != 0);
        t->u16[U16_INNER_SPORT][j] = (uint16_t)udp.sport;
        t->u16[U16_INNER_DPORT][j] = (uint16_t)udp.dport;
        t->u32[U32_INNER_L4_PAYLOAD_BYTES][j] = (uint32_t)gw_max64(udp.length - GW_UDP_HEADER_BYTES, 0);
        if (udp.outcome == GW_L4_TRUNCATED) return S_TRUNCATED_INNER_L4;
        if (udp.outcome == GW_L4_BAD_LENGTH) return S_MALFORMED_INNER_UDP_LENGTH;
    } else if (ip.proto == GW_IPPROTO_ICMP || ip.proto == GW_IPPROTO_ICMPV6) {
        gw_icmp icmp = gw_parse_icmp(buf, ip.l4, ip.packet_end, ip.proto == GW_IPPROTO_ICMPV6);
        t->u8[U8_INNER_ICMP_TYPE][j] = (uint8_t)icmp.type;
        t->u8[U8_INNER_ICMP_CODE][j] = (uint8_t)icmp.code;
        t->u16[U16_INNER_ICMP_ID][j] = (uint16_t)icmp.ident;
        t->u16[U16_INNER_ICMP_SEQ][j] = (uint16_t)icmp.seq;
        if (icmp.outcome == GW_L4_TRUNCATED) return S_TRUNCATED_INNER_L4;
    }
    return S_OK;
}

/* Decode Geneve at ``start`` (payload captured to ``end``, on the wire to ``wire_end``); return the status. */
static uint8_t decode_geneve(const uint8_t *buf, gw_tile *t, int j, int64_t frame, int64_t l3, int64_t start, int64_t end, int64_t wire_end) {
    gw_geneve g;
    gw_parse_geneve(buf, start, end, &g);
    t->u32[U32_GENEVE_OFFSET][j] = (uint32_t)(start - frame);
    if (t->u8[U8_OUTER_IP_VERSION][j] == 6) g.shape |= GW_SHAPE_OUTER_IPV6;
    t->u8[U8_GENEVE_VERSION][j] = (uint8_t)g.version;
    t->u16[U16_GENEVE_OPT_LEN_BYTES][j] = (uint16_t)g.opt_len;
    t->u8[U8_GENEVE_OAM][j] = (uint8_t)g.oam;
    t->u8[U8_GENEVE_CRITICAL][j] = (uint8_t)g.critical;
    t->u16[U16_GENEVE_PROTOCOL][j] = (uint16_t)g.protocol;
    t->u32[U32_GENEVE_VNI][j] = g.vni;
    t->u8[U8_GENEVE_OPT_COUNT][j] = (uint8_t)g.count;
    t->u64[U64_AWS_ENDPOINT_ID][j] = g.endpoint;
    t->u64[U64_AWS_ATTACHMENT_ID][j] = g.attachment;
    t->u32[U32_AWS_FLOW_COOKIE][j] = g.cookie;
    if (g.outcome == GW_GENEVE_TRUNCATED) return S_TRUNCATED_GENEVE;
    t->u16[U16_GWLB_SHAPE][j] = (uint16_t)g.shape;
    if (g.outcome == GW_GENEVE_BAD_VERSION) return S_MALFORMED_GENEVE_VERSION;
    if (g.outcome == GW_GENEVE_OPTIONS_TRUNCATED) /* cut by the capture, or declared past the datagram on the wire */
        return g.inner <= wire_end ? S_TRUNCATED_GENEVE_OPTIONS : S_MALFORMED_GENEVE_OPTIONS;
    if (g.outcome == GW_GENEVE_BAD_OPTIONS) return S_MALFORMED_GENEVE_OPTIONS;
    t->u16[U16_ENCAP_OVERHEAD_BYTES][j] = (uint16_t)(g.inner - l3);
    int64_t ip_start = g.inner;
    uint32_t ethertype = g.protocol;
    if (g.protocol == GW_PROTOCOL_ETHERNET) {
        gw_link link = gw_parse_ethernet(buf, g.inner, end);
        if (link.outcome != GW_LINK_OK) {
            t->u64[U64_INNER_DIGEST][j] = digest(buf, g.inner, end, 0);
            return S_TRUNCATED_INNER_ETHERNET;
        }
        ip_start = link.payload;
        ethertype = link.ethertype;
    }
    unsigned version = ip_version_of(ethertype);
    if (version == 0) {
        if (end > ip_start) t->u64[U64_INNER_DIGEST][j] = digest(buf, ip_start, end, 0);
        return S_OK;
    }
    t->u32[U32_INNER_OFFSET][j] = (uint32_t)(ip_start - frame);
    return decode_inner(buf, t, j, ip_start, end, wire_end - end, version);
}

/* Decode the frame at [start, end) of ``buf`` (``wire_extra`` more bytes were on the wire) into column ``j`` of tile ``t``. */
static void decode_packet(const uint8_t *buf, gw_tile *t, int j, int64_t start, int64_t end, int64_t wire_extra, uint32_t link_type, uint32_t port) {
    gw_link link = gw_parse_link(buf, start, end, link_type);
    t->u16[U16_VLAN_ID][j] = (uint16_t)link.vlan_id;
    t->u8[U8_VLAN_COUNT][j] = (uint8_t)link.vlan_count;
    if (link.outcome == GW_LINK_UNSUPPORTED) {
        t->u8[U8_STATUS][j] = S_UNSUPPORTED_LINK_TYPE;
        t->u8[U8_KIND][j] = K_UNSUPPORTED_LINK;
        return;
    }
    if (link.outcome == GW_LINK_TRUNCATED) {
        t->u8[U8_STATUS][j] = S_TRUNCATED_LINK;
        return;
    }
    unsigned version = ip_version_of(link.ethertype);
    if (version == 0) {
        t->u8[U8_KIND][j] = K_NON_IP;
        return;
    }
    int64_t l3 = link.payload;
    gw_ip ip;
    gw_parse_ip(buf, l3, end, wire_extra, version, &ip);
    t->u8[U8_OUTER_IP_VERSION][j] = (uint8_t)version;
    t->u64[U64_OUTER_SRC_HI][j] = ip.src_hi;
    t->u64[U64_OUTER_SRC_LO][j] = ip.src_lo;
    t->u64[U64_OUTER_DST_HI][j] = ip.dst_hi;
    t->u64[U64_OUTER_DST_LO][j] = ip.dst_lo;
    t->u8[U8_OUTER_TTL][j] = (uint8_t)ip.ttl;
    t->u32[U32_OUTER_IP_ID][j] = ip.ident;
    t->u8[U8_OUTER_FRAG][j] = (uint8_t)ip.frag;
    t->u32[U32_OUTER_IP_LEN_BYTES][j] = (uint32_t)ip.total;
    t->u8[U8_OUTER_PROTO][j] = (uint8_t)ip.proto;
    if (ip.outcome != GW_IP_OK) {
        t->u8[U8_STATUS][j] = outer_ip_status[ip.outcome];
        return;
    }
    if (ip.frag & GW_FRAG_OFFSET) {
        t->u8[U8_KIND][j] = K_IP_FRAGMENT;
        return;
    }
    int64_t on_wire = ip.total - (ip.l4 - l3);
    if (ip.proto == GW_IPPROTO_UDP) {
        gw_udp udp = gw_parse_udp(buf, ip.l4, ip.packet_end, on_wire, (ip.frag & GW_FRAG_MF) != 0);
        if (udp.outcome == GW_L4_TRUNCATED) {
            t->u8[U8_KIND][j] = K_UDP;
            t->u8[U8_STATUS][j] = S_TRUNCATED_OUTER_L4;
            return;
        }
        t->u16[U16_OUTER_SPORT][j] = (uint16_t)udp.sport;
        t->u16[U16_OUTER_DPORT][j] = (uint16_t)udp.dport;
        t->u32[U32_OUTER_UDP_LEN_BYTES][j] = (uint32_t)udp.length;
        t->u16[U16_OUTER_UDP_CHECKSUM][j] = (uint16_t)udp.checksum;
        t->u32[U32_OUTER_L4_PAYLOAD_BYTES][j] = (uint32_t)gw_max64(udp.length - GW_UDP_HEADER_BYTES, 0);
        int geneve = udp.sport == port || udp.dport == port;
        t->u8[U8_KIND][j] = geneve ? K_GENEVE : K_UDP;
        if (udp.outcome == GW_L4_BAD_LENGTH) {
            t->u8[U8_STATUS][j] = S_MALFORMED_UDP_LENGTH;
            return;
        }
        if (geneve) t->u8[U8_STATUS][j] = decode_geneve(buf, t, j, start, l3, udp.payload, udp.payload_end, ip.l4 + udp.length);
    } else if (ip.proto == GW_IPPROTO_TCP) {
        t->u8[U8_KIND][j] = K_TCP;
        gw_tcp tcp = gw_parse_tcp(buf, ip.l4, ip.packet_end, on_wire);
        t->u16[U16_OUTER_SPORT][j] = (uint16_t)tcp.sport;
        t->u16[U16_OUTER_DPORT][j] = (uint16_t)tcp.dport;
        t->u8[U8_OUTER_TCP_FLAGS][j] = (uint8_t)(tcp.flags & 0xFF);
        t->u32[U32_OUTER_L4_PAYLOAD_BYTES][j] = (uint32_t)tcp.payload;
        if (tcp.outcome != GW_L4_OK) {
            t->u8[U8_STATUS][j] = tcp.outcome == GW_L4_TRUNCATED ? S_TRUNCATED_OUTER_L4 : S_MALFORMED_OUTER_TCP_HEADER_LENGTH;
            return;
        }
        t->u16[U16_OUTER_HTTP_STATUS][j] = (uint16_t)gw_http_status(buf, ip.l4 + tcp.header, ip.packet_end);
    } else if (ip.proto == GW_IPPROTO_ICMP || ip.proto == GW_IPPROTO_ICMPV6) {
        t->u8[U8_KIND][j] = K_ICMP;
        if (ip.packet_end - ip.l4 < GW_ICMP_MIN_HEADER_BYTES) t->u8[U8_STATUS][j] = S_TRUNCATED_OUTER_L4;
    } else {
        t->u8[U8_KIND][j] = K_IP_OTHER;
    }
}

/* Store columns [0, n) of the tile at matrix columns [column, column + n). */
static void store_tile(const gw_tile *t, int n, const gw_matrices *m, Py_ssize_t column) {
    for (int k = 0; k < N_U8; k++) memcpy(m->u8 + k * m->s8 + column, t->u8[k], (size_t)n * sizeof t->u8[k][0]);
    for (int k = 0; k < N_U16; k++) memcpy(m->u16 + k * m->s16 + column, t->u16[k], (size_t)n * sizeof t->u16[k][0]);
    for (int k = 0; k < N_U32; k++) memcpy(m->u32 + k * m->s32 + column, t->u32[k], (size_t)n * sizeof t->u32[k][0]);
    for (int k = 0; k < N_U64; k++) memcpy(m->u64 + k * m->s64 + column, t->u64[k], (size_t)n * sizeof t->u64[k][0]);
}

/* Records [first, last) into matrix columns [column + first, column + last); the first record lying outside
 * ``buf`` stops the loop (the records before it are stored) and is returned, else -1. */
static Py_ssize_t decode_loop(const uint8_t *buf, Py_ssize_t buf_len, const int64_t *frame_offset, const uint32_t *cap_len,
                              const uint32_t *wire_len, const uint16_t *link_type, const gw_matrices *m, uint32_t port,
                              Py_ssize_t first, Py_ssize_t last, Py_ssize_t column) {
    gw_tile tile;
    for (Py_ssize_t base = first; base < last; base += GW_TILE) {
        int n = last - base < GW_TILE ? (int)(last - base) : GW_TILE;
        memset(&tile, 0, sizeof tile);
        for (int j = 0; j < n; j++) {
            Py_ssize_t i = base + j;
            int64_t start = frame_offset[i];
            if (start < 0 || start > buf_len || (int64_t)cap_len[i] > buf_len - start) {
                store_tile(&tile, j, m, column + base);
                return i;
            }
            int64_t end = start + (int64_t)cap_len[i];
            int64_t wire_extra = gw_max64((int64_t)wire_len[i] - (int64_t)cap_len[i], 0);
            decode_packet(buf, &tile, j, start, end, wire_extra, link_type[i], port);
        }
        store_tile(&tile, n, m, column + base);
    }
    return -1;
}

/* --- argument checking ----------------------------------------------------------------------------------- */

#define FORMAT_BOOL_OR_U8 GW_FORMAT_U8 GW_FORMAT_BOOL  /* the u8 matrix holds bool columns too */

/* A writable (rows, n) matrix whose rows are contiguous: the whole matrix or a column slice m[:, a:b] of one.
 * Returns the row stride in elements through ``stride``. */
static int matrix_view(PyObject *object, Py_buffer *view, Py_ssize_t itemsize, const char *codes, Py_ssize_t rows, Py_ssize_t *stride,
                       const char *what) {
    if (PyObject_GetBuffer(object, view, PyBUF_STRIDES | PyBUF_FORMAT | PyBUF_WRITABLE) != 0) {
        PyErr_Format(PyExc_TypeError, "%s: expected a writable array", what);
        return -1;
    }
    if (view->ndim != 2 || view->shape[0] != rows) {
        PyErr_Format(PyExc_TypeError, "%s: expected a matrix of %zd rows", what, rows);
        goto fail;
    }
    if (view->itemsize != itemsize || !gw_format_is(view->format, codes)) {
        PyErr_Format(PyExc_TypeError, "%s: expected %zd-byte elements of format '%s', got %zd-byte '%s'", what, itemsize, codes,
                     view->itemsize, view->format ? view->format : "B");
        goto fail;
    }
    Py_ssize_t n = view->shape[1];
    if ((n > 1 && view->strides[1] != itemsize) || view->strides[0] % itemsize != 0 || (rows > 1 && view->strides[0] < n * itemsize)) {
        PyErr_Format(PyExc_TypeError, "%s: expected contiguous rows that do not overlap", what);
        goto fail;
    }
    *stride = rows > 1 ? view->strides[0] / itemsize : n;
    return 0;
fail:
    PyBuffer_Release(view);
    return -1;
}

/* --- Python functions ------------------------------------------------------------------------------------ */

PyDoc_STRVAR(decode_records_doc,
             "decode_records(data, frame_offset, cap_len, wire_len, link_type, u8, u16, u32, u64, port, first, last, column)\n--\n\n"
             "Decode records [first, last) of the frames in ``data`` (uint8) into matrix columns [column + first, column + last).\n\n"
             "The record arrays (int64, uint32, uint32, uint16) locate each frame.  ``u8`` (uint8 or bool), ``u16``, ``u32``, ``u64`` "
             "are the (rows, n) matrices of kernel.ROWS (whole, or column slices of C-contiguous ones); every column of every decoded "
             "row is written.  Raises TypeError for a wrong dtype or shape, ValueError for a record outside ``data`` or bad bounds.  "
             "The GIL is released while decoding.");

static PyObject *decode_records(PyObject *self, PyObject *args) {
    PyObject *objects[9];
    Py_ssize_t port, first, last, column;
    if (!PyArg_ParseTuple(args, "OOOOOOOOOnnnn:decode_records", &objects[0], &objects[1], &objects[2], &objects[3], &objects[4],
                          &objects[5], &objects[6], &objects[7], &objects[8], &port, &first, &last, &column))
        return NULL;
    if (port < 0 || port > 0xFFFF) return PyErr_Format(PyExc_ValueError, "port %zd is not a UDP port (0-65535)", port);
    Py_buffer views[9];
    int held = 0;
    PyObject *result = NULL;
    gw_matrices m;
    if (gw_typed_view(objects[0], &views[0], 1, GW_FORMAT_U8, 0, "data") != 0) goto done;
    held++;
    if (gw_typed_view(objects[1], &views[1], 8, GW_FORMAT_I64, 0, "frame_offset") != 0) goto done;
    held++;
    if (gw_typed_view(objects[2], &views[2], 4, GW_FORMAT_U32, 0, "cap_len") != 0) goto done;
    held++;
    if (gw_typed_view(objects[3], &views[3], 4, GW_FORMAT_U32, 0, "wire_len") != 0) goto done;
    held++;
    if (gw_typed_view(objects[4], &views[4], 2, GW_FORMAT_U16, 0, "link_type") != 0) goto done;
    held++;
    if (matrix_view(objects[5], &views[5], 1, FORMAT_BOOL_OR_U8, N_U8, &m.s8, "u8") != 0) goto done;
    held++;
    if (matrix_view(objects[6], &views[6], 2, GW_FORMAT_U16, N_U16, &m.s16, "u16") != 0) goto done;
    held++;
    if (matrix_view(objects[7], &views[7], 4, GW_FORMAT_U32, N_U32, &m.s32, "u32") != 0) goto done;
    held++;
    if (matrix_view(objects[8], &views[8], 8, GW_FORMAT_U64, N_U64, &m.s64, "u64") != 0) goto done;
    held++;
    Py_ssize_t records = gw_len(&views[1]);
    if (gw_len(&views[2]) != records || gw_len(&views[3]) != records || gw_len(&views[4]) != records) {
        PyErr_SetString(PyExc_ValueError, "record arrays differ in length");
        goto done;
    }
    if (first < 0 || last < first || last > records) {
        PyErr_Format(PyExc_ValueError, "records [%zd, %zd) out of [0, %zd)", first, last, records);
        goto done;
    }
    for (int k = 5; k < 9; k++) {
        Py_ssize_t n = views[k].shape[1];
        if (column < 0 || column > n || last > n - column) {
            PyErr_Format(PyExc_ValueError, "matrix columns [%zd, %zd) out of [0, %zd)", column + first, column + last, n);
            goto done;
        }
    }
    m.u8 = views[5].buf;
    m.u16 = views[6].buf;
    m.u32 = views[7].buf;
    m.u64 = views[8].buf;
    Py_ssize_t bad;
    Py_BEGIN_ALLOW_THREADS;
    bad = decode_loop(views[0].buf, views[0].len, views[1].buf, views[2].buf, views[3].buf, views[4].buf, &m, (uint32_t)port, first, last,
                      column);
    Py_END_ALLOW_THREADS;
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "record %zd (offset %lld, %lu bytes) lies outside the %zd bytes of data", bad,
                     (long long)((const int64_t *)views[1].buf)[bad], (unsigned long)((const uint32_t *)views[2].buf)[bad], views[0].len);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    gw_release(views, held);
    return result;
}

PyDoc_STRVAR(walk_options_doc,
             "walk_options(data, option_starts, counts, option_class, option_type, length, data_start)\n--\n\n"
             "Fill one row per Geneve option of each packet: ``counts[i]`` options from ``option_starts[i]`` (RFC 8926 3.5).\n\n"
             "``data`` is uint8; ``option_starts``, ``counts`` and ``data_start`` int64; ``option_class`` and ``length`` uint16; "
             "``option_type`` uint8.  Raises ValueError when an option header lies outside ``data`` or the rows run out.");

static PyObject *walk_options(PyObject *self, PyObject *args) {
    PyObject *objects[7];
    if (!PyArg_ParseTuple(args, "OOOOOOO:walk_options", &objects[0], &objects[1], &objects[2], &objects[3], &objects[4], &objects[5],
                          &objects[6]))
        return NULL;
    static const Py_ssize_t sizes[7] = {1, 8, 8, 2, 1, 2, 8};
    static const char *names[7] = {"data", "option_starts", "counts", "option_class", "option_type", "length", "data_start"};
    const char *codes[7] = {GW_FORMAT_U8, GW_FORMAT_I64, GW_FORMAT_I64, GW_FORMAT_U16, GW_FORMAT_U8, GW_FORMAT_U16, GW_FORMAT_I64};
    Py_buffer views[7];
    int held = 0;
    PyObject *result = NULL;
    for (; held < 7; held++)
        if (gw_typed_view(objects[held], &views[held], sizes[held], codes[held], held >= 3, names[held]) != 0) goto done;
    Py_ssize_t packets = gw_len(&views[1]), rows = gw_len(&views[3]);
    if (gw_len(&views[2]) != packets) {
        PyErr_SetString(PyExc_ValueError, "option_starts and counts differ in length");
        goto done;
    }
    if (gw_len(&views[4]) != rows || gw_len(&views[5]) != rows || gw_len(&views[6]) != rows) {
        PyErr_SetString(PyExc_ValueError, "output arrays differ in length");
        goto done;
    }
    const uint8_t *buf = views[0].buf;
    int64_t buf_len = views[0].len;
    const int64_t *starts = views[1].buf, *counts = views[2].buf;
    uint16_t *option_class = views[3].buf, *length = views[5].buf;
    uint8_t *option_type = views[4].buf;
    int64_t *data_start = views[6].buf;
    Py_ssize_t k = 0, bad = -1;
    int overflow = 0;
    Py_BEGIN_ALLOW_THREADS;
    for (Py_ssize_t i = 0; i < packets && bad < 0 && !overflow; i++) {
        int64_t q = starts[i];
        for (int64_t c = 0; c < counts[i]; c++) {
            if (k >= rows) {
                overflow = 1;
                break;
            }
            if (q < 0 || q > buf_len - GW_OPTION_HEADER_BYTES) {
                bad = i;
                break;
            }
            option_class[k] = (uint16_t)gw_u16be(buf + q);
            option_type[k] = buf[q + 2];
            int64_t size = (int64_t)(buf[q + 3] & GW_OPTION_LENGTH_MASK) * 4;
            length[k] = (uint16_t)size;
            data_start[k] = q + GW_OPTION_HEADER_BYTES;
            q += GW_OPTION_HEADER_BYTES + size;
            k++;
        }
    }
    Py_END_ALLOW_THREADS;
    if (overflow) {
        PyErr_Format(PyExc_ValueError, "more options than the %zd output rows", rows);
        goto done;
    }
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "an option of packet %zd lies outside the %zd bytes of data", bad, views[0].len);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    gw_release(views, held);
    return result;
}

PyDoc_STRVAR(inner_digest_doc,
             "inner_digest(data, start, end, ip_version)\n--\n\n"
             "The digest of bytes [start, end) of ``data`` (uint8 or bytes) as the decoder stores it (digest.py); ip_version 4 or 6 "
             "masks the fields a router rewrites, 0 none.");

static PyObject *inner_digest(PyObject *self, PyObject *args) {
    PyObject *object;
    Py_ssize_t start, end;
    int version;
    if (!PyArg_ParseTuple(args, "Onni:inner_digest", &object, &start, &end, &version)) return NULL;
    Py_buffer view;
    if (gw_typed_view(object, &view, 1, GW_FORMAT_U8, 0, "data") != 0) return NULL;
    if (end > start && (start < 0 || end > view.len)) {
        PyBuffer_Release(&view);
        return PyErr_Format(PyExc_ValueError, "range [%zd, %zd) out of the %zd bytes of data", start, end, view.len);
    }
    uint64_t digest = gw_inner_digest(view.buf, start, end, (unsigned)version);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLongLong(digest);
}

static PyMethodDef methods[] = {
    {"decode_records", decode_records, METH_VARARGS, decode_records_doc},
    {"walk_options", walk_options, METH_VARARGS, walk_options_doc},
    {"inner_digest", inner_digest, METH_VARARGS, inner_digest_doc},
    {NULL, NULL, 0, NULL},
};

/* --- module: the layout and codes this build was compiled with ------------------------------------------- */

static int add_row(PyObject *rows, const char *name, const char *group, int row) {
    PyObject *value = Py_BuildValue("(si)", group, row);
    if (value == NULL) return -1;
    int status = PyDict_SetItemString(rows, name, value);
    Py_DECREF(value);
    return status;
}

static int add_int(PyObject *dict, const char *name, long long value) {
    PyObject *number = PyLong_FromLongLong(value);
    if (number == NULL) return -1;
    int status = PyDict_SetItemString(dict, name, number);
    Py_DECREF(number);
    return status;
}

/* Constants the Python modules define too, "module.NAME": tests check that both agree. */
#define GW_CONSTANTS(X)                                                                                          \
    X("link.LINKTYPE_NULL", GW_LINKTYPE_NULL) X("link.LINKTYPE_ETHERNET", GW_LINKTYPE_ETHERNET)                  \
    X("link.LINKTYPE_RAW_OPENBSD", GW_LINKTYPE_RAW_OPENBSD) X("link.LINKTYPE_RAW_OLD", GW_LINKTYPE_RAW_OLD)      \
    X("link.LINKTYPE_RAW", GW_LINKTYPE_RAW) X("link.LINKTYPE_LOOP", GW_LINKTYPE_LOOP)                            \
    X("link.LINKTYPE_LINUX_SLL", GW_LINKTYPE_LINUX_SLL) X("link.LINKTYPE_IPV4", GW_LINKTYPE_IPV4)                \
    X("link.LINKTYPE_IPV6", GW_LINKTYPE_IPV6) X("link.LINKTYPE_LINUX_SLL2", GW_LINKTYPE_LINUX_SLL2)              \
    X("link.ETHERTYPE_IPV4", GW_ETHERTYPE_IPV4) X("link.ETHERTYPE_IPV6", GW_ETHERTYPE_IPV6)                      \
    X("link.ETHERTYPE_VLAN", GW_ETHERTYPE_VLAN) X("link.ETHERTYPE_QINQ", GW_ETHERTYPE_QINQ)                      \
    X("link.ETHERTYPE_QINQ_OLD", GW_ETHERTYPE_QINQ_OLD) X("link.ETHERNET_HEADER_BYTES", GW_ETHERNET_HEADER_BYTES) \
    X("link.VLAN_TAG_BYTES", GW_VLAN_TAG_BYTES) X("link.VLAN_ID_MASK", GW_VLAN_ID_MASK)                          \
    X("link.SLL_HEADER_BYTES", GW_SLL_HEADER_BYTES) X("link.SLL_PROTOCOL_OFFSET", GW_SLL_PROTOCOL_OFFSET)        \
    X("link.SLL2_HEADER_BYTES", GW_SLL2_HEADER_BYTES) X("link.SLL2_PROTOCOL_OFFSET", GW_SLL2_PROTOCOL_OFFSET)    \
    X("link.NULL_HEADER_BYTES", GW_NULL_HEADER_BYTES) X("link.AF_INET", GW_AF_INET)                              \
    X("link.LINK_OK", GW_LINK_OK) X("link.LINK_TRUNCATED", GW_LINK_TRUNCATED)                                    \
    X("link.LINK_UNSUPPORTED", GW_LINK_UNSUPPORTED)                                                              \
    X("ip.IPV4_MIN_HEADER_BYTES", GW_IPV4_MIN_HEADER_BYTES) X("ip.IPV4_TOTAL_LENGTH", GW_IPV4_TOTAL_LENGTH)      \
    X("ip.IPV4_IDENTIFICATION", GW_IPV4_IDENTIFICATION) X("ip.IPV4_FLAGS_FRAGMENT", GW_IPV4_FLAGS_FRAGMENT)      \
    X("ip.IPV4_TTL", GW_IPV4_TTL) X("ip.IPV4_PROTOCOL", GW_IPV4_PROTOCOL) X("ip.IPV4_SOURCE", GW_IPV4_SOURCE)    \
    X("ip.IPV4_DESTINATION", GW_IPV4_DESTINATION) X("ip.IPV4_FLAG_DF", GW_IPV4_FLAG_DF)                          \
    X("ip.IPV4_FLAG_MF", GW_IPV4_FLAG_MF) X("ip.IPV4_OFFSET_MASK", GW_IPV4_OFFSET_MASK)                          \
    X("ip.IPV4_MAPPED_PREFIX", GW_IPV4_MAPPED_PREFIX) X("ip.IPV6_HEADER_BYTES", GW_IPV6_HEADER_BYTES)            \
    X("ip.IPV6_PAYLOAD_LENGTH", GW_IPV6_PAYLOAD_LENGTH) X("ip.IPV6_NEXT_HEADER", GW_IPV6_NEXT_HEADER)            \
    X("ip.IPV6_HOP_LIMIT", GW_IPV6_HOP_LIMIT) X("ip.IPV6_SOURCE", GW_IPV6_SOURCE)                                \
    X("ip.IPV6_DESTINATION", GW_IPV6_DESTINATION) X("ip.IPV6_HOP_BY_HOP", GW_IPV6_HOP_BY_HOP)                    \
    X("ip.IPV6_ROUTING", GW_IPV6_ROUTING) X("ip.IPV6_FRAGMENT", GW_IPV6_FRAGMENT) X("ip.IPV6_AUTH", GW_IPV6_AUTH) \
    X("ip.IPV6_DEST_OPTIONS", GW_IPV6_DEST_OPTIONS) X("ip.IPV6_MOBILITY", GW_IPV6_MOBILITY)                      \
    X("ip.IPV6_HIP", GW_IPV6_HIP) X("ip.IPV6_SHIM6", GW_IPV6_SHIM6)                                              \
    X("ip.IPV6_FRAGMENT_HEADER_BYTES", GW_IPV6_FRAGMENT_HEADER_BYTES)                                            \
    X("ip.IPV6_FRAGMENT_OFFSET_MASK", GW_IPV6_FRAGMENT_OFFSET_MASK) X("ip.IPV6_FRAGMENT_M", GW_IPV6_FRAGMENT_M)  \
    X("ip.IPPROTO_ICMP", GW_IPPROTO_ICMP) X("ip.IPPROTO_TCP", GW_IPPROTO_TCP) X("ip.IPPROTO_UDP", GW_IPPROTO_UDP) \
    X("ip.IPPROTO_ICMPV6", GW_IPPROTO_ICMPV6) X("ip.FRAG_DF", GW_FRAG_DF) X("ip.FRAG_MF", GW_FRAG_MF)            \
    X("ip.FRAG_OFFSET", GW_FRAG_OFFSET) X("ip.FRAG_IPV6_HEADER", GW_FRAG_IPV6_HEADER) X("ip.IP_OK", GW_IP_OK)    \
    X("ip.IP_TRUNCATED", GW_IP_TRUNCATED) X("ip.IP_BAD_VERSION", GW_IP_BAD_VERSION)                              \
    X("ip.IP_BAD_HEADER_LENGTH", GW_IP_BAD_HEADER_LENGTH) X("ip.IP_BAD_TOTAL_LENGTH", GW_IP_BAD_TOTAL_LENGTH)    \
    X("ip.IP_BAD_EXTENSION", GW_IP_BAD_EXTENSION)                                                                \
    X("transport.UDP_HEADER_BYTES", GW_UDP_HEADER_BYTES) X("transport.TCP_MIN_HEADER_BYTES", GW_TCP_MIN_HEADER_BYTES) \
    X("transport.TCP_SEQUENCE", GW_TCP_SEQUENCE) X("transport.TCP_ACKNOWLEDGEMENT", GW_TCP_ACKNOWLEDGEMENT)      \
    X("transport.TCP_DATA_OFFSET", GW_TCP_DATA_OFFSET) X("transport.TCP_FLAGS", GW_TCP_FLAGS)                    \
    X("transport.TCP_OPTION_END", GW_TCP_OPTION_END) X("transport.TCP_OPTION_NOP", GW_TCP_OPTION_NOP)            \
    X("transport.TCP_OPTION_MSS", GW_TCP_OPTION_MSS) X("transport.TCP_OPTION_MSS_BYTES", GW_TCP_OPTION_MSS_BYTES) \
    X("transport.ICMP_MIN_HEADER_BYTES", GW_ICMP_MIN_HEADER_BYTES)                                               \
    X("transport.ICMP_ECHO_HEADER_BYTES", GW_ICMP_ECHO_HEADER_BYTES)                                             \
    X("transport.ICMP_ECHO_REPLY", GW_ICMP_ECHO_REPLY) X("transport.ICMP_ECHO_REQUEST", GW_ICMP_ECHO_REQUEST)    \
    X("transport.ICMP_TIMESTAMP", GW_ICMP_TIMESTAMP) X("transport.ICMP_TIMESTAMP_REPLY", GW_ICMP_TIMESTAMP_REPLY) \
    X("transport.ICMPV6_ECHO_REQUEST", GW_ICMPV6_ECHO_REQUEST)                                                   \
    X("transport.ICMPV6_ECHO_REPLY", GW_ICMPV6_ECHO_REPLY)                                                       \
    X("transport.HTTP_STATUS_LINE_BYTES", GW_HTTP_STATUS_LINE_BYTES) X("transport.L4_OK", GW_L4_OK)              \
    X("transport.L4_TRUNCATED", GW_L4_TRUNCATED) X("transport.L4_BAD_LENGTH", GW_L4_BAD_LENGTH)                  \
    X("geneve.GENEVE_PORT", GW_GENEVE_PORT) X("geneve.GENEVE_HEADER_BYTES", GW_GENEVE_HEADER_BYTES)              \
    X("geneve.GENEVE_VERSION", GW_GENEVE_VERSION) X("geneve.GENEVE_OPT_LEN_MASK", GW_GENEVE_OPT_LEN_MASK)        \
    X("geneve.GENEVE_FLAG_OAM", GW_GENEVE_FLAG_OAM) X("geneve.GENEVE_FLAG_CRITICAL", GW_GENEVE_FLAG_CRITICAL)    \
    X("geneve.GENEVE_PROTOCOL", GW_GENEVE_PROTOCOL) X("geneve.GENEVE_VNI", GW_GENEVE_VNI)                        \
    X("geneve.OPTION_HEADER_BYTES", GW_OPTION_HEADER_BYTES) X("geneve.OPTION_TYPE_CRITICAL", GW_OPTION_TYPE_CRITICAL) \
    X("geneve.OPTION_LENGTH_MASK", GW_OPTION_LENGTH_MASK) X("geneve.PROTOCOL_IPV4", GW_PROTOCOL_IPV4)            \
    X("geneve.PROTOCOL_IPV6", GW_PROTOCOL_IPV6) X("geneve.PROTOCOL_ETHERNET", GW_PROTOCOL_ETHERNET)              \
    X("geneve.AWS_OPTION_CLASS", GW_AWS_OPTION_CLASS) X("geneve.AWS_OPTION_ENDPOINT_ID", GW_AWS_OPTION_ENDPOINT_ID) \
    X("geneve.AWS_OPTION_ATTACHMENT_ID", GW_AWS_OPTION_ATTACHMENT_ID)                                            \
    X("geneve.AWS_OPTION_FLOW_COOKIE", GW_AWS_OPTION_FLOW_COOKIE) X("geneve.GWLB_VNI", GW_GWLB_VNI)              \
    X("geneve.SHAPE_MISSING_ENDPOINT", GW_SHAPE_MISSING_ENDPOINT)                                                \
    X("geneve.SHAPE_MISSING_ATTACHMENT", GW_SHAPE_MISSING_ATTACHMENT)                                            \
    X("geneve.SHAPE_MISSING_COOKIE", GW_SHAPE_MISSING_COOKIE)                                                    \
    X("geneve.SHAPE_DUPLICATE_OPTION", GW_SHAPE_DUPLICATE_OPTION)                                                \
    X("geneve.SHAPE_UNKNOWN_AWS_OPTION", GW_SHAPE_UNKNOWN_AWS_OPTION)                                            \
    X("geneve.SHAPE_OTHER_CLASS", GW_SHAPE_OTHER_CLASS) X("geneve.SHAPE_OPTION_LENGTH", GW_SHAPE_OPTION_LENGTH)  \
    X("geneve.SHAPE_ORDER", GW_SHAPE_ORDER) X("geneve.SHAPE_CRITICAL_OPTION", GW_SHAPE_CRITICAL_OPTION)          \
    X("geneve.SHAPE_HEADER", GW_SHAPE_HEADER) X("geneve.SHAPE_OUTER_IPV6", GW_SHAPE_OUTER_IPV6)                  \
    X("geneve.GENEVE_OK", GW_GENEVE_OK) X("geneve.GENEVE_TRUNCATED", GW_GENEVE_TRUNCATED)                        \
    X("geneve.GENEVE_BAD_VERSION", GW_GENEVE_BAD_VERSION)                                                        \
    X("geneve.GENEVE_OPTIONS_TRUNCATED", GW_GENEVE_OPTIONS_TRUNCATED)                                            \
    X("geneve.GENEVE_BAD_OPTIONS", GW_GENEVE_BAD_OPTIONS)                                                        \
    X("digest.PRIME1", GW_PRIME1) X("digest.PRIME2", GW_PRIME2) X("digest.PRIME3", GW_PRIME3)                    \
    X("digest.ROTATE", GW_DIGEST_ROTATE) X("digest.WORD_BYTES", GW_DIGEST_WORD_BYTES)                            \
    X("digest.STRIPE_BYTES", GW_DIGEST_STRIPE_BYTES) X("digest.IPV6_WORD0_MASK", GW_IPV6_WORD0_MASK)             \
    X("digest.IPV4_WORD1_MASK", GW_IPV4_WORD1_MASK) X("digest.FULL_MASK", GW_FULL_MASK)                          \
    X("digest.NO_DIGEST", GW_NO_DIGEST)

static int add_constant(PyObject *dict, const char *name, unsigned long long value) {
    PyObject *number = PyLong_FromUnsignedLongLong(value);
    if (number == NULL) return -1;
    int status = PyDict_SetItemString(dict, name, number);
    Py_DECREF(number);
    return status;
}

static int exec_module(PyObject *module) {
    PyObject *rows = PyDict_New(), *statuses = PyDict_New(), *kinds = PyDict_New(), *constants = PyDict_New();
    int status = -1;
    if (rows == NULL || statuses == NULL || kinds == NULL || constants == NULL) goto done;
#define GW_ADD_U8(row, name) if (add_row(rows, name, "u8", U8_##row) != 0) goto done;
#define GW_ADD_U16(row, name) if (add_row(rows, name, "u16", U16_##row) != 0) goto done;
#define GW_ADD_U32(row, name) if (add_row(rows, name, "u32", U32_##row) != 0) goto done;
#define GW_ADD_U64(row, name) if (add_row(rows, name, "u64", U64_##row) != 0) goto done;
#define GW_ADD_STATUS(name, value) if (add_int(statuses, #name, value) != 0) goto done;
#define GW_ADD_KIND(name, value) if (add_int(kinds, #name, value) != 0) goto done;
#define GW_ADD_CONSTANT(name, value) if (add_constant(constants, name, (unsigned long long)(value)) != 0) goto done;
    GW_ROWS_U8(GW_ADD_U8)
    GW_ROWS_U16(GW_ADD_U16)
    GW_ROWS_U32(GW_ADD_U32)
    GW_ROWS_U64(GW_ADD_U64)
    GW_STATUSES(GW_ADD_STATUS)
    GW_KINDS(GW_ADD_KIND)
    GW_CONSTANTS(GW_ADD_CONSTANT)
    if (PyModule_AddObjectRef(module, "ROWS", rows) != 0 || PyModule_AddObjectRef(module, "STATUS", statuses) != 0 ||
        PyModule_AddObjectRef(module, "KIND", kinds) != 0 || PyModule_AddObjectRef(module, "CONSTANTS", constants) != 0)
        goto done;
    status = 0;
done:
    Py_XDECREF(rows);
    Py_XDECREF(statuses);
    Py_XDECREF(kinds);
    Py_XDECREF(constants);
    return status;
}

static PyModuleDef_Slot slots[] = {{Py_mod_exec, exec_module}, {0, NULL}};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_decode", "The columnar packet decoder (see decode/__init__.py): decode_records, walk_options, inner_digest.",
    0, methods, slots, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__decode(void) { return PyModuleDef_Init(&module_def); }
