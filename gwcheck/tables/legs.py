"""The leg table: every Geneve packet with its direction through its appliance, paired with its return copy.

A leg is one crossing of the wire on an appliance: ingress (GWLB node -> appliance) or egress (appliance ->
GWLB node).  An ingress leg pairs with the egress leg that carries the same inner packet back (the inner
digest ignores TTL and the IPv4 checksum, shared/docs/gwlb.md) between the same appliance and GWLB node
with the same outer source port, inside one capture and so one clock, within a window.  Identical inner
packets pair first-in first-out.  Options are not part of the match: a stale or rewritten option still
pairs, and the difference is recorded.
"""

from __future__ import annotations

import enum

import numpy as np
import pandas as pd

from . import _kernels
from .roles import Ends, Links, Roles, role_index
from ..schema import GwlbShape

NO_PEER = -1


class Direction(enum.IntEnum):
    """Which way a Geneve packet crosses its appliance's wire."""

    INGRESS = 0  # GWLB node -> appliance
    EGRESS = 1  # appliance -> GWLB node
    UNKNOWN = 2  # its addresses have no known roles


class Pairing(enum.IntEnum):
    """What became of a leg when legs were paired."""

    PAIRED = 0
    NOT_RETURNED = 1  # ingress never sent back
    IN_FLIGHT = 2  # ingress in the capture's last window: its return may simply not be captured yet
    ORIGINATED = 3  # egress that no ingress explains: the appliance sent it on its own
    BEFORE_CAPTURE = 4  # egress in the capture's first window: its ingress may precede the capture
    UNKNOWN = 5  # direction unknown, not paired

    @property
    def label(self) -> str:
        return self.name.lower()


# Bits of ``option_diff``: which AWS option of an egress leg differs from its ingress leg's.
OPTION_ENDPOINT = 0x1
OPTION_ATTACHMENT = 0x2
OPTION_COOKIE = 0x4
OPTION_NAMES = {OPTION_ENDPOINT: "endpoint_id", OPTION_ATTACHMENT: "attachment_id", OPTION_COOKIE: "flow_cookie"}

#: Packet columns a leg carries over from the packet table.
CARRIED = (
    "ts_ns", "file", "wire_len_bytes", "outer_sport", "outer_frag", "aws_endpoint_id", "aws_attachment_id",
    "aws_flow_cookie", "gwlb_shape", "inner_ip_version", "inner_src_hi", "inner_src_lo", "inner_dst_hi",
    "inner_dst_lo", "inner_proto", "inner_ip_len_bytes", "inner_ip_id", "inner_sport", "inner_dport",
    "inner_tcp_flags", "inner_tcp_seq", "inner_tcp_ack", "inner_tcp_mss", "inner_l4_payload_bytes", "inner_icmp_type",
    "inner_digest",
)


def _pair_by(columns: dict[str, np.ndarray], keys: list[str], candidates: np.ndarray, is_ingress: np.ndarray, window_ns: int,
             paired: dict[str, np.ndarray]) -> None:
    """Pair the ``candidates`` legs that agree on ``keys``, writing ``paired``'s peer, latency_ns and ambiguous."""
    every = bool(candidates.all())
    rows = None if every else np.flatnonzero(candidates)
    if rows is not None and len(rows) == 0:
        return
    # In capture order, so within a key an ingress precedes its return even at equal timestamps: each egress takes
    # the oldest unpaired ingress of its key; legs paired by an earlier pass are skipped, and ingress older than
    # the window when an egress arrives is left unpaired (gwcheck/tables/_kernels.c).
    keyed = [columns[k] if every else columns[k][rows] for k in keys]
    ts = np.ascontiguousarray(columns["ts_ns"], np.int64)
    _kernels.pair_legs(keyed, rows, is_ingress, ts, window_ns, paired["peer"], paired["latency_ns"], paired["ambiguous"])


def build_legs(
    packets: pd.DataFrame,
    roles: Roles,
    window_s: float = 1.0,
    bounds: dict[str, tuple[int, int | None]] | None = None,
    links: Links | None = None,
) -> pd.DataFrame:
    """One row per Geneve packet with its direction, appliance and GWLB node, and the pairing of legs.

    Columns: ``packet`` (row of the packet table), the carried packet columns, ``direction``,
    ``appliance`` and ``gwlb_node`` (indexes into ``roles``; -1 unknown), ``peer`` (row of the other leg,
    -1 none), ``latency_ns`` (egress time less ingress time, on both legs of a pair; -1 none),
    ``pairing`` (``Pairing`` label), ``ambiguous`` (several identical legs could have paired) and
    ``option_diff`` (on egress legs, ``OPTION_*`` bits of options that differ from the paired ingress).

    Unpaired legs near a capture's ends are told apart by the capture's first and last timestamps, taken
    from ``packets`` unless ``bounds`` gives them per file name: (first_ns, last_ns), last None while the
    capture still grows (a stream: nothing is in flight yet).  ``links`` are the packets' ``Links`` when
    the caller has them.
    """
    links = links if links is not None else Links.of(packets)
    is_geneve = links.link >= 0
    columns: dict[str, object] = {"packet": np.flatnonzero(is_geneve)}
    for name in CARRIED:
        columns[name] = packets[name].to_numpy()[is_geneve] if name != "file" else packets[name].array[is_geneve]
    # Roles are a property of the link: found per link, then given to each leg.
    link = links.link[is_geneve]
    direction, appliance, gwlb_node = link_roles(links.src, links.dst, roles)
    columns["direction"], columns["appliance"], columns["gwlb_node"] = direction[link], appliance[link], gwlb_node[link]
    columns["file_code"] = packets["file"].cat.codes.to_numpy()[is_geneve]
    files = packets["file"].cat.categories
    columns.update(_pair(columns, int(window_s * 1e9), _capture_bounds(columns["ts_ns"], columns["file_code"], files, bounds)))
    return pd.DataFrame(columns, copy=False)


def link_roles(src: Ends, dst: Ends, roles: Roles) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For packets from ``src`` to ``dst``, the ``Direction`` each crosses its appliance in (int8), and that
    appliance and GWLB node (indexes into ``roles``, int16; -1 when the direction is unknown)."""
    src_node, dst_node = role_index(src.hi, src.lo, roles.gwlb_nodes), role_index(dst.hi, dst.lo, roles.gwlb_nodes)
    src_appliance, dst_appliance = role_index(src.hi, src.lo, roles.appliances), role_index(dst.hi, dst.lo, roles.appliances)
    ingress = (dst_appliance >= 0) & (src_appliance < 0)
    egress = (src_appliance >= 0) & (dst_appliance < 0)
    direction = np.full(len(src.hi), Direction.UNKNOWN, np.int8)
    direction[ingress] = Direction.INGRESS
    direction[egress] = Direction.EGRESS
    appliance = np.where(ingress, dst_appliance, np.where(egress, src_appliance, -1)).astype(np.int16)
    gwlb_node = np.where(ingress, src_node, np.where(egress, dst_node, -1)).astype(np.int16)
    return direction, appliance, gwlb_node


def _capture_bounds(ts: np.ndarray, codes: np.ndarray, files: pd.Index,
                    bounds: dict[str, tuple[int, int | None]] | None) -> tuple[np.ndarray, np.ndarray]:
    """Each file's capture's first and last timestamp (by file code): from the legs' times ``ts`` and file ``codes``,
    or from ``bounds`` by file name."""
    if bounds is None:
        # Per run of legs from one file (one run a file, as captures are read), then per file.
        runs = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(ts) else np.zeros(0, np.intp)
        first_of = np.full(len(files), np.iinfo(np.int64).max, np.int64)
        last_of = np.full(len(files), np.iinfo(np.int64).min, np.int64)
        if len(runs):
            np.minimum.at(first_of, codes[runs], np.minimum.reduceat(ts, runs))
            np.maximum.at(last_of, codes[runs], np.maximum.reduceat(ts, runs))
        return first_of, last_of
    never = np.iinfo(np.int64).max
    first_of = np.array([bounds[name][0] if name in bounds else 0 for name in files], np.int64)
    last_of = np.array([never if bounds.get(name, (0, None))[1] is None else bounds[name][1] for name in files], np.int64)
    return first_of, last_of


def _pair(columns: dict[str, np.ndarray], window_ns: int, bounds: tuple[np.ndarray, np.ndarray]) -> dict[str, object]:
    """The pairing columns of the legs ``columns``: peer, latency_ns, ambiguous, option_diff and pairing."""
    n = len(columns["ts_ns"])
    paired = {"peer": np.full(n, NO_PEER, np.int64), "latency_ns": np.full(n, -1, np.int64), "ambiguous": np.zeros(n, bool)}
    direction = columns["direction"]
    known, is_ingress = direction != Direction.UNKNOWN, direction == Direction.INGRESS
    place = ["file_code", "appliance", "gwlb_node", "outer_sport"]
    _pair_by(columns, place + ["inner_digest"], known, is_ingress, window_ns, paired)
    # An egress leg the appliance fragmented carries only part of the inner packet: pair its first
    # fragment on the inner headers instead of the digest.
    fragmented = (columns["outer_frag"] & 0x2) != 0
    if fragmented.any():
        leftover = known & (paired["peer"] == NO_PEER) & (fragmented | is_ingress)
        headers = ["inner_ip_version", "inner_proto", "inner_ip_id", "inner_sport", "inner_dport", "inner_tcp_seq", "inner_tcp_ack"]
        _pair_by(columns, place + headers, leftover, is_ingress, window_ns, paired)
    lonely = np.flatnonzero(paired["peer"] == NO_PEER)  # rows, not masks: few legs are unpaired
    paired["option_diff"] = _option_diff(columns, paired["peer"], lonely)
    paired["pairing"] = _pairing(columns, lonely, window_ns, *bounds)
    return paired


def _option_diff(columns: dict[str, np.ndarray], peer: np.ndarray, lonely: np.ndarray) -> np.ndarray:
    """Per leg, the ``OPTION_*`` bits of the options in which a paired egress leg differs from its ingress leg."""
    egress = columns["direction"] == Direction.EGRESS
    egress[lonely] = False
    rows = np.flatnonzero(egress)
    other = peer[rows]
    differ = np.zeros(len(rows), np.uint8)
    for column, bit in (("aws_endpoint_id", OPTION_ENDPOINT), ("aws_attachment_id", OPTION_ATTACHMENT), ("aws_flow_cookie", OPTION_COOKIE)):
        values = columns[column]
        np.bitwise_or(differ, bit, out=differ, where=values[rows] != values[other])
    missing = int(GwlbShape.MISSING_ENDPOINT | GwlbShape.MISSING_ATTACHMENT | GwlbShape.MISSING_COOKIE)
    shape = columns["gwlb_shape"] & missing
    np.bitwise_or(differ, OPTION_ENDPOINT | OPTION_ATTACHMENT | OPTION_COOKIE, out=differ, where=shape[rows] != shape[other])
    diff = np.zeros(len(egress), np.uint8)
    diff[rows] = differ
    return diff


def _pairing(columns: dict[str, np.ndarray], lonely: np.ndarray, window_ns: int, first_of: np.ndarray, last_of: np.ndarray) -> pd.Categorical:
    """Each leg's ``Pairing``: the unpaired ``lonely`` legs told apart by direction and their capture's bounds."""
    code = np.full(len(columns["ts_ns"]), Pairing.PAIRED, np.int8)
    direction, ts, file = columns["direction"][lonely], columns["ts_ns"][lonely], columns["file_code"][lonely]
    in_flight = np.where(ts > last_of[file] - window_ns, Pairing.IN_FLIGHT, Pairing.NOT_RETURNED)
    before_capture = np.where(ts < first_of[file] + window_ns, Pairing.BEFORE_CAPTURE, Pairing.ORIGINATED)
    code[lonely] = np.select([direction == Direction.INGRESS, direction == Direction.EGRESS], [in_flight, before_capture], Pairing.UNKNOWN)
    return pd.Categorical.from_codes(code, categories=[p.label for p in Pairing])
