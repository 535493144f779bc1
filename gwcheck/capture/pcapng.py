"""The pcapng file format (draft-ietf-opsawg-pcapng): sections of blocks, interfaces with their own link types and clocks."""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from ..schema import COLUMN_DTYPES, RECORD_COLUMNS
from . import _walk as _native
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


# The block walker is C (_walk.c; pcapng.h holds the constants it shares with this module).  It releases the GIL.
#
# _walk(buf, fill, ts_ns, interface, link_type, frame_offset, wire_len, cap_len,
#       if_link, if_snap, if_resol, if_offset, if_block, if_section):
#   walk every block; return (packets, interfaces, stop offset, reason, detail).  With ``fill`` false it only counts;
#   with ``fill`` true it writes the packets' and interfaces' rows, and the arrays must hold what a count walk found.
#   An interface's if_tsresol (the raw option byte: a power of 10, or of 2 with the top bit set; DEFAULT_TSRESOL when
#   absent) and if_tsoffset (seconds) turn a packet's timestamp units into int64 nanoseconds (pcapng 4.2).
_walk = _native.pcapng_walk


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
