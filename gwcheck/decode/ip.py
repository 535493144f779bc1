"""IPv4 (RFC 791) and IPv6 (RFC 8200) headers, outer or inner; addresses as IPv4-mapped 128-bit halves (RFC 4291 2.5.5.2)."""

from __future__ import annotations

import numpy as np

from .._jit import jit, u16be, u32be, u64be

IPV4_MIN_HEADER_BYTES = 20
IPV4_TOTAL_LENGTH = 2
IPV4_IDENTIFICATION = 4
IPV4_FLAGS_FRAGMENT = 6
IPV4_TTL = 8
IPV4_PROTOCOL = 9
IPV4_CHECKSUM = 10
IPV4_SOURCE = 12
IPV4_DESTINATION = 16
IPV4_FLAG_DF = 0x4000
IPV4_FLAG_MF = 0x2000
IPV4_OFFSET_MASK = 0x1FFF
IPV4_MAPPED_PREFIX = np.uint64(0xFFFF_0000_0000)  # ::ffff:0:0/96, low half

IPV6_HEADER_BYTES = 40
IPV6_PAYLOAD_LENGTH = 4
IPV6_NEXT_HEADER = 6
IPV6_HOP_LIMIT = 7
IPV6_SOURCE = 8
IPV6_DESTINATION = 24
IPV6_HOP_BY_HOP = 0
IPV6_ROUTING = 43
IPV6_FRAGMENT = 44
IPV6_AUTH = 51
IPV6_DEST_OPTIONS = 60
IPV6_MOBILITY = 135
IPV6_HIP = 139
IPV6_SHIM6 = 140
IPV6_FRAGMENT_HEADER_BYTES = 8
IPV6_FRAGMENT_OFFSET_MASK = 0xFFF8
IPV6_FRAGMENT_M = 0x0001

IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17
IPPROTO_ICMPV6 = 58

# FragmentFlags (schema.FragmentFlags), repeated as plain ints for the compiled code.
FRAG_DF = 0x1
FRAG_MF = 0x2
FRAG_OFFSET = 0x4
FRAG_IPV6_HEADER = 0x8

# Outcomes of parse_ip, mapped to outer or inner DecodeStatus by the kernel.
IP_OK = 0
IP_TRUNCATED = 1
IP_BAD_VERSION = 2
IP_BAD_HEADER_LENGTH = 3
IP_BAD_TOTAL_LENGTH = 4
IP_BAD_EXTENSION = 5


@jit
def _is_extension(next_header):
    return (
        next_header == IPV6_HOP_BY_HOP
        or next_header == IPV6_ROUTING
        or next_header == IPV6_FRAGMENT
        or next_header == IPV6_AUTH
        or next_header == IPV6_DEST_OPTIONS
        or next_header == IPV6_MOBILITY
        or next_header == IPV6_HIP
        or next_header == IPV6_SHIM6
    )


@jit
def parse_ip(buf, p, end, wire_extra, version):
    """Decode the IP header at ``p`` of a frame captured up to ``end``.

    ``wire_extra`` is how many bytes of the frame were on the wire but not captured, so that a snapped
    packet is told apart from one whose length field lies.  A total length of 0 (BIG TCP, GSO) is taken
    from the frame.  Returns (outcome, L4 offset, captured end of the IP packet, total length, protocol,
    src hi, src lo, dst hi, dst lo, TTL or hop limit, ID, fragment flags, fragment offset in bytes).
    """
    zero = np.uint64(0)
    available = end - p
    on_wire = available + wire_extra
    if available < 1:
        return IP_TRUNCATED, p, p, 0, 0, zero, zero, zero, zero, 0, 0, 0, 0
    if buf[p] >> 4 != version:
        return IP_BAD_VERSION, p, p, 0, 0, zero, zero, zero, zero, 0, 0, 0, 0
    if version == 4:
        if available < IPV4_MIN_HEADER_BYTES:
            return IP_TRUNCATED, p, p, 0, 0, zero, zero, zero, zero, 0, 0, 0, 0
        header = (buf[p] & 0x0F) * 4
        src = IPV4_MAPPED_PREFIX | np.uint64(u32be(buf, p + IPV4_SOURCE))
        dst = IPV4_MAPPED_PREFIX | np.uint64(u32be(buf, p + IPV4_DESTINATION))
        ttl = buf[p + IPV4_TTL]
        ident = u16be(buf, p + IPV4_IDENTIFICATION)
        flags_fragment = u16be(buf, p + IPV4_FLAGS_FRAGMENT)
        frag = 0
        if flags_fragment & IPV4_FLAG_DF:
            frag |= FRAG_DF
        if flags_fragment & IPV4_FLAG_MF:
            frag |= FRAG_MF
        frag_offset = (flags_fragment & IPV4_OFFSET_MASK) * 8
        if frag_offset:
            frag |= FRAG_OFFSET
        proto = buf[p + IPV4_PROTOCOL]
        total = u16be(buf, p + IPV4_TOTAL_LENGTH)
        if total == 0:
            total = on_wire
        if header < IPV4_MIN_HEADER_BYTES:
            return IP_BAD_HEADER_LENGTH, p, p, total, proto, zero, src, zero, dst, ttl, ident, frag, frag_offset
        if total < header or total > on_wire:  # checked first: a length that lies is malformed, snapped or not
            return IP_BAD_TOTAL_LENGTH, p + header, p + min(total, available), total, proto, zero, src, zero, dst, ttl, ident, frag, frag_offset
        if available < header:
            return IP_TRUNCATED, p, p, total, proto, zero, src, zero, dst, ttl, ident, frag, frag_offset
        return IP_OK, p + header, p + min(total, available), total, proto, zero, src, zero, dst, ttl, ident, frag, frag_offset
    if available < IPV6_HEADER_BYTES:
        return IP_TRUNCATED, p, p, 0, 0, zero, zero, zero, zero, 0, 0, 0, 0
    src_hi = u64be(buf, p + IPV6_SOURCE)
    src_lo = u64be(buf, p + IPV6_SOURCE + 8)
    dst_hi = u64be(buf, p + IPV6_DESTINATION)
    dst_lo = u64be(buf, p + IPV6_DESTINATION + 8)
    hop_limit = buf[p + IPV6_HOP_LIMIT]
    payload = u16be(buf, p + IPV6_PAYLOAD_LENGTH)
    total = IPV6_HEADER_BYTES + payload if payload else on_wire  # 0: jumbogram or BIG TCP
    if total > on_wire:
        return IP_BAD_TOTAL_LENGTH, p + IPV6_HEADER_BYTES, p + min(total, available), total, buf[p + IPV6_NEXT_HEADER], src_hi, src_lo, dst_hi, dst_lo, hop_limit, 0, 0, 0
    packet_end = p + min(total, available)
    next_header = buf[p + IPV6_NEXT_HEADER]
    q = p + IPV6_HEADER_BYTES
    ident = 0
    frag = 0
    frag_offset = 0
    outcome = IP_OK
    while _is_extension(next_header):
        if next_header == IPV6_FRAGMENT:
            size = IPV6_FRAGMENT_HEADER_BYTES
        elif packet_end - q < 2:
            outcome = IP_TRUNCATED if q + 2 <= p + total else IP_BAD_EXTENSION
            break
        elif next_header == IPV6_AUTH:
            size = (buf[q + 1] + 2) * 4
        else:
            size = (buf[q + 1] + 1) * 8
        if q + size > packet_end:
            outcome = IP_TRUNCATED if q + size <= p + total else IP_BAD_EXTENSION
            break
        if next_header == IPV6_FRAGMENT:
            frag |= FRAG_IPV6_HEADER
            offset_flags = u16be(buf, q + 2)
            frag_offset = offset_flags & IPV6_FRAGMENT_OFFSET_MASK
            if offset_flags & IPV6_FRAGMENT_M:
                frag |= FRAG_MF
            if frag_offset:
                frag |= FRAG_OFFSET
            ident = u32be(buf, q + 4)
        next_header = buf[q]
        q += size
        if frag_offset:
            break  # a non-first fragment: what follows is payload, not a header
    return outcome, q, packet_end, total, next_header, src_hi, src_lo, dst_hi, dst_lo, hop_limit, ident, frag, frag_offset
