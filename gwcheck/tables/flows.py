"""The flow table: one row per inner flow within one endpoint, with the facts its classification needs.

A transit is one inner packet crossing an appliance: an ingress leg (with its return, if any) or an egress
leg no ingress explains.  Transits group into flows by the endpoint and the stickiness key of the target
group (gwlb.md: 5-tuple for TCP/UDP and 3-tuple for other protocols by default; 3-tuple or 2-tuple when the
target group is set so), the two ends in a canonical order.  The client is the side that sent the SYN,
else the side that received the SYN-ACK, else (ICMP) the side that sent an echo request or received an
echo reply, else the side that sent the first packet.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..flowkey import PORTLESS_PROTOCOLS
from ..schema import FragmentFlags
from .legs import NO_PEER, OPTION_ATTACHMENT, OPTION_COOKIE, OPTION_ENDPOINT, Direction, Pairing

STICKINESS = ("5-tuple", "3-tuple", "2-tuple")
TCP = 6
TCP_SYN = 0x02
TCP_ACK = 0x10
TCP_FIN = 0x01
TCP_RST = 0x04
ECHO_REQUESTS = (8, 128)  # ICMP, ICMPv6
ECHO_REPLIES = (0, 129)
GWLB_MAX_INNER_BYTES = 8500  # GWLB drops larger packets (gwlb.md, MTU)
OUTER_MF = int(FragmentFlags.MF)


#: The leg columns a transit keeps: what the flow table and the handshake times are built from.
TRANSIT_COLUMNS = (
    "ts_ns", "file_code", "direction", "appliance", "gwlb_node", "peer", "pairing", "outer_sport", "outer_frag",
    "aws_endpoint_id", "aws_flow_cookie", "inner_proto", "inner_src_hi", "inner_src_lo", "inner_dst_hi",
    "inner_dst_lo", "inner_sport", "inner_dport", "inner_tcp_flags", "inner_tcp_mss", "inner_ip_len_bytes",
    "inner_l4_payload_bytes", "inner_icmp_type",
)


def build_transits(legs: pd.DataFrame, stickiness: str = "5-tuple") -> pd.DataFrame:
    """The transits of ``legs`` with their flow key; adds a ``flow`` column (the flow's row) to ``legs`` too."""
    direction = legs["direction"].to_numpy()
    peer = legs["peer"].to_numpy()
    is_transit = (direction == Direction.INGRESS) | ((direction == Direction.EGRESS) & (peer == NO_PEER))
    t = legs.loc[is_transit, [c for c in TRANSIT_COLUMNS if c in legs]]  # only what flows need: no copy of every leg column
    t["leg"] = np.flatnonzero(is_transit)
    proto = t["inner_proto"].to_numpy()
    with_ports = (stickiness == "5-tuple") & ~np.isin(proto, list(PORTLESS_PROTOCOLS))
    sport = np.where(with_ports, t["inner_sport"].to_numpy(), 0).astype(np.uint16)
    dport = np.where(with_ports, t["inner_dport"].to_numpy(), 0).astype(np.uint16)
    s_hi, s_lo = t["inner_src_hi"].to_numpy(), t["inner_src_lo"].to_numpy()
    d_hi, d_lo = t["inner_dst_hi"].to_numpy(), t["inner_dst_lo"].to_numpy()
    src_first = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
    t["a_hi"], t["a_lo"], t["a_port"] = np.where(src_first, s_hi, d_hi), np.where(src_first, s_lo, d_lo), np.where(src_first, sport, dport)
    t["b_hi"], t["b_lo"], t["b_port"] = np.where(src_first, d_hi, s_hi), np.where(src_first, d_lo, s_lo), np.where(src_first, dport, sport)
    t["sender_is_a"] = src_first
    t["key_proto"] = proto if stickiness != "2-tuple" else np.zeros_like(proto)
    keys = ["aws_endpoint_id", "key_proto", "a_hi", "a_lo", "a_port", "b_hi", "b_lo", "b_port"]
    flow = t.groupby(keys, sort=True).ngroup().to_numpy()
    t["flow"] = flow
    flow_of_leg = np.full(len(legs), -1, np.int64)
    flow_of_leg[t["leg"].to_numpy()] = flow
    paired = peer >= 0
    flow_of_leg[paired & (direction == Direction.EGRESS)] = flow_of_leg[peer[paired & (direction == Direction.EGRESS)]]
    legs["flow"] = flow_of_leg
    order = np.lexsort((t["ts_ns"].to_numpy(), flow))  # a stable sort: legs are in capture order already
    return t.take(order).reset_index(drop=True)


def build_flows(
    transits: pd.DataFrame,
    legs: pd.DataFrame,
    appliance_names: list[str],
    node_names: list[str],
    tcp_idle_timeout_s: float = 350.0,
    udp_idle_timeout_s: float = 120.0,
) -> pd.DataFrame:
    """One row per flow: who, where, how much, what came back, and the raw facts of faults."""
    t = transits
    flow = t["flow"].to_numpy()
    n_flows = int(flow.max()) + 1 if len(flow) else 0
    by_flow = t.groupby("flow", sort=True)
    flags = t["inner_tcp_flags"].to_numpy()
    is_tcp = t["inner_proto"].to_numpy() == TCP
    syn = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN)
    synack = is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK))
    sender_is_a = t["sender_is_a"].to_numpy()
    icmp_type = t["inner_icmp_type"].to_numpy()
    is_icmp = np.isin(t["inner_proto"].to_numpy(), list(PORTLESS_PROTOCOLS))
    echo_request = is_icmp & np.isin(icmp_type, ECHO_REQUESTS)
    echo_reply = is_icmp & np.isin(icmp_type, ECHO_REPLIES)
    # Weakest evidence first, each stronger one overriding: the first sender, the receiver of an echo
    # reply, the sender of an echo request, the receiver of a SYN-ACK, the sender of a SYN.
    client_is_a = _first_per_flow(flow, sender_is_a, np.ones(len(t), bool), n_flows)
    for value, mask in ((~sender_is_a, echo_reply), (sender_is_a, echo_request), (~sender_is_a, synack), (sender_is_a, syn)):
        found = _first_per_flow(flow, value, mask, n_flows)
        client_is_a = np.where(found >= 0, found, client_is_a)
    client_is_a = client_is_a.astype(bool)
    fwd = sender_is_a == client_is_a[flow]
    first = by_flow.head(1).set_index("flow")
    a = (first["a_hi"].to_numpy(), first["a_lo"].to_numpy(), first["a_port"].to_numpy())
    b = (first["b_hi"].to_numpy(), first["b_lo"].to_numpy(), first["b_port"].to_numpy())
    flows = pd.DataFrame(index=pd.RangeIndex(n_flows, name="flow"))
    flows["protocol"] = first["inner_proto"].to_numpy()
    flows["endpoint_id"] = first["aws_endpoint_id"].to_numpy()
    flows["client_hi"] = np.where(client_is_a, a[0], b[0])
    flows["client_lo"] = np.where(client_is_a, a[1], b[1])
    flows["client_port"] = np.where(client_is_a, a[2], b[2])
    flows["server_hi"] = np.where(client_is_a, b[0], a[0])
    flows["server_lo"] = np.where(client_is_a, b[1], a[1])
    flows["server_port"] = np.where(client_is_a, b[2], a[2])
    flows["first_ns"] = by_flow["ts_ns"].min().to_numpy()
    flows["last_ns"] = by_flow["ts_ns"].max().to_numpy()
    size = t["inner_ip_len_bytes"].to_numpy().astype(np.int64)
    flows["fwd_packets"] = np.bincount(flow, weights=fwd, minlength=n_flows).astype(np.int64)
    flows["rev_packets"] = np.bincount(flow, weights=~fwd, minlength=n_flows).astype(np.int64)
    flows["fwd_bytes"] = np.bincount(flow, weights=np.where(fwd, size, 0), minlength=n_flows).astype(np.int64)
    flows["rev_bytes"] = np.bincount(flow, weights=np.where(fwd, 0, size), minlength=n_flows).astype(np.int64)
    pairing = t["pairing"].cat.codes.to_numpy()
    for state in (Pairing.PAIRED, Pairing.NOT_RETURNED, Pairing.IN_FLIGHT, Pairing.ORIGINATED, Pairing.BEFORE_CAPTURE):
        name = "returned" if state == Pairing.PAIRED else state.label
        flows[name] = np.bincount(flow, weights=pairing == state, minlength=n_flows).astype(np.int64)
    appliance = t["appliance"].to_numpy()
    flows["appliances"] = _names_per_flow(flow, appliance, appliance_names, n_flows)
    flows["fwd_appliances"] = _names_per_flow(flow[fwd], appliance[fwd], appliance_names, n_flows)
    flows["rev_appliances"] = _names_per_flow(flow[~fwd], appliance[~fwd], appliance_names, n_flows)
    flows["gwlb_nodes"] = _names_per_flow(flow, t["gwlb_node"].to_numpy(), node_names, n_flows)
    cookie = t["aws_flow_cookie"].to_numpy()
    flows["cookies"] = _names_per_flow(flow, cookie, None, n_flows)
    flows["outer_sports"] = _names_per_flow(flow, t["outer_sport"].to_numpy(), None, n_flows)
    for name, mask in (("tcp_syn", syn), ("tcp_synack", synack), ("tcp_fin", is_tcp & ((flags & TCP_FIN) != 0)), ("tcp_rst", is_tcp & ((flags & TCP_RST) != 0))):
        flows[name] = np.bincount(flow, weights=mask, minlength=n_flows) > 0
    _add_latency(flows, legs, n_flows)
    _add_option_faults(flows, legs, t, n_flows)
    _add_changes(flows, t, tcp_idle_timeout_s, udp_idle_timeout_s, syn)
    _add_mtu(flows, t, legs, n_flows)
    return flows


def _first_per_flow(flow: np.ndarray, value: np.ndarray, mask: np.ndarray, n_flows: int) -> np.ndarray:
    """Per flow, ``value`` at the first row where ``mask`` holds (rows are in time order per flow); -1 when none."""
    out = np.full(n_flows, -1, np.int8)
    rows = np.flatnonzero(mask)
    if len(rows):
        flows_of_rows = flow[rows]
        first = np.r_[True, flows_of_rows[1:] != flows_of_rows[:-1]]
        out[flows_of_rows[first]] = value[rows[first]]
    return out


def _names_per_flow(flow: np.ndarray, value: np.ndarray, names: list[str] | None, n_flows: int) -> np.ndarray:
    """Per flow, the distinct values (as names, or hex for cookies and numbers for ports) joined by commas."""
    out = np.full(n_flows, "", dtype=object)
    if len(flow) == 0:
        return out
    codes, uniques = pd.factorize(value, sort=True)
    pairs = np.unique(flow.astype(np.int64) * (len(uniques) + 1) + codes)
    pair_flow, pair_code = pairs // (len(uniques) + 1), pairs % (len(uniques) + 1)
    if names is not None:
        labels = np.array([names[v] if 0 <= v < len(names) else "?" for v in uniques], dtype=object)
    elif value.dtype == np.uint32:
        labels = np.array([f"0x{int(v):08x}" for v in uniques], dtype=object)
    else:
        labels = np.array([str(v) for v in uniques], dtype=object)
    text = labels[pair_code]
    single = np.r_[pair_flow[1:] != pair_flow[:-1], True] & np.r_[True, pair_flow[1:] != pair_flow[:-1]]
    out[pair_flow[single]] = text[single]
    several = ~single
    if several.any():
        joined = pd.Series(text[several]).groupby(pair_flow[several]).agg(",".join)
        out[joined.index.to_numpy()] = joined.to_numpy()
    return out


def _add_latency(flows: pd.DataFrame, legs: pd.DataFrame, n_flows: int) -> None:
    paired_in = (legs["direction"].to_numpy() == Direction.INGRESS) & (legs["peer"].to_numpy() != NO_PEER)
    latency = pd.DataFrame({"flow": legs["flow"].to_numpy()[paired_in], "us": legs["latency_ns"].to_numpy()[paired_in] / 1000.0})
    grouped = latency.groupby("flow")["us"]
    for name, q in (("latency_p50_us", 0.5), ("latency_p99_us", 0.99)):
        flows[name] = grouped.quantile(q).reindex(flows.index)
    flows["latency_max_us"] = grouped.max().reindex(flows.index)


def _add_option_faults(flows: pd.DataFrame, legs: pd.DataFrame, t: pd.DataFrame, n_flows: int) -> None:
    """Egress legs whose options differ from their ingress: a cookie the flow had before (stale) or another change."""
    egress = (legs["direction"].to_numpy() == Direction.EGRESS) & (legs["option_diff"].to_numpy() > 0)
    flow = legs["flow"].to_numpy()[egress]
    diff = legs["option_diff"].to_numpy()[egress]
    cookie = legs["aws_flow_cookie"].to_numpy()[egress]
    suspects = np.isin(t["flow"].to_numpy(), flow)
    seen = set(zip(t["flow"].to_numpy()[suspects].tolist(), t["aws_flow_cookie"].to_numpy()[suspects].tolist()))
    stale = np.array([(int(f), int(c)) in seen for f, c in zip(flow, cookie)], bool) & ((diff & OPTION_COOKIE) != 0)
    flows["stale_cookie_legs"] = np.bincount(flow[stale], minlength=n_flows).astype(np.int64)
    flows["wrong_cookie_legs"] = np.bincount(flow[~stale & ((diff & OPTION_COOKIE) != 0)], minlength=n_flows).astype(np.int64)
    flows["modified_option_legs"] = np.bincount(flow[(diff & (OPTION_ENDPOINT | OPTION_ATTACHMENT)) != 0], minlength=n_flows).astype(np.int64)
    bits = np.zeros(n_flows, np.uint8)
    np.bitwise_or.at(bits, flow, diff)
    flows["option_diff"] = bits


def _add_changes(flows: pd.DataFrame, t: pd.DataFrame, tcp_timeout_s: float, other_timeout_s: float, syn: np.ndarray) -> None:
    """Idle gaps past the timeout and what followed; changes of appliance not explained by them."""
    flow = t["flow"].to_numpy()
    ts = t["ts_ns"].to_numpy()
    n_flows = len(flows)
    same = np.r_[False, flow[1:] == flow[:-1]]
    gap = np.where(same, ts - np.r_[ts[:1], ts[:-1]], 0)
    timeout = np.where(t["inner_proto"].to_numpy() == TCP, tcp_timeout_s, other_timeout_s) * 1e9
    idle = same & (gap > timeout)
    cookie = t["aws_flow_cookie"].to_numpy()
    appliance = t["appliance"].to_numpy()
    previous = np.maximum(np.arange(len(t)) - 1, 0)  # each row's predecessor (row 0 its own)
    flows["max_gap_s"] = np.maximum.reduceat(gap, _starts(flow, n_flows)) / 1e9 if len(t) else np.zeros(0)
    flows["idle_gaps"] = np.bincount(flow[idle], minlength=n_flows).astype(np.int64)
    flows["new_cookie_after_idle"] = np.bincount(flow[idle & (cookie != cookie[previous])], minlength=n_flows) > 0
    flows["new_appliance_after_idle"] = np.bincount(flow[idle & (appliance != appliance[previous])], minlength=n_flows) > 0
    is_tcp = t["inner_proto"].to_numpy() == TCP
    flows["non_syn_after_idle"] = np.bincount(flow[idle & is_tcp & ~syn], minlength=n_flows) > 0
    # A change of appliance between consecutive packets of one direction, unless that direction had been
    # silent past the idle timeout (GWLB then chooses afresh).
    fwd_key = t["sender_is_a"].to_numpy()
    order = np.lexsort((ts, fwd_key, flow))
    f, d, a, s_ts, s_timeout = flow[order], fwd_key[order], appliance[order], ts[order], timeout[order]
    same_direction = np.r_[False, (f[1:] == f[:-1]) & (d[1:] == d[:-1])]
    direction_idle = same_direction & (np.r_[0, np.diff(s_ts)] > s_timeout)
    moved = same_direction & np.r_[False, a[1:] != a[:-1]] & ~direction_idle
    flows["appliance_changes"] = np.bincount(f[moved], minlength=n_flows).astype(np.int64)
    flows["directions_split"] = _directions_split(flow, idle, fwd_key, appliance, n_flows)
    moved_at = np.full(n_flows, -1, np.int64)
    rows = np.flatnonzero(moved)
    if len(rows):
        firsts = rows[np.r_[True, f[rows][1:] != f[rows][:-1]]]
        moved_at[f[firsts]] = s_ts[firsts]
    flows["moved_at_ns"] = moved_at


def _directions_split(flow: np.ndarray, idle: np.ndarray, sender_is_a: np.ndarray, appliance: np.ndarray, n_flows: int) -> np.ndarray:
    """Per flow: between two idle gaps, both directions seen and on no appliance in common."""
    epoch = np.cumsum(idle) - np.maximum.accumulate(np.where(np.r_[True, flow[1:] != flow[:-1]], np.cumsum(idle), 0))
    seen = pd.DataFrame({"flow": flow, "epoch": epoch, "a_side": sender_is_a, "appliance": appliance}).drop_duplicates()
    sides = seen.groupby(["flow", "epoch", "appliance"])["a_side"].nunique()
    shared = sides[sides > 1].reset_index()[["flow", "epoch"]].drop_duplicates()
    directions = seen.groupby(["flow", "epoch"])["a_side"].nunique()
    both = directions[directions > 1].reset_index()[["flow", "epoch"]]
    split_epochs = both.merge(shared, how="left", indicator=True)
    split = np.zeros(n_flows, bool)
    split[split_epochs.loc[split_epochs["_merge"] == "left_only", "flow"].to_numpy()] = True
    return split


def _starts(flow: np.ndarray, n_flows: int) -> np.ndarray:
    return np.searchsorted(flow, np.arange(n_flows))


def _add_mtu(flows: pd.DataFrame, t: pd.DataFrame, legs: pd.DataFrame, n_flows: int) -> None:
    """Inner packets over GWLB's 8,500 bytes, told apart from GSO/GRO super-packets (a TCP payload above the MSS)."""
    flow = t["flow"].to_numpy()
    mss = t["inner_tcp_mss"].to_numpy().astype(np.int64)
    flow_mss = np.zeros(n_flows, np.int64)
    np.maximum.at(flow_mss, flow, mss)
    is_tcp = t["inner_proto"].to_numpy() == TCP
    payload = t["inner_l4_payload_bytes"].to_numpy().astype(np.int64)
    known_mss = flow_mss[flow] > 0
    super_packet = is_tcp & known_mss & (payload > flow_mss[flow])
    big = t["inner_ip_len_bytes"].to_numpy() > GWLB_MAX_INNER_BYTES
    flows["mss"] = flow_mss
    flows["over_mtu_packets"] = np.bincount(flow[big & ~super_packet], minlength=n_flows).astype(np.int64)
    flows["gso_packets"] = np.bincount(flow[super_packet], minlength=n_flows).astype(np.int64)
    fragmented = (legs["outer_frag"].to_numpy() & OUTER_MF) != 0
    leg_flow = legs["flow"].to_numpy()
    flows["fragmented_legs"] = np.bincount(leg_flow[fragmented & (leg_flow >= 0)], minlength=n_flows).astype(np.int64)
