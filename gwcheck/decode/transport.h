/* UDP (RFC 768), TCP (RFC 9293) and ICMP/ICMPv6 (RFC 792, RFC 4443) headers, and the status line of an HTTP response (RFC 9112 4).
 *
 * The C half of transport.py, which keeps the same constants for Python code.  Every reader checks the
 * bytes it reads against the packet's captured end first.
 */
#ifndef GWCHECK_DECODE_TRANSPORT_H
#define GWCHECK_DECODE_TRANSPORT_H

#include "ip.h"

#define GW_UDP_HEADER_BYTES 8
#define GW_TCP_MIN_HEADER_BYTES 20
#define GW_TCP_SEQUENCE 4
#define GW_TCP_ACKNOWLEDGEMENT 8
#define GW_TCP_DATA_OFFSET 12
#define GW_TCP_FLAGS 13
#define GW_TCP_OPTION_END 0
#define GW_TCP_OPTION_NOP 1
#define GW_TCP_OPTION_MSS 2
#define GW_TCP_OPTION_MSS_BYTES 4
#define GW_ICMP_MIN_HEADER_BYTES 4
#define GW_ICMP_ECHO_HEADER_BYTES 8
#define GW_ICMP_ECHO_REPLY 0
#define GW_ICMP_ECHO_REQUEST 8
#define GW_ICMP_TIMESTAMP 13
#define GW_ICMP_TIMESTAMP_REPLY 14
#define GW_ICMPV6_ECHO_REQUEST 128
#define GW_ICMPV6_ECHO_REPLY 129
#define GW_HTTP_STATUS_LINE_BYTES 12 /* "HTTP/1.1 200" */

/* Outcomes (transport.L4_*), mapped to DecodeStatus by the kernel. */
enum { GW_L4_OK = 0, GW_L4_TRUNCATED = 1, GW_L4_BAD_LENGTH = 2 };

typedef struct {
    int outcome;
    uint32_t sport, dport, checksum;
    int64_t length;      /* UDP length; the IP-implied one when the field is 0 */
    int64_t payload;     /* payload offset */
    int64_t payload_end; /* captured payload end */
} gw_udp;

/* The UDP header at ``p`` (as transport.parse_udp).  ``on_wire`` is the UDP length the IP header implies; a
 * UDP length of 0 (BIG TCP, GSO) takes it.  In a first fragment (``more_fragments``) the datagram goes on
 * in later fragments, past ``on_wire``. */
static inline gw_udp gw_parse_udp(const uint8_t *buf, int64_t p, int64_t packet_end, int64_t on_wire, int more_fragments) {
    gw_udp r = {GW_L4_TRUNCATED, 0, 0, 0, 0, p, p};
    if (packet_end - p < GW_UDP_HEADER_BYTES) return r;
    r.sport = (uint32_t)gw_u16be(buf + p);
    r.dport = (uint32_t)gw_u16be(buf + p + 2);
    int64_t length = (int64_t)gw_u16be(buf + p + 4);
    r.checksum = (uint32_t)gw_u16be(buf + p + 6);
    if (length == 0) length = on_wire;
    r.length = length;
    int64_t payload_end = gw_min64(p + length, packet_end);
    r.payload = p + GW_UDP_HEADER_BYTES;
    if (length < GW_UDP_HEADER_BYTES || (length > on_wire && !more_fragments)) {
        r.outcome = GW_L4_BAD_LENGTH;
        r.payload_end = gw_max64(payload_end, p + GW_UDP_HEADER_BYTES);
        return r;
    }
    r.outcome = GW_L4_OK;
    r.payload_end = payload_end;
    return r;
}

/* The MSS option among the TCP options in [p, end), else 0. */
static inline uint32_t gw_tcp_mss(const uint8_t *buf, int64_t p, int64_t end) {
    while (p < end) {
        unsigned kind = buf[p];
        if (kind == GW_TCP_OPTION_END) return 0;
        if (kind == GW_TCP_OPTION_NOP) {
            p += 1;
            continue;
        }
        if (end - p < 2) return 0;
        int64_t size = buf[p + 1];
        if (size < 2 || p + size > end) return 0;
        if (kind == GW_TCP_OPTION_MSS && size == GW_TCP_OPTION_MSS_BYTES) return (uint32_t)gw_u16be(buf + p + 2);
        p += size;
    }
    return 0;
}

typedef struct {
    int outcome;
    uint32_t sport, dport, seq, ack, flags, mss;
    int64_t header;  /* header length in bytes */
    int64_t payload; /* payload bytes on the wire */
} gw_tcp;

/* The TCP header at ``p`` (as transport.parse_tcp).  A data offset below 5 words or past the ``on_wire``
 * bytes of the segment is malformed. */
static inline gw_tcp gw_parse_tcp(const uint8_t *buf, int64_t p, int64_t packet_end, int64_t on_wire) {
    gw_tcp r = {GW_L4_TRUNCATED, 0, 0, 0, 0, 0, 0, 0, 0};
    if (packet_end - p < GW_TCP_MIN_HEADER_BYTES) return r;
    r.sport = (uint32_t)gw_u16be(buf + p);
    r.dport = (uint32_t)gw_u16be(buf + p + 2);
    r.seq = (uint32_t)gw_u32be(buf + p + GW_TCP_SEQUENCE);
    r.ack = (uint32_t)gw_u32be(buf + p + GW_TCP_ACKNOWLEDGEMENT);
    r.header = (int64_t)(buf[p + GW_TCP_DATA_OFFSET] >> 4) * 4;
    r.flags = ((uint32_t)(buf[p + GW_TCP_DATA_OFFSET] & 0x01) << 8) | buf[p + GW_TCP_FLAGS];
    r.payload = gw_max64(on_wire - r.header, 0);
    if (r.header < GW_TCP_MIN_HEADER_BYTES || r.header > on_wire) {
        r.outcome = GW_L4_BAD_LENGTH;
        return r;
    }
    if (packet_end - p < r.header) return r; /* truncated */
    r.outcome = GW_L4_OK;
    r.mss = gw_tcp_mss(buf, p + GW_TCP_MIN_HEADER_BYTES, p + r.header);
    return r;
}

typedef struct {
    int outcome;
    uint32_t type, code, ident, seq; /* identifier and sequence only for echo and timestamp */
} gw_icmp;

static inline int gw_icmp_has_identifier(uint32_t type, int v6) {
    if (v6) return type == GW_ICMPV6_ECHO_REQUEST || type == GW_ICMPV6_ECHO_REPLY;
    return type == GW_ICMP_ECHO_REQUEST || type == GW_ICMP_ECHO_REPLY || type == GW_ICMP_TIMESTAMP || type == GW_ICMP_TIMESTAMP_REPLY;
}

static inline gw_icmp gw_parse_icmp(const uint8_t *buf, int64_t p, int64_t packet_end, int v6) {
    gw_icmp r = {GW_L4_TRUNCATED, 0, 0, 0, 0};
    if (packet_end - p < GW_ICMP_MIN_HEADER_BYTES) return r;
    r.type = buf[p];
    r.code = buf[p + 1];
    if (!gw_icmp_has_identifier(r.type, v6)) {
        r.outcome = GW_L4_OK;
        return r;
    }
    if (packet_end - p < GW_ICMP_ECHO_HEADER_BYTES) return r; /* truncated, type and code kept */
    r.outcome = GW_L4_OK;
    r.ident = (uint32_t)gw_u16be(buf + p + 4);
    r.seq = (uint32_t)gw_u16be(buf + p + 6);
    return r;
}

/* The status code of an HTTP/1.x status line starting at ``p`` ("HTTP/1.1 200 OK"), else 0. */
static inline uint32_t gw_http_status(const uint8_t *buf, int64_t p, int64_t end) {
    if (end - p < GW_HTTP_STATUS_LINE_BYTES) return 0;
    const uint8_t *s = buf + p;
    /* "HTTP/1." DIGIT SP (RFC 9112 2.3, 4) */
    if (!(s[0] == 'H' && s[1] == 'T' && s[2] == 'T' && s[3] == 'P' && s[4] == '/' && s[5] == '1' && s[6] == '.' &&
          s[7] >= '0' && s[7] <= '9' && s[8] == ' '))
        return 0;
    uint32_t status = 0;
    for (int k = 9; k < 12; k++) {
        if (s[k] < '0' || s[k] > '9') return 0;
        status = status * 10 + (uint32_t)(s[k] - '0');
    }
    return status;
}

#endif
