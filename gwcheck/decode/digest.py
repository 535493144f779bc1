"""A 64-bit digest of an inner packet that a routing appliance leaves unchanged: TTL/hop limit and the IPv4 header checksum are masked.

The mixing follows xxHash64's round and avalanche (Collet, xxHash specification); it is a fingerprint for
pairing a packet going into an appliance with the same packet coming out, not a cryptographic hash.
"""

from __future__ import annotations

import numpy as np

from . import _decode

PRIME1 = np.uint64(0x9E3779B185EBCA87)
PRIME2 = np.uint64(0xC2B2AE3D27D4EB4F)
PRIME3 = np.uint64(0x165667B19E3779F9)
ROTATE = 31
WORD_BYTES = 8
STRIPE_BYTES = 4 * WORD_BYTES
# Little-endian masks over the packet's first two words: IPv6 hop limit is byte 7; IPv4 TTL byte 8,
# header checksum bytes 10-11.
IPV6_WORD0_MASK = np.uint64(0x00FF_FFFF_FFFF_FFFF)
IPV4_WORD1_MASK = np.uint64(0xFFFF_FFFF_0000_FF00)
FULL_MASK = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
NO_DIGEST = np.uint64(0)


def inner_digest(buf: np.ndarray | bytes, p: int, end: int, ip_version: int) -> int:
    """Digest of the bytes [p, end) of ``buf``; ``ip_version`` 4 or 6 masks the fields a router rewrites, 0 none.

    Stripes of 32 bytes feed four independent lanes, as in xxHash64, so that the multiplications overlap;
    the lanes merge, the remaining words and a zero-padded tail word follow, then the avalanche.  The packet
    is read as little-endian 64-bit words.  An empty range has no digest: 0, as for a packet without an inner
    packet; a digest that comes out 0 is stored as 1.  The decoder computes it in C (``digest.h``); this is
    the same function, for tests and tools.
    """
    return _decode.inner_digest(buf, p, end, ip_version)
