"""Link layers (tcpdump.org link-layer header types): Ethernet with 802.1Q/802.1ad tags, Linux cooked v1 and v2, raw IP, BSD loopback.

The parsing is C (``link.h``, compiled into ``_decode``); this module keeps the constants for Python code.
``tests/test_native_decode.py`` checks that both agree.
"""

from __future__ import annotations

LINKTYPE_NULL = 0  # BSD loopback, address family in the capturing host's byte order
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW_OPENBSD = 12  # raw IP on some BSDs
LINKTYPE_RAW_OLD = 14
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108  # OpenBSD loopback, address family in network byte order
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

SUPPORTED_LINK_TYPES = frozenset(
    {
        LINKTYPE_NULL,
        LINKTYPE_ETHERNET,
        LINKTYPE_RAW_OPENBSD,
        LINKTYPE_RAW_OLD,
        LINKTYPE_RAW,
        LINKTYPE_LOOP,
        LINKTYPE_LINUX_SLL,
        LINKTYPE_IPV4,
        LINKTYPE_IPV6,
        LINKTYPE_LINUX_SLL2,
    }
)

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_ARP = 0x0806
ETHERTYPE_VLAN = 0x8100  # IEEE 802.1Q
ETHERTYPE_QINQ = 0x88A8  # IEEE 802.1ad
ETHERTYPE_QINQ_OLD = 0x9100  # pre-standard Q-in-Q
ETHERTYPE_MAX_LENGTH = 1500  # values up to this are an 802.3 length, not a type
ETHERNET_HEADER_BYTES = 14
VLAN_TAG_BYTES = 4
VLAN_ID_MASK = 0x0FFF
SLL_HEADER_BYTES = 16
SLL_PROTOCOL_OFFSET = 14
SLL2_HEADER_BYTES = 20
SLL2_PROTOCOL_OFFSET = 0
NULL_HEADER_BYTES = 4
AF_INET = 2
AF_INET6_VALUES = (10, 24, 28, 30)  # Linux, NetBSD/OpenBSD, FreeBSD/DragonFly, macOS

# Outcomes of the link parser (link.h gw_parse_link), mapped to DecodeStatus by the kernel.
LINK_OK = 0
LINK_TRUNCATED = 1
LINK_UNSUPPORTED = 2
