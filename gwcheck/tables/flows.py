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
import pyarrow as pa
import pyarrow.compute as pc

from ..flowkey import PORTLESS_PROTOCOLS
from ..schema import FragmentFlags
from ..summaries import LatencyGroups, group_codes
from ..text import take_text, text_column
from .grouping import group_ids, group_order, lex_order
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


#: The leg columns transits and the flow table are built from (what the fleet keeps of legs to build them).
TRANSIT_COLUMNS = (
    "ts_ns", "file_code", "direction", "appliance", "gwlb_node", "peer", "pairing", "outer_sport", "outer_frag",
    "aws_endpoint_id", "aws_flow_cookie", "inner_proto", "inner_src_hi", "inner_src_lo", "inner_dst_hi",
    "inner_dst_lo", "inner_sport", "inner_dport", "inner_tcp_flags", "inner_tcp_mss", "inner_ip_len_bytes",
    "inner_l4_payload_bytes", "inner_icmp_type",
)

#: The leg columns a transit carries besides its flow key: what the flow table and the handshake times read.
TRANSIT_CARRIED = (
    "ts_ns", "appliance", "gwlb_node", "pairing", "outer_sport", "aws_endpoint_id", "aws_flow_cookie", "inner_proto",
    "inner_tcp_flags", "inner_tcp_mss", "inner_ip_len_bytes", "inner_l4_payload_bytes", "inner_icmp_type",
)

#: The flow table's counts of transits by their ``Pairing``.
PAIRING_COLUMNS = {
    "returned": Pairing.PAIRED, "not_returned": Pairing.NOT_RETURNED, "in_flight": Pairing.IN_FLIGHT,
    "originated": Pairing.ORIGINATED, "before_capture": Pairing.BEFORE_CAPTURE,
}

#: The flow table's columns of TCP flags seen, each named after its ``transit_kinds`` entry.
TCP_FLAG_COLUMNS = ("tcp_syn", "tcp_synack", "tcp_fin", "tcp_rst")

#: The canonical flow key of a transit, in the order flows are sorted by: the two ends, lower end first.
FLOW_KEY = ("aws_endpoint_id", "key_proto", "a_hi", "a_lo", "a_port", "b_hi", "b_lo", "b_port")

#: The leg columns of a transit's key as sent, which its flow key is made of.
SENT_KEY = ("aws_endpoint_id", "inner_proto", "inner_src_hi", "inner_src_lo", "inner_sport", "inner_dst_hi", "inner_dst_lo", "inner_dport")


def build_transits(legs: pd.DataFrame, stickiness: str = "5-tuple") -> pd.DataFrame:
    """The transits of ``legs`` (``TRANSIT_CARRIED`` columns, ``leg``, the flow key, ``sender_is_a`` and ``flow``),
    sorted by flow, then time; adds a ``flow`` column (the flow's row) to ``legs`` too."""
    direction = legs["direction"].to_numpy()
    peer = legs["peer"].to_numpy()
    leg = np.flatnonzero((direction == Direction.INGRESS) | ((direction == Direction.EGRESS) & (peer == NO_PEER)))
    flow, flow_keys, src_first = _flows_of(legs, leg, stickiness)
    n_flows = len(flow_keys[FLOW_KEY[0]])
    flow_of_leg = np.full(len(legs), -1, np.int64)
    flow_of_leg[leg] = flow
    returned = np.flatnonzero((peer >= 0) & (direction == Direction.EGRESS))
    flow_of_leg[returned] = flow_of_leg[peer[returned]]
    legs["flow"] = flow_of_leg
    # By flow, then time; ties keep capture order (legs are in capture order already).
    ts = legs["ts_ns"].to_numpy()[leg]
    by_time = np.arange(len(ts)) if np.all(ts[1:] >= ts[:-1]) else np.argsort(ts, kind="stable")
    order = by_time[group_order(flow[by_time], n_flows)]
    rows = leg[order]
    carried = {"ts_ns": ts[order]}  # from the transits' times, a smaller array than the legs'
    t = {name: carried[name] if name in carried else _take(legs[name], rows) for name in TRANSIT_CARRIED if name in legs and name not in FLOW_KEY}
    t["leg"] = rows
    t["sender_is_a"] = src_first[order]
    # Sorted by flow: each transit's flow, and its flow's key, repeated over its transits.
    per_flow = np.bincount(flow, minlength=n_flows)
    t["flow"] = np.repeat(np.arange(n_flows), per_flow)
    for name in FLOW_KEY:
        t[name] = np.repeat(flow_keys[name], per_flow)
    return pd.DataFrame(t, copy=False)


def _flows_of(legs: pd.DataFrame, leg: np.ndarray, stickiness: str) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """For the transits that are legs ``leg``: each one's flow, numbered in key order; each flow's key
    (``FLOW_KEY``); and whether each transit's sender is its flow's end a.  The transits' keys are not kept."""
    # The transits grouped by their key as sent first: far fewer keys than transits to put in canonical order.
    sent = [legs[name].to_numpy()[leg] for name in SENT_KEY]
    sent_ids, sent_firsts = group_ids(sent)
    endpoint, proto, s_hi, s_lo, sport, d_hi, d_lo, dport = (column[sent_firsts] for column in sent)
    with_ports = (stickiness == "5-tuple") & ~np.isin(proto, list(PORTLESS_PROTOCOLS))
    sport = np.where(with_ports, sport, 0).astype(np.uint16)
    dport = np.where(with_ports, dport, 0).astype(np.uint16)
    src_first = (s_hi < d_hi) | ((s_hi == d_hi) & ((s_lo < d_lo) | ((s_lo == d_lo) & (sport <= dport))))
    key = {
        "aws_endpoint_id": endpoint,
        "key_proto": proto if stickiness != "2-tuple" else np.zeros_like(proto),
        "a_hi": np.where(src_first, s_hi, d_hi), "a_lo": np.where(src_first, s_lo, d_lo), "a_port": np.where(src_first, sport, dport),
        "b_hi": np.where(src_first, d_hi, s_hi), "b_lo": np.where(src_first, d_lo, s_lo), "b_port": np.where(src_first, dport, sport),
    }
    # Flows are numbered in key order: group the keys by hash, then sort only each flow's key.
    ids, firsts = group_ids([key[name] for name in FLOW_KEY])
    group_of_flow = np.lexsort([key[name][firsts] for name in reversed(FLOW_KEY)])
    flow_of_group = np.empty(len(firsts), np.int64)
    flow_of_group[group_of_flow] = np.arange(len(firsts))
    return flow_of_group[ids][sent_ids], {name: key[name][firsts[group_of_flow]] for name in FLOW_KEY}, src_first[sent_ids]


def _take(column: pd.Series, rows: np.ndarray) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """The values of ``column`` at ``rows``: a numpy gather, or the extension array's own take (categoricals)."""
    values = column.array
    return values.take(rows) if isinstance(column.dtype, pd.api.extensions.ExtensionDtype) else column.to_numpy()[rows]


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
    kinds = transit_kinds(t)
    sender_is_a = t["sender_is_a"].to_numpy()
    client_is_a = client_evidence(flow, sender_is_a, kinds, n_flows)[1].astype(bool)
    fwd = sender_is_a == client_is_a[flow]
    # Rows rather than masks: numpy gathers by a mask that changes often (as directions do) several times slower.
    fwd_rows, rev_rows = np.flatnonzero(fwd), np.flatnonzero(~fwd)
    fwd_flow, rev_flow = flow[fwd_rows], flow[rev_rows]
    # Transits are sorted by flow, then time: a flow's first row is its first and earliest transit.
    starts, ends = flow_starts(flow, n_flows), flow_ends(flow, n_flows)

    def first(name: str) -> np.ndarray:
        return t[name].to_numpy()[starts]

    a = (first("a_hi"), first("a_lo"), first("a_port"))
    b = (first("b_hi"), first("b_lo"), first("b_port"))
    flows: dict[str, np.ndarray | pd.api.extensions.ExtensionArray] = {}  # the columns, made a frame at once
    flows["protocol"] = first("inner_proto")
    flows["endpoint_id"] = first("aws_endpoint_id")
    flows["client_hi"] = np.where(client_is_a, a[0], b[0])
    flows["client_lo"] = np.where(client_is_a, a[1], b[1])
    flows["client_port"] = np.where(client_is_a, a[2], b[2])
    flows["server_hi"] = np.where(client_is_a, b[0], a[0])
    flows["server_lo"] = np.where(client_is_a, b[1], a[1])
    flows["server_port"] = np.where(client_is_a, b[2], a[2])
    ts = t["ts_ns"].to_numpy()
    flows["first_ns"], flows["last_ns"] = ts[starts], ts[ends]
    size = t["inner_ip_len_bytes"].to_numpy().astype(np.int64)
    flows["fwd_packets"] = np.bincount(fwd_flow, minlength=n_flows)
    flows["rev_packets"] = np.bincount(rev_flow, minlength=n_flows)
    flows["fwd_bytes"] = np.bincount(fwd_flow, weights=size[fwd_rows], minlength=n_flows).astype(np.int64)
    flows["rev_bytes"] = np.bincount(rev_flow, weights=size[rev_rows], minlength=n_flows).astype(np.int64)
    by_pairing = counts_by_code(flow, t["pairing"].cat.codes.to_numpy(), n_flows, len(Pairing))
    for name, state in PAIRING_COLUMNS.items():
        flows[name] = by_pairing[:, state]
    appliance = t["appliance"].to_numpy()
    flows["appliances"] = names_per_flow(flow, appliance, appliance_names, n_flows)
    flows["fwd_appliances"] = names_per_flow(fwd_flow, appliance[fwd_rows], appliance_names, n_flows)
    flows["rev_appliances"] = names_per_flow(rev_flow, appliance[rev_rows], appliance_names, n_flows)
    flows["gwlb_nodes"] = names_per_flow(flow, t["gwlb_node"].to_numpy(), node_names, n_flows)
    cookie = t["aws_flow_cookie"].to_numpy()
    flows["cookies"] = names_per_flow(flow, cookie, None, n_flows)
    flows["outer_sports"] = names_per_flow(flow, t["outer_sport"].to_numpy(), None, n_flows)
    for name in TCP_FLAG_COLUMNS:
        flows[name] = any_per_group(flow, kinds[name.removeprefix("tcp_")], n_flows)
    _add_latency(flows, legs, n_flows)
    _add_option_faults(flows, legs, t, n_flows)
    _add_changes(flows, t, tcp_idle_timeout_s, udp_idle_timeout_s, kinds, n_flows)
    _add_mtu(flows, t, legs, n_flows)
    return pd.DataFrame(flows, index=pd.RangeIndex(n_flows, name="flow"), copy=False)


def counts_by_code(flow: np.ndarray, code: np.ndarray, n_flows: int, n_codes: int) -> np.ndarray:
    """Per flow (rows) and code 0 to ``n_codes`` - 1 (columns), how many rows hold it: one count of both at once."""
    known = (code >= 0) & (code < n_codes)
    both = flow[known].astype(np.int64) * n_codes + code[known]
    return np.bincount(both, minlength=n_flows * n_codes).reshape(n_flows, n_codes)


def any_per_group(group: np.ndarray, mask: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group (a flow, say), whether any of its rows holds ``mask``."""
    out = np.zeros(n_groups, bool)
    out[group[mask]] = True
    return out


def transit_kinds(t: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per transit, boolean masks: ``tcp``, ``syn``, ``synack``, ``ack`` (plain), ``fin``, ``rst``, ``echo_request``, ``echo_reply``."""
    flags = t["inner_tcp_flags"].to_numpy()
    proto = t["inner_proto"].to_numpy()
    is_tcp = proto == TCP
    is_icmp = np.isin(proto, list(PORTLESS_PROTOCOLS))
    icmp_type = t["inner_icmp_type"].to_numpy()
    return {
        "tcp": is_tcp,
        "syn": is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_SYN),
        "synack": is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == (TCP_SYN | TCP_ACK)),
        "ack": is_tcp & ((flags & (TCP_SYN | TCP_ACK)) == TCP_ACK),
        "fin": is_tcp & ((flags & TCP_FIN) != 0),
        "rst": is_tcp & ((flags & TCP_RST) != 0),
        "echo_request": is_icmp & np.isin(icmp_type, ECHO_REQUESTS),
        "echo_reply": is_icmp & np.isin(icmp_type, ECHO_REPLIES),
    }


def client_evidence(flow: np.ndarray, sender_is_a: np.ndarray, kinds: dict[str, np.ndarray], n_flows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per flow, the strength of the best evidence of its client (0 to 4) and whether that says the client is end a.

    Weakest first, each stronger one overriding: the first sender, the receiver of an echo reply, the
    sender of an echo request, the receiver of a SYN-ACK, the sender of a SYN; within one strength the
    first row (rows are in time order per flow) decides.
    """
    client_is_a = first_per_flow(flow, sender_is_a, np.ones(len(flow), bool), n_flows)
    strength = np.where(client_is_a >= 0, 0, -1).astype(np.int8)
    evidence = (
        (~sender_is_a, kinds["echo_reply"]), (sender_is_a, kinds["echo_request"]), (~sender_is_a, kinds["synack"]), (sender_is_a, kinds["syn"]),
    )
    for level, (value, mask) in enumerate(evidence, start=1):
        found = first_per_flow(flow, value, mask, n_flows)
        client_is_a = np.where(found >= 0, found, client_is_a)
        strength[found >= 0] = level
    return strength, client_is_a


def first_per_flow(flow: np.ndarray, value: np.ndarray, mask: np.ndarray, n_flows: int, fill: int = -1, dtype: type = np.int8) -> np.ndarray:
    """Per flow, ``value`` at the first row where ``mask`` holds (rows are in time order per flow); ``fill`` when none."""
    out = np.full(n_flows, fill, dtype)
    rows = np.flatnonzero(mask)
    if len(rows):
        flows_of_rows = flow[rows]
        first = np.r_[True, flows_of_rows[1:] != flows_of_rows[:-1]]
        out[flows_of_rows[first]] = value[rows[first]]
    return out


def names_per_flow(flow: np.ndarray, value: np.ndarray, names: list[str] | None, n_flows: int) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """Per flow, the distinct values (as names, or hex for cookies and numbers for ports) joined by commas: a text column."""
    if len(flow) == 0:
        return text_column(take_text([""], np.zeros(n_flows, np.int64)))
    single = np.zeros(len(flow), bool)  # rows whose value alone is their flow's text
    if np.all(flow[1:] >= flow[:-1]):
        # Rows sorted by flow (as transits are): most flows hold one value, taken from their first row.  Only
        # those rows, and the rows of flows with several values (which go the general way below), are coded.
        same_flow = flow[1:] == flow[:-1]
        starts = np.flatnonzero(np.r_[True, ~same_flow])
        mixed = np.zeros(n_flows, bool)
        mixed[flow[1:][same_flow & (value[1:] != value[:-1])]] = True
        rows = starts[~mixed[flow[starts]]]
        single = np.ones(len(rows), bool)
        if mixed.any():
            of_mixed = np.flatnonzero(mixed[flow])
            rows, single = np.r_[rows, of_mixed], np.r_[single, np.zeros(len(of_mixed), bool)]
        flow, value = flow[rows], value[rows]
    codes, uniques = group_codes(value)
    labels = _labels(uniques, names, value.dtype)
    # Each flow's text is one of the labels, "" (no rows) or one of the joined lists after them.
    choice = np.full(n_flows, len(labels), np.int64)
    choice[flow[single]] = codes[single]
    flow, codes = flow[~single], codes[~single]
    joined: list[str] = []
    if len(flow):
        pairs = np.unique(flow.astype(np.int64) * (len(uniques) + 1) + codes)
        pair_flow, pair_code = pairs // (len(uniques) + 1), pairs % (len(uniques) + 1)
        one = np.r_[pair_flow[1:] != pair_flow[:-1], True] & np.r_[True, pair_flow[1:] != pair_flow[:-1]]
        choice[pair_flow[one]] = pair_code[one]
        several = ~one
        if several.any():
            by_flow = pd.Series(labels.take(pair_code[several]).to_pylist()).groupby(pair_flow[several]).agg(",".join)
            joined = by_flow.tolist()
            choice[by_flow.index.to_numpy()] = len(labels) + 1 + np.arange(len(joined))
    return text_column(take_text(pa.concat_arrays([labels, pa.array([""] + joined, pa.string())]), choice))


def _labels(uniques: np.ndarray, names: list[str] | None, dtype: np.dtype) -> pa.Array:
    """The text of each distinct value: its name, hex for cookies (uint32), else its number."""
    if names is not None:
        return pa.array([names[v] if 0 <= v < len(names) else "?" for v in uniques], pa.string())
    uniques = np.asarray(uniques)
    if dtype == np.uint32:
        nibbles = (uniques.astype(np.uint64)[:, None] >> np.arange(28, -4, -4, dtype=np.uint64)) & np.uint64(0xF)
        digits = np.frombuffer(b"0123456789abcdef", np.uint8)[nibbles.astype(np.intp)]
        text = np.concatenate([np.full((len(uniques), 2), [ord("0"), ord("x")], np.uint8), digits], axis=1)
        return pa.array(np.ascontiguousarray(text).view("S10").ravel(), pa.binary(10)).cast(pa.string())
    if uniques.dtype.kind in "iu":
        return pc.cast(pa.array(uniques), pa.string())
    return pa.array([str(v) for v in uniques], pa.string())


def _add_latency(flows: dict, legs: pd.DataFrame, n_flows: int) -> None:
    paired_in = np.flatnonzero((legs["direction"].to_numpy() == Direction.INGRESS) & (legs["peer"].to_numpy() != NO_PEER))
    by_flow = LatencyGroups(legs["flow"].to_numpy()[paired_in], legs["latency_ns"].to_numpy()[paired_in])
    for name, values in (("latency_p50_us", by_flow.quantile_us(0.5)), ("latency_p99_us", by_flow.quantile_us(0.99)), ("latency_max_us", by_flow.max_us())):
        column = np.full(n_flows, np.nan)
        column[by_flow.groups] = values
        flows[name] = column


def _add_option_faults(flows: dict, legs: pd.DataFrame, t: pd.DataFrame, n_flows: int) -> None:
    """Egress legs whose options differ from their ingress: a cookie the flow had before (stale) or another change."""
    flow, diff, cookie = changed_options(legs)
    of_changed = np.isin(t["flow"].to_numpy(), flow)  # the transits of those flows alone: usually few or none
    seen = np.isin(pair_codes(flow, cookie), pair_codes(t["flow"].to_numpy()[of_changed], t["aws_flow_cookie"].to_numpy()[of_changed]))
    for name, values in option_faults(flow, diff, seen, n_flows).items():
        flows[name] = values


def changed_options(legs: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The flow, ``option_diff`` bits and flow cookie of every egress leg whose options differ from its ingress."""
    egress = (legs["direction"].to_numpy() == Direction.EGRESS) & (legs["option_diff"].to_numpy() > 0)
    return legs["flow"].to_numpy()[egress], legs["option_diff"].to_numpy()[egress], legs["aws_flow_cookie"].to_numpy()[egress]


def option_faults(flow: np.ndarray, diff: np.ndarray, cookie_seen: np.ndarray, n_flows: int) -> dict[str, np.ndarray]:
    """Per flow, the option columns from ``changed_options``: a changed cookie is stale when the flow's transits carried it."""
    cookie_changed = (diff & OPTION_COOKIE) != 0
    stale = cookie_seen & cookie_changed
    bits = np.zeros(n_flows, np.uint8)
    np.bitwise_or.at(bits, flow, diff)
    return {
        "stale_cookie_legs": np.bincount(flow[stale], minlength=n_flows).astype(np.int64),
        "wrong_cookie_legs": np.bincount(flow[~stale & cookie_changed], minlength=n_flows).astype(np.int64),
        "modified_option_legs": np.bincount(flow[(diff & (OPTION_ENDPOINT | OPTION_ATTACHMENT)) != 0], minlength=n_flows).astype(np.int64),
        "option_diff": bits,
    }


def pair_codes(flow: np.ndarray, value: np.ndarray) -> np.ndarray:
    """(flow, value) pairs as one sortable int64: the flow above bit 32, the value's low 32 bits below."""
    return (flow.astype(np.int64) << 32) | (value.astype(np.int64) & 0xFFFFFFFF)


def _add_changes(
    flows: dict, t: pd.DataFrame, tcp_timeout_s: float, other_timeout_s: float, kinds: dict[str, np.ndarray], n_flows: int
) -> None:
    """Idle gaps past the timeout and what followed; changes of appliance not explained by them."""
    flow = t["flow"].to_numpy()
    timeout = idle_timeouts_ns(kinds["tcp"], tcp_timeout_s, other_timeout_s)
    ts, cookie, appliance, sender_is_a = (t[name].to_numpy() for name in ("ts_ns", "aws_flow_cookie", "appliance", "sender_is_a"))
    changes, idle = flow_changes(flow, ts, cookie, appliance, sender_is_a, kinds["tcp"], kinds["syn"], timeout, n_flows)
    flows["max_gap_s"] = changes.pop("max_gap_ns") / 1e9
    moved_at = first_move_ns(changes.pop("a_moved_at_ns"), changes.pop("b_moved_at_ns"))
    for name, values in changes.items():
        flows[name] = values
    # A flow that uses one appliance cannot split: both directions share it.
    rows = rows_of_several_appliances(flow, appliance, n_flows)
    split = np.zeros(n_flows, bool)
    split[split_epochs(flow[rows], flow_epochs(flow[rows], idle[rows]), sender_is_a[rows], appliance[rows])[0]] = True
    flows["directions_split"] = split
    flows["moved_at_ns"] = moved_at


def idle_timeouts_ns(is_tcp: np.ndarray, tcp_timeout_s: float, other_timeout_s: float) -> np.ndarray:
    """Per transit, GWLB's idle timeout for its protocol, in nanoseconds (as floats)."""
    return np.where(is_tcp, tcp_timeout_s, other_timeout_s) * 1e9


def flow_changes(
    flow: np.ndarray, ts: np.ndarray, cookie: np.ndarray, appliance: np.ndarray, sender_is_a: np.ndarray, is_tcp: np.ndarray,
    syn: np.ndarray, timeout_ns: np.ndarray, n_flows: int, carried: np.ndarray | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per flow, idle gaps past the timeout and what followed, and changes of appliance not explained by them
    (with the first change in each end's direction, ``a_moved_at_ns`` and ``b_moved_at_ns``); and per row,
    whether it follows an idle gap.

    Rows are in time order per flow.  ``carried`` rows (a flow's last transits from an earlier part of the
    capture) are only there to be followed: no gap or change is counted on them.
    """
    same = np.r_[False, flow[1:] == flow[:-1]]
    if carried is not None:
        same &= ~carried
    gap = np.where(same, ts - np.r_[ts[:1], ts[:-1]], 0)
    idle = same & (gap > timeout_ns)
    after = np.flatnonzero(idle)  # rows after an idle gap: each follows a row of its flow
    after_flow = flow[after]
    out = {
        "max_gap_ns": np.maximum.reduceat(gap, flow_starts(flow, n_flows)) if len(flow) else np.zeros(0, np.int64),
        "idle_gaps": np.bincount(after_flow, minlength=n_flows).astype(np.int64),
        "new_cookie_after_idle": np.bincount(after_flow[cookie[after] != cookie[after - 1]], minlength=n_flows) > 0,
        "new_appliance_after_idle": np.bincount(after_flow[appliance[after] != appliance[after - 1]], minlength=n_flows) > 0,
        "non_syn_after_idle": np.bincount(after_flow[is_tcp[after] & ~syn[after]], minlength=n_flows) > 0,
    }
    # A change of appliance between consecutive packets of one direction, unless that direction had been
    # silent past the idle timeout (GWLB then chooses afresh).  Only flows that use several appliances can.
    rows = rows_of_several_appliances(flow, appliance, n_flows)
    order = rows[_by_flow_direction_time(flow[rows], sender_is_a[rows], ts[rows])]
    f, d, a, s_ts, s_timeout = flow[order], sender_is_a[order], appliance[order], ts[order], timeout_ns[order]
    same_direction = np.r_[False, (f[1:] == f[:-1]) & (d[1:] == d[:-1])]
    direction_idle = same_direction & (np.r_[0, np.diff(s_ts)] > s_timeout)
    moved = same_direction & np.r_[False, a[1:] != a[:-1]] & ~direction_idle
    if carried is not None:
        moved &= ~carried[order]
    out["appliance_changes"] = np.bincount(f[moved], minlength=n_flows).astype(np.int64)
    for end, sent_by_a in (("a", True), ("b", False)):
        rows = np.flatnonzero(moved & (d == sent_by_a))
        moved_at = np.full(n_flows, -1, np.int64)
        if len(rows):
            firsts = rows[np.r_[True, f[rows][1:] != f[rows][:-1]]]
            moved_at[f[firsts]] = s_ts[firsts]
        out[f"{end}_moved_at_ns"] = moved_at
    return out, idle


def rows_of_several_appliances(flow: np.ndarray, appliance: np.ndarray, n_flows: int) -> np.ndarray:
    """The rows of the flows that use more than one appliance, when rows are sorted by flow; else every row."""
    if not np.all(flow[1:] >= flow[:-1]):
        return np.arange(len(flow))
    several = np.zeros(n_flows, bool)
    several[flow[1:][(flow[1:] == flow[:-1]) & (appliance[1:] != appliance[:-1])]] = True
    return np.flatnonzero(several[flow])


def _by_flow_direction_time(flow: np.ndarray, sender_is_a: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """``np.lexsort((ts, sender_is_a, flow))``: a stable counting sort by flow and direction when rows are
    sorted by flow, then time (as transits are), else the lexsort itself."""
    if len(flow) and flow[0] >= 0 and np.all((flow[1:] > flow[:-1]) | ((flow[1:] == flow[:-1]) & (ts[1:] >= ts[:-1]))):
        return group_order(flow.astype(np.int64) * 2 + sender_is_a.astype(bool), 2 * (int(flow[-1]) + 1))
    return np.lexsort((ts, sender_is_a, flow))


def first_move_ns(a_moved_at_ns: np.ndarray, b_moved_at_ns: np.ndarray) -> np.ndarray:
    """A flow's ``moved_at_ns``: the first change of appliance in the direction end b sends, else in end a's (-1: none).

    Not the earlier of the two: this is the order build_flows has always reported.
    """
    return np.where(b_moved_at_ns >= 0, b_moved_at_ns, a_moved_at_ns)


def flow_epochs(flow: np.ndarray, idle: np.ndarray) -> np.ndarray:
    """Per row (in time order per flow), how many idle gaps of its flow precede it."""
    return np.cumsum(idle) - np.maximum.accumulate(np.where(np.r_[True, flow[1:] != flow[:-1]], np.cumsum(idle), 0))


def split_epochs(flow: np.ndarray, epoch: np.ndarray, sender_is_a: np.ndarray, appliance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The flows and epochs whose rows show both directions and no appliance in common: a split flow."""
    if len(flow) == 0:
        return flow.astype(np.int64), epoch.astype(np.int64)
    order = lex_order((sender_is_a, appliance, epoch, flow))
    f, e, a, s = flow[order], epoch[order], appliance[order], sender_is_a[order].astype(bool)
    new_epoch = np.r_[True, (f[1:] != f[:-1]) | (e[1:] != e[:-1])]
    new_place = new_epoch | np.r_[True, a[1:] != a[:-1]]  # an appliance within an epoch
    epoch_of = np.cumsum(new_epoch) - 1
    # Sorted by direction within a place: both directions there when its first and last rows differ.
    shared = np.zeros(int(new_epoch.sum()), bool)
    last_of_place = np.r_[new_place[1:], True]
    shared[epoch_of[new_place][s[new_place] != s[last_of_place]]] = True
    both = any_per_group(epoch_of, s, len(shared)) & any_per_group(epoch_of, ~s, len(shared))
    split = both & ~shared
    return f[new_epoch][split], e[new_epoch][split]


def flow_starts(flow: np.ndarray, n_flows: int) -> np.ndarray:
    """Each flow's first row, rows sorted by flow."""
    return np.searchsorted(flow, np.arange(n_flows))


def flow_ends(flow: np.ndarray, n_flows: int) -> np.ndarray:
    """Each flow's last row, rows sorted by flow."""
    return np.searchsorted(flow, np.arange(n_flows), side="right") - 1


def _add_mtu(flows: dict, t: pd.DataFrame, legs: pd.DataFrame, n_flows: int) -> None:
    """Inner packets over GWLB's 8,500 bytes, told apart from GSO/GRO super-packets (a TCP payload above the MSS)."""
    flow = t["flow"].to_numpy()
    flow_mss = np.zeros(n_flows, np.int64)
    np.maximum.at(flow_mss, flow, t["inner_tcp_mss"].to_numpy().astype(np.int64))
    flows["mss"] = flow_mss
    flows["over_mtu_packets"], flows["gso_packets"] = mtu_packets(t, flow_mss[flow], n_flows)
    flows["fragmented_legs"] = fragmented_legs(legs, n_flows)


def mtu_packets(t: pd.DataFrame, mss: np.ndarray, n_flows: int) -> tuple[np.ndarray, np.ndarray]:
    """Per flow, inner packets over GWLB's limit and GSO/GRO super-packets, given each transit's flow MSS."""
    flow = t["flow"].to_numpy()
    is_tcp = t["inner_proto"].to_numpy() == TCP
    payload = t["inner_l4_payload_bytes"].to_numpy().astype(np.int64)
    super_packet = is_tcp & (mss > 0) & (payload > mss)
    big = t["inner_ip_len_bytes"].to_numpy() > GWLB_MAX_INNER_BYTES
    over = np.bincount(flow[big & ~super_packet], minlength=n_flows).astype(np.int64)
    return over, np.bincount(flow[super_packet], minlength=n_flows).astype(np.int64)


def fragmented_legs(legs: pd.DataFrame, n_flows: int) -> np.ndarray:
    """Per flow, the legs (either way) whose outer packet is a first or middle fragment."""
    fragmented = (legs["outer_frag"].to_numpy() & OUTER_MF) != 0
    leg_flow = legs["flow"].to_numpy()
    return np.bincount(leg_flow[fragmented & (leg_flow >= 0)], minlength=n_flows).astype(np.int64)
