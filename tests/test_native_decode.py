"""The C decoder (gwcheck.decode._decode) as a C extension: its constants agree with the Python modules', its
arguments are checked (a wrong dtype is a TypeError, never a misread), it writes every column of every row it
decodes, and its digest is the reference decoder's bit for bit.

What it decodes is tested against the dpkt reference decoder (test_reference.py) and pinned (test_golden.py).
"""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest

from conftest import gwlb_frames
from gwcheck import decode
from gwcheck.decode import _decode, allocate_matrices, decode_frames
from gwcheck.decode import digest, geneve, ip, kernel, link, transport
from gwcheck.decode import reference
from gwcheck.schema import DecodeStatus, PacketKind

MODULES = {"link": link, "ip": ip, "transport": transport, "geneve": geneve, "digest": digest}


def frames_input(frames: list[bytes], link_type: int = 1, wire_extra: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """``frames`` laid end to end as one file's data and its record columns."""
    lengths = np.array([len(f) for f in frames], np.uint32)
    records = {
        "frame_offset": np.concatenate([[0], np.cumsum(lengths[:-1], dtype=np.int64)]).astype(np.int64),
        "cap_len_bytes": lengths,
        "wire_len_bytes": lengths + np.uint32(wire_extra),
        "link_type": np.full(len(frames), link_type, np.uint16),
    }
    return np.frombuffer(b"".join(frames), np.uint8).copy(), records


def record_arguments(data, records, matrices, port=6081):
    return (data, records["frame_offset"], records["cap_len_bytes"], records["wire_len_bytes"], records["link_type"],
            matrices["u8"], matrices["u16"], matrices["u32"], matrices["u64"], port)


def zeroed(n: int) -> dict[str, np.ndarray]:
    return {group: np.zeros((kernel.ROW_COUNTS[group], n), dtype) for group, dtype in kernel.STORAGE_DTYPES.items()}


def test_constants_agree_between_c_and_python() -> None:
    assert _decode.CONSTANTS, "the extension exports no constants"
    for qualified, value in _decode.CONSTANTS.items():
        module, name = qualified.split(".")
        assert int(getattr(MODULES[module], name)) == value, qualified
    assert link.AF_INET6_VALUES == (10, 24, 28, 30)  # spelled out in link.h
    assert geneve.AWS_OPTION_BYTES == (0, 8, 8, 4)  # geneve.h gw_aws_option_bytes


def test_layout_and_codes_agree_with_the_schema() -> None:
    assert _decode.ROWS == kernel.ROWS
    assert _decode.STATUS == {s.name: int(s) for s in DecodeStatus}
    assert _decode.KIND == {k.name: int(k) for k in PacketKind}


@pytest.mark.parametrize(
    "position, wrong",
    [
        (0, np.zeros(100, np.int8).view(np.float16)),  # data: 2-byte elements
        (0, np.zeros(100, np.int64)),
        (1, np.zeros(6, np.uint64).view(np.float64)),  # frame_offset: float64, same size
        (1, np.zeros(6, np.int32)),
        (2, np.zeros(6, np.float32)),  # cap_len
        (2, np.zeros(6, np.int64)),
        (3, np.zeros(6, np.uint16)),  # wire_len
        (4, np.zeros(6, np.uint32)),  # link_type
        (4, np.zeros(12, np.uint16)[::2]),  # not contiguous
        (5, np.zeros((kernel.ROW_COUNTS["u8"], 6), np.int16)),
        (5, np.zeros((kernel.ROW_COUNTS["u8"] - 1, 6), np.uint8)),  # a row short
        (5, np.zeros((6, kernel.ROW_COUNTS["u8"]), np.uint8).T),  # rows not contiguous
        (6, np.zeros((kernel.ROW_COUNTS["u16"], 6), np.int32)),
        (7, np.zeros((kernel.ROW_COUNTS["u32"], 6), np.float32)),
        (8, np.zeros((kernel.ROW_COUNTS["u64"], 6), np.float64)),
        (8, np.zeros((kernel.ROW_COUNTS["u64"], 6), np.uint64).byteswap().view(np.dtype(">u8"))),
        (8, np.zeros(kernel.ROW_COUNTS["u64"] * 6, np.uint64)),  # flat
        (8, "not an array"),
    ],
)
def test_wrong_arguments_raise_type_error(position: int, wrong) -> None:
    data, records = frames_input(gwlb_frames(6))
    arguments = list(record_arguments(data, records, zeroed(6)))
    arguments[position] = wrong
    with pytest.raises(TypeError):
        _decode.decode_records(*arguments, 0, 6, 0)


def test_read_only_matrices_raise_type_error() -> None:
    data, records = frames_input(gwlb_frames(6))
    matrices = zeroed(6)
    matrices["u32"].flags.writeable = False
    with pytest.raises(TypeError):
        decode_frames(data, records, matrices)


def test_bad_bounds_raise_value_error() -> None:
    data, records = frames_input(gwlb_frames(6))
    arguments = record_arguments(data, records, zeroed(6))
    for first, last, column in [(0, 7, 0), (-1, 6, 0), (3, 2, 0), (0, 6, 1), (0, 6, -1)]:
        with pytest.raises(ValueError):
            _decode.decode_records(*arguments, first, last, column)
    with pytest.raises(ValueError):
        _decode.decode_records(*arguments[:-1], 70000, 0, 6, 0)
    short = dict(records, link_type=records["link_type"][:5])
    with pytest.raises(ValueError):
        _decode.decode_records(*record_arguments(data, short, zeroed(6)), 0, 5, 0)


@pytest.mark.parametrize("offset, length", [(-1, 10), (0, 10**6), (10**6, 0), (2**40, 1)])
def test_a_record_outside_the_data_raises_value_error(offset: int, length: int) -> None:
    data, records = frames_input(gwlb_frames(3))
    records["frame_offset"][1] = offset
    records["cap_len_bytes"][1] = min(length, 2**32 - 1)
    with pytest.raises(ValueError, match="record 1"):
        decode_frames(data, records, zeroed(3))


def test_every_column_of_every_row_is_written() -> None:
    """Matrices full of ones decode as zeroed ones do: the kernel writes each field, 0 where the packet stops."""
    frames = gwlb_frames(12) + gwlb_frames(4, vlan=7)
    rng = random.Random(5)
    frames += [f[: rng.randrange(len(f))] for f in frames for _ in range(3)]  # truncated at every layer
    frames += [bytes(rng.randrange(256) for _ in range(rng.randrange(80))) for _ in range(20)]
    data, records = frames_input(frames)
    n = len(frames)
    expected = zeroed(n)
    decode_frames(data, records, expected)
    for link_type in (1, 101, 0, 999):  # Ethernet, raw, loopback (mostly non-IP), unsupported
        records["link_type"][:] = link_type
        ones = {g: np.full_like(m, np.iinfo(m.dtype).max) for g, m in zeroed(n).items()}
        decode_frames(data, records, ones)
        zeros = zeroed(n)
        decode_frames(data, records, zeros)
        for group in zeros:
            np.testing.assert_array_equal(ones[group], zeros[group], err_msg=f"{group} link type {link_type}")
    assert set(np.unique(expected["u8"][kernel.ROWS["status"][1]])) > {0}


def test_start_offset_and_column_slices_address_the_same_columns() -> None:
    data, records = frames_input(gwlb_frames(6))
    alone = zeroed(6)
    decode_frames(data, records, alone)
    wide = {g: np.full((m.shape[0], 10), 7, m.dtype) for g, m in alone.items()}
    decode_frames(data, records, wide, start=3)
    sliced = {g: np.full((m.shape[0], 10), 7, m.dtype) for g, m in alone.items()}
    decode_frames(data, records, {g: m[:, 2:8] for g, m in sliced.items()})
    for group in alone:
        np.testing.assert_array_equal(wide[group][:, 3:9], alone[group])
        assert (wide[group][:, :3] == 7).all() and (wide[group][:, 9:] == 7).all()
        np.testing.assert_array_equal(sliced[group][:, 2:8], alone[group])
        assert (sliced[group][:, :2] == 7).all() and (sliced[group][:, 8:] == 7).all()
    with pytest.raises(ValueError):
        decode_frames(data, records, wide, start=5)


def test_threads_decode_as_one_call() -> None:
    """decode_frames splits a large file between threads (the kernel releases the GIL): same columns."""
    frames = gwlb_frames(12)
    count = 2 * decode.MIN_PACKETS_PER_THREAD + 7
    data, records = frames_input([frames[k % len(frames)] for k in range(count)])
    threaded = allocate_matrices(count)
    decode_frames(data, records, threaded)
    single = zeroed(count)
    _decode.decode_records(*record_arguments(data, records, single), 0, count, 0)
    for group in single:
        np.testing.assert_array_equal(threaded[group], single[group])


def test_digest_is_the_reference_digest_bit_for_bit() -> None:
    """Every length around the word and stripe sizes, at every alignment, up to the very end of the buffer."""
    rng = random.Random(11)
    for length in list(range(0, 80)) + [95, 96, 97, 127, 128, 129, 1500]:
        payload = bytes(rng.randrange(256) for _ in range(length))
        for alignment in range(8):
            buffer = np.frombuffer(bytes(alignment) + payload, np.uint8)  # the payload ends the buffer
            for version in (0, 4, 6):
                expected = reference.inner_digest(payload, version)
                assert digest.inner_digest(buffer, alignment, alignment + length, version) == expected, (length, alignment, version)
    assert digest.inner_digest(b"abc", 2, 1, 4) == 0  # empty range: no digest
    with pytest.raises(ValueError):
        digest.inner_digest(b"abc", 1, 4, 4)
    with pytest.raises(TypeError):
        digest.inner_digest(np.zeros(4, np.uint16), 0, 4, 4)


def test_walk_options_checks_its_arguments() -> None:
    options = struct.pack(">HBB", 0x0108, 1, 2) + bytes(8) + struct.pack(">HBB", 0x0132, 0x85, 1) + bytes(4)
    data = np.frombuffer(bytes(3) + options, np.uint8)
    starts, counts = np.array([3], np.int64), np.array([2], np.int64)
    option_class, option_type = np.empty(2, np.uint16), np.empty(2, np.uint8)
    length, data_start = np.empty(2, np.uint16), np.empty(2, np.int64)
    geneve.walk_options(data, starts, counts, option_class, option_type, length, data_start)
    assert option_class.tolist() == [0x0108, 0x0132] and option_type.tolist() == [1, 0x85]
    assert length.tolist() == [8, 4] and data_start.tolist() == [7, 19]
    with pytest.raises(TypeError):
        geneve.walk_options(data, starts, counts, option_class.astype(np.int32), option_type, length, data_start)
    with pytest.raises(ValueError):  # more options than rows
        geneve.walk_options(data, starts, np.array([3], np.int64), option_class, option_type, length, data_start)
    with pytest.raises(ValueError):  # an option header past the data
        geneve.walk_options(data, np.array([len(data) - 3], np.int64), np.array([1], np.int64), option_class, option_type, length, data_start)

