"""Capture files in, record columns out: pcap and pcapng, plain or gzip, told apart by their magic numbers."""

from __future__ import annotations

import os

from ..errors import NotACaptureError
from .pcap import index_pcap, magic_byte_order
from .pcapng import index_pcapng, is_pcapng
from .records import Damage, Interface, RecordIndex
from .source import open_bytes

__all__ = ["Damage", "Interface", "RecordIndex", "index_capture"]


def index_capture(path: str | os.PathLike) -> RecordIndex:
    """Index every record of one capture file.

    Raises ``CaptureError`` when the file cannot be read at all; a file damaged part way returns the
    records before the damage with ``RecordIndex.damage`` set.
    """
    source = open_bytes(path)
    head = bytes(source.data[:4])
    pcap = magic_byte_order(head)
    if pcap is not None:
        index = index_pcap(source.path, source.data, *pcap)
    elif is_pcapng(head):
        index = index_pcapng(source.path, source.data)
    else:
        where = "after gzip decompression, " if source.gzip else ""
        raise NotACaptureError(
            source.path, 0, f"{where}magic number 0x{head.hex()} is neither pcap nor pcapng: not a capture file"
        )
    index._keepalive = source._keepalive
    if source.gzip:
        index.format += "+gzip"
        if source.damage is not None:
            offset, reason = source.damage
            detail = f"; {index.damage.reason} at byte {index.damage.offset} of the decompressed data" if index.damage else ""
            index.damage = Damage(offset, reason + detail)
        elif index.damage is not None:  # the gzip stream is whole: the offset is not one of the file's own bytes
            index.damage = Damage(index.damage.offset, index.damage.reason + " (offset in the decompressed data)")
    return index
