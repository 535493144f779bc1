"""The classic libpcap file format (draft-ietf-opsawg-pcap): a 24-byte file header, then 16-byte record headers."""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..schema import COLUMN_DTYPES
from . import _walk as _native
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
WALKED = ("ts_ns", "frame_offset", "wire_len_bytes", "cap_len_bytes")
PARALLEL_WALK_BYTES = 64 << 20  # smaller files are walked by one thread
MAX_WALK_THREADS = 4
RESYNC_RECORDS = 16  # plausible records in a row that mark a record boundary
RESYNC_SEARCH_BYTES = 4 << 20
PLAUSIBLE_SPAN_SECONDS = 366 * 86400  # a record's time is within a year of the first record's


def magic_byte_order(head: bytes) -> tuple[str, int] | None:
    """Byte order ('<' or '>') and magic of a pcap file header, or None when it is not pcap."""
    if len(head) < 4:
        return None
    for order in "<>":
        (magic,) = struct.unpack(order + "I", head[:4])
        if magic in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS, MAGIC_MODIFIED):
            return order, magic
    return None


# The record walkers are C (_walk.c; pcap.h holds the constants they share with this module).  Both release the GIL,
# so the pieces of a large file are walked in threads.
#
# _walk(buf, start, limit, n, big_endian, header_bytes, frac_to_ns, max_len, ts_ns, frame_offset, wire_len, cap_len):
#   walk the records starting before offset ``limit`` from offset ``start``, filling the arrays from row ``n``.
#   Returns (rows filled, stop offset, reason, detail); reason ``_REASON_FULL`` asks to be called again with larger
#   arrays.  Each record's length depends on the one before, so the walk would wait on memory at every record; it
#   prefetches every cache line up to PREFETCH_BYTES ahead, which brings later records into cache meanwhile.
# _resync(buf, start, stop, big_endian, header_bytes, frac_to_ns, max_len, first_seconds): the first offset in
#   [start, stop) where RESYNC_RECORDS plausible records follow one another; -1 if none.  A record header is
#   plausible when its lengths and timestamp are in range: caplen at most max_len and the original length, the
#   record inside ``buf``, the fraction under a second, the seconds within PLAUSIBLE_SPAN_SECONDS of ``first_seconds``.
_walk = _native.pcap_walk
_resync = _native.pcap_resync


@dataclass(frozen=True)
class PcapLayout:
    """How the records of one pcap file are laid out, read from its file header."""

    big_endian: bool
    header_bytes: int  # of each record header
    frac_to_ns: int  # nanoseconds per unit of the timestamp's fraction
    max_len: int  # the most captured bytes a record may claim
    link_type: int
    snaplen: int
    format: str  # "pcap" or "pcap-ns"

    @classmethod
    def from_header(cls, head: bytes, order: str, magic: int) -> PcapLayout:
        """The layout of a file whose first ``FILE_HEADER.size`` bytes are ``head``."""
        _, _, _, _, _, snaplen, network = struct.unpack(order + FILE_HEADER.format, head[: FILE_HEADER.size])
        return cls(
            big_endian=order == ">",
            header_bytes=MODIFIED_RECORD_HEADER_BYTES if magic == MAGIC_MODIFIED else RECORD_HEADER_BYTES,
            frac_to_ns=1 if magic == MAGIC_NANOSECONDS else 1000,
            max_len=max(MAX_RECORD_BYTES, snaplen),
            link_type=network & LINKTYPE_MASK,
            snaplen=snaplen,
            format="pcap-ns" if magic == MAGIC_NANOSECONDS else "pcap",
        )

    @property
    def interface(self) -> Interface:
        return Interface(0, self.link_type, self.snaplen, ts_resolution="ns" if self.frac_to_ns == 1 else "us")

    def walk(self, data: np.ndarray, start: int) -> tuple[dict[str, np.ndarray], int, int, int]:
        """The record columns (``schema.RECORD_COLUMNS``) of the whole records of ``data`` from offset ``start``.

        Returns (columns, stop offset, reason, detail): reason ``_REASON_NONE`` when the walk reached the end
        of ``data``, else why it stopped at ``stop`` (``describe`` words it).  A large file is walked in
        pieces by several threads; the result is the same as one walk from ``start``.
        """
        pieces = self._walk_pieces(data, start) or [self._walk_piece(data, start, len(data))]
        walked = {name: np.concatenate([p[0][name] for p in pieces]) if len(pieces) > 1 else pieces[0][0][name] for name in WALKED}
        _, stop, reason, detail = pieces[-1]
        n = len(walked["ts_ns"])
        walked["interface"] = np.zeros(n, COLUMN_DTYPES["interface"])
        walked["link_type"] = np.full(n, self.link_type, COLUMN_DTYPES["link_type"])
        return walked, stop, reason, detail

    def _walk_piece(self, data: np.ndarray, start: int, limit: int) -> tuple[dict[str, np.ndarray], int, int, int]:
        """Walk the records that start in [start, limit); (columns, stop, reason, detail)."""
        capacity = max(MIN_CAPACITY, (limit - start) // ESTIMATED_RECORD_BYTES)
        arrays = {name: np.empty(capacity, COLUMN_DTYPES[name]) for name in WALKED}
        n, stop = 0, start
        args = (self.big_endian, self.header_bytes, self.frac_to_ns, self.max_len)
        while True:
            n, stop, reason, detail = _walk(data, stop, limit, n, *args, *arrays.values())
            if reason != _REASON_FULL:
                break
            arrays = {name: _grown(array, 2 * len(array)) for name, array in arrays.items()}
        return {name: array[:n] for name, array in arrays.items()}, int(stop), int(reason), int(detail)

    def _walk_pieces(self, data: np.ndarray, start: int) -> list[tuple[dict[str, np.ndarray], int, int, int]] | None:
        """The walk split over threads, or None when the file is small or a piece's start cannot be trusted.

        Each piece starts at the first offset past its share of the file where ``RESYNC_RECORDS`` plausible
        records follow one another; a piece is kept only if the walk of the piece before it ends exactly
        there, so a wrong guess is caught and costs a walk by one thread, never a wrong record.
        """
        threads = min(os.cpu_count() or 1, MAX_WALK_THREADS)
        if threads < 2 or len(data) - start < PARALLEL_WALK_BYTES:
            return None
        first_seconds = u32_host(data, start, self.big_endian) if len(data) - start >= self.header_bytes else 0
        cuts = [start]
        for k in range(1, threads):
            guess = start + (len(data) - start) * k // threads
            found = _resync(data, guess, min(guess + RESYNC_SEARCH_BYTES, len(data)), self.big_endian, self.header_bytes,
                            self.frac_to_ns, self.max_len, first_seconds)
            if found < 0:
                return None
            cuts.append(found)
        bounds = list(zip(cuts, cuts[1:] + [len(data)]))
        with ThreadPoolExecutor(threads) as pool:  # the walk releases the GIL
            pieces = list(pool.map(lambda b: self._walk_piece(data, *b), bounds))
        kept = []
        for piece, (_, limit) in zip(pieces, bounds):
            kept.append(piece)
            _, stop, reason, _ = piece
            if reason != _REASON_NONE:
                return kept  # damage: the records after it are not the file's, as in one walk
            if stop != limit:
                return None  # a piece began off a record boundary
        return kept

    def describe(self, reason: int, detail: int, remaining: int) -> str:
        """Why a walk stopped, ``remaining`` bytes before the end of the data."""
        return _describe(reason, detail, remaining, self.header_bytes, self.max_len)


def u32_host(data: np.ndarray, offset: int, big_endian: bool) -> int:
    return struct.unpack_from(">I" if big_endian else "<I", data, offset)[0]


def index_pcap(path: str, data: np.ndarray, order: str, magic: int) -> RecordIndex:
    """Index every record of a pcap file in one pass; damage part way keeps the records before it."""
    from ..errors import CaptureError

    if len(data) < FILE_HEADER.size:
        raise CaptureError(path, 0, f"file ends inside the pcap file header: {len(data)} bytes, need {FILE_HEADER.size}")
    layout = PcapLayout.from_header(bytes(data[: FILE_HEADER.size]), order, magic)
    columns, stop, reason, detail = layout.walk(data, FILE_HEADER.size)
    damage = None
    if reason != _REASON_NONE:
        damage = Damage(stop, layout.describe(reason, detail, len(data) - stop))
    return RecordIndex(path, layout.format, data, columns, [layout.interface], damage)


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
