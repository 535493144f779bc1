"""Property test: damaged captures are read or refused with a gwcheck error, never a crash or an out-of-bounds read.

Valid captures (pcap or pcapng, either byte order, several link types, plain or gzip) of GWLB traffic are
truncated, bit-flipped and spliced (byte ranges duplicated, removed, swapped, overwritten with boundary
integers).  ``read_packets`` must return a table whose every row has a valid status, or raise a
``GwcheckError``; warnings are allowed.

The capture walkers and the decoder are Numba kernels compiled without bounds checks, where an out-of-bounds
read returns garbage instead of raising.  So the property runs in a child pytest with ``NUMBA_BOUNDSCHECK=1``
(every index checked, an ``IndexError`` on a miss) and its own ``NUMBA_CACHE_DIR``, so that the checked
kernels neither load the unchecked ones from the shared cache nor overwrite them.
"""

from __future__ import annotations

import gzip
import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis (pip install gwcheck[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import frame_timestamps, gwlb_frames  # noqa: E402

CHILD = os.environ.get("GWCHECK_FUZZ_CHILD") == "1"
REPO = Path(__file__).resolve().parents[1]
MAX_EXAMPLES = int(os.environ.get("GWCHECK_FUZZ_EXAMPLES", "200"))  # raise it to hunt locally
CHILD_TIMEOUT_S = 600
LINK_TYPES = (1, 101, 113, 276)  # Ethernet, raw IP, Linux cooked v1 and v2
# Words written over length fields: zero, below and at the 8-byte minimums, the 16- and 32-bit limits, all ones.
BOUNDARY_WORDS = (0, 1, 7, 8, 0x7FFF, 0xFFFF, 0x0001_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF)

child_only = pytest.mark.skipif(
    not CHILD, reason="runs in the child pytest with NUMBA_BOUNDSCHECK=1 started by test_fuzz_with_numba_bounds_checks"
)


def test_fuzz_with_numba_bounds_checks(tmp_path: Path) -> None:
    if CHILD:
        pytest.skip("already the bounds-checked child")
    env = dict(
        os.environ,
        GWCHECK_FUZZ_CHILD="1",
        NUMBA_BOUNDSCHECK="1",
        NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    command = [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", "-W", "ignore::UserWarning",
               "-k", "child", str(Path(__file__))]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    output = result.stdout[-20_000:] + result.stderr[-5_000:]
    assert result.returncode == 0, output
    for name in ("test_child_bounds_checks_are_on", "test_child_damaged_captures_read_or_raise_gwcheck_errors"):
        assert f"PASSED tests/test_fuzz.py::{name}" in result.stdout, output


# --- the child: bounds-checked kernels --------------------------------------------------------------------------


@child_only
def test_child_bounds_checks_are_on() -> None:
    """Without this the property would prove nothing: a kernel reading past its array must raise."""
    from gwcheck._jit import u32be

    with pytest.raises(IndexError):
        u32be(np.zeros(2, np.uint8), 0)


@child_only
def test_child_corpus_reads_under_bounds_checks() -> None:
    import gwcheck

    from conftest import corpus_captures

    captures = corpus_captures()
    if not captures:
        pytest.skip("shared corpus not found: nothing to read under bounds checks")
    for capture in captures:
        assert len(gwcheck.read_packets(capture)) > 0, capture


def relink(frame: bytes, link_type: int) -> bytes:
    """An Ethernet frame of gwlb_frames as the same packet under another link type."""
    from gwcheck.simulate import frames as fr

    packet = frame[14:]
    if link_type == 101:
        return packet
    if link_type == 113:
        return fr.linux_sll(packet, fr.ethertype_of(packet))
    if link_type == 276:
        return fr.linux_sll2(packet, fr.ethertype_of(packet))
    return frame


def build_capture(fmt: str, big_endian: bool, count: int, link_type: int, vlan: bool, frame_ops: list[tuple] = ()) -> bytes:
    """A valid capture; ``frame_ops`` damage every frame (not the file), so the decoder meets the damage."""
    from gwcheck.capture.writer import PcapngWriter, PcapWriter

    frames = [relink(f, link_type) for f in gwlb_frames(count, vlan=7 if vlan and link_type == 1 else None)]
    frames = [mutate(f, frame_ops) for f in frames]
    stream = io.BytesIO()
    if fmt == "pcap":
        writer = PcapWriter(stream, link_type=link_type, nanosecond=big_endian, big_endian=big_endian)
        for ts, frame in zip(frame_timestamps(count), frames):
            writer.write(ts, frame)
    else:
        writer = PcapngWriter(stream, big_endian=big_endian)
        writer.add_interface(link_type, name="eth0", tsresol=9)
        writer.add_interface(1, tsresol=0x80 | 24, tsoffset=5)
        for k, (ts, frame) in enumerate(zip(frame_timestamps(count), frames)):
            block = ("enhanced", "simple", "obsolete")[k % 3]
            writer.write(ts, frame, interface=0, block=block)
    writer.close()
    return stream.getvalue()


def mutate(data: bytes, operations: list[tuple]) -> bytes:
    out = bytearray(data)
    for op, a, b, c, value in operations:
        n = len(out)
        if n == 0:
            break
        a, b, c = a % n, b % (n + 1), c % (n + 1)
        lo, hi = min(a, b), max(a, b)
        if op == "truncate":
            del out[a:]
        elif op == "flip":
            out[a] ^= value % 255 + 1
        elif op == "word":
            word = struct.pack("<I" if value & 1 else ">I", BOUNDARY_WORDS[value % len(BOUNDARY_WORDS)])
            out[a : a + 4] = word[: max(0, n - a)]
        elif op == "duplicate":
            out[c:c] = out[lo:hi]
        elif op == "remove":
            del out[lo:hi]
        elif op == "swap":
            first, second = sorted([(lo, hi), (c, min(n, c + (hi - lo)))])
            if first[1] <= second[0]:
                out[:] = out[: first[0]] + out[second[0] : second[1]] + out[first[1] : second[0]] + out[first[0] : first[1]] + out[second[1] :]
    return bytes(out)


operations = st.lists(
    st.tuples(
        st.sampled_from(["truncate", "flip", "flip", "flip", "word", "word", "duplicate", "remove", "swap"]),
        st.integers(0, 1 << 16),
        st.integers(0, 1 << 16),
        st.integers(0, 1 << 16),
        st.integers(0, 255),
    ),
    min_size=1,
    max_size=8,
)


@child_only
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    fmt=st.sampled_from(["pcap", "pcapng"]),
    big_endian=st.booleans(),
    count=st.integers(1, 6),
    link_type=st.sampled_from(LINK_TYPES),
    vlan=st.booleans(),
    compress=st.sampled_from(["none", "before", "after"]),
    ops=operations,
    frame_ops=st.one_of(st.just([]), operations),
)
def test_child_damaged_captures_read_or_raise_gwcheck_errors(
    tmp_path_factory: pytest.TempPathFactory, fmt, big_endian, count, link_type, vlan, compress, ops, frame_ops
) -> None:
    import gwcheck
    from gwcheck.errors import GwcheckError
    from gwcheck.schema import DecodeStatus, PacketKind

    data = build_capture(fmt, big_endian, count, link_type, vlan, frame_ops)
    if compress == "before":  # damage the gzip stream itself
        data = mutate(gzip.compress(data, mtime=0), ops)
    else:
        data = mutate(data, ops)
        if compress == "after":
            data = gzip.compress(data, mtime=0)
    path = tmp_path_factory.mktemp("fuzz") / f"damaged.{fmt}"
    path.write_bytes(data)
    try:
        table = gwcheck.read_packets(path)
    except GwcheckError:
        return
    assert set(table.status.astype(str)) <= {s.label for s in DecodeStatus}
    assert set(table.kind.astype(str)) <= {k.label for k in PacketKind}
    assert not table.status.isna().any() and not table.kind.isna().any()
    if compress == "none":
        assert (table.frame_offset + table.cap_len_bytes.astype("int64") <= len(data)).all()
