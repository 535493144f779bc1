"""How long appliances hold packets: the dwell time of every paired leg, measured inside one capture's clock."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from ..schema import NS_PER_SECOND, NS_PER_US
from ..summaries import LatencyGroups, ascending, latency_summary_us
from ..tables.legs import NO_PEER, Direction

TCP_SYN, TCP_ACK = 0x02, 0x10


#: The leg columns every latency summary reads.
PAIRED_COLUMNS = ("ts_ns", "latency_ns", "appliance", "gwlb_node", "aws_endpoint_id")


#: The columns of ``latency_over_time``.
OVER_TIME_COLUMNS = ["appliance", "second", "count", "p50_us", "p99_us"]


def paired_columns(legs: pd.DataFrame) -> dict[str, np.ndarray]:
    """The ``PAIRED_COLUMNS`` of the ingress legs that came back, one row per dwell time."""
    rows = np.flatnonzero((legs["direction"].to_numpy() == Direction.INGRESS) & (legs["peer"].to_numpy() != NO_PEER))
    return {name: legs[name].to_numpy()[rows] for name in PAIRED_COLUMNS}


def paired_ingress(legs: pd.DataFrame) -> pd.DataFrame:
    """The ingress legs that came back, one per dwell time (``PAIRED_COLUMNS``)."""
    return pd.DataFrame(paired_columns(legs), copy=False)


def in_latency_order(paired: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``paired``'s ``PAIRED_COLUMNS`` (from ``paired_columns``) with their rows in order of latency, ties in table order."""
    order = ascending(np.asarray(paired["latency_ns"]))
    return {name: np.asarray(paired[name])[order] for name in PAIRED_COLUMNS}


def latency_by(paired: Mapping[str, np.ndarray], column: str, names: list[str] | None = None) -> pd.DataFrame:
    """Latency summary (count, min, p50, p90, p99, p99.9, max, mean in microseconds) per value of ``column``.

    ``paired`` is ``in_latency_order``'s, made once by the caller for every summary it makes.
    """
    groups = LatencyGroups(paired[column], paired["latency_ns"], in_order=True)
    labels = groups.groups if names is None else [names[int(value)] if value >= 0 else value for value in groups.groups]
    summaries = groups.summaries()
    if not summaries:
        return pd.DataFrame(index=pd.RangeIndex(0, name=column))
    return pd.DataFrame({key: [summary[key] for summary in summaries] for key in summaries[0]}, index=pd.Index(labels, name=column))


def overall_latency(paired: Mapping[str, np.ndarray]) -> dict:
    """The latency summary of every dwell time in ``paired`` (``in_latency_order``'s)."""
    latency_ns = paired["latency_ns"]
    if len(latency_ns) == 0:
        return latency_summary_us(latency_ns)
    return LatencyGroups(np.zeros(len(latency_ns), np.int8), latency_ns, in_order=True).summaries()[0]


def latency_over_time(paired: Mapping[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    """Per appliance and second of its capture (``paired`` from ``in_latency_order``): packets returned, p50 and p99 dwell time in microseconds."""
    if len(paired["latency_ns"]) == 0:
        return pd.DataFrame(columns=OVER_TIME_COLUMNS)
    # Grouped by each appliance's rank among the names (the order of grouping by name), then by second,
    # as one integer: no string per leg.
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), np.int64)
    rank[by_name] = np.arange(len(names))
    second = paired["ts_ns"] // NS_PER_SECOND
    first_second = int(second.min())
    seconds = int(second.max()) - first_second + 1
    groups = LatencyGroups(rank[paired["appliance"]] * seconds + (second - first_second), paired["latency_ns"], in_order=True)
    appliance_rank, second_of_group = np.divmod(groups.groups, seconds)
    return pd.DataFrame(
        {
            "appliance": [names[by_name[r]] for r in appliance_rank.tolist()],
            "second": second_of_group + first_second,
            "count": groups.counts,
            "p50_us": groups.quantile_us(0.5),
            "p99_us": groups.quantile_us(0.99),
        }
    )


def handshake_rtts(transits: pd.DataFrame) -> pd.DataFrame:
    """Per TCP flow, from the appliance's vantage: server side SYN -> SYN-ACK and client side SYN-ACK -> ACK, in microseconds.

    Times are those of the ingress legs, so both ends of each interval come from one capture.
    """
    flags = transits["inner_tcp_flags"].to_numpy()
    is_tcp = transits["inner_proto"].to_numpy() == 6
    syn = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
    synack = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
    plain_ack = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_ACK)
    # Times from the first transit: small enough to stay exact as floats (NaN where a flow has none).
    ts = transits["ts_ns"].to_numpy()
    ts = ts - ts.min() if len(ts) else ts
    flow = transits["flow"].to_numpy()
    n_flows = int(flow.max()) + 1 if len(flow) else 0
    first_syn = _first_time(flow, ts, syn, n_flows)
    first_synack = _first_time(flow, ts, synack, n_flows)
    first_ack = _first_time(flow, ts, plain_ack & (ts > first_synack[flow]), n_flows)
    seen = ~np.isnan(first_syn) | ~np.isnan(first_synack)
    out = pd.DataFrame(
        {"server_rtt_us": (first_synack - first_syn)[seen] / NS_PER_US, "client_rtt_us": (first_ack - first_synack)[seen] / NS_PER_US},
        index=pd.Index(np.flatnonzero(seen), name="flow"),
    )
    return out.where(lambda x: x >= 0)


def _first_time(flow: np.ndarray, ts: np.ndarray, mask: np.ndarray, n_flows: int) -> np.ndarray:
    """Per flow, the earliest ``ts`` of its rows where ``mask`` holds, as a float (NaN: none)."""
    first = np.full(n_flows, np.inf)
    rows = np.flatnonzero(mask)
    np.minimum.at(first, flow[rows], ts[rows].astype(np.float64))  # one dtype: numpy's fast path
    first[first == np.inf] = np.nan
    return first
