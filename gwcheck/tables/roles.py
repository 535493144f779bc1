"""Which outer addresses are GWLB nodes and which are appliances, stated by the user or inferred from the traffic (shared/docs/gwlb.md)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..addresses import format_address, parse_address
from ..errors import ConfigError
from .grouping import group_ids, group_sort, key_counts

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
        rows = np.flatnonzero(lo == np.uint64(a_lo))  # the high halves of those rows alone
        index[rows[hi[rows] == np.uint64(a_hi)]] = k
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


@dataclass(frozen=True)
class Ends:
    """One end (source or destination) of many packets: the two halves of each one's address, row by row."""

    hi: np.ndarray
    lo: np.ndarray

    def __getitem__(self, rows: np.ndarray | slice) -> Ends:
        return Ends(self.hi[rows], self.lo[rows])

    def equals(self, other: Ends) -> np.ndarray:
        """Row by row, whether the addresses are the same."""
        return (self.hi == other.hi) & (self.lo == other.lo)

    def addresses(self) -> list[Address]:
        return list(zip(self.hi.tolist(), self.lo.tolist()))


@dataclass(frozen=True)
class Links:
    """The links of a packet table: the (source, destination) outer address pairs of its Geneve packets with an
    outer IP header, numbered in order of first appearance.  Found once, they serve the role votes, the packet
    tally and the legs alike.

    ``link`` is each packet's link (-1: not Geneve over IP); ``src`` and ``dst`` are each link's ends and
    ``first`` its first packet.
    """

    link: np.ndarray
    src: Ends
    dst: Ends
    first: np.ndarray

    @classmethod
    def of(cls, packets: pd.DataFrame) -> Links:
        """The links of ``packets`` (``kind``, ``outer_ip_version`` and the outer addresses suffice)."""
        geneve = (packets["kind"] == "geneve").to_numpy() & (packets["outer_ip_version"].to_numpy() > 0)
        src = Ends(packets["outer_src_hi"].to_numpy(), packets["outer_src_lo"].to_numpy())
        dst = Ends(packets["outer_dst_hi"].to_numpy(), packets["outer_dst_lo"].to_numpy())
        # The other packets are one more key, not a copy of the Geneve ones.
        ids, firsts = group_ids([~geneve, src.hi, src.lo, dst.hi, dst.lo])
        is_link = geneve[firsts]
        number = np.where(is_link, np.cumsum(is_link) - 1, -1)
        firsts = firsts[is_link]
        return cls(number[ids], src[firsts], dst[firsts], firsts)


#: The packet columns roles are inferred from.
VOTE_COLUMNS = ("kind", "outer_ip_version", "file", "ts_ns", "inner_digest", "aws_flow_cookie", "aws_endpoint_id", "outer_sport",
                "outer_ttl", "outer_ip_id", "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo")


@dataclass
class RoleVotes:
    """What the Geneve packets of some captures say about roles; ``merge`` adds the votes of other captures.

    Votes are counts of (GWLB node, appliance) address pairs.  ``paired`` and ``gwlb_fields`` are None when
    they were not counted (``role_votes`` counts them on small captures, or when asked).
    """

    geneve: int = 0  # Geneve packets with an outer IP header
    links: dict = field(default_factory=dict)  # (source, destination) -> first timestamp, in order of first appearance
    sampled: Counter = field(default_factory=Counter)  # leg pairs among the first SAMPLE_PER_FILE Geneve packets of each file
    paired: Counter | None = field(default_factory=Counter)  # leg pairs among every Geneve packet
    gwlb_fields: Counter | None = field(default_factory=Counter)  # packets with GWLB's outer fields

    def merge(self, other: RoleVotes) -> None:
        self.geneve += other.geneve
        links = dict(self.links)
        for link, ts in other.links.items():
            links[link] = min(ts, links.get(link, ts))
        self.links = dict(sorted(links.items(), key=lambda item: item[1]))  # a stable sort: ties keep their order
        self.sampled.update(other.sampled)
        for name in ("paired", "gwlb_fields"):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, None if mine is None or theirs is None else mine + theirs)


def infer_roles(
    packets: pd.DataFrame, appliances: tuple[Address, ...] = (), gwlb_nodes: tuple[Address, ...] = (), links: Links | None = None
) -> Roles:
    """Find the roles of the outer addresses of Geneve packets (``links``: their ``Links``, when the caller has them).

    Stated roles win; the addresses talking to them take the other role.  Otherwise the roles come from
    leg pairs (the same inner packet and options seen twice in one capture with the outer addresses
    swapped: the first one's source is the GWLB node), and failing that from the outer fields GWLB sets.
    """
    links = links if links is not None else Links.of(packets)
    roles = roles_from_votes(role_votes(packets, links=links), appliances, gwlb_nodes)
    return roles if roles is not None else roles_from_votes(role_votes(packets, every_packet=True, links=links), appliances, gwlb_nodes)


def role_votes(packets: pd.DataFrame, every_packet: bool = False, links: Links | None = None) -> RoleVotes:
    """The role votes of a packet table (``VOTE_COLUMNS`` suffice; ``links``: its ``Links``, when the caller has them).

    Leg pairs are counted among the first ``SAMPLE_PER_FILE`` Geneve packets of each file; among every
    packet too (and GWLB's outer fields) when ``every_packet`` or when the table holds few Geneve packets.
    """
    links = links if links is not None else Links.of(packets)
    rows = np.flatnonzero(links.link >= 0)
    if len(rows) == 0:
        return RoleVotes()

    def column(name: str, at: np.ndarray = rows) -> np.ndarray:  # no copy of the Geneve rows as a table
        return packets[name].to_numpy()[at]

    def ends(at: np.ndarray) -> tuple[Ends, Ends]:  # the outer addresses of Geneve packets: their links' ends
        return links.src[links.link[at]], links.dst[links.link[at]]

    first_seen = dict(zip(zip(links.src.addresses(), links.dst.addresses()), packets["ts_ns"].to_numpy()[links.first].tolist()))
    votes = RoleVotes(geneve=len(rows), links=first_seen, paired=None, gwlb_fields=None)
    files = packets["file"].cat.codes.to_numpy()[rows]
    if every_packet or len(rows) <= 2 * SAMPLE_PER_FILE:
        votes.paired = Counter(_pair_votes(_vote_keys(packets, rows, files), *ends(rows)))
        fields = rows[(column("outer_ttl") == GWLB_TTL) & (column("outer_ip_id") == GWLB_IP_ID)]
        votes.gwlb_fields = Counter(_count_votes(*ends(fields)))
    sample = _sample(files)
    if sample is None and votes.paired is not None:
        votes.sampled = Counter(votes.paired)
    else:  # a packet and its return copy are microseconds apart: each file's start has pairs
        at = np.arange(len(rows)) if sample is None else sample
        votes.sampled = Counter(_pair_votes(_vote_keys(packets, rows[at], files[at]), *ends(rows[at])))
    return votes


def roles_from_votes(votes: RoleVotes, appliances: tuple[Address, ...] = (), gwlb_nodes: tuple[Address, ...] = ()) -> Roles | None:
    """The roles the votes give (as ``infer_roles`` finds them), with stated roles winning.

    None when the sampled votes leave an address without a role and ``votes.paired`` was not counted:
    count it (``role_votes(..., every_packet=True)``) and ask again.
    """
    if appliances or gwlb_nodes:
        return _stated(list(votes.links), set(appliances), set(gwlb_nodes))
    if votes.geneve == 0:
        return Roles((), (), METHOD_NONE)
    if votes.geneve > 2 * SAMPLE_PER_FILE and votes.sampled:
        roles = _from_votes(votes.sampled, METHOD_PAIRED, "leg_pairs")
        if _covers(roles, votes.links):
            return roles
    if votes.paired is None or votes.gwlb_fields is None:
        return None
    if votes.paired:
        return _from_votes(votes.paired, METHOD_PAIRED, "leg_pairs")
    if votes.gwlb_fields:
        return _from_votes(votes.gwlb_fields, METHOD_GWLB_FIELDS, "gwlb_field_packets")
    destinations = {d for _, d in votes.links}
    return Roles((), tuple(sorted(destinations)), "no pairs and no GWLB fields: destinations taken as appliances")


def _sample(files: np.ndarray) -> np.ndarray | None:
    """The first ``SAMPLE_PER_FILE`` Geneve packets of each file, or None when no file has more."""
    if len(files) == 0 or np.bincount(files).max() <= SAMPLE_PER_FILE:
        return None
    rows = [np.flatnonzero(files == code)[:SAMPLE_PER_FILE] for code in np.unique(files)]
    return np.sort(np.concatenate(rows))


def _covers(roles: Roles, links: dict[tuple[Address, Address], int]) -> bool:
    """Whether every outer address of the Geneve packets got a role (else the sample missed one)."""
    known = set(roles.gwlb_nodes + roles.appliances)
    return bool(known) and all(s in known and d in known for s, d in links)


def _stated(links: list[tuple[Address, Address]], appliances: set[Address], nodes: set[Address]) -> Roles:
    for s, d in links:
        if s in appliances and d not in appliances:
            nodes.add(d)
        elif d in appliances and s not in appliances:
            nodes.add(s)
        elif s in nodes and d not in nodes:
            appliances.add(d)
        elif d in nodes and s not in nodes:
            appliances.add(s)
    return Roles(tuple(sorted(nodes)), tuple(sorted(appliances)), METHOD_STATED)


def _vote_keys(packets: pd.DataFrame, rows: np.ndarray, files: np.ndarray) -> list[np.ndarray]:
    """What a packet and its return copy share, at ``rows`` of the packet table: file, inner packet and options."""
    return [files] + [packets[c].to_numpy()[rows] for c in ("inner_digest", "aws_flow_cookie", "aws_endpoint_id", "outer_sport")]


def _pair_votes(keys: list[np.ndarray], src: Ends, dst: Ends) -> dict[tuple[Address, Address], int]:
    """Votes (node, appliance) from consecutive packets of one capture carrying the same inner packet and options (``_vote_keys``)."""
    order, same = group_sort(keys)
    s, d = src[order], dst[order]
    swapped = same[1:] & s[:-1].equals(d[1:]) & d[:-1].equals(s[1:])
    first = np.flatnonzero(swapped)
    return _count_votes(s[first], d[first])


def _count_votes(nodes: Ends, appliances: Ends) -> dict[tuple[Address, Address], int]:
    """How many times each (node, appliance) address pair was seen, in order of first sight."""
    counts = key_counts([nodes.hi, nodes.lo, appliances.hi, appliances.lo])
    return {((nh, nl), (ah, al)): count for (nh, nl, ah, al), count in counts.items()}


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
