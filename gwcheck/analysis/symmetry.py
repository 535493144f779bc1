"""Symmetry of every flow (shared/docs/gwlb.md, "What goes wrong"): each flow gets its reasons and a verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..text import take_text, text_column

#: Every reason a flow can be given, most severe first, with the likely cause a person should check.
REASONS: dict[str, str] = {
    "originated": "the appliance sent traffic into GWLB that never came from it: appliances may only return what GWLB sent",
    "asymmetric": "the two directions of the flow went to different appliances or endpoints: check Transit Gateway appliance mode and cross-zone routing",
    "one_sided": "only one direction of the flow reached an appliance: the return path bypasses GWLB (routing asymmetry)",
    "stale_cookie": "the appliance answered with an older flow's options (5-tuple reuse): it must copy the options of the latest ingress packet",
    "wrong_cookie": "the appliance returned a flow cookie GWLB never sent for this flow: GWLB drops such replies",
    "modified_options": "the appliance changed the endpoint or attachment ID on the way back: GWLB options must be returned unchanged",
    "not_returned": "packets went into the appliance and never came back: check its firewall rules, rp_filter and source/destination check",
    "moved": "the flow changed appliance part way: failover, rebalancing or scale-in broke stickiness",
    "idle_gap": "the flow was silent past GWLB's idle timeout and came back as a new flow (new cookie, maybe another appliance)",
    "over_mtu": "inner packets over 8,500 bytes: GWLB drops them without fragmenting or sending ICMP; lower the MTU or MSS",
    "outer_fragments": "the appliance fragmented its Geneve packets: GWLB does not reassemble them; raise the appliance's MTU",
}


def classify_flows(flows: pd.DataFrame) -> pd.DataFrame:
    """Reasons (a comma-separated list, most severe first) and a verdict ("symmetric" or the first reason) per flow."""
    has = {}
    fwd, rev = flows["fwd_packets"].to_numpy() > 0, flows["rev_packets"].to_numpy() > 0
    # A flow seen only as egress was sent by the appliance (or, within the capture's first window, may
    # have had its ingress before the capture began): either way not a one-sided client flow.
    egress_only = (flows["returned"].to_numpy() + flows["not_returned"].to_numpy() + flows["in_flight"].to_numpy()) == 0
    has["originated"] = egress_only & (flows["originated"].to_numpy() > 0)
    one_direction = (fwd != rev) & ~egress_only
    mirrored = _mirrored_one_sided(flows, one_direction)
    has["asymmetric"] = mirrored | flows["directions_split"].to_numpy()
    has["one_sided"] = one_direction & ~mirrored
    has["stale_cookie"] = flows["stale_cookie_legs"].to_numpy() > 0
    has["wrong_cookie"] = flows["wrong_cookie_legs"].to_numpy() > 0
    has["modified_options"] = flows["modified_option_legs"].to_numpy() > 0
    has["not_returned"] = flows["not_returned"].to_numpy() > 0
    has["moved"] = (flows["appliance_changes"].to_numpy() > 0) & ~has["asymmetric"]
    has["idle_gap"] = flows["idle_gaps"].to_numpy() > 0
    has["over_mtu"] = flows["over_mtu_packets"].to_numpy() > 0
    has["outer_fragments"] = flows["fragmented_legs"].to_numpy() > 0
    # Flows share few sets of reasons: each set's text is made once, most severe first.
    sets = np.zeros(len(flows), np.int64)
    for bit, reason in enumerate(REASONS):
        sets |= has[reason].astype(np.int64) << bit
    present = np.bincount(sets, minlength=1) > 0  # sets are below 2 ** len(REASONS): counted, not sorted
    distinct, code = np.flatnonzero(present), (np.cumsum(present) - 1)[sets]
    named = [[reason for bit, reason in enumerate(REASONS) if int(s) >> bit & 1] for s in distinct]
    out = pd.DataFrame(index=flows.index)
    out["verdict"] = text_column(take_text([names[0] if names else "symmetric" for names in named], code))
    out["reasons"] = text_column(take_text([",".join(names) for names in named], code))
    return out


def _mirrored_one_sided(flows: pd.DataFrame, one_direction: np.ndarray) -> np.ndarray:
    """One-directional flows whose other direction is another one-directional flow through another endpoint."""
    if not one_direction.any():
        return np.zeros(len(flows), bool)
    candidates = flows.loc[one_direction, ["protocol", "client_hi", "client_lo", "client_port", "server_hi", "server_lo", "server_port", "endpoint_id"]]
    a = candidates[["client_hi", "client_lo", "client_port"]].to_numpy()
    b = candidates[["server_hi", "server_lo", "server_port"]].to_numpy()
    first = [tuple(x) for x in a]
    second = [tuple(x) for x in b]
    key = [(p,) + (min(f, s) + max(f, s)) for p, f, s in zip(candidates["protocol"], first, second)]
    keyed = pd.DataFrame({"key": key, "endpoint": candidates["endpoint_id"].to_numpy()}, index=candidates.index)
    endpoints = keyed.groupby("key")["endpoint"].transform("nunique")
    mirrored = np.zeros(len(flows), bool)
    mirrored[flows.index.get_indexer(keyed.index[endpoints.to_numpy() > 1])] = True
    return mirrored
