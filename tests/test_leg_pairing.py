"""Leg pairing (gwcheck/tables/legs.py) checked against a plain-Python model of its rules: legs grouped by place and
inner digest, each key paired first-in first-out within the window, then fragmented egress left over paired on
the inner headers.  Random legs of few keys, so that pairs are ambiguous, ingress expires, time steps back, and
several files, appliances and GWLB nodes share digests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gwcheck.tables import legs as legs_module
from gwcheck.tables.legs import NO_PEER, Direction

from conftest import pair_first_in_first_out

PLACE = ["file_code", "appliance", "gwlb_node", "outer_sport"]
HEADERS = ["inner_ip_version", "inner_proto", "inner_ip_id", "inner_sport", "inner_dport", "inner_tcp_seq", "inner_tcp_ack"]


def _model_pass(legs: pd.DataFrame, keys: list[str], candidates, window_ns: int, peer: list, ambiguous: list) -> None:
    """Group the candidate legs by key in capture order, then pair each key first-in first-out."""
    rows = np.flatnonzero(candidates)
    by_key: dict[tuple, list[int]] = {}
    for row, key in zip(rows.tolist(), zip(*(legs[k].to_numpy()[rows].tolist() for k in keys))):
        by_key.setdefault(key, []).append(row)
    ingress = (legs["direction"] == Direction.INGRESS).tolist()
    ts = legs["ts_ns"].tolist()
    for rows in by_key.values():
        pair_first_in_first_out(rows, ingress, ts, window_ns, peer, ambiguous)


def _model_pairs(legs: pd.DataFrame, window_ns: int) -> tuple[np.ndarray, np.ndarray]:
    n = len(legs)
    peer, ambiguous = [NO_PEER] * n, [False] * n
    known = (legs["direction"] != Direction.UNKNOWN).to_numpy()
    _model_pass(legs, PLACE + ["inner_digest"], known, window_ns, peer, ambiguous)
    fragmented = (legs["outer_frag"].to_numpy() & 0x2) != 0
    unpaired = np.array(peer) == NO_PEER
    leftover = known & unpaired & (fragmented | (legs["direction"] == Direction.INGRESS).to_numpy())
    _model_pass(legs, PLACE + HEADERS, leftover, window_ns, peer, ambiguous)
    return np.array(peer, np.int64), np.array(ambiguous)


def _random_legs(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """Legs of few keys in up to three files; times mostly advance but step back now and then."""
    files = int(rng.integers(1, 4))
    flows = max(1, n // int(rng.choice([3, 10, 40])))
    flow = rng.integers(0, flows, n)
    direction = rng.choice([Direction.INGRESS, Direction.EGRESS, Direction.UNKNOWN], n, p=[0.5, 0.45, 0.05]).astype(np.int8)
    fragmented = rng.random(n) < 0.15
    digest = (flow * 7919 + rng.integers(0, 3, n)).astype(np.uint64)
    digest[fragmented & (direction == Direction.EGRESS)] ^= np.uint64(1 << 63)  # a fragment's digest is its own
    columns = {
        "ts_ns": np.cumsum(rng.integers(-200, 500, n)).astype(np.int64),
        "file_code": rng.integers(0, files, n).astype(np.int8),
        "appliance": rng.integers(0, 2, n).astype(np.int16),
        "gwlb_node": np.zeros(n, np.int16),
        "outer_sport": (flow % 5).astype(np.uint16),
        "inner_digest": digest,
        "outer_frag": np.where(fragmented, 0x2, 0).astype(np.uint8),
        "inner_ip_version": np.full(n, 4, np.uint8),
        "inner_proto": np.full(n, 6, np.uint8),
        "inner_ip_id": (flow % 11).astype(np.uint32),
        "inner_sport": (flow % 3).astype(np.uint16),
        "inner_dport": np.full(n, 443, np.uint16),
        "inner_tcp_seq": rng.integers(0, 2, n).astype(np.uint32),
        "inner_tcp_ack": np.zeros(n, np.uint32),
        "direction": direction,
        "aws_endpoint_id": rng.integers(0, 2, n).astype(np.uint64),
        "aws_attachment_id": np.ones(n, np.uint64),
        "aws_flow_cookie": rng.integers(0, 2, n).astype(np.uint32),
        "gwlb_shape": np.zeros(n, np.uint16),
    }
    return pd.DataFrame(columns)


@pytest.mark.parametrize("seed", range(16))
def test_pairing_matches_the_model(seed):
    rng = np.random.default_rng(seed)
    legs = _random_legs(rng, int(rng.integers(1, 3000)))
    window_ns = int(rng.choice([0, 400, 3000, 1 << 62]))
    bounds = (np.zeros(3, np.int64), np.full(3, np.iinfo(np.int64).max, np.int64))
    paired = legs_module._pair({name: legs[name].to_numpy() for name in legs}, window_ns, bounds)
    expected_peer, expected_ambiguous = _model_pairs(legs, window_ns)
    np.testing.assert_array_equal(paired["peer"], expected_peer)
    np.testing.assert_array_equal(paired["ambiguous"], expected_ambiguous)
    ts, both = legs["ts_ns"].to_numpy(), expected_peer != NO_PEER
    np.testing.assert_array_equal(paired["latency_ns"], np.where(both, np.abs(ts - ts[expected_peer]), -1))


def test_the_model_meets_every_case():
    """Over the seeds the random legs pair ambiguously, leave ingress unpaired, and pair fragments on headers."""
    ambiguous = fragments = lonely = 0
    for seed in range(16):
        rng = np.random.default_rng(seed)
        legs = _random_legs(rng, int(rng.integers(1, 3000)))
        peer, ambiguity = _model_pairs(legs, 3000)
        paired_fragment = (legs["outer_frag"].to_numpy() & 0x2).astype(bool) & (peer != NO_PEER)
        ambiguous += int(ambiguity.sum())
        fragments += int((paired_fragment & (legs["direction"] == Direction.EGRESS).to_numpy()).sum())
        lonely += int(((peer == NO_PEER) & (legs["direction"] == Direction.INGRESS).to_numpy()).sum())
    assert ambiguous and fragments and lonely
