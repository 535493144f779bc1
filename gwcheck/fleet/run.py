"""``analyze_on_dask``: ``gwcheck.analyze`` run on a Dask cluster, for capture sets no single machine holds."""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import tempfile
import uuid
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from ..analysis.tallies import Tallies
from ..errors import CaptureDamageWarning, CaptureSkippedWarning, ClusterError, ConfigError, DaskUnavailableError
from ..pipeline import AnalysisSettings, assemble_report
from ..report.model import Report
from ..tables.roles import RoleVotes, roles_from_votes
from . import stages
from .inputs import expand_captures, is_url

LOCAL = "local"  # a LocalCluster of one worker per core; "local:N" for N workers
DEFAULT_BATCH_BYTES = 16 << 20  # capture bytes a worker decodes at a time (as --stream reads them; larger batches read slower)
DEFAULT_BUCKET_LEGS = 1_000_000  # legs per stage-2 bucket, on average
DEFAULT_RETRIES = 2  # times a failed task is run again (a task whose worker died is run again by Dask itself)
WORKER_WAIT_S = 60.0  # for a first worker to join the scheduler
CONNECT_TIMEOUT_S = 10.0
INSTALL = "pip install 'gwcheck[dask]'"


def analyze_on_dask(
    captures: str | os.PathLike | Iterable[str | os.PathLike],
    dask: object = LOCAL,
    workdir: str | os.PathLike | None = None,
    *,
    batch_bytes: int = DEFAULT_BATCH_BYTES,
    bucket_legs: int = DEFAULT_BUCKET_LEGS,
    retries: int = DEFAULT_RETRIES,
    **settings: Any,
) -> Report:
    """Analyse captures on Dask and return the Report ``gwcheck.analyze`` gives for them.

    ``captures``: files, directories, globs or fsspec URLs (``s3://bucket/prefix/``).  ``dask``: a
    ``distributed.Client``, a scheduler address (``tcp://host:8786``), or ``"local"`` / ``"local:N"`` for a
    LocalCluster of N workers.  ``workdir`` receives the Parquet packet and leg tables (a temporary
    directory, removed after, when None; with a cluster of several machines, a directory every worker
    reaches: a shared mount or a URL).  Flows, verdicts and counts equal ``analyze``'s; latency per
    appliance, GWLB node and endpoint comes from sketches (``latency_us.sketch_relative_accuracy``).  A
    capture that cannot be read is named in the report's findings and files, and the others are analysed.
    ``settings`` are ``analyze``'s (``AnalysisSettings``); ``batch_bytes`` bounds what a worker decodes at a time and
    ``bucket_legs`` the legs it builds flows from at a time.
    """
    _require_dask()
    options = AnalysisSettings(**settings)
    stated = options.stated_roles()
    settings = options.as_dict()
    paths = expand_captures(captures)
    files = [
        stages.Capture(k, path if is_url(path) else os.path.abspath(path), path, path if path not in paths[:k] else f"{path}#{k}")
        for k, path in enumerate(paths)
    ]
    with _client(dask) as client, _work_directory(workdir) as work:
        work.prepare(files)
        workers = _check_workers(client, work)
        return _Run(client, work, files, settings, retries).report(stated, batch_bytes, workers, bucket_legs)


class _Run:
    """One analysis on a cluster: its tasks (named so that no run reuses another's results) and the captures that failed."""

    def __init__(self, client, work: stages.WorkDir, files: list[stages.Capture], settings: dict, retries: int) -> None:
        self.client, self.work, self.files, self.settings, self.retries = client, work, files, settings, retries
        self.token = uuid.uuid4().hex[:12]
        self.by_time = len(files) > 1  # analyze merges several files in time order
        self.failed: dict[int, dict] = {}  # capture index -> its description, with the error

    def map(self, stage: str, function, items: list, *columns: list, **arguments) -> list:
        """Run ``function`` on each item (and the item's value in each of ``columns``); each result, or the exception its task ended with."""
        keys = [f"gwcheck-{stage}-{self.token}-{k}" for k in range(len(items))]
        futures = self.client.map(function, items, *columns, key=keys, retries=self.retries, **arguments)
        results = []
        for future in futures:
            try:
                results.append(future.result())
            except Exception as exc:  # the task failed every retry, or its workers kept dying
                if self.client.status != "running":
                    raise ClusterError(f"lost the Dask cluster: {exc}") from exc
                results.append(exc)
            future.release()
        return results

    def per_capture(self, stage: str, function, captures: list[stages.Capture], *columns: list, **arguments) -> dict[int, object]:
        """``map`` over captures: the results by capture index; a capture whose task failed joins ``failed``."""
        done = {}
        for capture, result in zip(captures, self.map(stage, function, captures, *columns, **arguments)):
            if isinstance(result, Exception):
                self.failed[capture.index] = stages.unreadable(capture, f"{type(result).__name__}: {result}")
            elif getattr(result, "error", None) is not None:
                self.failed[capture.index] = result.error
            else:
                done[capture.index] = result
        return done

    def readable(self) -> list[stages.Capture]:
        return [c for c in self.files if c.index not in self.failed]

    def report(self, stated: tuple, batch_bytes: int, workers: int, bucket_legs: int) -> Report:
        settings, work, by_time = self.settings, self.work, self.by_time
        decoded = self.per_capture("decode", stages.decode_capture, self.files, work=work, port=settings["port"], batch_bytes=batch_bytes, by_time=by_time)
        roles = roles_from_votes(_merged(decoded[c.index].votes for c in self.readable()), *stated)
        if roles is None:  # the first packets of each file left an address without a role: count every packet's votes
            files = self.readable()
            votes = self.per_capture("votes", stages.count_votes, files, [decoded[c.index].in_order for c in files], work=work, by_time=by_time)
            roles = roles_from_votes(_merged(votes[c.index] for c in self.readable()), *stated)
        files = self.readable()
        buckets = max(workers, math.ceil(sum(decoded[c.index].votes.geneve for c in files) / bucket_legs), 1)
        paired = self.per_capture(
            "pair", stages.pair_capture, files, [decoded[c.index].in_order for c in files], work=work, roles=roles,
            window_s=settings["window_s"], stickiness=settings["stickiness"], buckets=buckets, by_time=by_time,
        )
        indexes = [c.index for c in self.readable()]
        parts = []
        for bucket, result in enumerate(self.map("flows", stages.bucket_flows, list(range(buckets)), indexes=indexes, work=work, roles=roles, settings=settings, by_time=by_time)):
            if isinstance(result, Exception):
                raise ClusterError(f"building the flows of bucket {bucket} of {buckets} failed: {type(result).__name__}: {result}") from result
            if result is not None:
                parts.append(result)
        flows, handshakes = stages.merge_flow_rows(parts or [stages.empty_flow_rows(roles, settings)])
        return assemble_report(flows, handshakes, self.tallies(decoded, paired), roles, settings)

    def tallies(self, decoded: dict[int, stages.Decoded], paired: dict[int, stages.Paired]) -> Tallies:
        """The tallies of every capture analysed, in file order, warning of those damaged or left out."""
        tallies = Tallies.sketched()
        for capture in self.files:
            if capture.index in self.failed:
                tallies.captures.append(self.failed[capture.index])
                warnings.warn(CaptureSkippedWarning(capture.path, self.failed[capture.index]["error"]), stacklevel=4)
                continue
            tallies.merge(decoded[capture.index].tallies)
            tallies.merge(paired[capture.index].tallies)
            for description in decoded[capture.index].tallies.captures:
                if description.get("damage"):
                    damage = description["damage"]
                    warnings.warn(CaptureDamageWarning(capture.path, damage["offset"], damage["reason"], description["packets"]), stacklevel=4)
        return tallies


def _merged(votes: Iterable[RoleVotes]) -> RoleVotes:
    total = RoleVotes()
    for part in votes:
        total.merge(part)
    return total


def _require_dask() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise DaskUnavailableError(f"--dask needs Dask, which is not installed: {INSTALL}") from None


@contextlib.contextmanager
def _client(dask: object) -> Iterator[object]:
    """A ``distributed.Client`` for ``dask``: the one given, a LocalCluster's (closed after), or a scheduler's (closed after)."""
    from distributed import Client, LocalCluster

    if isinstance(dask, Client):
        yield dask
        return
    text = str(dask)
    if text == LOCAL or text.startswith(LOCAL + ":"):
        count = text.partition(":")[2]
        if count and not (count.isdigit() and int(count) > 0):
            raise ConfigError(f"--dask {text}: expected local or local:N with N workers, e.g. local:4")
        with LocalCluster(n_workers=int(count or os.cpu_count() or 1), threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
            with Client(cluster) as client:
                yield client
        return
    if "://" not in text:
        raise ConfigError(f"--dask {text}: expected local, local:N or a scheduler address such as tcp://scheduler:8786")
    try:
        client = Client(text, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {text}: {exc}") from None
    with client:
        yield client


@contextlib.contextmanager
def _work_directory(workdir: str | os.PathLike | None) -> Iterator[stages.WorkDir]:
    if workdir is not None:
        text = os.fspath(workdir)
        yield stages.WorkDir(text if is_url(text) else os.path.abspath(text))
        return
    root = tempfile.mkdtemp(prefix="gwcheck-dask-")
    try:
        yield stages.WorkDir(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _check_workers(client, work: stages.WorkDir) -> int:
    """The number of workers, once there is one; ClusterError when they cannot run gwcheck or see the work directory."""
    from .._version import __version__

    try:
        client.wait_for_workers(1, timeout=WORKER_WAIT_S)
    except TimeoutError:
        raise ClusterError(f"the Dask cluster has had no worker for {WORKER_WAIT_S:.0f} s") from None
    try:
        facts = client.run(stages.worker_facts, None if is_url(work.root) else work.root)
    except Exception as exc:
        raise ClusterError(f"the Dask workers cannot run gwcheck ({type(exc).__name__}: {exc}): {INSTALL} on every worker") from None
    for address, (version, sees) in facts.items():
        if version != __version__:
            raise ClusterError(f"worker {address} runs gwcheck {version}, this is gwcheck {__version__}: install the same version everywhere")
        if not sees:
            raise ClusterError(f"worker {address} cannot see the work directory {work.root}: give --workdir a directory every worker reaches (a shared mount, or a URL such as s3://bucket/prefix)")
    return len(facts)
