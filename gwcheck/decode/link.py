"""Link layers (tcpdump.org link-layer header types): Ethernet with 802.1Q/802.1ad tags, Linux cooked v1 and v2, raw IP, BSD loopback."""

from __future__ import annotations

from .._jit import jit, u16be, u32be, u32le

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

# Outcomes of parse_link, mapped to DecodeStatus by the kernel.
LINK_OK = 0
LINK_TRUNCATED = 1
LINK_UNSUPPORTED = 2


@jit
def skip_vlan_tags(buf, p, end, ethertype):
    """Step over 802.1Q/802.1ad tags; return (outcome, payload offset, ethertype, outermost VLAN ID, tag count)."""
    vlan_id = 0
    vlan_count = 0
    while ethertype == ETHERTYPE_VLAN or ethertype == ETHERTYPE_QINQ or ethertype == ETHERTYPE_QINQ_OLD:
        if end - p < VLAN_TAG_BYTES:
            return LINK_TRUNCATED, p, 0, vlan_id, vlan_count
        if vlan_count == 0:
            vlan_id = u16be(buf, p) & VLAN_ID_MASK
        vlan_count += 1
        ethertype = u16be(buf, p + 2)
        p += VLAN_TAG_BYTES
    return LINK_OK, p, ethertype, vlan_id, vlan_count


@jit
def parse_ethernet(buf, p, end):
    """Return (outcome, payload offset, ethertype, outermost VLAN ID, VLAN tag count)."""
    if end - p < ETHERNET_HEADER_BYTES:
        return LINK_TRUNCATED, p, 0, 0, 0
    return skip_vlan_tags(buf, p + ETHERNET_HEADER_BYTES, end, u16be(buf, p + 12))


@jit
def _ethertype_of_ip_version(buf, p, end):
    if end - p < 1:
        return 0
    version = buf[p] >> 4
    if version == 4:
        return ETHERTYPE_IPV4
    if version == 6:
        return ETHERTYPE_IPV6
    return 0


@jit
def _ethertype_of_family(family):
    if family == AF_INET:
        return ETHERTYPE_IPV4
    for value in AF_INET6_VALUES:
        if family == value:
            return ETHERTYPE_IPV6
    return 0


@jit
def parse_link(buf, p, end, link_type):
    """Return (outcome, network-layer offset, ethertype, VLAN ID, VLAN tag count) for one frame."""
    if link_type == LINKTYPE_ETHERNET:
        return parse_ethernet(buf, p, end)
    if link_type == LINKTYPE_LINUX_SLL2:
        if end - p < SLL2_HEADER_BYTES:
            return LINK_TRUNCATED, p, 0, 0, 0
        return skip_vlan_tags(buf, p + SLL2_HEADER_BYTES, end, u16be(buf, p + SLL2_PROTOCOL_OFFSET))
    if link_type == LINKTYPE_LINUX_SLL:
        if end - p < SLL_HEADER_BYTES:
            return LINK_TRUNCATED, p, 0, 0, 0
        return skip_vlan_tags(buf, p + SLL_HEADER_BYTES, end, u16be(buf, p + SLL_PROTOCOL_OFFSET))
    if link_type == LINKTYPE_RAW or link_type == LINKTYPE_RAW_OPENBSD or link_type == LINKTYPE_RAW_OLD:
        if end - p < 1:
            return LINK_TRUNCATED, p, 0, 0, 0
        return LINK_OK, p, _ethertype_of_ip_version(buf, p, end), 0, 0
    if link_type == LINKTYPE_IPV4:
        return LINK_OK, p, ETHERTYPE_IPV4, 0, 0
    if link_type == LINKTYPE_IPV6:
        return LINK_OK, p, ETHERTYPE_IPV6, 0, 0
    if link_type == LINKTYPE_NULL or link_type == LINKTYPE_LOOP:
        if end - p < NULL_HEADER_BYTES:
            return LINK_TRUNCATED, p, 0, 0, 0
        if link_type == LINKTYPE_LOOP:
            family = u32be(buf, p)
        else:
            family = u32le(buf, p)
            if family > 0xFFFF:  # written by a big-endian host
                family = u32be(buf, p)
        return LINK_OK, p + NULL_HEADER_BYTES, _ethertype_of_family(family), 0, 0
    return LINK_UNSUPPORTED, p, 0, 0, 0
