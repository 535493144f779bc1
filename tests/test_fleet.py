"""gwcheck analyze --dask: the analysis on a Dask cluster gives the in-process Report, survives a dead worker, names
a file it cannot read, and keeps each worker's memory to what one file needs.

One LocalCluster of two worker processes serves the module; captures are simulated, so the truth is known.
"""

from __future__ import annotations

import io
import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")

import cloudpickle  # noqa: E402 - a dependency of distributed
import dask  # noqa: E402

import gwcheck  # noqa: E402
from gwcheck.cli import main  # noqa: E402
from gwcheck.errors import CaptureSkippedWarning, ConfigError  # noqa: E402
from gwcheck.fleet import analyze_on_dask, expand_captures  # noqa: E402
from gwcheck.simulate.scenario import Scenario  # noqa: E402
from gwcheck.simulate.simulator import simulate  # noqa: E402
from gwcheck.sketch import DEFAULT_RELATIVE_ACCURACY  # noqa: E402
from test_analysis import FAULT_KINDS, FAULTY, reasons_by_kind  # noqa: E402

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the worker plugin below travels to the workers by value

SKEWED = dict(split=True, clock_offsets_ms=[0.0, 700.0, -900.0])
SCENARIOS = {
    "split-skewed-pcapng": (dict(seed=7, format="pcapng", **SKEWED, **FAULTY), {}),
    "split-skewed-vlan-pcap-ns": (dict(seed=8, format="pcap-ns", link="vlan", **SKEWED, **FAULTY), {}),
    "split-skewed-sll2-routing-3-tuple-stated": (
        dict(seed=9, link="sll2", appliance_mode="route", **SKEWED, **FAULTY), {"stickiness": "3-tuple", "appliances": ["10.0.0.100"]}
    ),
}
BUCKET_LEGS = 1_000  # a few buckets per scenario, so that the flows of each bucket come from every file
WORKER_MEMORY_LIMIT = 600 * 2**20  # an idle worker holds a few hundred MB (Python, pandas, pyarrow, distributed)
PERCENTILES = {"p50", "p90", "p99", "p99_9", "latency_p50_us", "latency_p99_us"}  # keys of latency percentiles in the JSON report


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            yield client


def simulated(directory: Path, **settings) -> tuple[list[str], dict]:
    """The captures the simulator writes for ``settings`` in ``directory``, and their truth."""
    directory.mkdir(parents=True, exist_ok=True)
    truth = simulate(Scenario(**settings), directory / "capture.pcap")
    return [str(directory / f["path"]) for f in truth["files"]], truth


def assert_close(expected: object, got: object, where: str = "report") -> None:
    """Equal, except latency percentiles, which a sketch gives within its relative accuracy."""
    if isinstance(expected, dict):
        assert set(expected) == set(got), where
        for key in expected:
            if key in PERCENTILES and expected[key] is not None:
                assert got[key] == pytest.approx(expected[key], rel=DEFAULT_RELATIVE_ACCURACY), f"{where}.{key}"
            else:
                assert_close(expected[key], got[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert len(expected) == len(got), where
        for k, (a, b) in enumerate(zip(expected, got)):
            assert_close(a, b, f"{where}[{k}]")
    else:
        assert expected == got, where


def assert_same_report(expected: gwcheck.Report, got: gwcheck.Report) -> None:
    pd.testing.assert_frame_equal(expected.flows, got.flows)  # per-flow latency too: every leg of a flow meets in one bucket
    pd.testing.assert_frame_equal(expected.handshakes, got.handshakes)
    pd.testing.assert_frame_equal(expected.health_checks, got.health_checks)
    assert [f.__dict__ for f in expected.findings] == [f.__dict__ for f in got.findings]
    document = got.to_dict()
    assert document["latency_us"].pop("sketch_relative_accuracy") == DEFAULT_RELATIVE_ACCURACY  # stated in the report
    assert_close(expected.to_dict(), document)
    over_time = expected.latency_over_time.merge(got.latency_over_time, on=["appliance", "second"], suffixes=("", "_got"))
    assert len(over_time) == len(expected.latency_over_time) == len(got.latency_over_time)
    assert (over_time["count"] == over_time["count_got"]).all()
    for column in ("p50_us", "p99_us"):
        np.testing.assert_allclose(over_time[f"{column}_got"], over_time[column], rtol=DEFAULT_RELATIVE_ACCURACY)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_same_report_as_in_process(tmp_path: Path, client, scenario: str) -> None:
    settings, analysis = SCENARIOS[scenario]
    paths, truth = simulated(tmp_path / "captures", **settings)
    expected = gwcheck.analyze(paths, **analysis)
    got = analyze_on_dask(paths, client, tmp_path / "work", bucket_legs=BUCKET_LEGS, **analysis)
    assert_same_report(expected, got)
    if not analysis:
        found = reasons_by_kind(got)
        assert all(found[kind] == set(truth["faults"].get(kind, [])) for kind in FAULT_KINDS)
    assert sorted(os.listdir(tmp_path / "work" / "legs")) == [f"file-{k:05d}.parquet" for k in range(len(paths))]
    legs = pd.read_parquet(tmp_path / "work" / "legs")
    assert len(legs) == got.pairing["legs"] and legs.groupby("bucket")["leg_id"].count().size > 1
    assert len(pd.read_parquet(tmp_path / "work" / "packets")) == got.summary["packets"]


def test_directory_and_glob_inputs(tmp_path: Path, client) -> None:
    paths, _ = simulated(tmp_path / "captures", seed=4, flows=30, format="pcapng", **SKEWED)
    assert expand_captures([tmp_path / "captures"]) == sorted(paths)  # the truth file beside them is no capture
    assert expand_captures(str(tmp_path / "captures" / "*appliance[12]*")) == sorted(paths)[:2]
    assert expand_captures(f"file://{tmp_path}/captures/") == [f"file://{p}" for p in sorted(paths)]
    with pytest.raises(ConfigError, match="no file matches"):
        expand_captures(str(tmp_path / "*.nothing"))
    expected = gwcheck.analyze(sorted(paths))
    assert_same_report(expected, analyze_on_dask([tmp_path / "captures"], client))


def test_an_unreadable_file_is_named_and_the_others_analysed(tmp_path: Path, client) -> None:
    paths, _ = simulated(tmp_path / "captures", seed=5, flows=40, **SKEWED)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a capture\n")
    missing = str(tmp_path / "missing.pcap")
    with pytest.warns(CaptureSkippedWarning) as warned:
        got = analyze_on_dask([paths[0], str(notes), *paths[1:], missing], client, tmp_path / "work")
    assert {w.message.path for w in warned} == {str(notes), missing}
    unreadable = [f for f in got.findings if f.kind == "unreadable_capture"]
    assert sorted(f.message.split(" cannot be read")[0] for f in unreadable) == sorted([str(notes), missing])
    files = {f["path"]: f for f in got.summary["files"]}
    assert files[str(notes)]["error"] and files[missing]["error"] and not got.healthy
    expected = gwcheck.analyze(paths)
    pd.testing.assert_frame_equal(expected.flows, got.flows)
    assert got.summary["packets"] == expected.summary["packets"]


def set_sample(count: int) -> None:
    """On a worker: how many Geneve packets of each file role votes start from."""
    import gwcheck.tables.roles

    gwcheck.tables.roles.SAMPLE_PER_FILE = count


def test_roles_from_every_packet_when_the_sample_misses_an_address(tmp_path: Path, client, monkeypatch: pytest.MonkeyPatch) -> None:
    import gwcheck.fleet.run as run
    import gwcheck.tables.roles as roles_module

    early, late = tmp_path / "early.pcap", tmp_path / "late.pcap"
    simulate(Scenario(seed=1, flows=20, appliances=2), early)
    simulate(Scenario(seed=2, flows=20, appliances=3, start_ns=Scenario().start_ns + 60 * 10**9), late)
    joined = tmp_path / "joined.pcap"
    joined.write_bytes(early.read_bytes() + late.read_bytes()[24:])  # the third appliance starts late
    paths = [str(joined), str(early)]
    stages = []
    map_tasks = run._Run.map
    monkeypatch.setattr(run._Run, "map", lambda self, stage, *a, **k: stages.append(stage) or map_tasks(self, stage, *a, **k))
    original = roles_module.SAMPLE_PER_FILE
    monkeypatch.setattr(roles_module, "SAMPLE_PER_FILE", 50)
    client.run(set_sample, 50)
    try:
        got = analyze_on_dask(paths, client, tmp_path / "work")
    finally:
        client.run(set_sample, original)
    assert stages == ["decode", "votes", "pair", "flows"]  # the sampled votes did not cover the late appliance
    assert got.roles.appliance_names() == ["10.0.0.100", "10.0.1.101", "10.0.2.102"]
    assert_same_report(gwcheck.analyze(paths), got)


def test_the_command_line_on_a_running_cluster(tmp_path: Path, client) -> None:
    paths, _ = simulated(tmp_path / "captures", seed=10, flows=30, **SKEWED)
    out, err = io.StringIO(), io.StringIO()
    code = main(["analyze", "--dask", client.scheduler.address, "--workdir", str(tmp_path / "work"), "--format", "json", *paths], out, err)
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue())["symmetry"] == gwcheck.analyze(paths).to_dict()["symmetry"]
    assert (tmp_path / "work" / "manifest.json").is_file()
    for argv, message in (
        (["--dask", "local:x"], "expected local or local:N"),
        (["--dask", "somewhere"], "expected local, local:N or a scheduler address"),
        (["--workdir", str(tmp_path)], "--workdir needs --dask"),
    ):
        err = io.StringIO()
        assert main(["analyze", *argv, *paths], io.StringIO(), err) == 2
        assert message in err.getvalue()


def test_without_dask_the_option_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "distributed", None)  # import distributed now fails
    err = io.StringIO()
    assert main(["analyze", "--dask", "local:2", str(tmp_path / "any.pcap")], io.StringIO(), err) == 2
    assert "pip install 'gwcheck[dask]'" in err.getvalue()


class KillOnce(distributed.WorkerPlugin):
    """Kill the worker that starts the first task of a stage (once: a marker file says it happened)."""

    def __init__(self, marker: str, stage: str) -> None:
        self.marker, self.stage = marker, stage

    def transition(self, key, start, finish, **kwargs) -> None:
        if finish == "executing" and f"gwcheck-{self.stage}-" in str(key):
            try:
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL))
            except FileExistsError:
                return
            os._exit(1)


@pytest.mark.parametrize("stage", ["pair", "flows"])
def test_a_worker_killed_mid_run_costs_a_retry_not_the_result(tmp_path: Path, client, stage: str) -> None:
    paths, _ = simulated(tmp_path / "captures", seed=6, flows=60, **SKEWED)
    marker = tmp_path / "killed"
    client.register_plugin(KillOnce(str(marker), stage), name="kill-once")
    try:
        got = analyze_on_dask(paths, client, tmp_path / "work", bucket_legs=BUCKET_LEGS // 4)
    finally:
        client.unregister_worker_plugin("kill-once")
    assert marker.exists()  # a worker died running one of the stage's tasks
    assert_same_report(gwcheck.analyze(paths), got)


def own_peak_bytes() -> int:
    """The calling process's own peak resident memory (VmHWM). Not ru_maxrss: Linux carries a parent's peak
    over exec into it, so a worker spawned by this (large) pytest process would report pytest's peak."""
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))


def test_worker_memory_is_bounded_by_a_file_not_the_capture_set(tmp_path: Path) -> None:
    """Captures of 50 MB each, more of them than a worker may hold: each worker stays under its limit, none restarts."""
    one = tmp_path / "one.pcap"
    simulate(Scenario(seed=3, flows=4500, duration_s=20.0, appliances=4, endpoints=4, health_check_interval_s=0), one)
    copies = math.ceil(1.1 * WORKER_MEMORY_LIMIT / one.stat().st_size)
    paths = [str(tmp_path / f"appliance-{k}.pcap") for k in range(copies)]
    for path in paths:
        os.link(one, path)
    # Dask pauses a worker above 80% of its limit until its memory falls, which memory kept by the allocator
    # never does; above 95% it restarts the worker, which is what this test watches for.
    with dask.config.set({"distributed.worker.memory.pause": False}), distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=":0", memory_limit=WORKER_MEMORY_LIMIT
    ) as cluster, distributed.Client(cluster) as c:
        workers = set(c.scheduler_info()["workers"])
        got = analyze_on_dask(paths, c, tmp_path / "work", batch_bytes=4 << 20, bucket_legs=50_000)
        peaks = list(c.run(own_peak_bytes).values())
        assert set(c.scheduler_info()["workers"]) == workers  # no worker was restarted for its memory
    assert sum(os.path.getsize(p) for p in paths) > WORKER_MEMORY_LIMIT > max(peaks)
    single = gwcheck.analyze(one)
    assert got.summary["packets"] == copies * single.summary["packets"]
    assert len(got.flows) == len(single.flows) and (got.flows["fwd_packets"] == copies * single.flows["fwd_packets"]).all()
