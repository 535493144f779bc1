"""gwcheck validate: every check passes on the healthy sample and fails, with the value the truth states, on the
capture built to break it; units; policies and overrides; JUnit XML; exit codes 0, 1, 2 and 3."""

from __future__ import annotations

import ipaddress
import json
import re
import struct
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Callable
from io import StringIO
from pathlib import Path

import pytest

import gwcheck
from gwcheck.cli import ExitCode, main
from gwcheck.errors import CaptureDamageWarning, ConfigError
from gwcheck.report.validate import (
    CHECKS,
    CHECKS_BY_NAME,
    Policy,
    load_policy,
    parse_duration_us,
    parse_policy,
    parse_rate,
    run_checks,
)
from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
HEALTHY = SAMPLES / "healthy.pcap"
EXAMPLE_POLICY = ROOT / "examples" / "gwcheck.toml"

FAULTY = dict(
    flows=150, asymmetric=5, one_sided=5, moved=5, not_returned_rate=0.01, stale_cookie=4, modified_options=3,
    originated=3, idle_gap=4, over_mtu=2, outer_fragments=2, gso=2, health_check_unanswered=0.3,
)
# healthy.pcap rewritten: records cut short, Geneve headers and a cookie changed, the file's end cut off.
TRUNCATED_RECORDS = range(0, 5)
FOREIGN_VNI_RECORDS = range(100, 104)
WRONG_COOKIE_RECORD = 200  # an appliance's return leg: the first at or after this record
ETHERNET_IPV4_UDP = 14 + 20 + 8
GENEVE_VNI = ETHERNET_IPV4_UDP + 4
AWS_COOKIE = ETHERNET_IPV4_UDP + 8 + 12 + 12 + 4  # after the base header, endpoint and attachment options
OUTER_SRC = slice(14 + 12, 14 + 16)
APPLIANCE_ADDRESSES = {ipaddress.ip_address(a).packed for a in json.loads((SAMPLES / "healthy.truth.json").read_text())["appliances"]}


def pcap_records(data: bytes) -> list[bytes]:
    """The packet data of every record of a little-endian classic pcap file."""
    out, offset = [], 24
    while offset < len(data):
        caplen = struct.unpack_from("<I", data, offset + 8)[0]
        out.append(data[offset + 16 : offset + 16 + caplen])
        offset += 16 + caplen
    return out


def damage(source: Path, target: Path) -> None:
    data = source.read_bytes()
    records = pcap_records(data)
    for k in TRUNCATED_RECORDS:
        records[k] = records[k][:60]
    for k in FOREIGN_VNI_RECORDS:
        records[k] = records[k][:GENEVE_VNI] + b"\x00\x00\x07" + records[k][GENEVE_VNI + 3 :]
    k = next(k for k in range(WRONG_COOKIE_RECORD, len(records)) if records[k][OUTER_SRC] in APPLIANCE_ADDRESSES)
    records[k] = records[k][:AWS_COOKIE] + b"\xde\xad\xbe\xef" + records[k][AWS_COOKIE + 4 :]
    offset, out = 24, bytearray(data[:24])
    for record in records:
        header = data[offset : offset + 16]
        out += header[:8] + struct.pack("<I", len(record)) + header[12:16] + record
        offset += 16 + struct.unpack_from("<I", header, 8)[0]
    target.write_bytes(bytes(out[:-10]))  # the last record cut short


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[list[Path], dict]]:
    """Named captures with the truth that describes them."""
    folder = tmp_path_factory.mktemp("validate")
    out = {
        "healthy": ([HEALTHY], json.loads((SAMPLES / "healthy.truth.json").read_text())),
        "one_appliance": ([SAMPLES / "split-appliance1.pcapng"], {"flows": 6}),
        "two_of_three": ([SAMPLES / "split-appliance1.pcapng", SAMPLES / "split-appliance2.pcapng"], {"appliances": 2}),
    }
    scenarios = {
        "faults": Scenario(seed=7, **FAULTY),
        "slow": Scenario(seed=5, flows=30, latency_median_us=[2000.0, 2000.0, 40000.0]),
        "uneven": Scenario(seed=3, flows=90, weights=[1.0, 1.0, 6.0]),
    }
    for name, scenario in scenarios.items():
        truth = simulate(scenario, folder / f"{name}.pcap")
        out[name] = ([folder / f"{name}.pcap"], truth)
    damage(HEALTHY, folder / "damaged.pcap")
    out["damaged"] = ([folder / "damaged.pcap"], {"truncated": len(TRUNCATED_RECORDS), "foreign_vni": len(FOREIGN_VNI_RECORDS)})
    return out


@pytest.fixture(scope="module")
def report(captures) -> Callable[[str], gwcheck.Report]:
    """The Report of a named capture, analysed once (damage warnings silenced: the CLI tests check how they show)."""
    cache: dict[str, gwcheck.Report] = {}

    def get(name: str) -> gwcheck.Report:
        if name not in cache:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", CaptureDamageWarning)
                cache[name] = gwcheck.analyze(captures[name][0])
        return cache[name]

    return get


def _ratio(truth: dict) -> float:
    flows = [a["flows"] for a in truth["appliances"].values()]
    return max(flows) / (sum(flows) / len(flows))


def _faults(kind: str) -> Callable[[dict], int]:
    return lambda truth: len(truth["faults"][kind])


#: check -> (limit, the capture it fails on, the value it measures there from that capture's truth).
CASES: dict[str, tuple[object, str, Callable[[dict], float] | None]] = {
    "min_flows": (10, "one_appliance", lambda t: t["flows"]),
    "expect_appliances": (3, "two_of_three", lambda t: t["appliances"]),
    "max_latency_p50": ("200us", "slow", lambda t: t["latency_us"]["p50"]),
    "max_latency_p99": ("25ms", "slow", lambda t: t["latency_us"]["p99"]),
    "max_appliance_latency_p99": ("25ms", "slow", lambda t: max(a["latency_us"]["p99"] for a in t["appliances"].values())),
    "max_not_returned": ("0.1%", "faults", lambda t: t["not_returned"] / (t["returned"] + t["not_returned"])),
    "max_imbalance": (1.5, "uneven", _ratio),
    "require_symmetric": (True, "faults", lambda t: sum(1 for row in t["flow_rows"] if row["faults"])),
    "no_asymmetric": (True, "faults", _faults("asymmetric")),
    "no_one_sided": (True, "faults", _faults("one_sided")),
    "no_originated": (True, "faults", _faults("originated")),
    "no_stale_cookies": (True, "faults", _faults("stale_cookie")),
    "no_wrong_cookies": (True, "damaged", lambda t: 1),
    "no_modified_options": (True, "faults", _faults("modified_options")),
    "no_over_mtu": (True, "faults", _faults("over_mtu")),
    "no_outer_fragments": (True, "faults", _faults("outer_fragments")),
    "max_moved": (0, "faults", _faults("moved")),
    "max_idle_gaps": ("0", "faults", _faults("idle_gap")),
    "require_healthy_targets": (True, "faults", lambda t: t["health_checks"]["unanswered"]),
    "max_decode_errors": (0, "damaged", lambda t: t["truncated"]),
    "no_shape_deviations": (True, "damaged", lambda t: t["foreign_vni"]),
    "no_damaged_captures": (True, "damaged", lambda t: 1),
    "require_healthy": (True, "faults", None),
}


def test_every_check_has_a_case() -> None:
    assert set(CASES) == set(CHECKS_BY_NAME)


@pytest.mark.parametrize("name", CASES)
def test_check_passes_on_healthy_sample_and_fails_on_its_fault(name: str, report, captures) -> None:
    limit, scenario, expected = CASES[name]
    [passed] = run_checks(report("healthy"), {name: limit})
    assert passed.passed, passed
    [failed] = run_checks(report(scenario), {name: limit})
    assert not failed.passed, failed
    assert failed.name == name and failed.threshold == CHECKS_BY_NAME[name].threshold(CHECKS_BY_NAME[name].parse(limit))
    if expected is None:
        assert failed.value > 0
    else:
        assert failed.value == pytest.approx(expected(captures[scenario][1]))
    assert failed.measured and failed.detail


def test_measured_text_carries_the_value_and_unit(report, captures) -> None:
    policy = {"max_latency_p99": "2ms", "max_not_returned": "0.1%", "no_asymmetric": True, "expect_appliances": 3, "max_imbalance": "1.5"}
    results = {r.name: r for r in run_checks(report("healthy"), policy)}
    assert list(results) == [c.name for c in CHECKS if c.name in policy]  # the order of CHECKS
    assert results["max_latency_p99"].measured.endswith(" ms") and results["max_latency_p99"].threshold == "<= 2 ms"
    assert not results["max_latency_p99"].passed  # 20 ms: the first packet from each endpoint sets up state
    ingress = sum(a["packets_in"] for a in captures["healthy"][1]["appliances"].values())
    assert results["max_not_returned"].measured == f"0% (0 of {ingress} packets)" and results["max_not_returned"].threshold == "<= 0.1%"
    assert results["no_asymmetric"].measured == "0 flows" and results["no_asymmetric"].threshold == "none"
    assert results["expect_appliances"].threshold == ">= 3"
    assert results["max_imbalance"].threshold == "<= 1.5"


def test_health_checks_absent_pass_and_nothing_measured_fails(tmp_path: Path) -> None:
    unprobed = tmp_path / "unprobed.pcap"
    simulate(Scenario(flows=10, health_check_interval_s=0.0), unprobed)  # as 'udp port 6081' captures it
    [health] = run_checks(gwcheck.analyze(unprobed), {"require_healthy_targets": True})
    assert health.passed and health.measured == "no health checks in the captures"
    empty = tmp_path / "empty.pcap"
    empty.write_bytes(HEALTHY.read_bytes()[:24])  # the file header and no packet
    policy = {"min_flows": 1, "max_latency_p99": "2ms", "max_appliance_latency_p99": "2ms", "max_not_returned": "1%", "max_imbalance": 1.5, "no_asymmetric": True}
    results = {r.name: r for r in run_checks(gwcheck.analyze(empty), policy)}
    assert [name for name, r in results.items() if r.passed] == ["no_asymmetric"]
    assert results["min_flows"].measured == "0 flows"
    assert results["max_latency_p99"].measured == results["max_appliance_latency_p99"].measured == "no returned packets"
    assert results["max_not_returned"].measured == "no packets went into an appliance"
    assert results["max_imbalance"].measured == "no flows" and results["max_imbalance"].value is None


def test_run_checks_is_pure(report) -> None:
    healthy = report("healthy")
    flows = healthy.flows.copy()
    policy = parse_policy({c.name: CASES[c.name][0] for c in CHECKS})
    assert run_checks(healthy, policy) == run_checks(healthy, policy)
    assert healthy.flows.equals(flows)


# --- units ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "us"), [("500us", 500.0), ("500µs", 500.0), ("2ms", 2000.0), ("2 ms", 2000.0), ("0.5s", 500_000.0), (".25ms", 250.0)])
def test_durations(text: str, us: float) -> None:
    assert parse_duration_us(text) == us


@pytest.mark.parametrize("value", ["2 parsecs", "2", "ms", "-1ms", "2ms3", "", 2, 2.0, True])
def test_bad_durations(value: object) -> None:
    with pytest.raises(ConfigError, match="duration"):
        parse_duration_us(value)


@pytest.mark.parametrize(("value", "rate"), [("0.1%", 0.001), ("5 %", 0.05), ("100%", 1.0), ("0.001", 0.001), (0.001, 0.001), (0, 0.0), ("0", 0.0)])
def test_rates(value: object, rate: float) -> None:
    assert parse_rate(value) == pytest.approx(rate)


@pytest.mark.parametrize("value", ["150%", "1.5", "-1%", "lots", 2, True, "0.1%%"])
def test_bad_rates(value: object) -> None:
    with pytest.raises(ConfigError):
        parse_rate(value)


# --- policies ---------------------------------------------------------------------------------------------


def test_policy_parses_checks_and_analysis() -> None:
    policy = parse_policy(
        {
            "max_latency_p99": "2ms", "max_not_returned": "0.1%", "no_asymmetric": True, "no_one_sided": False,
            "max_moved": 2, "expect_appliances": 3, "max_imbalance": 1.5,
            "analysis": {"window": "500ms", "stickiness": "3-tuple", "tcp_idle_timeout": 350, "appliance": "10.0.0.100", "gwlb": ["10.0.0.10"], "port": 6081},
        }
    )
    assert policy.checks == {"max_latency_p99": 2000.0, "max_not_returned": 0.001, "no_asymmetric": True, "max_moved": 2, "expect_appliances": 3, "max_imbalance": 1.5}
    assert policy.analyze_arguments() == {
        "window_s": 0.5, "stickiness": "3-tuple", "tcp_idle_timeout_s": 350.0, "appliances": ["10.0.0.100"],
        "gwlb_nodes": ["10.0.0.10"], "port": 6081, "expect_appliances": 3, "max_imbalance": 1.5,
    }


def test_command_line_overrides_policy() -> None:
    policy = Policy({"max_latency_p99": 2000.0, "no_asymmetric": True}, {"window_s": 1.0})
    merged = policy.updated(Policy({"max_latency_p99": 5000.0}, {"window_s": 2.0})).without({"no_asymmetric"})
    assert merged == Policy({"max_latency_p99": 5000.0}, {"window_s": 2.0})


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"max_latency_p999": "2ms"}, re.escape("p.toml: unknown key 'max_latency_p999' (did you mean 'max_latency_p99'?)")),
        ({"frobnicate": 1}, "known keys:"),
        ({"max_latency_p99": 2}, "max_latency_p99: expected a duration"),
        ({"max_not_returned": "lots"}, "max_not_returned: expected a percentage"),
        ({"no_asymmetric": "yes"}, "no_asymmetric: expected true or false"),
        ({"max_moved": -1}, "max_moved: expected a whole number"),
        ({"analysis": {"windw": 1}}, r"\[analysis\]: unknown key 'windw'"),
        ({"analysis": {"port": 70000}}, r"\[analysis\] port: expected a UDP port"),
        ({"analysis": 3}, r"\[analysis\] must be a table"),
    ],
)
def test_bad_policies_raise_config_error(document: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_policy(document, "p.toml")


def test_policy_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_policy(tmp_path / "missing.toml")
    (tmp_path / "bad.toml").write_text("max_latency_p99 = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_policy(tmp_path / "bad.toml")


def test_example_policy_is_documented_and_covers_every_check() -> None:
    policy = load_policy(EXAMPLE_POLICY)
    text = EXAMPLE_POLICY.read_text()
    for check in CHECKS:
        assert f"{check.name} =" in text, check.name  # set, or shown commented out
    assert policy.checks and policy.analysis


# --- the command --------------------------------------------------------------------------------------------


def run(*argv: object) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_example_policy_passes_healthy_sample_and_fails_faults(captures, tmp_path: Path) -> None:
    code, out, err = run("validate", "--policy", EXAMPLE_POLICY, HEALTHY)
    assert code == ExitCode.OK, out + err
    assert out.splitlines()[-1].startswith("gwcheck: validation passed:")
    code, out, err = run("validate", "--policy", EXAMPLE_POLICY, *captures["faults"][0])
    assert code == ExitCode.CHECK_FAILED, out + err
    assert out.splitlines()[-1].startswith("gwcheck: validation failed:")


def test_text_table_shows_measured_beside_threshold(captures) -> None:
    code, out, _ = run("validate", "--no-asymmetric", "--max-not-returned", "0.1%", "--max-latency-p99", "25ms", *captures["faults"][0])
    assert code == ExitCode.CHECK_FAILED
    lines = out.splitlines()
    truth = captures["faults"][1]
    assert lines[0] == f"gwcheck validate: {truth['packets']:,} packets, {truth['flows']} flows, 3 appliances in 1 capture"
    rows = {line.split()[1]: line.split() for line in lines if line.startswith(("  pass", "  FAIL"))}
    assert rows["no_asymmetric"][:4] == ["FAIL", "no_asymmetric", "10", "flows"] and rows["no_asymmetric"][-1] == "none"
    assert rows["max_not_returned"][0] == "FAIL" and rows["max_not_returned"][-2:] == ["<=", "0.1%"]
    assert rows["max_latency_p99"][0] == "pass" and rows["max_latency_p99"][-3:] == ["<=", "25", "ms"]
    assert any(line.strip().startswith("no_asymmetric: 10 of 158 flows were asymmetric") for line in lines)
    assert lines[-1] == "gwcheck: validation failed: 2 of 3 checks failed: max_not_returned, no_asymmetric"


def test_policy_analysis_section_and_override(tmp_path: Path) -> None:
    policy = tmp_path / "gwcheck.toml"
    policy.write_text('max_not_returned = "0%"\nmax_latency_p99 = "1ms"\n\n[analysis]\nwindow = "10ms"\n')
    # The first packet from each endpoint dwells 20 ms: with a 10 ms window it never pairs.
    code, out, _ = run("validate", "--policy", policy, "--skip", "max_latency_p99", HEALTHY)
    assert code == ExitCode.CHECK_FAILED and "FAIL    max_not_returned" in out and "max_latency_p99" not in out
    code, out, _ = run("validate", "--policy", policy, "--window", "1", "--max-latency-p99", "25ms", HEALTHY)
    assert code == ExitCode.OK, out


def test_json_output(tmp_path: Path) -> None:
    target = tmp_path / "results.json"
    code, out, _ = run("validate", "--format", "json", "-o", target, "--max-latency-p99", "2ms", "--no-asymmetric", HEALTHY)
    assert code == ExitCode.CHECK_FAILED and out == ""
    document = json.loads(target.read_text())
    assert document["passed"] is False and document["captures"] == [str(HEALTHY)]
    assert [c["name"] for c in document["checks"]] == ["max_latency_p99", "no_asymmetric"]
    latency = document["checks"][0]
    assert latency["passed"] is False and latency["limit"] == 2000.0 and latency["value"] > 2000.0
    assert set(latency) == {"name", "passed", "measured", "threshold", "detail", "value", "limit"}


def test_junit_parses_back(captures, tmp_path: Path) -> None:
    junit = tmp_path / "results.xml"
    code, _, _ = run("validate", "--policy", EXAMPLE_POLICY, "--junit", junit, *captures["faults"][0])
    assert code == ExitCode.CHECK_FAILED
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    [suite] = root.findall("testsuite")
    assert suite.get("name") == "gwcheck"
    cases = suite.findall("testcase")
    expected = run_checks(gwcheck.analyze(captures["faults"][0]), load_policy(EXAMPLE_POLICY))
    assert [c.get("name") for c in cases] == [r.name for r in expected]
    assert int(suite.get("tests")) == len(cases) and int(suite.get("failures")) == sum(not r.passed for r in expected) > 0
    for case, result in zip(cases, expected):
        failure = case.find("failure")
        assert (failure is None) == result.passed
        if failure is not None:
            assert failure.get("message") == f"measured {result.measured}, threshold {result.threshold}"


def test_junit_escapes_what_it_writes() -> None:
    from gwcheck.report.junit import write_junit
    from gwcheck.report.validate import CheckResult

    stream = StringIO()
    write_junit([CheckResult("x", False, 'a <b> & "c"', "<= 1", "d]]>e")], stream, {"captures": "a&b.pcap"})
    case = ET.fromstring(stream.getvalue().encode()).find("testsuite/testcase")
    assert case.find("failure").get("message") == 'measured a <b> & "c", threshold <= 1'
    assert case.find("failure").text == "d]]>e"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-latency-p99", "2 parsecs"], "argument --max-latency-p99: expected a duration"),
        (["--max-not-returned", "lots"], "argument --max-not-returned: expected a percentage"),
        (["--max-not-returned", "150%"], "between 0 and 1"),
        (["--max-moved", "many"], "argument --max-moved: expected a whole number"),
        (["--skip", "max_latency", "--no-asymmetric"], "no check named 'max_latency'"),
        (["--policy", "/nonexistent/gwcheck.toml"], "policy file /nonexistent/gwcheck.toml not found"),
        ([], "no checks to run"),
    ],
)
def test_usage_errors_exit_2(argv: list[str], message: str) -> None:
    code, out, err = run("validate", *argv, HEALTHY)
    assert code == ExitCode.USAGE
    assert message in err and out == ""


def test_unknown_policy_key_exits_2(tmp_path: Path) -> None:
    policy = tmp_path / "gwcheck.toml"
    policy.write_text('max_latency = "2ms"\n')
    code, _, err = run("validate", "--policy", policy, HEALTHY)
    assert code == ExitCode.USAGE
    assert err == f"gwcheck: error: {policy}: unknown key 'max_latency' (did you mean 'max_latency_p99'?)\n"


def test_unreadable_capture_exits_3(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a capture\n")
    for capture in (text, tmp_path / "missing.pcap"):
        code, out, err = run("validate", "--no-asymmetric", capture)
        assert code == ExitCode.UNREADABLE
        assert err.count("\n") == 1 and str(capture) in err and out == ""


def test_damaged_capture_warns_and_still_validates(captures) -> None:
    code, out, err = run("validate", "--no-damaged-captures", *captures["damaged"][0])
    assert code == ExitCode.CHECK_FAILED
    assert "gwcheck: warning:" in err and "damaged" in err
    assert "FAIL    no_damaged_captures  1 file" in out
