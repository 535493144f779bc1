"""IPv4 (RFC 791) and IPv6 (RFC 8200) headers, outer or inner; addresses as IPv4-mapped 128-bit halves (RFC 4291 2.5.5.2).

The parsing is C (``ip.h``, compiled into ``_decode``); this module keeps the constants for Python code.
``tests/test_native_decode.py`` checks that both agree.
"""

from __future__ import annotations

import numpy as np

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

# FragmentFlags (schema.FragmentFlags), repeated as plain ints as in the C code.
FRAG_DF = 0x1
FRAG_MF = 0x2
FRAG_OFFSET = 0x4
FRAG_IPV6_HEADER = 0x8

# Outcomes of the IP parser (ip.h gw_parse_ip), mapped to outer or inner DecodeStatus by the kernel.
IP_OK = 0
IP_TRUNCATED = 1
IP_BAD_VERSION = 2
IP_BAD_HEADER_LENGTH = 3
IP_BAD_TOTAL_LENGTH = 4
IP_BAD_EXTENSION = 5
