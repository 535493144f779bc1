/* Link layers: tcpdump.org link-layer header types (LINKTYPE_*), Ethernet with IEEE 802.1Q/802.1ad tags, Linux cooked v1 and v2, raw IP, BSD loopback.
 *
 * The C half of link.py, which keeps the same constants for Python code.  Every reader checks the bytes it
 * reads against ``end`` first.
 */
#ifndef GWCHECK_DECODE_LINK_H
#define GWCHECK_DECODE_LINK_H

#include "native.h"

#define GW_LINKTYPE_NULL 0 /* BSD loopback, address family in the capturing host's byte order */
#define GW_LINKTYPE_ETHERNET 1
#define GW_LINKTYPE_RAW_OPENBSD 12
#define GW_LINKTYPE_RAW_OLD 14
#define GW_LINKTYPE_RAW 101
#define GW_LINKTYPE_LOOP 108 /* OpenBSD loopback, address family in network byte order */
#define GW_LINKTYPE_LINUX_SLL 113
#define GW_LINKTYPE_IPV4 228
#define GW_LINKTYPE_IPV6 229
#define GW_LINKTYPE_LINUX_SLL2 276

#define GW_ETHERTYPE_IPV4 0x0800
#define GW_ETHERTYPE_IPV6 0x86DD
#define GW_ETHERTYPE_VLAN 0x8100      /* IEEE 802.1Q */
#define GW_ETHERTYPE_QINQ 0x88A8      /* IEEE 802.1ad */
#define GW_ETHERTYPE_QINQ_OLD 0x9100  /* pre-standard Q-in-Q */
#define GW_ETHERNET_HEADER_BYTES 14
#define GW_VLAN_TAG_BYTES 4
#define GW_VLAN_ID_MASK 0x0FFF
#define GW_SLL_HEADER_BYTES 16
#define GW_SLL_PROTOCOL_OFFSET 14
#define GW_SLL2_HEADER_BYTES 20
#define GW_SLL2_PROTOCOL_OFFSET 0
#define GW_NULL_HEADER_BYTES 4
#define GW_AF_INET 2

/* Outcomes of gw_parse_link (link.LINK_*), mapped to DecodeStatus by the kernel. */
enum { GW_LINK_OK = 0, GW_LINK_TRUNCATED = 1, GW_LINK_UNSUPPORTED = 2 };

typedef struct {
    int outcome;
    int64_t payload;    /* network-layer offset */
    uint32_t ethertype; /* 0 when unknown */
    uint32_t vlan_id;   /* outermost tag's VLAN ID */
    int64_t vlan_count;
} gw_link;

static inline gw_link gw_link_result(int outcome, int64_t payload, uint32_t ethertype, uint32_t vlan_id, int64_t vlan_count) {
    gw_link r = {outcome, payload, ethertype, vlan_id, vlan_count};
    return r;
}

/* Step over 802.1Q/802.1ad tags from ``p``, the frame captured up to ``end``. */
static inline gw_link gw_skip_vlan_tags(const uint8_t *buf, int64_t p, int64_t end, uint32_t ethertype) {
    uint32_t vlan_id = 0;
    int64_t vlan_count = 0;
    while (ethertype == GW_ETHERTYPE_VLAN || ethertype == GW_ETHERTYPE_QINQ || ethertype == GW_ETHERTYPE_QINQ_OLD) {
        if (end - p < GW_VLAN_TAG_BYTES) return gw_link_result(GW_LINK_TRUNCATED, p, 0, vlan_id, vlan_count);
        if (vlan_count == 0) vlan_id = (uint32_t)gw_u16be(buf + p) & GW_VLAN_ID_MASK;
        vlan_count++;
        ethertype = (uint32_t)gw_u16be(buf + p + 2);
        p += GW_VLAN_TAG_BYTES;
    }
    return gw_link_result(GW_LINK_OK, p, ethertype, vlan_id, vlan_count);
}

static inline gw_link gw_parse_ethernet(const uint8_t *buf, int64_t p, int64_t end) {
    if (end - p < GW_ETHERNET_HEADER_BYTES) return gw_link_result(GW_LINK_TRUNCATED, p, 0, 0, 0);
    return gw_skip_vlan_tags(buf, p + GW_ETHERNET_HEADER_BYTES, end, (uint32_t)gw_u16be(buf + p + 12));
}

static inline uint32_t gw_ethertype_of_family(uint64_t family) {
    if (family == GW_AF_INET) return GW_ETHERTYPE_IPV4;
    /* AF_INET6: Linux, NetBSD/OpenBSD, FreeBSD/DragonFly, macOS (link.AF_INET6_VALUES) */
    if (family == 10 || family == 24 || family == 28 || family == 30) return GW_ETHERTYPE_IPV6;
    return 0;
}

/* The link header of one frame at ``p``, captured up to ``end``. */
static inline gw_link gw_parse_link(const uint8_t *buf, int64_t p, int64_t end, uint32_t link_type) {
    switch (link_type) {
    case GW_LINKTYPE_ETHERNET:
        return gw_parse_ethernet(buf, p, end);
    case GW_LINKTYPE_LINUX_SLL2:
        if (end - p < GW_SLL2_HEADER_BYTES) return gw_link_result(GW_LINK_TRUNCATED, p, 0, 0, 0);
        return gw_skip_vlan_tags(buf, p + GW_SLL2_HEADER_BYTES, end, (uint32_t)gw_u16be(buf + p + GW_SLL2_PROTOCOL_OFFSET));
    case GW_LINKTYPE_LINUX_SLL:
        if (end - p < GW_SLL_HEADER_BYTES) return gw_link_result(GW_LINK_TRUNCATED, p, 0, 0, 0);
        return gw_skip_vlan_tags(buf, p + GW_SLL_HEADER_BYTES, end, (uint32_t)gw_u16be(buf + p + GW_SLL_PROTOCOL_OFFSET));
    case GW_LINKTYPE_RAW:
    case GW_LINKTYPE_RAW_OPENBSD:
    case GW_LINKTYPE_RAW_OLD: {
        if (end - p < 1) return gw_link_result(GW_LINK_TRUNCATED, p, 0, 0, 0);
        unsigned version = buf[p] >> 4;
        uint32_t ethertype = version == 4 ? GW_ETHERTYPE_IPV4 : version == 6 ? GW_ETHERTYPE_IPV6 : 0;
        return gw_link_result(GW_LINK_OK, p, ethertype, 0, 0);
    }
    case GW_LINKTYPE_IPV4:
        return gw_link_result(GW_LINK_OK, p, GW_ETHERTYPE_IPV4, 0, 0);
    case GW_LINKTYPE_IPV6:
        return gw_link_result(GW_LINK_OK, p, GW_ETHERTYPE_IPV6, 0, 0);
    case GW_LINKTYPE_NULL:
    case GW_LINKTYPE_LOOP: {
        if (end - p < GW_NULL_HEADER_BYTES) return gw_link_result(GW_LINK_TRUNCATED, p, 0, 0, 0);
        uint64_t family;
        if (link_type == GW_LINKTYPE_LOOP) {
            family = gw_u32be(buf + p);
        } else {
            family = gw_u32le(buf + p);
            if (family > 0xFFFF) family = gw_u32be(buf + p); /* written by a big-endian host */
        }
        return gw_link_result(GW_LINK_OK, p + GW_NULL_HEADER_BYTES, gw_ethertype_of_family(family), 0, 0);
    }
    default:
        return gw_link_result(GW_LINK_UNSUPPORTED, p, 0, 0, 0);
    }
}

#endif
