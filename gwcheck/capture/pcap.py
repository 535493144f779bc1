"""The classic libpcap file format (draft-ietf-opsawg-pcap): a 24-byte file header, then 16-byte record headers."""

from __future__ import annotations

import struct

import numpy as np

from .._jit import jit, u32
from ..schema import COLUMN_DTYPES
from .records import Damage, Interface, RecordIndex

MAGIC_MICROSECONDS = 0xA1B2C3D4
MAGIC_NANOSECONDS = 0xA1B23C4D
MAGIC_MODIFIED = 0xA1B2CD34  # Kuznetzov's patched libpcap: 8 more bytes per record header
FILE_HEADER = struct.Struct("IHHiIII")  # magic, major, minor, thiszone, sigfigs, snaplen, network
RECORD_HEADER_BYTES = 16
MODIFIED_RECORD_HEADER_BYTES = 24
MAX_RECORD_BYTES = 262_144  # libpcap's MAXIMUM_SNAPLEN; a larger snaplen in the header raises it
LINKTYPE_MASK = 0x0000FFFF  # the upper bits of "network" carry the FCS length (pcap draft, section 4)

_REASON_NONE = 0
_REASON_SHORT_HEADER = 1
_REASON_SHORT_DATA = 2
_REASON_TOO_LONG = 3
_REASON_FULL = 4

# The record index is allocated for this many bytes per record and grown when the file holds more;
# pages never written are never committed, so a generous estimate costs address space only.
ESTIMATED_RECORD_BYTES = 64
MIN_CAPACITY = 1024
PREFETCH_BYTES = 4096


def magic_byte_order(head: bytes) -> tuple[str, int] | None:
    """Byte order ('<' or '>') and magic of a pcap file header, or None when it is not pcap."""
    if len(head) < 4:
        return None
    for order in "<>":
        (magic,) = struct.unpack(order + "I", head[:4])
        if magic in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS, MAGIC_MODIFIED):
            return order, magic
    return None


@jit
def _walk(buf, start, n, big_endian, header_bytes, frac_to_ns, max_len, ts_ns, frame_offset, wire_len, cap_len):
    """Walk the records from offset ``start``, filling the arrays from row ``n``.

    Returns (rows filled, stop offset, reason, detail); reason ``_REASON_FULL`` asks to be called again
    with larger arrays.
    """
    p = start
    end = buf.shape[0]
    capacity = ts_ns.shape[0]
    while p < end:
        if n == capacity:
            return n, p, _REASON_FULL, 0
        if end - p < header_bytes:
            return n, p, _REASON_SHORT_HEADER, end - p
        caplen = u32(buf, p + 8, big_endian)
        if caplen > max_len:
            return n, p, _REASON_TOO_LONG, caplen
        if end - p - header_bytes < caplen:
            return n, p, _REASON_SHORT_DATA, caplen
        ahead = p + PREFETCH_BYTES
        if ahead < end:
            frame_offset[n] = buf[ahead]  # an independent load that brings later records into cache
        seconds = np.int64(u32(buf, p, big_endian))
        fraction = np.int64(u32(buf, p + 4, big_endian))
        ts_ns[n] = seconds * 1_000_000_000 + fraction * frac_to_ns
        frame_offset[n] = p + header_bytes
        wire_len[n] = u32(buf, p + 12, big_endian)
        cap_len[n] = caplen
        n += 1
        p += header_bytes + caplen
    return n, p, _REASON_NONE, 0


def index_pcap(path: str, data: np.ndarray, order: str, magic: int) -> RecordIndex:
    """Index every record of a pcap file in one pass; damage part way keeps the records before it."""
    from ..errors import CaptureError

    if len(data) < FILE_HEADER.size:
        raise CaptureError(path, 0, f"file ends inside the pcap file header: {len(data)} bytes, need {FILE_HEADER.size}")
    _, _, _, _, _, snaplen, network = struct.unpack(order + FILE_HEADER.format, bytes(data[: FILE_HEADER.size]))
    big_endian = order == ">"
    header_bytes = MODIFIED_RECORD_HEADER_BYTES if magic == MAGIC_MODIFIED else RECORD_HEADER_BYTES
    frac_to_ns = 1 if magic == MAGIC_NANOSECONDS else 1000
    max_len = max(MAX_RECORD_BYTES, snaplen)
    walked = ("ts_ns", "frame_offset", "wire_len_bytes", "cap_len_bytes")
    capacity = max(MIN_CAPACITY, (len(data) - FILE_HEADER.size) // ESTIMATED_RECORD_BYTES)
    arrays = {name: np.empty(capacity, COLUMN_DTYPES[name]) for name in walked}
    n, stop = 0, FILE_HEADER.size
    while True:
        n, stop, reason, detail = _walk(data, stop, n, big_endian, header_bytes, frac_to_ns, max_len, *arrays.values())
        if reason != _REASON_FULL:
            break
        arrays = {name: _grown(array, 2 * len(array)) for name, array in arrays.items()}
    columns = {name: array[:n] for name, array in arrays.items()}
    link_type = network & LINKTYPE_MASK
    columns["interface"] = np.zeros(n, COLUMN_DTYPES["interface"])
    columns["link_type"] = np.full(n, link_type, COLUMN_DTYPES["link_type"])
    damage = None
    if reason != _REASON_NONE:
        damage = Damage(int(stop), _describe(reason, int(detail), len(data) - int(stop), header_bytes, max_len))
    fmt = "pcap-ns" if magic == MAGIC_NANOSECONDS else "pcap"
    interface = Interface(0, link_type, snaplen, ts_resolution="ns" if frac_to_ns == 1 else "us")
    return RecordIndex(path, fmt, data, columns, [interface], damage)


def _grown(array: np.ndarray, size: int) -> np.ndarray:
    bigger = np.empty(size, array.dtype)
    bigger[: len(array)] = array
    return bigger


def _describe(reason: int, detail: int, remaining: int, header_bytes: int, max_len: int) -> str:
    if reason == _REASON_SHORT_HEADER:
        return f"file ends inside a record header: {detail} bytes, need {header_bytes}"
    if reason == _REASON_SHORT_DATA:
        return (
            f"record of {detail} captured bytes runs past the end of the file "
            f"({remaining - header_bytes} bytes remain after its header)"
        )
    return f"record claims {detail} captured bytes, more than the maximum of {max_len}"
