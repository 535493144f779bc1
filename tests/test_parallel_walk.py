"""The threaded pcap walk gives exactly the records, and the damage, of one walk from the start."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import gwcheck.capture.pcap as pcap
from gwcheck.capture import index_capture
from gwcheck.simulate import Scenario, simulate


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("walk") / "walk.pcap"
    simulate(Scenario(seed=12, flows=150, over_mtu=3, gso=3), path)
    return path


def index_with(path: Path, monkeypatch: pytest.MonkeyPatch, threads: int | None):
    """index_capture walked by ``threads`` threads, or by one walk when None."""
    with monkeypatch.context() as m:
        if threads is None:
            m.setattr(pcap, "PARALLEL_WALK_BYTES", 1 << 62)
        else:
            m.setattr(pcap, "PARALLEL_WALK_BYTES", 1)
            m.setattr(pcap, "MAX_WALK_THREADS", threads)
            m.setattr(pcap.os, "cpu_count", lambda: threads)
        return index_capture(path)


def assert_same(a, b) -> None:
    assert a.columns.keys() == b.columns.keys()
    for name in a.columns:
        np.testing.assert_array_equal(a.columns[name], b.columns[name], err_msg=name)
    assert a.damage == b.damage


@pytest.mark.parametrize("threads", [2, 3, 4])
def test_pieces_join_into_the_single_walk(capture: Path, monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    serial = index_with(capture, monkeypatch, None)
    assert_same(index_with(capture, monkeypatch, threads), serial)
    assert len(serial) > 1000


def test_damage_is_found_where_one_walk_finds_it(capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = capture.read_bytes()
    for cut in np.linspace(len(data) // 3, len(data) - 1, 25).astype(int):
        damaged = tmp_path / "cut.pcap"
        damaged.write_bytes(data[:cut])
        assert_same(index_with(damaged, monkeypatch, 4), index_with(damaged, monkeypatch, None))


def test_a_corrupt_length_in_the_middle(capture: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serial = index_with(capture, monkeypatch, None)
    data = bytearray(capture.read_bytes())
    record = int(serial.columns["frame_offset"][len(serial) * 2 // 3]) - 16
    data[record + 8 : record + 12] = (1 << 30).to_bytes(4, "little")  # a captured length past any maximum
    corrupt = tmp_path / "corrupt.pcap"
    corrupt.write_bytes(bytes(data))
    walked = index_with(corrupt, monkeypatch, 4)
    assert_same(walked, index_with(corrupt, monkeypatch, None))
    assert walked.damage.offset == record
