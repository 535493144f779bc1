"""Summary statistics shared by every layer that states a latency: one definition, so the simulator's truth and the analysis agree."""

from __future__ import annotations

import numpy as np

from .schema import NS_PER_US

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
