"""UDP (RFC 768), TCP (RFC 9293) and ICMP/ICMPv6 (RFC 792, RFC 4443) headers, and the status line of an HTTP response."""

from __future__ import annotations

from .._jit import jit, u16be, u32be

UDP_HEADER_BYTES = 8
TCP_MIN_HEADER_BYTES = 20
TCP_SEQUENCE = 4
TCP_ACKNOWLEDGEMENT = 8
TCP_DATA_OFFSET = 12
TCP_FLAGS = 13
TCP_OPTION_END = 0
TCP_OPTION_NOP = 1
TCP_OPTION_MSS = 2
TCP_OPTION_MSS_BYTES = 4
ICMP_MIN_HEADER_BYTES = 4
ICMP_ECHO_HEADER_BYTES = 8
ICMP_ECHO_REPLY = 0
ICMP_ECHO_REQUEST = 8
ICMP_TIMESTAMP = 13
ICMP_TIMESTAMP_REPLY = 14
ICMPV6_ECHO_REQUEST = 128
ICMPV6_ECHO_REPLY = 129
HTTP_STATUS_LINE_BYTES = 12  # "HTTP/1.1 200"

# Outcomes, mapped to DecodeStatus by the kernel.
L4_OK = 0
L4_TRUNCATED = 1
L4_BAD_LENGTH = 2


@jit
def parse_udp(buf, p, packet_end, on_wire, more_fragments):
    """Return (outcome, sport, dport, length, checksum, payload offset, captured payload end).

    ``on_wire`` is the UDP length the IP header implies; a UDP length of 0 (BIG TCP, GSO) takes it.  In a
    first fragment (``more_fragments``) the datagram goes on in later fragments, past ``on_wire``.
    """
    if packet_end - p < UDP_HEADER_BYTES:
        return L4_TRUNCATED, 0, 0, 0, 0, p, p
    sport = u16be(buf, p)
    dport = u16be(buf, p + 2)
    length = u16be(buf, p + 4)
    checksum = u16be(buf, p + 6)
    if length == 0:
        length = on_wire
    payload_end = min(p + length, packet_end)
    if length < UDP_HEADER_BYTES or (length > on_wire and not more_fragments):
        return L4_BAD_LENGTH, sport, dport, length, checksum, p + UDP_HEADER_BYTES, max(payload_end, p + UDP_HEADER_BYTES)
    return L4_OK, sport, dport, length, checksum, p + UDP_HEADER_BYTES, payload_end


@jit
def _tcp_mss(buf, p, end):
    while p < end:
        kind = buf[p]
        if kind == TCP_OPTION_END:
            return 0
        if kind == TCP_OPTION_NOP:
            p += 1
            continue
        if end - p < 2:
            return 0
        size = buf[p + 1]
        if size < 2 or p + size > end:
            return 0
        if kind == TCP_OPTION_MSS and size == TCP_OPTION_MSS_BYTES:
            return u16be(buf, p + 2)
        p += size
    return 0


@jit
def parse_tcp(buf, p, packet_end, on_wire):
    """Return (outcome, sport, dport, seq, ack, flags, header length, MSS option, payload bytes).

    A data offset below 5 words or past the ``on_wire`` bytes of the segment is malformed.
    """
    if packet_end - p < TCP_MIN_HEADER_BYTES:
        return L4_TRUNCATED, 0, 0, 0, 0, 0, 0, 0, 0
    sport = u16be(buf, p)
    dport = u16be(buf, p + 2)
    seq = u32be(buf, p + TCP_SEQUENCE)
    ack = u32be(buf, p + TCP_ACKNOWLEDGEMENT)
    header = (buf[p + TCP_DATA_OFFSET] >> 4) * 4
    flags = ((buf[p + TCP_DATA_OFFSET] & 0x01) << 8) | buf[p + TCP_FLAGS]
    payload = max(on_wire - header, 0)
    if header < TCP_MIN_HEADER_BYTES or header > on_wire:
        return L4_BAD_LENGTH, sport, dport, seq, ack, flags, header, 0, payload
    if packet_end - p < header:
        return L4_TRUNCATED, sport, dport, seq, ack, flags, header, 0, payload
    return L4_OK, sport, dport, seq, ack, flags, header, _tcp_mss(buf, p + TCP_MIN_HEADER_BYTES, p + header), payload


@jit
def _has_identifier(icmp_type, v6):
    if v6:
        return icmp_type == ICMPV6_ECHO_REQUEST or icmp_type == ICMPV6_ECHO_REPLY
    return (
        icmp_type == ICMP_ECHO_REQUEST
        or icmp_type == ICMP_ECHO_REPLY
        or icmp_type == ICMP_TIMESTAMP
        or icmp_type == ICMP_TIMESTAMP_REPLY
    )


@jit
def parse_icmp(buf, p, packet_end, v6):
    """Return (outcome, type, code, identifier, sequence); identifier and sequence only for echo and timestamp."""
    if packet_end - p < ICMP_MIN_HEADER_BYTES:
        return L4_TRUNCATED, 0, 0, 0, 0
    icmp_type = buf[p]
    code = buf[p + 1]
    if not _has_identifier(icmp_type, v6):
        return L4_OK, icmp_type, code, 0, 0
    if packet_end - p < ICMP_ECHO_HEADER_BYTES:
        return L4_TRUNCATED, icmp_type, code, 0, 0
    return L4_OK, icmp_type, code, u16be(buf, p + 4), u16be(buf, p + 6)


@jit
def http_status(buf, p, end):
    """The status code of an HTTP/1.x status line starting at ``p`` ("HTTP/1.1 200 OK"), else 0."""
    if end - p < HTTP_STATUS_LINE_BYTES:
        return 0
    # "HTTP/1." DIGIT SP (RFC 9112 2.3, 4)
    if not (buf[p] == 72 and buf[p + 1] == 84 and buf[p + 2] == 84 and buf[p + 3] == 80
            and buf[p + 4] == 47 and buf[p + 5] == 49 and buf[p + 6] == 46 and 48 <= buf[p + 7] <= 57
            and buf[p + 8] == 32):
        return 0
    status = 0
    for k in range(9, 12):
        digit = buf[p + k] - 48
        if digit < 0 or digit > 9:
            return 0
        status = status * 10 + digit
    return status
