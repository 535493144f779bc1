"""Regenerate every capture in samples/ and the truth beside it: python samples/make_samples.py

Each sample is a named scenario of ``gwcheck simulate`` (samples/README.md says what each holds); the same seed
writes the same bytes, so a change here shows up as a diff of the samples.
"""

from __future__ import annotations

from pathlib import Path

from gwcheck.simulate.scenario import Scenario
from gwcheck.simulate.simulator import simulate

HERE = Path(__file__).resolve().parent
MAX_SAMPLE_BYTES = 300_000  # samples stay small enough to read and to check in

SAMPLES: dict[str, Scenario] = {
    # Three appliances, two GWLB nodes, two endpoints; TCP, UDP and ICMP, IPv4 and IPv6 inner; every
    # packet returned unchanged.
    "healthy.pcap": Scenario(seed=1, flows=24, duration_s=4.0),
    # Flows whose reverse direction enters by another endpoint and reaches another appliance, and flows whose
    # reverse direction never reaches an appliance at all.
    "asymmetric.pcap": Scenario(seed=4, flows=20, duration_s=4.0, asymmetric=4, one_sided=3),
    # New flows reusing an older flow's 5-tuple, answered with the older flow's options (its cookie), and flows
    # the appliance returns with another attachment ID.
    "stale-cookie.pcap": Scenario(seed=5, flows=16, duration_s=4.0, stale_cookie=3, modified_options=3),
    # An appliance that drops a third of what arrives by the second endpoint, and originates flows of its own.
    "drops.pcap": Scenario(seed=8, flows=20, duration_s=8.0, not_returned_rate=0.3, not_returned_endpoint=1, originated=4),
    # The same deployment as healthy.pcap with a target group that sends appliance 3 four times the flows of the others.
    "uneven.pcap": Scenario(seed=2, flows=24, duration_s=4.0, weights=[1.0, 1.0, 4.0]),
    # Jumbo flows with inner packets over GWLB's 8,500 bytes, an appliance with a 1,500-byte MTU fragmenting its
    # return legs, and GSO super-packets (a capture artefact, not a fault).
    "mtu.pcap": Scenario(seed=16, flows=10, duration_s=4.0, over_mtu=1, outer_fragments=2, gso=2),
    # Health checks every 5 s from both GWLB nodes: appliance 3 answers none, the others leave a few unanswered,
    # while Geneve traffic keeps arriving at all three.
    "health.pcap": Scenario(seed=8, flows=20, duration_s=30.0, health_check_interval_s=5.0, failing_appliance=2, health_check_unanswered=0.2),
    # One capture per appliance, as tcpdump on each writes them: pcapng with nanosecond timestamps and
    # each appliance's clock off by a different amount.
    "split.pcapng": Scenario(seed=3, flows=24, duration_s=4.0, format="pcapng", split=True, clock_offsets_ms=[0.0, 1500.0, -320.0]),
}


def main() -> None:
    for name, scenario in SAMPLES.items():
        truth = simulate(scenario, HERE / name)
        sizes = [(HERE / f["path"]).stat().st_size for f in truth["files"]]
        faults = ", ".join(f"{kind} {len(keys)}" for kind, keys in {**truth["faults"], **truth["artefacts"]}.items()) or "none"
        print(f"{name}: {truth['packets']} packets, {truth['flows']} flows, faults: {faults}; {', '.join(f['path'] for f in truth['files'])}")
        if max(sizes) > MAX_SAMPLE_BYTES:
            raise SystemExit(f"{name}: {max(sizes)} bytes, more than {MAX_SAMPLE_BYTES}: make the scenario smaller")


if __name__ == "__main__":
    main()
