/* The pcap Packet Record header, per draft-ietf-opsawg-pcap (section 5), and the walker's constants (pcap.py has the same). */
#ifndef GWCHECK_CAPTURE_PCAP_H
#define GWCHECK_CAPTURE_PCAP_H

/* Field offsets in a record header: 16 bytes, or 24 for Kuznetzov's patched libpcap (extra fields after these). */
#define PCAP_TS_SECONDS 0
#define PCAP_TS_FRACTION 4  /* microseconds, or nanoseconds for magic 0xA1B23C4D */
#define PCAP_CAPTURED_LENGTH 8
#define PCAP_ORIGINAL_LENGTH 12
#define PCAP_RECORD_HEADER_BYTES 16  /* the least header_bytes a walk accepts: the fields above */

/* Why a walk stopped: pcap.py _REASON_*. */
#define PCAP_REASON_NONE 0
#define PCAP_REASON_SHORT_HEADER 1
#define PCAP_REASON_SHORT_DATA 2
#define PCAP_REASON_TOO_LONG 3
#define PCAP_REASON_FULL 4

#define PCAP_PREFETCH_BYTES 4096                      /* pcap.PREFETCH_BYTES */
#define PCAP_RESYNC_RECORDS 16                        /* pcap.RESYNC_RECORDS */
#define PCAP_PLAUSIBLE_SPAN_SECONDS (366 * 86400)     /* pcap.PLAUSIBLE_SPAN_SECONDS */

#endif
