"""Which outer addresses are GWLB nodes and which are appliances, stated by the user or inferred from the traffic (shared/docs/gwlb.md)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..addresses import format_address, parse_address
from ..errors import ConfigError
from .grouping import group_sort, hash_columns

SAMPLE_PER_FILE = 100_000  # Geneve packets per file that role votes start from
GWLB_TTL = 255  # GWLB's own legs (seen on AWS)
GWLB_IP_ID = 0

METHOD_STATED = "stated by the user"
METHOD_PAIRED = "paired legs: a packet and its return copy with the outer addresses swapped"
METHOD_GWLB_FIELDS = "GWLB's outer IPv4 fields (TTL 255, IP ID 0) on ingress legs"
METHOD_NONE = "not found: no Geneve traffic"

Address = tuple[int, int]


@dataclass(frozen=True)
class Roles:
    """The GWLB nodes and appliances of a capture set, and how they were found."""

    gwlb_nodes: tuple[Address, ...]
    appliances: tuple[Address, ...]
    method: str
    evidence: dict[str, int] = field(default_factory=dict)  # how many packets or pairs backed each method

    def gwlb_node_names(self) -> list[str]:
        return [format_address(*a) for a in self.gwlb_nodes]

    def appliance_names(self) -> list[str]:
        return [format_address(*a) for a in self.appliances]


def role_index(hi: np.ndarray, lo: np.ndarray, addresses: tuple[Address, ...]) -> np.ndarray:
    """For each address (hi, lo), its position in ``addresses``, or -1."""
    index = np.full(len(hi), -1, np.int16)
    for k, (a_hi, a_lo) in enumerate(addresses):
        index[(hi == np.uint64(a_hi)) & (lo == np.uint64(a_lo))] = k
    return index


def parse_addresses(texts: list[str] | tuple[str, ...] | None, what: str) -> tuple[Address, ...]:
    """Addresses a user gave as text; ConfigError names the one that is not an address."""
    out = []
    for text in texts or ():
        try:
            out.append(parse_address(text))
        except ValueError:
            raise ConfigError(f"{what} {text!r} is not an IPv4 or IPv6 address") from None
    return tuple(out)


def infer_roles(
    packets: pd.DataFrame, appliances: tuple[Address, ...] = (), gwlb_nodes: tuple[Address, ...] = ()
) -> Roles:
    """Find the roles of the outer addresses of Geneve packets.

    Stated roles win; the addresses talking to them take the other role.  Otherwise the roles come from
    leg pairs (the same inner packet and options seen twice in one capture with the outer addresses
    swapped: the first one's source is the GWLB node), and failing that from the outer fields GWLB sets.
    """
    columns = ["file", "ts_ns", "inner_digest", "aws_flow_cookie", "aws_endpoint_id", "outer_sport", "outer_ttl", "outer_ip_id",
               "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo"]
    geneve = packets.loc[((packets["kind"] == "geneve") & (packets["outer_ip_version"] > 0)).to_numpy(), columns]
    src = _pairs(geneve, "outer_src")
    dst = _pairs(geneve, "outer_dst")
    if appliances or gwlb_nodes:
        return _stated(src, dst, set(appliances), set(gwlb_nodes))
    if len(geneve) == 0:
        return Roles((), (), METHOD_NONE)
    sample = _sample(geneve["file"].cat.codes.to_numpy())
    if sample is not None:  # a packet and its return copy are microseconds apart: each file's start has pairs
        votes = _pair_votes(geneve.iloc[sample], src[sample], dst[sample])
        if votes:
            roles = _from_votes(votes, METHOD_PAIRED, "leg_pairs")
            if _covers(roles, src, dst):
                return roles
    votes = _pair_votes(geneve, src, dst)
    if votes:
        return _from_votes(votes, METHOD_PAIRED, "leg_pairs")
    fields = (geneve["outer_ttl"].to_numpy() == GWLB_TTL) & (geneve["outer_ip_id"].to_numpy() == GWLB_IP_ID)
    votes = _count_votes(src[fields], dst[fields])
    if votes:
        return _from_votes(votes, METHOD_GWLB_FIELDS, "gwlb_field_packets")
    destinations = {(int(h), int(l)) for h, l in np.unique(dst, axis=0)}
    return Roles((), tuple(sorted(destinations)), "no pairs and no GWLB fields: destinations taken as appliances")


def _sample(files: np.ndarray) -> np.ndarray | None:
    """The first ``SAMPLE_PER_FILE`` Geneve packets of each file, or None when there are not many more."""
    if len(files) <= 2 * SAMPLE_PER_FILE:
        return None
    rows = [np.flatnonzero(files == code)[:SAMPLE_PER_FILE] for code in np.unique(files)]
    return np.sort(np.concatenate(rows))


def _address_keys(addresses: np.ndarray) -> np.ndarray:
    return hash_columns([addresses[:, 0], addresses[:, 1]])


def _covers(roles: Roles, src: np.ndarray, dst: np.ndarray) -> bool:
    """Whether every outer address of the Geneve packets got a role (else the sample missed one)."""
    known = list(roles.gwlb_nodes + roles.appliances)
    if not known:
        return False
    named = set(_address_keys(np.array(known, dtype=np.uint64)).tolist())
    return all(set(pd.unique(_address_keys(side)).tolist()) <= named for side in (src, dst))


def _pairs(frame: pd.DataFrame, prefix: str) -> np.ndarray:
    return np.stack([frame[f"{prefix}_hi"].to_numpy(np.uint64), frame[f"{prefix}_lo"].to_numpy(np.uint64)], axis=1)


def _stated(src: np.ndarray, dst: np.ndarray, appliances: set[Address], nodes: set[Address]) -> Roles:
    seen = pd.DataFrame({"sh": src[:, 0], "sl": src[:, 1], "dh": dst[:, 0], "dl": dst[:, 1]}).drop_duplicates()
    for sh, sl, dh, dl in seen.itertuples(index=False):
        s, d = (int(sh), int(sl)), (int(dh), int(dl))
        if s in appliances and d not in appliances:
            nodes.add(d)
        elif d in appliances and s not in appliances:
            nodes.add(s)
        elif s in nodes and d not in nodes:
            appliances.add(d)
        elif d in nodes and s not in nodes:
            appliances.add(s)
    return Roles(tuple(sorted(nodes)), tuple(sorted(appliances)), METHOD_STATED)


def _pair_votes(geneve: pd.DataFrame, src: np.ndarray, dst: np.ndarray) -> dict[tuple[Address, Address], int]:
    """Votes (node, appliance) from consecutive packets of one capture carrying the same inner packet and options."""
    keys = [geneve["file"].cat.codes.to_numpy()] + [
        geneve[c].to_numpy() for c in ("inner_digest", "aws_flow_cookie", "aws_endpoint_id", "outer_sport")
    ]
    order, same = group_sort(keys)
    s, d = src[order], dst[order]
    swapped = same[1:] & np.all(s[:-1] == d[1:], axis=1) & np.all(d[:-1] == s[1:], axis=1)
    first = np.flatnonzero(swapped)
    return _count_votes(s[first], d[first])


def _count_votes(nodes: np.ndarray, appliances: np.ndarray) -> dict[tuple[Address, Address], int]:
    """How many times each (node, appliance) address pair was seen."""
    pairs = pd.DataFrame({"nh": nodes[:, 0], "nl": nodes[:, 1], "ah": appliances[:, 0], "al": appliances[:, 1]})
    counts = pairs.value_counts()
    return {((int(nh), int(nl)), (int(ah), int(al))): int(c) for (nh, nl, ah, al), c in counts.items()}


def _from_votes(votes: dict[tuple[Address, Address], int], method: str, evidence: str) -> Roles:
    """Each address takes the role most votes gave it."""
    as_node: dict[Address, int] = {}
    as_appliance: dict[Address, int] = {}
    for (node, appliance), count in votes.items():
        as_node[node] = as_node.get(node, 0) + count
        as_appliance[appliance] = as_appliance.get(appliance, 0) + count
    nodes = {a for a in as_node if as_node[a] >= as_appliance.get(a, 0)}
    appliances = {a for a in as_appliance if a not in nodes}
    return Roles(tuple(sorted(nodes)), tuple(sorted(appliances)), method, {evidence: sum(votes.values())})
