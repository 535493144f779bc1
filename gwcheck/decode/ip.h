/* IPv4 (RFC 791) and IPv6 (RFC 8200) headers, outer or inner; addresses as IPv4-mapped 128-bit halves (RFC 4291 2.5.5.2).
 *
 * The C half of ip.py, which keeps the same constants for Python code.  Every reader checks the bytes it
 * reads against ``end`` (or the packet's captured end) first.
 */
#ifndef GWCHECK_DECODE_IP_H
#define GWCHECK_DECODE_IP_H

#include "native.h"

#define GW_IPV4_MIN_HEADER_BYTES 20
#define GW_IPV4_TOTAL_LENGTH 2
#define GW_IPV4_IDENTIFICATION 4
#define GW_IPV4_FLAGS_FRAGMENT 6
#define GW_IPV4_TTL 8
#define GW_IPV4_PROTOCOL 9
#define GW_IPV4_SOURCE 12
#define GW_IPV4_DESTINATION 16
#define GW_IPV4_FLAG_DF 0x4000
#define GW_IPV4_FLAG_MF 0x2000
#define GW_IPV4_OFFSET_MASK 0x1FFF
#define GW_IPV4_MAPPED_PREFIX UINT64_C(0xFFFF00000000) /* ::ffff:0:0/96, low half */

#define GW_IPV6_HEADER_BYTES 40
#define GW_IPV6_PAYLOAD_LENGTH 4
#define GW_IPV6_NEXT_HEADER 6
#define GW_IPV6_HOP_LIMIT 7
#define GW_IPV6_SOURCE 8
#define GW_IPV6_DESTINATION 24
#define GW_IPV6_HOP_BY_HOP 0
#define GW_IPV6_ROUTING 43
#define GW_IPV6_FRAGMENT 44
#define GW_IPV6_AUTH 51
#define GW_IPV6_DEST_OPTIONS 60
#define GW_IPV6_MOBILITY 135
#define GW_IPV6_HIP 139
#define GW_IPV6_SHIM6 140
#define GW_IPV6_FRAGMENT_HEADER_BYTES 8
#define GW_IPV6_FRAGMENT_OFFSET_MASK 0xFFF8
#define GW_IPV6_FRAGMENT_M 0x0001

#define GW_IPPROTO_ICMP 1
#define GW_IPPROTO_TCP 6
#define GW_IPPROTO_UDP 17
#define GW_IPPROTO_ICMPV6 58

/* schema.FragmentFlags */
#define GW_FRAG_DF 0x1
#define GW_FRAG_MF 0x2
#define GW_FRAG_OFFSET 0x4
#define GW_FRAG_IPV6_HEADER 0x8

/* Outcomes of gw_parse_ip (ip.IP_*), mapped to outer or inner DecodeStatus by the kernel. */
enum { GW_IP_OK = 0, GW_IP_TRUNCATED = 1, GW_IP_BAD_VERSION = 2, GW_IP_BAD_HEADER_LENGTH = 3, GW_IP_BAD_TOTAL_LENGTH = 4, GW_IP_BAD_EXTENSION = 5 };

typedef struct {
    int outcome;
    int64_t l4;         /* transport header offset */
    int64_t packet_end; /* captured end of the IP packet */
    int64_t total;      /* total length */
    uint32_t proto;
    uint64_t src_hi, src_lo, dst_hi, dst_lo;
    uint32_t ttl; /* or hop limit */
    uint32_t ident;
    uint32_t frag; /* FragmentFlags */
    uint32_t frag_offset; /* bytes */
} gw_ip;

static inline int gw_ipv6_is_extension(uint32_t next_header) {
    return next_header == GW_IPV6_HOP_BY_HOP || next_header == GW_IPV6_ROUTING || next_header == GW_IPV6_FRAGMENT ||
           next_header == GW_IPV6_AUTH || next_header == GW_IPV6_DEST_OPTIONS || next_header == GW_IPV6_MOBILITY ||
           next_header == GW_IPV6_HIP || next_header == GW_IPV6_SHIM6;
}

/* For the IP parser, called for the outer and the inner header: out of line, its results go through memory. */
#if defined(__GNUC__)
#define GW_ALWAYS_INLINE __attribute__((always_inline)) inline
#else
#define GW_ALWAYS_INLINE inline
#endif

static inline int64_t gw_min64(int64_t a, int64_t b) { return a < b ? a : b; }
static inline int64_t gw_max64(int64_t a, int64_t b) { return a > b ? a : b; }

/* Decode the IP header at ``p`` of a frame captured up to ``end`` into ``r`` (as ip.parse_ip).
 *
 * ``wire_extra`` is how many bytes of the frame were on the wire but not captured, so that a snapped packet
 * is told apart from one whose length field lies.  A total length of 0 (BIG TCP, GSO) is taken from the frame.
 */
static GW_ALWAYS_INLINE void gw_parse_ip(const uint8_t *buf, int64_t p, int64_t end, int64_t wire_extra, unsigned version, gw_ip *r) {
    /* field by field rather than memset: a memset of this size is a slow `rep stos` with GCC */
    r->outcome = GW_IP_OK;
    r->l4 = r->packet_end = p;
    r->total = 0;
    r->proto = r->ttl = r->ident = r->frag = r->frag_offset = 0;
    r->src_hi = r->src_lo = r->dst_hi = r->dst_lo = 0;
    int64_t available = end - p;
    int64_t on_wire = available + wire_extra;
    if (available < 1) {
        r->outcome = GW_IP_TRUNCATED;
        return;
    }
    if ((unsigned)(buf[p] >> 4) != version) {
        r->outcome = GW_IP_BAD_VERSION;
        return;
    }
    if (version == 4) {
        if (available < GW_IPV4_MIN_HEADER_BYTES) {
            r->outcome = GW_IP_TRUNCATED;
            return;
        }
        int64_t header = (int64_t)(buf[p] & 0x0F) * 4;
        r->src_lo = GW_IPV4_MAPPED_PREFIX | gw_u32be(buf + p + GW_IPV4_SOURCE);
        r->dst_lo = GW_IPV4_MAPPED_PREFIX | gw_u32be(buf + p + GW_IPV4_DESTINATION);
        r->ttl = buf[p + GW_IPV4_TTL];
        r->ident = (uint32_t)gw_u16be(buf + p + GW_IPV4_IDENTIFICATION);
        uint32_t flags_fragment = (uint32_t)gw_u16be(buf + p + GW_IPV4_FLAGS_FRAGMENT);
        uint32_t frag = 0;
        if (flags_fragment & GW_IPV4_FLAG_DF) frag |= GW_FRAG_DF;
        if (flags_fragment & GW_IPV4_FLAG_MF) frag |= GW_FRAG_MF;
        r->frag_offset = (flags_fragment & GW_IPV4_OFFSET_MASK) * 8;
        if (r->frag_offset) frag |= GW_FRAG_OFFSET;
        r->frag = frag;
        r->proto = buf[p + GW_IPV4_PROTOCOL];
        int64_t total = (int64_t)gw_u16be(buf + p + GW_IPV4_TOTAL_LENGTH);
        if (total == 0) total = on_wire;
        r->total = total;
        if (header < GW_IPV4_MIN_HEADER_BYTES) {
            r->outcome = GW_IP_BAD_HEADER_LENGTH;
            return;
        }
        if (total < header || total > on_wire) { /* checked first: a length that lies is malformed, snapped or not */
            r->outcome = GW_IP_BAD_TOTAL_LENGTH;
            r->l4 = p + header;
            r->packet_end = p + gw_min64(total, available);
            return;
        }
        if (available < header) {
            r->outcome = GW_IP_TRUNCATED;
            return;
        }
        r->outcome = GW_IP_OK;
        r->l4 = p + header;
        r->packet_end = p + gw_min64(total, available);
        return;
    }
    if (available < GW_IPV6_HEADER_BYTES) {
        r->outcome = GW_IP_TRUNCATED;
        return;
    }
    r->src_hi = gw_u64be(buf + p + GW_IPV6_SOURCE);
    r->src_lo = gw_u64be(buf + p + GW_IPV6_SOURCE + 8);
    r->dst_hi = gw_u64be(buf + p + GW_IPV6_DESTINATION);
    r->dst_lo = gw_u64be(buf + p + GW_IPV6_DESTINATION + 8);
    r->ttl = buf[p + GW_IPV6_HOP_LIMIT];
    int64_t payload = (int64_t)gw_u16be(buf + p + GW_IPV6_PAYLOAD_LENGTH);
    int64_t total = payload ? GW_IPV6_HEADER_BYTES + payload : on_wire; /* 0: jumbogram or BIG TCP */
    r->total = total;
    if (total > on_wire) {
        r->outcome = GW_IP_BAD_TOTAL_LENGTH;
        r->l4 = p + GW_IPV6_HEADER_BYTES;
        r->packet_end = p + gw_min64(total, available);
        r->proto = buf[p + GW_IPV6_NEXT_HEADER];
        return;
    }
    int64_t packet_end = p + gw_min64(total, available);
    uint32_t next_header = buf[p + GW_IPV6_NEXT_HEADER];
    int64_t q = p + GW_IPV6_HEADER_BYTES;
    uint32_t ident = 0, frag = 0, frag_offset = 0;
    int outcome = GW_IP_OK;
    while (gw_ipv6_is_extension(next_header)) {
        int64_t size;
        if (next_header == GW_IPV6_FRAGMENT) {
            size = GW_IPV6_FRAGMENT_HEADER_BYTES;
        } else if (packet_end - q < 2) {
            outcome = q + 2 <= p + total ? GW_IP_TRUNCATED : GW_IP_BAD_EXTENSION;
            break;
        } else if (next_header == GW_IPV6_AUTH) {
            size = ((int64_t)buf[q + 1] + 2) * 4;
        } else {
            size = ((int64_t)buf[q + 1] + 1) * 8;
        }
        if (q + size > packet_end) {
            outcome = q + size <= p + total ? GW_IP_TRUNCATED : GW_IP_BAD_EXTENSION;
            break;
        }
        if (next_header == GW_IPV6_FRAGMENT) {
            frag |= GW_FRAG_IPV6_HEADER;
            uint32_t offset_flags = (uint32_t)gw_u16be(buf + q + 2);
            frag_offset = offset_flags & GW_IPV6_FRAGMENT_OFFSET_MASK;
            if (offset_flags & GW_IPV6_FRAGMENT_M) frag |= GW_FRAG_MF;
            if (frag_offset) frag |= GW_FRAG_OFFSET;
            ident = (uint32_t)gw_u32be(buf + q + 4);
        }
        next_header = buf[q];
        q += size;
        if (frag_offset) break; /* a non-first fragment: what follows is payload, not a header */
    }
    r->outcome = outcome;
    r->l4 = q;
    r->packet_end = packet_end;
    r->proto = next_header;
    r->ident = ident;
    r->frag = frag;
    r->frag_offset = frag_offset;
}

#endif
