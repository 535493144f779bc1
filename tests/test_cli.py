"""The command line: help for every command and option, every option of analyze, decode and simulate at work,
stable parts of the text and JSON reports of samples/healthy.pcap against its truth, and the exit codes.

Commands run in-process through ``gwcheck.cli.main(argv, stdout, stderr)``; a few run the real console script.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest

from gwcheck import __version__
from gwcheck.cli import ExitCode, build_parser, main
from gwcheck.report.model import REPORT_SCHEMA_VERSION

ROOT = Path(__file__).resolve().parents[1]
HEALTHY = ROOT / "samples" / "healthy.pcap"
TRUTH = json.loads((ROOT / "samples" / "healthy.truth.json").read_text())
SCRIPT = Path(sys.executable).with_name("gwcheck")


def run(*argv: object) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = main([str(a) for a in argv], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def options(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions if a.option_strings and not isinstance(a, argparse._HelpAction)]


def argv_id(value: object) -> str | None:
    """Test ids from argument lists; None lets pytest name the other parameters."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return " ".join(value) or "no-arguments"
    return None


COMMANDS = sorted(subcommands())


# --- help -------------------------------------------------------------------------------------------------


def test_the_commands() -> None:
    assert {"analyze", "decode", "simulate", "validate"} <= set(COMMANDS)


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help_for_every_command(command: str | None) -> None:
    code, out, err = run(*([command] if command else []), "--help")
    assert code == ExitCode.OK and err == ""
    assert out.startswith(f"usage: gwcheck{' ' + command if command else ''}")


def test_every_command_and_option_has_help_text() -> None:
    parser = build_parser()
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for choice in action._choices_actions:
        assert choice.help, choice.dest
    for name, sub in subcommands().items():
        assert sub.description, name
        for option in options(sub) + [a for a in sub._actions if not a.option_strings]:
            assert option.help and option.help != argparse.SUPPRESS, (name, option.dest)


def test_version_in_process() -> None:
    code, out, _ = run("--version")
    assert code == ExitCode.OK and out == f"gwcheck {__version__}\n"


def test_python_m_gwcheck_version() -> None:
    done = subprocess.run([sys.executable, "-m", "gwcheck", "--version"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == f"gwcheck {__version__}\n"


def test_the_process_ends_without_teardown_but_with_all_its_output(tmp_path: Path) -> None:
    """``run`` leaves through os._exit: what it printed and every file it exported must be whole."""
    import pandas as pd

    done = subprocess.run([sys.executable, "-m", "gwcheck", "analyze", "--format", "json", "--export", tmp_path, HEALTHY],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == ExitCode.OK, done.stderr
    packets = json.loads(done.stdout)["summary"]["packets"]
    assert len(pd.read_csv(tmp_path / "packets.csv")) == len(pd.read_parquet(tmp_path / "packets.parquet")) == packets


@pytest.mark.skipif(not SCRIPT.exists(), reason=f"console script not installed beside {sys.executable}")
def test_console_script_analyzes_and_validates(tmp_path: Path) -> None:
    done = subprocess.run([SCRIPT, "analyze", "--quiet", HEALTHY], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gwcheck: healthy")
    done = subprocess.run([SCRIPT, "validate", "--max-latency-p99", "2ms", "--junit", tmp_path / "r.xml", HEALTHY], capture_output=True, text=True, timeout=300)
    assert done.returncode == ExitCode.CHECK_FAILED, done.stderr
    assert done.stdout.splitlines()[-1] == "gwcheck: validation failed: 1 of 1 checks failed: max_latency_p99"
    assert (tmp_path / "r.xml").read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>')


# --- analyze ----------------------------------------------------------------------------------------------


def analyze_json(*argv: object) -> dict:
    code, out, err = run("analyze", "--format", "json", *argv, HEALTHY)
    assert code == ExitCode.OK, err
    return json.loads(out)


def test_analyze_text_opens_with_the_verdict() -> None:
    code, out, err = run("analyze", HEALTHY)
    assert code == ExitCode.OK and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("gwcheck: healthy") and f"{TRUTH['flows']} flows" in lines[0]
    for appliance in TRUTH["appliances"]:
        assert appliance in out
    assert len(lines) > 10


def test_analyze_quiet_prints_only_the_verdict() -> None:
    code, out, _ = run("analyze", "--quiet", HEALTHY)
    assert code == ExitCode.OK and len(out.splitlines()) == 1 and out.startswith("gwcheck: healthy")


def test_analyze_verbose() -> None:
    code, out, _ = run("analyze", "--verbose", HEALTHY)
    assert code == ExitCode.OK and out.startswith("gwcheck: healthy")


def test_analyze_json_matches_the_truth() -> None:
    document = analyze_json()
    assert document["schema_version"] == REPORT_SCHEMA_VERSION
    assert document["gwcheck_version"] == __version__
    assert document["healthy"] is True and document["verdict"].startswith("healthy")
    assert document["summary"]["packets"] == TRUTH["packets"]
    assert document["symmetry"] == {"symmetric": TRUTH["flows"]}
    for row in document["appliances"]:
        expected = TRUTH["appliances"][row["appliance"]]
        assert {k: row[k] for k in ("packets_in", "packets_out", "not_returned", "flows")} == {k: expected[k] for k in ("packets_in", "packets_out", "not_returned", "flows")}
    assert sorted(r["appliance"] for r in document["appliances"]) == sorted(TRUTH["appliances"])
    assert sorted(r["endpoint"] for r in document["endpoints"]) == sorted(TRUTH["endpoints"])
    assert document["latency_us"]["overall"] == TRUTH["latency_us"]
    assert document["findings"] == []


def test_analyze_output_file_and_export(tmp_path: Path) -> None:
    code, out, _ = run("analyze", "--format", "json", "-o", tmp_path / "report.json", "--export", tmp_path / "tables", HEALTHY)
    assert code == ExitCode.OK
    assert json.loads((tmp_path / "report.json").read_text())["summary"]["packets"] == TRUTH["packets"]
    written = {p.name for p in (tmp_path / "tables").iterdir()}
    assert {"packets.csv", "legs.csv", "flows.csv", "report.json"} <= written
    with open(tmp_path / "tables" / "packets.csv", newline="") as handle:
        assert sum(1 for _ in csv.reader(handle)) == TRUTH["packets"] + 1
    code, out, _ = run("analyze", "--output", tmp_path / "report.txt", HEALTHY)
    assert code == ExitCode.OK and (tmp_path / "report.txt").read_text().startswith("gwcheck: healthy")


APPLIANCES = sorted(TRUTH["appliances"])
GWLB_NODES = sorted(TRUTH["gwlb_nodes"])


@pytest.mark.parametrize(
    ("argv", "check"),
    [
        (["--port", "6081"], lambda d: d["settings"]["port"] == 6081 and d["healthy"]),
        (["--port", "4789"], lambda d: d["settings"]["port"] == 4789 and "geneve" not in d["summary"]["by_kind"]),
        ([a for ip in APPLIANCES for a in ("--appliance", ip)] + [a for ip in GWLB_NODES for a in ("--gwlb", ip)],
         lambda d: d["roles"]["appliances"] == APPLIANCES and d["healthy"]),
        (["--window", "0.5"], lambda d: d["settings"]["window_s"] == 0.5 and d["healthy"]),
        (["--window", "0.01"], lambda d: not d["healthy"]),  # the 20 ms endpoint set-up outlasts the window
        (["--stickiness", "3-tuple"], lambda d: d["settings"]["stickiness"] == "3-tuple"),
        (["--tcp-idle-timeout", "0.5"], lambda d: d["settings"]["tcp_idle_timeout_s"] == 0.5 and d["idle"]["tcp_timeout_s"] == 0.5),
        (["--udp-idle-timeout", "60"], lambda d: d["idle"]["other_timeout_s"] == 60),
        (["--expect-appliances", "4"], lambda d: any(f["kind"] == "missing_appliances" for f in d["findings"])),
        (["--max-imbalance", "1.1"], lambda d: any(f["kind"] == "uneven_load" for f in d["findings"])),
        (["--verbose"], lambda d: d["healthy"]),
        (["--quiet"], lambda d: d["healthy"]),
        (["--stream"], lambda d: d["healthy"] and d["latency_us"]["sketch_relative_accuracy"] == 0.01),
    ],
    ids=argv_id,
)
def test_analyze_options(argv: list[str], check) -> None:
    assert check(analyze_json(*argv))


def test_every_analyze_option_is_exercised() -> None:
    exercised = {"--port", "--appliance", "--gwlb", "--window", "--stickiness", "--tcp-idle-timeout", "--udp-idle-timeout",
                 "--expect-appliances", "--max-imbalance", "--verbose", "--quiet", "--format", "-o", "--output", "--export",
                 "--stream", "--dask", "--workdir"}  # --dask and --workdir in tests/test_fleet.py
    assert {s for a in options(subcommands()["analyze"]) for s in a.option_strings} <= exercised


# --- decode -----------------------------------------------------------------------------------------------


def test_decode_csv_with_text_addresses(tmp_path: Path) -> None:
    target = tmp_path / "packets.csv"
    code, out, _ = run("decode", HEALTHY, "-o", target, "--text-addresses", "--port", "6081")
    assert code == ExitCode.OK and out == f"wrote {TRUTH['packets']} packets to {target}\n"
    with open(target, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == TRUTH["packets"]
    assert {"outer_src", "outer_dst", "inner_src", "inner_dst"} <= set(rows[0])
    assert {r["outer_src"] for r in rows} == set(APPLIANCES) | set(GWLB_NODES)


def test_decode_parquet(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    code, out, _ = run("decode", HEALTHY, "--output", tmp_path / "packets.parquet", "--options", tmp_path / "options.csv")
    assert code == ExitCode.OK
    table = pd.read_parquet(tmp_path / "packets.parquet")
    assert len(table) == TRUTH["packets"] and "outer_src" not in table
    options = pd.read_csv(tmp_path / "options.csv")
    geneve = table[table["kind"] == "geneve"]
    assert len(options) == 3 * len(geneve) and f"wrote {len(options)} Geneve options" in out
    assert (options["option_class"] == 0x0108).all() and list(options["aws_option"][:3]) == ["endpoint_id", "attachment_id", "flow_cookie"]


# --- simulate ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "field", "value"),
    [
        (["--seed", "3"], "seed", 3),
        (["--flows", "6"], "flows", 6),
        (["--duration", "0.5"], "duration_s", 0.5),
        (["--appliances", "2"], "appliances", 2),
        (["--gwlb-nodes", "1"], "gwlb_nodes", 1),
        (["--endpoints", "1"], "endpoints", 1),
        (["--weights", "1,2,3"], "weights", [1.0, 2.0, 3.0]),
        (["--ipv6-share", "1"], "ipv6_share", 1.0),
        (["--latency-us", "50,60,70"], "latency_median_us", [50.0, 60.0, 70.0]),
        (["--latency-sigma", "0.2"], "latency_sigma", 0.2),
        (["--endpoint-setup-ms", "0"], "endpoint_setup_ms", 0.0),
        (["--appliance-mode", "route"], "appliance_mode", "route"),
        (["--link", "vlan", "--vlan-id", "42"], "vlan_id", 42),
        (["--link", "sll2"], "link", "sll2"),
        (["--format", "pcapng"], "format", "pcapng"),
        (["--format", "pcap-ns"], "format", "pcap-ns"),
        (["--split", "--clock-offsets-ms", "0,5,-5"], "clock_offsets_ms", [0.0, 5.0, -5.0]),
        (["--asymmetric", "1"], "asymmetric", 1),
        (["--one-sided", "1"], "one_sided", 1),
        (["--moved", "1"], "moved", 1),
        (["--not-returned-rate", "0.1", "--not-returned-endpoint", "0"], "not_returned_endpoint", 0),
        (["--stale-cookie", "1"], "stale_cookie", 1),
        (["--modified-options", "1"], "modified_options", 1),
        (["--originated", "1"], "originated", 1),
        (["--idle-gap", "1"], "idle_gap", 1),
        (["--over-mtu", "1"], "over_mtu", 1),
        (["--outer-fragments", "1"], "outer_fragments", 1),
        (["--gso", "1"], "gso", 1),
        (["--health-check-interval", "0.5", "--health-check-unanswered", "0.5"], "health_check_unanswered", 0.5),
        (["--health-check-interval", "0.5", "--failing-appliance", "1"], "failing_appliance", 1),
        (["--tcp-idle-timeout", "30"], "tcp_idle_timeout_s", 30.0),
        (["--udp-idle-timeout", "20"], "udp_idle_timeout_s", 20.0),
    ],
    ids=argv_id,
)
def test_simulate_options(tmp_path: Path, argv: list[str], field: str, value: object) -> None:
    target = tmp_path / "out.pcap"
    code, out, err = run("simulate", "-o", target, "--flows", "12", "--duration", "1", *argv)
    assert code == ExitCode.OK, err
    truth = json.loads(target.with_name("out.truth.json").read_text())
    assert truth["scenario"][field] == value
    assert out.startswith(f"wrote {truth['packets']} packets of {truth['flows']} flows to ")
    for written in truth["files"]:
        assert (tmp_path / written["path"]).stat().st_size > 24


def test_every_simulate_option_is_exercised() -> None:
    source = Path(__file__).read_text()
    for action in options(subcommands()["simulate"]):
        assert any(f'"{s}"' in source for s in action.option_strings), action.option_strings


def test_simulate_same_seed_same_bytes(tmp_path: Path) -> None:
    for name in ("a.pcap", "b.pcap"):
        assert run("simulate", "--output", tmp_path / name, "--flows", "5", "--seed", "9")[0] == ExitCode.OK
    assert (tmp_path / "a.pcap").read_bytes() == (tmp_path / "b.pcap").read_bytes()


# --- exit codes -------------------------------------------------------------------------------------------


def unreadable(tmp_path: Path) -> list[Path]:
    text = tmp_path / "notes.txt"
    text.write_text("these are notes, not a capture\n")
    return [text, tmp_path / "missing.pcap"]


@pytest.mark.parametrize(
    "argv",
    [["analyze"], ["analyze", "--format", "json"], ["decode", "-o", "{tmp}/x.csv"], ["validate", "--no-asymmetric"]],
    ids=lambda v: " ".join(v[:1]),
)
def test_unreadable_input_exits_3_with_one_line_naming_the_file(tmp_path: Path, argv: list[str]) -> None:
    for capture in unreadable(tmp_path):
        code, out, err = run(*[a.format(tmp=tmp_path) for a in argv], capture)
        assert code == ExitCode.UNREADABLE, err
        assert out == "" and err.count("\n") == 1
        assert err.startswith("gwcheck: error: ") and str(capture) in err


def test_an_unreadable_file_among_good_ones_exits_3(tmp_path: Path) -> None:
    code, _, err = run("analyze", HEALTHY, tmp_path / "missing.pcap")
    assert code == ExitCode.UNREADABLE and "missing.pcap" in err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["frobnicate"],
        ["analyze"],
        ["analyze", "--bogus", str(HEALTHY)],
        ["analyze", "--port", "0", str(HEALTHY)],
        ["analyze", "--port", "http", str(HEALTHY)],
        ["analyze", "--format", "yaml", str(HEALTHY)],
        ["analyze", "--window", "-1", str(HEALTHY)],
        ["analyze", "--stickiness", "4-tuple", str(HEALTHY)],
        ["decode", str(HEALTHY)],
        ["simulate"],
        ["simulate", "-o", "x.pcap", "--weights", "a,b"],
        ["simulate", "-o", "x.pcap", "--link", "token-ring"],
        ["validate", "--max-latency-p99", "2 parsecs", str(HEALTHY)],
    ],
    ids=argv_id,
)
def test_usage_errors_exit_2(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert code == ExitCode.USAGE
    assert out == "" and "usage: gwcheck" in err and "error:" in err


def test_config_errors_exit_2_with_one_line(tmp_path: Path) -> None:
    code, out, err = run("decode", HEALTHY, "-o", tmp_path / "packets.xlsx")
    assert code == ExitCode.USAGE and out == ""
    assert err.count("\n") == 1 and err.startswith("gwcheck: error: ") and "packets.xlsx" in err
