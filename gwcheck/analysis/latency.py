"""How long appliances hold packets: the dwell time of every paired leg, measured inside one capture's clock."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import NS_PER_SECOND, NS_PER_US
from ..summaries import latency_summary_us
from ..tables.legs import NO_PEER, Direction

TCP_SYN, TCP_ACK = 0x02, 0x10


#: The leg columns every latency summary reads.
PAIRED_COLUMNS = ("ts_ns", "latency_ns", "appliance", "gwlb_node", "aws_endpoint_id")


#: The columns of ``latency_over_time``.
OVER_TIME_COLUMNS = ["appliance", "second", "count", "p50_us", "p99_us"]


def paired_ingress(legs: pd.DataFrame) -> pd.DataFrame:
    """The ingress legs that came back, one per dwell time (``PAIRED_COLUMNS``)."""
    mask = (legs["direction"].to_numpy() == Direction.INGRESS) & (legs["peer"].to_numpy() != NO_PEER)
    return legs.loc[mask, list(PAIRED_COLUMNS)]


def latency_by(paired: pd.DataFrame, column: str, names: list[str] | None = None) -> pd.DataFrame:
    """Latency summary (count, min, p50, p90, p99, p99.9, max, mean in microseconds) per value of ``column``.

    ``paired`` is ``paired_ingress(legs)``, selected once by the caller for every summary it makes.
    """
    rows = {}
    for value, group in paired["latency_ns"].groupby(paired[column].to_numpy(), sort=True):
        label = names[int(value)] if names is not None and int(value) >= 0 else value
        rows[label] = latency_summary_us(group.to_numpy())
    frame = pd.DataFrame.from_dict(rows, orient="index")
    frame.index.name = column
    return frame


def overall_latency(paired: pd.DataFrame) -> dict:
    """The latency summary of every dwell time in ``paired`` (``paired_ingress(legs)``)."""
    return latency_summary_us(paired["latency_ns"].to_numpy())


def latency_over_time(paired: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """Per appliance and second of its capture (``paired`` from ``paired_ingress``): packets returned, p50 and p99 dwell time in microseconds."""
    if paired.empty:
        return pd.DataFrame(columns=OVER_TIME_COLUMNS)
    # Grouped by each appliance's rank among the names (the order of grouping by name), not by the names
    # themselves: no string per leg.
    by_name = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), np.int64)
    rank[by_name] = np.arange(len(names))
    frame = pd.DataFrame(
        {
            "appliance": rank[paired["appliance"].to_numpy()],
            "second": paired["ts_ns"].to_numpy() // NS_PER_SECOND,
            "us": paired["latency_ns"].to_numpy() / NS_PER_US,
        }
    )
    grouped = frame.groupby(["appliance", "second"])["us"]
    out = pd.DataFrame({"count": grouped.size(), "p50_us": grouped.quantile(0.5), "p99_us": grouped.quantile(0.99)}).reset_index()
    out["appliance"] = [names[by_name[r]] for r in out["appliance"].tolist()]
    return out


def handshake_rtts(transits: pd.DataFrame) -> pd.DataFrame:
    """Per TCP flow, from the appliance's vantage: server side SYN -> SYN-ACK and client side SYN-ACK -> ACK, in microseconds.

    Times are those of the ingress legs, so both ends of each interval come from one capture.
    """
    flags = transits["inner_tcp_flags"].to_numpy()
    is_tcp = transits["inner_proto"].to_numpy() == 6
    syn = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
    synack = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
    plain_ack = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_ACK)
    # Times from the first transit: small enough to stay exact as floats (which a column with NaN becomes).
    transits = transits[["ts_ns", "flow"]].assign(ts_ns=transits["ts_ns"] - (int(transits["ts_ns"].min()) if len(transits) else 0))
    ts = transits["ts_ns"]
    flow = transits["flow"]
    first_syn = ts[syn].groupby(flow[syn]).min()
    first_synack = ts[synack].groupby(flow[synack]).min()
    after = transits.assign(synack_ns=flow.map(first_synack))
    acks = after[plain_ack & (after["synack_ns"].notna()) & (after["ts_ns"] > after["synack_ns"])]
    first_ack = acks.groupby("flow")["ts_ns"].min()
    out = pd.DataFrame({"syn_ns": first_syn, "synack_ns": first_synack, "ack_ns": first_ack})
    out["server_rtt_us"] = (out["synack_ns"] - out["syn_ns"]) / NS_PER_US
    out["client_rtt_us"] = (out["ack_ns"] - out["synack_ns"]) / NS_PER_US
    out.index.name = "flow"
    return out[["server_rtt_us", "client_rtt_us"]].where(lambda x: x >= 0)

