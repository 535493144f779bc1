"""Running totals of what a Report states about packets and legs, kept apart from the flow table.

Every count here adds up: a capture read in one piece, read as a stream of batches, or read as Dask
partitions gives the same totals (``merge`` adds two tallies of disjoint parts).  Latency is the one
exception: exact when every dwell time is kept (``exact_latency=True``, the in-process analysis), else
summarised in ``LatencySketch``es whose percentiles hold within their stated relative accuracy and whose
count, min, max and mean stay exact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..schema import NS_PER_SECOND, NS_PER_US, FragmentFlags, GwlbShape
from ..sketch import DEFAULT_RELATIVE_ACCURACY, LatencySketch
from ..summaries import group_codes
from ..tables.grouping import group_ids, key_counts
from ..tables.legs import Direction, Pairing
from ..tables.packets import concat_packets
from ..tables.roles import Links
from .latency import OVER_TIME_COLUMNS, PAIRED_COLUMNS, in_latency_order, latency_by, latency_over_time, overall_latency, paired_columns

Address = tuple[int, int]

#: Per place (appliance, GWLB node, endpoint): leg counts that add up across parts.
PLACE_COUNTS = ("packets_in", "packets_out", "returned", "not_returned", "in_flight", "originated", "bytes_in")
PLACES = ("appliance", "gwlb_node", "aws_endpoint_id")
OUTER_FRAGMENT_FLAGS = int(FragmentFlags.MF | FragmentFlags.OFFSET)
_LACKS_BOTH = int(GwlbShape.MISSING_ENDPOINT | GwlbShape.MISSING_COOKIE)
#: Packet columns a health-check probe is judged from (``analysis.health.health_checks``).
PROBE_COLUMNS = ("ts_ns", "file", "kind", "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo", "outer_tcp_flags",
                 "outer_sport", "outer_dport", "outer_http_status")
GENEVE_COLUMNS = ("inner_ip_len_bytes", "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo", "gwlb_shape",
                  "aws_endpoint_id", "aws_attachment_id", "aws_flow_cookie")


@dataclass
class PacketTally:
    """Counts over packet tables: kinds, statuses, GWLB shape, addresses, endpoints, cookies, MTU facts."""

    packets: int = 0
    first_ts_ns: int | None = None
    last_ts_ns: int | None = None
    by_kind: Counter = field(default_factory=Counter)
    by_status: Counter = field(default_factory=Counter)
    shape: Counter = field(default_factory=Counter)  # Geneve packets: "exact" and one count per GwlbShape flag
    shape_decoded: Counter = field(default_factory=Counter)  # the same over Geneve packets decoded whole
    sent: Counter = field(default_factory=Counter)  # Geneve packets per outer source address
    received: Counter = field(default_factory=Counter)
    endpoint_packets: Counter = field(default_factory=Counter)
    endpoint_cookies: dict = field(default_factory=dict)  # endpoint -> its distinct cookies (a sorted array)
    endpoint_attachments: set = field(default_factory=set)  # (endpoint, attachment)
    cookies: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint32))  # distinct cookies, sorted
    outer_fragment_packets: int = 0
    largest_inner_bytes: int = 0
    probe_packets: list = field(default_factory=list)  # TCP packet rows (PROBE_COLUMNS) for the health checks

    def add(self, packets: pd.DataFrame, links: Links | None = None) -> None:
        """Count a packet table (each packet once, over all calls); ``links`` are its ``Links``, when the caller has them."""
        if len(packets) == 0:
            return
        ts = packets["ts_ns"].to_numpy()
        self.packets += len(packets)
        low, high = int(ts.min()), int(ts.max())
        self.first_ts_ns = low if self.first_ts_ns is None else min(self.first_ts_ns, low)
        self.last_ts_ns = high if self.last_ts_ns is None else max(self.last_ts_ns, high)
        is_geneve, tcp = self._add_counts(packets)
        if is_geneve.any():
            largest = np.max(packets["inner_ip_len_bytes"].to_numpy(), where=is_geneve, initial=0)
            self.largest_inner_bytes = max(self.largest_inner_bytes, int(largest))
            self._add_geneve(packets, is_geneve, links if links is not None else Links.of(packets))
        if tcp.any():
            self.probe_packets.append(packets.iloc[np.flatnonzero(tcp), [packets.columns.get_loc(name) for name in PROBE_COLUMNS]])

    def _add_counts(self, packets: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Packets by kind, status, GWLB shape (of Geneve ones, all and decoded whole) and outer UDP fragments
        of Geneve or fragment kind, from one count of those four combined; returns the masks of Geneve and TCP packets."""
        kind, status = packets["kind"], packets["status"]
        categorical = isinstance(kind.dtype, pd.CategoricalDtype) and isinstance(status.dtype, pd.CategoricalDtype)
        kinds, statuses = (kind.array, status.array) if categorical else (pd.Categorical(kind), pd.Categorical(status))
        shape = packets["gwlb_shape"].to_numpy()
        udp_fragment = (packets["outer_frag"].to_numpy() & OUTER_FRAGMENT_FLAGS) != 0
        udp_fragment &= packets["outer_proto"].to_numpy() == 17
        # One number a packet: (kind code + 1, status code + 1, UDP fragment, shape), codes from -1 (missing).
        n_kinds, n_statuses, n_shapes = len(kinds.categories) + 1, len(statuses.categories) + 1, int(shape.max()) + 1
        key = kinds.codes.astype(np.int32)
        key += 1
        key *= n_statuses
        key += statuses.codes
        key += 1
        key *= 2
        key += udp_fragment
        key *= n_shapes
        key += shape
        counts = np.bincount(key, minlength=n_kinds * n_statuses * 2 * n_shapes).reshape(n_kinds, n_statuses, 2, n_shapes)
        kind_labels, status_labels = [str(label) for label in kinds.categories.tolist()], [str(label) for label in statuses.categories.tolist()]
        if categorical:
            by_kind = {label: count for label, count in zip(kind_labels, counts[1:].sum(axis=(1, 2, 3)).tolist()) if count}
            by_status = {label: count for label, count in zip(status_labels, counts[:, 1:].sum(axis=(0, 2, 3)).tolist()) if count}
        else:
            by_kind, by_status = _value_counts(kind), _value_counts(status)
        self.by_kind.update(by_kind)
        self.by_status.update(by_status)
        geneve, fragment, tcp, ok = _code(kind_labels, "geneve"), _code(kind_labels, "ip_fragment"), _code(kind_labels, "tcp"), _code(status_labels, "ok")
        by_shape = counts[geneve + 1] if geneve >= 0 else np.zeros_like(counts[0])
        self.shape.update(_shape_counts(by_shape.sum(axis=(0, 1))))
        self.shape_decoded.update(_shape_counts(by_shape[ok + 1].sum(axis=0) if ok >= 0 else np.zeros(n_shapes, np.int64)))
        self.outer_fragment_packets += int(sum(counts[code + 1, :, 1].sum() for code in (geneve, fragment) if code >= 0))
        return (kinds.codes == geneve) & (geneve >= 0), (kinds.codes == tcp) & (tcp >= 0)

    def _add_geneve(self, packets: pd.DataFrame, is_geneve: np.ndarray, links: Links) -> None:
        """Addresses, endpoints and cookies of the Geneve packets (``GENEVE_COLUMNS``), counted in place: no copy of their rows."""

        def column(name: str) -> np.ndarray:
            return packets[name].to_numpy()

        # Packets per link (few: one a GWLB node and appliance, each way); Geneve packets without an outer IP
        # header, none that were decoded, have no link.
        ends = list(zip(links.src.addresses(), links.dst.addresses()))
        counts = np.bincount(links.link[links.link >= 0], minlength=len(ends)).tolist()
        without_ip = is_geneve & (links.link < 0)
        if without_ip.any():
            other = key_counts([column("outer_src_hi"), column("outer_src_lo"), column("outer_dst_hi"), column("outer_dst_lo")], without_ip)
            ends += [((s_hi, s_lo), (d_hi, d_lo)) for s_hi, s_lo, d_hi, d_lo in other]
            counts += list(other.values())
        for (src, dst), count in zip(ends, counts):
            self.sent[src] += count
            self.received[dst] += count
        self._add_endpoints(column("aws_endpoint_id"), column("aws_attachment_id"), column("aws_flow_cookie"), column("gwlb_shape"), is_geneve)

    def _add_endpoints(self, endpoint: np.ndarray, attachment: np.ndarray, cookie: np.ndarray, shape: np.ndarray, is_geneve: np.ndarray) -> None:
        """Packets per endpoint and attachment of packets with an endpoint, their distinct cookies per endpoint, and
        the distinct cookies of packets with one: one hash of the rows, whose first rows of each combination
        hold every value that counts."""
        # Which of endpoint and cookie a packet lacks, as the shape's bits say: a packet not Geneve lacks both,
        # as one counted for neither, and the combinations of such packets are dropped below.
        lacks = (shape & _LACKS_BOTH).astype(np.uint8)
        lacks[~is_geneve] = _LACKS_BOTH
        combination, firsts = group_ids([lacks, endpoint, cookie, attachment])
        packets_of = np.bincount(combination, minlength=len(firsts))
        first_lacks = lacks[firsts]
        kept = first_lacks != _LACKS_BOTH
        firsts, packets_of, first_lacks = firsts[kept], packets_of[kept], first_lacks[kept]
        self.cookies = _distinct(np.concatenate([self.cookies, cookie[firsts[(first_lacks & int(GwlbShape.MISSING_COOKIE)) == 0]]]))
        with_endpoint = (first_lacks & int(GwlbShape.MISSING_ENDPOINT)) == 0
        firsts, packets_of = firsts[with_endpoint], packets_of[with_endpoint]
        # Few (endpoint, attachment) pairs among the combinations, numbered as the rows first show them.
        pair, pair_firsts = group_ids([endpoint[firsts], attachment[firsts]])
        pair_packets = np.bincount(pair, weights=packets_of, minlength=len(pair_firsts)).astype(np.int64)
        for e, a, count in zip(endpoint[firsts[pair_firsts]].tolist(), attachment[firsts[pair_firsts]].tolist(), pair_packets.tolist()):
            self.endpoint_packets[e] += count
            self.endpoint_attachments.add((e, a))
        # Each endpoint's distinct cookies from one sort of (endpoint's rank, cookie), packed in 64 bits (cookies have 32).
        endpoints, rank = np.unique(endpoint[firsts], return_inverse=True)
        ranked = _distinct((rank.reshape(-1).astype(np.uint64) << np.uint64(32)) | cookie[firsts].astype(np.uint64))
        bounds = np.searchsorted(ranked >> np.uint64(32), np.arange(1, len(endpoints)))
        for value, cookies in zip(endpoints.tolist(), np.split((ranked & np.uint64(0xFFFF_FFFF)).astype(cookie.dtype), bounds)):
            self._add_endpoint_cookies(value, cookies)

    def _add_endpoint_cookies(self, endpoint: int, cookies: np.ndarray) -> None:
        """Add distinct cookies, ascending, to the endpoint's."""
        known = self.endpoint_cookies.get(endpoint)
        self.endpoint_cookies[endpoint] = cookies if known is None else _distinct(np.concatenate([known, cookies]))

    def probes(self) -> pd.DataFrame:
        """The TCP packets counted, for ``analysis.health.health_checks`` (an empty table when none)."""
        if not self.probe_packets:
            return pd.DataFrame({name: pd.Series(dtype=object if name in ("file", "kind") else np.int64) for name in PROBE_COLUMNS})
        if len(self.probe_packets) > 1:
            self.probe_packets = [concat_packets(self.probe_packets)]
        return self.probe_packets[0]

    def merge(self, other: PacketTally) -> None:
        self.packets += other.packets
        for name, pick in (("first_ts_ns", min), ("last_ts_ns", max)):
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, theirs if mine is None else mine if theirs is None else pick(mine, theirs))
        for name in ("by_kind", "by_status", "shape", "shape_decoded", "sent", "received", "endpoint_packets"):
            getattr(self, name).update(getattr(other, name))
        self.endpoint_attachments.update(other.endpoint_attachments)
        self.cookies = _distinct(np.concatenate([self.cookies, other.cookies]))
        for endpoint, cookies in other.endpoint_cookies.items():
            self._add_endpoint_cookies(endpoint, cookies)
        self.outer_fragment_packets += other.outer_fragment_packets
        self.largest_inner_bytes = max(self.largest_inner_bytes, other.largest_inner_bytes)
        self.probe_packets.extend(other.probe_packets)


class LatencyTally:
    """Dwell times of paired ingress legs, by place and per second of each appliance's capture.

    Exact keeps every dwell time (summaries as ``summaries.latency_summary_us``); otherwise one
    ``LatencySketch`` per place and per (appliance, second).
    """

    def __init__(self, exact: bool = True, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> None:
        self.exact = exact
        self.relative_accuracy = relative_accuracy
        self._paired: list[dict[str, np.ndarray]] = []  # exact: the paired ingress legs' PAIRED_COLUMNS
        self._in_order = False  # exact: _paired is one set of columns in order of latency
        self._sketches: dict[tuple[str, object], LatencySketch] = {}  # (place column or "overall", value)
        self._seconds: dict[tuple[int, int], LatencySketch] = {}  # (appliance, second)

    def add(self, paired: Mapping[str, np.ndarray]) -> None:
        """Add paired ingress legs' columns (``analysis.latency.paired_columns``, or its table ``paired_ingress``)."""
        paired = {name: np.asarray(paired[name]) for name in PAIRED_COLUMNS}
        latency = paired["latency_ns"]
        if len(latency) == 0:
            return
        if self.exact:
            self._paired.append(paired)
            self._in_order = False
            return
        self._sketch("overall", None).add(latency)
        for column in PLACES:
            for value, rows in _groups(paired[column]):
                self._sketch(column, value).add(latency[rows])
        second = paired["ts_ns"] // NS_PER_SECOND
        keys = paired["appliance"].astype(np.int64) * (1 << 40) + second
        for key, rows in _groups(keys):
            appliance, sec = divmod(int(key), 1 << 40)
            self._seconds.setdefault((appliance, sec), LatencySketch(self.relative_accuracy)).add(latency[rows])

    def _sketch(self, column: str, value: object) -> LatencySketch:
        key = (column, value)
        if key not in self._sketches:
            self._sketches[key] = LatencySketch(self.relative_accuracy)
        return self._sketches[key]

    def merge(self, other: LatencyTally) -> None:
        if other.exact != self.exact:
            raise ValueError("exact and sketched latency tallies do not merge")
        self._paired.extend(other._paired)
        self._in_order = False
        for key, sketch in other._sketches.items():
            self._sketch(*key).merge(sketch)
        for key, sketch in other._seconds.items():
            self._seconds.setdefault(key, LatencySketch(self.relative_accuracy)).merge(sketch)

    def _all_paired(self) -> dict[str, np.ndarray]:
        """Every paired leg added, as columns in order of latency: every summary, overall, per place or per
        second, then reads its percentiles from latencies grouped by a counting sort (the summaries do not
        depend on the order)."""
        if not self._in_order:
            parts = self._paired or [{name: np.zeros(0, np.int64) for name in PAIRED_COLUMNS}]
            paired = parts[0] if len(parts) == 1 else {name: np.concatenate([part[name] for part in parts]) for name in PAIRED_COLUMNS}
            self._paired, self._in_order = [in_latency_order(paired)], True
        return self._paired[0]

    def overall(self) -> dict:
        if self.exact:
            return overall_latency(self._all_paired())
        return self._sketch("overall", None).summary_us()

    def by(self, column: str, names: list[str] | None = None) -> pd.DataFrame:
        """Latency summary per value of ``column`` (a place), labelled by ``names`` when given."""
        if self.exact:
            return latency_by(self._all_paired(), column, names)
        rows = {}
        for value in sorted(v for (c, v) in self._sketches if c == column):
            rows[names[int(value)] if names is not None and int(value) >= 0 else value] = self._sketches[(column, value)].summary_us()
        frame = pd.DataFrame.from_dict(rows, orient="index")
        frame.index.name = column
        return frame

    def over_time(self, names: list[str]) -> pd.DataFrame:
        """Per appliance and second of its capture: packets returned, p50 and p99 dwell time in microseconds."""
        if self.exact:
            return latency_over_time(self._all_paired(), names)
        if not self._seconds:
            return pd.DataFrame(columns=OVER_TIME_COLUMNS)
        rows = [
            (names[a], s, sk.count, sk.quantile_ns(0.5) / NS_PER_US, sk.quantile_ns(0.99) / NS_PER_US)
            for (a, s), sk in self._seconds.items()
        ]
        return pd.DataFrame(rows, columns=OVER_TIME_COLUMNS).sort_values(["appliance", "second"], ignore_index=True)

    def appliance_sketches(self, names: list[str]) -> dict[str, LatencySketch]:
        """Each appliance's sketch by name (sketched tallies only; exact ones give none)."""
        return {names[int(v)]: sk for (column, v), sk in self._sketches.items() if column == "appliance" and 0 <= int(v) < len(names)}


@dataclass
class LegTally:
    """Counts over leg tables whose pairing is settled: directions, outcomes, per place, and the dwell times."""

    latency: LatencyTally = field(default_factory=LatencyTally)
    legs: int = 0
    ingress: int = 0
    egress: int = 0
    unknown: int = 0
    ambiguous: int = 0
    by_outcome: Counter = field(default_factory=Counter)
    places: dict = field(default_factory=dict)  # place column -> DataFrame of PLACE_COUNTS by raw value

    def add(self, legs: pd.DataFrame) -> None:
        """Count a leg table (``tables.legs.build_legs``); each leg once over all calls."""
        if len(legs) == 0:
            return
        self.legs += len(legs)
        self.ambiguous += int(legs["ambiguous"].sum())
        # Legs by place, direction and pairing (a few dozen combinations): one hash of the rows, and every
        # count below is a sum over the combinations.
        keys = [legs[column].to_numpy() for column in (*PLACES, "direction")] + [legs["pairing"].cat.codes.to_numpy()]
        combination, firsts = group_ids(keys)
        legs_of = np.bincount(combination, minlength=len(firsts))
        bytes_of = np.bincount(combination, weights=legs["inner_ip_len_bytes"].to_numpy(), minlength=len(firsts))
        values = [key[firsts] for key in keys]
        direction, pairing = values[-2].astype(np.int64), values[-1].astype(np.int64)
        self.ingress += int(legs_of[direction == Direction.INGRESS].sum())
        self.egress += int(legs_of[direction == Direction.EGRESS].sum())
        self.unknown += int(legs_of[direction == Direction.UNKNOWN].sum())
        labels = legs["pairing"].cat.categories
        for code in np.unique(pairing[pairing >= 0]).tolist():
            self.by_outcome[str(labels[code])] += int(legs_of[pairing == code].sum())
        # Each combination's direction and pairing as one class (a pairing outside ``Pairing`` last): one count
        # per place and class gives every column of PLACE_COUNTS.
        n_pairings = len(Pairing) + 1
        outcome = direction * n_pairings + np.where(pairing < 0, len(Pairing), pairing)
        n_classes = len(Direction) * n_pairings
        ingress_bytes = np.where(direction == Direction.INGRESS, bytes_of, 0)
        for column, value in zip(PLACES, values):
            code, keys = group_codes(value)
            by_class = np.zeros(len(keys) * n_classes, np.int64)
            np.add.at(by_class, code * n_classes + outcome, legs_of)
            by_class = by_class.reshape(len(keys), len(Direction), n_pairings)
            bytes_in = np.zeros(len(keys))
            np.add.at(bytes_in, code, ingress_bytes)
            # A place is a value some leg has, and a negative index none (the leg's role is unknown).
            real = by_class.any(axis=(1, 2)) & ~(keys < 0)
            by_class, keys = by_class[real], keys[real]
            table = pd.DataFrame(
                {
                    "packets_in": by_class[:, Direction.INGRESS].sum(axis=1),
                    "packets_out": by_class[:, Direction.EGRESS].sum(axis=1),
                    "returned": by_class[:, Direction.INGRESS, Pairing.PAIRED],
                    "not_returned": by_class[:, Direction.INGRESS, Pairing.NOT_RETURNED],
                    "in_flight": by_class[:, Direction.INGRESS, Pairing.IN_FLIGHT],
                    "originated": by_class[:, :, Pairing.ORIGINATED].sum(axis=1),
                    "bytes_in": bytes_in[real].astype(np.int64),
                },
                index=keys,
            )
            self._add_place(column, table)
        self.latency.add(paired_columns(legs))

    def _add_place(self, column: str, table: pd.DataFrame) -> None:
        if column in self.places:
            table = self.places[column].add(table, fill_value=0).astype(np.int64)
        self.places[column] = table.sort_index()

    def place(self, column: str) -> pd.DataFrame:
        """PLACE_COUNTS per raw value of ``column`` (an empty table when no leg had one)."""
        if column in self.places:
            return self.places[column]
        return pd.DataFrame({name: pd.Series(dtype=np.int64) for name in PLACE_COUNTS})

    def merge(self, other: LegTally) -> None:
        for name in ("legs", "ingress", "egress", "unknown", "ambiguous"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_outcome.update(other.by_outcome)
        for column, table in other.places.items():
            self._add_place(column, table)
        self.latency.merge(other.latency)


@dataclass
class Tallies:
    """A PacketTally and a LegTally: everything a Report needs besides the flow table, and the captures read."""

    packets: PacketTally = field(default_factory=PacketTally)
    legs: LegTally = field(default_factory=LegTally)
    captures: list = field(default_factory=list)  # as read_packets describes files in attrs["captures"]

    @classmethod
    def sketched(cls, relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY) -> Tallies:
        """Tallies that summarise latency in sketches: bounded memory, percentiles within ``relative_accuracy``."""
        return cls(legs=LegTally(latency=LatencyTally(exact=False, relative_accuracy=relative_accuracy)))

    def merge(self, other: Tallies) -> None:
        self.packets.merge(other.packets)
        self.legs.merge(other.legs)
        self.captures.extend(other.captures)


def _value_counts(column: pd.Series) -> dict[str, int]:
    counts = column.value_counts()
    return {str(label): int(count) for label, count in counts.items() if count}


def _code(labels: list[str], label: str) -> int:
    """The code of ``label`` among a categorical's ``labels``, -1 (no value's) when it is none of them."""
    return labels.index(label) if label in labels else -1


def _shape_counts(counts: np.ndarray) -> dict[str, int]:
    """Packets of the exact shape, deviating ones, and per ``GwlbShape`` flag, from the packets of each shape value (``counts``)."""
    counts = np.r_[counts, 0] if len(counts) == 0 else counts
    values = np.flatnonzero(counts)
    out = {"exact": int(counts[0]), "deviating": int(counts.sum() - counts[0])}
    for flag in GwlbShape:
        count = int(counts[values[(values & flag.value) != 0]].sum())
        if count:
            out[flag.name.lower()] = count
    return out


def _distinct(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` by one sort: numpy's unique, without an inverse, is several times slower on many values."""
    ordered = np.sort(values)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _groups(values: np.ndarray):
    """(value, row positions) for each distinct value."""
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    for begin, end in zip(starts, np.r_[starts[1:], len(values)]):
        yield sorted_values[begin].item(), order[begin:end]
