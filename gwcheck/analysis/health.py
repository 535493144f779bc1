"""GWLB health checks (AWS ELB guide: TCP/HTTP/HTTPS to each target, every 10 s by default, from the GWLB nodes): probes, answers, failures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..schema import NS_PER_SECOND
from ..tables.flows import any_per_group
from ..tables.grouping import group_ids
from ..tables.roles import Roles, role_index

TCP_SYN, TCP_ACK, TCP_RST = 0x02, 0x10, 0x04
HTTP_OK = 200


def health_checks(packets: pd.DataFrame, roles: Roles) -> pd.DataFrame:
    """One row per probe: a TCP connection from a GWLB node to an appliance, and how the appliance answered.

    Columns: gwlb_node, appliance, port, start_ns, answered (a SYN-ACK came back), http_status (of a
    response, 0 when none), reset (the appliance reset it), healthy (answered, and 2xx when HTTP).
    """
    columns = ["gwlb_node", "appliance", "port", "start_ns", "answered", "http_status", "reset", "healthy"]
    rows = np.flatnonzero((packets["kind"] == "tcp").to_numpy())
    if len(rows) == 0 or not roles.appliances:
        return pd.DataFrame(columns=columns)

    def column(name: str) -> np.ndarray:  # of the TCP packets; numpy throughout, as the table is small and pandas' overhead is not
        return packets[name].to_numpy()[rows]

    src = (column("outer_src_hi"), column("outer_src_lo"))
    dst = (column("outer_dst_hi"), column("outer_dst_lo"))
    node_src, node_dst = role_index(*src, roles.gwlb_nodes), role_index(*dst, roles.gwlb_nodes)
    app_src, app_dst = role_index(*src, roles.appliances), role_index(*dst, roles.appliances)
    from_node = (node_src >= 0) & (app_dst >= 0)
    to_node = (app_src >= 0) & (node_dst >= 0)
    keep = from_node | to_node
    flags = column("outer_tcp_flags")
    sport, dport = column("outer_sport"), column("outer_dport")
    at = np.flatnonzero(keep)
    node, appliance = np.where(from_node, node_src, node_dst)[at], np.where(from_node, app_dst, app_src)[at]
    port = np.where(from_node, dport, sport)[at]
    # One probe per connection: node and appliance, their ports, and the file; numbered as they appear.
    probe, firsts = group_ids([packets["file"].cat.codes.to_numpy()[rows][at], node, appliance, np.where(from_node, sport, dport)[at], port])
    n = len(firsts)
    start_ns = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(start_ns, probe, column("ts_ns")[at])
    http_status = np.zeros(n, np.uint16)
    np.maximum.at(http_status, probe, np.where(to_node, column("outer_http_status"), 0)[at])
    opened = any_per_group(probe, (from_node & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN))[at], n)
    answered = any_per_group(probe, (to_node & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)))[at], n)
    reset = any_per_group(probe, (to_node & ((flags & TCP_RST) != 0))[at], n)
    # The opened probes, by start (the sort DataFrame.sort_values makes, not a stable one).
    probes = np.flatnonzero(opened)
    probes = probes[np.argsort(start_ns[probes], kind="quicksort")]
    status = http_status[probes]
    node_names, appliance_names = roles.gwlb_node_names(), roles.appliance_names()  # each address formatted once
    return pd.DataFrame(
        {
            "gwlb_node": [node_names[k] for k in node[firsts[probes]]],
            "appliance": [appliance_names[k] for k in appliance[firsts[probes]]],
            "port": port[firsts[probes]],
            "start_ns": start_ns[probes],
            "answered": answered[probes],
            "http_status": status,
            "reset": reset[probes],
            "healthy": answered[probes] & ((status == 0) | ((status >= HTTP_OK) & (status < 300))),
        }
    )


def health_by_appliance(probes: pd.DataFrame, appliances: list[str]) -> pd.DataFrame:
    """Per appliance: probes, answered, unanswered, healthy, failed, and the median interval between probes of one node."""
    appliance, node, start = (probes[name].to_numpy() for name in ("appliance", "gwlb_node", "start_ns"))
    answered, healthy = probes["answered"].to_numpy().astype(bool), probes["healthy"].to_numpy().astype(bool)
    rows = []
    for name in appliances:
        mine = appliance == name
        intervals = [np.diff(np.sort(start[mine & (node == n)])) for n in pd.unique(node[mine])]
        intervals = pd.Series(np.concatenate(intervals) if intervals else np.zeros(0))
        rows.append(
            {
                "appliance": name,
                "probes": int(mine.sum()),
                "answered": int(answered[mine].sum()),
                "unanswered": int((~answered[mine]).sum()),
                "healthy": int(healthy[mine].sum()),
                "failed": int((~healthy[mine]).sum()),
                "interval_s": float(intervals.median() / NS_PER_SECOND) if len(intervals) else float("nan"),
            }
        )
    return pd.DataFrame(rows).set_index("appliance") if rows else pd.DataFrame()
