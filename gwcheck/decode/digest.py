"""A 64-bit digest of an inner packet that a routing appliance leaves unchanged: TTL/hop limit and the IPv4 header checksum are masked.

The mixing follows xxHash64's round and avalanche (Collet, xxHash specification); it is a fingerprint for
pairing a packet going into an appliance with the same packet coming out, not a cryptographic hash.
"""

from __future__ import annotations

import numpy as np

from .._jit import jit

PRIME1 = np.uint64(0x9E3779B185EBCA87)
PRIME2 = np.uint64(0xC2B2AE3D27D4EB4F)
PRIME3 = np.uint64(0x165667B19E3779F9)
ROTATE = np.uint64(31)
WORD_BYTES = 8
# Little-endian masks over the packet's first two words: IPv6 hop limit is byte 7; IPv4 TTL byte 8,
# header checksum bytes 10-11.
IPV6_WORD0_MASK = np.uint64(0x00FF_FFFF_FFFF_FFFF)
IPV4_WORD1_MASK = np.uint64(0xFFFF_FFFF_0000_FF00)
FULL_MASK = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
NO_DIGEST = np.uint64(0)


@jit
def _round(acc, word):
    acc = acc + word * PRIME2
    acc = (acc << ROTATE) | (acc >> (np.uint64(64) - ROTATE))
    return acc * PRIME1


@jit
def _word(buf, words, p):
    """The little-endian 64-bit word at byte ``p``, from two aligned loads of ``words`` (``buf`` as uint64)."""
    w = p >> 3
    shift = np.uint64((p & 7) * 8)
    if w + 1 < words.shape[0]:
        if shift == 0:
            return words[w]
        return (words[w] >> shift) | (words[w + 1] << (np.uint64(64) - shift))
    word = np.uint64(0)
    for j in range(WORD_BYTES):
        word |= np.uint64(buf[p + j]) << np.uint64(8 * j)
    return word


@jit
def inner_digest(buf, words, p, end, ip_version):
    """Digest of the bytes [p, end) of ``buf``; ``ip_version`` 4 or 6 masks the fields a router rewrites, 0 none.

    An empty range has no digest: 0, as for a packet without an inner packet.  ``words`` is ``buf`` viewed
    as native uint64 words (``as_words``); on a little-endian host the digest reads the bytes as
    little-endian words.
    """
    length = end - p
    if length <= 0:
        return NO_DIGEST
    acc = PRIME3 ^ np.uint64(length)
    k = 0
    while length - k >= WORD_BYTES:
        word = _word(buf, words, p + k)
        if ip_version == 6 and k == 0:
            word &= IPV6_WORD0_MASK
        elif ip_version == 4 and k == WORD_BYTES:
            word &= IPV4_WORD1_MASK
        acc = _round(acc, word)
        k += WORD_BYTES
    if k < length:
        word = np.uint64(0)
        for j in range(length - k):
            word |= np.uint64(buf[p + k + j]) << np.uint64(8 * j)
        mask = FULL_MASK
        if ip_version == 6 and k == 0:
            mask = IPV6_WORD0_MASK
        elif ip_version == 4 and k == WORD_BYTES:
            mask = IPV4_WORD1_MASK
        acc = _round(acc, word & mask)
    acc ^= acc >> np.uint64(33)
    acc *= PRIME2
    acc ^= acc >> np.uint64(29)
    acc *= PRIME3
    acc ^= acc >> np.uint64(32)
    if acc == NO_DIGEST:
        acc = np.uint64(1)
    return acc


def as_words(buf: np.ndarray) -> np.ndarray:
    """``buf``'s whole 8-byte words as a uint64 view (no copy); the tail bytes are read from ``buf`` itself."""
    return buf[: len(buf) // WORD_BYTES * WORD_BYTES].view(np.uint64)
