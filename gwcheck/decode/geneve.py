"""Geneve (RFC 8926) and the AWS Gateway Load Balancer options of class 0x0108 (AWS GWLB guide; shared/docs/gwlb.md)."""

from __future__ import annotations

import numpy as np

from .._jit import jit, u16be, u32be, u64be

GENEVE_PORT = 6081  # IANA, RFC 8926 3.3
GENEVE_HEADER_BYTES = 8  # RFC 8926 3.4, before the options
GENEVE_VERSION = 0
GENEVE_OPT_LEN_MASK = 0x3F  # option length in 4-byte words, low 6 bits of byte 0
GENEVE_FLAG_OAM = 0x80  # byte 1
GENEVE_FLAG_CRITICAL = 0x40  # byte 1
GENEVE_PROTOCOL = 2
GENEVE_VNI = 4
OPTION_HEADER_BYTES = 4  # class (16), type (8), 3 reserved bits + length in words (5)
OPTION_TYPE_CRITICAL = 0x80
OPTION_LENGTH_MASK = 0x1F

PROTOCOL_IPV4 = 0x0800
PROTOCOL_IPV6 = 0x86DD
PROTOCOL_ETHERNET = 0x6558  # transparent Ethernet bridging: other clouds' Geneve

AWS_OPTION_CLASS = 0x0108  # GWLB metadata (AWS ELB guide, "Gateway Load Balancers")
AWS_OPTION_ENDPOINT_ID = 1  # 8 bytes: the VPC endpoint the flow entered by
AWS_OPTION_ATTACHMENT_ID = 2  # 8 bytes
AWS_OPTION_FLOW_COOKIE = 3  # 4 bytes: GWLB's identifier of the flow
AWS_OPTION_BYTES = (0, 8, 8, 4)  # data length by type
GWLB_OPTION_LENGTH_BYTES = 32  # the three options with their headers
GWLB_VNI = 0

# schema.GwlbShape, as plain ints for the compiled code.
SHAPE_MISSING_ENDPOINT = 0x0001
SHAPE_MISSING_ATTACHMENT = 0x0002
SHAPE_MISSING_COOKIE = 0x0004
SHAPE_DUPLICATE_OPTION = 0x0008
SHAPE_UNKNOWN_AWS_OPTION = 0x0010
SHAPE_OTHER_CLASS = 0x0020
SHAPE_OPTION_LENGTH = 0x0040
SHAPE_ORDER = 0x0080
SHAPE_CRITICAL_OPTION = 0x0100
SHAPE_HEADER = 0x0200
SHAPE_OUTER_IPV6 = 0x0400

# Outcomes, mapped to DecodeStatus by the kernel.
GENEVE_OK = 0
GENEVE_TRUNCATED = 1
GENEVE_BAD_VERSION = 2
GENEVE_OPTIONS_TRUNCATED = 3
GENEVE_BAD_OPTIONS = 4


@jit
def parse_geneve(buf, p, end):
    """Decode the Geneve header and options at ``p``, the payload captured up to ``end``.

    Options are walked generically (any order; unknown classes and types skipped, RFC 8926 3.5); the AWS
    ones are read by type.  Returns (outcome, version, option bytes, O flag, C flag, protocol type, VNI,
    option count, endpoint ID, attachment ID, flow cookie, GwlbShape flags, inner packet offset).
    """
    zero = np.uint64(0)
    if end - p < GENEVE_HEADER_BYTES:
        return GENEVE_TRUNCATED, 0, 0, False, False, 0, 0, 0, zero, zero, 0, 0, p
    version = buf[p] >> 6
    opt_len = (buf[p] & GENEVE_OPT_LEN_MASK) * 4
    oam = (buf[p + 1] & GENEVE_FLAG_OAM) != 0
    critical = (buf[p + 1] & GENEVE_FLAG_CRITICAL) != 0
    protocol = u16be(buf, p + GENEVE_PROTOCOL)
    vni = u32be(buf, p + GENEVE_VNI) >> 8
    inner = p + GENEVE_HEADER_BYTES + opt_len
    shape = 0
    if version != GENEVE_VERSION or oam or critical or vni != GWLB_VNI or (
        protocol != PROTOCOL_IPV4 and protocol != PROTOCOL_IPV6
    ):
        shape |= SHAPE_HEADER
    if version != GENEVE_VERSION:
        return GENEVE_BAD_VERSION, version, opt_len, oam, critical, protocol, vni, 0, zero, zero, 0, shape, inner
    endpoint = zero
    attachment = zero
    cookie = 0
    seen = 0  # bit t set when AWS type t was seen
    last_type = 0
    count = 0
    outcome = GENEVE_OK
    q = p + GENEVE_HEADER_BYTES
    options_end = min(inner, end)
    while q < inner:
        if options_end - q < OPTION_HEADER_BYTES:
            outcome = GENEVE_OPTIONS_TRUNCATED if inner > end else GENEVE_BAD_OPTIONS
            break
        option_class = u16be(buf, q)
        option_type = buf[q + 2]
        length = (buf[q + 3] & OPTION_LENGTH_MASK) * 4
        if q + OPTION_HEADER_BYTES + length > inner:
            outcome = GENEVE_BAD_OPTIONS
            break
        if q + OPTION_HEADER_BYTES + length > end:
            outcome = GENEVE_OPTIONS_TRUNCATED
            break
        count += 1
        if option_type & OPTION_TYPE_CRITICAL:
            shape |= SHAPE_CRITICAL_OPTION
        data = q + OPTION_HEADER_BYTES
        if option_class != AWS_OPTION_CLASS:
            shape |= SHAPE_OTHER_CLASS
        else:
            aws_type = option_type & ~OPTION_TYPE_CRITICAL
            if aws_type < AWS_OPTION_ENDPOINT_ID or aws_type > AWS_OPTION_FLOW_COOKIE:
                shape |= SHAPE_UNKNOWN_AWS_OPTION
            else:
                if seen & (1 << aws_type):
                    shape |= SHAPE_DUPLICATE_OPTION
                elif aws_type < last_type:
                    shape |= SHAPE_ORDER
                seen |= 1 << aws_type
                last_type = max(last_type, aws_type)
                if length != AWS_OPTION_BYTES[aws_type]:
                    shape |= SHAPE_OPTION_LENGTH
                elif aws_type == AWS_OPTION_ENDPOINT_ID:
                    endpoint = u64be(buf, data)
                elif aws_type == AWS_OPTION_ATTACHMENT_ID:
                    attachment = u64be(buf, data)
                else:
                    cookie = u32be(buf, data)
        q = data + length
    if not seen & (1 << AWS_OPTION_ENDPOINT_ID):
        shape |= SHAPE_MISSING_ENDPOINT
    if not seen & (1 << AWS_OPTION_ATTACHMENT_ID):
        shape |= SHAPE_MISSING_ATTACHMENT
    if not seen & (1 << AWS_OPTION_FLOW_COOKIE):
        shape |= SHAPE_MISSING_COOKIE
    return outcome, version, opt_len, oam, critical, protocol, vni, count, endpoint, attachment, cookie, shape, inner


def vpce_id(endpoint_id: int) -> str:
    """Render an endpoint ID the way AWS names the endpoint: ``vpce-`` and 17 lowercase hex digits."""
    return f"vpce-{int(endpoint_id):017x}"


@jit
def walk_options(buf, option_starts, counts, option_class, option_type, length, data_start):
    """Fill one row per option of each packet: ``counts[i]`` options from ``option_starts[i]`` (RFC 8926 3.5).

    The counts come from the decoder, which has already checked that these options lie inside the packet.
    """
    k = 0
    for i in range(option_starts.shape[0]):
        q = option_starts[i]
        for _ in range(counts[i]):
            option_class[k] = u16be(buf, q)
            option_type[k] = buf[q + 2]
            size = (buf[q + 3] & OPTION_LENGTH_MASK) * 4
            length[k] = size
            data_start[k] = q + OPTION_HEADER_BYTES
            q += OPTION_HEADER_BYTES + size
            k += 1
