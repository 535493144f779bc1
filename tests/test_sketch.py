"""The latency sketch: quantiles within its stated relative error, exact merges, exact count/min/max/mean."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gwcheck.sketch import LatencySketch
from gwcheck.summaries import PERCENTILES, latency_summary_us


@pytest.fixture(scope="module")
def latencies() -> np.ndarray:
    rng = np.random.default_rng(7)
    dwell = rng.lognormal(np.log(80_000), 0.6, 200_000).astype(np.int64)  # ~80 us appliances
    setup = rng.integers(15_000_000, 25_000_000, 300)  # first packets from new endpoints
    return np.concatenate([dwell, setup, np.zeros(50, np.int64), np.ones(10, np.int64)])


@pytest.mark.parametrize("accuracy", [0.01, 0.05])
def test_quantiles_within_the_relative_accuracy(latencies: np.ndarray, accuracy: float) -> None:
    sketch = LatencySketch(accuracy)
    sketch.add(latencies)
    for q in (0.0, 0.001, 0.01, 0.25, 0.5, 0.9, 0.99, 0.999, 1.0):
        exact = np.percentile(latencies, 100 * q)  # interpolated between order statistics, as the sketch is
        got = sketch.quantile_ns(q)
        assert abs(got - exact) <= accuracy * exact + 1e-9, (q, got, exact)


@pytest.mark.parametrize("size", [1, 2, 3, 7, 48])
def test_few_values_interpolate_like_numpy(size: int) -> None:
    """With few values the percentile falls between two far-apart order statistics: still within the accuracy."""
    values = np.random.default_rng(size).lognormal(np.log(80_000), 1.5, size).astype(np.int64)
    sketch = LatencySketch(0.01)
    sketch.add(values)
    for percent in (0, 50, 90, 99, 99.9, 100):
        exact = np.percentile(values, percent)
        assert sketch.quantile_ns(percent / 100) == pytest.approx(exact, rel=0.01), percent


def test_exact_parts_of_the_summary(latencies: np.ndarray) -> None:
    sketch = LatencySketch()
    sketch.add(latencies)
    exact, approximate = latency_summary_us(latencies), sketch.summary_us()
    assert set(approximate) == set(exact)
    for key in ("count", "min", "max", "mean"):
        assert approximate[key] == exact[key]
    for key, _ in PERCENTILES:
        assert approximate[key] == pytest.approx(exact[key], rel=0.0101)


def test_merge_of_parts_is_the_sketch_of_the_whole(latencies: np.ndarray) -> None:
    whole = LatencySketch()
    whole.add(latencies)
    merged = LatencySketch()
    for part in np.array_split(np.random.default_rng(1).permutation(latencies), 7):
        piece = LatencySketch()
        piece.add(part)
        merged.merge(LatencySketch.from_dict(json.loads(json.dumps(piece.to_dict()))))
    assert merged.to_dict() == whole.to_dict()


def test_empty_and_bad_input() -> None:
    sketch = LatencySketch()
    assert sketch.quantile_ns(0.5) is None and sketch.summary_us()["count"] == 0
    sketch.merge(LatencySketch())
    assert sketch.count == 0
    with pytest.raises(ValueError):
        sketch.add(np.array([-1]))
    with pytest.raises(ValueError):
        LatencySketch(0.0)
    with pytest.raises(ValueError):
        sketch.merge(LatencySketch(0.02))
