"""An incremental flow table: leg tables fed in time order fold into per-flow state bounded by the flows, not the packets.

``FlowState.update`` takes one chunk of legs (as ``build_legs`` returns them) at a time; ``flows`` renders the
table ``build_flows`` would give for everything fed so far, with the handshake times of ``handshake_rtts`` as
two more columns; ``retire`` renders and forgets the flows gone quiet.  The caller guarantees that every leg
of a chunk is later than every leg of the chunks before it, and that no pair of legs straddles two chunks.

The state is columnar: one row per flow in ``_columns`` (numpy arrays indexed by a slot), a sorted index of
the canonical flow keys, and side tables of (flow, value) pairs for sets of values and for latency buckets.
Sums, minima, maxima and firsts fold by slot.  The gaps and changes of appliance between packets need each
flow's last transit overall and per direction, and the appliances of each direction since its last idle
gap: those are carried in the state and put in front of the next chunk's transits, uncounted.

Exact against ``build_flows`` on the whole capture, except:

- ``latency_p50_us`` and ``latency_p99_us`` come from a per-flow DDSketch (``gwcheck.sketch``'s bucket rule):
  each is interpolated between order statistics as pandas does, every one within the relative accuracy,
  so the quantile is too; ``latency_max_us`` is exact.
- A changed cookie is stale if the flow's transits carried it in this chunk or before, not later.
- The GSO/over-MTU split of a packet uses the flow's largest MSS seen up to the packet's chunk.

``server_rtt_us`` and ``client_rtt_us`` subtract integer nanoseconds, then divide.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..errors import ConfigError
from ..schema import NS_PER_US
from ..sketch import DEFAULT_RELATIVE_ACCURACY
from .flows import (
    FLOW_KEY, PAIRING_COLUMNS, STICKINESS, TCP_FLAG_COLUMNS, build_transits, changed_options, client_evidence,
    first_move_ns, first_per_flow, flow_changes, flow_ends, flow_epochs, flow_starts, fragmented_legs, idle_timeouts_ns,
    mtu_packets, names_per_flow, option_faults, pair_codes, split_epochs, transit_kinds,
)
from .legs import NO_PEER, Direction

NO_TIME = np.iinfo(np.int64).min  # a time not seen yet
NO_LATENCY = -1

#: The canonical flow key packed big-endian, so that byte order is the order ``build_flows`` sorts flows in.
PACKED_KEY = np.dtype([
    ("aws_endpoint_id", ">u8"), ("key_proto", "u1"), ("a_hi", ">u8"), ("a_lo", ">u8"), ("a_port", ">u2"),
    ("b_hi", ">u8"), ("b_lo", ">u8"), ("b_port", ">u2"),
])

#: One row per flow: dtype and value before the flow's first packet.  End ``a`` is the lower end of the key.
FIELDS: dict[str, tuple[type, int]] = {
    # who: the key and the first transit's protocol; the client by its strongest evidence (flows.client_evidence)
    "aws_endpoint_id": (np.uint64, 0), "key_proto": (np.uint8, 0), "a_hi": (np.uint64, 0), "a_lo": (np.uint64, 0),
    "a_port": (np.uint16, 0), "b_hi": (np.uint64, 0), "b_lo": (np.uint64, 0), "b_port": (np.uint16, 0),
    "protocol": (np.uint8, 0), "client_strength": (np.int8, -1), "client_is_a": (np.int8, 0),
    # how much, by sending end
    "first_ns": (np.int64, NO_TIME), "last_ns": (np.int64, NO_TIME),
    "a_packets": (np.int64, 0), "b_packets": (np.int64, 0), "a_bytes": (np.int64, 0), "b_bytes": (np.int64, 0),
    **{name: (np.int64, 0) for name in PAIRING_COLUMNS},
    **{name: (np.bool_, False) for name in TCP_FLAG_COLUMNS},
    "latency_min_ns": (np.int64, NO_LATENCY), "latency_max_ns": (np.int64, NO_LATENCY),
    "stale_cookie_legs": (np.int64, 0), "wrong_cookie_legs": (np.int64, 0), "modified_option_legs": (np.int64, 0),
    "option_diff": (np.uint8, 0),
    "max_gap_ns": (np.int64, 0), "idle_gaps": (np.int64, 0), "new_cookie_after_idle": (np.bool_, False),
    "new_appliance_after_idle": (np.bool_, False), "non_syn_after_idle": (np.bool_, False),
    "appliance_changes": (np.int64, 0), "split_before": (np.bool_, False),
    "a_moved_at_ns": (np.int64, -1), "b_moved_at_ns": (np.int64, -1),
    # carried to the next chunk: the last transit, and each end's last transit
    "last_cookie": (np.uint32, 0), "last_appliance": (np.int16, -1), "last_is_a": (np.bool_, False),
    "a_last_ns": (np.int64, NO_TIME), "a_last_appliance": (np.int16, -1),
    "b_last_ns": (np.int64, NO_TIME), "b_last_appliance": (np.int16, -1),
    "mss": (np.int64, 0), "over_mtu_packets": (np.int64, 0), "gso_packets": (np.int64, 0), "fragmented_legs": (np.int64, 0),
    "syn_ns": (np.int64, NO_TIME), "synack_ns": (np.int64, NO_TIME), "ack_ns": (np.int64, NO_TIME),
}

#: Side tables of distinct (flow, value) pairs, with the dtype of their values.  ``a_epoch``/``b_epoch``: the
#: appliances each end sent through since the flow's last idle gap.
SETS = {
    "a_appliances": np.int16, "b_appliances": np.int16, "gwlb_nodes": np.int16, "cookies": np.uint32,
    "outer_sports": np.uint16, "a_epoch": np.int16, "b_epoch": np.int16,
}


class _Pairs:
    """Distinct (slot, value) pairs as one sorted array of ``flows.pair_codes``; with ``counted``, a count per pair."""

    def __init__(self, dtype: type, counted: bool = False) -> None:
        self.dtype = dtype
        self.codes = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64) if counted else None

    def add(self, slot: np.ndarray, value: np.ndarray) -> None:
        """Add the pairs (counting each once more); only the new pairs are sorted, then merged in."""
        codes, counts = np.unique(pair_codes(slot, value), return_counts=True)
        at = np.searchsorted(self.codes, codes)
        held = at < len(self.codes)
        held[held] = self.codes[at[held]] == codes[held]
        self.codes = np.insert(self.codes, at[~held], codes[~held])
        if self.counts is not None:
            self.counts[at[held]] += counts[held]
            self.counts = np.insert(self.counts, at[~held], counts[~held])

    def contains(self, slot: np.ndarray, value: np.ndarray) -> np.ndarray:
        codes = pair_codes(slot, value)
        at = np.searchsorted(self.codes, codes)
        found = at < len(self.codes)
        found[found] = self.codes[at[found]] == codes[found]
        return found

    def pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Slots and values, sorted by slot then value."""
        return self.codes >> 32, (self.codes & 0xFFFFFFFF).astype(self.dtype)

    def renumber(self, new_slot: np.ndarray) -> None:
        """Move every pair to ``new_slot[slot]``, dropping those mapped to -1 (an order-keeping renumbering)."""
        slot = new_slot[self.codes >> 32]
        keep = slot >= 0
        self.codes = (slot[keep] << 32) | (self.codes[keep] & 0xFFFFFFFF)
        if self.counts is not None:
            self.counts = self.counts[keep]

    def drop(self, slots: np.ndarray) -> None:
        keep = ~np.isin(self.codes >> 32, slots)
        self.codes = self.codes[keep]
        if self.counts is not None:
            self.counts = self.counts[keep]

    @property
    def nbytes(self) -> int:
        return self.codes.nbytes + (self.counts.nbytes if self.counts is not None else 0)


class FlowState:
    """The flow table of legs fed chunk by chunk in time order, in memory that grows with the flows only.

    ``flows()`` and ``retire()`` give ``build_flows``' columns followed by ``handshake_rtts``' two
    (``server_rtt_us``, ``client_rtt_us``; NaN where none), rows in the order of the flow key.
    """

    def __init__(
        self,
        stickiness: str = "5-tuple",
        tcp_idle_timeout_s: float = 350.0,
        udp_idle_timeout_s: float = 120.0,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
    ) -> None:
        if stickiness not in STICKINESS:
            raise ConfigError(f"stickiness must be one of {', '.join(STICKINESS)}, got {stickiness!r}")
        if not 0.0 < relative_accuracy < 1.0:
            raise ConfigError(f"relative accuracy must be within (0, 1), got {relative_accuracy}")
        self.stickiness = stickiness
        self.tcp_idle_timeout_s = tcp_idle_timeout_s
        self.udp_idle_timeout_s = udp_idle_timeout_s
        self.relative_accuracy = relative_accuracy
        self._gamma = (1 + relative_accuracy) / (1 - relative_accuracy)
        self._columns = {name: np.zeros(0, dtype) for name, (dtype, _) in FIELDS.items()}  # slots 0..len-1 used
        self._keys = np.zeros(0, f"S{PACKED_KEY.itemsize}")  # sorted packed keys ...
        self._key_slots = np.zeros(0, np.int64)  # ... and the slot of each
        self._sets = {name: _Pairs(dtype) for name, dtype in SETS.items()}
        self._latency = _Pairs(np.int64, counted=True)  # (slot, bucket + 1) -> count; bucket -1 holds 0 ns
        self._latest_ns = NO_TIME

    def __len__(self) -> int:
        return len(self._key_slots)

    @property
    def nbytes(self) -> int:
        """Bytes held by the state's arrays, room for more flows included (not Python objects' overhead)."""
        arrays = sum(a.nbytes for a in self._columns.values()) + self._keys.nbytes + self._key_slots.nbytes
        return arrays + sum(p.nbytes for p in self._sets.values()) + self._latency.nbytes

    def update(self, legs: pd.DataFrame) -> None:
        """Fold one chunk of legs (``build_legs``' columns, ``peer`` counted within the chunk) into the flows."""
        if len(legs) == 0:
            return
        ts = legs["ts_ns"].to_numpy()
        if ts.min() <= self._latest_ns:
            raise ValueError(f"legs must come in time order: a leg at {ts.min()} ns follows one at {self._latest_ns} ns")
        self._latest_ns = int(ts.max())
        legs = legs.copy(deep=False)  # build_transits adds a "flow" column: not to the caller's table
        t = build_transits(legs, self.stickiness)
        if len(t) == 0:
            return
        flow = t["flow"].to_numpy()
        n = int(flow[-1]) + 1
        kinds = transit_kinds(t)
        slot, new = self._slots(t, flow_starts(flow, n))
        self._fold_changes(t, kinds, flow, slot, new, n)  # first: it reads what the flows carried from before
        self._fold_counts(t, kinds, flow, slot, n)
        self._fold_sets(t, flow, slot)
        self._fold_latency(legs, slot)
        self._fold_options(legs, slot, n)
        self._fold_mtu(t, legs, flow, slot, n)
        self._fold_handshakes(t, kinds, flow, slot, n)

    def flows(self, appliance_names: list[str], node_names: list[str]) -> pd.DataFrame:
        """The flow table of every flow held, as ``build_flows`` and ``handshake_rtts`` give it."""
        return self._render(self._key_slots, appliance_names, node_names)

    def retire(self, before_ns: int, appliance_names: list[str], node_names: list[str]) -> pd.DataFrame:
        """The rows of the flows whose last packet is older than ``before_ns``, which are forgotten: a later
        packet of the same key starts a new flow."""
        old = self._columns["last_ns"][: len(self)] < before_ns
        rows = self._render(self._key_slots[old[self._key_slots]], appliance_names, node_names)
        self._remove(old)
        return rows

    # -- folding a chunk ---------------------------------------------------------------------------------

    def _slots(self, t: pd.DataFrame, first_rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The slot of each of the chunk's flows, and which of them are new (given slots at the end)."""
        packed = np.zeros(len(first_rows), PACKED_KEY)
        for name in FLOW_KEY:
            packed[name] = t[name].to_numpy()[first_rows]
        keys = packed.view(self._keys.dtype)
        at = np.searchsorted(self._keys, keys)
        found = at < len(self._keys)
        found[found] = self._keys[at[found]] == keys[found]
        slot = np.empty(len(keys), np.int64)
        slot[found] = self._key_slots[at[found]]
        new = ~found
        slot[new] = np.arange(len(self), len(self) + new.sum())
        if not new.any():
            return slot, new
        capacity = len(self._columns["last_ns"])
        if len(self) + new.sum() > capacity:  # double, so that the columns are copied O(log flows) times
            grown = max(2 * capacity, len(self) + int(new.sum()), 1024)
            for name, column in self._columns.items():
                dtype, initial = FIELDS[name]
                self._columns[name] = np.concatenate([column, np.full(grown - capacity, initial, dtype)])
        firsts = first_rows[new]
        for name in FLOW_KEY:
            self._columns[name][slot[new]] = t[name].to_numpy()[firsts]
        self._columns["protocol"][slot[new]] = t["inner_proto"].to_numpy()[firsts]
        self._columns["first_ns"][slot[new]] = t["ts_ns"].to_numpy()[firsts]
        # The chunk's flows are in key order, so the new keys go in at non-decreasing places, in order.
        self._keys = np.insert(self._keys, at[new], keys[new])
        self._key_slots = np.insert(self._key_slots, at[new], slot[new])
        return slot, new

    def _fold_changes(self, t: pd.DataFrame, kinds: dict, flow: np.ndarray, slot: np.ndarray, new: np.ndarray, n: int) -> None:
        """Gaps, idle gaps, changes of appliance and split epochs, with each held flow's carried transits in front."""
        c = self._columns
        held = np.flatnonzero(~new)
        s = slot[held]
        other_is_a = ~c["last_is_a"][s]
        other_ns = np.where(other_is_a, c["a_last_ns"][s], c["b_last_ns"][s])
        other_appliance = np.where(other_is_a, c["a_last_appliance"][s], c["b_last_appliance"][s])
        has_other = other_ns != NO_TIME
        # Carried rows: the last transit of the end that did not send last (if it sent at all), then the last.
        n_carried = int(has_other.sum()) + len(held)
        rows = {
            "flow": np.r_[held[has_other], held, flow],
            "ts": np.r_[other_ns[has_other], c["last_ns"][s], t["ts_ns"].to_numpy()],
            "cookie": np.r_[c["last_cookie"][s][has_other], c["last_cookie"][s], t["aws_flow_cookie"].to_numpy()],
            "appliance": np.r_[other_appliance[has_other], c["last_appliance"][s], t["appliance"].to_numpy()],
            "sender_is_a": np.r_[other_is_a[has_other], c["last_is_a"][s], t["sender_is_a"].to_numpy()],
            "tcp": np.r_[np.zeros(n_carried, bool), kinds["tcp"]],
            "syn": np.r_[np.zeros(n_carried, bool), kinds["syn"]],
            "carried": np.r_[np.ones(n_carried, bool), np.zeros(len(t), bool)],
        }
        order = np.lexsort((rows["ts"], rows["flow"]))  # stable: carried rows first, each flow's in time order
        r = {name: values[order] for name, values in rows.items()}
        timeout = idle_timeouts_ns(r["tcp"], self.tcp_idle_timeout_s, self.udp_idle_timeout_s)
        changes, idle = flow_changes(r["flow"], r["ts"], r["cookie"], r["appliance"], r["sender_is_a"], r["tcp"], r["syn"], timeout, n, r["carried"])
        c["max_gap_ns"][slot] = np.maximum(c["max_gap_ns"][slot], changes["max_gap_ns"])
        for name in ("idle_gaps", "appliance_changes"):
            c[name][slot] += changes[name]
        for name in ("new_cookie_after_idle", "new_appliance_after_idle", "non_syn_after_idle"):
            c[name][slot] |= changes[name]
        for name in ("a_moved_at_ns", "b_moved_at_ns"):
            unmoved = c[name][slot] < 0
            c[name][slot[unmoved]] = changes[name][unmoved]
        self._fold_epochs(r, flow_epochs(r["flow"], idle), slot, n)
        # What the next chunk needs carried: the last transit, and each end's.
        ends = flow_ends(flow, n)
        c["last_ns"][slot] = t["ts_ns"].to_numpy()[ends]
        c["last_cookie"][slot] = t["aws_flow_cookie"].to_numpy()[ends]
        c["last_appliance"][slot] = t["appliance"].to_numpy()[ends]
        c["last_is_a"][slot] = t["sender_is_a"].to_numpy()[ends]
        sender_is_a = t["sender_is_a"].to_numpy()
        for end, mask in (("a", sender_is_a), ("b", ~sender_is_a)):
            last = _last_rows(flow, mask, n)
            sent = last >= 0
            c[f"{end}_last_ns"][slot[sent]] = t["ts_ns"].to_numpy()[last[sent]]
            c[f"{end}_last_appliance"][slot[sent]] = t["appliance"].to_numpy()[last[sent]]

    def _fold_epochs(self, r: dict[str, np.ndarray], epoch: np.ndarray, slot: np.ndarray, n: int) -> None:
        """Judge the epochs the chunk closed (split or not); keep the appliances of each flow's open epoch."""
        chunk_flow = np.full(len(self), -1, np.int64)
        chunk_flow[slot] = np.arange(n)
        held = [self._open_epoch(end, chunk_flow) for end in ("a", "b")]  # the open epoch so far is epoch 0
        real = ~r["carried"]
        flow = np.concatenate([held[0][0], held[1][0], r["flow"][real]])
        sides = np.concatenate([np.ones(len(held[0][0]), bool), np.zeros(len(held[1][0]), bool), r["sender_is_a"][real]])
        appliances = np.concatenate([held[0][1], held[1][1], r["appliance"][real]])
        epochs = np.concatenate([np.zeros(len(flow) - real.sum(), np.int64), epoch[real]])
        last_epoch = epoch[flow_ends(r["flow"], n)]
        split_flow, split_epoch = split_epochs(flow, epochs, sides, appliances)
        closed = split_flow[split_epoch < last_epoch[split_flow]]
        self._columns["split_before"][slot[closed]] = True
        restarted = slot[last_epoch > 0]
        open_now = epochs == last_epoch[flow]
        for end, mask in (("a", sides), ("b", ~sides)):
            self._sets[f"{end}_epoch"].drop(restarted)
            self._sets[f"{end}_epoch"].add(slot[flow[open_now & mask]], appliances[open_now & mask])

    def _open_epoch(self, end: str, chunk_flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The chunk flow and appliance of each pair in ``end``'s open-epoch set for the flows in the chunk."""
        held_slot, appliance = self._sets[f"{end}_epoch"].pairs()
        flow = chunk_flow[held_slot]
        return flow[flow >= 0], appliance[flow >= 0]

    def _fold_counts(self, t: pd.DataFrame, kinds: dict, flow: np.ndarray, slot: np.ndarray, n: int) -> None:
        c = self._columns
        sender_is_a = t["sender_is_a"].to_numpy()
        strength, client_is_a = client_evidence(flow, sender_is_a, kinds, n)
        stronger = strength > c["client_strength"][slot]
        c["client_strength"][slot[stronger]] = strength[stronger]
        c["client_is_a"][slot[stronger]] = client_is_a[stronger]
        size = t["inner_ip_len_bytes"].to_numpy().astype(np.int64)
        for end, mask in (("a", sender_is_a), ("b", ~sender_is_a)):
            c[f"{end}_packets"][slot] += np.bincount(flow[mask], minlength=n)
            c[f"{end}_bytes"][slot] += np.bincount(flow[mask], weights=size[mask], minlength=n).astype(np.int64)
        pairing = t["pairing"].cat.codes.to_numpy()
        for name, state in PAIRING_COLUMNS.items():
            c[name][slot] += np.bincount(flow[pairing == state], minlength=n)
        for name in TCP_FLAG_COLUMNS:
            c[name][slot] |= np.bincount(flow[kinds[name.removeprefix("tcp_")]], minlength=n) > 0

    def _fold_sets(self, t: pd.DataFrame, flow: np.ndarray, slot: np.ndarray) -> None:
        sender_is_a = t["sender_is_a"].to_numpy()
        appliance = t["appliance"].to_numpy()
        self._sets["a_appliances"].add(slot[flow[sender_is_a]], appliance[sender_is_a])
        self._sets["b_appliances"].add(slot[flow[~sender_is_a]], appliance[~sender_is_a])
        for name, column in (("gwlb_nodes", "gwlb_node"), ("cookies", "aws_flow_cookie"), ("outer_sports", "outer_sport")):
            self._sets[name].add(slot[flow], t[column].to_numpy())

    def _fold_latency(self, legs: pd.DataFrame, slot: np.ndarray) -> None:
        """The dwell time of every paired ingress leg: into its flow's buckets, its exact minimum and maximum."""
        paired_in = (legs["direction"].to_numpy() == Direction.INGRESS) & (legs["peer"].to_numpy() != NO_PEER)
        if not paired_in.any():
            return
        latency = legs["latency_ns"].to_numpy()[paired_in]
        flow_slot = slot[legs["flow"].to_numpy()[paired_in]]
        self._latency.add(flow_slot, self._buckets(latency) + 1)
        c = self._columns
        extremes = pd.Series(latency).groupby(flow_slot).agg(["min", "max"])
        at = extremes.index.to_numpy()
        low, high = extremes["min"].to_numpy(), extremes["max"].to_numpy()
        c["latency_min_ns"][at] = np.where(c["latency_min_ns"][at] == NO_LATENCY, low, np.minimum(c["latency_min_ns"][at], low))
        c["latency_max_ns"][at] = np.maximum(c["latency_max_ns"][at], high)

    def _fold_options(self, legs: pd.DataFrame, slot: np.ndarray, n: int) -> None:
        flow, diff, cookie = changed_options(legs)
        seen = self._sets["cookies"].contains(slot[flow], cookie)  # cookies of this chunk and before
        for name, values in option_faults(flow, diff, seen, n).items():
            if name == "option_diff":
                self._columns[name][slot] |= values
            else:
                self._columns[name][slot] += values

    def _fold_mtu(self, t: pd.DataFrame, legs: pd.DataFrame, flow: np.ndarray, slot: np.ndarray, n: int) -> None:
        c = self._columns
        mss = np.zeros(n, np.int64)
        np.maximum.at(mss, flow, t["inner_tcp_mss"].to_numpy().astype(np.int64))
        c["mss"][slot] = np.maximum(c["mss"][slot], mss)
        over, gso = mtu_packets(t, c["mss"][slot][flow], n)  # the MSS seen so far
        c["over_mtu_packets"][slot] += over
        c["gso_packets"][slot] += gso
        c["fragmented_legs"][slot] += fragmented_legs(legs, n)

    def _fold_handshakes(self, t: pd.DataFrame, kinds: dict, flow: np.ndarray, slot: np.ndarray, n: int) -> None:
        """The first SYN, the first SYN-ACK, and the first plain ACK after that SYN-ACK (``handshake_rtts``)."""
        c = self._columns
        ts = t["ts_ns"].to_numpy()
        for name, kind in (("syn_ns", "syn"), ("synack_ns", "synack"), ("ack_ns", None)):
            if kind is None:  # the ACKs after the first SYN-ACK, which is in this chunk or an earlier one
                synack = c["synack_ns"][slot][flow]
                mask = kinds["ack"] & (synack != NO_TIME) & (ts > synack)
            else:
                mask = kinds[kind]
            first = first_per_flow(flow, ts, mask, n, NO_TIME, np.int64)
            unset = c[name][slot] == NO_TIME
            c[name][slot[unset]] = first[unset]

    def _buckets(self, latency_ns: np.ndarray) -> np.ndarray:
        """``gwcheck.sketch``'s bucket of each latency, ``ceil(log_gamma(x))``; -1 for 0 ns."""
        bucket = np.full(len(latency_ns), -1, np.int64)
        positive = latency_ns > 0
        bucket[positive] = np.ceil(np.log(latency_ns[positive]) / math.log(self._gamma)).astype(np.int64)
        return bucket

    # -- rendering and forgetting ------------------------------------------------------------------------

    def _render(self, slots: np.ndarray, appliance_names: list[str], node_names: list[str]) -> pd.DataFrame:
        """The rows of ``slots`` (in key order), with ``build_flows``' columns and dtypes, then the handshakes."""
        n = len(slots)
        c = {name: column[slots] for name, column in self._columns.items()}
        row = np.full(len(self), -1, np.int64)
        row[slots] = np.arange(n)
        client_is_a = c["client_is_a"].astype(bool)
        flows = pd.DataFrame(index=pd.RangeIndex(n, name="flow"))
        flows["protocol"] = c["protocol"]
        flows["endpoint_id"] = c["aws_endpoint_id"]
        for end, near, far in (("client", "a", "b"), ("server", "b", "a")):
            for part in ("hi", "lo", "port"):
                flows[f"{end}_{part}"] = np.where(client_is_a, c[f"{near}_{part}"], c[f"{far}_{part}"])
        flows["first_ns"] = c["first_ns"]
        flows["last_ns"] = c["last_ns"]
        for unit in ("packets", "bytes"):
            flows[f"fwd_{unit}"] = np.where(client_is_a, c[f"a_{unit}"], c[f"b_{unit}"])
            flows[f"rev_{unit}"] = np.where(client_is_a, c[f"b_{unit}"], c[f"a_{unit}"])
        for name in PAIRING_COLUMNS:
            flows[name] = c[name]
        a_flow, a_appliance = self._rows_of("a_appliances", row)
        b_flow, b_appliance = self._rows_of("b_appliances", row)
        flow, appliance = np.r_[a_flow, b_flow], np.r_[a_appliance, b_appliance]
        fwd = np.r_[client_is_a[a_flow], ~client_is_a[b_flow]]  # sent by the client
        flows["appliances"] = names_per_flow(flow, appliance, appliance_names, n)
        flows["fwd_appliances"] = names_per_flow(flow[fwd], appliance[fwd], appliance_names, n)
        flows["rev_appliances"] = names_per_flow(flow[~fwd], appliance[~fwd], appliance_names, n)
        flows["gwlb_nodes"] = names_per_flow(*self._rows_of("gwlb_nodes", row), node_names, n)
        flows["cookies"] = names_per_flow(*self._rows_of("cookies", row), None, n)
        flows["outer_sports"] = names_per_flow(*self._rows_of("outer_sports", row), None, n)
        for name in TCP_FLAG_COLUMNS:
            flows[name] = c[name]
        flows["latency_p50_us"], flows["latency_p99_us"] = self._quantiles_ns(row, c, (0.5, 0.99)) / NS_PER_US
        flows["latency_max_us"] = np.where(c["latency_max_ns"] >= 0, c["latency_max_ns"] / NS_PER_US, np.nan)
        for name in ("stale_cookie_legs", "wrong_cookie_legs", "modified_option_legs", "option_diff"):
            flows[name] = c[name]
        flows["max_gap_s"] = c["max_gap_ns"] / 1e9
        for name in ("idle_gaps", "new_cookie_after_idle", "new_appliance_after_idle", "non_syn_after_idle", "appliance_changes"):
            flows[name] = c[name]
        flows["directions_split"] = c["split_before"] | self._open_epoch_split(row, n)
        flows["moved_at_ns"] = first_move_ns(c["a_moved_at_ns"], c["b_moved_at_ns"])
        for name in ("mss", "over_mtu_packets", "gso_packets", "fragmented_legs"):
            flows[name] = c[name]
        flows["server_rtt_us"] = _interval_us(c["syn_ns"], c["synack_ns"])
        flows["client_rtt_us"] = _interval_us(c["synack_ns"], c["ack_ns"])
        return flows

    def _rows_of(self, name: str, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The pairs of side table ``name`` whose flow is rendered, as (row, value)."""
        held_slot, value = self._sets[name].pairs()
        rows = row[held_slot]
        return rows[rows >= 0], value[rows >= 0]

    def _open_epoch_split(self, row: np.ndarray, n: int) -> np.ndarray:
        a_flow, a_appliance = self._rows_of("a_epoch", row)
        b_flow, b_appliance = self._rows_of("b_epoch", row)
        flow = np.r_[a_flow, b_flow]
        sides = np.r_[np.ones(len(a_flow), bool), np.zeros(len(b_flow), bool)]
        split = np.zeros(n, bool)
        split[split_epochs(flow, np.zeros(len(flow), np.int64), sides, np.r_[a_appliance, b_appliance])[0]] = True
        return split

    def _quantiles_ns(self, row: np.ndarray, c: dict[str, np.ndarray], qs: tuple[float, ...]) -> np.ndarray:
        """Per quantile and rendered flow, its latencies' quantile, interpolated between order statistics as pandas
        does, each read as its bucket's middle within the flow's exact minimum and maximum; NaN when none."""
        held_slot, bucket = self._latency.pairs()
        rows = row[held_slot]
        order = np.argsort(rows, kind="stable")  # by row, then bucket as the pairs were
        order = order[rows[order] >= 0]
        rows, bucket, counts = rows[order], bucket[order] - 1, self._latency.counts[order]
        out = np.full((len(qs), len(c["latency_max_ns"])), np.nan)
        total = np.bincount(rows, weights=counts, minlength=out.shape[1]).astype(np.int64)
        has = np.flatnonzero(total > 0)
        cumulative = np.cumsum(counts)
        before = (np.cumsum(total) - total)[has]  # the latencies of the rows before
        middle = np.where(bucket >= 0, 2 * self._gamma ** bucket.astype(float) / (self._gamma + 1), 0.0)
        smallest, largest = c["latency_min_ns"][has], c["latency_max_ns"][has]
        for i, q in enumerate(qs):
            rank = q * (total[has] - 1)
            low, high = np.floor(rank).astype(np.int64), np.ceil(rank).astype(np.int64)
            low_value, high_value = (
                np.clip(middle[np.searchsorted(cumulative, before + k, side="right")], smallest, largest) for k in (low, high)
            )
            out[i, has] = low_value + (high_value - low_value) * (rank - low)
        return out

    def _remove(self, gone: np.ndarray) -> None:
        """Forget the flows of the slots where ``gone`` holds, renumbering the others in order."""
        new_slot = np.where(gone, -1, np.cumsum(~gone) - 1)
        self._columns = {name: column[: len(gone)][~gone] for name, column in self._columns.items()}
        kept = ~gone[self._key_slots]
        self._keys, self._key_slots = self._keys[kept], new_slot[self._key_slots[kept]]
        for pairs in (*self._sets.values(), self._latency):
            pairs.renumber(new_slot)


def _last_rows(flow: np.ndarray, mask: np.ndarray, n: int) -> np.ndarray:
    """Per flow, the last row where ``mask`` holds (rows grouped by flow); -1 when none."""
    rows = np.arange(len(flow))
    return first_per_flow(flow[::-1], rows[::-1], mask[::-1], n, -1, np.int64)


def _interval_us(start_ns: np.ndarray, end_ns: np.ndarray) -> np.ndarray:
    """``end - start`` in microseconds where both are known and the end is not before the start; NaN elsewhere."""
    out = np.full(len(start_ns), np.nan)
    known = (start_ns != NO_TIME) & (end_ns != NO_TIME)
    out[known] = (end_ns[known] - start_ns[known]) / NS_PER_US
    out[out < 0] = np.nan
    return out
