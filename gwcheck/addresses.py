"""IP addresses as the packet table keeps them, 128-bit integers in two uint64 halves, IPv4 mapped (RFC 4291 2.5.5.2), and as text."""

from __future__ import annotations

import ipaddress
import socket

import numpy as np

IPV4_MAPPED_HI = 0
IPV4_MAPPED_LO_PREFIX = 0xFFFF_0000_0000
_LOW32 = 0xFFFF_FFFF


def format_address(hi: int, lo: int) -> str:
    """Text of one address: dotted quad for IPv4-mapped values, RFC 5952 text for IPv6 (inet_ntop)."""
    hi, lo = int(hi), int(lo)
    if hi == IPV4_MAPPED_HI and lo >> 32 == 0xFFFF:
        return str(ipaddress.IPv4Address(lo & _LOW32))
    return socket.inet_ntop(socket.AF_INET6, (hi << 64 | lo).to_bytes(16, "big"))


def parse_address(text: str) -> tuple[int, int]:
    """(hi, lo) of an IPv4 or IPv6 address given as text; raises ValueError when it is neither."""
    address = ipaddress.ip_address(text.strip())
    if address.version == 4:
        return IPV4_MAPPED_HI, IPV4_MAPPED_LO_PREFIX | int(address)
    value = int(address)
    return value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF


def format_addresses(hi: np.ndarray, lo: np.ndarray) -> np.ndarray:
    """Text of many addresses (an object array), formatting each distinct address once."""
    pairs = np.stack([np.asarray(hi, np.uint64), np.asarray(lo, np.uint64)], axis=1)
    if len(pairs) == 0:
        return np.empty(0, dtype=object)
    unique, inverse = np.unique(pairs, axis=0, return_inverse=True)
    v4 = (unique[:, 0] == IPV4_MAPPED_HI) & ((unique[:, 1] >> np.uint64(32)) == np.uint64(0xFFFF))
    octets = [(unique[:, 1] >> np.uint64(shift)) & np.uint64(0xFF) for shift in (24, 16, 8, 0)]
    text = np.empty(len(unique), dtype=object)
    text[v4] = [f"{a}.{b}.{c}.{d}" for a, b, c, d in zip(*(o[v4].tolist() for o in octets))]
    text[~v4] = [format_address(h, l) for h, l in unique[~v4]]
    return text[inverse.reshape(-1)]

