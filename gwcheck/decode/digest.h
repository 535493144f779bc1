/* A 64-bit digest of an inner packet that a routing appliance leaves unchanged, mixed as xxHash64's round and avalanche (Collet, xxHash specification).
 *
 * The C half of digest.py, which documents it: TTL/hop limit and the IPv4 header checksum are masked.  The
 * packet is read as little-endian 64-bit words, the last one zero-padded; no byte outside [p, end) is read.
 */
#ifndef GWCHECK_DECODE_DIGEST_H
#define GWCHECK_DECODE_DIGEST_H

#include "native.h"

#define GW_PRIME1 UINT64_C(0x9E3779B185EBCA87)
#define GW_PRIME2 UINT64_C(0xC2B2AE3D27D4EB4F)
#define GW_PRIME3 UINT64_C(0x165667B19E3779F9)
#define GW_DIGEST_ROTATE 31
#define GW_DIGEST_WORD_BYTES 8
#define GW_DIGEST_STRIPE_BYTES 32
/* Little-endian masks over the packet's first two words: IPv6 hop limit is byte 7; IPv4 TTL byte 8, header
 * checksum bytes 10-11. */
#define GW_IPV6_WORD0_MASK UINT64_C(0x00FFFFFFFFFFFFFF)
#define GW_IPV4_WORD1_MASK UINT64_C(0xFFFFFFFF0000FF00)
#define GW_FULL_MASK UINT64_C(0xFFFFFFFFFFFFFFFF)
#define GW_NO_DIGEST 0

static inline uint64_t gw_rotl64(uint64_t value, unsigned bits) { return (value << bits) | (value >> (64 - bits)); }

static inline uint64_t gw_digest_round(uint64_t acc, uint64_t word) { return gw_rotl64(acc + word * GW_PRIME2, GW_DIGEST_ROTATE) * GW_PRIME1; }

/* The little-endian 64-bit word at ``s`` (unaligned). */
static inline uint64_t gw_word_le(const uint8_t *s) {
    uint64_t word;
    memcpy(&word, s, sizeof word);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    word = __builtin_bswap64(word);
#endif
    return word;
}

/* Digest of the bytes [p, end) of ``buf``; ``ip_version`` 4 or 6 masks the fields a router rewrites, 0 none.
 *
 * Stripes of 32 bytes feed four independent lanes, as in xxHash64, so that the multiplications overlap; the
 * lanes merge, the remaining words and a zero-padded tail word follow, then the avalanche.  An empty range
 * has no digest: 0, as for a packet without an inner packet; a digest that comes out 0 is stored as 1. */
static inline uint64_t gw_inner_digest(const uint8_t *buf, int64_t p, int64_t end, unsigned ip_version) {
    int64_t length = end - p;
    if (length <= 0) return GW_NO_DIGEST;
    const uint8_t *s = buf + p;
    uint64_t mask0 = ip_version == 6 ? GW_IPV6_WORD0_MASK : GW_FULL_MASK; /* applies to the packet's first word */
    uint64_t mask1 = ip_version == 4 ? GW_IPV4_WORD1_MASK : GW_FULL_MASK; /* and to its second */
    uint64_t seed = GW_PRIME3 ^ (uint64_t)length;
    uint64_t v0 = seed, v1 = seed + GW_PRIME1, v2 = seed + GW_PRIME2, v3 = seed - GW_PRIME1;
    int64_t n_words = length / GW_DIGEST_WORD_BYTES;
    int64_t n_stripes = length / GW_DIGEST_STRIPE_BYTES;
    if (n_stripes > 0) { /* the first stripe holds the masked words */
        v0 = gw_digest_round(v0, gw_word_le(s) & mask0);
        v1 = gw_digest_round(v1, gw_word_le(s + 8) & mask1);
        v2 = gw_digest_round(v2, gw_word_le(s + 16));
        v3 = gw_digest_round(v3, gw_word_le(s + 24));
        for (int64_t k = GW_DIGEST_STRIPE_BYTES; k < n_stripes * GW_DIGEST_STRIPE_BYTES; k += GW_DIGEST_STRIPE_BYTES) {
            v0 = gw_digest_round(v0, gw_word_le(s + k));
            v1 = gw_digest_round(v1, gw_word_le(s + k + 8));
            v2 = gw_digest_round(v2, gw_word_le(s + k + 16));
            v3 = gw_digest_round(v3, gw_word_le(s + k + 24));
        }
        mask0 = mask1 = GW_FULL_MASK;
    }
    uint64_t acc = gw_rotl64(v0, 1) + gw_rotl64(v1, 7) + gw_rotl64(v2, 12) + gw_rotl64(v3, 18);
    for (int64_t j = n_stripes * 4; j < n_words; j++) {
        uint64_t word = gw_word_le(s + j * GW_DIGEST_WORD_BYTES);
        if (j == 0)
            word &= mask0;
        else if (j == 1)
            word &= mask1;
        acc = gw_digest_round(acc, word);
    }
    int64_t k = n_words * GW_DIGEST_WORD_BYTES;
    if (k < length) {
        uint64_t word = 0;
        for (int64_t j = 0; j < length - k; j++) word |= (uint64_t)s[k + j] << (8 * j);
        if (n_words == 0)
            word &= mask0;
        else if (n_words == 1)
            word &= mask1;
        acc = gw_digest_round(acc, word);
    }
    acc ^= acc >> 33;
    acc *= GW_PRIME2;
    acc ^= acc >> 29;
    acc *= GW_PRIME3;
    acc ^= acc >> 32;
    return acc == GW_NO_DIGEST ? 1 : acc;
}

#endif
