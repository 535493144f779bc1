/* pcapng blocks and options, per draft-ietf-opsawg-pcapng (sections 3-4), and the walker's constants (pcapng.py has the same). */
#ifndef GWCHECK_CAPTURE_PCAPNG_H
#define GWCHECK_CAPTURE_PCAPNG_H

#define PCAPNG_BLOCK_SECTION_HEADER 0x0A0D0D0A  /* a palindrome: reads the same in either byte order */
#define PCAPNG_BLOCK_INTERFACE_DESCRIPTION 0x00000001
#define PCAPNG_BLOCK_PACKET_OBSOLETE 0x00000002
#define PCAPNG_BLOCK_SIMPLE_PACKET 0x00000003
#define PCAPNG_BLOCK_ENHANCED_PACKET 0x00000006
#define PCAPNG_BYTE_ORDER_MAGIC 0x1A2B3C4D
#define PCAPNG_BYTE_ORDER_MAGIC_SWAPPED 0x4D3C2B1A

#define PCAPNG_OPTION_END 0
#define PCAPNG_OPTION_IF_TSRESOL 9
#define PCAPNG_OPTION_IF_TSOFFSET 14

#define PCAPNG_DEFAULT_TSRESOL 6  /* microseconds when an interface has no if_tsresol option */
#define PCAPNG_MIN_BLOCK_BYTES 12 /* type, total length, trailing total length */
#define PCAPNG_MAX_INTERFACES 65535
#define PCAPNG_UNKNOWN_LINK_TYPE 0xFFFF /* a packet naming an interface its section does not describe */
#define PCAPNG_PREFETCH_BYTES 4096      /* how far ahead the walk keeps the file on its way to the cache (C only) */

/* Offsets in a block, from its type field. */
#define PCAPNG_BLOCK_LENGTH 4
#define PCAPNG_SHB_BYTE_ORDER 8
#define PCAPNG_IDB_LINK_TYPE 8
#define PCAPNG_IDB_SNAPLEN 12
#define PCAPNG_IDB_OPTIONS 16
#define PCAPNG_IDB_MIN_WITH_SNAPLEN 20     /* a shorter IDB has no link type and snaplen to read */
#define PCAPNG_EPB_INTERFACE 8             /* u32 (u16 in the obsolete Packet Block, then a u16 drops count) */
#define PCAPNG_EPB_TS_HIGH 12
#define PCAPNG_EPB_TS_LOW 16
#define PCAPNG_EPB_CAPTURED_LENGTH 20
#define PCAPNG_EPB_ORIGINAL_LENGTH 24
#define PCAPNG_EPB_DATA 28
#define PCAPNG_EPB_MIN_BYTES 32
#define PCAPNG_SPB_ORIGINAL_LENGTH 8
#define PCAPNG_SPB_DATA 12
#define PCAPNG_SPB_MIN_BYTES 16

/* Why a walk stopped: pcapng.py _REASON_*. */
#define PCAPNG_REASON_NONE 0
#define PCAPNG_REASON_SHORT_BLOCK_HEADER 1
#define PCAPNG_REASON_BAD_BLOCK_LENGTH 2
#define PCAPNG_REASON_BLOCK_PAST_END 3
#define PCAPNG_REASON_BAD_BYTE_ORDER 4
#define PCAPNG_REASON_PACKET_PAST_BLOCK 5
#define PCAPNG_REASON_TOO_MANY_INTERFACES 6
#define PCAPNG_REASON_TRAILER_MISMATCH 7

#endif
