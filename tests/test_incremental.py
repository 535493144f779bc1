"""The incremental analysis (gwcheck.incremental): fed a capture a batch at a time, it reports what gwcheck.analyze
reports for the whole capture, while holding no more than a window of packets and the flows still open.

Captures come from the simulator with every fault it makes; the batch analysis of the same files is the truth.
Latency percentiles come from sketches, so they are checked to be within the sketch's relative accuracy of
the exact percentile.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import gwcheck
from gwcheck.cli import main
from gwcheck.incremental import IncrementalAnalysis, analyze_stream
from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate
from gwcheck.sketch import DEFAULT_RELATIVE_ACCURACY
from gwcheck.tables.legs import NO_PEER, Direction
from gwcheck.tables.packets import MergedStreams

from test_analysis import FAULTY  # every fault the simulator makes, as the batch analysis is tested on

LAYOUTS = {
    "merged-pcap": dict(),
    "split-skewed-pcapng": dict(split=True, format="pcapng", clock_offsets_ms=[0.0, 700.0, -900.0]),
}
LATENCY_COLUMNS = ("latency_p50_us", "latency_p99_us")
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}


def captures(tmp_path: Path, **settings) -> list[Path]:
    output = tmp_path / "capture.pcap"
    truth = simulate(Scenario(**settings), output)
    return [output.with_name(f["path"]) for f in truth["files"]]


def within_sketch(estimate: float, values_us: np.ndarray, percent: float) -> bool:
    """Whether ``estimate`` is within the sketch's relative accuracy of the exact (interpolated) percentile."""
    exact = np.percentile(values_us, percent)
    return abs(estimate - exact) <= DEFAULT_RELATIVE_ACCURACY * exact + 1e-9


def assert_same_report(streamed: gwcheck.Report, batch: gwcheck.Report) -> None:
    """Everything equal, latency percentiles within the sketch's accuracy of the batch's dwell times."""
    a = streamed.flows.set_index("key").sort_index()
    b = batch.flows.set_index("key").sort_index()
    assert a.index.tolist() == b.index.tolist()
    assert list(a.columns) == list(b.columns)
    for column in b.columns:
        if column in LATENCY_COLUMNS:
            continue
        pd.testing.assert_series_equal(a[column], b[column], check_names=False, obj=f"flows.{column}")
    legs = batch.legs
    paired = legs[(legs["direction"] == Direction.INGRESS) & (legs["peer"] != NO_PEER)]
    dwell = paired.groupby("flow")["latency_ns"].apply(lambda s: s.to_numpy() / 1000.0)
    keys = batch.flows["key"]
    for flow, values in dwell.items():
        row = a.loc[keys[flow]]
        assert within_sketch(row["latency_p50_us"], values, 50.0), keys[flow]
        assert within_sketch(row["latency_p99_us"], values, 99.0), keys[flow]
    counts = [c for c in batch.appliances.columns if not c.startswith("latency_")]
    pd.testing.assert_frame_equal(streamed.appliances[counts], batch.appliances[counts])
    for name in ("gwlb_nodes", "endpoints"):
        table_a, table_b = getattr(streamed, name), getattr(batch, name)
        columns = [c for c in table_b.columns if not c.startswith("latency_")]
        pd.testing.assert_frame_equal(table_a[columns], table_b[columns])
    for appliance, values in paired.groupby("appliance")["latency_ns"]:
        name = batch.roles.appliance_names()[appliance]
        summary = streamed.latency["by_appliance"][name]
        exact = batch.latency["by_appliance"][name]
        assert {k: summary[k] for k in ("count", "min", "max")} == {k: exact[k] for k in ("count", "min", "max")}
        assert summary["mean"] == pytest.approx(exact["mean"])
        for key, percent in PERCENTILES.items():
            assert within_sketch(summary[key], values.to_numpy() / 1000.0, percent), (name, key)
    assert streamed.summary == batch.summary
    assert streamed.pairing == batch.pairing
    assert streamed.distribution == batch.distribution
    assert streamed.mtu == batch.mtu
    assert streamed.idle == batch.idle
    pd.testing.assert_frame_equal(streamed.appliance_health, batch.appliance_health)
    assert [f.to_dict() for f in streamed.findings] == [f.to_dict() for f in batch.findings]
    assert streamed.verdict == batch.verdict


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("batch_bytes", [30_000, 1 << 20])
def test_streamed_report_equals_batch_report(tmp_path: Path, layout: str, batch_bytes: int) -> None:
    paths = captures(tmp_path, seed=7, **FAULTY, **LAYOUTS[layout])
    batch = gwcheck.analyze(paths)
    streamed = analyze_stream(paths, batch_bytes=batch_bytes)
    assert streamed.latency["sketch_relative_accuracy"] == DEFAULT_RELATIVE_ACCURACY
    assert_same_report(streamed, batch)
    assert {"not_returned", "stale_cookie", "moved", "idle_gap", "asymmetric", "one_sided"} <= set(streamed.flows["verdict"])


def test_reports_part_way_and_finishes_whole(tmp_path: Path) -> None:
    """A live session asks for a report at every interval: each covers what is settled, the last one everything."""
    paths = captures(tmp_path, seed=3, flows=60, duration_s=8.0)
    batch = gwcheck.analyze(paths)
    analysis = IncrementalAnalysis()
    seen = []
    for table, ended in MergedStreams(paths, batch_bytes=8_000):
        analysis.add(table, ended)
        seen.append(analysis.report().pairing["legs"])
    assert seen == sorted(seen) and 0 < seen[len(seen) // 2] < batch.pairing["legs"]
    assert_same_report(analysis.finish(), batch)
    assert analysis.held_packets == 0


def test_memory_is_bounded_by_a_window_and_the_open_flows(tmp_path: Path) -> None:
    """Over a long capture of short flows the held packets stay within a window and finished flows leave the state."""
    paths = captures(tmp_path, seed=11, flows=400, duration_s=60.0, protocol_mix={"udp": 1.0}, health_check_interval_s=0)
    analysis = IncrementalAnalysis(udp_idle_timeout_s=2.0, tcp_idle_timeout_s=2.0, retain_s=4.0, role_sample=200)
    held, open_flows = [], []
    for table, ended in MergedStreams(paths, batch_bytes=16_000):
        analysis.add(table, ended)
        held.append(analysis.held_packets)
        open_flows.append(analysis.open_flows)
    report = analysis.finish()
    total = report.summary["by_kind"]["geneve"]
    assert max(held) < total / 10
    assert max(open_flows) < len(report.flows) / 3
    assert len(report.flows) == len(gwcheck.analyze(paths, udp_idle_timeout_s=2.0, tcp_idle_timeout_s=2.0).flows)


def test_cli_analyze_stream_prints_the_same_verdict(tmp_path: Path) -> None:
    paths = captures(tmp_path, seed=5, flows=40, stale_cookie=2)
    outputs = []
    for extra in ([], ["--stream"]):
        out, err = io.StringIO(), io.StringIO()
        code = main(["analyze", "--quiet", *extra, *map(str, paths)], stdout=out, stderr=err)
        outputs.append((code, out.getvalue()))
    assert outputs[0] == outputs[1]
    assert outputs[0][0] == 0 and "older flow's cookie" in outputs[0][1]


def test_cli_validate_stream_gates_like_validate(tmp_path: Path) -> None:
    paths = captures(tmp_path, seed=5, flows=30, not_returned_rate=0.05)
    results = []
    for extra in ([], ["--stream"]):
        out, err = io.StringIO(), io.StringIO()
        code = main(["validate", *extra, "--min-flows", "30", "--max-not-returned", "0.1%", *map(str, paths)], stdout=out, stderr=err)
        results.append((code, out.getvalue().splitlines()[-1]))
    assert results[0] == results[1]
    assert results[0][0] == 1 and "max_not_returned" in results[0][1]


def test_streamed_report_renders_everywhere(tmp_path: Path) -> None:
    """Without packet and leg tables the text, JSON and HTML reports and every plot still render."""
    paths = captures(tmp_path, seed=9, flows=40, moved=3, asymmetric=2)
    report = analyze_stream(paths)
    assert report.packets.empty and report.legs.empty
    figure = report.plot_latency()
    assert figure.axes and "no data" not in str([t.get_text() for ax in figure.axes for t in ax.texts])
    assert report.plot_timeline().findobj(lambda artist: artist.get_gid() == "moved")
    for extra in (["--format", "json"], ["--format", "html", "-o", str(tmp_path / "r.html")], []):
        out, err = io.StringIO(), io.StringIO()
        assert main(["analyze", "--stream", *extra, *map(str, paths)], stdout=out, stderr=err) == 0, err.getvalue()
    assert "from sketches" in out.getvalue()
    assert "Flows that moved" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("role_sample", [10, 1_000_000])  # roles settled early, or reports still provisional
def test_a_live_clock_settles_what_silence_settled(tmp_path: Path, role_sample: int) -> None:
    """On a live capture no packet may follow the last ones: a window of the clock's time settles them."""
    paths = captures(tmp_path, seed=3, flows=12)
    table = gwcheck.read_packets(paths)
    now = [int(table["ts_ns"].max())]
    analysis = IncrementalAnalysis(clock=lambda: now[0], role_sample=role_sample)
    analysis.add(table)
    before = analysis.report().pairing["legs"]
    now[0] += 2 * 10**9
    after = analysis.report()
    assert before < after.pairing["legs"] == gwcheck.analyze(paths).pairing["legs"]
    assert len(after.flows) == 12


def test_an_appliance_that_appears_later_gets_its_role(tmp_path: Path) -> None:
    """Roles settle on the first packets; an appliance first seen after that is added, and its flows are counted."""
    paths = captures(tmp_path, seed=4, flows=60, appliances=3)
    packets = gwcheck.read_packets(paths)
    batch = gwcheck.analyze(packets=packets)
    late = batch.roles.appliances[-1]
    start = int(packets["ts_ns"].min()) + (int(packets["ts_ns"].max()) - int(packets["ts_ns"].min())) // 2
    touches = np.zeros(len(packets), bool)
    for side in ("outer_src", "outer_dst"):
        touches |= (packets[f"{side}_hi"].to_numpy() == late[0]) & (packets[f"{side}_lo"].to_numpy() == late[1])
    packets = packets[~touches | (packets["ts_ns"].to_numpy() >= start)].reset_index(drop=True)
    batch = gwcheck.analyze(packets=packets)
    analysis = IncrementalAnalysis(role_sample=50)
    for begin in range(0, len(packets), 100):
        analysis.add(packets.iloc[begin : begin + 100])
    streamed = analysis.finish()
    assert streamed.roles.appliances[-1] == late and set(streamed.roles.appliances) == set(batch.roles.appliances)
    assert streamed.pairing["by_outcome"] == batch.pairing["by_outcome"] and streamed.pairing["legs"] == batch.pairing["legs"]
    counts = ["packets_in", "packets_out", "returned", "flows"]
    pd.testing.assert_frame_equal(streamed.appliances[counts].sort_index(), batch.appliances[counts].sort_index())
    assert streamed.flows["verdict"].value_counts().to_dict() == batch.flows["verdict"].value_counts().to_dict()


def test_the_public_api_names_the_incremental_analysis() -> None:
    assert gwcheck.analyze_stream is analyze_stream and gwcheck.IncrementalAnalysis is IncrementalAnalysis
    assert {"analyze_stream", "IncrementalAnalysis"} <= set(gwcheck.__all__)
