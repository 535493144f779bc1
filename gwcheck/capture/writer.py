"""Write captures: pcap (microsecond or nanosecond) and pcapng (several interfaces and sections), either byte order, optionally gzip."""

from __future__ import annotations

import gzip
import os
import struct
from typing import BinaryIO

from ..schema import NS_PER_SECOND
from .pcap import MAGIC_MICROSECONDS, MAGIC_NANOSECONDS, MAX_RECORD_BYTES
from .pcapng import (
    BLOCK_ENHANCED_PACKET,
    BLOCK_INTERFACE_DESCRIPTION,
    BLOCK_PACKET_OBSOLETE,
    BLOCK_SECTION_HEADER,
    BLOCK_SIMPLE_PACKET,
    BYTE_ORDER_MAGIC,
    OPTION_IF_NAME,
    OPTION_IF_TSOFFSET,
    OPTION_IF_TSRESOL,
)


def _open(target: str | os.PathLike | BinaryIO, compress: bool) -> tuple[BinaryIO, bool]:
    if hasattr(target, "write"):
        return target, False  # type: ignore[return-value]
    if compress:
        return gzip.open(os.fspath(target), "wb", compresslevel=6), True  # type: ignore[return-value]
    return open(os.fspath(target), "wb"), True


class PcapWriter:
    """Write a classic pcap file; timestamps are integer nanoseconds, rounded down to microseconds unless ``nanosecond``."""

    def __init__(
        self,
        target: str | os.PathLike | BinaryIO,
        link_type: int = 1,
        nanosecond: bool = False,
        snaplen: int = MAX_RECORD_BYTES,
        big_endian: bool = False,
        compress: bool = False,
    ) -> None:
        self._stream, self._owned = _open(target, compress)
        self._order = ">" if big_endian else "<"
        self._nanosecond = nanosecond
        self._snaplen = snaplen
        magic = MAGIC_NANOSECONDS if nanosecond else MAGIC_MICROSECONDS
        self._record = struct.Struct(self._order + "IIII")
        self._stream.write(struct.pack(self._order + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link_type))

    def write(self, ts_ns: int, frame: bytes, wire_len: int | None = None) -> None:
        """Append one frame; ``wire_len`` is its length on the wire when the frame was snapped."""
        seconds, fraction = divmod(int(ts_ns), NS_PER_SECOND)
        if not self._nanosecond:
            fraction //= 1000
        captured = frame[: self._snaplen]
        original = len(frame) if wire_len is None else wire_len
        self._stream.write(self._record.pack(seconds, fraction, len(captured), original))
        self._stream.write(captured)

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self) -> PcapWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PcapngWriter:
    """Write a pcapng file: sections of interfaces, Enhanced (or Simple, or obsolete) Packet Blocks."""

    def __init__(self, target: str | os.PathLike | BinaryIO, big_endian: bool = False, compress: bool = False) -> None:
        self._stream, self._owned = _open(target, compress)
        self._order = ">" if big_endian else "<"
        self._interfaces: list[tuple[int, int]] = []  # (tsresol byte, tsoffset seconds) per interface of the section
        self.new_section()

    def new_section(self) -> None:
        """Start a section: interface numbers start again from 0."""
        self._interfaces = []
        body = struct.pack(self._order + "IHHq", BYTE_ORDER_MAGIC, 1, 0, -1)
        self._block(BLOCK_SECTION_HEADER, body)

    def add_interface(
        self, link_type: int = 1, name: str = "", tsresol: int = 6, tsoffset: int = 0, snaplen: int = 0
    ) -> int:
        """Describe an interface; ``tsresol`` is the raw if_tsresol byte (6 = microseconds, 9 = nanoseconds)."""
        options = b""
        if name:
            options += self._option(OPTION_IF_NAME, name.encode())
        if tsresol != 6:
            options += self._option(OPTION_IF_TSRESOL, bytes([tsresol]))
        if tsoffset:
            options += self._option(OPTION_IF_TSOFFSET, struct.pack(self._order + "q", tsoffset))
        if options:
            options += self._option(0, b"")
        self._block(BLOCK_INTERFACE_DESCRIPTION, struct.pack(self._order + "HHI", link_type, 0, snaplen) + options)
        self._interfaces.append((tsresol, tsoffset))
        return len(self._interfaces) - 1

    def write(
        self, ts_ns: int, frame: bytes, interface: int = 0, wire_len: int | None = None, block: str = "enhanced"
    ) -> None:
        """Append one frame as an ``enhanced``, ``simple`` or ``obsolete`` packet block."""
        original = len(frame) if wire_len is None else wire_len
        padded = frame + b"\0" * (-len(frame) % 4)
        if block == "simple":
            self._block(BLOCK_SIMPLE_PACKET, struct.pack(self._order + "I", original) + padded)
            return
        units = self._units(ts_ns, interface)
        head = struct.pack(self._order + "III", interface, units >> 32, units & 0xFFFFFFFF)
        if block == "obsolete":
            head = struct.pack(self._order + "HHII", interface, 0, units >> 32, units & 0xFFFFFFFF)
        kind = BLOCK_PACKET_OBSOLETE if block == "obsolete" else BLOCK_ENHANCED_PACKET
        self._block(kind, head + struct.pack(self._order + "II", len(frame), original) + padded)

    def write_block(self, block_type: int, body: bytes) -> None:
        """Append any block, for example one a reader must skip."""
        self._block(block_type, body + b"\0" * (-len(body) % 4))

    def _units(self, ts_ns: int, interface: int) -> int:
        resol, offset = self._interfaces[interface]
        ts_ns = int(ts_ns) - offset * NS_PER_SECOND
        exponent = resol & 0x7F
        if resol & 0x80:
            return (ts_ns << exponent) // NS_PER_SECOND
        if exponent <= 9:
            return ts_ns // 10 ** (9 - exponent)
        return ts_ns * 10 ** (exponent - 9)

    def _option(self, code: int, value: bytes) -> bytes:
        return struct.pack(self._order + "HH", code, len(value)) + value + b"\0" * (-len(value) % 4)

    def _block(self, block_type: int, body: bytes) -> None:
        length = 12 + len(body)
        self._stream.write(struct.pack(self._order + "II", block_type, length) + body + struct.pack(self._order + "I", length))

    def close(self) -> None:
        if self._owned:
            self._stream.close()
        else:
            self._stream.flush()

    def __enter__(self) -> PcapngWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
