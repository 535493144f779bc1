"""Reading a capture as a byte stream (gwcheck.capture.stream, iter_packet_batches): whatever the read size, the
batches concatenate to exactly the table read_packets gives for the same bytes, with the same description and the
same damage warning; a pipe yields packets as they arrive.

Captures are built in memory with gwcheck's own writers; the checked-in samples are read too.
"""

from __future__ import annotations

import gzip
import io
import os
import queue
import struct
import threading
import warnings
from pathlib import Path

import pandas as pd
import pytest

import gwcheck
from gwcheck.capture.pcapng import BLOCK_ENHANCED_PACKET
from gwcheck.capture.stream import CaptureStream
from gwcheck.capture.writer import PcapngWriter, PcapWriter
from gwcheck.errors import CaptureDamageWarning, CaptureError, NotACaptureError
from gwcheck.tables.packets import MergedStreams, PacketStream, iter_packet_batches

from conftest import frame_timestamps, gwlb_frames

SAMPLES = Path(__file__).resolve().parents[1] / "samples"
READ_SIZES = [7, 1024, 65536]
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101


def pcap_bytes(count: int = 12, big_endian: bool = False, nanosecond: bool = False, vlan: int | None = None) -> bytes:
    stream = io.BytesIO()
    with PcapWriter(stream, big_endian=big_endian, nanosecond=nanosecond) as writer:
        for ts, frame in zip(frame_timestamps(count), gwlb_frames(count, vlan=vlan)):
            writer.write(ts, frame)
    return stream.getvalue()


def pcapng_bytes(count: int = 12) -> bytes:
    """Two sections, the second big-endian; interfaces with names, clocks and link types; every kind of packet block."""
    frames, times = gwlb_frames(count), frame_timestamps(count)
    stream = io.BytesIO()
    writer = PcapngWriter(stream)
    writer.add_interface(LINKTYPE_ETHERNET, name="eth0", tsresol=9)
    writer.add_interface(LINKTYPE_RAW, name="tun0", tsresol=6)
    for k in range(count // 2):
        if k % 2:
            writer.write(times[k], frames[k][14:], interface=1)  # the IP packet without its Ethernet header
        else:
            writer.write(times[k], frames[k], interface=0, block="obsolete" if k == 2 else "enhanced")
    writer.write_block(0x0BAD, b"skip me")  # a block a reader skips
    writer.close()
    writer = PcapngWriter(stream, big_endian=True)
    writer.add_interface(LINKTYPE_ETHERNET, name="eth1", tsresol=0x80 | 20, tsoffset=2)
    for k in range(count // 2, count):
        writer.write(times[k], frames[k], block="simple" if k == count - 1 else "enhanced")
    writer.add_interface(LINKTYPE_ETHERNET, name="late")
    writer.write(times[-1] + 1000, frames[0], interface=1)
    writer.close()
    return stream.getvalue()


CAPTURES = {
    "pcap": lambda: pcap_bytes(),
    "pcap-big-endian-ns-vlan": lambda: pcap_bytes(big_endian=True, nanosecond=True, vlan=7),
    "pcapng-sections": pcapng_bytes,
    "pcap-gzip": lambda: gzip.compress(pcap_bytes(), mtime=0),
    "pcapng-gzip-two-members": lambda: (lambda d: gzip.compress(d[:300], mtime=0) + gzip.compress(d[300:], mtime=0))(pcapng_bytes()),
    "sample-healthy": lambda: (SAMPLES / "healthy.pcap").read_bytes(),
    "sample-split-pcapng": lambda: (SAMPLES / "split-appliance2.pcapng").read_bytes(),
}


def read_file(path: Path):
    """read_packets' table and its damage warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = gwcheck.read_packets(path)
    return table, [w.message for w in caught if isinstance(w.message, CaptureDamageWarning)]


def read_stream(data: bytes, name: str, read_size: int):
    """The batches of the stream reader, and its damage warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        batches = list(iter_packet_batches(io.BytesIO(data), batch_bytes=read_size, name=name))
    return batches, [w.message for w in caught if isinstance(w.message, CaptureDamageWarning)]


def assert_same_table(batches: list[pd.DataFrame], expected: pd.DataFrame) -> None:
    got = pd.concat(batches, ignore_index=True)
    got.attrs, expected = {}, expected.copy()
    expected.attrs = {}
    pd.testing.assert_frame_equal(got, expected)


@pytest.mark.parametrize("read_size", READ_SIZES)
@pytest.mark.parametrize("kind", sorted(CAPTURES))
def test_stream_gives_read_packets_table(tmp_path: Path, kind: str, read_size: int) -> None:
    data = CAPTURES[kind]()
    path = tmp_path / f"{kind}.cap"
    path.write_bytes(data)
    expected, expected_damage = read_file(path)
    batches, damage = read_stream(data, str(path), read_size)
    assert len(expected) > 0 and not expected_damage and not damage
    assert_same_table(batches, expected)
    assert batches[-1].attrs["captures"] == expected.attrs["captures"]
    if read_size == 7:
        assert len(batches) > 1


def test_batches_describe_the_stream_so_far() -> None:
    data = pcap_bytes(12)
    batches = list(iter_packet_batches(io.BytesIO(data), batch_bytes=200))
    counts = [b.attrs["captures"][0]["packets"] for b in batches]
    assert counts == list(pd.Series([len(b) for b in batches]).cumsum())
    assert batches[-1].attrs["captures"][0]["path"] == "<stream>"
    assert set(batches[0]["file"].cat.categories) == {"<stream>"}


CUT_STRIDE = 11  # cuts every 11th byte (and every byte of the first and last 64): each record is cut at several places


@pytest.mark.parametrize("kind", ["pcap", "pcapng-sections", "pcap-gzip"])
def test_stream_cut_anywhere_ends_like_read_packets(tmp_path: Path, kind: str) -> None:
    whole = CAPTURES[kind]()
    cuts = sorted({*range(1, 64), *range(64, len(whole), CUT_STRIDE), *range(max(len(whole) - 64, 1), len(whole) + 1)})
    for cut in cuts:
        data = whole[:cut]
        path = tmp_path / f"cut-{cut}"
        path.write_bytes(data)
        try:
            expected, expected_damage = read_file(path)
        except CaptureError as error:
            with pytest.raises(type(error)):
                read_stream(data, str(path), 200)
            continue
        batches, damage = read_stream(data, str(path), 200)
        got = pd.concat(batches, ignore_index=True)
        for column in ("ts_ns", "frame_offset", "cap_len_bytes", "interface", "inner_digest"):
            assert got[column].tolist() == expected[column].tolist(), (cut, column)
        assert batches[-1].attrs["captures"] == expected.attrs["captures"], cut
        assert [(w.path, w.offset, w.reason, w.records_read) for w in damage] == [
            (w.path, w.offset, w.reason, w.records_read) for w in expected_damage
        ], cut


def test_cut_mid_record_warns_and_ends_with_the_packets_before() -> None:
    data = pcap_bytes(5)
    cut = len(data) - 10
    with pytest.warns(CaptureDamageWarning, match=r"live\.pcap: damaged at byte \d+: record of \d+ captured bytes runs past the end") as caught:
        batches = list(iter_packet_batches(io.BytesIO(data[:cut]), batch_bytes=100, name="live.pcap"))
    assert sum(len(b) for b in batches) == 4
    assert caught[0].message.records_read == 4
    assert len(batches[-1]) == 0 and batches[-1].attrs["captures"][0]["damage"]["offset"] == caught[0].message.offset


def test_record_too_long_stops_the_stream(tmp_path: Path) -> None:
    data = bytearray(pcap_bytes(4))
    second = 24 + 16 + struct.unpack_from("<I", data, 24 + 8)[0]
    struct.pack_into("<I", data, second + 8, 10_000_000)
    path = tmp_path / "long.pcap"
    path.write_bytes(bytes(data))
    expected, expected_damage = read_file(path)
    stream = CaptureStream(io.BytesIO(bytes(data)), str(path), chunk_bytes=16)
    assert sum(len(batch) for batch in stream) == 1
    assert stream.damage.offset == second == expected_damage[0].offset
    assert stream.damage.reason == expected_damage[0].reason


def test_corrupt_pcapng_block(tmp_path: Path) -> None:
    data = bytearray(pcapng_bytes(6))
    epb = data.index(struct.pack("<I", BLOCK_ENHANCED_PACKET))
    struct.pack_into("<I", data, epb + 4, 30)  # a block length that is not a multiple of 4
    path = tmp_path / "bad.pcapng"
    path.write_bytes(bytes(data))
    expected, expected_damage = read_file(path)
    batches, damage = read_stream(bytes(data), str(path), 1000)
    assert_same_table(batches, expected)
    assert [(w.offset, w.reason) for w in damage] == [(w.offset, w.reason) for w in expected_damage] != []


@pytest.mark.parametrize(
    ("data", "error", "text"),
    [
        (b"", NotACaptureError, "stream ends after 0 bytes"),
        (b"ab", NotACaptureError, "not a pcap or pcapng capture"),
        (b"this is not a capture file\n", NotACaptureError, "neither pcap nor pcapng"),
        (gzip.compress(b"GET / HTTP/1.1\r\n" * 20), NotACaptureError, "after gzip decompression"),
        (pcap_bytes()[:20], CaptureError, "inside the pcap file header"),
    ],
    ids=["empty", "short", "text", "gzip-text", "cut-header"],
)
def test_not_a_capture_stream(data: bytes, error: type, text: str) -> None:
    with pytest.raises(error, match=text) as info:
        list(iter_packet_batches(io.BytesIO(data), batch_bytes=3, name="pipe"))
    assert info.value.path == "pipe" and info.value.offset == 0


def test_empty_capture_gives_one_empty_described_table() -> None:
    data = pcap_bytes(0)
    (table,) = iter_packet_batches(io.BytesIO(data))
    assert len(table) == 0 and table.attrs["captures"][0]["format"] == "pcap"
    assert list(table.columns) == list(gwcheck.read_packets(SAMPLES / "healthy.pcap").columns)


def test_tee_writes_every_byte_read() -> None:
    data = pcapng_bytes()
    tee = io.BytesIO()
    packets = PacketStream(io.BytesIO(data), batch_bytes=100, tee=tee)
    assert sum(len(batch) for batch in packets) == 13
    assert tee.getvalue() == data


def test_pipe_yields_packets_as_they_arrive() -> None:
    """A batch comes out as soon as its records are in the pipe, long before the writer closes it."""
    data = pcap_bytes(10)
    first = 24 + sum(16 + len(f) for f in gwlb_frames(10)[:3])
    read_fd, write_fd = os.pipe()
    batches: queue.Queue = queue.Queue()

    def consume() -> None:
        with os.fdopen(read_fd, "rb") as pipe:
            for batch in iter_packet_batches(pipe, batch_bytes=1 << 20):
                batches.put(batch)
        batches.put(None)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    with os.fdopen(write_fd, "wb", buffering=0) as pipe:
        pipe.write(data[: first + 5])  # three whole records and the start of the fourth
        assert len(batches.get(timeout=60)) == 3
        pipe.write(data[first + 5 :])
    rest = []
    while (batch := batches.get(timeout=60)) is not None:
        rest.append(batch)
    reader.join(timeout=10)
    assert sum(len(b) for b in rest) == 7


@pytest.mark.parametrize("batch_bytes", [4096, 20_000, 1 << 20])
def test_merged_streams_give_the_read_packets_table(batch_bytes: int) -> None:
    """Several captures merged as streams, a batch at a time, concatenate to read_packets of them all."""
    paths = [str(p) for p in sorted(SAMPLES.glob("split-appliance*.pcapng"))]
    assert len(paths) == 3
    whole = gwcheck.read_packets(paths)
    parts = list(MergedStreams(paths, batch_bytes=batch_bytes))
    tables = [table for table, _ in parts]
    assert all(table["file"].cat.categories.tolist() == paths for table in tables)
    assert all((t["ts_ns"].diff().dropna() >= 0).all() for t in tables)
    merged = pd.concat(tables, ignore_index=True)
    pd.testing.assert_frame_equal(merged, whole)
    assert parts[-1][1] == frozenset(paths)
    assert tables[-1].attrs["captures"] == whole.attrs["captures"]
    if batch_bytes < 1 << 20:
        assert len(tables) > 3  # released a batch at a time, not all at the end


def test_merged_streams_name_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CaptureError, match="missing.pcap"):
        list(MergedStreams([str(SAMPLES / "healthy.pcap"), str(tmp_path / "missing.pcap")]))
