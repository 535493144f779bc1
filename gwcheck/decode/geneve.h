/* Geneve (RFC 8926) and the AWS Gateway Load Balancer options of class 0x0108 (AWS GWLB guide; shared/docs/gwlb.md).
 *
 * The C half of geneve.py, which keeps the same constants for Python code.  Every reader checks the bytes
 * it reads against the captured end of the UDP payload first.
 */
#ifndef GWCHECK_DECODE_GENEVE_H
#define GWCHECK_DECODE_GENEVE_H

#include "native.h"

#define GW_GENEVE_PORT 6081         /* IANA, RFC 8926 3.3 */
#define GW_GENEVE_HEADER_BYTES 8    /* RFC 8926 3.4, before the options */
#define GW_GENEVE_VERSION 0
#define GW_GENEVE_OPT_LEN_MASK 0x3F /* option length in 4-byte words, low 6 bits of byte 0 */
#define GW_GENEVE_FLAG_OAM 0x80     /* byte 1 */
#define GW_GENEVE_FLAG_CRITICAL 0x40
#define GW_GENEVE_PROTOCOL 2
#define GW_GENEVE_VNI 4
#define GW_OPTION_HEADER_BYTES 4 /* class (16), type (8), 3 reserved bits + length in words (5) */
#define GW_OPTION_TYPE_CRITICAL 0x80
#define GW_OPTION_LENGTH_MASK 0x1F

#define GW_PROTOCOL_IPV4 0x0800
#define GW_PROTOCOL_IPV6 0x86DD
#define GW_PROTOCOL_ETHERNET 0x6558 /* transparent Ethernet bridging: other clouds' Geneve */

#define GW_AWS_OPTION_CLASS 0x0108
#define GW_AWS_OPTION_ENDPOINT_ID 1   /* 8 bytes */
#define GW_AWS_OPTION_ATTACHMENT_ID 2 /* 8 bytes */
#define GW_AWS_OPTION_FLOW_COOKIE 3   /* 4 bytes */
#define GW_GWLB_VNI 0

/* schema.GwlbShape */
#define GW_SHAPE_MISSING_ENDPOINT 0x0001
#define GW_SHAPE_MISSING_ATTACHMENT 0x0002
#define GW_SHAPE_MISSING_COOKIE 0x0004
#define GW_SHAPE_DUPLICATE_OPTION 0x0008
#define GW_SHAPE_UNKNOWN_AWS_OPTION 0x0010
#define GW_SHAPE_OTHER_CLASS 0x0020
#define GW_SHAPE_OPTION_LENGTH 0x0040
#define GW_SHAPE_ORDER 0x0080
#define GW_SHAPE_CRITICAL_OPTION 0x0100
#define GW_SHAPE_HEADER 0x0200
#define GW_SHAPE_OUTER_IPV6 0x0400

/* Outcomes (geneve.GENEVE_*), mapped to DecodeStatus by the kernel. */
enum { GW_GENEVE_OK = 0, GW_GENEVE_TRUNCATED = 1, GW_GENEVE_BAD_VERSION = 2, GW_GENEVE_OPTIONS_TRUNCATED = 3, GW_GENEVE_BAD_OPTIONS = 4 };

/* AWS option data length by type (geneve.AWS_OPTION_BYTES) */
static const int64_t gw_aws_option_bytes[4] = {0, 8, 8, 4};

typedef struct {
    int outcome;
    uint32_t version, opt_len, oam, critical, protocol, vni, count;
    uint64_t endpoint, attachment;
    uint32_t cookie;
    uint32_t shape; /* GwlbShape */
    int64_t inner;  /* inner packet offset */
} gw_geneve;

/* The Geneve header and options at ``p``, the payload captured up to ``end`` (as geneve.parse_geneve).
 *
 * Options are walked generically (any order; unknown classes and types skipped, RFC 8926 3.5); the AWS ones
 * are read by type. */
static inline void gw_parse_geneve(const uint8_t *buf, int64_t p, int64_t end, gw_geneve *r) {
    /* field by field rather than memset: a memset of this size is a slow `rep stos` with GCC */
    r->outcome = GW_GENEVE_OK;
    r->version = r->opt_len = r->oam = r->critical = r->protocol = r->vni = r->count = r->cookie = r->shape = 0;
    r->endpoint = r->attachment = 0;
    r->inner = p;
    if (end - p < GW_GENEVE_HEADER_BYTES) {
        r->outcome = GW_GENEVE_TRUNCATED;
        return;
    }
    uint32_t version = buf[p] >> 6;
    uint32_t opt_len = (uint32_t)(buf[p] & GW_GENEVE_OPT_LEN_MASK) * 4;
    uint32_t oam = (buf[p + 1] & GW_GENEVE_FLAG_OAM) != 0;
    uint32_t critical = (buf[p + 1] & GW_GENEVE_FLAG_CRITICAL) != 0;
    uint32_t protocol = (uint32_t)gw_u16be(buf + p + GW_GENEVE_PROTOCOL);
    uint32_t vni = (uint32_t)(gw_u32be(buf + p + GW_GENEVE_VNI) >> 8);
    int64_t inner = p + GW_GENEVE_HEADER_BYTES + opt_len;
    uint32_t shape = 0;
    if (version != GW_GENEVE_VERSION || oam || critical || vni != GW_GWLB_VNI ||
        (protocol != GW_PROTOCOL_IPV4 && protocol != GW_PROTOCOL_IPV6))
        shape |= GW_SHAPE_HEADER;
    r->version = version;
    r->opt_len = opt_len;
    r->oam = oam;
    r->critical = critical;
    r->protocol = protocol;
    r->vni = vni;
    r->inner = inner;
    if (version != GW_GENEVE_VERSION) {
        r->outcome = GW_GENEVE_BAD_VERSION;
        r->shape = shape;
        return;
    }
    uint64_t endpoint = 0, attachment = 0;
    uint32_t cookie = 0, seen = 0 /* bit t set when AWS type t was seen */, last_type = 0, count = 0;
    int outcome = GW_GENEVE_OK;
    int64_t q = p + GW_GENEVE_HEADER_BYTES;
    int64_t options_end = inner < end ? inner : end;
    while (q < inner) {
        if (options_end - q < GW_OPTION_HEADER_BYTES) {
            outcome = inner > end ? GW_GENEVE_OPTIONS_TRUNCATED : GW_GENEVE_BAD_OPTIONS;
            break;
        }
        uint32_t option_class = (uint32_t)gw_u16be(buf + q);
        uint32_t option_type = buf[q + 2];
        int64_t length = (int64_t)(buf[q + 3] & GW_OPTION_LENGTH_MASK) * 4;
        if (q + GW_OPTION_HEADER_BYTES + length > inner) {
            outcome = GW_GENEVE_BAD_OPTIONS;
            break;
        }
        if (q + GW_OPTION_HEADER_BYTES + length > end) {
            outcome = GW_GENEVE_OPTIONS_TRUNCATED;
            break;
        }
        count++;
        if (option_type & GW_OPTION_TYPE_CRITICAL) shape |= GW_SHAPE_CRITICAL_OPTION;
        int64_t data = q + GW_OPTION_HEADER_BYTES;
        if (option_class != GW_AWS_OPTION_CLASS) {
            shape |= GW_SHAPE_OTHER_CLASS;
        } else {
            uint32_t aws_type = option_type & ~(uint32_t)GW_OPTION_TYPE_CRITICAL;
            if (aws_type < GW_AWS_OPTION_ENDPOINT_ID || aws_type > GW_AWS_OPTION_FLOW_COOKIE) {
                shape |= GW_SHAPE_UNKNOWN_AWS_OPTION;
            } else {
                if (seen & (1u << aws_type))
                    shape |= GW_SHAPE_DUPLICATE_OPTION;
                else if (aws_type < last_type)
                    shape |= GW_SHAPE_ORDER;
                seen |= 1u << aws_type;
                if (aws_type > last_type) last_type = aws_type;
                if (length != gw_aws_option_bytes[aws_type])
                    shape |= GW_SHAPE_OPTION_LENGTH;
                else if (aws_type == GW_AWS_OPTION_ENDPOINT_ID)
                    endpoint = gw_u64be(buf + data);
                else if (aws_type == GW_AWS_OPTION_ATTACHMENT_ID)
                    attachment = gw_u64be(buf + data);
                else
                    cookie = (uint32_t)gw_u32be(buf + data);
            }
        }
        q = data + length;
    }
    if (!(seen & (1u << GW_AWS_OPTION_ENDPOINT_ID))) shape |= GW_SHAPE_MISSING_ENDPOINT;
    if (!(seen & (1u << GW_AWS_OPTION_ATTACHMENT_ID))) shape |= GW_SHAPE_MISSING_ATTACHMENT;
    if (!(seen & (1u << GW_AWS_OPTION_FLOW_COOKIE))) shape |= GW_SHAPE_MISSING_COOKIE;
    r->outcome = outcome;
    r->count = count;
    r->endpoint = endpoint;
    r->attachment = attachment;
    r->cookie = cookie;
    r->shape = shape;
}

#endif
