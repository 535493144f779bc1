"""Property test: damaged captures are read or refused with a gwcheck error, never a crash or an out-of-bounds read.

Valid captures (pcap or pcapng, either byte order, several link types, plain or gzip) of GWLB traffic are
truncated, bit-flipped and spliced (byte ranges duplicated, removed, swapped, overwritten with boundary
integers).  ``read_packets`` and the stream reader must return tables whose every row has a valid status,
or raise a ``GwcheckError``; warnings are allowed.

The capture walkers, the decoder and the table kernels are C, where an out-of-bounds read returns garbage
instead of raising.  So the property runs in a child pytest over a copy of the package whose extensions are
built with AddressSanitizer and UndefinedBehaviorSanitizer (``-fsanitize=address,undefined``), preloaded
into the interpreter, with ``PYTHONMALLOC=malloc`` so that Python's own buffers get red zones too: any read
or write past a buffer stops the child with a report.  In the child ``read_packets`` reads every capture
from an exact-size heap copy instead of the mmap, and the stream reader is fed from memory in small reads.
A one-byte over-read planted in the digest makes this test fail.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import struct
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytest.importorskip("hypothesis", reason="the fuzz test needs hypothesis (pip install gwcheck[test])")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from conftest import frame_timestamps, gwlb_frames  # noqa: E402

CHILD = os.environ.get("GWCHECK_FUZZ_CHILD") == "1"
REPO = Path(__file__).resolve().parents[1]
MAX_EXAMPLES = int(os.environ.get("GWCHECK_FUZZ_EXAMPLES", "200"))  # raise it to hunt locally
BUILD_TIMEOUT_S = 300
CHILD_TIMEOUT_S = 900
SANITIZERS = "-fsanitize=address,undefined"
SANITIZER_RUNTIMES = ("libasan.so", "libubsan.so")
LINK_TYPES = (1, 101, 113, 276)  # Ethernet, raw IP, Linux cooked v1 and v2
# Words written over length fields: zero, below and at the 8-byte minimums, the 16- and 32-bit limits, all ones.
BOUNDARY_WORDS = (0, 1, 7, 8, 0x7FFF, 0xFFFF, 0x0001_0000, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF)
STREAM_BATCH_BYTES = 97  # small and odd, so that records straddle the reads

if CHILD:
    # The child reads every capture from an exact-size heap copy rather than through mmap (or a bytes object,
    # whose hidden trailing NUL would absorb a one-byte over-read), so a read past the end hits a red zone.
    import numpy as np

    import gwcheck.capture
    from gwcheck.capture.source import CaptureBytes, open_bytes

    def _open_exact_copy(path: str | os.PathLike) -> CaptureBytes:
        source = open_bytes(path)
        return CaptureBytes(source.path, np.array(source.data), gzip=source.gzip, damage=source.damage)

    gwcheck.capture.open_bytes = _open_exact_copy

child_only = pytest.mark.skipif(
    not CHILD, reason="runs in the child pytest under AddressSanitizer started by test_fuzz_under_address_sanitizer"
)


def _sanitizer_runtimes(compiler: str) -> list[str]:
    """The sanitizer runtimes the compiler links against, to preload into Python; empty if it has none."""
    paths = []
    for name in SANITIZER_RUNTIMES:
        found = subprocess.run([compiler, f"-print-file-name={name}"], capture_output=True, text=True).stdout.strip()
        if not os.path.isabs(found) or not os.path.exists(found):
            return []
        paths.append(found)
    return paths


def _build_sanitized_package(root: Path) -> None:
    """Copy the package and build its extensions in place with the sanitizers, through setup.py itself."""
    ignore = shutil.ignore_patterns("*.so", "__pycache__")
    shutil.copytree(REPO / "gwcheck", root / "gwcheck", ignore=ignore)
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, root / name)
    flags = f"{SANITIZERS} -fno-omit-frame-pointer -fno-sanitize-recover=all -g"
    env = dict(os.environ, CFLAGS=flags, LDFLAGS=SANITIZERS)
    result = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-5_000:] + result.stderr[-5_000:]


def test_fuzz_under_address_sanitizer(tmp_path: Path) -> None:
    if CHILD:
        pytest.skip("already the sanitized child")
    compiler = sysconfig.get_config_var("CC").split()[0]
    runtimes = _sanitizer_runtimes(compiler)
    if not runtimes:
        pytest.skip(f"{compiler} has no AddressSanitizer/UBSan runtime (libasan, libubsan): cannot build checked kernels")
    _build_sanitized_package(tmp_path)
    env = dict(
        os.environ,
        GWCHECK_FUZZ_CHILD="1",
        LD_PRELOAD=" ".join(runtimes),
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1",  # CPython keeps objects alive at exit by design
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        PYTHONMALLOC="malloc",
        PYTHONDONTWRITEBYTECODE="1",
    )
    # cwd is the sanitized copy: `python -m pytest` puts it first on sys.path, ahead of the installed package.
    # -s: a sanitizer report is written to stderr as the child dies, which capture would swallow.
    command = [sys.executable, "-m", "pytest", "-q", "-s", "-rA", "-p", "no:cacheprovider", "-W", "ignore::UserWarning",
               "--rootdir", str(REPO), "-k", "child", str(Path(__file__))]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    output = result.stdout[-20_000:] + result.stderr[-10_000:]
    assert result.returncode == 0, output
    passed = [line.rsplit("::", 1)[-1] for line in result.stdout.splitlines() if line.startswith("PASSED ")]
    for name in ("test_child_kernels_are_sanitized", "test_child_corpus_reads_under_sanitizers",
                 "test_child_damaged_captures_read_or_raise_gwcheck_errors"):
        assert name in passed, output


# --- the child: sanitized kernels --------------------------------------------------------------------------


@child_only
def test_child_kernels_are_sanitized() -> None:
    """Without this the property would prove nothing: every extension must be the instrumented copy."""
    import gwcheck.capture._walk
    import gwcheck.decode._decode
    import gwcheck.tables._kernels

    for module in (gwcheck.capture._walk, gwcheck.decode._decode, gwcheck.tables._kernels):
        path = Path(module.__file__)
        assert not path.is_relative_to(REPO), f"{path} is the installed build, not the sanitized copy"
        assert b"__asan_report_load" in path.read_bytes(), f"{path} is not instrumented"


@child_only
def test_child_corpus_reads_under_sanitizers() -> None:
    import gwcheck

    from conftest import corpus_captures

    captures = corpus_captures()
    if not captures:
        pytest.skip("shared corpus not found: nothing to read under the sanitizers")
    for capture in captures:
        table = gwcheck.read_packets(capture)
        assert len(table) > 0, capture
        streamed = _read_stream(capture.read_bytes())
        assert len(streamed) == len(table), capture
    gwcheck.analyze(captures)  # pairing and grouping over every corpus packet at once


def _read_stream(data: bytes):
    """The packet table of ``data`` through the stream reader, fed from memory in small reads."""
    import gwcheck
    from gwcheck.tables.packets import concat_packets

    return concat_packets(list(gwcheck.iter_packet_batches(io.BytesIO(data), batch_bytes=STREAM_BATCH_BYTES)))


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
        _read_stream(data)
    except GwcheckError:
        pass
    try:
        table = gwcheck.read_packets(path)
    except GwcheckError:
        return
    assert set(table.status.astype(str)) <= {s.label for s in DecodeStatus}
    assert set(table.kind.astype(str)) <= {k.label for k in PacketKind}
    assert not table.status.isna().any() and not table.kind.isna().any()
    if compress == "none":
        assert (table.frame_offset + table.cap_len_bytes.astype("int64") <= len(data)).all()
    try:
        gwcheck.analyze(path)  # the pairing and grouping kernels over whatever survived
    except GwcheckError:
        pass
