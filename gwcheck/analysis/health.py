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
    columns = ["ts_ns", "file", "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo", "outer_tcp_flags", "outer_sport", "outer_dport", "outer_http_status"]
    tcp = packets.loc[(packets["kind"] == "tcp").to_numpy(), columns]
    columns = ["gwlb_node", "appliance", "port", "start_ns", "answered", "http_status", "reset", "healthy"]
    if tcp.empty or not roles.appliances:
        return pd.DataFrame(columns=columns)
    src = (tcp["outer_src_hi"].to_numpy(), tcp["outer_src_lo"].to_numpy())
    dst = (tcp["outer_dst_hi"].to_numpy(), tcp["outer_dst_lo"].to_numpy())
    node_src, node_dst = role_index(*src, roles.gwlb_nodes), role_index(*dst, roles.gwlb_nodes)
    app_src, app_dst = role_index(*src, roles.appliances), role_index(*dst, roles.appliances)
    from_node = (node_src >= 0) & (app_dst >= 0)
    to_node = (app_src >= 0) & (node_dst >= 0)
    keep = from_node | to_node
    flags = tcp["outer_tcp_flags"].to_numpy()
    sport, dport = tcp["outer_sport"].to_numpy(), tcp["outer_dport"].to_numpy()
    at = np.flatnonzero(keep)
    node, appliance = np.where(from_node, node_src, node_dst)[at], np.where(from_node, app_dst, app_src)[at]
    port = np.where(from_node, dport, sport)[at]
    # One probe per connection: node and appliance, their ports, and the file; numbered as they appear.
    probe, firsts = group_ids([tcp["file"].cat.codes.to_numpy()[at], node, appliance, np.where(from_node, sport, dport)[at], port])
    n = len(firsts)
    start_ns = np.full(n, np.iinfo(np.int64).max)
    np.minimum.at(start_ns, probe, tcp["ts_ns"].to_numpy()[at])
    http_status = np.zeros(n, np.uint16)
    np.maximum.at(http_status, probe, np.where(to_node, tcp["outer_http_status"].to_numpy(), 0)[at])
    out = pd.DataFrame(
        {
            "gwlb_node": node[firsts],
            "appliance": appliance[firsts],
            "port": port[firsts],
            "start_ns": start_ns,
            "opened": any_per_group(probe, (from_node & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN))[at], n),
            "answered": any_per_group(probe, (to_node & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)))[at], n),
            "http_status": http_status,
            "reset": any_per_group(probe, (to_node & ((flags & TCP_RST) != 0))[at], n),
        }
    )
    out = out[out["opened"]]
    is_http = out["http_status"] > 0
    out["healthy"] = out["answered"] & (~is_http | ((out["http_status"] >= HTTP_OK) & (out["http_status"] < 300)))
    node_names, appliance_names = roles.gwlb_node_names(), roles.appliance_names()  # each address formatted once
    out["gwlb_node"] = [node_names[k] for k in out["gwlb_node"]]
    out["appliance"] = [appliance_names[k] for k in out["appliance"]]
    return out.sort_values("start_ns")[columns].reset_index(drop=True)


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
