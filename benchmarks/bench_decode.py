"""Decoding speed and memory: gwcheck.read_packets against tshark -T fields and a dpkt loop, on one GWLB capture.

    python benchmarks/bench_decode.py [--packets 1000000] [--compare-packets 200000]

Builds (once, cached under benchmarks/out/) a capture of about --packets packets made by gwcheck's simulator:
two legs per inner packet, IPv4 and IPv6 inner, TCP, UDP and ICMP.  Every measurement runs in a fresh
process.  read_packets is measured twice: inside the process after imports and a warm-up on a small file
(packets per second of the call, and peak memory above the process before the call less the file size),
and as the whole process from interpreter start (the fastest of three), beside the floor every process that
returns a DataFrame pays: starting Python and importing numpy and pandas.  tshark and dpkt are timed on the first
--compare-packets packets (both are slow enough that the whole file would take minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PACKETS_PER_FLOW = 20.3  # what the default scenario writes per flow, to size the capture


def build_capture(packets: int) -> Path:
    """The benchmark capture, built once per size with a fixed seed."""
    from gwcheck.simulate.scenario import Scenario
    from gwcheck.simulate.simulator import simulate

    path = OUT / f"gwlb-{packets}.pcap"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    flows = int(packets / PACKETS_PER_FLOW)
    started = time.perf_counter()
    truth = simulate(Scenario(seed=42, flows=flows, duration_s=60.0, appliances=4, endpoints=4), path)
    print(f"built {path.name}: {truth['packets']} packets, {truth['flows']} flows in {time.perf_counter() - started:.1f} s")
    return path


def build_warmup(directory: str) -> Path:
    """A tiny capture to run first, so that compiled kernels load from the cache before anything is timed."""
    from gwcheck.simulate.scenario import Scenario
    from gwcheck.simulate.simulator import simulate

    warmup = Path(directory) / "warmup.pcap"
    simulate(Scenario(flows=4), warmup)
    return warmup


def run_python(code: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints one JSON object as its last line."""
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def measure_gwcheck(path: Path, warmup: Path) -> dict:
    return run_python(
        f"""
        import json, resource, time
        def rss(): return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
        import gwcheck
        gwcheck.read_packets({str(warmup)!r})  # compiled kernels load from the cache
        before = rss()
        started = time.perf_counter()
        table = gwcheck.read_packets({str(path)!r})
        seconds = time.perf_counter() - started
        peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        print(json.dumps({{"packets": len(table), "seconds": seconds, "rss_before": before, "peak": peak,
                           "table_bytes": int(table.memory_usage(index=False, deep=False).sum())}}))
        """
    )


def measure_process(path: Path, repeats: int = 3) -> float:
    """The fastest of ``repeats`` whole processes: interpreter start, imports, read_packets, exit."""
    return min(_time_process(f"import gwcheck; gwcheck.read_packets({str(path)!r})") for _ in range(repeats))


def measure_floor(repeats: int = 3) -> float:
    """What every process returning a DataFrame pays before reading a byte: the interpreter, numpy and pandas."""
    return min(_time_process("import numpy, pandas") for _ in range(repeats))


def _time_process(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True)
    return time.perf_counter() - started


def measure_tshark(path: Path, count: int) -> dict | None:
    if shutil.which("tshark") is None:
        return None
    fields = ["frame.time_epoch", "ip.src", "ip.dst", "udp.srcport", "udp.dstport", "geneve.vni",
              "geneve.option.class", "geneve.option.type", "geneve.option.unknown.data", "tcp.srcport", "tcp.dstport"]
    command = ["tshark", "-n", "-r", str(path), "-c", str(count), "-d", "udp.port==6081,geneve", "-T", "fields"]
    for name in fields:
        command += ["-e", name]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=True)
    seconds = time.perf_counter() - started
    return {"packets": result.stdout.count(b"\n"), "seconds": seconds}


def measure_dpkt(path: Path, count: int) -> dict:
    """A plain dpkt loop reading what gwcheck reads: outer IP/UDP, Geneve options, inner IP and ports."""
    return run_python(
        f"""
        import json, time, struct, dpkt
        started = time.perf_counter()
        n = 0
        with open({str(path)!r}, "rb") as handle:
            for ts, frame in dpkt.pcap.Reader(handle):
                n += 1
                if n > {count}:
                    break
                eth = dpkt.ethernet.Ethernet(frame)
                ip = eth.data
                udp = ip.data
                if not isinstance(udp, dpkt.udp.UDP):
                    continue  # health checks: outer TCP
                payload = bytes(udp.data)
                opt_len = (payload[0] & 0x3F) * 4
                p, options = 8, {{}}
                while p < 8 + opt_len:
                    cls, typ, length = struct.unpack_from("!HBB", payload, p)
                    size = (length & 0x1F) * 4
                    options[typ] = payload[p + 4 : p + 4 + size]
                    p += 4 + size
                inner = payload[8 + opt_len :]
                pkt = dpkt.ip6.IP6(inner) if inner[0] >> 4 == 6 else dpkt.ip.IP(inner)
                l4 = pkt.data
                ports = (getattr(l4, "sport", 0), getattr(l4, "dport", 0))
        print(json.dumps({{"packets": min(n, {count}), "seconds": time.perf_counter() - started}}))
        """
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="size of the capture (default: 1,000,000)")
    parser.add_argument("--compare-packets", type=int, default=200_000, help="packets tshark and dpkt decode (default: 200,000)")
    args = parser.parse_args()

    capture = build_capture(args.packets)
    file_bytes = capture.stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        ours = measure_gwcheck(capture, build_warmup(tmp))
        process_seconds = measure_process(capture)
    floor_seconds = measure_floor()
    tshark = measure_tshark(capture, args.compare_packets)
    dpkt_loop = measure_dpkt(capture, args.compare_packets)

    n = ours["packets"]
    extra = ours["peak"] - ours["rss_before"] - file_bytes
    print(f"capture: {capture} ({n} packets, {file_bytes / 1e6:.1f} MB, {file_bytes / n:.0f} bytes/packet)")
    print(f"{'decoder':<34}{'packets':>10}{'seconds':>10}{'packets/s':>14}")
    rows = [
        ("gwcheck read_packets (in process)", n, ours["seconds"]),
        ("gwcheck read_packets (whole process)", n, process_seconds),
    ]
    if tshark:
        rows.append(("tshark -T fields", tshark["packets"], tshark["seconds"]))
    else:
        print("tshark: not installed, skipped")
    rows.append(("dpkt loop", dpkt_loop["packets"], dpkt_loop["seconds"]))
    for name, packets, seconds in rows:
        print(f"{name:<34}{packets:>10}{seconds:>10.3f}{packets / seconds:>14,.0f}")
    print(
        f"memory: peak {ours['peak'] / 1e6:.0f} MB, {ours['rss_before'] / 1e6:.0f} MB before the call, "
        f"file {file_bytes / 1e6:.0f} MB: {extra / n:.0f} bytes per packet beyond the file "
        f"(the table itself: {ours['table_bytes'] / n:.0f} bytes per packet)"
    )
    print(
        f"floor: python -c 'import numpy, pandas' takes {floor_seconds:.3f} s; the whole process less that floor "
        f"decodes {n / max(process_seconds - floor_seconds, 1e-9):,.0f} packets/s"
    )
    print(f"cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
