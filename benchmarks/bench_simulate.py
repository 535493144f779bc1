"""Simulator speed: gwcheck simulate writing a capture of about 1,000,000 packets, the scenario of bench_decode.py.

    python benchmarks/bench_simulate.py [--packets 1000000] [--format pcap|pcap-ns|pcapng] [--link ethernet|vlan|sll2]

Each measurement runs in a fresh process and writes to a temporary directory: ``simulate()`` called after
imports (wall and CPU seconds, packets per second, peak memory), and ``gwcheck simulate`` as a whole process
from interpreter start, which is what a user waits for.  The machine is shared with whatever else runs on it:
CPU seconds are the steadier number.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_decode import PACKETS_PER_FLOW, run_python

SEED = 42
DURATION_S = 60.0
APPLIANCES = 4
ENDPOINTS = 4


def measure_call(output: Path, flows: int, file_format: str, link: str) -> dict:
    return run_python(
        f"""
        import json, os, resource, time
        from gwcheck.simulate.scenario import Scenario
        from gwcheck.simulate.simulator import simulate
        scenario = Scenario(seed={SEED}, flows={flows}, duration_s={DURATION_S}, appliances={APPLIANCES},
                            endpoints={ENDPOINTS}, format={file_format!r}, link={link!r})
        cpu = os.times()
        started = time.perf_counter()
        truth = simulate(scenario, {str(output)!r})
        seconds = time.perf_counter() - started
        done = os.times()
        print(json.dumps({{"packets": truth["packets"], "flows": truth["flows"], "seconds": seconds,
                           "cpu": done.user + done.system - cpu.user - cpu.system,
                           "peak": next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))}}))
        """
    )


def measure_command(output: Path, flows: int, file_format: str, link: str) -> tuple[float, float]:
    """Wall and CPU seconds of ``gwcheck simulate`` as a process."""
    command = [sys.executable, "-m", "gwcheck", "simulate", "-o", str(output), "--seed", str(SEED), "--flows", str(flows),
               "--duration", str(DURATION_S), "--appliances", str(APPLIANCES), "--endpoints", str(ENDPOINTS),
               "--format", file_format, "--link", link]
    before = os.times()
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    seconds = time.perf_counter() - started
    after = os.times()
    return seconds, after.children_user + after.children_system - before.children_user - before.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="size of the capture (default: 1,000,000)")
    parser.add_argument("--format", default="pcap", choices=("pcap", "pcap-ns", "pcapng"), help="file format (default: pcap)")
    parser.add_argument("--link", default="ethernet", choices=("ethernet", "vlan", "sll2"), help="link layer (default: ethernet)")
    args = parser.parse_args()

    flows = int(args.packets / PACKETS_PER_FLOW)
    with tempfile.TemporaryDirectory() as tmp:
        output = Path(tmp) / "gwlb.pcap"
        call = measure_call(output, flows, args.format, args.link)
        file_bytes = output.stat().st_size
        output.unlink()
        command_seconds, command_cpu = measure_command(output, flows, args.format, args.link)

    n = call["packets"]
    print(f"scenario: seed {SEED}, {flows} flows over {DURATION_S:.0f} s, {APPLIANCES} appliances, {ENDPOINTS} endpoints, "
          f"{args.format}, {args.link}")
    print(f"capture: {n} packets, {call['flows']} flow rows, {file_bytes / 1e6:.1f} MB ({file_bytes / n:.0f} bytes/packet)")
    print(f"{'run':<34}{'seconds':>10}{'cpu s':>10}{'packets/s':>14}")
    for name, seconds, cpu in (("simulate() (in process)", call["seconds"], call["cpu"]), ("gwcheck simulate (whole process)", command_seconds, command_cpu)):
        print(f"{name:<34}{seconds:>10.2f}{cpu:>10.2f}{n / seconds:>14,.0f}")
    print(f"memory: peak {call['peak'] / 1e6:.0f} MB ({call['peak'] / n:.0f} bytes per packet)")
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
