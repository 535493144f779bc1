"""Damaged and odd capture files: what cannot be read raises a CaptureError naming file, byte and reason; what is
damaged part way keeps every packet before the damage and warns (CaptureDamageWarning) where and why.

Captures are built in memory with gwcheck's own writers, so the test knows every record boundary.
"""

from __future__ import annotations

import gzip
import io
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import gwcheck
from gwcheck.capture.pcapng import BLOCK_ENHANCED_PACKET
from gwcheck.capture.writer import PcapngWriter, PcapWriter
from gwcheck.errors import CaptureDamageWarning, CaptureError, NotACaptureError
from gwcheck.schema import DecodeStatus

from conftest import frame_timestamps, gwlb_frames

PCAP_HEADER_BYTES = 24
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL2 = 276


@dataclass
class Built:
    """A capture's bytes and where its records lie: ``starts[k]`` to ``ends[k]`` is record ``k`` with its header."""

    data: bytes
    header_end: int  # first byte after the file header (pcap) or the Section Header Block (pcapng)
    starts: list[int]
    ends: list[int]
    frames: list[bytes]
    ts: list[int]
    ts_read: list[int]  # the timestamps as the file can hold them

    def whole_before(self, cut: int) -> int:
        return sum(end <= cut for end in self.ends)

    def damaged_record(self, cut: int) -> int | None:
        """Offset of the block or record the cut falls inside; None when the cut is on a boundary."""
        boundaries = {self.header_end, *self.starts, *self.ends}  # pcapng: the IDB lies between header_end and starts[0]
        if cut in boundaries:
            return None
        return max(b for b in boundaries if b < cut)


def build_pcap(count: int = 3, big_endian: bool = False, nanosecond: bool = False) -> Built:
    frames = gwlb_frames(count)
    ts = frame_timestamps(len(frames))
    stream = io.BytesIO()
    writer = PcapWriter(stream, big_endian=big_endian, nanosecond=nanosecond)
    starts, ends = [], []
    for t, frame in zip(ts, frames):
        starts.append(stream.tell())
        writer.write(t, frame)
        ends.append(stream.tell())
    writer.close()
    ts_read = ts if nanosecond else [t // 1000 * 1000 for t in ts]
    return Built(stream.getvalue(), PCAP_HEADER_BYTES, starts, ends, frames, ts, ts_read)


def build_pcapng(count: int = 3, big_endian: bool = False, tsresol: int = 9) -> Built:
    frames = gwlb_frames(count)
    ts = frame_timestamps(len(frames))
    stream = io.BytesIO()
    writer = PcapngWriter(stream, big_endian=big_endian)
    header_end = stream.tell()
    writer.add_interface(LINKTYPE_ETHERNET, name="eth0", tsresol=tsresol)
    starts, ends = [], []
    for t, frame in zip(ts, frames):
        starts.append(stream.tell())
        writer.write(t, frame)
        ends.append(stream.tell())
    writer.close()
    return Built(stream.getvalue(), header_end, starts, ends, frames, ts, [resolution_ns(t, tsresol, 0) for t in ts])


def write(path: Path, data: bytes, compress: bool = False) -> Path:
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def read_with_warnings(path: Path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = gwcheck.read_packets(path)
    damage = [w.message for w in caught if isinstance(w.message, CaptureDamageWarning)]
    others = [w for w in caught if not isinstance(w.message, CaptureDamageWarning)]
    assert not others, [str(w.message) for w in others]
    return table, damage


def assert_names(message: str, path: Path, offset: int) -> None:
    assert str(path) in message, message
    assert f"byte {offset}" in message, message


# --- not a capture at all -------------------------------------------------------------------------------------


NOT_CAPTURES = {
    "text.pcap": (b"this is not a capture file\n", "not a capture file"),
    "empty.pcap": (b"", "empty file"),
    "random.pcapng": (np.random.default_rng(6081).integers(0, 256, 4096, dtype=np.uint8).tobytes(), "not a capture file"),
    "short.pcap": (b"ab", "not a capture file"),
    "gzip-text.pcap.gz": (gzip.compress(b"GET / HTTP/1.1\r\n" * 20), "after gzip decompression"),
}


@pytest.mark.parametrize("name", sorted(NOT_CAPTURES))
def test_not_a_capture_names_file_offset_and_reason(tmp_path: Path, name: str) -> None:
    content, reason = NOT_CAPTURES[name]
    path = write(tmp_path / name, content)
    with pytest.raises(NotACaptureError) as info:
        gwcheck.read_packets(path)
    assert info.value.path == str(path) and info.value.offset == 0
    assert reason in info.value.reason
    assert str(info.value).startswith(f"{path}: at byte 0: ")


def test_directory_is_not_a_capture(tmp_path: Path) -> None:
    with pytest.raises(CaptureError) as info:
        gwcheck.read_packets(tmp_path)
    assert str(info.value) == f"{tmp_path}: at byte 0: is a directory, not a capture file"


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "missing.pcap"
    with pytest.raises(CaptureError) as info:
        gwcheck.read_packets(path)
    assert str(info.value) == f"{path}: at byte 0: no such file"


def test_one_bad_file_among_several_names_that_file(tmp_path: Path) -> None:
    good = write(tmp_path / "good.pcap", build_pcap().data)
    bad = write(tmp_path / "bad.pcap", b"nope")
    with pytest.raises(NotACaptureError) as info:
        gwcheck.read_packets([good, bad])
    assert info.value.path == str(bad)


@pytest.mark.parametrize("size", [1, 4, 23])
def test_pcap_cut_inside_file_header(tmp_path: Path, size: int) -> None:
    path = write(tmp_path / "head.pcap", build_pcap().data[:size])
    with pytest.raises(CaptureError) as info:
        gwcheck.read_packets(path)
    assert info.value.path == str(path) and info.value.offset == 0


@pytest.mark.parametrize("size", [4, 12, 27])
def test_pcapng_cut_inside_section_header(tmp_path: Path, size: int) -> None:
    path = write(tmp_path / "head.pcapng", build_pcapng().data[:size])
    with pytest.raises(CaptureError) as info:
        gwcheck.read_packets(path)
    assert info.value.path == str(path)


def test_pcapng_bad_byte_order_magic(tmp_path: Path) -> None:
    data = bytearray(build_pcapng().data)
    data[8:12] = b"\x01\x02\x03\x04"
    path = write(tmp_path / "order.pcapng", bytes(data))
    with pytest.raises(CaptureError) as info:
        gwcheck.read_packets(path)
    assert info.value.offset == 8 and "byte-order magic" in info.value.reason


# --- cut at every byte -----------------------------------------------------------------------------------------


def check_cut(tmp_path: Path, built: Built, cut: int, suffix: str, compress: bool) -> None:
    path = write(tmp_path / f"cut-{cut}{suffix}", built.data[:cut], compress)
    table, damage = read_with_warnings(path)
    kept = built.whole_before(cut)
    assert len(table) == kept, cut
    assert table.ts_ns.tolist() == built.ts_read[:kept], cut
    assert (table.status == DecodeStatus.OK.label).all(), cut
    assert table.cap_len_bytes.tolist() == [len(f) for f in built.frames[:kept]], cut
    offset = built.damaged_record(cut)
    if offset is None:
        assert not damage, (cut, [str(d) for d in damage])
        return
    assert len(damage) == 1, cut
    (warning,) = damage
    assert (warning.path, warning.offset, warning.records_read) == (str(path), offset, kept), (cut, str(warning))
    assert warning.reason
    assert ("decompressed" in warning.reason) == compress
    assert_names(str(warning), path, offset)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pcap_cut_at_every_byte(tmp_path: Path, big_endian: bool, compress: bool) -> None:
    built = build_pcap(big_endian=big_endian, nanosecond=big_endian)
    for cut in range(built.header_end, len(built.data) + 1):
        check_cut(tmp_path, built, cut, ".pcap", compress)


@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pcapng_cut_at_every_byte(tmp_path: Path, big_endian: bool, compress: bool) -> None:
    built = build_pcapng(big_endian=big_endian)
    for cut in range(built.header_end, len(built.data) + 1):
        check_cut(tmp_path, built, cut, ".pcapng", compress)


CORPUS_PCAPNG = (
    "zeek/testing/btest/Traces/pcapng-multi-interface.pcapng",
    "tcpdump/tests/icmp-cksum-oobr-3.pcapng",
    "zeek/testing/btest/Traces/tunnels/geneve-truncated.pcapng",
)
PCAPNG_PACKET_BLOCKS = (2, 3, 6)


@pytest.mark.corpus
@pytest.mark.parametrize("name", CORPUS_PCAPNG)
def test_corpus_pcapng_cut_at_every_byte(corpus: Path, tmp_path: Path, name: str) -> None:
    """Real writers' blocks (Wireshark, mergecap; options in every block) cut after their Section Header Block."""
    data = (corpus / name).read_bytes()
    blocks = []  # (offset, end, is a packet)
    p = 0
    while p < len(data):
        block_type, length = struct.unpack_from("<II", data, p)
        blocks.append((p, p + length, block_type in PCAPNG_PACKET_BLOCKS))
        p += length
    ts = gwcheck.read_packets(corpus / name).ts_ns.tolist()
    for cut in range(blocks[0][1], len(data) + 1):
        path = write(tmp_path / f"cut-{cut}.pcapng", data[:cut])
        table, damage = read_with_warnings(path)
        kept = sum(packet and end <= cut for _, end, packet in blocks)
        assert table.ts_ns.tolist() == ts[:kept], cut
        inside = [start for start, end, _ in blocks if start < cut < end]
        assert [(w.offset, w.records_read) for w in damage] == [(start, kept) for start in inside], cut


def test_pcap_reasons_say_why(tmp_path: Path) -> None:
    built = build_pcap()
    _, (inside_header,) = read_with_warnings(write(tmp_path / "a.pcap", built.data[: built.starts[1] + 5]))
    assert "inside a record header" in inside_header.reason
    _, (inside_data,) = read_with_warnings(write(tmp_path / "b.pcap", built.data[: built.starts[1] + 20]))
    assert "runs past the end of the file" in inside_data.reason


# --- corrupt lengths in the middle -------------------------------------------------------------------------------


@pytest.mark.parametrize("caplen", [0xFFFF_FFF0, 300_000, 100_000], ids=["huge", "over-max", "past-end"])
@pytest.mark.parametrize("big_endian", [False, True], ids=["le", "be"])
def test_pcap_corrupt_record_length_keeps_packets_before(tmp_path: Path, big_endian: bool, caplen: int) -> None:
    built = build_pcap(count=5, big_endian=big_endian)
    data = bytearray(built.data)
    bad = built.starts[2]
    struct.pack_into(">I" if big_endian else "<I", data, bad + 8, caplen)
    path = write(tmp_path / "corrupt.pcap", bytes(data))
    table, (warning,) = read_with_warnings(path)
    assert len(table) == 2
    assert (warning.offset, warning.records_read) == (bad, 2)
    assert_names(str(warning), path, bad)
    assert str(caplen) in warning.reason


@pytest.mark.parametrize("length", [13, 8, 4096, 0xFFFF_FFFC], ids=["unaligned", "too-short", "trailer-mismatch", "huge"])
def test_pcapng_corrupt_block_length_keeps_packets_before(tmp_path: Path, length: int) -> None:
    built = build_pcapng(count=5)
    data = bytearray(built.data)
    bad = built.starts[2]
    struct.pack_into("<I", data, bad + 4, length)
    path = write(tmp_path / "corrupt.pcapng", bytes(data))
    table, (warning,) = read_with_warnings(path)
    assert len(table) == 2
    assert table.ts_ns.tolist() == built.ts[:2]
    assert (warning.offset, warning.records_read) == (bad, 2)
    assert_names(str(warning), path, bad)


def test_pcapng_packet_longer_than_its_block(tmp_path: Path) -> None:
    built = build_pcapng(count=3)
    data = bytearray(built.data)
    struct.pack_into("<I", data, built.starts[1] + 20, 4000)  # captured length past the block's end
    path = write(tmp_path / "caplen.pcapng", bytes(data))
    table, (warning,) = read_with_warnings(path)
    assert len(table) == 1 and warning.offset == built.starts[1]
    assert "runs past the end of its block" in warning.reason


# --- gzip cut short -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_gzip_cut_short_keeps_what_decompressed(tmp_path: Path, fmt: str) -> None:
    built = build_pcap(count=6) if fmt == "pcap" else build_pcapng(count=6)
    compressed = gzip.compress(built.data, mtime=0)
    for cut in range(1, len(compressed)):
        inflater = zlib.decompressobj(wbits=31)
        try:
            prefix = inflater.decompress(compressed[:cut])
        except zlib.error:  # pragma: no cover - a clean prefix never fails
            prefix = b""
        path = write(tmp_path / f"cut-{cut}.{fmt}", compressed[:cut])
        if len(prefix) < built.header_end:
            # Not even the file header came out: the file cannot be read at all.
            with pytest.raises(CaptureError) as info:
                gwcheck.read_packets(path)
            assert info.value.path == str(path)
            continue
        table, (warning,) = read_with_warnings(path)
        kept = built.whole_before(len(prefix))
        assert len(table) == kept, cut
        assert warning.path == str(path) and warning.records_read == kept
        assert "gzip stream ends before its end marker" in warning.reason
        assert warning.offset <= cut


def test_gzip_corrupt_crc_keeps_the_packets(tmp_path: Path) -> None:
    built = build_pcap(count=4)
    compressed = bytearray(gzip.compress(built.data, mtime=0))
    compressed[-8] ^= 0xFF  # CRC32 of the member
    path = write(tmp_path / "crc.pcap", bytes(compressed))
    table, (warning,) = read_with_warnings(path)
    assert len(table) == 4
    assert "gzip data corrupt" in warning.reason and str(path) in str(warning)


def test_gzip_multi_member_and_trailing_zeros(tmp_path: Path) -> None:
    built = build_pcap(count=4)
    half = built.starts[2]
    data = gzip.compress(built.data[:half], mtime=0) + gzip.compress(built.data[half:], mtime=0) + b"\0" * 512
    table, damage = read_with_warnings(write(tmp_path / "members.pcap.gz", data))
    assert len(table) == 4 and not damage
    assert table.attrs["captures"][0]["format"] == "pcap+gzip"


# --- pcapng blocks ----------------------------------------------------------------------------------------------------


def test_pcapng_unknown_blocks_are_skipped(tmp_path: Path) -> None:
    frames = gwlb_frames(3)
    ts = frame_timestamps(3)
    stream = io.BytesIO()
    with PcapngWriter(stream) as writer:
        writer.write_block(0x0BAD_F00D, b"unknown block")
        writer.add_interface(LINKTYPE_ETHERNET, tsresol=9)
        writer.write(ts[0], frames[0])
        writer.write_block(0x0000_0004, b"\0" * 4)  # Name Resolution Block, end of records only
        writer.write(ts[1], frames[1])
        writer.write_block(0x0000_0005, struct.pack("<III", 0, 0, 0))  # Interface Statistics Block
        writer.write_block(0x4000_0BAD, b"")  # a local-use block type, empty body
        writer.write(ts[2], frames[2])
    table, damage = read_with_warnings(write(tmp_path / "unknown.pcapng", stream.getvalue()))
    assert not damage
    assert table.ts_ns.tolist() == ts
    assert (table.status == DecodeStatus.OK.label).all()


def resolution_ns(ts_ns: int, resol: int, offset_s: int) -> int:
    """What a reader must get back from the writer's units: exact integer arithmetic on the pcapng definition."""
    ts_ns -= offset_s * 1_000_000_000
    exponent = resol & 0x7F
    if resol & 0x80:
        units = (ts_ns << exponent) // 1_000_000_000
        back = units * 1_000_000_000 >> exponent
    else:
        units = ts_ns // 10 ** (9 - exponent) if exponent <= 9 else ts_ns * 10 ** (exponent - 9)
        back = units * 10 ** (9 - exponent) if exponent <= 9 else units // 10 ** (exponent - 9)
    return back + offset_s * 1_000_000_000


@pytest.mark.parametrize("big_endian_second", [False, True], ids=["same-order", "mixed-order"])
def test_pcapng_sections_resolutions_and_offsets(tmp_path: Path, big_endian_second: bool) -> None:
    frames = gwlb_frames(5)
    ts = frame_timestamps(5)
    # (section, link type, if_tsresol byte, if_tsoffset seconds)
    interfaces = [
        (0, LINKTYPE_ETHERNET, 6, 0),  # microseconds (the default, no option)
        (0, LINKTYPE_ETHERNET, 9, 0),  # nanoseconds
        (1, LINKTYPE_ETHERNET, 0x80 | 20, 0),  # 2^-20 s
        (1, LINKTYPE_RAW, 3, 1_600_000_000),  # milliseconds, with an offset
        (1, LINKTYPE_LINUX_SLL2, 0x80 | 30, -3600),  # 2^-30 s, negative offset
    ]
    from gwcheck.simulate import frames as fr

    def frame_for(link_type: int, frame: bytes) -> bytes:
        packet = frame[14:]
        if link_type == LINKTYPE_RAW:
            return packet
        if link_type == LINKTYPE_LINUX_SLL2:
            return fr.linux_sll2(packet, fr.ethertype_of(packet))
        return frame

    parts = []
    expected = []  # (global interface, link type, ts_ns)
    for section in (0, 1):
        stream = io.BytesIO()
        writer = PcapngWriter(stream, big_endian=big_endian_second and section == 1)
        mine = [iface for iface in interfaces if iface[0] == section]
        first_global = interfaces.index(mine[0])
        for local, (_, link_type, resol, offset) in enumerate(mine):
            writer.add_interface(link_type, name=f"if{first_global + local}", tsresol=resol, tsoffset=offset)
        for local, (_, link_type, resol, offset) in enumerate(mine):
            k = first_global + local
            writer.write(ts[k], frame_for(link_type, frames[k]), interface=local)
            expected.append((k, link_type, resolution_ns(ts[k], resol, offset)))
        writer.close()
        parts.append(stream.getvalue())
    table, damage = read_with_warnings(write(tmp_path / "sections.pcapng", b"".join(parts)))
    assert not damage
    assert table.interface.tolist() == [k for k, _, _ in expected]
    assert table.link_type.tolist() == [link for _, link, _ in expected]
    assert table.ts_ns.tolist() == [t for _, _, t in expected]
    assert (table.status == DecodeStatus.OK.label).all()
    assert table.aws_flow_cookie.tolist() == [0x3DC956AC] * len(expected)
    described = table.attrs["captures"][0]["interfaces"]
    assert [(i["index"], i["section"], i["name"], i["ts_resolution"]) for i in described] == [
        (0, 0, "if0", "us"), (1, 0, "if1", "ns"), (2, 1, "if2", "2^-20 s"), (3, 1, "if3", "ms"), (4, 1, "if4", "2^-30 s"),
    ]


def test_pcapng_simple_and_obsolete_packet_blocks(tmp_path: Path) -> None:
    frames = gwlb_frames(4)
    ts = frame_timestamps(4)
    stream = io.BytesIO()
    with PcapngWriter(stream) as writer:
        writer.add_interface(LINKTYPE_ETHERNET, tsresol=9, snaplen=100)
        writer.write(ts[0], frames[0], block="obsolete")
        writer.write(ts[1], frames[1][:100], wire_len=len(frames[1]), block="simple")  # snapped to if_snaplen
        writer.write(ts[2], frames[2], block="enhanced")
        writer.write(ts[3], frames[3][:100], wire_len=len(frames[3]), block="obsolete")
    table, damage = read_with_warnings(write(tmp_path / "blocks.pcapng", stream.getvalue()))
    assert not damage
    # A Simple Packet Block has no timestamp (pcapng 4.4): 0.
    assert table.ts_ns.tolist() == [ts[0], 0, ts[2], ts[3]]
    assert table.wire_len_bytes.tolist() == [len(f) for f in frames]
    assert table.cap_len_bytes.tolist() == [len(frames[0]), 100, len(frames[2]), 100]
    assert table.status.tolist()[0::2] == ["ok", "ok"]
    # The snapped frames end inside the inner packet: a status, and the fields before the cut.
    assert table.aws_flow_cookie.tolist() == [0x3DC956AC] * 4


def test_pcapng_simple_packet_block_without_snaplen_uses_the_block(tmp_path: Path) -> None:
    frame = gwlb_frames(1)[0]
    stream = io.BytesIO()
    with PcapngWriter(stream, big_endian=True) as writer:
        writer.add_interface(LINKTYPE_ETHERNET)
        writer.write(0, frame + b"\0" * 3, wire_len=len(frame), block="simple")  # padding is not packet data
    table, _ = read_with_warnings(write(tmp_path / "spb.pcapng", stream.getvalue()))
    assert table.cap_len_bytes.tolist() == [len(frame)]
    assert table.status.tolist() == ["ok"]


def test_pcapng_packet_on_undescribed_interface(tmp_path: Path) -> None:
    frame = gwlb_frames(1)[0]
    stream = io.BytesIO()
    with PcapngWriter(stream) as writer:
        writer.add_interface(LINKTYPE_ETHERNET)
        writer.write(0, frame)
        body = struct.pack("<IIIII", 7, 0, 0, len(frame), len(frame)) + frame + b"\0" * (-len(frame) % 4)
        writer.write_block(BLOCK_ENHANCED_PACKET, body)  # interface 7 of a section with one interface
    table, damage = read_with_warnings(write(tmp_path / "iface.pcapng", stream.getvalue()))
    assert not damage
    assert table.status.tolist() == ["ok", DecodeStatus.UNSUPPORTED_LINK_TYPE.label]


def test_pcap_modified_record_headers(tmp_path: Path) -> None:
    """Kuznetzov's patched libpcap (magic 0xa1b2cd34): 24-byte record headers (ifindex, protocol, type, pad)."""
    frames = gwlb_frames(2)
    data = struct.pack("<IHHiIII", 0xA1B2CD34, 2, 4, 0, 0, 65535, LINKTYPE_ETHERNET)
    for k, frame in enumerate(frames):
        data += struct.pack("<IIIIIHBB", 100 + k, 5, len(frame), len(frame), 7, 0x0800, 17, 0) + frame
    table, damage = read_with_warnings(write(tmp_path / "modified.pcap", data))
    assert not damage
    assert table.ts_ns.tolist() == [100_000_005_000, 101_000_005_000]
    assert (table.status == DecodeStatus.OK.label).all() and (table.aws_flow_cookie == 0x3DC956AC).all()


# --- the magic decides, never the name ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, fmt, compress, expected",
    [
        ("really-pcapng.pcap", "pcapng", False, "pcapng"),
        ("really-pcap.pcapng", "pcap", False, "pcap"),
        ("really-gzip.pcap", "pcap", True, "pcap+gzip"),
        ("really-gzip-pcapng.pcapng", "pcapng", True, "pcapng+gzip"),
        ("not-gzip.pcap.gz", "pcap", False, "pcap"),
        ("no-extension", "pcapng", True, "pcapng+gzip"),
    ],
)
def test_magic_decides_the_format(tmp_path: Path, name: str, fmt: str, compress: bool, expected: str) -> None:
    built = build_pcap(count=3) if fmt == "pcap" else build_pcapng(count=3)
    table, damage = read_with_warnings(write(tmp_path / name, built.data, compress))
    assert not damage
    assert len(table) == 3
    assert table.attrs["captures"][0]["format"] == expected
    assert (table.status == DecodeStatus.OK.label).all()

