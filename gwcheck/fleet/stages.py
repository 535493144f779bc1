"""The tasks of an analysis on Dask: plain functions of files and settings that workers run, sharing only the work directory.

Stage 1, one task per capture (a pcap cannot be split safely): ``decode_capture`` reads it in batches,
counts its packets and role votes, and writes its packet table to ``packets/file-NNNNN.parquet``; once the
roles are known, ``pair_capture`` pairs its legs inside the file (one appliance, one clock) and writes them
to ``legs/file-NNNNN.parquet``, each leg in the bucket of its flow (a hash of the flow key; a return leg in
the bucket of its ingress), one row group per bucket.  Stage 2, ``bucket_flows``, reads one bucket from
every file, so that every appliance's view of a flow meets, and builds those flows as ``gwcheck.analyze``
builds them.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .._version import __version__
from ..analysis.latency import handshake_rtts
from ..analysis.tallies import Tallies
from ..errors import CaptureError
from ..tables.flows import FLOW_KEY, TRANSIT_COLUMNS, build_flows, build_transits
from ..tables.grouping import hash_columns
from ..tables.legs import CARRIED, NO_PEER, Pairing, build_legs
from ..tables.packets import PacketStream, empty_packets
from ..tables.roles import VOTE_COLUMNS, RoleVotes, Roles, role_votes
from .inputs import is_url, open_capture

PACKETS_DIR = "packets"
LEGS_DIR = "legs"
MANIFEST = "manifest.json"
NO_BUCKET = -1  # legs of no flow (their direction is unknown): never read by stage 2
LEG_ID_SHIFT = 32  # a leg's id: its file's index above bit 32, its row in the file's legs below
#: Packet columns ``build_legs`` reads.
LEG_SOURCE_COLUMNS = ("kind", "outer_ip_version", "outer_src_hi", "outer_src_lo", "outer_dst_hi", "outer_dst_lo", *CARRIED)
#: Leg columns stage 2 reads: what transits, flows and handshake times are built from, and the legs' ids.
BUCKET_COLUMNS = tuple(dict.fromkeys((*TRANSIT_COLUMNS, "latency_ns", "option_diff", "leg_id", "peer_leg_id")))
KEY_COLUMNS = tuple(f"_key_{name}" for name in FLOW_KEY)  # a bucket's flows carry their key to be ordered by
HANDSHAKE_COLUMNS = ("server_rtt_us", "client_rtt_us")
HAS_HANDSHAKE = "_has_handshake"  # the flow has a row in handshake_rtts
PARQUET_COMPRESSION = "zstd"


@dataclass(frozen=True)
class Capture:
    """One capture of the set: where workers open it and what tables call it."""

    index: int
    source: str  # an absolute path or a URL
    path: str  # as the user named it (the report's name for it)
    name: str  # the ``file`` category of its rows: ``path``, or ``path#k`` for a repeat, as read_packets names files


@dataclass(frozen=True)
class WorkDir:
    """The work directory every worker reads and writes: a local path (shared by the workers) or an fsspec URL."""

    root: str

    def filesystem(self):
        from fsspec.core import url_to_fs

        return url_to_fs(self.root)[0]

    def path(self, directory: str, index: int | None = None) -> str:
        parts = [self.root.rstrip("/"), directory] + ([] if index is None else [f"file-{index:05d}.parquet"])
        return "/".join(parts)

    def prepare(self, captures: list[Capture]) -> None:
        """Make the directories, remove the Parquet files of an earlier run and describe the captures in ``manifest.json``."""
        fs = self.filesystem()
        for directory in (PACKETS_DIR, LEGS_DIR):
            fs.makedirs(self.path(directory), exist_ok=True)
            old = fs.glob(self.path(directory) + "/file-*.parquet")
            if old:
                fs.rm(old)
        with fs.open(self.path(MANIFEST), "w") as handle:
            json.dump({"gwcheck_version": __version__, "files": [{"file": c.index, "path": c.path, "source": c.source} for c in captures]}, handle, indent=1)


@contextlib.contextmanager
def _written(work: WorkDir, path: str) -> Iterator[object]:
    """A binary file to write ``path`` through; on a local disk it appears whole (written aside, then renamed)."""
    fs = work.filesystem()
    local = not is_url(work.root) or work.root.startswith("file://")
    target = f"{path}.{uuid.uuid4().hex[:8]}.tmp" if local else path
    try:
        with fs.open(target, "wb") as handle:
            yield handle
    except BaseException:
        with contextlib.suppress(OSError):
            fs.rm(target)
        raise
    if local:
        fs.mv(target, path)


def worker_facts(root: str | None) -> tuple[str, bool]:
    """On a worker: the gwcheck version it runs, and whether it sees the local work directory ``root`` (True for URLs)."""
    return __version__, root is None or os.path.isdir(root)


@dataclass
class Decoded:
    """What ``decode_capture`` learnt from one capture."""

    index: int
    tallies: Tallies = field(default_factory=Tallies.sketched)
    votes: RoleVotes = field(default_factory=RoleVotes)
    in_order: bool = True  # no timestamp earlier than the one before it
    error: dict | None = None  # the capture's description when it cannot be read


def unreadable(capture: Capture, reason: str, offset: int = 0) -> dict:
    """The description of a capture that cannot be read, as ``read_packets`` describes files, with its ``error``."""
    return {"path": capture.path, "format": "unreadable", "packets": 0, "interfaces": [], "damage": {"offset": offset, "reason": reason}, "error": reason}


def decode_capture(capture: Capture, work: WorkDir, port: int, batch_bytes: int, by_time: bool) -> Decoded:
    """Stage 1a: read a capture ``batch_bytes`` at a time; count its packets and role votes; write its packet table.

    ``by_time``: the capture is one of several, which ``gwcheck.analyze`` merges in time order (a capture whose
    timestamps go back is then taken in time order).  A capture that cannot be read gives its ``error``.
    """
    result = Decoded(capture.index)
    voters = []
    last_ts = None
    try:
        with warnings.catch_warnings(), open_capture(capture.source) as stream, _written(work, work.path(PACKETS_DIR, capture.index)) as handle:
            warnings.simplefilter("ignore")  # damage is in the description; the client warns of it
            writer = None
            for table in PacketStream(stream, port, batch_bytes, capture.name):
                captures, table.attrs = table.attrs["captures"], {}  # pandas copies attrs into every frame derived from the table
                result.tallies.packets.add(table)
                ts = table["ts_ns"].to_numpy()
                if len(ts):
                    result.in_order &= bool((last_ts is None or ts[0] >= last_ts) and (np.diff(ts) >= 0).all())
                    last_ts = int(ts[-1])
                voters.append(table.loc[(table["kind"] == "geneve").to_numpy(), list(VOTE_COLUMNS)])
                writer = _write(writer, handle, table)
            writer.close()
    except CaptureError as exc:
        result.error = unreadable(capture, exc.reason, exc.offset)
        return result
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        result.error = unreadable(capture, exc.strerror or str(exc))
        return result
    result.tallies.captures = [{**description, "path": capture.path} for description in captures]
    geneve = pd.concat(voters, ignore_index=True)
    result.votes = role_votes(_in_time_order(geneve)[0] if by_time and not result.in_order else geneve)
    return result


def count_votes(capture: Capture, in_order: bool, work: WorkDir, by_time: bool) -> RoleVotes:
    """The role votes of every Geneve packet of a decoded capture (when the sampled votes left an address without a role)."""
    packets = _read(work, work.path(PACKETS_DIR, capture.index), VOTE_COLUMNS)
    return role_votes(_in_time_order(packets)[0] if by_time and not in_order else packets, every_packet=True)


@dataclass
class Paired:
    """What ``pair_capture`` counted of one capture's legs."""

    index: int
    tallies: Tallies
    legs: int


def pair_capture(capture: Capture, in_order: bool, work: WorkDir, roles: Roles, window_s: float, stickiness: str, buckets: int, by_time: bool) -> Paired:
    """Stage 1b: pair the legs of a decoded capture, count them, and write them with their flow's bucket."""
    packets = _read(work, work.path(PACKETS_DIR, capture.index), LEG_SOURCE_COLUMNS)
    order = None
    if by_time and not in_order:
        packets, order = _in_time_order(packets)
    legs = build_legs(packets, roles, window_s)
    del packets
    if order is not None:
        legs["packet"] = order[legs["packet"].to_numpy()]  # the row in the file's packet table
    legs["file_code"] = capture.index
    tallies = Tallies.sketched()
    tallies.legs.add(legs)
    base = np.int64(capture.index) << LEG_ID_SHIFT
    peer = legs["peer"].to_numpy()
    legs["leg_id"] = base + np.arange(len(legs), dtype=np.int64)
    legs["peer_leg_id"] = np.where(peer != NO_PEER, base + peer, NO_PEER)
    bucket = legs["bucket"] = flow_buckets(legs, stickiness, buckets)
    order = np.argsort(bucket, kind="stable")
    bounds = np.flatnonzero(np.r_[True, bucket[order][1:] != bucket[order][:-1], True]) if len(legs) else np.array([0, 0])
    with _written(work, work.path(LEGS_DIR, capture.index)) as handle:
        writer = None
        for start, stop in zip(bounds[:-1], bounds[1:]):
            writer = _write(writer, handle, legs.take(order[start:stop]))  # one row group per bucket
        writer.close()
    return Paired(capture.index, tallies, len(legs))


def flow_buckets(legs: pd.DataFrame, stickiness: str, buckets: int) -> np.ndarray:
    """Per leg, the bucket of its flow (a hash of the flow key, the same in every file), or NO_BUCKET."""
    transits = build_transits(legs, stickiness)
    leg_flow = legs.pop("flow").to_numpy()
    if len(transits) == 0:
        return np.full(len(legs), NO_BUCKET, np.int32)
    firsts = _first_rows(transits["flow"].to_numpy())
    of_flow = (hash_columns([transits[name].to_numpy()[firsts] for name in FLOW_KEY]) % np.uint64(buckets)).astype(np.int32)
    return np.where(leg_flow >= 0, of_flow[np.maximum(leg_flow, 0)], NO_BUCKET).astype(np.int32)


def bucket_flows(bucket: int, indexes: list[int], work: WorkDir, roles: Roles, settings: dict, by_time: bool) -> pd.DataFrame | None:
    """Stage 2: the flows of one bucket from the legs every capture put in it (``flow_rows``); None when it is empty."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    fs = work.filesystem()
    tables = [
        pq.read_table(work.path(LEGS_DIR, i), columns=list(BUCKET_COLUMNS), filters=[("bucket", "==", bucket)], filesystem=fs)
        for i in indexes
    ]
    legs = pa.concat_tables(tables).to_pandas()
    del tables
    if len(legs) == 0:
        return None
    legs["pairing"] = legs["pairing"].cat.set_categories([p.label for p in Pairing])
    # The order of gwcheck.analyze's legs: several files are merged in time order, ties in file order.
    ids = legs["leg_id"].to_numpy()
    order = np.lexsort((ids, legs["ts_ns"].to_numpy() if by_time else np.zeros(len(ids), np.int64)))
    legs = legs.take(order).reset_index(drop=True)
    ids = ids[order]
    by_id = np.argsort(ids)
    peers = legs["peer_leg_id"].to_numpy()
    found = by_id[np.minimum(np.searchsorted(ids, peers, sorter=by_id), len(ids) - 1)]
    legs["peer"] = np.where(peers != NO_PEER, found, NO_PEER)  # every peer is in the bucket: a return leg follows its ingress
    return flow_rows(legs, roles, settings)


def flow_rows(legs: pd.DataFrame, roles: Roles, settings: dict) -> pd.DataFrame:
    """The raw flow table of ``legs`` (``build_flows``), with each flow's handshake times and key (``KEY_COLUMNS``)."""
    transits = build_transits(legs, settings["stickiness"])
    flows = build_flows(
        transits, legs, roles.appliance_names(), roles.gwlb_node_names(), settings["tcp_idle_timeout_s"], settings["udp_idle_timeout_s"]
    )
    handshakes = handshake_rtts(transits)
    firsts = _first_rows(transits["flow"].to_numpy())
    for name, column in zip(FLOW_KEY, KEY_COLUMNS):
        flows[column] = transits[name].to_numpy()[firsts]
    flows[HAS_HANDSHAKE] = flows.index.isin(handshakes.index)
    return flows.join(handshakes)


def empty_flow_rows(roles: Roles, settings: dict) -> pd.DataFrame:
    """``flow_rows`` of no legs: the columns and dtypes of a flow table with no row."""
    return flow_rows(build_legs(empty_packets(), roles, settings["window_s"]), roles, settings)


def merge_flow_rows(parts: list[pd.DataFrame]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The flow table and handshake times of the buckets' ``flow_rows``, flows in ``gwcheck.analyze``'s order (by flow key).

    Empties ``parts``, so that the buckets' tables are freed as soon as they are joined.
    """
    frame = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    parts.clear()
    frame = frame.take(np.lexsort([frame[c].to_numpy() for c in reversed(KEY_COLUMNS)])).reset_index(drop=True)
    frame.index.name = "flow"
    handshakes = frame.loc[frame[HAS_HANDSHAKE].to_numpy(), list(HANDSHAKE_COLUMNS)]
    return frame.drop(columns=[*KEY_COLUMNS, HAS_HANDSHAKE, *HANDSHAKE_COLUMNS]), handshakes


def _first_rows(flow: np.ndarray) -> np.ndarray:
    """The first row of each flow in rows ordered by flow."""
    return np.flatnonzero(np.r_[True, flow[1:] != flow[:-1]]) if len(flow) else np.zeros(0, np.int64)


def _in_time_order(table: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    order = np.argsort(table["ts_ns"].to_numpy(), kind="stable")
    return table.take(order).reset_index(drop=True), order


def _read(work: WorkDir, path: str, columns: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    return pq.read_table(path, columns=list(columns), filesystem=work.filesystem()).to_pandas()


def _write(writer, handle, table: pd.DataFrame):
    """Write ``table`` as one row group through ``writer`` (made on the first table)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if writer is None:  # dictionaries for the categorical columns only: cheaper to write, and smaller, for the rest
        categorical = [name for name, dtype in table.dtypes.items() if isinstance(dtype, pd.CategoricalDtype)]
        writer = pq.ParquetWriter(handle, arrow.schema, compression=PARQUET_COMPRESSION, use_dictionary=categorical)
    writer.write_table(arrow, row_group_size=max(len(table), 1))
    return writer
