"""How traffic spreads over appliances, GWLB nodes and endpoints, and how fair that spread is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import NS_PER_SECOND
from ..tables.legs import Direction, Pairing


def spread(legs: pd.DataFrame, column: str, latency: pd.DataFrame, labels: list[str] | None = None) -> pd.DataFrame:
    """Per value of ``column`` (appliance, gwlb_node or aws_endpoint_id): legs, flows, bytes, returns, latency, shares.

    ``packets_in`` counts ingress legs, ``packets_out`` egress legs; ``returned`` and ``not_returned`` count
    ingress legs by their pairing; ``flows`` the distinct flows with a leg there.  ``latency`` is
    ``analysis.latency.latency_by`` of the same column, whose p50, p99 and max the table repeats.
    """
    values = legs[column].to_numpy()
    known = values >= 0 if np.issubdtype(values.dtype, np.signedinteger) else np.ones(len(values), bool)
    code, keys = pd.factorize(values[known], sort=True)  # few places: appliances, nodes, endpoints (a hash, no sort)
    keys = np.asarray(keys)
    direction = legs["direction"].to_numpy()[known]
    pairing = legs["pairing"].cat.codes.to_numpy()[known]
    ingress = direction == Direction.INGRESS
    paired_in = ingress & (pairing == Pairing.PAIRED)

    def count(mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        return np.bincount(code[mask], weights=None if weights is None else weights[mask], minlength=len(keys)).astype(np.int64)

    flow = legs["flow"].to_numpy()[known]
    with_flow = flow >= 0
    stride = int(flow.max(initial=0)) + 1
    distinct = np.unique(code[with_flow].astype(np.int64) * stride + flow[with_flow])
    out = pd.DataFrame(
        {
            "packets_in": count(ingress),
            "packets_out": count(direction == Direction.EGRESS),
            "returned": count(paired_in),
            "not_returned": count(ingress & (pairing == Pairing.NOT_RETURNED)),
            "in_flight": count(ingress & (pairing == Pairing.IN_FLIGHT)),
            "originated": count(pairing == Pairing.ORIGINATED),
            "bytes_in": count(ingress, legs["inner_ip_len_bytes"].to_numpy()[known].astype(np.int64)),
            "flows": np.bincount(distinct // stride, minlength=len(keys)).astype(np.int64),
        },
        index=[labels[int(k)] for k in keys] if labels is not None else keys,
    )
    place_latency = latency.reindex(out.index)
    for stat in ("p50", "p99", "max"):
        out[f"latency_{stat}_us"] = place_latency[stat] if stat in place_latency else np.nan
    for name in ("packets_in", "bytes_in", "flows"):
        total = out[name].sum()
        out[f"{name}_share"] = out[name] / total if total else 0.0
    out["returned_share"] = np.where(out["packets_in"] > 0, out["returned"] / out["packets_in"].where(out["packets_in"] > 0, 1), np.nan)
    out.index.name = column
    return out


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
    if counts.size < 2:
        return None, None
    from scipy.stats import chisquare

    result = chisquare(counts)
    return float(result.statistic), float(result.pvalue)


def new_flows_per_second(flows: pd.DataFrame) -> pd.DataFrame:
    """Per appliance (of the flow's first packet) and second: flows that started."""
    if flows.empty:
        return pd.DataFrame(columns=["appliance", "second", "new_flows"])
    first_appliance = [names.split(",", 1)[0] for names in flows["appliances"].tolist()]
    frame = pd.DataFrame({"appliance": first_appliance, "second": flows["first_ns"] // NS_PER_SECOND})
    return frame.groupby(["appliance", "second"]).size().rename("new_flows").reset_index()


def stickiness(flows: pd.DataFrame) -> dict:
    """Flows seen on exactly one appliance, and those seen on more."""
    appliances = flows["appliances"].str.count(",") + 1
    multi = flows.index[appliances > 1]
    return {"flows": int(len(flows)), "on_one_appliance": int((appliances == 1).sum()), "on_several": [int(f) for f in multi]}
