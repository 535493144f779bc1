"""The incremental analysis: packet tables go in as they are read, in time order; memory stays bounded.

``gwcheck live`` and ``gwcheck analyze --stream`` feed packet tables to an ``IncrementalAnalysis``.  It
keeps no packet for long: every packet is counted once into mergeable ``Tallies``; Geneve packets wait
only until their pairing is settled (the last pairing window, ``window_s``), then their legs fold into a
``FlowState`` (per-flow totals) and are dropped.  Flows silent for ``retain_s`` leave the state as finished
rows.  What stays is bounded by the flows, not the packets: one window of packets, the state of the
flows still open, the finished flow rows, and latency sketches with a stated relative error.

The Report it gives equals ``gwcheck.analyze`` of the same packets, except that latency percentiles (per
place and per flow) hold within the sketch's relative accuracy, a stale cookie is judged against the
cookies seen so far, and a flow silent for longer than ``retain_s`` comes back as a new flow.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from .analysis.tallies import Tallies
from .decode.geneve import GENEVE_PORT
from .pipeline import AnalysisSettings, PathLike, assemble_report
from .report.model import Report
from .schema import NS_PER_SECOND
from .sketch import DEFAULT_RELATIVE_ACCURACY
from .tables.flowstate import FlowState
from .tables.legs import NO_PEER, Direction, build_legs
from .tables.packets import MergedStreams, concat_packets, empty_packets
from .tables.roles import Roles, infer_roles

HANDSHAKE_COLUMNS = ("server_rtt_us", "client_rtt_us")  # FlowState rows carry handshake_rtts' columns
ROLE_SAMPLE = 20_000  # Geneve packets held before the roles are inferred from them
CLOCK_TRUST_NS = 300 * NS_PER_SECOND  # packets this close to the clock were stamped by it


class IncrementalAnalysis:
    """Analyse packet tables as they come (``add``), report at any time (``report``), and ``finish`` at the end.

    Takes the keyword arguments of ``gwcheck.analyze`` that shape an analysis (``AnalysisSettings``), and:
    ``relative_accuracy`` of the latency sketches; ``retain_s``, how long a silent flow is kept open (default
    twice the longest idle timeout; None keeps every flow open); ``role_sample``, the Geneve packets the roles
    are inferred from before any is settled (until then reports are provisional); ``clock``, nanoseconds since
    the epoch (``time.time_ns``) for a live capture stamped by that clock, so that a report settles what a
    window of silence has settled too.  Tables must come in time order, each with the columns of
    ``read_packets`` and ``attrs["captures"]`` describing the captures so far.
    """

    def __init__(
        self,
        *,
        relative_accuracy: float = DEFAULT_RELATIVE_ACCURACY,
        retain_s: float | None = -1.0,
        role_sample: int = ROLE_SAMPLE,
        clock: Callable[[], int] | None = None,
        **settings: Any,
    ) -> None:
        options = AnalysisSettings(**settings)
        self.settings = options.as_dict()
        self._stated = options.stated_roles()
        self._window_ns = int(options.window_s * NS_PER_SECOND)
        if retain_s is not None and retain_s < 0:
            retain_s = 2 * max(options.tcp_idle_timeout_s, options.udp_idle_timeout_s)
        self._retain_ns = None if retain_s is None else int(retain_s * NS_PER_SECOND)
        self._relative_accuracy = relative_accuracy
        self._role_sample = role_sample
        self._clock = clock
        self._tallies = Tallies.sketched(relative_accuracy)
        self._flows = FlowState(options.stickiness, options.tcp_idle_timeout_s, options.udp_idle_timeout_s, relative_accuracy)
        self._finished: list[pd.DataFrame] = []  # rows of flows retired from the state
        self._held: pd.DataFrame | None = None  # Geneve packets whose pairing is not settled yet
        self._roles: Roles | None = None
        self._bounds: dict[str, list] = {}  # file name -> [first ts, last ts, ended]
        self._captures: dict[str, dict] = {}
        self._finished_all = False
        self._report: Report | None = None

    @property
    def held_packets(self) -> int:
        """Geneve packets waiting for their pairing to settle (at most about one window's worth)."""
        return 0 if self._held is None else len(self._held)

    @property
    def open_flows(self) -> int:
        return len(self._flows)

    def add(self, packets: pd.DataFrame, ended: Iterable[str] = ()) -> None:
        """Take the next packet table (time order); ``ended`` names captures that will bring no more packets."""
        if self._finished_all:
            raise ValueError("the analysis is finished; start another")
        for capture in packets.attrs.get("captures", []):
            self._captures[capture["path"]] = capture
        self._report = None
        if len(packets):
            self._tallies.packets.add(packets)
            self._note_bounds(packets)
            geneve = packets[((packets["kind"] == "geneve") & (packets["outer_ip_version"] > 0)).to_numpy()]
            if len(geneve):
                self._held = geneve if self._held is None else _concat(self._held, geneve)
        for name in ended:
            if name in self._bounds:
                self._bounds[name][2] = True
        if self._roles is None and self.held_packets >= self._role_sample:
            self._find_roles()
        if self._roles is not None:
            self._settle(final=False)

    def report(self) -> Report:
        """The Report of every packet whose pairing is settled (all of them once ``finish``ed).

        Before the roles are settled (the first ``ROLE_SAMPLE`` Geneve packets) the report is provisional:
        the held packets are analysed with the roles they show so far, and nothing is kept of it.
        """
        if self._clock is not None and self._held is not None and not self._finished_all:
            # Time has passed on the wire even when no packet has: settle what a window of silence settled.
            if self._roles is not None:
                self._settle(final=False)
            else:
                self._report = None  # a provisional report is made afresh each time
        if self._report is None:
            if self._roles is None:
                self._report = self._provisional_report()
            else:
                self._report = self._assemble(self._flows, self._tallies, self._roles)
        return self._report

    def _horizon_ns(self) -> int:
        """Legs before this time can pair with nothing still to come: a window before the newest packet, or the clock."""
        newest = int(self._held["ts_ns"].max())
        if self._clock is not None:
            now = self._clock()
            if 0 < now - newest < CLOCK_TRUST_NS:  # a capture replayed from a file keeps its own old times
                newest = now
        return newest - self._window_ns

    def _assemble(self, state: FlowState, tallies: Tallies, roles: Roles) -> Report:
        names = (roles.appliance_names(), roles.gwlb_node_names())
        open_rows = state.flows(*names)
        parts = [*self._finished, open_rows] if state is self._flows else [open_rows]
        flows = pd.concat(parts, ignore_index=True) if len(parts) > 1 else open_rows.reset_index(drop=True)
        flows.index.name = "flow"
        handshakes = flows[list(HANDSHAKE_COLUMNS)]
        flows = flows.drop(columns=list(HANDSHAKE_COLUMNS))
        copy = Tallies.sketched(tallies.legs.latency.relative_accuracy)
        copy.merge(tallies)  # assembling must not change the running totals
        copy.captures = list(self._captures.values())
        return assemble_report(flows, handshakes, copy, roles, self.settings)

    def _provisional_report(self) -> Report:
        roles = self._infer_roles()
        state = FlowState(self.settings["stickiness"], self.settings["tcp_idle_timeout_s"], self.settings["udp_idle_timeout_s"], self._relative_accuracy)
        tallies = Tallies.sketched(self._relative_accuracy)
        tallies.merge(self._tallies)
        if self._held is not None:
            legs = build_legs(self._held, roles, self.settings["window_s"], self._capture_bounds())
            cut = None if self._finished_all else _cut(legs, self._horizon_ns())
            settled = _rebase(legs, np.ones(len(legs), bool) if cut is None else legs["ts_ns"].to_numpy() < cut)
            tallies.legs.add(settled)
            state.update(settled)
        return self._assemble(state, tallies, roles)

    def finish(self) -> Report:
        """Settle every packet still waiting (the capture is over) and return the final Report."""
        if not self._finished_all:
            for bounds in self._bounds.values():
                bounds[2] = True
            if self._roles is None:
                self._find_roles()
            self._finished_all = True
            self._settle(final=True)
            self._report = None
        return self.report()

    def _note_bounds(self, packets: pd.DataFrame) -> None:
        ts = packets["ts_ns"].to_numpy()
        codes = packets["file"].cat.codes.to_numpy()
        for code in np.unique(codes):
            name = str(packets["file"].cat.categories[code])
            mine = ts[codes == code]
            bounds = self._bounds.setdefault(name, [int(mine.min()), int(mine.max()), False])
            bounds[0], bounds[1] = min(bounds[0], int(mine.min())), max(bounds[1], int(mine.max()))

    def _find_roles(self) -> None:
        self._roles = self._infer_roles()

    def _infer_roles(self) -> Roles:
        return infer_roles(self._held if self._held is not None else empty_packets(), *self._stated)

    def _capture_bounds(self) -> dict[str, tuple[int, int | None]]:
        return {name: (first, last if ended else None) for name, (first, last, ended) in self._bounds.items()}

    def _extend_roles(self, legs: pd.DataFrame) -> bool:
        """Give roles to addresses first seen after the roles were settled (an appliance added later); True when any."""
        unknown = legs["direction"].to_numpy() == Direction.UNKNOWN
        if not unknown.any():
            return False
        rows = self._held.iloc[legs["packet"].to_numpy()[unknown]]
        roles = self._roles
        found = infer_roles(rows, roles.appliances, roles.gwlb_nodes) if roles.appliances or roles.gwlb_nodes else infer_roles(rows)
        nodes = tuple(a for a in found.gwlb_nodes if a not in roles.gwlb_nodes and a not in roles.appliances)
        appliances = tuple(a for a in found.appliances if a not in roles.appliances and a not in roles.gwlb_nodes and a not in nodes)
        if not nodes and not appliances:
            return False
        # Appended, never inserted: the flow state and tallies hold roles by position.
        self._roles = Roles(roles.gwlb_nodes + nodes, roles.appliances + appliances, roles.method, roles.evidence)
        return True

    def _settle(self, final: bool) -> None:
        """Pair the held packets; fold the legs that can no longer change into the flow state and tallies."""
        held = self._held
        if held is None or len(held) == 0:
            return
        legs = build_legs(held, self._roles, self.settings["window_s"], self._capture_bounds())
        if self._extend_roles(legs):
            legs = build_legs(held, self._roles, self.settings["window_s"], self._capture_bounds())
        cut = None if final else _cut(legs, self._horizon_ns())
        done = np.ones(len(legs), bool) if cut is None else legs["ts_ns"].to_numpy() < cut
        if not done.any():
            return
        settled = _rebase(legs, done)
        self._report = None
        self._tallies.legs.add(settled)
        self._flows.update(settled)
        self._held = held.iloc[legs["packet"].to_numpy()[~done]].reset_index(drop=True) if not done.all() else None
        if self._retain_ns is not None and cut is not None:
            retired = self._flows.retire(cut - self._retain_ns, self._roles.appliance_names(), self._roles.gwlb_node_names())
            if len(retired):
                self._finished.append(retired)


def _cut(legs: pd.DataFrame, horizon_ns: int) -> int:
    """A time before which every leg's pairing is settled and no pair reaches across.

    Legs older than the last window can pair with nothing still to come; the cut then moves back before
    any leg whose partner lies past it, until no pair straddles it.
    """
    ts = legs["ts_ns"].to_numpy()
    peer = legs["peer"].to_numpy()
    cut = horizon_ns
    while True:
        after = (ts >= cut) & (peer != NO_PEER)
        partners = ts[peer[after]]
        earliest = int(partners.min()) if len(partners) else cut
        if earliest >= cut:
            return cut
        cut = earliest


def _rebase(legs: pd.DataFrame, rows: np.ndarray) -> pd.DataFrame:
    """The legs at ``rows`` (a mask closed under pairing) as a table of their own: ``peer`` re-based to its rows."""
    positions = np.flatnonzero(rows)
    out = legs.iloc[positions].reset_index(drop=True)
    if len(positions) == len(legs):
        return out
    new_position = np.full(len(legs), NO_PEER, np.int64)
    new_position[positions] = np.arange(len(positions))
    peer = out["peer"].to_numpy()
    out["peer"] = np.where(peer != NO_PEER, new_position[np.maximum(peer, 0)], NO_PEER)
    return out


def _concat(first: pd.DataFrame, second: pd.DataFrame) -> pd.DataFrame:
    """Two packet tables as one, in time order."""
    out = concat_packets([first, second])
    ts = out["ts_ns"].to_numpy()
    if len(ts) > 1 and (ts[1:] < ts[:-1]).any():
        out = out.take(np.argsort(ts, kind="stable")).reset_index(drop=True)
    return out


def analyze_stream(
    captures: PathLike | Iterable[PathLike], *, batch_bytes: int = 64 << 20, **settings
) -> Report:
    """``gwcheck.analyze`` in bounded memory: captures are read as streams, ``batch_bytes`` at a time, merged in time order.

    ``settings`` are those of ``IncrementalAnalysis``.  For captures larger than memory.
    """
    paths = [os.fspath(captures)] if isinstance(captures, (str, os.PathLike)) else [os.fspath(p) for p in captures]
    analysis = IncrementalAnalysis(**settings)
    for table, ended in MergedStreams(paths, settings.get("port", GENEVE_PORT), batch_bytes):
        analysis.add(table, ended)
    return analysis.finish()
