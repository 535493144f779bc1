"""A mergeable latency sketch with a stated relative error: logarithmic buckets as in DDSketch (Masson, Rim, Lee, VLDB 2019).

For analyses that cannot keep every latency (hours of live traffic, many Dask workers): each value falls
in the bucket ``ceil(log_gamma(x))`` with ``gamma = (1 + a) / (1 - a)``, so that any quantile is returned
within relative error ``a`` of the order statistic it stands for.  Count, min, max and mean stay exact.
Sketches of disjoint parts merge into exactly the sketch of the whole.
"""

from __future__ import annotations

import math

import numpy as np

from .schema import NS_PER_US
from .summaries import PERCENTILES

DEFAULT_RELATIVE_ACCURACY = 0.01


class LatencySketch:
    """Latencies in integer nanoseconds, summarised in logarithmic buckets."""

    def __init__(self, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        if not 0.0 < relative_accuracy < 1.0:
            raise ValueError(f"relative accuracy must be within (0, 1), got {relative_accuracy}")
        self.relative_accuracy = relative_accuracy
        self._log_gamma = math.log((1 + relative_accuracy) / (1 - relative_accuracy))
        self._offset = 0  # bucket index of _counts[0]
        self._counts = np.zeros(0, np.int64)
        self.zeros = 0  # values of 0 ns
        self.count = 0
        self.total_ns = 0
        self.min_ns: int | None = None
        self.max_ns: int | None = None

    def add(self, latency_ns: np.ndarray) -> None:
        """Add latencies (non-negative integer nanoseconds)."""
        values = np.asarray(latency_ns, dtype=np.int64)
        if values.size == 0:
            return
        if values.min() < 0:
            raise ValueError("latencies must not be negative")
        positive = values[values > 0]
        self.zeros += int(values.size - positive.size)
        if positive.size:
            self._add_buckets(np.ceil(np.log(positive) / self._log_gamma).astype(np.int64))
        self.count += int(values.size)
        self.total_ns += int(values.sum())
        low, high = int(values.min()), int(values.max())
        self.min_ns = low if self.min_ns is None else min(self.min_ns, low)
        self.max_ns = high if self.max_ns is None else max(self.max_ns, high)

    def _add_buckets(self, index: np.ndarray, weights: np.ndarray | None = None) -> None:
        low, high = int(index.min()), int(index.max())
        if self._counts.size == 0:
            self._offset, self._counts = low, np.zeros(high - low + 1, np.int64)
        elif low < self._offset or high >= self._offset + self._counts.size:
            start = min(low, self._offset)
            grown = np.zeros(max(high, self._offset + self._counts.size - 1) - start + 1, np.int64)
            grown[self._offset - start : self._offset - start + self._counts.size] = self._counts
            self._offset, self._counts = start, grown
        self._counts += np.bincount(index - self._offset, weights=weights, minlength=self._counts.size).astype(np.int64)

    def merge(self, other: LatencySketch) -> None:
        """Add everything ``other`` holds; both must have the same relative accuracy."""
        if other.relative_accuracy != self.relative_accuracy:
            raise ValueError("only sketches of the same relative accuracy merge")
        if other._counts.size:
            index = np.arange(other._offset, other._offset + other._counts.size)
            self._add_buckets(index, other._counts.astype(float))
        self.zeros += other.zeros
        self.count += other.count
        self.total_ns += other.total_ns
        for name, pick in (("min_ns", min), ("max_ns", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs if mine is None else mine if theirs is None else pick(mine, theirs))

    def quantile_ns(self, q: float) -> float | None:
        """The ``q`` quantile (0 <= q <= 1), None when empty.

        Interpolated between the order statistics around rank ``q * (count - 1)`` as numpy's default
        percentile is, each order statistic taken as its bucket's middle: so within the relative accuracy
        of the exact percentile.
        """
        if self.count == 0:
            return None
        rank = q * (self.count - 1)
        below = math.floor(rank)
        low, high = self._order_statistic(below), self._order_statistic(min(below + 1, self.count - 1))
        return float(low + (rank - below) * (high - low))

    def _order_statistic(self, k: int) -> float:
        """The k-th smallest value (0-based), as the middle of its bucket, clamped to the exact min and max."""
        if k < self.zeros:
            return 0.0
        cumulative = np.cumsum(self._counts) + self.zeros
        bucket = int(np.searchsorted(cumulative, k, side="right"))
        gamma = math.exp(self._log_gamma)
        value = 2 * gamma ** (bucket + self._offset) / (gamma + 1)  # the bucket's middle, in relative terms
        return float(min(max(value, self.min_ns), self.max_ns))

    def histogram_ns(self) -> tuple[np.ndarray, np.ndarray]:
        """Every non-empty bucket as (its middle value, how many values fell in it), zeros first, in ascending order."""
        gamma = math.exp(self._log_gamma)
        filled = np.flatnonzero(self._counts)
        middles = 2 * gamma ** (filled + self._offset).astype(float) / (gamma + 1)
        values, counts = middles, self._counts[filled]
        if self.zeros:
            values, counts = np.r_[0.0, values], np.r_[self.zeros, counts]
        return values, counts

    def summary_us(self) -> dict[str, float | int | None]:
        """The keys of ``summaries.latency_summary_us``: count, min, max and mean exact, percentiles within the accuracy."""
        if self.count == 0:
            return {"count": 0, "min": None, **{key: None for key, _ in PERCENTILES}, "max": None, "mean": None}
        summary: dict[str, float | int | None] = {"count": self.count, "min": self.min_ns / NS_PER_US}
        for key, percent in PERCENTILES:
            summary[key] = self.quantile_ns(percent / 100.0) / NS_PER_US
        summary["max"] = self.max_ns / NS_PER_US
        summary["mean"] = self.total_ns / self.count / NS_PER_US
        return summary

    def to_dict(self) -> dict:
        """A plain form for JSON or for shipping between processes."""
        return {
            "relative_accuracy": self.relative_accuracy, "offset": self._offset, "counts": self._counts.tolist(),
            "zeros": self.zeros, "count": self.count, "total_ns": self.total_ns, "min_ns": self.min_ns, "max_ns": self.max_ns,
        }

    @classmethod
    def from_dict(cls, data: dict) -> LatencySketch:
        sketch = cls(data["relative_accuracy"])
        sketch._offset, sketch._counts = data["offset"], np.asarray(data["counts"], np.int64)
        sketch.zeros, sketch.count, sketch.total_ns = data["zeros"], data["count"], data["total_ns"]
        sketch.min_ns, sketch.max_ns = data["min_ns"], data["max_ns"]
        return sketch
