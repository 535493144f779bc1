"""gwcheck live on real traffic: two network namespaces joined by a veth pair, ``gwcheck live`` capturing in the
appliance's namespace while tests/live_peers.py plays the GWLB node (GWLB-shaped Geneve and HTTP health checks) in
the other and the appliance (a reflector and an HTTP server) beside gwcheck.  The report's counts are checked
against what was sent; the tee (--write) analysed afterwards gives the same report.

Only the private range 10.200.0.0/24 is used, inside namespaces this module creates and deletes: nothing leaves
the machine.  Without root or iproute2 the namespace tests skip, saying why; the error paths need neither.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path

import pytest

import gwcheck
from gwcheck.capture.live import capture_filter, diagnose
from gwcheck.cli import ExitCode, main
from gwcheck.live.view import StatusLines, TerminalView, take_snapshot

import live_peers

ROOT = Path(__file__).resolve().parents[1]
PEERS = Path(__file__).resolve().with_name("live_peers.py")
SAMPLE = ROOT / "samples" / "healthy.pcap"
GWLB_IP, APPLIANCE_IP = "10.200.0.1", "10.200.0.2"
PREFIX = 24
START_TIMEOUT_S = 120  # the first run on a machine may compile the decoder
RUN_TIMEOUT_S = 180


@dataclass
class Net:
    gwlb_ns: str
    appliance_ns: str
    appliance_if: str


def _ip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True)


def _namespaces_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2's ip not found: the live tests need network namespaces (.ci/system-packages installs iproute2)"
    if os.geteuid() != 0:
        return "not root: the live tests create network namespaces and a veth pair, which needs root"
    return None


@pytest.fixture(scope="module")
def net():
    """Namespaces gwlb (10.200.0.1) and appliance (10.200.0.2) joined by a veth pair; deleted afterwards."""
    reason = _namespaces_unavailable()
    if reason:
        pytest.skip(reason)
    tag = f"{os.getpid() % 100000}"
    net = Net(f"gwcheck-gwlb-{tag}", f"gwcheck-appl-{tag}", f"gwa{tag}")
    gwlb_if = f"gwg{tag}"
    created: list[str] = []
    try:
        for ns in (net.gwlb_ns, net.appliance_ns):
            done = _ip("netns", "add", ns)
            if done.returncode != 0:
                pytest.skip(f"cannot create a network namespace: {done.stderr.strip()}")
            created.append(ns)
        steps = [
            ("link", "add", gwlb_if, "netns", net.gwlb_ns, "type", "veth", "peer", "name", net.appliance_if, "netns", net.appliance_ns),
            ("-n", net.gwlb_ns, "addr", "add", f"{GWLB_IP}/{PREFIX}", "dev", gwlb_if),
            ("-n", net.appliance_ns, "addr", "add", f"{APPLIANCE_IP}/{PREFIX}", "dev", net.appliance_if),
            ("-n", net.gwlb_ns, "link", "set", gwlb_if, "up"),
            ("-n", net.appliance_ns, "link", "set", net.appliance_if, "up"),
            ("-n", net.gwlb_ns, "link", "set", "lo", "up"),
            ("-n", net.appliance_ns, "link", "set", "lo", "up"),
        ]
        for step in steps:
            done = _ip(*step)
            assert done.returncode == 0, f"ip {' '.join(step)}: {done.stderr}"
        yield net
    finally:
        for ns in created:  # deleting a namespace deletes its end of the veth pair, and so the pair
            _ip("netns", "del", ns)


@pytest.fixture(scope="module")
def appliance(net: Net):
    """The appliance's reflector and health-check server, running in its namespace."""
    process = subprocess.Popen(
        ["ip", "netns", "exec", net.appliance_ns, sys.executable, str(PEERS), "appliance", APPLIANCE_IP],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.strip() == "ready", process.stderr.read()
        yield process
    finally:
        process.terminate()
        process.wait(10)


@dataclass
class LiveRun:
    returncode: int
    stdout: str
    stderr: list[str]
    sent: dict = field(default_factory=dict)  # the GWLB peer's summary

    def json(self) -> dict:
        return json.loads(self.stdout)


def _send_traffic(net: Net) -> dict:
    done = subprocess.run(
        ["ip", "netns", "exec", net.gwlb_ns, sys.executable, str(PEERS), "gwlb", APPLIANCE_IP],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def run_live(net: Net, *options: str, traffic: bool = True, interrupt: bool = False) -> LiveRun:
    """Run ``gwcheck live`` in the appliance's namespace, send the traffic once it captures, and stop it
    with SIGINT (as Ctrl-C does) when ``interrupt``, else let --duration end it."""
    command = ["ip", "netns", "exec", net.appliance_ns, sys.executable, "-m", "gwcheck", "live", "-i", net.appliance_if, *options]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    lines: list[str] = []
    capturing = threading.Event()

    def follow() -> None:
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            if "live: capturing on" in line:
                capturing.set()

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not capturing.wait(0.1):
            assert process.poll() is None and time.monotonic() < deadline, "gwcheck live did not start:\n" + "\n".join(lines)
        sent = _send_traffic(net) if traffic else {}
        if interrupt:
            time.sleep(0.5)
            process.send_signal(signal.SIGINT)
        watchdog = threading.Timer(RUN_TIMEOUT_S, process.kill)
        watchdog.start()
        stdout = process.stdout.read()  # to the end: gwcheck has exited (standard error is the follower's)
        process.wait()
        watchdog.cancel()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    follower.join(timeout=5)
    return LiveRun(process.returncode, stdout, lines, sent)


# --- real traffic -------------------------------------------------------------------------------------------


SECTIONS = ("appliances", "gwlb_nodes", "endpoints", "symmetry", "health_checks", "latency_us")


def test_live_report_counts_what_was_sent(net: Net, appliance, tmp_path: Path) -> None:
    tee = tmp_path / "live.pcap"
    run = run_live(net, "--format", "json", "--write", str(tee), "--interval", "0.5s", interrupt=True)
    assert run.returncode == ExitCode.OK, "\n".join(run.stderr)
    assert run.sent == {"sent": live_peers.GENEVE_PACKETS_IN, "returned": live_peers.GENEVE_PACKETS_IN, "health_checks": 3, "healthy": 3}
    doc = run.json()
    summary = doc["summary"]
    assert summary["by_kind"]["geneve"] == 2 * live_peers.GENEVE_PACKETS_IN  # each packet in, and back out
    assert summary["by_kind"]["tcp"] >= 3 * 3  # three health-check connections: handshakes, request, answer
    assert summary["by_status"] == {"ok": summary["packets"]}
    assert summary["gwlb_shape"] == {"exact": 2 * live_peers.GENEVE_PACKETS_IN}
    assert doc["roles"]["gwlb_nodes"] == [GWLB_IP] and doc["roles"]["appliances"] == [APPLIANCE_IP]
    [row] = doc["appliances"]
    flows = len(live_peers.FLOWS)
    assert (row["appliance"], row["flows"], row["packets_in"], row["packets_out"], row["returned"], row["not_returned"]) == (
        APPLIANCE_IP, flows, live_peers.GENEVE_PACKETS_IN, live_peers.GENEVE_PACKETS_IN, live_peers.GENEVE_PACKETS_IN, 0,
    )
    per_endpoint = {gwcheck.vpce_id(e): [f for f in live_peers.FLOWS if f.endpoint == e] for e in live_peers.ENDPOINTS}
    assert {e["endpoint"]: (e["flows"], e["packets_in"]) for e in doc["endpoints"]} == {
        name: (len(fl), len(fl) * 2 * live_peers.PACKETS_PER_DIRECTION) for name, fl in per_endpoint.items()
    }
    assert {e["endpoint"]: e["cookies"] for e in summary["endpoints"]} == {name: len(fl) for name, fl in per_endpoint.items()}
    assert summary["cookies"] == flows
    assert doc["symmetry"] == {"symmetric": flows}
    [health] = doc["health_checks"]
    assert (health["appliance"], health["probes"], health["healthy"]) == (APPLIANCE_IP, 3, 3)
    assert doc["latency_us"]["overall"]["count"] == live_peers.GENEVE_PACKETS_IN
    assert doc["healthy"] and doc["findings"] == []
    live = doc["live"]
    assert (live["stopped_by"], live["program"], live["packets"], live["error"]) == ("interrupt", "tcpdump", summary["packets"], None)
    assert summary["files"][0]["path"] == f"live:{net.appliance_if}"
    assert any(line.startswith("gwcheck: live: stopped (interrupt)") for line in run.stderr)

    # The tee holds the same capture: analysed afterwards, it gives the same report.
    again = gwcheck.analyze(tee).to_dict()
    assert_same_sections(doc, again)
    assert {k: v for k, v in again["summary"].items() if k != "files"} == {k: v for k, v in summary.items() if k != "files"}
    assert again["summary"]["files"][0]["packets"] == summary["packets"]


def test_live_duration_status_lines_and_checks(net: Net, appliance) -> None:
    """--duration ends the capture; a status line per interval on a pipe; check options exit as validate does."""
    # The view settles a packet one pairing window (1 s) after it: 6 s leaves room for that on a busy machine.
    run = run_live(net, "--duration", "6s", "--interval", "0.5s", "--min-flows", "6", "--expect-appliances", "2")
    assert run.returncode == ExitCode.CHECK_FAILED, "\n".join(run.stderr)
    status = [line for line in run.stderr if line.startswith("gwcheck live: ")]
    assert len(status) >= 3, run.stderr
    assert any(f"returned 100.0%, {APPLIANCE_IP} p50 " in line and "symmetric 6" in line for line in status), status
    [stopped] = [re.match(r"gwcheck: live: stopped \(duration\) after (\d+\.\d) s, \d+ packets read$", line) for line in run.stderr if "stopped" in line]
    assert stopped and 6.0 <= float(stopped.group(1)) < 12, run.stderr  # a refresh under way when the time is up finishes first
    assert run.stdout.startswith("gwcheck: problems found: 1 appliances seen, 2 expected")
    assert "Appliances" in run.stdout and APPLIANCE_IP in run.stdout
    checks = run.stdout[run.stdout.index("result  check") :]
    assert "pass    min_flows" in checks and "FAIL    expect_appliances" in checks
    assert "gwcheck: validation failed: 1 of 2 checks failed: expect_appliances" in checks


def test_live_pyshark_backend(net: Net, appliance, tmp_path: Path) -> None:
    """--backend pyshark: dumpcap's pcapng stream through the same reader and analysis."""
    tee = tmp_path / "live.pcapng"
    run = run_live(net, "--backend", "pyshark", "--format", "json", "--write", str(tee), interrupt=True)
    assert run.returncode == ExitCode.OK, "\n".join(run.stderr)
    doc = run.json()
    assert doc["live"]["program"] == "dumpcap"
    assert doc["summary"]["files"][0]["format"] == "pcapng"
    assert doc["summary"]["files"][0]["interfaces"][0]["name"] == net.appliance_if
    assert doc["summary"]["by_kind"]["geneve"] == 2 * live_peers.GENEVE_PACKETS_IN
    assert doc["symmetry"] == {"symmetric": len(live_peers.FLOWS)}
    assert_same_sections(doc, gwcheck.analyze(tee).to_dict())


def test_live_without_traffic_says_so(net: Net) -> None:
    run = run_live(net, "--duration", "1s", "--format", "json", traffic=False)
    assert run.returncode == ExitCode.OK, "\n".join(run.stderr)
    doc = run.json()
    assert doc["summary"]["packets"] == 0 and doc["summary"]["files"][0]["format"] == "pcap"
    assert [f["kind"] for f in doc["findings"]] == ["no_gwlb_traffic"]


# --- errors -------------------------------------------------------------------------------------------------


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_no_tcpdump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run_main("live", "-i", "eth0")
    assert code == ExitCode.LIVE_FAILED and out == ""
    assert err == "gwcheck: error: tcpdump not found on PATH: install it (Debian, Ubuntu: apt-get install tcpdump) or use --backend pyshark\n"


def test_no_dumpcap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    code, out, err = run_main("live", "-i", "eth0", "--backend", "pyshark")
    assert code == ExitCode.LIVE_FAILED and out == ""
    assert err.startswith("gwcheck: error: dumpcap (Wireshark) not found") and err.count("\n") == 1


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed (.ci/system-packages installs it)")
def test_no_such_interface() -> None:
    code, out, err = run_main("live", "-i", "gwcheck-nosuch0", "--duration", "10s")
    assert code == ExitCode.LIVE_FAILED and out == ""
    assert err.startswith("gwcheck: error: no such interface: gwcheck-nosuch0 (tcpdump: "), err
    assert err.count("\n") == 1


@pytest.mark.skipif(shutil.which("tcpdump") is None or shutil.which("setpriv") is None or os.geteuid() != 0,
                    reason="needs root, tcpdump and setpriv to take CAP_NET_RAW away from a capture")
def test_not_permitted_to_capture() -> None:
    """Without CAP_NET_RAW and CAP_NET_ADMIN (here: root with both removed from its bounding set) tcpdump cannot capture."""
    done = subprocess.run(
        ["setpriv", "--bounding-set=-net_raw,-net_admin", "--", sys.executable, "-m", "gwcheck", "live", "-i", "lo", "--duration", "10s"],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=ROOT,
    )
    assert done.returncode == ExitCode.LIVE_FAILED and done.stdout == ""
    assert done.stderr.startswith("gwcheck: error: not permitted to capture on lo: run gwcheck live as root"), done.stderr
    assert "setcap cap_net_raw,cap_net_admin=eip" in done.stderr and done.stderr.count("\n") == 1


FAKE_TCPDUMP = """#!{python}
import sys, time
sys.stderr.write("tcpdump: listening on eth9, link-type EN10MB (Ethernet), snapshot length 262144 bytes\\n")
sys.stderr.flush()
data = open({sample!r}, "rb").read()
sys.stdout.buffer.write(data[:{half}])
sys.stdout.buffer.flush()
time.sleep(0.3)
sys.stdout.buffer.write(data[{half}:])
sys.stdout.buffer.flush()
sys.stderr.write("tcpdump: pcap_loop: The interface disappeared\\n")
sys.exit(1)
"""


def test_tcpdump_dying_part_way_keeps_what_was_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tcpdump that captures the sample and then dies: the report of everything read, its stderr, exit 4."""
    fake = tmp_path / "tcpdump"
    fake.write_text(FAKE_TCPDUMP.format(python=sys.executable, sample=str(SAMPLE), half=SAMPLE.stat().st_size // 2))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    code, out, err = run_main("live", "-i", "eth9", "--format", "json")
    assert code == ExitCode.LIVE_FAILED, err
    assert err.splitlines()[-1] == "gwcheck: error: tcpdump exited with status 1: tcpdump: pcap_loop: The interface disappeared"
    doc = json.loads(out)
    expected = gwcheck.analyze(SAMPLE).to_dict()
    assert doc["summary"]["packets"] == expected["summary"]["packets"] == len(gwcheck.read_packets(SAMPLE))
    assert_same_sections(doc, expected)
    assert doc["live"]["stopped_by"] == "capture failed" and "interface disappeared" in doc["live"]["error"]


# --- pieces -------------------------------------------------------------------------------------------------


def assert_same_sections(live: dict, batch: dict) -> None:
    """The live report's SECTIONS equal the batch analysis's, latency percentiles within the live sketch's accuracy."""
    accuracy = live["latency_us"]["sketch_relative_accuracy"]
    assert not _differences(live, batch, accuracy, SECTIONS)


def _differences(live: object, batch: object, accuracy: float, keys=None, path: str = "") -> list[str]:
    if isinstance(batch, dict) and isinstance(live, dict):
        keys = keys or sorted(set(batch) | set(live) - {"sketch_relative_accuracy"})
        return [d for k in keys for d in _differences(live.get(k), batch.get(k), accuracy, None, f"{path}.{k}")]
    if isinstance(batch, list) and isinstance(live, list) and len(batch) == len(live):
        return [d for k, (a, b) in enumerate(zip(live, batch)) for d in _differences(a, b, accuracy, None, f"{path}[{k}]")]
    if isinstance(batch, float) and isinstance(live, (int, float)) and ("latency" in path or "rtt" in path):
        return [] if live == pytest.approx(batch, rel=accuracy) else [f"{path}: {live} != {batch}"]
    return [] if live == batch else [f"{path}: {live!r} != {batch!r}"]


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed (.ci/system-packages installs it)")
def test_capture_filter_puts_vlan_last() -> None:
    """BPF reads every term after 'vlan' 4 bytes further on: the untagged terms must come first."""
    expression = capture_filter(6081, 80)
    assert expression == "udp port 6081 or tcp port 80 or (vlan and (udp port 6081 or tcp port 80))"
    assert capture_filter(6082) == "udp port 6082 or (vlan and (udp port 6082))"
    assert subprocess.run(["tcpdump", "-d", "-y", "EN10MB", expression], capture_output=True).returncode == 0


def test_every_backend_is_offered() -> None:
    from gwcheck.capture.live import BACKENDS
    from gwcheck.cli import build_parser

    [commands] = [a for a in build_parser()._actions if a.dest == "command"]
    [backend] = [a for a in commands.choices["live"]._actions if a.dest == "backend"]
    assert tuple(backend.choices) == BACKENDS


def test_diagnose_names_the_cause() -> None:
    assert diagnose("tcpdump", "/usr/bin/tcpdump", "eth9", 1, ["tcpdump: eth9: No such device exists", "(No such device exists)"]).startswith("no such interface: eth9")
    dumpcap = ["Capturing on 'lo'", 'dumpcap: You do not have permission to capture on device "lo".', "(socket: Operation not permitted)"]
    assert diagnose("dumpcap", "/usr/bin/dumpcap", "lo", 1, dumpcap).startswith("not permitted to capture on lo")
    assert diagnose("tcpdump", "/usr/bin/tcpdump", "eth0", -9, []) == "tcpdump was killed by SIGKILL: no message"


def test_views_show_the_snapshot() -> None:
    report = gwcheck.analyze(SAMPLE)
    packets, flows = len(report.packets), len(report.flows)
    first = take_snapshot(report, None, 2.0, packets)
    assert (first.packets_per_s, first.flows, first.returned_share, first.new_findings) == (packets / 2, flows, 1.0, len(report.findings))
    later = take_snapshot(report, first, 4.0, packets)
    assert (later.packets_per_s, later.flows_per_s, later.new_findings) == (0.0, 0.0, 0)
    lines = StringIO()
    StatusLines(lines).update(first)
    assert lines.getvalue().startswith(
        f"gwcheck live: 2.0s, {packets} packets ({packets / 2:.0f}/s), {flows} flows ({flows / 2:.1f}/s), returned 100.0%, 10.0.0.100 p50 "
    )
    assert lines.getvalue().count("\n") == 1
    screen = StringIO()
    view = TerminalView(screen, "gwcheck live eth0")
    from rich.console import Console

    console = Console(file=StringIO(), width=120, record=True)
    console.print(view.render(first))
    view.close()
    text = console.export_text()
    assert "gwcheck live eth0" in text and "10.0.2.102" in text and f"symmetric {flows}" in text
