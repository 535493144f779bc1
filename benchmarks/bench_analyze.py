"""The whole analysis against decoding alone, on the 1,000,000-packet capture of bench_decode.py.

    python benchmarks/bench_analyze.py [--packets 1000000]

Each measurement runs in a fresh process after a warm-up on a small file (compiled kernels come from the
cache): read_packets alone, gwcheck.analyze (read, pair, flows, findings), and `gwcheck analyze --quiet`
as a whole process from interpreter start (the fastest of three).  Memory is the peak above the process before the call, less
the file, per packet; the tables' own sizes are printed beside it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_decode import build_capture, build_warmup, measure_floor, run_python


def measure(path: Path, warmup: Path, call: str) -> dict:
    return run_python(
        f"""
        import json, resource, time
        def rss(): return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
        import gwcheck
        gwcheck.analyze({str(warmup)!r})
        before = rss()
        started = time.perf_counter()
        result = {call}
        seconds = time.perf_counter() - started
        peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
        packets = result.packets if hasattr(result, "packets") else result
        extra = {{}}
        if hasattr(result, "flows"):
            extra = {{"flows": len(result.flows), "legs": len(result.legs),
                      "legs_bytes": int(result.legs.memory_usage(deep=True).sum()),
                      "flows_bytes": int(result.flows.memory_usage(deep=True).sum())}}
        print(json.dumps({{"packets": len(packets), "seconds": seconds, "rss_before": before, "peak": peak,
                           "table_bytes": int(packets.memory_usage(index=False, deep=False).sum()), **extra}}))
        """
    )


def measure_command(capture: Path) -> float:
    """One whole ``gwcheck analyze --quiet`` process, from interpreter start to exit."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "gwcheck", "analyze", "--quiet", str(capture)], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=1_000_000, help="size of the capture (default: 1,000,000)")
    args = parser.parse_args()
    capture = build_capture(args.packets)
    file_bytes = capture.stat().st_size
    with tempfile.TemporaryDirectory() as tmp:
        warmup = build_warmup(tmp)
        decode = measure(capture, warmup, f"gwcheck.read_packets({str(capture)!r})")
        analysis = measure(capture, warmup, f"gwcheck.analyze({str(capture)!r})")
        process = min(measure_command(capture) for _ in range(3))
    floor = measure_floor()
    n = analysis["packets"]
    print(f"capture: {capture} ({n} packets, {file_bytes / 1e6:.1f} MB); {analysis['flows']} flows, {analysis['legs']} legs")
    print(f"{'step':<40}{'seconds':>10}{'packets/s':>14}{'bytes/packet':>14}")
    for name, result in (("read_packets (decode alone)", decode), ("gwcheck.analyze (in process)", analysis)):
        extra = (result["peak"] - result["rss_before"] - file_bytes) / n
        print(f"{name:<40}{result['seconds']:>10.3f}{n / result['seconds']:>14,.0f}{extra:>14,.0f}")
    print(f"{'gwcheck analyze --quiet (whole process)':<40}{process:>10.3f}{n / process:>14,.0f}")
    print(f"floor: python -c 'import numpy, pandas' takes {floor:.3f} s (load average {os.getloadavg()[0]:.2f})")
    print(
        f"tables: packets {analysis['table_bytes'] / n:.0f} bytes/packet, legs {analysis['legs_bytes'] / n:.0f} bytes/packet, "
        f"flows {analysis['flows_bytes'] / analysis['flows']:.0f} bytes/flow"
    )


if __name__ == "__main__":
    main()
