"""Regenerate every capture in samples/ and the truth beside it: python samples/make_samples.py

Each sample is a named scenario of ``gwcheck simulate``; the same seed writes the same bytes, so a change
here shows up as a diff of the samples.
"""

from __future__ import annotations

from pathlib import Path

from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate

HERE = Path(__file__).resolve().parent

SAMPLES: dict[str, Scenario] = {
    # Three appliances, two GWLB nodes, two endpoints; TCP, UDP and ICMP, IPv4 and IPv6 inner; every
    # packet returned unchanged.
    "healthy.pcap": Scenario(seed=1, flows=24, duration_s=4.0),
    # The same deployment with a target group that sends appliance 3 four times the flows of the others.
    "uneven.pcap": Scenario(seed=2, flows=30, duration_s=4.0, weights=[1.0, 1.0, 4.0]),
    # One capture per appliance, as tcpdump on each writes them: pcapng with nanosecond timestamps and
    # each appliance's clock off by a different amount.
    "split.pcapng": Scenario(seed=3, flows=24, duration_s=4.0, format="pcapng", split=True, clock_offsets_ms=[0.0, 1500.0, -320.0]),
}


def main() -> None:
    for name, scenario in SAMPLES.items():
        truth = simulate(scenario, HERE / name)
        print(f"{name}: {truth['packets']} packets, {truth['flows']} flows in {', '.join(f['path'] for f in truth['files'])}")


if __name__ == "__main__":
    main()
