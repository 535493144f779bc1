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
ROTATE = 31
WORD_BYTES = 8
STRIPE_BYTES = 4 * WORD_BYTES
# Little-endian masks over the packet's first two words: IPv6 hop limit is byte 7; IPv4 TTL byte 8,
# header checksum bytes 10-11.
IPV6_WORD0_MASK = np.uint64(0x00FF_FFFF_FFFF_FFFF)
IPV4_WORD1_MASK = np.uint64(0xFFFF_FFFF_0000_FF00)
FULL_MASK = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
NO_DIGEST = np.uint64(0)


@jit
def _rotl(value, bits):
    return (value << np.uint64(bits)) | (value >> np.uint64(64 - bits))


@jit
def _round(acc, word):
    return _rotl(acc + word * PRIME2, ROTATE) * PRIME1


@jit
def _load(words, index, shift):
    """The 64-bit word starting ``shift`` bits into ``words[index]``; ``words[index + 1]`` must exist.

    The second half is shifted in two steps so that a shift of 0 needs no branch (a shift by 64 is undefined).
    """
    return (words[index] >> shift) | ((words[index + 1] << np.uint64(1)) << (np.uint64(63) - shift))


@jit
def _word(buf, words, p):
    """The little-endian 64-bit word at byte ``p``, byte by byte near the end of ``buf``."""
    if (p >> 3) + 1 < words.shape[0]:
        return _load(words, p >> 3, np.uint64((p & 7) * 8))
    word = np.uint64(0)
    for j in range(WORD_BYTES):
        word |= np.uint64(buf[p + j]) << np.uint64(8 * j)
    return word


@jit
def inner_digest(buf, words, p, end, ip_version):
    """Digest of the bytes [p, end) of ``buf``; ``ip_version`` 4 or 6 masks the fields a router rewrites, 0 none.

    Stripes of 32 bytes feed four independent lanes, as in xxHash64, so that the multiplications overlap;
    the lanes merge, the remaining words and a zero-padded tail word follow, then the avalanche.  An empty
    range has no digest: 0, as for a packet without an inner packet.  ``words`` is ``buf`` viewed as native
    uint64 words (``as_words``); on a little-endian host the digest reads little-endian words.
    """
    length = end - p
    if length <= 0:
        return NO_DIGEST
    mask0 = IPV6_WORD0_MASK if ip_version == 6 else FULL_MASK  # applies to the packet's first word
    mask1 = IPV4_WORD1_MASK if ip_version == 4 else FULL_MASK  # and to its second
    seed = PRIME3 ^ np.uint64(length)
    v0, v1, v2, v3 = seed, seed + PRIME1, seed + PRIME2, seed - PRIME1
    n_words = length // WORD_BYTES
    n_stripes = length // STRIPE_BYTES
    base = p >> 3
    shift = np.uint64((p & 7) * 8)
    fast = base + n_words + 1 < words.shape[0]
    for stripe in range(n_stripes):
        j = stripe * 4
        if fast:
            w0, w1 = _load(words, base + j, shift), _load(words, base + j + 1, shift)
            w2, w3 = _load(words, base + j + 2, shift), _load(words, base + j + 3, shift)
        else:
            w0, w1 = _word(buf, words, p + 8 * j), _word(buf, words, p + 8 * j + 8)
            w2, w3 = _word(buf, words, p + 8 * j + 16), _word(buf, words, p + 8 * j + 24)
        v0 = _round(v0, w0 & mask0)
        v1 = _round(v1, w1 & mask1)
        v2 = _round(v2, w2)
        v3 = _round(v3, w3)
        mask0 = FULL_MASK
        mask1 = FULL_MASK
    acc = _rotl(v0, 1) + _rotl(v1, 7) + _rotl(v2, 12) + _rotl(v3, 18)
    for j in range(n_stripes * 4, n_words):
        word = _load(words, base + j, shift) if fast else _word(buf, words, p + 8 * j)
        if j == 0:
            word &= mask0
        elif j == 1:
            word &= mask1
        acc = _round(acc, word)
    k = n_words * WORD_BYTES
    if k < length:
        word = np.uint64(0)
        for j in range(length - k):
            word |= np.uint64(buf[p + k + j]) << np.uint64(8 * j)
        if n_words == 0:
            word &= mask0
        elif n_words == 1:
            word &= mask1
        acc = _round(acc, word)
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
