"""How traffic spreads over appliances, GWLB nodes and endpoints, and how fair that spread is."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..summaries import latency_summary_us
from ..tables.legs import Direction, Pairing

NS_PER_SECOND = 1_000_000_000


def spread(legs: pd.DataFrame, column: str, labels: list[str] | None = None) -> pd.DataFrame:
    """Per value of ``column`` (appliance, gwlb_node or aws_endpoint_id): legs, flows, bytes, returns, latency, shares.

    ``packets_in`` counts ingress legs, ``packets_out`` egress legs; ``returned`` and ``not_returned`` count
    ingress legs by their pairing; ``flows`` the distinct flows with a leg there.
    """
    values = legs[column].to_numpy()
    direction = legs["direction"].to_numpy()
    pairing = legs["pairing"].cat.codes.to_numpy()
    ingress = direction == Direction.INGRESS
    frame = pd.DataFrame(
        {
            "key": values,
            "in": ingress,
            "out": direction == Direction.EGRESS,
            "returned": ingress & (pairing == Pairing.PAIRED),
            "not_returned": ingress & (pairing == Pairing.NOT_RETURNED),
            "in_flight": ingress & (pairing == Pairing.IN_FLIGHT),
            "originated": pairing == Pairing.ORIGINATED,
            "bytes_in": np.where(ingress, legs["inner_ip_len_bytes"].to_numpy(), 0).astype(np.int64),
            "flow": legs["flow"].to_numpy(),
            "latency_ns": np.where(ingress & (pairing == Pairing.PAIRED), legs["latency_ns"].to_numpy(), -1),
        }
    )
    frame = frame[frame["key"] >= 0] if np.issubdtype(values.dtype, np.signedinteger) else frame
    grouped = frame.groupby("key", sort=True)
    out = pd.DataFrame(
        {
            "packets_in": grouped["in"].sum(),
            "packets_out": grouped["out"].sum(),
            "returned": grouped["returned"].sum(),
            "not_returned": grouped["not_returned"].sum(),
            "in_flight": grouped["in_flight"].sum(),
            "originated": grouped["originated"].sum(),
            "bytes_in": grouped["bytes_in"].sum(),
            "flows": grouped["flow"].nunique(),
        }
    ).astype(np.int64)
    latency = {key: latency_summary_us(group.to_numpy()[group.to_numpy() >= 0]) for key, group in grouped["latency_ns"]}
    for stat in ("p50", "p99", "max"):
        out[f"latency_{stat}_us"] = [latency[key][stat] for key in out.index]
    for name in ("packets_in", "bytes_in", "flows"):
        total = out[name].sum()
        out[f"{name}_share"] = out[name] / total if total else 0.0
    out["returned_share"] = np.where(out["packets_in"] > 0, out["returned"] / out["packets_in"].where(out["packets_in"] > 0, 1), np.nan)
    if labels is not None:
        out.index = [labels[int(k)] for k in out.index]
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
    first_appliance = flows["appliances"].str.split(",").str[0]
    frame = pd.DataFrame({"appliance": first_appliance, "second": flows["first_ns"] // NS_PER_SECOND})
    return frame.groupby(["appliance", "second"]).size().rename("new_flows").reset_index()


def stickiness(flows: pd.DataFrame) -> dict:
    """Flows seen on exactly one appliance, and those seen on more."""
    appliances = flows["appliances"].str.count(",") + 1
    multi = flows.index[appliances > 1]
    return {"flows": int(len(flows)), "on_one_appliance": int((appliances == 1).sum()), "on_several": [int(f) for f in multi]}
