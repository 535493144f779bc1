/* gwcheck.capture._walk: the record walkers of pcap.py, pcapng.py and stream.py.
 *
 * Python allocates every output array and passes it in with the bytes to walk; each argument is checked before any
 * loop (C-contiguous, element size and kind, native byte order, lengths), so a wrong dtype is a TypeError and a wrong
 * length or offset a ValueError, never a misread.  Every byte read is checked against the end of the buffer first:
 * arguments a caller could get wrong (offsets, counts, lengths) are refused rather than trusted.  Loops run without the GIL
 * (pcap.py walks a large file in pieces, in threads).
 *
 * The arithmetic is that of the Numba kernels these replaced, so that every timestamp stays what it was: int64 that
 * wraps on overflow (computed in uint64 here, where signed overflow would be undefined), float-to-int64 conversion as
 * x86-64 does it, and float ** int by repeated squaring.
 */
#include "native.h"
#include "pcap.h"
#include "pcapng.h"

/* The views ``specs[i]`` of ``objects[i]``, all or none: on failure those already taken are released. */
typedef struct {
    Py_ssize_t itemsize;
    const char *formats;
    const char *what;
} view_spec;

static int typed_views(PyObject **objects, Py_buffer *views, const view_spec *specs, int count, int writable) {
    for (int i = 0; i < count; i++) {
        if (gw_typed_view(objects[i], &views[i], specs[i].itemsize, specs[i].formats, writable, specs[i].what) != 0) {
            gw_release(views, i);
            return -1;
        }
    }
    return 0;
}

/* Every view of ``views[1:count]`` has the length of ``views[0]``; else ValueError naming ``what``. */
static int same_lengths(const Py_buffer *views, int count, const char *what) {
    for (int i = 1; i < count; i++) {
        if (gw_len(&views[i]) != gw_len(&views[0])) {
            PyErr_Format(PyExc_ValueError, "%s: arrays of different lengths (%zd and %zd)", what, gw_len(&views[0]),
                         gw_len(&views[i]));
            return -1;
        }
    }
    return 0;
}

/* ---------------------------------------------------------------- arithmetic, defined where C's is not */

static inline int64_t wrap_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t wrap_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }

/* A float64 to int64 as x86-64's cvttsd2si: truncation, and INT64_MIN for NaN
 * or a value out of range (where a C cast would be undefined). */
static inline int64_t float_to_int64(double x) {
    if (x >= -9223372036854775808.0 && x < 9223372036854775808.0) return (int64_t)x;
    return INT64_MIN;
}

/* base ** exponent (exponent >= 0) by repeated squaring.  It differs from a correctly rounded pow(10, k) only for
 * some k above 22, where units_to_ns's quotient is below 1 and truncates to 0 either way. */
static inline double float_power(double base, int64_t exponent) {
    double result = 1.0;
    while (exponent != 0) {
        if (exponent & 1) result *= base;
        exponent >>= 1;
        base *= base;
    }
    return result;
}

static const int64_t POW10[10] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000, 1000000000};

/* ---------------------------------------------------------------- prefetching */

#define CACHE_LINE_BYTES 64

/* Each record's (block's) length depends on the one before, so a walk would wait on memory at every record: keep every
 * cache line of buf[p : p + distance] on its way, from ``*ahead`` (the first line not yet asked for) on.  A prefetch at
 * a fixed distance only lands inside some later record rather than on its header: the walk is then about twice as
 * slow. */
static inline void prefetch_ahead(const uint8_t *buf, int64_t p, int64_t end, int64_t distance, int64_t *ahead) {
    int64_t to = end - p > distance ? p + distance : end;
    int64_t line = *ahead < p ? p : *ahead;
    for (; line < to; line += CACHE_LINE_BYTES) __builtin_prefetch(buf + line);
    *ahead = line;
}

/* ---------------------------------------------------------------- pcap */

/* The walk of pcap_walk, for one byte order (``big_endian`` a constant where it is inlined). */
static inline __attribute__((always_inline)) void pcap_walk_order(
    const uint8_t *buf, int64_t end, int64_t start, int64_t limit, int64_t n, const int big_endian,
    int64_t header_bytes, int64_t frac_to_ns, int64_t max_len, int64_t *ts_ns, int64_t *frame_offset,
    uint32_t *wire_len, uint32_t *cap_len, int64_t capacity, int64_t result[4]) {
    int64_t p = start;
    int64_t reason = PCAP_REASON_NONE, detail = 0;
    int64_t ahead = start; /* prefetch_ahead's */
    while (p < limit) {
        if (n == capacity) {
            reason = PCAP_REASON_FULL;
            break;
        }
        if (end - p < header_bytes) {
            reason = PCAP_REASON_SHORT_HEADER;
            detail = end - p;
            break;
        }
        const uint8_t *h = buf + p;
        int64_t caplen = (int64_t)gw_u32(h + PCAP_CAPTURED_LENGTH, big_endian);
        if (caplen > max_len) {
            reason = PCAP_REASON_TOO_LONG;
            detail = caplen;
            break;
        }
        if (end - p - header_bytes < caplen) {
            reason = PCAP_REASON_SHORT_DATA;
            detail = caplen;
            break;
        }
        prefetch_ahead(buf, p, end, PCAP_PREFETCH_BYTES, &ahead);
        uint64_t seconds = gw_u32(h + PCAP_TS_SECONDS, big_endian);
        uint64_t fraction = gw_u32(h + PCAP_TS_FRACTION, big_endian);
        ts_ns[n] = (int64_t)(seconds * 1000000000u + fraction * (uint64_t)frac_to_ns);
        frame_offset[n] = p + header_bytes;
        wire_len[n] = (uint32_t)gw_u32(h + PCAP_ORIGINAL_LENGTH, big_endian);
        cap_len[n] = (uint32_t)caplen;
        n++;
        p += header_bytes + caplen;
    }
    result[0] = n;
    result[1] = p;
    result[2] = reason;
    result[3] = detail;
}

PyDoc_STRVAR(pcap_walk_doc,
"pcap_walk(buf, start, limit, n, big_endian, header_bytes, frac_to_ns, max_len, ts_ns, frame_offset, wire_len, cap_len)\n"
"--\n\n"
"Walk the records starting before offset ``limit`` from offset ``start``, filling the arrays from row ``n``.\n\n"
"``buf`` is uint8; ``ts_ns`` and ``frame_offset`` int64, ``wire_len`` and ``cap_len`` uint32, all of one length.\n"
"Returns (rows filled, stop offset, reason, detail); reason ``_REASON_FULL`` asks to be called again with larger\n"
"arrays.  Runs without the GIL.");

static PyObject *py_pcap_walk(PyObject *self, PyObject *args) {
    PyObject *objects[5];
    long long start, limit, n, header_bytes, frac_to_ns, max_len;
    int big_endian;
    if (!PyArg_ParseTuple(args, "OLLLpLLLOOOO:pcap_walk", &objects[0], &start, &limit, &n, &big_endian, &header_bytes,
                          &frac_to_ns, &max_len, &objects[1], &objects[2], &objects[3], &objects[4]))
        return NULL;
    static const view_spec specs[5] = {
        {1, GW_FORMAT_U8, "pcap_walk: buf"},         {8, GW_FORMAT_I64, "pcap_walk: ts_ns"},     {8, GW_FORMAT_I64, "pcap_walk: frame_offset"},
        {4, GW_FORMAT_U32, "pcap_walk: wire_len"}, {4, GW_FORMAT_U32, "pcap_walk: cap_len"},
    };
    Py_buffer views[5];
    if (typed_views(objects, views, specs, 1, 0) != 0) return NULL;
    if (typed_views(objects + 1, views + 1, specs + 1, 4, 1) != 0) {
        gw_release(views, 1);
        return NULL;
    }
    int64_t capacity = gw_len(&views[1]);
    if (same_lengths(views + 1, 4, "pcap_walk") != 0) goto fail;
    if (start < 0) {
        PyErr_Format(PyExc_ValueError, "pcap_walk: start %lld is negative", start);
        goto fail;
    }
    if (n < 0 || n > capacity) {
        PyErr_Format(PyExc_ValueError, "pcap_walk: row %lld is outside arrays of %lld rows", n, (long long)capacity);
        goto fail;
    }
    if (header_bytes < PCAP_RECORD_HEADER_BYTES) {
        PyErr_Format(PyExc_ValueError, "pcap_walk: header_bytes %lld is less than %d", header_bytes, PCAP_RECORD_HEADER_BYTES);
        goto fail;
    }
    int64_t result[4];
    const uint8_t *buf = views[0].buf;
    int64_t end = views[0].len;
    int64_t *ts_ns = views[1].buf, *frame_offset = views[2].buf;
    uint32_t *wire_len = views[3].buf, *cap_len = views[4].buf;
    Py_BEGIN_ALLOW_THREADS
    if (big_endian)
        pcap_walk_order(buf, end, start, limit, n, 1, header_bytes, frac_to_ns, max_len, ts_ns, frame_offset, wire_len,
                        cap_len, capacity, result);
    else
        pcap_walk_order(buf, end, start, limit, n, 0, header_bytes, frac_to_ns, max_len, ts_ns, frame_offset, wire_len,
                        cap_len, capacity, result);
    Py_END_ALLOW_THREADS
    gw_release(views, 5);
    return Py_BuildValue("LLLL", (long long)result[0], (long long)result[1], (long long)result[2], (long long)result[3]);
fail:
    gw_release(views, 5);
    return NULL;
}

/* Whether a record header at ``p`` looks like this file's: lengths and timestamp in range. */
static inline int pcap_plausible(const uint8_t *buf, int64_t p, int64_t end, int big_endian, int64_t header_bytes,
                                 int64_t frac_to_ns, int64_t max_len, int64_t first_seconds) {
    if (end - p < header_bytes) return 0;
    const uint8_t *h = buf + p;
    int64_t caplen = (int64_t)gw_u32(h + PCAP_CAPTURED_LENGTH, big_endian);
    int64_t original = (int64_t)gw_u32(h + PCAP_ORIGINAL_LENGTH, big_endian);
    int64_t fraction = (int64_t)gw_u32(h + PCAP_TS_FRACTION, big_endian);
    int64_t seconds = (int64_t)gw_u32(h + PCAP_TS_SECONDS, big_endian);
    int64_t apart = (int64_t)((uint64_t)seconds - (uint64_t)first_seconds);
    if (apart < 0) apart = (int64_t)(0 - (uint64_t)apart);
    return caplen <= max_len && caplen <= original && end - p - header_bytes >= caplen &&
           wrap_mul(fraction, frac_to_ns) < 1000000000 && apart <= PCAP_PLAUSIBLE_SPAN_SECONDS;
}

PyDoc_STRVAR(pcap_resync_doc,
"pcap_resync(buf, start, stop, big_endian, header_bytes, frac_to_ns, max_len, first_seconds)\n"
"--\n\n"
"The first offset in [start, stop) where RESYNC_RECORDS plausible records follow one another; -1 if none.\n\n"
"A record is plausible when its lengths are in range and fit in ``buf`` (uint8), its fraction is under a second and\n"
"its time within PLAUSIBLE_SPAN_SECONDS of ``first_seconds``.  Runs without the GIL.");

static PyObject *py_pcap_resync(PyObject *self, PyObject *args) {
    PyObject *object;
    long long start, stop, header_bytes, frac_to_ns, max_len, first_seconds;
    int big_endian;
    if (!PyArg_ParseTuple(args, "OLLpLLLL:pcap_resync", &object, &start, &stop, &big_endian, &header_bytes, &frac_to_ns,
                          &max_len, &first_seconds))
        return NULL;
    Py_buffer view;
    if (gw_typed_view(object, &view, 1, GW_FORMAT_U8, 0, "pcap_resync: buf") != 0) return NULL;
    if (start < 0 || header_bytes < PCAP_RECORD_HEADER_BYTES) {
        PyErr_Format(PyExc_ValueError, "pcap_resync: start %lld is negative or header_bytes %lld is less than %d", start,
                     header_bytes, PCAP_RECORD_HEADER_BYTES);
        PyBuffer_Release(&view);
        return NULL;
    }
    const uint8_t *buf = view.buf;
    int64_t end = view.len;
    int64_t found = -1;
    if (stop > end) stop = end; /* no record starts at or past the end: the offsets cut off here are never found */
    Py_BEGIN_ALLOW_THREADS
    for (int64_t p = start; p < stop; p++) {
        int64_t q = p;
        int chain = 0;
        while (chain < PCAP_RESYNC_RECORDS &&
               pcap_plausible(buf, q, end, big_endian, header_bytes, frac_to_ns, max_len, first_seconds)) {
            q += header_bytes + (int64_t)gw_u32(buf + q + PCAP_CAPTURED_LENGTH, big_endian);
            chain++;
            if (q == end) chain = PCAP_RESYNC_RECORDS;
        }
        if (chain == PCAP_RESYNC_RECORDS) {
            found = p;
            break;
        }
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    return PyLong_FromLongLong(found);
}

/* ---------------------------------------------------------------- pcapng */

/* Convert timestamp units to nanoseconds; resol is the raw if_tsresol byte (pcapng 4.2). */
static int64_t units_to_ns(uint64_t units, int64_t resol) {
    int64_t exponent = resol & 0x7F;
    if (resol & 0x80) { /* a negative power of 2 */
        if (exponent <= 30) {
            uint64_t whole = units >> exponent;
            uint64_t frac = units & (((uint64_t)1 << exponent) - 1);
            return wrap_add(wrap_mul((int64_t)whole, 1000000000), (int64_t)((frac * 1000000000u) >> exponent));
        }
        return float_to_int64((double)units / float_power(2.0, exponent) * 1e9);
    }
    if (exponent <= 9) return wrap_mul((int64_t)units, POW10[9 - exponent]);
    if (exponent <= 18) return (int64_t)(units / (uint64_t)POW10[exponent - 9]);
    return float_to_int64((double)units / float_power(10.0, exponent - 9));
}

/* (if_tsresol byte, if_tsoffset seconds) from the options of an IDB body in [p, end). */
static void interface_options(const uint8_t *buf, int64_t p, int64_t end, int big_endian, int64_t *resol,
                              int64_t *offset) {
    *resol = PCAPNG_DEFAULT_TSRESOL;
    *offset = 0;
    while (p + 4 <= end) {
        int64_t code = (int64_t)gw_u16(buf + p, big_endian);
        int64_t length = (int64_t)gw_u16(buf + p + 2, big_endian);
        if (code == PCAPNG_OPTION_END || p + 4 + length > end) break;
        if (code == PCAPNG_OPTION_IF_TSRESOL && length >= 1)
            *resol = buf[p + 4];
        else if (code == PCAPNG_OPTION_IF_TSOFFSET && length >= 8)
            *offset = (int64_t)gw_u64(buf + p + 4, big_endian);
        p += 4 + ((length + 3) & ~3);
    }
}

typedef struct {
    int64_t *ts_ns;
    uint16_t *interface;
    uint16_t *link_type;
    int64_t *frame_offset;
    uint32_t *wire_len;
    uint32_t *cap_len;
    int64_t packets; /* rows of each packet array */
    uint16_t *if_link;
    uint32_t *if_snap;
    uint8_t *if_resol;
    int64_t *if_offset;
    int64_t *if_block;
    int64_t *if_section;
    int64_t interfaces; /* rows of each interface array */
} pcapng_arrays;

typedef struct {
    int64_t n, n_if, stop, reason, detail;
    int short_arrays; /* filling: the arrays ran out before the blocks did */
} pcapng_result;

#define PCAPNG_STOP(why, what)      \
    do {                            \
        r.reason = (why);           \
        r.detail = (what);          \
        goto done;                  \
    } while (0)

/* Walk every block of buf[:end]; with ``fill``, write packets and interfaces to ``a``. */
static pcapng_result pcapng_walk_blocks(const uint8_t *buf, int64_t end, int fill, const pcapng_arrays *a) {
    pcapng_result r = {0, 0, 0, PCAPNG_REASON_NONE, 0, 0};
    int64_t p = 0;
    int64_t n = 0;
    int64_t n_if = 0;              /* interfaces across the file */
    int64_t section_first_if = 0;  /* global index of the current section's interface 0 */
    int64_t section = -1;
    int big_endian = 0;
    int64_t ahead = 0; /* prefetch_ahead's */
    while (p < end) {
        if (end - p < 8) PCAPNG_STOP(PCAPNG_REASON_SHORT_BLOCK_HEADER, end - p);
        prefetch_ahead(buf, p, end, PCAPNG_PREFETCH_BYTES, &ahead);
        const uint8_t *b = buf + p;
        int64_t block_type = (int64_t)gw_u32le(b);
        if (block_type == PCAPNG_BLOCK_SECTION_HEADER) {
            if (end - p < 12) PCAPNG_STOP(PCAPNG_REASON_SHORT_BLOCK_HEADER, end - p);
            int64_t order = (int64_t)gw_u32le(b + PCAPNG_SHB_BYTE_ORDER);
            if (order == PCAPNG_BYTE_ORDER_MAGIC)
                big_endian = 0;
            else if (order == PCAPNG_BYTE_ORDER_MAGIC_SWAPPED)
                big_endian = 1;
            else
                PCAPNG_STOP(PCAPNG_REASON_BAD_BYTE_ORDER, order);
            section++;
            section_first_if = n_if;
        } else {
            block_type = (int64_t)gw_u32(b, big_endian);
        }
        int64_t length = (int64_t)gw_u32(b + PCAPNG_BLOCK_LENGTH, big_endian);
        if (length < PCAPNG_MIN_BLOCK_BYTES || length % 4 != 0) PCAPNG_STOP(PCAPNG_REASON_BAD_BLOCK_LENGTH, length);
        if (length > end - p) PCAPNG_STOP(PCAPNG_REASON_BLOCK_PAST_END, length);
        if ((int64_t)gw_u32(b + length - 4, big_endian) != length) PCAPNG_STOP(PCAPNG_REASON_TRAILER_MISMATCH, length);
        int64_t body_end = p + length - 4;
        if (block_type == PCAPNG_BLOCK_INTERFACE_DESCRIPTION) {
            if (n_if >= PCAPNG_MAX_INTERFACES) PCAPNG_STOP(PCAPNG_REASON_TOO_MANY_INTERFACES, n_if);
            if (fill) {
                if (n_if >= a->interfaces) {
                    r.short_arrays = 1;
                    goto done;
                }
                if (length >= PCAPNG_IDB_MIN_WITH_SNAPLEN) {
                    int64_t resol, offset;
                    a->if_link[n_if] = (uint16_t)gw_u16(b + PCAPNG_IDB_LINK_TYPE, big_endian);
                    a->if_snap[n_if] = (uint32_t)gw_u32(b + PCAPNG_IDB_SNAPLEN, big_endian);
                    interface_options(buf, p + PCAPNG_IDB_OPTIONS, body_end, big_endian, &resol, &offset);
                    a->if_resol[n_if] = (uint8_t)resol;
                    a->if_offset[n_if] = offset;
                } else {
                    a->if_link[n_if] = PCAPNG_UNKNOWN_LINK_TYPE;
                    a->if_resol[n_if] = PCAPNG_DEFAULT_TSRESOL;
                }
                a->if_block[n_if] = p;
                a->if_section[n_if] = section;
            }
            n_if++;
        } else if (block_type == PCAPNG_BLOCK_ENHANCED_PACKET || block_type == PCAPNG_BLOCK_PACKET_OBSOLETE) {
            if (length < PCAPNG_EPB_MIN_BYTES) PCAPNG_STOP(PCAPNG_REASON_BAD_BLOCK_LENGTH, length);
            int64_t caplen = (int64_t)gw_u32(b + PCAPNG_EPB_CAPTURED_LENGTH, big_endian);
            if (caplen > body_end - (p + PCAPNG_EPB_DATA)) PCAPNG_STOP(PCAPNG_REASON_PACKET_PAST_BLOCK, caplen);
            if (fill) {
                if (n >= a->packets) {
                    r.short_arrays = 1;
                    goto done;
                }
                int64_t local_if = block_type == PCAPNG_BLOCK_ENHANCED_PACKET
                                       ? (int64_t)gw_u32(b + PCAPNG_EPB_INTERFACE, big_endian)
                                       : (int64_t)gw_u16(b + PCAPNG_EPB_INTERFACE, big_endian);
                uint64_t units = (gw_u32(b + PCAPNG_EPB_TS_HIGH, big_endian) << 32) | gw_u32(b + PCAPNG_EPB_TS_LOW, big_endian);
                int64_t g = section_first_if + local_if;
                if (local_if < n_if - section_first_if) {
                    a->ts_ns[n] = wrap_add(units_to_ns(units, a->if_resol[g]), wrap_mul(a->if_offset[g], 1000000000));
                    a->interface[n] = (uint16_t)g;
                    a->link_type[n] = a->if_link[g];
                } else {
                    a->ts_ns[n] = units_to_ns(units, PCAPNG_DEFAULT_TSRESOL);
                    a->interface[n] = PCAPNG_UNKNOWN_LINK_TYPE;
                    a->link_type[n] = PCAPNG_UNKNOWN_LINK_TYPE;
                }
                a->frame_offset[n] = p + PCAPNG_EPB_DATA;
                a->wire_len[n] = (uint32_t)gw_u32(b + PCAPNG_EPB_ORIGINAL_LENGTH, big_endian);
                a->cap_len[n] = (uint32_t)caplen;
            }
            n++;
        } else if (block_type == PCAPNG_BLOCK_SIMPLE_PACKET) {
            if (length < PCAPNG_SPB_MIN_BYTES) PCAPNG_STOP(PCAPNG_REASON_BAD_BLOCK_LENGTH, length);
            if (fill) {
                if (n >= a->packets) {
                    r.short_arrays = 1;
                    goto done;
                }
                int64_t original = (int64_t)gw_u32(b + PCAPNG_SPB_ORIGINAL_LENGTH, big_endian);
                int64_t room = body_end - (p + PCAPNG_SPB_DATA);
                int64_t caplen = original < room ? original : room;
                if (n_if > section_first_if) {
                    int64_t g = section_first_if;
                    int64_t snap = a->if_snap[g];
                    if (snap > 0 && snap < caplen) caplen = snap;
                    a->interface[n] = (uint16_t)g;
                    a->link_type[n] = a->if_link[g];
                } else {
                    a->interface[n] = PCAPNG_UNKNOWN_LINK_TYPE;
                    a->link_type[n] = PCAPNG_UNKNOWN_LINK_TYPE;
                }
                a->ts_ns[n] = 0; /* a Simple Packet Block carries no timestamp (pcapng 4.4) */
                a->frame_offset[n] = p + PCAPNG_SPB_DATA;
                a->wire_len[n] = (uint32_t)original;
                a->cap_len[n] = (uint32_t)caplen;
            }
            n++;
        }
        p += length;
    }
done:
    r.n = n;
    r.n_if = n_if;
    r.stop = p;
    return r;
}

PyDoc_STRVAR(pcapng_walk_doc,
"pcapng_walk(buf, fill, ts_ns, interface, link_type, frame_offset, wire_len, cap_len,\n"
"            if_link, if_snap, if_resol, if_offset, if_block, if_section)\n"
"--\n\n"
"Walk every block of ``buf`` (uint8) from its first byte; return (packets, interfaces, stop offset, reason, detail).\n\n"
"With ``fill`` false the walk only counts; with ``fill`` true it writes each packet's row of the six packet arrays\n"
"(int64, uint16, uint16, int64, uint32, uint32) and each interface's row of the six interface arrays (uint16,\n"
"uint32, uint8, int64, int64, int64), which must hold the rows a count walk found: ValueError if they run out.\n"
"Runs without the GIL.");

static PyObject *py_pcapng_walk(PyObject *self, PyObject *args) {
    PyObject *objects[13];
    int fill;
    if (!PyArg_ParseTuple(args, "OpOOOOOOOOOOOO:pcapng_walk", &objects[0], &fill, &objects[1], &objects[2], &objects[3],
                          &objects[4], &objects[5], &objects[6], &objects[7], &objects[8], &objects[9], &objects[10],
                          &objects[11], &objects[12]))
        return NULL;
    static const view_spec specs[13] = {
        {1, GW_FORMAT_U8, "pcapng_walk: buf"},
        {8, GW_FORMAT_I64, "pcapng_walk: ts_ns"},
        {2, GW_FORMAT_U16, "pcapng_walk: interface"},
        {2, GW_FORMAT_U16, "pcapng_walk: link_type"},
        {8, GW_FORMAT_I64, "pcapng_walk: frame_offset"},
        {4, GW_FORMAT_U32, "pcapng_walk: wire_len"},
        {4, GW_FORMAT_U32, "pcapng_walk: cap_len"},
        {2, GW_FORMAT_U16, "pcapng_walk: if_link"},
        {4, GW_FORMAT_U32, "pcapng_walk: if_snap"},
        {1, GW_FORMAT_U8, "pcapng_walk: if_resol"},
        {8, GW_FORMAT_I64, "pcapng_walk: if_offset"},
        {8, GW_FORMAT_I64, "pcapng_walk: if_block"},
        {8, GW_FORMAT_I64, "pcapng_walk: if_section"},
    };
    Py_buffer views[13];
    if (typed_views(objects, views, specs, 1, 0) != 0) return NULL;
    if (typed_views(objects + 1, views + 1, specs + 1, 12, 1) != 0) {
        gw_release(views, 1);
        return NULL;
    }
    if (same_lengths(views + 1, 6, "pcapng_walk: packet arrays") != 0 ||
        same_lengths(views + 7, 6, "pcapng_walk: interface arrays") != 0) {
        gw_release(views, 13);
        return NULL;
    }
    pcapng_arrays a = {
        views[1].buf, views[2].buf, views[3].buf, views[4].buf, views[5].buf, views[6].buf, gw_len(&views[1]),
        views[7].buf, views[8].buf, views[9].buf, views[10].buf, views[11].buf, views[12].buf, gw_len(&views[7]),
    };
    pcapng_result r;
    const uint8_t *buf = views[0].buf;
    int64_t end = views[0].len;
    Py_BEGIN_ALLOW_THREADS
    r = pcapng_walk_blocks(buf, end, fill, &a);
    Py_END_ALLOW_THREADS
    gw_release(views, 13);
    if (r.short_arrays) {
        PyErr_Format(PyExc_ValueError,
                     "pcapng_walk: the arrays (%lld packets, %lld interfaces) are too short for the blocks at offset %lld",
                     (long long)a.packets, (long long)a.interfaces, (long long)r.stop);
        return NULL;
    }
    return Py_BuildValue("LLLLL", (long long)r.n, (long long)r.n_if, (long long)r.stop, (long long)r.reason,
                         (long long)r.detail);
}

/* ---------------------------------------------------------------- stream */

PyDoc_STRVAR(last_section_doc,
"last_section(buf, stop)\n"
"--\n\n"
"(offset of the last Section Header Block among the whole blocks of buf[:stop], how many there are).\n\n"
"``buf`` is uint8 and buf[:stop] whole blocks, as a pcapng_walk that stopped at ``stop`` found them: ValueError\n"
"when a block header there cannot be read or its length is less than a block's.");

static PyObject *py_last_section(PyObject *self, PyObject *args) {
    PyObject *object;
    long long stop;
    if (!PyArg_ParseTuple(args, "OL:last_section", &object, &stop)) return NULL;
    Py_buffer view;
    if (gw_typed_view(object, &view, 1, GW_FORMAT_U8, 0, "last_section: buf") != 0) return NULL;
    const uint8_t *buf = view.buf;
    int64_t end = view.len;
    if (stop < 0 || stop > end) {
        PyErr_Format(PyExc_ValueError, "last_section: stop %lld is outside a buffer of %lld bytes", stop, (long long)end);
        PyBuffer_Release(&view);
        return NULL;
    }
    int64_t p = 0, last = 0, count = 0;
    int big_endian = 0, bad = 0;
    Py_BEGIN_ALLOW_THREADS
    while (p < stop) {
        if (end - p < 8) {
            bad = 1;
            break;
        }
        if (gw_u32le(buf + p) == PCAPNG_BLOCK_SECTION_HEADER) {
            if (end - p < 12) {
                bad = 1;
                break;
            }
            last = p;
            count++;
            big_endian = gw_u32le(buf + p + PCAPNG_SHB_BYTE_ORDER) != PCAPNG_BYTE_ORDER_MAGIC;
        }
        int64_t length = (int64_t)gw_u32(buf + p + PCAPNG_BLOCK_LENGTH, big_endian);
        if (length < PCAPNG_MIN_BLOCK_BYTES) {
            bad = 1;
            break;
        }
        p += length;
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    if (bad) {
        PyErr_Format(PyExc_ValueError, "last_section: no whole block at offset %lld of buf[:%lld]", (long long)p, stop);
        return NULL;
    }
    return Py_BuildValue("LL", (long long)last, (long long)count);
}

/* ---------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"pcap_walk", py_pcap_walk, METH_VARARGS, pcap_walk_doc},
    {"pcap_resync", py_pcap_resync, METH_VARARGS, pcap_resync_doc},
    {"pcapng_walk", py_pcapng_walk, METH_VARARGS, pcapng_walk_doc},
    {"last_section", py_last_section, METH_VARARGS, last_section_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_walk",
    "The record walkers of the pcap and pcapng readers (pcap.py, pcapng.py, stream.py); the constants they share\n"
    "with those modules are attributes here, checked equal by tests/test_native_capture.py.",
    -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__walk(void) {
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    struct {
        const char *name;
        long value;
    } constants[] = {
        {"PCAP_REASON_NONE", PCAP_REASON_NONE},
        {"PCAP_REASON_SHORT_HEADER", PCAP_REASON_SHORT_HEADER},
        {"PCAP_REASON_SHORT_DATA", PCAP_REASON_SHORT_DATA},
        {"PCAP_REASON_TOO_LONG", PCAP_REASON_TOO_LONG},
        {"PCAP_REASON_FULL", PCAP_REASON_FULL},
        {"PCAP_RECORD_HEADER_BYTES", PCAP_RECORD_HEADER_BYTES},
        {"PCAP_PREFETCH_BYTES", PCAP_PREFETCH_BYTES},
        {"PCAP_RESYNC_RECORDS", PCAP_RESYNC_RECORDS},
        {"PCAP_PLAUSIBLE_SPAN_SECONDS", PCAP_PLAUSIBLE_SPAN_SECONDS},
        {"PCAPNG_BLOCK_SECTION_HEADER", PCAPNG_BLOCK_SECTION_HEADER},
        {"PCAPNG_BLOCK_INTERFACE_DESCRIPTION", PCAPNG_BLOCK_INTERFACE_DESCRIPTION},
        {"PCAPNG_BLOCK_PACKET_OBSOLETE", PCAPNG_BLOCK_PACKET_OBSOLETE},
        {"PCAPNG_BLOCK_SIMPLE_PACKET", PCAPNG_BLOCK_SIMPLE_PACKET},
        {"PCAPNG_BLOCK_ENHANCED_PACKET", PCAPNG_BLOCK_ENHANCED_PACKET},
        {"PCAPNG_BYTE_ORDER_MAGIC", PCAPNG_BYTE_ORDER_MAGIC},
        {"PCAPNG_OPTION_END", PCAPNG_OPTION_END},
        {"PCAPNG_OPTION_IF_TSRESOL", PCAPNG_OPTION_IF_TSRESOL},
        {"PCAPNG_OPTION_IF_TSOFFSET", PCAPNG_OPTION_IF_TSOFFSET},
        {"PCAPNG_DEFAULT_TSRESOL", PCAPNG_DEFAULT_TSRESOL},
        {"PCAPNG_MIN_BLOCK_BYTES", PCAPNG_MIN_BLOCK_BYTES},
        {"PCAPNG_MAX_INTERFACES", PCAPNG_MAX_INTERFACES},
        {"PCAPNG_UNKNOWN_LINK_TYPE", PCAPNG_UNKNOWN_LINK_TYPE},
        {"PCAPNG_REASON_NONE", PCAPNG_REASON_NONE},
        {"PCAPNG_REASON_SHORT_BLOCK_HEADER", PCAPNG_REASON_SHORT_BLOCK_HEADER},
        {"PCAPNG_REASON_BAD_BLOCK_LENGTH", PCAPNG_REASON_BAD_BLOCK_LENGTH},
        {"PCAPNG_REASON_BLOCK_PAST_END", PCAPNG_REASON_BLOCK_PAST_END},
        {"PCAPNG_REASON_BAD_BYTE_ORDER", PCAPNG_REASON_BAD_BYTE_ORDER},
        {"PCAPNG_REASON_PACKET_PAST_BLOCK", PCAPNG_REASON_PACKET_PAST_BLOCK},
        {"PCAPNG_REASON_TOO_MANY_INTERFACES", PCAPNG_REASON_TOO_MANY_INTERFACES},
        {"PCAPNG_REASON_TRAILER_MISMATCH", PCAPNG_REASON_TRAILER_MISMATCH},
    };
    for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++) {
        if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) != 0) {
            Py_DECREF(m);
            return NULL;
        }
    }
    return m;
}
