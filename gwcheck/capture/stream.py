"""Capture byte streams in, record batches out: pcap or pcapng (plain or gzip) read as it arrives, from a pipe such as
``tcpdump -w -`` or from a file larger than memory.

Bytes are gathered until whole records are present; the compiled walkers of ``pcap`` and ``pcapng`` walk them and
the incomplete tail waits for the next read.  A pcapng batch is walked behind a copy of its section's header and
interface blocks, so that the walker sees the byte order and interfaces the batch's packets refer to.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ..errors import CaptureError, NotACaptureError
from . import _walk as _native
from . import pcap, pcapng
from .pcapng import BLOCK_INTERFACE_DESCRIPTION, BLOCK_SECTION_HEADER, BYTE_ORDER_MAGIC
from .records import Damage, Interface
from .source import GZIP_MAGIC

DEFAULT_CHUNK_BYTES = 1 << 20  # bytes asked of the stream per read
MAX_BLOCK_BYTES = 1 << 26  # a pcapng block claiming more is taken as damage rather than waited for
PCAPNG_FIRST_BLOCK_BYTES = 28  # the smallest Section Header Block
SECTION_HEADER_FIXED_BYTES = 12  # type, length and byte-order magic: enough to read any block's length


@dataclass
class RecordBatch:
    """The whole records of one read: columns over ``data``, which holds their frames."""

    data: np.ndarray  # uint8; frame k is data[frame_offset[k] : frame_offset[k] + cap_len_bytes[k]]
    columns: dict[str, np.ndarray]  # schema.RECORD_COLUMNS
    shift: int  # frame_offset + shift is the frame's offset in the (decompressed) stream

    def __len__(self) -> int:
        return len(self.columns["ts_ns"])


class CaptureStream:
    """Read a capture from a binary stream incrementally: iterating yields a ``RecordBatch`` per read that completes records.

    ``format``, ``interfaces``, ``records`` and ``damage`` describe what has been read so far.  A stream that
    is not a capture raises ``NotACaptureError`` (``CaptureError`` when it ends inside the file header); damage
    part way, or a stream cut inside a record, ends the iteration with ``damage`` set.  Every byte read is
    written to ``tee`` first, when given.
    """

    def __init__(self, stream: BinaryIO, name: str = "<stream>", chunk_bytes: int = DEFAULT_CHUNK_BYTES, tee: BinaryIO | None = None) -> None:
        if chunk_bytes < 1:
            raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
        self.name = name
        self.format: str | None = None
        self.interfaces: list[Interface] = []
        self.records = 0
        self.damage: Damage | None = None
        self.bytes_read = 0  # as read from the stream (compressed, for gzip)
        self._stream, self._chunk_bytes, self._tee = stream, chunk_bytes, tee
        self._read = getattr(stream, "read1", None) or stream.read  # read1: what is there, without waiting for more
        self._inflate: _Gunzip | None = None
        self._walker: _PcapWalker | _PcapngWalker | None = None

    def __iter__(self) -> Iterator[RecordBatch]:
        pending = bytearray()  # bytes from the first record not yet walked
        base = 0  # offset of pending[0] in the (decompressed) stream
        need = 1  # bytes pending must hold before a walk can make progress
        eof = False
        while not eof:
            chunk = self._read(self._chunk_bytes)
            eof = not chunk
            if chunk:
                self.bytes_read += len(chunk)
                if self._tee is not None:
                    self._tee.write(chunk)
                    self._tee.flush()
                if self.bytes_read == len(chunk) and chunk[:1] == GZIP_MAGIC[:1]:  # no pcap or pcapng magic starts so
                    self._inflate = _Gunzip()
                pending += self._inflate.feed(chunk) if self._inflate is not None else chunk
            elif self._inflate is not None:
                self._inflate.finish()
            if self._inflate is not None and self._inflate.damage is not None:
                eof = True  # what came before the gzip error is walked below, then the iteration ends
            if len(pending) < need and not eof:
                continue
            if self._walker is None:
                header = self._start(pending, eof)
                if header is None:
                    continue
                del pending[:header]
                base += header
            batch, used, need, damage = self._walker.walk(pending, base, eof)
            if len(batch):
                self.records += len(batch)
                yield batch
            del pending[:used]
            base += used
            if damage is not None:
                self.damage = damage
                break
        if self._inflate is not None and self._inflate.damage is not None:
            self._gzip_damage()
        elif self._inflate is not None and self.damage is not None:
            self.damage = Damage(self.damage.offset, self.damage.reason + " (offset in the decompressed data)")

    def _start(self, pending: bytearray, eof: bool) -> int | None:
        """Read the file header when enough of it is there: the bytes it takes, or None to wait for more."""
        head = bytes(pending[:4])
        if len(head) < 4:
            if not eof:
                return None
            where = "after gzip decompression, " if self._inflate is not None else ""
            raise NotACaptureError(self.name, 0, f"{where}stream ends after {len(pending)} bytes: not a pcap or pcapng capture")
        order = pcap.magic_byte_order(head)
        if order is not None:
            if len(pending) < pcap.FILE_HEADER.size:
                if not eof:
                    return None
                raise CaptureError(self.name, 0, f"stream ends inside the pcap file header: {len(pending)} bytes, need {pcap.FILE_HEADER.size}")
            self._walker = _PcapWalker(pcap.PcapLayout.from_header(bytes(pending[: pcap.FILE_HEADER.size]), *order))
            self.format = self._walker.layout.format
            self.interfaces = [self._walker.layout.interface]
            return pcap.FILE_HEADER.size
        if pcapng.is_pcapng(head):
            if len(pending) < PCAPNG_FIRST_BLOCK_BYTES:
                if not eof:
                    return None
                raise CaptureError(self.name, 0, f"stream ends inside the first Section Header Block: {len(pending)} bytes, need {PCAPNG_FIRST_BLOCK_BYTES}")
            self._walker = _PcapngWalker(self.name, self.interfaces)
            self.format = "pcapng"
            return 0
        where = "after gzip decompression, " if self._inflate is not None else ""
        raise NotACaptureError(self.name, 0, f"{where}magic number 0x{head.hex()} is neither pcap nor pcapng: not a capture")

    def _gzip_damage(self) -> None:
        offset, reason = self._inflate.damage
        if self.damage is not None:
            reason += f"; {self.damage.reason} at byte {self.damage.offset} of the decompressed data"
        self.damage = Damage(offset, reason)

    @property
    def full_format(self) -> str | None:
        """The format as ``read_packets`` names it: ``pcap``, ``pcap-ns`` or ``pcapng``, with ``+gzip`` when compressed."""
        if self.format is None:
            return None
        return self.format + ("+gzip" if self._inflate is not None else "")


class _PcapWalker:
    """The records of a pcap stream after its file header."""

    def __init__(self, layout: pcap.PcapLayout) -> None:
        self.layout = layout

    def walk(self, pending: bytearray, base: int, eof: bool) -> tuple[RecordBatch, int, int, Damage | None]:
        """Walk the whole records at the start of ``pending``: (batch, bytes used, bytes needed next, damage)."""
        data = np.frombuffer(bytes(pending), np.uint8)
        columns, stop, reason, detail = self.layout.walk(data, 0)
        batch = RecordBatch(data, columns, base)
        need = len(pending) - stop + 1  # counted from the first byte left once this walk's records are taken
        damage = None
        if reason == pcap._REASON_SHORT_HEADER:
            need = self.layout.header_bytes
        elif reason == pcap._REASON_SHORT_DATA:
            need = self.layout.header_bytes + detail
        if reason == pcap._REASON_TOO_LONG or (eof and reason != pcap._REASON_NONE):
            damage = Damage(base + stop, self.layout.describe(reason, detail, len(data) - stop))
        return batch, stop, need, damage


class _PcapngWalker:
    """The blocks of a pcapng stream, walked behind ``prefix``: the current section's header and interface blocks."""

    def __init__(self, name: str, interfaces: list[Interface]) -> None:
        self.name = name
        self.interfaces = interfaces  # of the whole stream, appended to as interface blocks arrive
        self.prefix = b""
        self.section = 0  # index in the stream of the prefix's section
        self.if_base = 0  # index in the stream of the prefix section's first interface

    def walk(self, pending: bytearray, base: int, eof: bool) -> tuple[RecordBatch, int, int, Damage | None]:
        """Walk the whole blocks at the start of ``pending``: (batch, bytes used, bytes needed next, damage)."""
        lead = len(self.prefix)
        data = np.frombuffer(self.prefix + pending, np.uint8)
        walk = pcapng.walk_blocks(data)
        if walk.reason == pcapng._REASON_BAD_BYTE_ORDER and base == 0 and walk.stop == 0:
            raise CaptureError(self.name, 8, f"pcapng byte-order magic is 0x{walk.detail:08x}, not 0x1a2b3c4d")
        stop = max(walk.stop, lead)
        waiting = walk.reason in (pcapng._REASON_SHORT_BLOCK_HEADER, pcapng._REASON_BLOCK_PAST_END)
        need = len(data) - stop + 1  # counted from the first byte left once this walk's blocks are taken
        if walk.reason == pcapng._REASON_SHORT_BLOCK_HEADER:
            need = SECTION_HEADER_FIXED_BYTES
        elif walk.reason == pcapng._REASON_BLOCK_PAST_END:
            need = walk.detail
        damage = None
        if walk.reason != pcapng._REASON_NONE and (eof or not waiting):
            damage = Damage(base + stop - lead, pcapng.describe(walk.reason, walk.detail, len(data) - stop))
        elif walk.reason == pcapng._REASON_BLOCK_PAST_END and walk.detail > MAX_BLOCK_BYTES:
            damage = Damage(base + stop - lead, f"block claims {walk.detail} bytes, more than the {MAX_BLOCK_BYTES} a stream is read ahead for")
        columns = walk.columns
        known = columns["interface"] != pcapng.UNKNOWN_LINK_TYPE
        columns["interface"][known] += self.if_base
        self._follow(data, walk, stop)
        return RecordBatch(data, columns, base - lead), stop - lead, need, damage

    def _follow(self, data: np.ndarray, walk: pcapng.BlockWalk, stop: int) -> None:
        """Note the interfaces the walk found and keep the last section's header and interface blocks as the prefix."""
        lead = len(self.prefix)
        section_base = self.section
        last, sections = _last_section(data, stop)
        for g in range(len(walk.if_link)):
            if walk.if_block[g] >= lead:  # an interface block read now, not one of the prefix's
                self.interfaces.append(walk.interface(data, g, self.if_base + g, section_base + int(walk.if_section[g])))
        if sections == 0:
            return
        if last >= lead:  # a new section started: its header block replaces the prefix
            self.if_base += int(np.count_nonzero(walk.if_block < last))
            self.section = section_base + sections - 1
            self.prefix = _block(data, last)
        for g in np.flatnonzero(walk.if_block >= max(last, lead)):
            self.prefix += _block(data, int(walk.if_block[g]))


def _block(data: np.ndarray, start: int) -> bytes:
    """The bytes of the section header or interface description block at ``start``; its type field tells the byte order."""
    head = data[start : start + 12].tobytes()
    if int.from_bytes(head[:4], "little") == BLOCK_SECTION_HEADER:
        little = int.from_bytes(head[8:12], "little") == BYTE_ORDER_MAGIC
    else:
        little = int.from_bytes(head[:4], "little") == BLOCK_INTERFACE_DESCRIPTION
    length = int.from_bytes(head[4:8], "little" if little else "big")
    return data[start : start + length].tobytes()


# (offset of the last Section Header Block among the whole blocks of buf[:stop], how many there are): C (_walk.c).
_last_section = _native.last_section


class _Gunzip:
    """Decompress gzip members (RFC 1952) as their bytes arrive; a corrupt or cut stream keeps what came before it."""

    def __init__(self) -> None:
        self.member: zlib._Decompress | None = zlib.decompressobj(wbits=31)  # None between members
        self.offset = 0  # compressed bytes taken
        self.damage: tuple[int, str] | None = None  # (offset in the compressed stream, reason)
        self.ended = False  # bytes after the last member that start no other one (padding) are ignored

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        while chunk and not self.ended and self.damage is None:
            if self.member is None:
                if chunk[:1] != GZIP_MAGIC[:1]:
                    self.ended = True
                    break
                self.member = zlib.decompressobj(wbits=31)
            try:
                out += self.member.decompress(chunk)
            except zlib.error as exc:  # at the read that holds the error; what that read decompressed before it is lost
                self.damage = (self.offset, f"gzip data corrupt: {exc}")
                break
            if not self.member.eof:
                self.offset += len(chunk)
                break
            rest = self.member.unused_data
            self.offset += len(chunk) - len(rest)
            self.member, chunk = None, rest
        return bytes(out)

    def finish(self) -> None:
        if self.damage is None and self.member is not None:
            self.damage = (self.offset, "gzip stream ends before its end marker")
