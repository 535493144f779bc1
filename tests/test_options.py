"""The option table lists every Geneve option generically, as tshark and the wire say."""

from __future__ import annotations

from pathlib import Path

import gwcheck
from gwcheck.simulate import Scenario, simulate

AWS = 0x0108


def test_real_aws_options(corpus: Path) -> None:
    options = gwcheck.read_options(corpus / "suricata-verify/tests/bug-6402-01/input.pcap")
    assert len(options) == 36  # 12 packets, three options each
    first = options[options["packet"] == 0]
    assert list(first["option_class"]) == [AWS] * 3 and list(first["option_type"]) == [1, 2, 3]
    assert list(first["data"]) == ["31e129cdc0cd8633", "0000000000000000", "3dc956ac"]
    assert list(first["aws_option"]) == ["endpoint_id", "attachment_id", "flow_cookie"]
    assert not first["critical"].any() and list(first["length_bytes"]) == [8, 8, 4]


def test_other_classes_and_the_critical_bit(corpus: Path) -> None:
    tunnels = corpus / "zeek/testing/btest/Traces/tunnels"
    many = gwcheck.read_options(tunnels / "geneve-many-options.pcap")
    assert set(many["option_class"]) == {0x0100} and list(many["length_bytes"][:3]) == [16, 36, 12]
    assert (many["aws_option"] == "").all()
    critical = gwcheck.read_options(corpus / "tcpdump/tests/geneve.pcap")
    assert critical["critical"].all() and (critical["data"] == "0000000c").all()  # tshark: type 0x80, data 0000000c
    gcp = gwcheck.read_options(corpus / "tcpdump/tests/geneve-gcp.pcap")
    assert list(gcp["option_class"]) == [0x0132] * 3 and list(gcp["length_bytes"]) == [4, 16, 8]


def test_counts_follow_the_packet_table(tmp_path: Path) -> None:
    capture = tmp_path / "s.pcapng"
    simulate(Scenario(seed=5, flows=20, format="pcapng", link="vlan", split=True, clock_offsets_ms=[0.0, 5.0, -5.0]), capture)
    files = sorted(tmp_path.glob("s-appliance*.pcapng"))
    packets = gwcheck.read_packets(files)
    options = gwcheck.read_options(files, packets=packets)
    assert len(options) == int(packets["geneve_opt_count"].sum())
    cookies = options[options["aws_option"] == "flow_cookie"]
    expected = packets.loc[cookies["packet"].to_numpy(), "aws_flow_cookie"].map("{:08x}".format).to_numpy()
    assert list(cookies["data"]) == list(expected)
    assert (options.groupby("packet")["position"].max() == 2).all()


def test_no_geneve_no_options(corpus: Path) -> None:
    assert gwcheck.read_options(corpus / "tcpdump/tests/babel.pcap").empty

