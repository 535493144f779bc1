"""IP addresses as the packet table keeps them, 128-bit integers in two uint64 halves, IPv4 mapped (RFC 4291 2.5.5.2), and as text."""

from __future__ import annotations

import ipaddress
import socket

import numpy as np
import pyarrow as pa

from .tables.grouping import group_ids
from .text import join_text, take_text

IPV4_MAPPED_HI = 0
IPV4_MAPPED_LO_PREFIX = 0xFFFF_0000_0000
_LOW32 = 0xFFFF_FFFF
_OCTETS = pa.array([str(i) for i in range(256)], pa.string())  # the text of each byte value


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
    return address_texts(hi, lo).to_numpy(zero_copy_only=False)


def address_texts(hi: np.ndarray, lo: np.ndarray) -> pa.Array:
    """Text of many addresses as an Arrow string array: each distinct address formatted once, IPv4 by Arrow's kernels."""
    hi, lo = np.asarray(hi, np.uint64), np.asarray(lo, np.uint64)
    if len(hi) == 0:
        return pa.array([], pa.string())
    # Distinct (hi, lo) pairs, in any order (each row's text is the same), from one hash of the rows.
    inverse, firsts = group_ids([hi, lo])
    unique_hi, unique_lo = hi[firsts], lo[firsts]
    v4 = (unique_hi == IPV4_MAPPED_HI) & ((unique_lo >> np.uint64(32)) == np.uint64(0xFFFF))
    octets = [take_text(_OCTETS, (unique_lo[v4] >> np.uint64(shift)) & np.uint64(0xFF)) for shift in (24, 16, 8, 0)]
    packed = np.stack([unique_hi[~v4], unique_lo[~v4]], axis=1).astype(">u8").tobytes()  # 16 bytes an address, as format_address
    v6 = [socket.inet_ntop(socket.AF_INET6, packed[i : i + 16]) for i in range(0, len(packed), 16)]
    text = pa.concat_arrays([join_text(octets[0], ".", octets[1], ".", octets[2], ".", octets[3]), pa.array(v6, pa.string())])
    # The distinct addresses' text, IPv4 ones first: each one's place there.
    place = np.empty(len(firsts), np.int64)
    place[v4], place[~v4] = np.arange(int(v4.sum())), np.arange(int(v4.sum()), len(firsts))
    return take_text(text, place[inverse])
