"""Summary statistics shared by every layer that states a latency: one definition, so the simulator's truth and the analysis agree."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .schema import NS_PER_US
from .tables.grouping import group_order

#: Percentiles gwcheck reports, with the key each has in summaries.
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 50.0), ("p90", 90.0), ("p99", 99.0), ("p99_9", 99.9))


def latency_summary_us(latency_ns: np.ndarray) -> dict[str, float | int | None]:
    """Count, min, p50, p90, p99, p99.9, max and mean of latencies given in integer nanoseconds, in microseconds.

    Percentiles interpolate linearly between order statistics (numpy's default, Hyndman-Fan type 7); the
    mean comes from the exact integer sum, so the summary does not depend on the order of its input.
    An empty input gives a count of 0 and None elsewhere.
    """
    values = np.asarray(latency_ns, dtype=np.int64)
    summary: dict[str, float | int | None] = {"count": int(values.size)}
    if values.size == 0:
        summary.update({"min": None, **{key: None for key, _ in PERCENTILES}, "max": None, "mean": None})
        return summary
    us = values / NS_PER_US
    quantiles = np.percentile(us, [q for _, q in PERCENTILES])
    summary["min"] = float(us.min())
    summary.update({key: float(value) for (key, _), value in zip(PERCENTILES, quantiles)})
    summary["max"] = float(us.max())
    summary["mean"] = float(int(values.sum()) / values.size / NS_PER_US)  # exact sum: the same in any order
    return summary


def group_codes(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's group as a code from 0 and the value of each code, ascending: the values less their minimum
    when they are integers of a small span (no hash, no sort), else pandas' factorize.  Codes of a span may
    include values no row holds."""
    values = np.asarray(values)
    if len(values) and np.can_cast(values.dtype, np.int64):
        low, high = int(values.min()), int(values.max())
        if high - low < max(len(values), 1 << 16):
            return values.astype(np.int64) - low, np.arange(low, high + 1).astype(values.dtype)
    codes, uniques = pd.factorize(values, sort=True)
    return codes.astype(np.int64, copy=False), np.asarray(uniques)


def ascending(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` of integers: when they are non-negative and leave room below bit 63 for
    a row number, one sort of each value with its row in its low bits, several times faster."""
    values = np.asarray(values)
    bits = max(len(values) - 1, 1).bit_length()
    if len(values) and np.can_cast(values.dtype, np.int64) and values.min() >= 0 and int(values.max()) < 1 << (63 - bits):
        return np.sort((values.astype(np.int64) << bits) | np.arange(len(values))) & ((1 << bits) - 1)
    return np.argsort(values, kind="stable")


class LatencyGroups:
    """Latencies (integer nanoseconds) sorted by group, then by value: one sort serves every quantile per group.

    ``groups`` are the distinct group values, ascending; group ``i``'s latencies are
    ``sorted_ns[starts[i]:starts[i] + counts[i]]``.  Latencies given ``in_order`` (ascending) need only
    a counting sort of their groups.
    """

    def __init__(self, group: np.ndarray, latency_ns: np.ndarray, in_order: bool = False) -> None:
        codes, values = group_codes(group)
        latency_ns = np.asarray(latency_ns, dtype=np.int64)
        if in_order:  # a stable counting sort by group keeps each group's latencies ascending; one group is sorted already
            self.sorted_ns = latency_ns if len(values) == 1 else latency_ns[group_order(codes, len(values))]
        elif len(latency_ns) and not (latency_ns < 0).any() and len(values) * (int(latency_ns.max()) + 1) < 2**62:
            # One sort of a combined key, far faster than a sort on two keys.
            span = int(latency_ns.max()) + 1
            self.sorted_ns = np.sort(codes * span + latency_ns) % span
        else:
            self.sorted_ns = latency_ns[np.lexsort((latency_ns, codes))]
        # Codes ascend with their values: each group's rows follow those of the codes below it.
        counts = np.bincount(codes, minlength=len(values))
        present = counts > 0
        self.starts = (np.cumsum(counts) - counts)[present]
        self.counts = counts[present]
        self.groups = values[present]

    def quantile_us(self, q: float) -> np.ndarray:
        """Per group, quantile ``q`` in microseconds as pandas' ``groupby(...).quantile`` gives it: linear
        between the order statistics at ``q * (count - 1)``."""
        position = q * (self.counts - 1).astype(np.float64)
        low = position.astype(np.int64)
        fraction = position % 1
        below = self.sorted_ns[self.starts + low] / NS_PER_US
        above = self.sorted_ns[self.starts + np.minimum(low + 1, self.counts - 1)] / NS_PER_US
        return np.where(fraction == 0.0, below, below + (above - below) * fraction)

    def max_us(self) -> np.ndarray:
        """Per group, its largest latency in microseconds."""
        return self.sorted_ns[self.starts + self.counts - 1] / NS_PER_US

    def summaries(self) -> list[dict[str, float | int | None]]:
        """Per group, ``latency_summary_us`` of its latencies, to the bit: the percentiles as ``np.percentile``
        interpolates them, read from the sorted latencies rather than partitioned from a copy."""
        counts, last = self.counts, self.starts + self.counts - 1
        # np.percentile's linear method: at position (n - 1) * q, between the order statistics either side of it,
        # or the last one from position n - 1 on; interpolated as its _lerp does, from below or, past half way, above.
        quantiles = np.true_divide([q for _, q in PERCENTILES], 100)
        position = (counts - 1)[:, None] * quantiles
        below = np.floor(position)
        at_end = position >= (counts - 1)[:, None]
        low = np.where(at_end, last[:, None], self.starts[:, None] + below.astype(np.int64))
        high = np.where(at_end, last[:, None], low + 1)
        fraction = position - np.where(at_end, -1, below)
        a, b = self.sorted_ns[low] / NS_PER_US, self.sorted_ns[high] / NS_PER_US
        step = b - a
        quantile_us = np.where(fraction >= 0.5, b - step * (1 - fraction), a + step * fraction)
        sums = np.add.reduceat(self.sorted_ns, self.starts) if len(counts) else counts
        rows = zip(counts.tolist(), (self.sorted_ns[self.starts] / NS_PER_US).tolist(), quantile_us.tolist(), self.max_us().tolist(), sums.tolist())
        return [
            {"count": n, "min": low_us, **dict(zip((key for key, _ in PERCENTILES), q_us)), "max": high_us, "mean": total / n / NS_PER_US}
            for n, low_us, q_us, high_us, total in rows
        ]
