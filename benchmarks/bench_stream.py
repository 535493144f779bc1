"""Bounded memory: gwcheck.analyze against the incremental analysis (analyze --stream, gwcheck live) on a long capture.

    python benchmarks/bench_stream.py [--packets 5000000] [--duration 3600]

Builds (once, cached under benchmarks/out/) a capture of about --packets packets whose flows start over
--duration seconds (an hour by default: flows come and go, as on a live appliance).  In fresh processes:
gwcheck.analyze of the whole file, and the incremental analysis fed by the merged stream reader, recording
after each batch the process's memory, the packets held for pairing and the flows still open.  Prints time,
packets per second, peak memory above the process before the call, memory through the run, and whether the
two reports agree on flows, verdicts and counts.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench_decode import OUT, PACKETS_PER_FLOW, build_warmup, run_python

MB = 1 << 20


def build_long_capture(packets: int, duration_s: float) -> Path:
    from gwcheck.simulate.scenario import Scenario
    from gwcheck.simulate.simulator import simulate

    path = OUT / f"gwlb-long-{packets}-{int(duration_s)}s.pcap"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    scenario = Scenario(seed=43, flows=int(packets / PACKETS_PER_FLOW), duration_s=duration_s, appliances=4, endpoints=4,
                        not_returned_rate=0.001, stale_cookie=20, moved=20, asymmetric=20)
    truth = simulate(scenario, path)
    print(f"built {path.name}: {truth['packets']} packets, {truth['flows']} flows in {time.perf_counter() - started:.1f} s")
    return path


COMMON = """
import json, resource, time
def rss(): return int(open("/proc/self/statm").read().split()[1]) * resource.getpagesize()
import gwcheck
gwcheck.analyze({warmup!r})
before = rss()
started = time.perf_counter()
"""


def measure_batch(path: Path, warmup: Path) -> dict:
    return run_python(
        COMMON.format(warmup=str(warmup))
        + f"""
report = gwcheck.analyze({str(path)!r})
seconds = time.perf_counter() - started
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"packets": report.summary["packets"], "seconds": seconds, "peak_above": peak - before,
                   "flows": len(report.flows), "verdicts": report.flows["verdict"].value_counts().to_dict(),
                   "pairing": report.pairing}}))
"""
    )


def measure_stream(path: Path, warmup: Path) -> dict:
    return run_python(
        COMMON.format(warmup=str(warmup))
        + f"""
from gwcheck.incremental import IncrementalAnalysis
from gwcheck.tables.packets import MergedStreams
analysis = IncrementalAnalysis()
trace, packets = [], 0
for table, ended in MergedStreams([{str(path)!r}]):
    analysis.add(table, ended)
    packets += len(table)
    trace.append((packets, rss() - before, analysis.held_packets, analysis.open_flows))
report = analysis.finish()
seconds = time.perf_counter() - started
peak = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmHWM:"))
print(json.dumps({{"packets": report.summary["packets"], "seconds": seconds, "peak_above": peak - before,
                   "flows": len(report.flows), "verdicts": report.flows["verdict"].value_counts().to_dict(),
                   "pairing": report.pairing, "trace": trace}}))
"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets", type=int, default=5_000_000, help="size of the capture (default: 5,000,000)")
    parser.add_argument("--duration", type=float, default=3600.0, help="seconds over which flows start (default: 3600)")
    args = parser.parse_args()
    import tempfile

    capture = build_long_capture(args.packets, args.duration)
    file_mb = capture.stat().st_size / MB
    with tempfile.TemporaryDirectory() as tmp:
        warmup = build_warmup(tmp)
        batch = measure_batch(capture, warmup)
        stream = measure_stream(capture, warmup)
    n = batch["packets"]
    print(f"capture: {capture.name}, {n:,} packets, {file_mb:,.0f} MB, flows over {args.duration:.0f} s")
    print(f"{'analysis':<28}{'seconds':>9}{'packets/s':>12}{'peak MB':>10}{'flows':>10}")
    for name, result in (("gwcheck.analyze", batch), ("incremental (--stream)", stream)):
        print(f"{name:<28}{result['seconds']:>9.1f}{n / result['seconds']:>12,.0f}{result['peak_above'] / MB:>10,.0f}{result['flows']:>10,}")
    trace = stream["trace"]
    print("incremental, through the run (packets read: memory above start, packets held, flows open):")
    for share in (0.1, 0.25, 0.5, 0.75, 1.0):
        packets, memory, held, open_flows = trace[min(len(trace) - 1, int(share * len(trace)) - 1 if share < 1 else len(trace) - 1)]
        print(f"  {packets:>12,}: {memory / MB:>7,.0f} MB, {held:>8,} held, {open_flows:>8,} open flows")
    same = batch["verdicts"] == stream["verdicts"] and batch["pairing"] == stream["pairing"] and batch["flows"] == stream["flows"]
    print(f"reports agree on flows, verdicts and pairing: {same}")
    if not same:
        print(json.dumps({"batch": {k: batch[k] for k in ("flows", "verdicts", "pairing")},
                          "stream": {k: stream[k] for k in ("flows", "verdicts", "pairing")}}, indent=1))


if __name__ == "__main__":
    main()
