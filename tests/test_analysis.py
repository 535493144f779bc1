"""gwcheck.analyze against captures whose truth is known because the simulator wrote them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import gwcheck
from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate, truth_path_for

FAULT_KINDS = (
    "asymmetric", "one_sided", "moved", "not_returned", "stale_cookie", "modified_options",
    "originated", "idle_gap", "over_mtu", "outer_fragments",
)
COUNTS = ("packets_in", "packets_out", "returned", "not_returned", "in_flight", "flows")

FAULTY = dict(
    flows=150, asymmetric=5, one_sided=5, moved=5, not_returned_rate=0.01, stale_cookie=4, modified_options=3,
    originated=3, idle_gap=4, over_mtu=2, outer_fragments=2, gso=2, health_check_unanswered=0.3,
)
LAYOUTS = {
    "merged-pcap": dict(),
    "split-skewed-pcapng": dict(split=True, format="pcapng", clock_offsets_ms=[0.0, 700.0, -900.0]),
    "vlan-pcap-ns": dict(link="vlan", format="pcap-ns"),
    "sll2-routing": dict(link="sll2", appliance_mode="route"),
}


def run(tmp_path: Path, **settings) -> tuple[gwcheck.Report, dict]:
    """Simulate ``settings``, analyse what was written, return the report and the truth."""
    output = tmp_path / "capture.pcap"
    truth = simulate(Scenario(**settings), output)
    assert truth == json.loads(truth_path_for(output).read_text())
    report = gwcheck.analyze([output.with_name(f["path"]) for f in truth["files"]])
    return report, truth


def reasons_by_kind(report: gwcheck.Report) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {kind: set() for kind in FAULT_KINDS}
    for key, reasons in zip(report.flows["key"], report.flows["reasons"]):
        for reason in filter(None, reasons.split(",")):
            out.setdefault(reason, set()).add(key)
    return out


def assert_counts_and_latency(report: gwcheck.Report, truth: dict) -> None:
    for name, expected in truth["appliances"].items():
        row = report.appliances.loc[name]
        assert {c: int(row[c]) for c in COUNTS} == {c: expected[c] for c in COUNTS}, name
        assert report.latency["by_appliance"][name] == expected["latency_us"], name
    for name, expected in truth["endpoints"].items():
        row = report.endpoints.loc[name]
        assert {c: int(row[c]) for c in COUNTS} == {c: expected[c] for c in COUNTS}, name
        assert report.latency["by_endpoint"][name] == expected["latency_us"], name
    for name, expected in truth["gwlb_nodes"].items():
        row = report.gwlb_nodes.loc[name]
        assert {c: int(row[c]) for c in COUNTS} == {c: expected[c] for c in COUNTS}, name
    assert report.latency["overall"] == truth["latency_us"]


def test_healthy_capture_is_healthy(tmp_path: Path) -> None:
    report, truth = run(tmp_path, flows=60, health_check_interval_s=1.0)
    assert report.healthy, report.verdict
    assert report.verdict.startswith("healthy")
    assert set(report.flows["verdict"]) == {"symmetric"}
    assert set(report.flows["key"]) == {row["key"] for row in truth["flow_rows"]}
    assert report.roles.method.startswith("paired legs")
    assert report.roles.appliance_names() == sorted(truth["appliances"])
    assert_counts_and_latency(report, truth)
    assert not report.legs["ambiguous"].any()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_fault_is_found_on_exactly_its_flows(tmp_path: Path, layout: str) -> None:
    report, truth = run(tmp_path, seed=7, **FAULTY, **LAYOUTS[layout])
    assert set(report.flows["key"]) == {row["key"] for row in truth["flow_rows"]}
    found = reasons_by_kind(report)
    for kind in FAULT_KINDS:
        assert found[kind] == set(truth["faults"].get(kind, [])), kind
    assert set(found) - set(FAULT_KINDS) <= set(), f"unexpected reasons {set(found) - set(FAULT_KINDS)}"
    healthy_keys = {row["key"] for row in truth["flow_rows"] if not row["faults"]}
    verdicts = dict(zip(report.flows["key"], report.flows["verdict"]))
    assert {verdicts[k] for k in healthy_keys} == {"symmetric"}
    assert_counts_and_latency(report, truth)
    assert not report.healthy


def test_flow_rows_match_truth_field_by_field(tmp_path: Path) -> None:
    report, truth = run(tmp_path, seed=11, **FAULTY)
    flows = report.flows.set_index("key")
    for row in truth["flow_rows"]:
        got = flows.loc[row["key"]]
        assert (got["client"], int(got["client_port"]), got["server"], int(got["server_port"])) == (
            row["client"], row["client_port"], row["server"], row["server_port"]
        )
        assert got["appliances"].split(",") == row["appliances"], row["key"]
        assert got["gwlb_nodes"].split(",") == row["gwlb_nodes"], row["key"]
        assert got["cookies"].split(",") == row["cookies"], row["key"]
        assert (int(got["fwd_packets"]), int(got["rev_packets"])) == (row["fwd_packets"], row["rev_packets"]), row["key"]
        assert (int(got["returned"]), int(got["not_returned"]), int(got["in_flight"])) == (row["returned"], row["not_returned"], row["in_flight"])
        assert int(got["over_mtu_packets"]) == row["over_mtu_packets"]
        assert int(got["fragmented_legs"]) == row["fragmented_legs"]
        assert (int(got["gso_packets"]) > 0) == ("gso" in row["artefacts"]), row["key"]


def test_health_checks_match_truth(tmp_path: Path) -> None:
    report, truth = run(tmp_path, seed=3, flows=20, duration_s=30.0, health_check_interval_s=5.0, failing_appliance=1, health_check_unanswered=0.2)
    for name, expected in truth["appliances"].items():
        checks = expected["health_checks"]
        row = report.appliance_health.loc[name]
        assert (int(row["probes"]), int(row["answered"]), int(row["unanswered"])) == (checks["probes"], checks["answered"], checks["unanswered"])
        if checks["probes"] > 1:
            assert row["interval_s"] == pytest.approx(5.0, abs=0.01)
    failing = next(f for f in report.findings if f.kind == "failing_health_checks")
    assert "10.0.1.101" in failing.by_appliance


def test_uneven_spread_and_missing_appliances(tmp_path: Path) -> None:
    output = tmp_path / "uneven.pcap"
    simulate(Scenario(seed=5, flows=200, weights=[1.0, 1.0, 6.0]), output)
    report = gwcheck.analyze(output, expect_appliances=4)
    kinds = {f.kind for f in report.findings}
    assert {"uneven_load", "missing_appliances"} <= kinds
    fairness = report.distribution["appliances"]["flows"]
    assert fairness["max_mean_ratio"] > 1.5 and fairness["jain_index"] < 0.9 and fairness["chi2_p"] < 0.001
    even = gwcheck.analyze(tmp_path / "uneven.pcap", expect_appliances=3, max_imbalance=10.0)
    assert not {"uneven_load", "missing_appliances"} & {f.kind for f in even.findings}


def test_window_decides_what_counts_as_returned(tmp_path: Path) -> None:
    output = tmp_path / "slow.pcap"
    truth = simulate(Scenario(seed=9, flows=30, latency_median_us=[300_000.0], latency_sigma=0.01, endpoint_setup_ms=0.0), output)
    assert gwcheck.analyze(output).latency["overall"]["count"] == truth["returned"]
    narrow = gwcheck.analyze(output, window_s=0.1)
    assert narrow.latency["overall"]["count"] == 0
    assert int(narrow.legs["pairing"].isin(["not_returned", "in_flight"]).sum()) == truth["returned"] + truth["not_returned"] + truth["in_flight"]


def test_stated_roles_on_the_real_ingress_only_capture(corpus: Path) -> None:
    capture = corpus / "suricata-verify/tests/bug-6402-01/input.pcap"
    report = gwcheck.analyze(capture, appliances=["10.0.8.64"])
    assert report.roles.gwlb_node_names() == ["10.0.10.74"] and report.roles.appliance_names() == ["10.0.8.64"]
    assert set(report.legs["direction"]) == {0}
    inferred = gwcheck.analyze(capture)
    assert inferred.roles.appliance_names() == ["10.0.8.64"]
    assert "TTL 255" in inferred.roles.method


def test_three_tuple_stickiness_merges_ports(tmp_path: Path) -> None:
    output = tmp_path / "flows.pcap"
    simulate(Scenario(seed=2, flows=40, protocol_mix={"tcp": 1.0}), output)
    five = gwcheck.analyze(output)
    three = gwcheck.analyze(output, stickiness="3-tuple")
    assert len(three.flows) <= len(five.flows)
    assert (three.flows["client_port"] == 0).all()


def test_report_json_is_plain_and_versioned(tmp_path: Path) -> None:
    report, _ = run(tmp_path, seed=4, flows=30, moved=2, not_returned_rate=0.05)
    document = json.loads(json.dumps(report.to_dict()))
    assert document["schema_version"] == 1
    assert document["healthy"] is False
    assert {"summary", "appliances", "endpoints", "latency_us", "distribution", "findings", "symmetry"} <= set(document)
    assert all(f["cause"] for f in document["findings"])


def test_roles_from_a_sample_fall_back_when_an_address_appears_late(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import gwcheck.tables.roles as roles_module

    early, late = tmp_path / "early.pcap", tmp_path / "late.pcap"
    simulate(Scenario(seed=1, flows=20, appliances=2), early)
    simulate(Scenario(seed=2, flows=20, appliances=3, start_ns=Scenario().start_ns + 60 * 10**9), late)
    joined = tmp_path / "joined.pcap"
    joined.write_bytes(early.read_bytes() + late.read_bytes()[24:])  # one pcap: the third appliance starts late
    monkeypatch.setattr(roles_module, "SAMPLE_PER_FILE", 50)
    sampled = gwcheck.analyze(joined)
    monkeypatch.setattr(roles_module, "SAMPLE_PER_FILE", 10**9)
    full = gwcheck.analyze(joined)
    assert sampled.roles.appliance_names() == full.roles.appliance_names() == ["10.0.0.100", "10.0.1.101", "10.0.2.102"]
    assert sampled.roles.gwlb_node_names() == full.roles.gwlb_node_names()
    assert "unknown_roles" not in {f.kind for f in sampled.findings}
