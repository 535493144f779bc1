"""gwcheck.summaries: grouped latency summaries are latency_summary_us to the bit, however the latencies come."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gwcheck.summaries import LatencyGroups, latency_summary_us


def _same_bits(expected: dict, got: dict) -> bool:
    return list(expected) == list(got) and all(
        type(expected[k]) is type(got[k]) and expected[k] == got[k] and math.copysign(1, expected[k]) == math.copysign(1, got[k]) for k in expected
    )


@pytest.mark.parametrize("in_order", [False, True])
@pytest.mark.parametrize("seed", range(20))
def test_group_summaries_are_latency_summary_us(seed: int, in_order: bool) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 40)) if seed % 2 else int(rng.integers(1, 5000))
    group = rng.integers(-3, int(rng.integers(-2, 25)), n)
    latency = rng.lognormal(10, 2, n).astype(np.int64) if seed % 3 else rng.integers(0, 10 ** int(rng.integers(1, 12)), n)
    if in_order:
        latency = np.sort(latency)
    groups = LatencyGroups(group, latency, in_order=in_order)
    summaries = groups.summaries()
    assert len(summaries) == len(groups.groups) == len(np.unique(group))
    for value, summary in zip(groups.groups, summaries):
        assert _same_bits(latency_summary_us(latency[group == value]), summary)


def test_in_order_groups_match_sorted_groups() -> None:
    rng = np.random.default_rng(7)
    group, latency = rng.integers(0, 9, 3000), np.sort(rng.integers(0, 10**6, 3000))
    ordered, sorted_ = LatencyGroups(group, latency, in_order=True), LatencyGroups(group, latency)
    for name in ("groups", "starts", "counts", "sorted_ns"):
        np.testing.assert_array_equal(getattr(ordered, name), getattr(sorted_, name))
