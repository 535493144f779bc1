"""UDP (RFC 768), TCP (RFC 9293) and ICMP/ICMPv6 (RFC 792, RFC 4443) headers, and the status line of an HTTP response.

The parsing is C (``transport.h``, compiled into ``_decode``); this module keeps the constants for Python
code.  ``tests/test_native_decode.py`` checks that both agree.
"""

from __future__ import annotations

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
