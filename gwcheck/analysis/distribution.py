"""How traffic spreads over appliances, GWLB nodes and endpoints, and how fair that spread is."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..schema import NS_PER_SECOND


def spread(counts: pd.DataFrame, flows: pd.Series, latency: pd.DataFrame, labels: list[str] | None = None, name: str = "place") -> pd.DataFrame:
    """Per place (appliance, GWLB node or endpoint): legs, flows, bytes, returns, latency and shares.

    ``counts`` holds ``analysis.tallies.PLACE_COUNTS`` per raw place value (``LegTally.place``):
    ``packets_in`` counts ingress legs, ``packets_out`` egress legs, ``returned`` and ``not_returned``
    ingress legs by their pairing.  ``flows`` is the number of flows with a leg there, by the same label
    (``flows_per_place``).  ``latency`` is the latency summary by the same label, whose p50, p99 and max
    the table repeats; ``labels`` name raw values that are indexes.
    """
    index = pd.Index([labels[int(k)] for k in counts.index], name=name) if labels is not None else counts.index.rename(name)
    out = {column: counts[column].to_numpy() for column in counts.columns}
    out["flows"] = flows.reindex(index).fillna(0).astype(np.int64).to_numpy() if len(index) else np.zeros(0, np.int64)
    for stat in ("p50", "p99", "max"):
        out[f"latency_{stat}_us"] = latency[stat].reindex(index).to_numpy() if stat in latency else np.full(len(index), np.nan)
    for column in ("packets_in", "bytes_in", "flows"):
        total = out[column].sum()
        out[f"{column}_share"] = out[column] / total if total else np.zeros(len(index))
    packets_in = out["packets_in"]
    out["returned_share"] = np.where(packets_in > 0, out["returned"] / np.where(packets_in > 0, packets_in, 1), np.nan)
    return pd.DataFrame(out, index=index)


def flows_per_place(names: pd.Series) -> pd.Series:
    """How many flows name each place, from a flow-table column of comma-joined names (``appliances``, ``gwlb_nodes``)."""
    if names.empty:
        return pd.Series(dtype=np.int64)
    combinations = names.value_counts()  # few: one name, or a handful of sets
    counts: dict[str, int] = {}
    for text, count in combinations.items():
        for name in filter(None, str(text).split(",")):
            counts[name] = counts.get(name, 0) + int(count)
    return pd.Series(counts, dtype=np.int64).sort_values(ascending=False, kind="stable")


def fairness(counts: np.ndarray) -> dict[str, float | None]:
    """Jain's index, max/mean ratio, coefficient of variation and a chi-square test of an even spread."""
    counts = np.asarray(counts, dtype=float)
    if counts.size == 0 or counts.sum() == 0:
        return {"jain_index": None, "max_mean_ratio": None, "cv": None, "chi2": None, "chi2_p": None}
    mean = counts.mean()
    jain = counts.sum() ** 2 / (counts.size * (counts**2).sum())
    chi2, p = _chi_square_even(counts)
    return {
        "jain_index": float(jain),
        "max_mean_ratio": float(counts.max() / mean),
        "cv": float(counts.std() / mean),
        "chi2": chi2,
        "chi2_p": p,
    }


def _chi_square_even(counts: np.ndarray) -> tuple[float | None, float | None]:
    """Pearson's chi-square statistic of ``counts`` against their mean, and its p-value (as ``scipy.stats.chisquare``)."""
    if counts.size < 2:
        return None, None
    expected = np.mean(counts, axis=0, keepdims=True)
    statistic = float(np.sum((counts - expected) ** 2 / expected, axis=0))
    return statistic, chi_square_survival(statistic, counts.size - 1)


def chi_square_survival(statistic: float, df: int) -> float:
    """P(X >= ``statistic``) for X chi-square distributed with ``df`` (a positive integer) degrees of freedom.

    That is the regularized upper incomplete gamma function Q(df/2, statistic/2), whose shape is a whole or half
    integer here, so it has a finite closed form (Abramowitz and Stegun 6.5.13 and 26.4.4-5):
    Q(m, h) = e^-h sum_{i<m} h^i / i!, and Q(m + 1/2, h) = erfc(sqrt h) + e^-h sum_{1<=i<=m} h^(i-1/2) / Gamma(i + 1/2).
    Every term is positive and taken in log space, so nothing cancels or overflows.  It agrees with
    ``scipy.special.chdtrc`` to 1e-12 relative (tests/test_distribution.py) without its import, which costs a
    quarter of a second.
    """
    if statistic <= 0.0:
        return 1.0
    half = statistic / 2.0
    log_half = math.log(half)
    if df % 2 == 0:
        total, logs = 0.0, (i * log_half - math.lgamma(i + 1.0) for i in range(df // 2))
    else:
        total, logs = math.erfc(math.sqrt(half)), ((i - 0.5) * log_half - math.lgamma(i + 0.5) for i in range(1, (df - 1) // 2 + 1))
    return min(1.0, total + math.fsum(math.exp(log - half) for log in logs))


def new_flows_per_second(flows: pd.DataFrame) -> pd.DataFrame:
    """Per appliance (of the flow's first packet) and second: flows that started."""
    if flows.empty:
        return pd.DataFrame(columns=["appliance", "second", "new_flows"])
    codes, sets = pd.factorize(flows["appliances"])  # few distinct sets of names: split each once
    names, name_of_set = np.unique(np.array([text.split(",", 1)[0] for text in sets], dtype=object), return_inverse=True)
    second = flows["first_ns"].to_numpy() // NS_PER_SECOND
    first_second, seconds = int(second.min()), int(second.max() - second.min()) + 1
    # By appliance name, then second, as one integer: one count of each.
    keys, counts = np.unique(name_of_set.reshape(-1)[codes] * seconds + (second - first_second), return_counts=True)
    name_of_key, second_of_key = np.divmod(keys, seconds)
    return pd.DataFrame({"appliance": names[name_of_key].tolist(), "second": second_of_key + first_second, "new_flows": counts})


def stickiness(flows: pd.DataFrame) -> dict:
    """Flows seen on exactly one appliance, and those seen on more."""
    codes, sets = pd.factorize(flows["appliances"])  # few distinct sets of names: their commas counted once each
    commas = np.array([text.count(",") for text in sets] + [-1])[codes]  # code -1, a missing set: neither
    multi = flows.index[commas > 0]
    return {"flows": int(len(flows)), "on_one_appliance": int((commas == 0).sum()), "on_several": [int(f) for f in multi]}
