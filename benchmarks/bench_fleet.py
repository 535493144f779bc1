"""The same analysis in process and on Dask: 8 captures of about 1,000,000 packets each, one per appliance.

    python benchmarks/bench_fleet.py [--packets-per-file 1000000] [--files 8] [--workers 2]

Builds (once, cached under benchmarks/out/) one simulated deployment of --files appliances, captured on each
(``Scenario(split=True)``, clocks skewed by a few milliseconds).  Each measurement runs in a fresh process
after a warm-up on a small capture: ``gwcheck.analyze`` on every file, then ``analyze_on_dask`` on a
LocalCluster of --workers worker processes of one thread each (what ``gwcheck analyze --dask local:2``
starts).  Printed: packets per second, the peak memory of every process (the client, and each worker), the
Parquet work directory beside the captures, and whether both runs found the same flows and verdicts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
PACKETS_PER_FLOW = 20.3  # what the default scenario writes per flow, to size the captures
CLOCK_OFFSETS_MS = [0.0, 3.0, -2.0, 5.0, -4.0, 1.0, -1.0, 2.0]


def build_captures(packets_per_file: int, files: int) -> list[Path]:
    """One deployment of ``files`` appliances, one capture each, built once per size with a fixed seed."""
    from gwcheck.simulate.scenario import Scenario
    from gwcheck.simulate.simulator import simulate

    directory = OUT / f"fleet-{files}x{packets_per_file}"
    paths = sorted(directory.glob("gwlb-appliance*.pcap"))
    if len(paths) == files:
        return paths
    directory.mkdir(parents=True, exist_ok=True)
    flows = int(packets_per_file * files / PACKETS_PER_FLOW)
    offsets = (CLOCK_OFFSETS_MS * (files // len(CLOCK_OFFSETS_MS) + 1))[:files]
    started = time.perf_counter()
    truth = simulate(
        Scenario(seed=42, flows=flows, duration_s=300.0, appliances=files, endpoints=4, split=True, clock_offsets_ms=offsets),
        directory / "gwlb.pcap",
    )
    print(f"built {files} captures in {directory}: {truth['packets']} packets, {truth['flows']} flows in {time.perf_counter() - started:.0f} s")
    return sorted(directory.glob("gwlb-appliance*.pcap"))


def build_warmup(directory: Path) -> list[str]:
    from gwcheck.simulate.scenario import Scenario
    from gwcheck.simulate.simulator import simulate

    truth = simulate(Scenario(flows=20, split=True), directory / "warmup.pcap")
    return [str(directory / f["path"]) for f in truth["files"]]


def peak_rss() -> int:
    """This process's own peak resident memory (VmHWM). Not ru_maxrss: Linux carries the parent's peak over
    exec into it, so a spawned Dask worker would report the peak of the process that started it."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def summary(report) -> dict:
    return {"packets": report.summary["packets"], "flows": len(report.flows), "verdicts": report.flows["verdict"].value_counts().to_dict(),
            "findings": [f.kind for f in report.findings]}


def measure_in_process(paths: list[str], warmup: list[str]) -> dict:
    import gwcheck

    gwcheck.analyze(warmup)
    started = time.perf_counter()
    report = gwcheck.analyze(paths)
    return {"seconds": time.perf_counter() - started, "peak": peak_rss(), **summary(report)}


def measure_dask(paths: list[str], warmup: list[str], workers: int, workdir: str) -> dict:
    import distributed

    from gwcheck.fleet import analyze_on_dask

    started = time.perf_counter()
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            startup = time.perf_counter() - started
            analyze_on_dask(warmup, client)
            started = time.perf_counter()
            report = analyze_on_dask(paths, client, workdir)
            seconds = time.perf_counter() - started
            usage = client.run(peak_rss)
    return {"seconds": seconds, "startup": startup, "peak": peak_rss(), "workers": list(usage.values()), **summary(report)}


def directory_bytes(path: Path) -> dict[str, int]:
    return {sub: sum(f.stat().st_size for f in (path / sub).glob("*.parquet")) for sub in ("packets", "legs")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packets-per-file", type=int, default=1_000_000, help="packets in each capture (default: 1,000,000)")
    parser.add_argument("--files", type=int, default=8, help="captures, one per appliance (default: 8)")
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes (default: 2)")
    parser.add_argument("--measure", choices=("in-process", "dask"), help=argparse.SUPPRESS)  # one measurement, in this process
    args = parser.parse_args()
    paths = [str(p) for p in build_captures(args.packets_per_file, args.files)]
    workdir = OUT / f"fleet-{args.files}x{args.packets_per_file}-work"
    if args.measure:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            warmup = build_warmup(Path(tmp))
            result = measure_in_process(paths, warmup) if args.measure == "in-process" else measure_dask(paths, warmup, args.workers, str(workdir))
        print(json.dumps(result))
        return
    results = {}
    for name in ("in-process", "dask"):
        command = [sys.executable, __file__, "--packets-per-file", str(args.packets_per_file), "--files", str(args.files),
                   "--workers", str(args.workers), "--measure", name]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    local, fleet = results["in-process"], results["dask"]
    n = local["packets"]
    pcap_bytes = sum(os.path.getsize(p) for p in paths)
    parquet = directory_bytes(workdir)
    print(f"captures: {args.files} files, {n:,} packets, {pcap_bytes / 1e9:.2f} GB; {local['flows']:,} flows")
    print(f"{'run':<36}{'seconds':>10}{'packets/s':>14}  peak memory per process")
    print(f"{'gwcheck.analyze (in process)':<36}{local['seconds']:>10.1f}{n / local['seconds']:>14,.0f}  {local['peak'] / 1e9:.2f} GB")
    workers = ", ".join(f"{w / 1e9:.2f} GB" for w in fleet["workers"])
    print(f"{f'analyze_on_dask (local:{args.workers})':<36}{fleet['seconds']:>10.1f}{n / fleet['seconds']:>14,.0f}  "
          f"client {fleet['peak'] / 1e9:.2f} GB; workers {workers}")
    print(f"{'  + starting the LocalCluster':<36}{fleet['startup']:>10.1f}{n / (fleet['seconds'] + fleet['startup']):>14,.0f}")
    total = parquet["packets"] + parquet["legs"]
    print(f"work directory {workdir}: packets {parquet['packets'] / 1e6:.0f} MB + legs {parquet['legs'] / 1e6:.0f} MB = "
          f"{total / 1e6:.0f} MB, {total / pcap_bytes:.1%} of the captures ({total / n:.0f} bytes/packet against {pcap_bytes / n:.0f})")
    same = all(local[key] == fleet[key] for key in ("packets", "flows", "verdicts", "findings"))
    print(f"same packets, flows, verdicts and findings: {'yes' if same else 'NO'}; cores: {os.cpu_count()}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
