"""The capture layer's C walkers (gwcheck/capture/_walk.c) on their own: argument checks, exact timestamps, no read past the end.

What the walkers make of captures, damaged or not, is tested through ``index_capture`` and ``CaptureStream``
elsewhere; here are the things only the C side can get wrong.
"""

from __future__ import annotations

import ctypes
import io
import mmap
import random
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import gwcheck.capture._walk as native
from gwcheck.capture import index_capture, pcap, pcapng, stream
from gwcheck.capture.writer import PcapngWriter, PcapWriter
from gwcheck.schema import COLUMN_DTYPES, RECORD_COLUMNS

# --- the constants both sides keep ------------------------------------------------------------------------------


def test_constants_agree_with_the_python_modules() -> None:
    expected = {
        "PCAP_REASON_NONE": pcap._REASON_NONE,
        "PCAP_REASON_SHORT_HEADER": pcap._REASON_SHORT_HEADER,
        "PCAP_REASON_SHORT_DATA": pcap._REASON_SHORT_DATA,
        "PCAP_REASON_TOO_LONG": pcap._REASON_TOO_LONG,
        "PCAP_REASON_FULL": pcap._REASON_FULL,
        "PCAP_RECORD_HEADER_BYTES": pcap.RECORD_HEADER_BYTES,
        "PCAP_PREFETCH_BYTES": pcap.PREFETCH_BYTES,
        "PCAP_RESYNC_RECORDS": pcap.RESYNC_RECORDS,
        "PCAP_PLAUSIBLE_SPAN_SECONDS": pcap.PLAUSIBLE_SPAN_SECONDS,
        "PCAPNG_BLOCK_SECTION_HEADER": pcapng.BLOCK_SECTION_HEADER,
        "PCAPNG_BLOCK_INTERFACE_DESCRIPTION": pcapng.BLOCK_INTERFACE_DESCRIPTION,
        "PCAPNG_BLOCK_PACKET_OBSOLETE": pcapng.BLOCK_PACKET_OBSOLETE,
        "PCAPNG_BLOCK_SIMPLE_PACKET": pcapng.BLOCK_SIMPLE_PACKET,
        "PCAPNG_BLOCK_ENHANCED_PACKET": pcapng.BLOCK_ENHANCED_PACKET,
        "PCAPNG_BYTE_ORDER_MAGIC": pcapng.BYTE_ORDER_MAGIC,
        "PCAPNG_OPTION_END": pcapng.OPTION_END,
        "PCAPNG_OPTION_IF_TSRESOL": pcapng.OPTION_IF_TSRESOL,
        "PCAPNG_OPTION_IF_TSOFFSET": pcapng.OPTION_IF_TSOFFSET,
        "PCAPNG_DEFAULT_TSRESOL": pcapng.DEFAULT_TSRESOL,
        "PCAPNG_MIN_BLOCK_BYTES": pcapng.MIN_BLOCK_BYTES,
        "PCAPNG_MAX_INTERFACES": pcapng.MAX_INTERFACES,
        "PCAPNG_UNKNOWN_LINK_TYPE": pcapng.UNKNOWN_LINK_TYPE,
        "PCAPNG_REASON_NONE": pcapng._REASON_NONE,
        "PCAPNG_REASON_SHORT_BLOCK_HEADER": pcapng._REASON_SHORT_BLOCK_HEADER,
        "PCAPNG_REASON_BAD_BLOCK_LENGTH": pcapng._REASON_BAD_BLOCK_LENGTH,
        "PCAPNG_REASON_BLOCK_PAST_END": pcapng._REASON_BLOCK_PAST_END,
        "PCAPNG_REASON_BAD_BYTE_ORDER": pcapng._REASON_BAD_BYTE_ORDER,
        "PCAPNG_REASON_PACKET_PAST_BLOCK": pcapng._REASON_PACKET_PAST_BLOCK,
        "PCAPNG_REASON_TOO_MANY_INTERFACES": pcapng._REASON_TOO_MANY_INTERFACES,
        "PCAPNG_REASON_TRAILER_MISMATCH": pcapng._REASON_TRAILER_MISMATCH,
    }
    assert {name: getattr(native, name) for name in expected} == expected


def test_the_python_modules_call_the_c_walkers() -> None:
    assert pcap._walk is native.pcap_walk and pcap._resync is native.pcap_resync
    assert pcapng._walk is native.pcapng_walk and stream._last_section is native.last_section


# --- argument checks --------------------------------------------------------------------------------------------


def small_pcap(count: int = 5, big_endian: bool = False) -> bytes:
    out = io.BytesIO()
    writer = PcapWriter(out, link_type=1, big_endian=big_endian)
    for k in range(count):
        writer.write(1_700_000_000_000_000_000 + k * 1000, bytes(60 + k))
    writer.close()
    return out.getvalue()


def small_pcapng(count: int = 6, big_endian: bool = False) -> bytes:
    out = io.BytesIO()
    writer = PcapngWriter(out, big_endian=big_endian)
    writer.add_interface(1, name="eth0", tsresol=9)
    writer.add_interface(101, tsresol=0x80 | 20, tsoffset=3, snaplen=40)
    for k in range(count):
        writer.write(1_700_000_000_000_000_000 + k * 1000, bytes(50 + k), interface=k % 2,
                     block=("enhanced", "simple", "obsolete")[k % 3])
    writer.close()
    return out.getvalue()


def pcap_args(data: bytes, rows: int = 8, **replace) -> list:
    """pcap_walk's arguments for ``data`` (little-endian, microseconds), with any of them replaced by name."""
    args = {
        "buf": np.frombuffer(data, np.uint8), "start": 24, "limit": len(data), "n": 0, "big_endian": False,
        "header_bytes": 16, "frac_to_ns": 1000, "max_len": pcap.MAX_RECORD_BYTES,
        "ts_ns": np.zeros(rows, np.int64), "frame_offset": np.zeros(rows, np.int64),
        "wire_len": np.zeros(rows, np.uint32), "cap_len": np.zeros(rows, np.uint32),
    }
    args.update(replace)
    return list(args.values())


def pcapng_args(data: bytes, packets: int, interfaces: int, **replace) -> list:
    args = {"buf": np.frombuffer(data, np.uint8), "fill": True}
    args.update({name: np.zeros(packets, COLUMN_DTYPES[name]) for name in RECORD_COLUMNS})
    args.update({
        "if_link": np.zeros(interfaces, np.uint16), "if_snap": np.zeros(interfaces, np.uint32),
        "if_resol": np.zeros(interfaces, np.uint8), "if_offset": np.zeros(interfaces, np.int64),
        "if_block": np.zeros(interfaces, np.int64), "if_section": np.zeros(interfaces, np.int64),
    })
    args.update(replace)
    return list(args.values())


def wrong_arrays(array: np.ndarray) -> list[object]:
    """Stand-ins for ``array`` that must be refused: another kind or size of element, byte order, layout, or no buffer."""
    n = len(array)
    other_kind = {1: np.int8, 2: np.int16, 4: np.int32 if array.dtype.kind == "u" else np.uint32, 8: np.float64}
    wrong = [
        np.zeros(n, other_kind[array.itemsize]),
        np.zeros(n, np.uint8 if array.itemsize > 1 else np.uint16),
        np.zeros(2 * n + 2, array.dtype)[::2],
        list(range(n)),
    ]
    if array.itemsize > 1:
        wrong.append(np.zeros(n, array.dtype.newbyteorder()))
    if array.itemsize == 8 and array.dtype.kind == "i":
        wrong.append(np.zeros(n, np.uint64))
    return wrong


@pytest.mark.parametrize("position", [0, 8, 9, 10, 11])
def test_pcap_walk_refuses_a_wrong_array(position: int) -> None:
    data = small_pcap()
    good = pcap_args(data)
    for wrong in wrong_arrays(good[position]):
        args = list(good)
        args[position] = wrong
        with pytest.raises(TypeError):
            native.pcap_walk(*args)


@pytest.mark.parametrize("position", [8, 9, 10, 11])
def test_pcap_walk_refuses_a_read_only_output(position: int) -> None:
    args = pcap_args(small_pcap())
    args[position].flags.writeable = False
    with pytest.raises(TypeError, match="writable"):
        native.pcap_walk(*args)


@pytest.mark.parametrize("position", [0] + list(range(2, 14)))
def test_pcapng_walk_refuses_a_wrong_array(position: int) -> None:
    data = small_pcapng()
    good = pcapng_args(data, 6, 2)
    for wrong in wrong_arrays(good[position]):
        args = list(good)
        args[position] = wrong
        with pytest.raises(TypeError):
            native.pcapng_walk(*args)


def test_the_byte_walkers_refuse_what_is_not_uint8() -> None:
    data = small_pcapng()
    for wrong in wrong_arrays(np.frombuffer(data, np.uint8)):
        with pytest.raises(TypeError):
            native.last_section(wrong, 0)
        with pytest.raises(TypeError):
            native.pcap_resync(wrong, 0, 10, False, 16, 1000, 1000, 0)
    assert native.last_section(data, len(data)) == (0, 1)  # bytes are a uint8 buffer
    assert native.last_section(memoryview(bytearray(data)), len(data)) == (0, 1)


def test_pcap_walk_refuses_rows_and_offsets_out_of_range() -> None:
    data = small_pcap()
    with pytest.raises(ValueError, match="different lengths"):
        native.pcap_walk(*pcap_args(data, wire_len=np.zeros(7, np.uint32)))
    for n in (-1, 9):
        with pytest.raises(ValueError, match="outside"):
            native.pcap_walk(*pcap_args(data, n=n))
    with pytest.raises(ValueError, match="negative"):
        native.pcap_walk(*pcap_args(data, start=-16))
    with pytest.raises(ValueError, match="header_bytes"):
        native.pcap_walk(*pcap_args(data, header_bytes=12))
    with pytest.raises(ValueError):
        native.pcap_resync(np.frombuffer(data, np.uint8), -1, 10, False, 16, 1000, 1000, 0)
    with pytest.raises(ValueError):
        native.pcap_resync(np.frombuffer(data, np.uint8), 0, 10, False, 8, 1000, 1000, 0)


def test_pcap_walk_stops_full_at_the_arrays_end_and_resumes() -> None:
    data = small_pcap(count=5)
    args = pcap_args(data, rows=3)
    n, stop, reason, _ = native.pcap_walk(*args)
    assert (n, reason) == (3, pcap._REASON_FULL)
    args = pcap_args(data, rows=5, start=stop, n=3)
    assert native.pcap_walk(*args)[:3] == (5, len(data), pcap._REASON_NONE)


def test_pcapng_walk_refuses_arrays_shorter_than_the_blocks() -> None:
    data = small_pcapng(count=6)
    n, n_if, _, reason, _ = native.pcapng_walk(*pcapng_args(data, 0, 0, fill=False))
    assert (n, n_if, reason) == (6, 2, pcapng._REASON_NONE)
    with pytest.raises(ValueError, match="different lengths"):
        native.pcapng_walk(*pcapng_args(data, 6, 2, cap_len_bytes=np.zeros(5, np.uint32)))
    with pytest.raises(ValueError, match="different lengths"):
        native.pcapng_walk(*pcapng_args(data, 6, 2, if_section=np.zeros(1, np.int64)))
    for packets, interfaces in ((5, 2), (6, 1), (0, 0)):
        args = pcapng_args(data, packets + 1, interfaces + 1)
        fenced = [a[:-1] if isinstance(a, np.ndarray) and a is not args[0] else a for a in args]
        with pytest.raises(ValueError, match="too short"):
            native.pcapng_walk(*fenced)
        for whole in args[2:]:  # the row past each short array is untouched
            assert whole[-1] == 0


def test_last_section_refuses_what_is_not_whole_blocks() -> None:
    data = small_pcapng()
    assert native.last_section(data, 0) == (0, 0)
    for stop in (-1, len(data) + 1):
        with pytest.raises(ValueError, match="outside"):
            native.last_section(data, stop)
    with pytest.raises(ValueError, match="no whole block"):
        native.last_section(data[:6], 6)
    with pytest.raises(ValueError, match="no whole block"):
        native.last_section(bytes(16), 16)  # a zero length would never end


# --- timestamps -------------------------------------------------------------------------------------------------

INT64_MIN = -(1 << 63)


def wrap(x: int) -> int:
    """An int as int64 arithmetic leaves it: wrapped."""
    return (x - INT64_MIN) % (1 << 64) + INT64_MIN


def squared(base: float, exponent: int) -> float:
    """float ** int by repeated squaring, as the walker computes it."""
    result = 1.0
    while exponent:
        if exponent & 1:
            result *= base
        exponent >>= 1
        base *= base
    return result


def to_int64(x: float) -> int:
    return int(x) if -(2.0**63) <= x < 2.0**63 else INT64_MIN


def units_to_ns(units: int, resol: int) -> int:
    """The original kernel's conversion, in Python: a power of 10, or of 2 with the top bit set (pcapng 4.2)."""
    exponent = resol & 0x7F
    if resol & 0x80:
        if exponent <= 30:
            whole = units >> exponent
            fraction = ((units & ((1 << exponent) - 1)) * 10**9) % (1 << 64) >> exponent
            return wrap(wrap(whole) * 10**9 + fraction)
        return to_int64(float(units) / squared(2.0, exponent) * 1e9)
    if exponent <= 9:
        return wrap(wrap(units) * 10 ** (9 - exponent))
    if exponent <= 18:
        return wrap(units // 10 ** (exponent - 9))
    return to_int64(float(units) / squared(10.0, exponent - 9))


EDGE_UNITS = [0, 1, 999, 10**6, 10**9, 2**32 - 1, 2**32, 2**53 + 1, 2**62, 2**63 - 1, 2**63, 2**64 - 1,
              1_700_000_000_123_456, 1_700_000_000_123_456_789, 0xDEADBEEFCAFEBABE]
OFFSETS = [0, 1, -1, 5, 2**33, -(2**40), 2**62, INT64_MIN, 2**63 - 1, 9_223_372_036]


@pytest.mark.parametrize("big_endian", [False, True])
def test_every_tsresol_converts_exactly(tmp_path: Path, big_endian: bool) -> None:
    """All 256 if_tsresol bytes, edge timestamp units, if_tsoffsets that overflow: int64 nanoseconds, wrapped as today."""
    order = ">" if big_endian else "<"
    out = io.BytesIO()
    writer = PcapngWriter(out, big_endian=big_endian)
    interfaces = []
    for resol in range(256):
        offset = OFFSETS[resol % len(OFFSETS)]
        options = struct.pack(order + "HH", pcapng.OPTION_IF_TSRESOL, 1) + bytes([resol, 0, 0, 0])
        options += struct.pack(order + "HHq", pcapng.OPTION_IF_TSOFFSET, 8, offset) + struct.pack(order + "HH", 0, 0)
        writer.write_block(pcapng.BLOCK_INTERFACE_DESCRIPTION, struct.pack(order + "HHI", 1, 0, 0) + options)
        interfaces.append((resol, offset))
    expected = []
    for g in range(257):  # 256: an interface the section does not describe
        for units in EDGE_UNITS:
            body = struct.pack(order + "IIIII", g, units >> 32, units & 0xFFFFFFFF, 4, 4) + b"abcd"
            writer.write_block(pcapng.BLOCK_ENHANCED_PACKET, body)
            if g < 256:
                resol, offset = interfaces[g]
                expected.append(wrap(units_to_ns(units, resol) + wrap(offset * 10**9)))
            else:
                expected.append(units_to_ns(units, pcapng.DEFAULT_TSRESOL))
    writer.close()
    path = tmp_path / "tsresol.pcapng"
    path.write_bytes(out.getvalue())
    index = index_capture(path)
    assert index.damage is None
    assert index.columns["ts_ns"].tolist() == expected
    assert [i.ts_resolution for i in index.interfaces][:10] == ["s", "10^-1 s", "10^-2 s", "ms", "10^-4 s", "10^-5 s",
                                                                "us", "10^-7 s", "10^-8 s", "ns"]


def test_pcap_timestamps_in_both_resolutions(tmp_path: Path) -> None:
    for nanosecond in (False, True):
        out = io.BytesIO()
        writer = PcapWriter(out, link_type=1, nanosecond=nanosecond, big_endian=nanosecond)
        stamps = [0, 999_999_000, (2**32 - 1) * 10**9 + 999_999_000]
        for ts in stamps:
            writer.write(ts, b"x" * 20)
        writer.close()
        path = tmp_path / "ts.pcap"
        path.write_bytes(out.getvalue())
        assert index_capture(path).columns["ts_ns"].tolist() == stamps


# --- no read past the end ---------------------------------------------------------------------------------------


def walk_everything(data: np.ndarray) -> None:
    """Every walker over ``data``, the way the Python modules call them and from odd starts."""
    head = bytes(data[:24])
    order = pcap.magic_byte_order(head[:4])
    if order is not None and len(data) >= 24:
        layout = pcap.PcapLayout.from_header(head, *order)
        layout.walk(data, 24)
        for start in (25, len(data) - 1, len(data)):
            layout._walk_piece(data, max(start, 0), len(data))
        native.pcap_resync(data, 0, len(data) + 64, layout.big_endian, layout.header_bytes, layout.frac_to_ns,
                           layout.max_len, 0)
    walk = pcapng.walk_blocks(data)
    native.last_section(data, max(walk.stop, 0))


def guard_page_walks() -> None:
    """Walk every cut of small captures (and mutations of them) whose last byte sits just before a PROT_NONE page."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    page = mmap.PAGESIZE
    pages = 4
    region = mmap.mmap(-1, (pages + 1) * page)
    base = ctypes.addressof(ctypes.c_char.from_buffer(region))
    if libc.mprotect(base + pages * page, page, 0) != 0:  # PROT_NONE
        raise OSError(ctypes.get_errno(), "mprotect")
    rng = random.Random(7)
    captures = [small_pcap(8), small_pcap(8, big_endian=True), small_pcapng(12), small_pcapng(12, big_endian=True)]
    mutated = []
    for data in captures:
        for _ in range(16):
            damaged = bytearray(data)
            at = rng.randrange(len(damaged))
            damaged[at : at + 4] = struct.pack("<I", rng.choice([0, 0xFFFFFFFF, 12, 16, 28, 1 << 20, rng.randrange(1 << 32)]))
            mutated.append(bytes(damaged))
    walked = 0
    for data in captures + mutated:
        assert len(data) <= pages * page
        for cut in range(len(data) + 1):
            piece = data[:cut]
            start = pages * page - len(piece)
            region[start : pages * page] = piece
            walk_everything(np.frombuffer(region, np.uint8, count=len(piece), offset=start))
            walked += 1
    print(f"walked {walked} buffers ending at a guard page")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect through ctypes: Linux")
def test_no_walker_reads_past_the_end_of_its_buffer() -> None:
    """A read one byte past a buffer that ends at a PROT_NONE page kills the child with SIGSEGV."""
    code = f"import runpy; runpy.run_path({__file__!r})['guard_page_walks']()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"exit {result.returncode}\n{result.stdout}\n{result.stderr}"
    assert "ending at a guard page" in result.stdout
