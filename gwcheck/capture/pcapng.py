"""The pcapng file format (draft-ietf-opsawg-pcapng): sections of blocks, interfaces with their own link types and clocks."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from .._jit import jit, u16, u32, u64
from ..schema import COLUMN_DTYPES, RECORD_COLUMNS
from .records import Damage, Interface, RecordIndex

BLOCK_SECTION_HEADER = 0x0A0D0D0A
BLOCK_INTERFACE_DESCRIPTION = 0x00000001
BLOCK_PACKET_OBSOLETE = 0x00000002
BLOCK_SIMPLE_PACKET = 0x00000003
BLOCK_ENHANCED_PACKET = 0x00000006
BYTE_ORDER_MAGIC = 0x1A2B3C4D
OPTION_END = 0
OPTION_IF_NAME = 2
OPTION_IF_DESCRIPTION = 3
OPTION_IF_TSRESOL = 9
OPTION_IF_TSOFFSET = 14
DEFAULT_TSRESOL = 6  # microseconds when an interface has no if_tsresol option
MIN_BLOCK_BYTES = 12  # type, total length, trailing total length
MAX_INTERFACES = 65_535
UNKNOWN_LINK_TYPE = 0xFFFF  # a packet naming an interface its section does not describe

_REASON_NONE = 0
_REASON_SHORT_BLOCK_HEADER = 1
_REASON_BAD_BLOCK_LENGTH = 2
_REASON_BLOCK_PAST_END = 3
_REASON_BAD_BYTE_ORDER = 4
_REASON_PACKET_PAST_BLOCK = 5
_REASON_TOO_MANY_INTERFACES = 6
_REASON_TRAILER_MISMATCH = 7


def is_pcapng(head: bytes) -> bool:
    """True when the file starts with a Section Header Block."""
    return len(head) >= 4 and struct.unpack("<I", head[:4])[0] == BLOCK_SECTION_HEADER


@jit
def _units_to_ns(units, resol):
    """Convert timestamp units to nanoseconds; resol is the raw if_tsresol byte (pcapng 4.2)."""
    exponent = resol & 0x7F
    if resol & 0x80:  # a negative power of 2
        if exponent <= 30:
            whole = units >> np.uint64(exponent)
            frac = units & ((np.uint64(1) << np.uint64(exponent)) - np.uint64(1))
            return np.int64(whole) * 1_000_000_000 + np.int64((frac * np.uint64(1_000_000_000)) >> np.uint64(exponent))
        return np.int64(np.float64(units) / (2.0**exponent) * 1e9)
    if exponent <= 9:
        return np.int64(units) * np.int64(10 ** (9 - exponent))
    if exponent <= 18:
        return np.int64(units // np.uint64(10 ** (exponent - 9)))
    return np.int64(np.float64(units) / (10.0 ** (exponent - 9)))


@jit
def _interface_options(buf, p, end, big_endian):
    """Return (if_tsresol byte, if_tsoffset seconds) from the options of an IDB body in [p, end)."""
    resol = DEFAULT_TSRESOL
    offset = np.int64(0)
    while p + 4 <= end:
        code = u16(buf, p, big_endian)
        length = u16(buf, p + 2, big_endian)
        if code == OPTION_END or p + 4 + length > end:
            break
        if code == OPTION_IF_TSRESOL and length >= 1:
            resol = buf[p + 4]
        elif code == OPTION_IF_TSOFFSET and length >= 8:
            offset = np.int64(u64(buf, p + 4, big_endian))
        p += 4 + ((length + 3) & ~3)
    return resol, offset


@jit
def _walk(buf, fill, ts_ns, interface, link_type, frame_offset, wire_len, cap_len,
          if_link, if_snap, if_resol, if_offset, if_block, if_section):
    """Walk every block; return (packets, interfaces, stop offset, reason, detail)."""
    end = buf.shape[0]
    p = 0
    n = 0
    n_if = 0  # interfaces across the file
    section_first_if = 0  # global index of the current section's interface 0
    section = -1
    big_endian = False
    while p < end:
        if end - p < 8:
            return n, n_if, p, _REASON_SHORT_BLOCK_HEADER, end - p
        block_type = u32(buf, p, False)
        if block_type == BLOCK_SECTION_HEADER:
            if end - p < 12:
                return n, n_if, p, _REASON_SHORT_BLOCK_HEADER, end - p
            order = u32(buf, p + 8, False)
            if order == BYTE_ORDER_MAGIC:
                big_endian = False
            elif order == 0x4D3C2B1A:
                big_endian = True
            else:
                return n, n_if, p, _REASON_BAD_BYTE_ORDER, order
            section += 1
            section_first_if = n_if
        else:
            block_type = u32(buf, p, big_endian)
        length = u32(buf, p + 4, big_endian)
        if length < MIN_BLOCK_BYTES or length % 4 != 0:
            return n, n_if, p, _REASON_BAD_BLOCK_LENGTH, length
        if length > end - p:
            return n, n_if, p, _REASON_BLOCK_PAST_END, length
        if u32(buf, p + length - 4, big_endian) != length:
            return n, n_if, p, _REASON_TRAILER_MISMATCH, length
        body_end = p + length - 4
        if block_type == BLOCK_INTERFACE_DESCRIPTION:
            if n_if >= MAX_INTERFACES:
                return n, n_if, p, _REASON_TOO_MANY_INTERFACES, n_if
            if fill:
                if length >= 20:
                    if_link[n_if] = u16(buf, p + 8, big_endian)
                    if_snap[n_if] = u32(buf, p + 12, big_endian)
                    resol, offset = _interface_options(buf, p + 16, body_end, big_endian)
                    if_resol[n_if] = resol
                    if_offset[n_if] = offset
                else:
                    if_link[n_if] = UNKNOWN_LINK_TYPE
                    if_resol[n_if] = DEFAULT_TSRESOL
                if_block[n_if] = p
                if_section[n_if] = section
            n_if += 1
        elif block_type == BLOCK_ENHANCED_PACKET or block_type == BLOCK_PACKET_OBSOLETE:
            if length < 32:
                return n, n_if, p, _REASON_BAD_BLOCK_LENGTH, length
            caplen = u32(buf, p + 20, big_endian)
            if caplen > body_end - (p + 28):
                return n, n_if, p, _REASON_PACKET_PAST_BLOCK, caplen
            if fill:
                if block_type == BLOCK_ENHANCED_PACKET:
                    local_if = u32(buf, p + 8, big_endian)
                else:
                    local_if = u16(buf, p + 8, big_endian)
                units = (np.uint64(u32(buf, p + 12, big_endian)) << np.uint64(32)) | np.uint64(u32(buf, p + 16, big_endian))
                g = section_first_if + local_if
                if local_if < n_if - section_first_if:
                    ts_ns[n] = _units_to_ns(units, if_resol[g]) + if_offset[g] * 1_000_000_000
                    interface[n] = g
                    link_type[n] = if_link[g]
                else:
                    ts_ns[n] = _units_to_ns(units, DEFAULT_TSRESOL)
                    interface[n] = UNKNOWN_LINK_TYPE
                    link_type[n] = UNKNOWN_LINK_TYPE
                frame_offset[n] = p + 28
                wire_len[n] = u32(buf, p + 24, big_endian)
                cap_len[n] = caplen
            n += 1
        elif block_type == BLOCK_SIMPLE_PACKET:
            if length < 16:
                return n, n_if, p, _REASON_BAD_BLOCK_LENGTH, length
            if fill:
                original = np.int64(u32(buf, p + 8, big_endian))
                caplen = min(original, np.int64(body_end - (p + 12)))
                if n_if > section_first_if:
                    g = section_first_if
                    if if_snap[g] > 0:
                        caplen = min(caplen, np.int64(if_snap[g]))
                    interface[n] = g
                    link_type[n] = if_link[g]
                else:
                    interface[n] = UNKNOWN_LINK_TYPE
                    link_type[n] = UNKNOWN_LINK_TYPE
                ts_ns[n] = 0  # a Simple Packet Block carries no timestamp (pcapng 4.4)
                frame_offset[n] = p + 12
                wire_len[n] = original
                cap_len[n] = caplen
            n += 1
        p += length
    return n, n_if, p, _REASON_NONE, 0


@dataclass
class BlockWalk:
    """What one walk over a buffer of pcapng blocks found: packets as record columns, interfaces as arrays."""

    columns: dict[str, np.ndarray]  # schema.RECORD_COLUMNS; interface numbers count from the buffer's first section
    if_link: np.ndarray
    if_snap: np.ndarray
    if_resol: np.ndarray
    if_offset: np.ndarray
    if_block: np.ndarray  # offset of each interface's Interface Description Block
    if_section: np.ndarray  # its section, counted from 0 at the buffer's first Section Header Block
    stop: int  # where the walk stopped: the end of the buffer, or the block it could not read
    reason: int  # _REASON_NONE, or why it stopped (``describe`` words it)
    detail: int

    def interface(self, data: np.ndarray, g: int, index: int, section: int) -> Interface:
        """Interface ``g`` of the walk, numbered ``index`` in section ``section`` of the whole capture."""
        return Interface(
            index=index,
            link_type=int(self.if_link[g]),
            snaplen=int(self.if_snap[g]),
            name=_interface_name(data, int(self.if_block[g])),
            section=section,
            ts_resolution=_describe_resolution(int(self.if_resol[g])),
        )


def walk_blocks(data: np.ndarray) -> BlockWalk:
    """Walk the blocks of ``data`` from its first byte, which starts a block: a count pass, then a fill pass."""
    empty64 = np.zeros(0, np.int64)
    empty32 = np.zeros(0, np.uint32)
    empty16 = np.zeros(0, np.uint16)
    empty8 = np.zeros(0, np.uint8)
    n, n_if, _, _, _ = _walk(
        data, False, empty64, empty16, empty16, empty64, empty32, empty32,
        empty16, empty32, empty8, empty64, empty64, empty64,
    )
    columns = {name: np.zeros(n, COLUMN_DTYPES[name]) for name in RECORD_COLUMNS}
    if_link = np.zeros(n_if, np.uint16)
    if_snap = np.zeros(n_if, np.uint32)
    if_resol = np.zeros(n_if, np.uint8)
    if_offset = np.zeros(n_if, np.int64)
    if_block = np.zeros(n_if, np.int64)
    if_section = np.zeros(n_if, np.int64)
    n, n_if, stop, reason, detail = _walk(
        data, True, columns["ts_ns"], columns["interface"], columns["link_type"], columns["frame_offset"],
        columns["wire_len_bytes"], columns["cap_len_bytes"], if_link, if_snap, if_resol, if_offset, if_block, if_section,
    )
    return BlockWalk(columns, if_link, if_snap, if_resol, if_offset, if_block, if_section, int(stop), int(reason), int(detail))


def index_pcapng(path: str, data: np.ndarray) -> RecordIndex:
    """Index every packet of a pcapng file; damage part way keeps the packets before it."""
    from ..errors import CaptureError

    if len(data) < 28:
        raise CaptureError(path, 0, f"file ends inside the first Section Header Block: {len(data)} bytes, need 28")
    walk = walk_blocks(data)
    if walk.reason == _REASON_BAD_BYTE_ORDER and len(walk.columns["ts_ns"]) == 0 and len(walk.if_link) == 0:
        raise CaptureError(path, 8, f"pcapng byte-order magic is 0x{walk.detail:08x}, not 0x1a2b3c4d")
    interfaces = [walk.interface(data, g, g, int(walk.if_section[g])) for g in range(len(walk.if_link))]
    damage = None
    if walk.reason != _REASON_NONE:
        damage = Damage(walk.stop, describe(walk.reason, walk.detail, len(data) - walk.stop))
    return RecordIndex(path, "pcapng", data, walk.columns, interfaces, damage)


def _interface_name(data: np.ndarray, block: int) -> str:
    """The if_name (else if_description) option of the IDB at ``block``, or ''."""
    order = ">" if _section_big_endian(data, block) else "<"
    length = struct.unpack_from(order + "I", data, block + 4)[0]
    p, end = block + 16, block + length - 4
    names: dict[int, str] = {}
    while p + 4 <= end:
        code, size = struct.unpack_from(order + "HH", data, p)
        if code == OPTION_END or p + 4 + size > end:
            break
        if code in (OPTION_IF_NAME, OPTION_IF_DESCRIPTION):
            names[code] = bytes(data[p + 4 : p + 4 + size]).decode("utf-8", "replace").rstrip("\0")
        p += 4 + ((size + 3) & ~3)
    return names.get(OPTION_IF_NAME) or names.get(OPTION_IF_DESCRIPTION, "")


def _section_big_endian(data: np.ndarray, block: int) -> bool:
    """Whether the block at ``block`` is big-endian: its type field reads 1 one way or the other."""
    return struct.unpack_from("<I", data, block)[0] != BLOCK_INTERFACE_DESCRIPTION


def _describe_resolution(resol: int) -> str:
    exponent = resol & 0x7F
    if resol & 0x80:
        return f"2^-{exponent} s"
    return {0: "s", 3: "ms", 6: "us", 9: "ns"}.get(exponent, f"10^-{exponent} s")


def describe(reason: int, detail: int, remaining: int) -> str:
    """Why a walk stopped, ``remaining`` bytes before the end of the data."""
    if reason == _REASON_SHORT_BLOCK_HEADER:
        return f"file ends inside a block header: {detail} bytes, need 8"
    if reason == _REASON_BAD_BLOCK_LENGTH:
        return f"block length {detail} is not a multiple of 4 of at least the block's fixed fields"
    if reason == _REASON_BLOCK_PAST_END:
        return f"block of {detail} bytes runs past the end of the file ({remaining} bytes remain)"
    if reason == _REASON_BAD_BYTE_ORDER:
        return f"section header byte-order magic is 0x{detail:08x}, not 0x1a2b3c4d"
    if reason == _REASON_PACKET_PAST_BLOCK:
        return f"packet of {detail} captured bytes runs past the end of its block"
    if reason == _REASON_TOO_MANY_INTERFACES:
        return f"more than {MAX_INTERFACES} interfaces"
    return f"block's trailing length does not repeat its length {detail}"
